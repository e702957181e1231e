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
