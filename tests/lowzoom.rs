//! Low zooms from generalized copies (`lowzoom_maxzoom`): once built, a low-zoom tile
//! holds each feature's pixel cover (the zoom's pixels whose centres it contains), stays
//! under 500 KB, and a geometry change or a deletion shows in the very next tile (the
//! changed row is computed live until the copies are refreshed), then in the copies.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Scratch, TestServer, db_config, gdal_decode, geojson_area};
use planscape::demo::{self, DemoOptions};
use planscape::tile::TileId;
use serde_json::Value;

/// The served tile, decoded (EPSG:3857 GeoJSON), and its size in bytes.
async fn tile_of(server: &TestServer, tile: TileId) -> (Value, usize) {
    let response = server
        .get(&format!("/tiles/watersheds/{tile}.mvt"), &[])
        .await;
    assert_eq!(response.status(), 200, "{tile}");
    let body = response.bytes().await.expect("body");
    (gdal_decode(&body, tile.z, tile.x, tile.y), body.len())
}

fn features(doc: &Value) -> &[Value] {
    doc["features"].as_array().map_or(&[], Vec::as_slice)
}

fn id_of(f: &Value) -> i64 {
    f["properties"]["mvt_id"].as_i64().expect("feature id")
}

/// The area of a feature's stored z6 copy.
async fn stored_area(client: &tokio_postgres::Client, source: &str, id: i64) -> f64 {
    client
        .query_one(
            "SELECT ST_Area(geom) FROM planscape.lowzoom_features \
             WHERE source = $1 AND z = 6 AND id = $2",
            &[&source, &id],
        )
        .await
        .expect("stored copy")
        .get(0)
}

