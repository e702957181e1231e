//! Vector tiles end to end: real counties in PostGIS, served over HTTP, decoded by GDAL's
//! MVT driver and compared with PostGIS's own answer for the same tile envelope.

mod common;

use std::collections::BTreeSet;

use common::{Scratch, TestServer, gdal_decode, geojson_area};
use planscape::tile::TileId;

fn counties_config(scratch: &Scratch) -> String {
    format!("{}minzoom = 0\nmaxzoom = 16\n", scratch.counties_layer())
}

async fn postgis_names(scratch: &Scratch, tile: TileId) -> BTreeSet<String> {
    // Features within the tile or its 64/4096 buffer, as PostGIS sees them.
    let rows = scratch
        .client
        .query(
            &format!(
                "SELECT name FROM {}.counties WHERE ST_Intersects(geom, \
                 ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), 4326))",
                scratch.schema
            ),
            &[&i32::from(tile.z), &(tile.x as i32), &(tile.y as i32)],
        )
        .await
        .expect("reference query");
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

fn decoded_names(doc: &serde_json::Value) -> BTreeSet<String> {
    doc["features"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["properties"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn county_tiles_match_postgis_when_decoded_by_gdal() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let server = TestServer::start(&counties_config(&scratch)).await;

    // The z7 tile over Sacramento, then tiles at other zooms over the state.
    let sacramento = TileId::containing(-121.49, 38.58, 7);
    let tiles = [
        sacramento,
        TileId::containing(-119.5, 37.0, 5),
        TileId::containing(-118.25, 34.05, 9),
        TileId::containing(-122.42, 37.77, 11),
        TileId::containing(-117.16, 32.72, 6),
    ];
    for tile in tiles {
        let response = server
            .get(&format!("/tiles/counties/{tile}.mvt"), &[])
            .await;
        assert_eq!(response.status(), 200, "{tile}");
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.mapbox-vector-tile"
        );
        let body = response.bytes().await.expect("body");
        let decoded = gdal_decode(&body, tile.z, tile.x, tile.y);
        let served = decoded_names(&decoded);
        let expected = postgis_names(&scratch, tile).await;
        assert_eq!(
            served, expected,
            "tile {tile}: GDAL-decoded names differ from PostGIS"
        );
    }

    let body = server
        .get(&format!("/tiles/counties/{sacramento}.mvt"), &[])
        .await
        .bytes()
        .await
        .expect("body");
    let decoded = gdal_decode(&body, sacramento.z, sacramento.x, sacramento.y);
    let names = decoded_names(&decoded);
    for near in ["Sacramento", "Yolo", "Placer", "El Dorado", "Sutter"] {
        assert!(names.contains(near), "{near} missing from {names:?}");
    }
    for far in ["San Diego", "Los Angeles", "Del Norte", "Imperial"] {
        assert!(
            !names.contains(far),
            "{far} should not be in the Sacramento tile"
        );
    }

    // Geometry: counties wholly inside the tile keep their area (EPSG:3857) within 1 %,
    // and the MVT feature id is the table's id.
    let inside = scratch
        .client
        .query(
            &format!(
                "SELECT id, name, ST_Area(ST_Transform(geom, 3857)) FROM {}.counties \
                 WHERE ST_Within(ST_Transform(geom, 3857), ST_TileEnvelope($1, $2, $3))",
                scratch.schema
            ),
            &[
                &i32::from(sacramento.z),
                &(sacramento.x as i32),
                &(sacramento.y as i32),
            ],
        )
        .await
        .expect("inside query");
    assert!(
        inside.len() >= 3,
        "expected several counties wholly inside the tile"
    );
    let features = decoded["features"].as_array().expect("features");
    for row in &inside {
        let (id, name, area): (i32, String, f64) = (row.get(0), row.get(1), row.get(2));
        let feature = features
            .iter()
            .find(|f| f["properties"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not decoded"));
        assert_eq!(
            feature["properties"]["mvt_id"].as_i64(),
            Some(i64::from(id)),
            "{name} id"
        );
        let served = geojson_area(&feature["geometry"]);
        assert!(
            (served / area - 1.0).abs() < 0.01,
            "{name}: served area {served} vs PostGIS {area}"
        );
    }

    // `.pbf` is the same tile as `.mvt`.
    let pbf = server
        .get(&format!("/tiles/counties/{sacramento}.pbf"), &[])
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(pbf, body);

    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tilejson_and_catalog_describe_the_layer() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let server = TestServer::start(&counties_config(&scratch)).await;

    let tj: serde_json::Value = server
        .get("/tiles/counties", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tj["tilejson"], "3.0.0");
    assert_eq!(tj["minzoom"], 0);
    assert_eq!(tj["maxzoom"], 16);
    assert_eq!(
        tj["tiles"][0],
        format!("{}/tiles/counties/{{z}}/{{x}}/{{y}}.mvt", server.base)
    );
    assert_eq!(tj["vector_layers"][0]["id"], "counties");
    assert_eq!(tj["vector_layers"][0]["fields"]["name"], "String");
    // California's extent, as PostGIS computes it.
    let b = tj["bounds"].as_array().expect("bounds");
    let extent = scratch
        .client
        .query_one(
            &format!("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM {}.counties) x", scratch.schema),
            &[],
        )
        .await
        .expect("extent");
    for (i, v) in b.iter().enumerate() {
        assert!((v.as_f64().unwrap_or(f64::NAN) - extent.get::<_, f64>(i)).abs() < 1e-6);
    }
    let c = tj["center"].as_array().expect("center");
    assert!(c[0].as_f64().unwrap_or(0.0) < -114.0 && c[1].as_f64().unwrap_or(0.0) > 32.0);

    // Behind a proxy: URLs follow X-Forwarded-*.
    let proxied: serde_json::Value = server
        .get(
            "/tiles/counties",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "maps.example.org"),
                ("x-forwarded-prefix", "/planscape-backend"),
            ],
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        proxied["tiles"][0],
        "https://maps.example.org/planscape-backend/tiles/counties/{z}/{x}/{y}.mvt"
    );

    let catalog: serde_json::Value = server.get("/tiles", &[]).await.json().await.expect("json");
    let layers = catalog["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["id"], "counties");
    assert_eq!(layers[0]["type"], "vector");
    assert_eq!(
        layers[0]["tilejson"],
        format!("{}/tiles/counties", server.base)
    );

    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_overrides_request_headers() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let config = format!(
        "public_url = \"https://tiles.example.org/base/\"\n{}",
        counties_config(&scratch)
    );
    let server = TestServer::start(&config).await;
    let tj: serde_json::Value = server
        .get("/tiles/counties", &[("x-forwarded-host", "evil.example")])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        tj["tiles"][0],
        "https://tiles.example.org/base/tiles/counties/{z}/{x}/{y}.mvt"
    );
    server.stop().await;
    scratch.cleanup().await;
}
