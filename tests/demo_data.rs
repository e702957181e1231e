//! `planscape demo`: deterministic, valid, idempotent demo data that the demo layer
//! catalog (`tiles/demo.toml`) serves.

mod common;

use common::{Scratch, TestServer, db_config};
use planscape::demo::{self, DemoOptions, DemoOutcome};
use planscape::tile::TileId;

async fn fingerprint(scratch: &Scratch, schema: &str) -> (i64, String) {
    let row = scratch
        .client
        .query_one(
            &format!(
                "SELECT count(*), md5(string_agg(id || huc12 || name || area_acres || elevation_m || fire_risk \
                 || encode(ST_AsEWKB(geom), 'hex'), ',' ORDER BY id)) FROM {schema}.watersheds"
            ),
            &[],
        )
        .await
        .expect("fingerprint");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_is_deterministic_valid_and_served() {
    let scratch = Scratch::new().await;
    let other = common::unique("t");
    let opts = |schema: &str, force| DemoOptions {
        schema: schema.to_owned(),
        watersheds: 600,
        force,
    };

    let first = demo::run(&db_config(), &opts(&scratch.schema, false))
        .await
        .expect("demo loads");
    assert!(
        matches!(first, DemoOutcome::Loaded { watersheds } if (450..=750).contains(&watersheds)),
        "{first:?}"
    );
    assert_eq!(
        demo::run(&db_config(), &opts(&scratch.schema, false))
            .await
            .expect("rerun"),
        DemoOutcome::UpToDate
    );
    demo::run(&db_config(), &opts(&other, true))
        .await
        .expect("demo loads again");
    let a = fingerprint(&scratch, &scratch.schema).await;
    let b = fingerprint(&scratch, &other).await;
    assert_eq!(a, b, "two runs give identical data");

    let s = &scratch.schema;
    let checks = scratch
        .client
        .query_one(
            &format!(
                "SELECT bool_and(ST_IsValid(geom)), min(ST_NPoints(geom)), \
                 (SELECT ST_Area(geom::geography) FROM {s}.regions) / sum(ST_Area(geom::geography)), \
                 bool_and(fire_risk BETWEEN 0 AND 1), \
                 max(abs(area_acres - ST_Area(geom::geography) / 4046.8564224) / area_acres) \
                 FROM {s}.watersheds"
            ),
            &[],
        )
        .await
        .expect("checks");
    assert!(checks.get::<_, bool>(0), "all polygons valid");
    assert!(checks.get::<_, i32>(1) >= 100, "realistic vertex counts");
    let coverage: f64 = checks.get(2);
    assert!(
        (coverage - 1.0).abs() < 0.1,
        "watersheds cover the region: ratio {coverage}"
    );
    assert!(checks.get::<_, bool>(3));
    let area_error: f64 = checks.get(4);
    assert!(
        area_error < 0.02,
        "stored acres agree with PostGIS geography area: {area_error}"
    );

    // The demo catalog's layers, pointed at this schema, serve real tiles.
    let catalog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tiles/demo.toml"))
        .expect("tiles/demo.toml")
        .replace("demo.", &format!("{s}."));
    let server = TestServer::start(&catalog).await;
    let tile = TileId::containing(-119.6, 37.8, 8);
    let response = server
        .get(&format!("/tiles/watersheds/{tile}.mvt"), &[])
        .await;
    assert_eq!(response.status(), 200);
    let doc = common::gdal_decode(
        &response.bytes().await.expect("body"),
        tile.z,
        tile.x,
        tile.y,
    );
    let features = doc["features"].as_array().expect("features");
    assert!(features.len() > 20, "a z8 tile holds many watersheds");
    assert!(
        features
            .iter()
            .all(|f| f["properties"]["huc12"].is_string())
    );
    let regions = server
        .get(
            &format!("/tiles/regions/{}.mvt", TileId::containing(-119.6, 37.8, 6)),
            &[],
        )
        .await;
    assert_eq!(regions.status(), 200);

    server.stop().await;
    let _ = scratch
        .client
        .batch_execute(&format!("DROP SCHEMA {other} CASCADE"))
        .await;
    scratch.cleanup().await;
}

/// Values of band 1 and the geotransform.
fn read_raster(path: &std::path::Path) -> (Vec<f64>, [f64; 6], (usize, usize), Option<f64>) {
    let ds = gdal::Dataset::open(path).expect("open raster");
    let band = ds.rasterband(1).expect("band");
    let size = ds.raster_size();
    let values = band
        .read_as::<f64>((0, 0), size, size, None)
        .expect("read")
        .into_shape_and_vec()
        .1;
    (
        values,
        ds.geo_transform().expect("gt"),
        size,
        band.no_data_value(),
    )
}

fn value_at(
    raster: &(Vec<f64>, [f64; 6], (usize, usize), Option<f64>),
    lon: f64,
    lat: f64,
) -> Option<f64> {
    let (values, gt, (w, h), nodata) = raster;
    let (x, y) = planscape::tile::lonlat_to_mercator(lon, lat);
    let (c, r) = (((x - gt[0]) / gt[1]).floor(), ((y - gt[3]) / gt[5]).floor());
    if c < 0.0 || r < 0.0 || c >= *w as f64 || r >= *h as f64 {
        return None;
    }
    let v = values[r as usize * w + c as usize];
    (Some(v) != *nodata && !v.is_nan()).then_some(v)
}

#[test]
fn demo_rasters_are_deterministic_coherent_and_masked_to_the_region() {
    use planscape::demo::rasters::{METRICS, generate};
    let a = std::env::temp_dir().join(common::unique("rasters"));
    let b = std::env::temp_dir().join(common::unique("rasters"));
    assert_eq!(generate(&a, 2000.0, false).expect("rasters").len(), 10);
    assert_eq!(generate(&b, 2000.0, false).expect("rasters").len(), 10);
    assert!(
        generate(&a, 2000.0, false).expect("rerun").is_empty(),
        "existing rasters are kept"
    );
    let mercator = gdal::spatial_ref::SpatialRef::from_epsg(3857).expect("srs");
    for metric in &METRICS {
        for name in [
            metric.name.to_owned(),
            format!("{}_normalized", metric.name),
        ] {
            let file = format!("{name}.tif");
            let ra = read_raster(&a.join(&file));
            let rb = read_raster(&b.join(&file));
            assert_eq!(ra.0, rb.0, "{name}: two runs give the same values");
            let ds = gdal::Dataset::open(a.join(&file)).expect("open");
            assert!(
                ds.spatial_ref().expect("srs") == mercator,
                "{name} is in EPSG:3857"
            );
            // Yosemite has data, Sacramento (outside the region) has none.
            let inside = value_at(&ra, -119.55, 37.75).expect("data inside the region");
            assert!(
                value_at(&ra, -121.49, 38.58).is_none(),
                "{name}: nodata outside the region"
            );
            let (lo, hi) = if name.ends_with("_normalized") {
                (-1.0, 1.0)
            } else {
                (metric.min, metric.max)
            };
            assert!((lo..=hi).contains(&inside), "{name}: {inside}");
            // Smooth: neighbouring pixels differ far less than random values would.
            let (values, _, (w, _), nodata) = &ra;
            let valid = |v: f64| Some(v) != *nodata && !v.is_nan();
            let diffs: Vec<f64> = values
                .windows(2)
                .enumerate()
                .filter(|(i, p)| (i + 1) % w != 0 && valid(p[0]) && valid(p[1]))
                .map(|(_, p)| (p[1] - p[0]).abs())
                .collect();
            let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
            assert!(
                mean < 0.1 * (hi - lo),
                "{name}: neighbours differ by {mean} on average"
            );
        }
        // The twin is the normalized raw value (inverted where high is bad).
        let raw = value_at(
            &read_raster(&a.join(format!("{}.tif", metric.name))),
            -119.55,
            37.75,
        )
        .expect("raw");
        let norm = value_at(
            &read_raster(&a.join(format!("{}_normalized.tif", metric.name))),
            -119.55,
            37.75,
        )
        .expect("norm");
        let expected = planscape::demo::rasters::normalized(metric, raw);
        assert!(
            (norm - expected).abs() < 0.05,
            "{}: {norm} vs {expected}",
            metric.name
        );
    }
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}
