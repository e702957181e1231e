//! One catalog: the conditions catalog's layers are seeded, served from the store and
//! purged like configured layers (the original pregenerated them into S3 with its
//! `create_tiles` command), against a real S3 API on loopback.

mod common;

use std::path::Path;

use aws_sdk_s3::Client;
use common::cli::{ConfigFile, assert_success, run, stderr};
use common::s3::{endpoint, keys, new_bucket, s3_at};
use common::{TestServer, unique};

/// Over the Sierra Nevada demo rasters.
const BBOX: &str = "-120.8,38.2,-120.2,38.7";
/// The normalized layer of the metric `tree_mortality` in region `sierra_nevada`.
const LAYER: &str = "sierra_nevada_tree_mortality";

/// A one-metric conditions catalog over generated demo rasters, and a configuration
/// serving it pregenerated from `bucket`.
fn setup(bucket: &str) -> String {
    let dir = std::env::temp_dir().join(unique("condition_layers"));
    let rasters = dir.join("rasters");
    planscape::demo::rasters::generate(&rasters, 2000.0, false).expect("demo rasters");
    let raster = |name: &str| rasters.join(format!("{name}.tif")).display().to_string();
    let catalog = format!(
        "[[regions]]\nname = \"sierra_nevada\"\ndisplay_name = \"Sierra Nevada\"\n\
         [[regions.pillars]]\nname = \"forest_resilience\"\ndisplay_name = \"Forest Resilience\"\n\
         [[regions.pillars.elements]]\nname = \"disturbance\"\ndisplay_name = \"Disturbance\"\n\
         [[regions.pillars.elements.metrics]]\nname = \"tree_mortality\"\ndisplay_name = \"Tree Mortality\"\n\
         raw = \"{raw}\"\nnormalized = \"{normalized}\"\ndata_units = \"%\"\nmin_value = 0\nmax_value = 100\n",
        raw = raster("tree_mortality"),
        normalized = raster("tree_mortality_normalized"),
    );
    std::fs::write(dir.join("conditions.toml"), catalog).expect("catalog");
    let toml = format!(
        "styles_dir = \"{styles}\"\n\
         [store]\nurl = \"s3://{bucket}/tiles\"\nendpoint = \"{endpoint}\"\npath_style = true\n\
         region = \"us-east-1\"\npublic_url = \"https://cdn.example.org/tiles\"\n\
         [conditions]\ncatalog = \"{catalog}\"\ndir = \"{built}\"\n\
         [conditions.pregenerated]\nfallback = \"empty\"\n",
        styles = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("styles")
            .display(),
        endpoint = endpoint(),
        catalog = dir.join("conditions.toml").display(),
        built = dir.join("built").display(),
    );
    toml
}

async fn object(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get object")
        .body
        .collect()
        .await
        .expect("read object")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_layers_are_seeded_served_from_the_store_and_purged() {
    let s3 = s3_at(&endpoint()).await;
    let bucket = new_bucket(&s3).await;
    let toml = setup(&bucket);
    let config = ConfigFile::new(&toml);
    let raw_layer = format!("{LAYER}_raw");

    // Seeded like any layer: the normalized and the raw layer of the metric.
    let out = run(
        &config,
        &[
            "seed", LAYER, &raw_layer, "--zoom", "6-8", "--bbox", BBOX, "--json",
        ],
    );
    assert_success(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert!(summary["written"].as_u64() > Some(0), "{summary}");
    assert_eq!(summary["failed"].as_u64(), Some(0), "{summary}");
    let stored = keys(&s3, &bucket, "tiles").await;
    let layer_tiles: Vec<&String> = stored
        .iter()
        .filter(|k| k.starts_with(&format!("{LAYER}/8/")))
        .collect();
    assert!(!layer_tiles.is_empty(), "{stored:?}");
    assert!(
        stored
            .iter()
            .any(|k| k.starts_with(&format!("{raw_layer}/8/")))
    );

    // Served from the store: TileJSON points at the bucket, tiles are the stored bytes,
    // and a tile the seed did not cover is empty (`fallback = "empty"`).
    let server = TestServer::start(&toml).await;
    let tilejson: serde_json::Value = server
        .get(&format!("/tiles/{LAYER}"), &[])
        .await
        .json()
        .await
        .expect("tilejson");
    assert_eq!(
        tilejson["tiles"][0],
        format!("https://cdn.example.org/tiles/{LAYER}/{{z}}/{{x}}/{{y}}.png")
    );
    let key = layer_tiles[0];
    let served = server.get(&format!("/tiles/{key}"), &[]).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    let body = served.bytes().await.expect("body");
    assert_eq!(
        body[..],
        object(&s3, &bucket, &format!("tiles/{key}")).await[..]
    );
    // Inside the raster's data, outside the seeded box.
    let (lon, lat) = (-119.6, 37.6);
    let bounds = &tilejson["bounds"];
    assert!(
        bounds[0].as_f64() < Some(lon) && bounds[3].as_f64() > Some(lat),
        "{bounds}"
    );
    let outside = planscape::tile::TileId::containing(lon, lat, 8);
    let empty = server
        .get(
            &format!("/tiles/{LAYER}/8/{}/{}.png", outside.x, outside.y),
            &[],
        )
        .await;
    assert_eq!(empty.status(), 200);
    assert_eq!(
        empty.bytes().await.expect("body")[..],
        planscape::source::raster::encode::transparent(256, planscape::tile::TileFormat::Png)
            .expect("transparent tile")[..]
    );
    server.stop().await;

    // Purged like any layer: only its own tiles go.
    assert_success(&run(&config, &["purge", LAYER, "--zoom", "6-8"]));
    let after = keys(&s3, &bucket, "tiles").await;
    assert!(
        !after.iter().any(|k| k.starts_with(&format!("{LAYER}/"))),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|k| k.starts_with(&format!("{raw_layer}/")))
    );

    // An unknown name is still refused before any work.
    let out = run(&config, &["seed", "nope", "--zoom", "6", "--bbox", BBOX]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown layer `nope`"),
        "{}",
        stderr(&out)
    );
}