/// Polls the database until `sql` (one bool) is true; the copies are built in the
/// background after start.
async fn wait_for(scratch: &Scratch, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let row = scratch.client.query_one(sql, &[]).await.expect("poll");
        if row.get::<_, bool>(0) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {sql}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_zooms_come_from_pixel_covers_and_changes_show_at_once() {
    let scratch = Scratch::new().await;
    let s = scratch.schema.clone();
    demo::run(
        &db_config(),
        &DemoOptions {
            schema: s.clone(),
            watersheds: 5_000,
            force: true,
        },
    )
    .await
    .expect("demo data");
    // The demo catalog with copies for z5-z8 (the demo's z9 takes minutes to build),
    // cache off: every request renders.
    let catalog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tiles/demo.toml"))
        .expect("tiles/demo.toml")
        .replace("demo.", &format!("{s}."))
        .replace("size_mb = 512", "size_mb = 0")
        .replace("lowzoom_maxzoom = 9", "lowzoom_maxzoom = 8");
    assert!(catalog.contains("lowzoom_maxzoom = 8"));
    let server = TestServer::start(&catalog).await;
    let source = format!("{s}.watersheds.geom");
    wait_for(
        &scratch,
        &format!(
            "SELECT EXISTS (SELECT 1 FROM planscape.lowzoom_sources WHERE source = '{source}')"
        ),
    )
    .await;

    // Every low zoom over Yosemite: the features are exactly those whose pixel cover
    // reaches into the tile (with its buffer), and the tile is small.
    for z in 5u8..=8 {
        let tile = TileId::containing(-119.6, 37.8, z);
        let (doc, bytes) = tile_of(&server, tile).await;
        assert!(bytes < 500_000, "{tile}: {bytes} bytes");
        let served: BTreeSet<i64> = features(&doc).iter().map(id_of).collect();
        let b = tile.bounds();
        let pad = (b.xmax - b.xmin) * 64.0 / 4096.0;
        let expected: BTreeSet<i64> = scratch
            .client
            .query(
                &format!(
                    "SELECT id FROM {s}.watersheds WHERE ST_Relate(planscape.pixel_cover(geom, {z}), \
                     ST_MakeEnvelope($1, $2, $3, $4, 3857), 'T********')"
                ),
                &[&(b.xmin - pad), &(b.ymin - pad), &(b.xmax + pad), &(b.ymax + pad)],
            )
            .await
            .expect("covers")
            .iter()
            .map(|r| r.get::<_, i64>(0))
            .collect();
        assert!(!served.is_empty(), "{tile} is empty");
        let missing: Vec<_> = expected.difference(&served).take(5).collect();
        let extra: Vec<_> = served.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{tile}: {} served, {} expected; missing e.g. {missing:?}, extra e.g. {extra:?}",
            served.len(),
            expected.len()
        );
    }

    // Change one feature's geometry into a 10 x 10 pixel square (z6 pixels) in the
    // middle of the z6 tile: the very next tile shows it, without waiting for anything.
    let tile = TileId::containing(-119.6, 37.8, 6);
    let (doc, _) = tile_of(&server, tile).await;
    let id = features(&doc).first().map(id_of).expect("a feature");
    let b = tile.bounds();
    let pixel = (b.xmax - b.xmin) / 256.0;
    let (cx, cy) = ((b.xmin + b.xmax) / 2.0, (b.ymin + b.ymax) / 2.0);
    let side = 10.0 * pixel;
    let old_copy = stored_area(&scratch.client, &source, id).await;
    // Hold the refresh back (it waits on this lock on the feature's copies), so that the
    // next tile can only show the change by computing the dirty row live.
    let mut holder = planscape::db::connect(&db_config()).await.expect("connect");
    let hold = holder.transaction().await.expect("begin");
    hold.execute(
        "SELECT 1 FROM planscape.lowzoom_features WHERE source = $1 AND id = $2 FOR UPDATE",
        &[&source, &id],
    )
    .await
    .expect("lock the copies");
    scratch
        .client
        .execute(
            &format!(
                "UPDATE {s}.watersheds SET geom = ST_Multi(ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, 3857), 4326)) \
                 WHERE id = $5"
            ),
            &[&(cx + 0.3 * pixel), &(cy + 0.3 * pixel), &(cx + 0.3 * pixel + side), &(cy + 0.3 * pixel + side), &id],
        )
        .await
        .expect("update");
    let area_of = |doc: &Value| -> f64 {
        features(doc)
            .iter()
            .filter(|f| id_of(f) == id)
            .map(|f| geojson_area(&f["geometry"]))
            .sum()
    };
    let (at_once, _) = tile_of(&server, tile).await;
    let area = area_of(&at_once);
    // The square covers 10 x 10 pixel centres.
    assert!(
        (area - side * side).abs() < 0.02 * side * side,
        "at once: area {area}, expected {}",
        side * side
    );

    // The copy is still the old one: the tile computed the changed row live.
    assert!((stored_area(&scratch.client, &source, id).await - old_copy).abs() < 1e-6 * old_copy);

    // Released, the refresh (started by the change notification) writes the copies;
    // the tile stays the same.
    hold.commit().await.expect("release");
    wait_for(
        &scratch,
        &format!(
            "SELECT NOT EXISTS (SELECT 1 FROM planscape.lowzoom_dirty WHERE source = '{source}')"
        ),
    )
    .await;
    let stored = stored_area(&scratch.client, &source, id).await;
    assert!(
        (stored - side * side).abs() < 0.02 * side * side,
        "stored {stored}"
    );
    let (refreshed, _) = tile_of(&server, tile).await;
    assert!((area_of(&refreshed) - area).abs() < 1e-6 * area);

    // Deleted: gone from the next tile, then its copies are dropped by the refresh.
    scratch
        .client
        .execute(&format!("DELETE FROM {s}.watersheds WHERE id = $1"), &[&id])
        .await
        .expect("delete");
    let (after_delete, _) = tile_of(&server, tile).await;
    assert!(!features(&after_delete).iter().any(|f| id_of(f) == id));
    wait_for(
        &scratch,
        &format!(
            "SELECT NOT EXISTS (SELECT 1 FROM planscape.lowzoom_features \
             WHERE source = '{source}' AND id = {id})"
        ),
    )
    .await;

    server.stop().await;
    scratch
        .client
        .execute(
            "DELETE FROM planscape.lowzoom_features WHERE source = $1",
            &[&source],
        )
        .await
        .expect("cleanup copies");
    scratch
        .client
        .execute(
            "DELETE FROM planscape.lowzoom_sources WHERE source = $1",
            &[&source],
        )
        .await
        .expect("cleanup sources");
    scratch.cleanup().await;
}
