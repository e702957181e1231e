//! Data changes reach the next tile: a trigger NOTIFYs the server, the layer's version
//! changes, and the cached tile is no longer served.

mod common;

use std::time::{Duration, Instant};

use common::{Scratch, TestServer, gdal_decode};
use planscape::tile::TileId;

async fn names_in(server: &TestServer, tile: TileId) -> Vec<String> {
    let response = server
        .get(&format!("/tiles/counties/{tile}.mvt"), &[])
        .await;
    if response.status() == 204 {
        return Vec::new();
    }
    let body = response.bytes().await.expect("body");
    let doc = gdal_decode(&body, tile.z, tile.x, tile.y);
    let mut names: Vec<String> = doc["features"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| f["properties"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls until `check` holds (the notification travels asynchronously).
async fn eventually(
    server: &TestServer,
    tile: TileId,
    check: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names = names_in(server, tile).await;
        if check(&names) || Instant::now() > deadline {
            return names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_insert_delete_show_in_the_next_tile() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let server = TestServer::start(&scratch.counties_layer()).await;
    let tile = TileId::containing(-121.49, 38.58, 7);
    let (_, layer) = server.state.tiles.catalog().get("counties").expect("layer");
    let version_before = layer.version();

    let before = names_in(&server, tile).await;
    assert!(before.contains(&"Sacramento".to_owned()));
    // Served from the cache now.
    assert_eq!(names_in(&server, tile).await, before);

    let s = &scratch.schema;
    scratch
        .client
        .execute(
            &format!(
                "UPDATE {s}.counties SET name = 'Sacramento (renamed)' WHERE name = 'Sacramento'"
            ),
            &[],
        )
        .await
        .expect("update");
    let after_update = eventually(&server, tile, |n| {
        n.contains(&"Sacramento (renamed)".to_owned())
    })
    .await;
    assert!(
        after_update.contains(&"Sacramento (renamed)".to_owned()),
        "{after_update:?}"
    );
    assert!(!after_update.contains(&"Sacramento".to_owned()));
    assert!(layer.version() > version_before);

    scratch
        .client
        .execute(
            &format!("DELETE FROM {s}.counties WHERE name = 'Yolo'"),
            &[],
        )
        .await
        .expect("delete");
    let after_delete = eventually(&server, tile, |n| !n.contains(&"Yolo".to_owned())).await;
    assert!(
        !after_delete.contains(&"Yolo".to_owned()),
        "{after_delete:?}"
    );

    scratch
        .client
        .execute(
            &format!(
                "INSERT INTO {s}.counties VALUES (99999, 'New Area', \
                 ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(-121.6, 38.7), 4326), 0.05)))"
            ),
            &[],
        )
        .await
        .expect("insert");
    let after_insert = eventually(&server, tile, |n| n.contains(&"New Area".to_owned())).await;
    assert!(
        after_insert.contains(&"New Area".to_owned()),
        "{after_insert:?}"
    );

    scratch
        .client
        .execute(&format!("TRUNCATE {s}.counties"), &[])
        .await
        .expect("truncate");
    let after_truncate = eventually(&server, tile, |n| n.is_empty()).await;
    assert!(after_truncate.is_empty(), "{after_truncate:?}");

    server.stop().await;
    scratch.cleanup().await;
}
