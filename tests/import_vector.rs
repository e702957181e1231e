//! `planscape import vector`: the 58 California counties from GeoJSON, a Shapefile, a
//! zipped Shapefile and a GeoPackage in California Albers each become a PostGIS table in
//! EPSG:4326 (attributes as columns, GiST index), registered and served as MVT that
//! GDAL's own MVT driver decodes with the county names; bad inputs leave nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{ConfigFile, assert_success, planscape_config, stderr};
use common::{Scratch, TestServer, gdal_decode, shared_data, unique};
use planscape::tile::TileId;

/// `planscape --config CONFIG import vector INPUT --layer LAYER [--table TABLE]`.
fn import(config: &Path, input: &Path, layer: &str, table: Option<&str>) -> std::process::Output {
    let input = input.to_string_lossy();
    let mut args = vec!["import", "vector", &*input, "--layer", layer];
    if let Some(t) = table {
        args.extend(["--table", t]);
    }
    planscape_config(config, &args)
        .output()
        .expect("run planscape")
}

/// `ogr2ogr OUT IN EXTRA...` (asserting success).
fn ogr2ogr(out: &Path, input: &Path, extra: &[&str]) {
    let status = Command::new("ogr2ogr")
        .args(extra)
        .arg(out)
        .arg(input)
        .status()
        .expect("ogr2ogr runs (apt install gdal-bin)");
    assert!(status.success(), "ogr2ogr {}", out.display());
}

struct Inputs {
    dir: PathBuf,
    geojson: PathBuf,
    shapefile: PathBuf,
    zipped: PathBuf,
    geopackage: PathBuf,
}

