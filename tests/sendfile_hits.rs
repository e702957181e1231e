//! Tile bodies sent from the cache's memory file with `sendfile` (`cache::arena`,
//! `http::zero_copy`): what arrives is, byte for byte, what a server that copies its
//! bodies sends, also while a small cache evicts bodies and gives their pages to others
//! under concurrent requests.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Scratch, TestServer};
use planscape::cache::arena::MIN_BODY;
use planscape::tile::TileId;

/// Every tile of `zooms` over the box `west`, `south`, `east`, `north` (degrees).
fn tiles_over(
    [west, south, east, north]: [f64; 4],
    zooms: std::ops::RangeInclusive<u8>,
) -> Vec<TileId> {
    let mut tiles = Vec::new();
    for z in zooms {
        let nw = TileId::containing(west, north, z);
        let se = TileId::containing(east, south, z);
        for x in nw.x..=se.x {
            for y in nw.y..=se.y {
                tiles.push(TileId { z, x, y });
            }
        }
    }
    tiles
}

/// The status and body of `path` with and without gzip.
async fn fetch(server: &TestServer, path: &str) -> [(u16, Vec<u8>); 2] {
    let mut out = [(0, Vec::new()), (0, Vec::new())];
    for (slot, headers) in out
        .iter_mut()
        .zip([&[][..], &[("accept-encoding", "gzip")][..]])
    {
        let response = server.get(path, headers).await;
        let status = response.status().as_u16();
        *slot = (status, response.bytes().await.expect("body").to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_sent_from_the_memory_file_are_the_copied_bytes() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    // Vector tiles (with gzip bodies) and raster tiles (large PNG bodies).
    let styles = concat!(env!("CARGO_MANIFEST_DIR"), "/styles");
    let layers = format!(
        "{}[layers.biomass]\ntype = \"raster\"\npath = \"{}\"\nstyle = \"turbo\"\nrange = [0, 225]\n",
        scratch.counties_layer(),
        common::shared_data("planscape/Baseline_2026_aboveground_total_live.tif").display(),
    );
    let config = |cache: &str| format!("styles_dir = \"{styles}\"\n[cache]\n{cache}\n{layers}");
    let copying = TestServer::start(&config("sendfile = false")).await;
    // 1 MiB: the tiles below do not fit, so bodies are evicted and their pages reused
    // while other requests are under way.
    let sending = Arc::new(TestServer::start(&config("size_mb = 1")).await);

    let counties = tiles_over([-124.5, 32.5, -114.0, 42.0], 3..=8);
    let biomass = tiles_over([-123.937, 44.242, -123.846, 44.308], 11..=16);
    let paths: Vec<String> = (counties.iter().map(|t| format!("/tiles/counties/{t}.mvt")))
        .chain(biomass.iter().map(|t| format!("/tiles/biomass/{t}.png")))
        .chain(biomass.iter().map(|t| format!("/tiles/biomass/{t}@2x.png")))
        .collect();
    let mut reference = BTreeMap::new();
    for path in &paths {
        reference.insert(path.clone(), fetch(&copying, path).await);
    }
    let bodies = reference
        .values()
        .flat_map(|r| r.iter().map(|(_, b)| b.len()));
    let in_file = bodies.clone().filter(|&len| len >= MIN_BODY).count();
    let total: usize = bodies.sum();
    assert!(
        in_file >= 10,
        "only {in_file} bodies of {MIN_BODY} bytes or more"
    );
    assert!(
        total > 2 << 20,
        "{total} bytes: the 1 MiB cache would not evict"
    );

    // Three rounds over all tiles from 8 concurrent clients.
    let reference = Arc::new(reference);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (server, reference, paths) =
            (Arc::clone(&sending), Arc::clone(&reference), paths.clone());
        workers.spawn(async move {
            let mut compared = 0;
            for round in 0..3 {
                for path in paths.iter().skip((worker + round) % 8).step_by(8) {
                    assert!(
                        fetch(&server, path).await == reference[path],
                        "{path} differs"
                    );
                    compared += 1;
                }
            }
            compared
        });
    }
    let mut compared = 0;
    while let Some(done) = workers.join_next().await {
        compared += done.expect("worker");
    }
    assert_eq!(compared, 3 * paths.len());

    // The sending server keeps bodies in its file (at most its size); the copying one
    // has no file.
    let file_bytes = |text: &str| common::sample(text, "tile_cache_file_bytes", &[]);
    // (One metrics registry per process: the gauge is the last scraped server's.)
    let metrics = sending.metrics().await;
    assert!(file_bytes(&metrics) > 0.0);
    assert!(file_bytes(&metrics) <= f64::from(1u32 << 20));
    assert!(copying.state.tiles.cache().arena().is_none());
    let metrics = copying.metrics().await;
    assert_eq!(file_bytes(&metrics), 0.0);

    copying.stop().await;
    if let Ok(server) = Arc::try_unwrap(sending) {
        server.stop().await;
    }
    scratch.cleanup().await;
}
