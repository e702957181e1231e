//! The folder store (the embedded default): seeding writes complete files only,
//! `--dry-run` counts what a seed writes, `--shard auto/N` takes its index from the batch
//! engine's environment, and a pregenerated layer with write-back fills the folder.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cli::{assert_success, run_config_text, stderr};
use common::{TestServer, shared_data, unique};

const BBOX: &str = "-120.62,38.22,-119.98,38.62";

fn layers(store: &Path, pregenerated: &str) -> String {
    format!(
        "[store]\nurl = \"file://{store}\"\n\
         [layers.elevation]\ntype = \"raster\"\npath = \"{raster}\"\nstyle = \"viridis\"\nrange = [25, 752]\n{pregenerated}",
        store = store.display(),
        raster = shared_data("planscape/test_raster.tif").display(),
    )
}

fn files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(unique(name))
}

#[test]
fn dry_run_counts_what_the_seed_writes_and_auto_shards_read_the_index() {
    let store = scratch_dir("fs-seed");
    let config = layers(&store, "");
    let dry = run_config_text(
        &config,
        &[
            "seed",
            "elevation",
            "--zoom",
            "8-12",
            "--bbox",
            BBOX,
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert_success(&dry);
    let estimates: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON estimates");
    let planned: u64 = estimates
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["tiles"].as_u64().expect("tiles"))
        .sum();
    assert!(files(&store).is_empty(), "a dry run writes nothing");

    let out = run_config_text(
        &config,
        &[
            "seed",
            "elevation",
            "--zoom",
            "8-12",
            "--bbox",
            BBOX,
            "--json",
        ],
        &[],
    );
    assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["tiles"].as_u64(), Some(planned));
    let written = files(&store);
    assert_eq!(
        summary["written"].as_u64(),
        Some(written.len() as u64),
        "{summary}"
    );
    assert!(
        written
            .iter()
            .all(|f| f.ends_with(".png") && !f.contains(".tmp-"))
    );

    // `auto/2` with the Kubernetes index 1 is shard 1/2.
    let explicit = scratch_dir("fs-shard");
    let auto = scratch_dir("fs-auto");
    for (dir, shard, env) in [
        (&explicit, "1/2", vec![]),
        (&auto, "auto/2", vec![("JOB_COMPLETION_INDEX", "1")]),
    ] {
        let out = run_config_text(
            &layers(dir, ""),
            &[
                "seed",
                "elevation",
                "--zoom",
                "8-12",
                "--bbox",
                BBOX,
                "--shard",
                shard,
            ],
            &env,
        );
        assert_success(&out);
    }
    assert_eq!(files(&explicit), files(&auto));
    assert!(!files(&auto).is_empty() && files(&auto).len() < written.len());
    let missing = run_config_text(
        &config,
        &["seed", "elevation", "--zoom", "8", "--shard", "auto/2"],
        &[],
    );
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("JOB_COMPLETION_INDEX"));
    for dir in [store, explicit, auto] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pregenerated_layer_reads_the_folder_and_writes_back_misses() {
    let store = scratch_dir("fs-serve");
    let seeded = run_config_text(
        &layers(&store, ""),
        &["seed", "elevation", "--zoom", "11", "--bbox", BBOX],
        &[],
    );
    assert_success(&seeded);
    let before = files(&store);
    let stored = before.iter().next().expect("a seeded tile").clone();
    // Mark the stored file so that serving it from the folder is visible.
    let path = store.join(&stored);
    let original = std::fs::read(&path).expect("read tile");
    let marked = [&original[..], b"stored"].concat();
    std::fs::write(&path, &marked).expect("mark");

    let server = TestServer::start(&layers(
        &store,
        "[layers.elevation.pregenerated]\nfallback = \"render\"\nwrite_back = true\n",
    ))
    .await;
    let body = server
        .get(&format!("/tiles/{stored}"), &[])
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(body[..], marked[..], "served from the folder");

    // A zoom that was not seeded: rendered live, then written back.
    let tile = planscape::tile::TileId::containing(-120.3, 38.4, 12);
    let key = format!("elevation/12/{}/{}.png", tile.x, tile.y);
    let live = server.get(&format!("/tiles/{key}"), &[]).await;
    assert_eq!(live.status(), 200);
    let live = live.bytes().await.expect("body");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.join(&key).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read(store.join(&key)).expect("written back"),
        live.to_vec()
    );
    // A transparent tile (outside the raster) is not written back.
    let empty = server.get("/tiles/elevation/12/0/0.png", &[]).await;
    assert_eq!(empty.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!store.join("elevation/12/0/0.png").exists());
    server.stop().await;
    let _ = std::fs::remove_dir_all(store);
}