/// The counties as GeoJSON, and made from it: a Shapefile, a zipped Shapefile and a
/// GeoPackage in EPSG:3310 (California Albers).
fn inputs() -> Inputs {
    let dir = std::env::temp_dir().join(unique("import_vector"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let geojson = shared_data("census/ca_counties.geojson");
    let shapefile = dir.join("counties.shp");
    ogr2ogr(&shapefile, &geojson, &["-f", "ESRI Shapefile"]);
    let zipped = dir.join("counties.shp.zip");
    ogr2ogr(&zipped, &geojson, &["-f", "ESRI Shapefile"]);
    let geopackage = dir.join("counties.gpkg");
    ogr2ogr(
        &geopackage,
        &geojson,
        &["-f", "GPKG", "-t_srs", "EPSG:3310"],
    );
    Inputs {
        dir,
        geojson,
        shapefile,
        zipped,
        geopackage,
    }
}

async fn names_in_tile(scratch: &Scratch, table: &str, tile: TileId) -> BTreeSet<String> {
    let rows = scratch
        .client
        .query(
            &format!(
                "SELECT name FROM {table} WHERE ST_Intersects(geom, \
                 ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), 4326))"
            ),
            &[&i32::from(tile.z), &(tile.x as i32), &(tile.y as i32)],
        )
        .await
        .expect("reference query");
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counties_from_every_format_are_loaded_registered_and_served() {
    let scratch = Scratch::new().await;
    let s = scratch.schema.clone();
    let files = inputs();
    let config = ConfigFile::new("# my layers\n");
    let cases = [
        ("counties_geojson", &files.geojson),
        ("counties_shp", &files.shapefile),
        ("counties-zip", &files.zipped),
        ("counties_gpkg", &files.geopackage),
    ];
    for (layer, input) in cases {
        let table = format!("{s}.{}", layer.replace('-', "_"));
        let out = import(&config, input, layer, Some(&table));
        assert_success(&out);

        let row = scratch
            .client
            .query_one(
                &format!(
                    "SELECT count(*), count(DISTINCT name), count(DISTINCT fid), \
                            bool_and(ST_IsValid(geom)), min(ST_SRID(geom)), \
                            sum(ST_Area(geom::geography)) / 1e6, \
                            (SELECT postgis_typmod_type(atttypmod) FROM pg_attribute \
                              WHERE attrelid = '{table}'::regclass AND attname = 'geom') \
                     FROM {table}"
                ),
                &[],
            )
            .await
            .expect("imported table");
        let (rows, names, fids, valid, srid, km2, typ): (i64, i64, i64, bool, i32, f64, String) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
        );
        assert_eq!((rows, names, fids), (58, 58, 58), "{layer}");
        assert!(valid, "{layer}: every geometry valid");
        assert_eq!(srid, 4326, "{layer}");
        assert_eq!(typ, "MultiPolygon", "{layer}");
        // California is about 423,970 km² (the simplified outline, a bit more or less).
        assert!((400_000.0..450_000.0).contains(&km2), "{layer}: {km2} km²");
        // The attributes are columns; the GiST index is there.
        let sacramento: String = scratch
            .client
            .query_one(
                &format!("SELECT id::text FROM {table} WHERE name = 'Sacramento'"),
                &[],
            )
            .await
            .expect("Sacramento")
            .get(0);
        assert_eq!(sacramento, "06067", "{layer}");
        let gist: i64 = scratch
            .client
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 \
                 AND indexdef LIKE '%USING gist (geom)%'",
                &[&s, &layer.replace('-', "_")],
            )
            .await
            .expect("indexes")
            .get(0);
        assert_eq!(gist, 1, "{layer}: GiST index");
    }
    // Reprojected from California Albers: the same counties as the GeoJSON, area by area.
    let drift: f64 = scratch
        .client
        .query_one(
            &format!(
                "SELECT max(abs(ST_Area(a.geom::geography) / ST_Area(b.geom::geography) - 1)) \
                 FROM {s}.counties_geojson a JOIN {s}.counties_gpkg b USING (name)"
            ),
            &[],
        )
        .await
        .expect("compare")
        .get(0);
    assert!(drift < 1e-6, "EPSG:3310 round trip drifts by {drift}");

    // Registered: every layer is served; GDAL decodes the county names from the tiles.
    let text = std::fs::read_to_string(&*config).expect("config");
    assert!(text.starts_with("# my layers\n"), "the file keeps its text");
    assert!(text.contains("[layers.counties-zip]"), "{text}");
    let server = TestServer::start(&text).await;
    let tile = TileId::containing(-121.49, 38.58, 7);
    for (layer, _) in cases {
        let table = format!("{s}.{}", layer.replace('-', "_"));
        let response = server.get(&format!("/tiles/{layer}/{tile}.mvt"), &[]).await;
        assert_eq!(response.status(), 200, "{layer}");
        let body = response.bytes().await.expect("tile");
        let decoded = gdal_decode(&body, tile.z, tile.x, tile.y);
        let features = decoded["features"].as_array().expect("features");
        let served: BTreeSet<String> = features
            .iter()
            .filter_map(|f| f["properties"]["name"].as_str().map(str::to_owned))
            .collect();
        assert!(served.contains("Sacramento"), "{layer}: {served:?}");
        assert_eq!(
            served,
            names_in_tile(&scratch, &table, tile).await,
            "{layer}: decoded names differ from PostGIS"
        );
        let sacramento = features
            .iter()
            .find(|f| f["properties"]["name"] == "Sacramento")
            .expect("Sacramento");
        assert_eq!(sacramento["properties"]["id"], "06067", "{layer}");
        let tilejson: serde_json::Value = server
            .get(&format!("/tiles/{layer}"), &[])
            .await
            .json()
            .await
            .expect("TileJSON");
        let fields = &tilejson["vector_layers"][0]["fields"];
        assert!(fields.get("name").is_some(), "{layer}: {tilejson}");
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&files.dir);
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_leaving_nothing_behind() {
    let scratch = Scratch::new().await;
    let s = scratch.schema.clone();
    let dir = std::env::temp_dir().join(unique("import_vector_bad"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let counties = shared_data("census/ca_counties.geojson");
    let config = ConfigFile::new("");
    assert_success(&import(
        &config,
        &counties,
        "counties",
        Some(&format!("{s}.counties")),
    ));
    let before = std::fs::read_to_string(&*config).expect("config");

    let garbage = dir.join("garbage.geojson");
    std::fs::write(&garbage, "this is not GeoJSON").expect("write");
    let table_only = dir.join("table.csv");
    std::fs::write(&table_only, "name,acres\nA,1\nB,2\n").expect("write");
    let no_crs = dir.join("no_crs.shp");
    ogr2ogr(&no_crs, &counties, &["-f", "ESRI Shapefile"]);
    std::fs::remove_file(dir.join("no_crs.prj")).expect("remove .prj");
    let missing = dir.join("missing.geojson");

    let cases: [(&Path, &str, String, &str); 7] = [
        (
            &garbage,
            "garbage",
            format!("{s}.garbage"),
            "not a readable vector file",
        ),
        (
            &missing,
            "missing",
            format!("{s}.missing"),
            "not a readable vector file",
        ),
        (&table_only, "csv", format!("{s}.csv"), "has no geometry"),
        (
            &no_crs,
            "no_crs",
            format!("{s}.no_crs"),
            "no coordinate reference system",
        ),
        (
            &counties,
            "counties",
            format!("{s}.other"),
            "already exists",
        ),
        (&counties, "other", format!("{s}.counties"), "table `"),
        (
            &counties,
            "bad name!",
            format!("{s}.bad"),
            "not a valid layer name",
        ),
    ];
    for (input, layer, table, expected) in &cases {
        let out = import(&config, input, layer, Some(table));
        assert!(!out.status.success(), "{layer} was accepted");
        let err = stderr(&out);
        assert!(err.contains(expected), "{layer}: {err}");
    }
    let out = import(&config, &counties, "x", Some("bad;table"));
    assert!(
        stderr(&out).contains("not a valid table name"),
        "{}",
        stderr(&out)
    );

    // Nothing written: the config as it was, no table but the first import's.
    assert_eq!(std::fs::read_to_string(&*config).expect("config"), before);
    let tables: Vec<String> = scratch
        .client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1",
            &[&s],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["counties"]);
    let _ = std::fs::remove_dir_all(&dir);
    scratch.cleanup().await;
}
