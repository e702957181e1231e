//! The tile store against a real S3 API on loopback (moto, started by scripts/s3.sh):
//! `planscape seed` into S3 matches the live responses byte for byte and header for
//! header, shards partition the tile list, `--resume` completes a killed run, purge
//! (CLI and admin API) removes tiles and cached copies, pregenerated layers are served
//! from S3, polygon coverage agrees with PostGIS, and bad input fails before any work.
//!
//! Needs `scripts/s3.sh start` and dummy AWS credentials in the environment (the test
//! script exports both); `PLANSCAPE_TEST_S3_ENDPOINT` points elsewhere.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use common::cli::{ConfigFile, assert_success, planscape_config, run, stderr};
use common::s3::{endpoint, keys, new_bucket, s3_at};
use common::{Scratch, TestServer, database_url, shared_data, unique};
use planscape::coverage::Coverage;
use planscape::tile::TileId;

/// Where the tiles are seeded (around `test_raster.tif`, in the Sierra Nevada foothills).
const BBOX: &str = "-120.62,38.22,-119.98,38.62";

/// Whether a key is an empty-tile record (`{layer}/_empty/...`), not a tile.
fn is_record(key: &str) -> bool {
    key.contains("/_empty/")
}

/// The tile keys of a listing, without the empty-tile records.
fn tile_keys<'a>(keys: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    keys.into_iter()
        .filter(|k| !is_record(k))
        .cloned()
        .collect()
}

/// The tiles the records among `objects` name, as `{layer}/{z}/{x}/{y}`.
fn recorded_empty(objects: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, body) in objects.iter().filter(|(k, _)| is_record(k)) {
        let mut parts = key.split('/');
        let (layer, _, z) = (
            parts.next().expect("layer"),
            parts.next(),
            parts.next().expect("zoom"),
        );
        for line in String::from_utf8_lossy(body).lines() {
            out.push(format!("{layer}/{z}/{line}"));
        }
    }
    out
}

/// Every object's body under `prefix/`.
async fn objects(s3: &Client, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in keys(s3, bucket, prefix).await {
        let obj = s3
            .get_object()
            .bucket(bucket)
            .key(format!("{prefix}/{key}"))
            .send()
            .await
            .expect("get");
        let body = obj
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec();
        out.insert(key, body);
    }
    out
}

/// A config with a vector layer (the counties of `scratch`) and a raster layer
/// (`test_raster.tif`), storing to S3 at the test endpoint.
fn layers_toml(scratch: &Scratch) -> String {
    format!(
        "[http]\ncache_control = \"public, max-age=123\"\n\
         [store]\nurl = \"s3://unused-default\"\nendpoint = \"{endpoint}\"\npath_style = true\nregion = \"us-east-1\"\n\
         {counties}\
         [layers.elevation]\ntype = \"raster\"\npath = \"{raster}\"\nstyle = \"viridis\"\nrange = [25, 752]\n",
        endpoint = endpoint(),
        counties = scratch.counties_layer(),
        raster = shared_data("planscape/test_raster.tif").display(),
    )
}

/// A configuration file of `toml` and the test database.
fn write_config(toml: &str) -> ConfigFile {
    ConfigFile::new(&format!(
        "{toml}\n[database]\nurl = \"{}\"\n",
        database_url()
    ))
}

/// The `--json` summary a seed prints.
fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|_| panic!("no JSON summary in {stdout:?}; stderr: {}", stderr(out)))
}

/// A bucket, a scratch schema with the counties, and a config serving them and
/// `test_raster.tif`.
async fn setup() -> (Client, String, Scratch, ConfigFile) {
    let s3 = s3_at(&endpoint()).await;
    let bucket = new_bucket(&s3).await;
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let config = write_config(&layers_toml(&scratch));
    (s3, bucket, scratch, config)
}

fn seed(config: &Path, to: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "seed",
        "counties",
        "elevation",
        "--zoom",
        "6-12",
        "--bbox",
        BBOX,
        "--to",
        to,
        "--json",
        "--concurrency",
        "4",
    ];
    args.extend_from_slice(extra);
    run(config, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_objects_are_the_live_tiles_with_the_live_headers() {
    let (s3, bucket, scratch, config) = setup().await;
    let out = seed(&config, &format!("s3://{bucket}/tiles"), &[]);
    assert!(out.status.success(), "seed failed: {}", stderr(&out));
    let sum = summary(&out);
    let mut stored = objects(&s3, &bucket, "tiles").await;
    let empties = recorded_empty(&stored);
    assert_eq!(sum["empty"].as_u64(), Some(empties.len() as u64));
    stored.retain(|k, _| !is_record(k));
    assert_eq!(sum["written"].as_u64(), Some(stored.len() as u64));
    assert_eq!(sum["failed"].as_u64(), Some(0));
    assert!(stored.keys().any(|k| k.starts_with("counties/")));
    assert!(stored.keys().any(|k| k.starts_with("elevation/12/")));

    let server = TestServer::start(&layers_toml(&scratch)).await;
    for (key, body) in &stored {
        let live = server
            .get(&format!("/tiles/{key}"), &[("accept-encoding", "gzip")])
            .await;
        assert_eq!(live.status(), 200, "{key}");
        let headers = live.headers().clone();
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(format!("tiles/{key}"))
            .send()
            .await
            .expect("head");
        let live_header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            head.content_type().map(str::to_owned),
            live_header("content-type"),
            "{key}"
        );
        assert_eq!(
            head.content_encoding().map(str::to_owned),
            live_header("content-encoding"),
            "{key}"
        );
        assert_eq!(
            head.cache_control().map(str::to_owned),
            Some("public, max-age=123".to_owned()),
            "{key}"
        );
        let live_body = live.bytes().await.expect("body");
        assert!(
            live_body[..] == body[..],
            "{key}: stored bytes differ from the live tile"
        );
    }

    // Every tile of the coverage that was not written is empty when served live.
    let coverage = Coverage::parse_bbox(BBOX).expect("bbox");
    let transparent =
        planscape::source::raster::encode::transparent(256, planscape::tile::TileFormat::Png)
            .expect("transparent tile");
    for z in 6..=12u8 {
        for t in coverage.tiles(z) {
            for (layer, ext) in [("counties", "mvt"), ("elevation", "png")] {
                let key = format!("{layer}/{}/{}/{}.{ext}", t.z, t.x, t.y);
                if stored.contains_key(&key) {
                    continue;
                }
                let live = server.get(&format!("/tiles/{key}"), &[]).await;
                let status = live.status();
                let body = live.bytes().await.expect("body");
                assert!(
                    status == 204 || body[..] == transparent[..],
                    "{key} is not stored but has content ({status})"
                );
            }
        }
    }
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_write_exactly_the_unsharded_set_and_resume_completes_a_killed_run() {
    let (s3, bucket, scratch, config) = setup().await;

    let whole = seed(&config, &format!("s3://{bucket}/whole"), &[]);
    assert_success(&whole);
    let expected = objects(&s3, &bucket, "whole").await;

    let mut written = 0;
    let mut shard_sets = Vec::new();
    for i in 0..3 {
        let prefix = format!("shard{i}");
        let shard = format!("{i}/3");
        let out = seed(
            &config,
            &format!("s3://{bucket}/{prefix}"),
            &["--shard", &shard],
        );
        assert_success(&out);
        written += summary(&out)["written"].as_u64().expect("written");
        shard_sets.push(keys(&s3, &bucket, &prefix).await);
    }
    let union = tile_keys(shard_sets.iter().flatten());
    let expected_tiles = tile_keys(expected.keys());
    assert_eq!(union, expected_tiles);
    assert_eq!(
        written,
        expected_tiles.len() as u64,
        "no tile written by two shards"
    );
    assert!(
        shard_sets.iter().all(|s| !s.is_empty()),
        "every shard has work"
    );

    // Kill a run part-way, then resume it.
    let mut child = planscape_config(
        &config,
        &[
            "seed",
            "counties",
            "elevation",
            "--zoom",
            "6-12",
            "--bbox",
            BBOX,
            "--to",
            &format!("s3://{bucket}/killed"),
            "--concurrency",
            "1",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn seed");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = tile_keys(&keys(&s3, &bucket, "killed").await).len();
        if n >= expected_tiles.len() / 4 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("kill");
    let _ = child.wait();
    let left = objects(&s3, &bucket, "killed").await;
    let partial = tile_keys(left.keys()).len();
    assert!(
        partial > 0 && partial < expected_tiles.len(),
        "killed mid-run: {partial}"
    );
    let resumed = seed(&config, &format!("s3://{bucket}/killed"), &["--resume"]);
    assert_success(&resumed);
    let sum = summary(&resumed);
    // Skipped: the tiles written before the kill and the empty ones recorded by then.
    assert_eq!(
        sum["skipped"].as_u64(),
        Some((partial + recorded_empty(&left).len()) as u64)
    );
    // Tiles and records alike: the same objects, byte for byte.
    assert_eq!(objects(&s3, &bucket, "killed").await, expected);
    scratch.cleanup().await;
}

/// Off the coast at San Francisco: half land (counties), half ocean (empty tiles).
const COAST: &str = "-123.4,37.4,-122.3,38.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_tiles_are_recorded_and_resume_skips_them() {
    let (s3, bucket, scratch, config) = setup().await;
    let seed_coast = |prefix: &str, extra: &[&str]| {
        let to = format!("s3://{bucket}/{prefix}");
        let mut args = vec![
            "seed", "counties", "--zoom", "7-12", "--bbox", COAST, "--to", &to, "--json",
        ];
        args.extend_from_slice(extra);
        let out = run(&config, &args);
        assert_success(&out);
        summary(&out)
    };
    let first = seed_coast("coast", &[]);
    let stored = objects(&s3, &bucket, "coast").await;
    let written = tile_keys(stored.keys());
    let empties: BTreeSet<String> = recorded_empty(&stored).into_iter().collect();
    assert_eq!(first["empty"].as_u64(), Some(empties.len() as u64));
    assert_eq!(first["written"].as_u64(), Some(written.len() as u64));
    assert!(!empties.is_empty() && !written.is_empty(), "{first}");
    // One record per zoom, named for the shard and the stored form.
    assert!(
        stored
            .keys()
            .filter(|k| is_record(k))
            .all(|k| k.starts_with("counties/_empty/") && k.ends_with("/0-of-1.mvt.txt")),
        "{:?}",
        stored.keys().filter(|k| is_record(k)).collect::<Vec<_>>()
    );

    // Every tile of the coverage is written or recorded empty, never both; and every
    // recorded one is empty when served live.
    let coverage = Coverage::parse_bbox(COAST).expect("bbox");
    let all: BTreeSet<String> = (7..=12u8)
        .flat_map(|z| coverage.tiles(z))
        .map(|t| format!("counties/{}/{}/{}", t.z, t.x, t.y))
        .collect();
    let written_tiles: BTreeSet<String> = written
        .iter()
        .map(|k| k.trim_end_matches(".mvt").to_owned())
        .collect();
    assert!(written_tiles.is_disjoint(&empties));
    assert_eq!(
        written_tiles
            .union(&empties)
            .cloned()
            .collect::<BTreeSet<_>>(),
        all
    );
    let server = TestServer::start(&layers_toml(&scratch)).await;
    for tile in &empties {
        let live = server.get(&format!("/tiles/{tile}.mvt"), &[]).await;
        assert_eq!(live.status(), 204, "{tile} was recorded empty");
    }
    server.stop().await;

    // A resumed complete run renders nothing: stored and empty tiles are both skipped,
    // and the objects stay as they were.
    let again = seed_coast("coast", &["--resume"]);
    assert_eq!(again["skipped"].as_u64(), Some(all.len() as u64), "{again}");
    assert_eq!(again["written"].as_u64(), Some(0));
    assert_eq!(again["empty"].as_u64(), Some(0));
    assert_eq!(objects(&s3, &bucket, "coast").await, stored);

    // Two shards record disjoint parts whose union is the unsharded record.
    let mut sharded = Vec::new();
    for shard in ["0/2", "1/2"] {
        seed_coast("sharded", &["--shard", shard]);
    }
    let shard_objects = objects(&s3, &bucket, "sharded").await;
    for (key, body) in shard_objects.iter().filter(|(k, _)| is_record(k)) {
        assert!(key.ends_with("-of-2.mvt.txt"), "{key}");
        let one = BTreeMap::from([(key.clone(), body.clone())]);
        sharded.push(recorded_empty(&one).into_iter().collect::<BTreeSet<_>>());
    }
    let merged: BTreeSet<String> = sharded.iter().flatten().cloned().collect();
    assert_eq!(merged, empties);
    assert_eq!(
        sharded.iter().map(BTreeSet::len).sum::<usize>(),
        empties.len(),
        "no tile recorded by two shards"
    );

    // Purge removes the tiles and the records of its zooms.
    let out = run(
        &config,
        &[
            "purge",
            "counties",
            "--zoom",
            "7-12",
            "--to",
            &format!("s3://{bucket}/coast"),
        ],
    );
    assert_success(&out);
    assert!(keys(&s3, &bucket, "coast").await.is_empty());
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pregenerated_layers_are_served_from_s3_and_purged() {
    let (s3, bucket, scratch, _) = setup().await;
    let token = "test-admin-token-0123456789";
    let toml = layers_toml(&scratch)
        .replace(
            "url = \"s3://unused-default\"",
            &format!(
                "url = \"s3://{bucket}/tiles\"\npublic_url = \"https://cdn.example.org/tiles\""
            ),
        )
        .replace(
            "properties = [\"name\"]\n",
            "properties = [\"name\"]\n[layers.counties.pregenerated]\nfallback = \"empty\"\n",
        );
    let config = write_config(&toml);
    let out = run(
        &config,
        &[
            "seed", "counties", "--zoom", "7-9", "--bbox", BBOX, "--json",
        ],
    );
    assert_success(&out);
    let mut stored = objects(&s3, &bucket, "tiles").await;
    stored.retain(|k, _| !is_record(k));
    let (key, body) = stored.iter().next().expect("some tiles");

    let server = TestServer::start_with_env(
        &format!(
            "{toml}[layers.gone]\ntype = \"raster\"\npath = \"/nonexistent/gone.tif\"\nstyle = \"viridis\"\nrange = [0, 1]\n"
        ),
        &[("PLANSCAPE_ADMIN_TOKEN", token)],
    )
    .await;
    let tilejson: serde_json::Value = server
        .get("/tiles/counties", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        tilejson["tiles"][0],
        "https://cdn.example.org/tiles/counties/{z}/{x}/{y}.mvt"
    );
    let from_store = server
        .get(&format!("/tiles/{key}"), &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(from_store.status(), 200);
    assert_eq!(from_store.bytes().await.expect("body")[..], body[..]);
    // Without gzip the server inflates the stored object.
    let plain = server.get(&format!("/tiles/{key}"), &[]).await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    // The data changes in PostGIS (the cache is invalidated); the layer keeps serving
    // the stored tile.
    scratch
        .client
        .batch_execute(&format!("DELETE FROM {}.counties", scratch.schema))
        .await
        .expect("delete rows");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = server
        .get(&format!("/tiles/{key}"), &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.expect("body")[..], body[..]);
    // A tile outside the seeded area: the fallback is "empty".
    let outside = server.get("/tiles/counties/9/0/0.mvt", &[]).await;
    assert_eq!(outside.status(), 204);

    // The admin API: no token, a wrong token, bad input, then a purge.
    let purge_url = format!("{}/admin/tiles/counties?zoom=7-9", server.base);
    let client = common::client();
    let anonymous = client.delete(&purge_url).send().await.expect("send");
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .delete(&purge_url)
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    for bad in ["zoom=9-7", "bbox=1,2,3", "color=red"] {
        let r = client
            .delete(format!("{}/admin/tiles/counties?{bad}", server.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.expect("json error");
        assert!(body["error"]["message"].is_string());
    }
    let unknown = client
        .delete(format!("{}/admin/tiles/nope", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404);
    let purged = client
        .delete(&purge_url)
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(purged.status(), 200);
    let purged: serde_json::Value = purged.json().await.expect("json");
    assert_eq!(purged["deleted"].as_u64(), Some(stored.len() as u64));
    assert!(keys(&s3, &bucket, "tiles").await.is_empty());
    // The cached copy went with it: the same tile is now empty.
    let after = server.get(&format!("/tiles/{key}"), &[]).await;
    assert_eq!(after.status(), 204);
    // A layer whose source does not open (its raster is gone) can still be purged.
    let broken = client
        .delete(format!("{}/admin/tiles/gone?zoom=5-6", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(broken.status(), 200);
    let broken: serde_json::Value = broken.json().await.expect("json");
    assert_eq!(broken["deleted"].as_u64(), Some(0));
    server.stop().await;

    // The CLI purge, with a bbox that only removes part of the tiles.
    let out = run(
        &config,
        &[
            "seed",
            "elevation",
            "--zoom",
            "11",
            "--bbox",
            BBOX,
            "--json",
        ],
    );
    assert_success(&out);
    let before = keys(&s3, &bucket, "tiles").await;
    let out = run(
        &config,
        &[
            "purge",
            "elevation",
            "--zoom",
            "11",
            "--bbox",
            "-120.62,38.22,-120.3,38.4",
        ],
    );
    assert_success(&out);
    let after = keys(&s3, &bucket, "tiles").await;
    assert!(
        after.len() < before.len() && !after.is_empty(),
        "{} -> {}",
        before.len(),
        after.len()
    );
    let gone = TileId::containing(-120.35, 38.35, 11);
    assert!(before.contains(&format!("elevation/11/{}/{}.png", gone.x, gone.y)));
    assert!(!after.contains(&format!("elevation/11/{}/{}.png", gone.x, gone.y)));
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polygon_coverage_matches_postgis() {
    let scratch = Scratch::new().await;
    for file in [
        "planscape/sierra_nevada_region.geojson",
        "planscape/sandiego.geojson",
    ] {
        let text = std::fs::read_to_string(shared_data(file)).expect("geojson");
        let coverage = Coverage::from_geojson(&text).expect("coverage");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        let geometries: Vec<String> = match doc["type"].as_str() {
            Some("FeatureCollection") => doc["features"]
                .as_array()
                .expect("features")
                .iter()
                .map(|f| f["geometry"].to_string())
                .collect(),
            Some("Feature") => vec![doc["geometry"].to_string()],
            _ => vec![text.clone()],
        };
        for z in [5u8, 7, 9, 11] {
            let ours: BTreeSet<(u32, u32)> = coverage.tiles(z).iter().map(|t| (t.x, t.y)).collect();
            let b = coverage.bounds();
            let nw = planscape::tile::mercator_to_lonlat(b.xmin, b.ymax);
            let se = planscape::tile::mercator_to_lonlat(b.xmax, b.ymin);
            let (t0, t1) = (
                TileId::containing(nw.0, nw.1, z),
                TileId::containing(se.0, se.1, z),
            );
            let rows = scratch
                .client
                .query(
                    "WITH g AS (SELECT ST_Transform(ST_Union(ST_SetSRID(ST_GeomFromGeoJSON(j), 4326)), 3857) AS geom \
                                FROM unnest($1::text[]) AS j) \
                     SELECT x, y FROM g, generate_series($2::int - 1, $3::int + 1) x, generate_series($4::int - 1, $5::int + 1) y \
                     WHERE x >= 0 AND y >= 0 AND ST_Intersects(g.geom, ST_TileEnvelope($6::int, x, y))",
                    &[
                        &geometries,
                        &(t0.x as i32),
                        &(t1.x as i32),
                        &(t0.y as i32),
                        &(t1.y as i32),
                        &i32::from(z),
                    ],
                )
                .await
                .expect("postgis tiles");
            let theirs: BTreeSet<(u32, u32)> = rows
                .iter()
                .map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i32>(1) as u32))
                .collect();
            assert_eq!(ours, theirs, "{file} z{z}");
        }
    }
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_fail_before_any_work() {
    let (s3, bucket, scratch, config) = setup().await;
    let dir = config.parent().expect("dir").to_path_buf();
    let not_geojson = dir.join("not.geojson");
    std::fs::write(&not_geojson, "<kml/>").expect("write");
    let empty = dir.join("empty.geojson");
    std::fs::write(&empty, r#"{"type":"FeatureCollection","features":[]}"#).expect("write");
    let to = format!("s3://{bucket}/t");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            // The world at z13-14: a tile list too large to hold, refused before work.
            vec![
                "counties".into(),
                "--zoom".into(),
                "13-14".into(),
                "--bbox".into(),
                "-180,-85,180,85".into(),
                "--to".into(),
                to.clone(),
            ],
            "more than 20000000 for one run",
        ),
        (
            vec![
                "nope".into(),
                "--zoom".into(),
                "6-8".into(),
                "--to".into(),
                to.clone(),
            ],
            "unknown layer `nope`",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "9-6".into(),
                "--to".into(),
                to.clone(),
            ],
            "inverted",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--geojson".into(),
                not_geojson.display().to_string(),
                "--to".into(),
                to.clone(),
            ],
            "not GeoJSON",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--geojson".into(),
                empty.display().to_string(),
                "--to".into(),
                to.clone(),
            ],
            "no polygon",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--bbox".into(),
                "1,2,3".into(),
                "--to".into(),
                to.clone(),
            ],
            "invalid bbox",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--to".into(),
                "s3://no-such-bucket-here/t".into(),
            ],
            "NoSuchBucket|NotFound",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--shard".into(),
                "3/3".into(),
                "--to".into(),
                to.clone(),
            ],
            "shard",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "20-22".into(),
                "--to".into(),
                to.clone(),
            ],
            "outside layer",
        ),
        (
            vec![
                "counties".into(),
                "--zoom".into(),
                "6".into(),
                "--region".into(),
                "sierra".into(),
                "--to".into(),
                to.clone(),
            ],
            "regions",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["seed"];
        all.extend(args.iter().map(String::as_str));
        let out = run(&config, &all);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            expected.split('|').any(|e| err.contains(e)),
            "{args:?}: expected `{expected}` in: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(keys(&s3, &bucket, "t").await.is_empty(), "nothing written");
    scratch.cleanup().await;
}

/// S3 going away mid-run: the SDK retries, then the tiles count as failed (none dropped)
/// and the exit status says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_mid_run_fails_the_seed_without_losing_count() {
    let moto = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".data/tools/moto/bin/moto_server");
    assert!(
        moto.exists(),
        "run scripts/s3.sh start first (installs moto)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut server = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a second moto");
    let own_endpoint = format!("http://127.0.0.1:{port}");
    let s3 = s3_at(&own_endpoint).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let bucket = loop {
        let bucket = unique("fail").replace('_', "-");
        if s3.create_bucket().bucket(&bucket).send().await.is_ok() {
            break bucket;
        }
        assert!(Instant::now() < deadline, "moto did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let config = write_config(&layers_toml(&scratch).replace(&endpoint(), &own_endpoint));
    let child = planscape_config(
        &config,
        &[
            "seed",
            "counties",
            "elevation",
            "--zoom",
            "6-12",
            "--bbox",
            BBOX,
            "--to",
            &format!("s3://{bucket}/t"),
            "--concurrency",
            "2",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn seed");
    let deadline = Instant::now() + Duration::from_secs(120);
    while keys(&s3, &bucket, "t").await.len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().expect("kill moto");
    let _ = server.wait();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("seed output");
    assert!(!out.status.success(), "a seed with failed tiles must fail");
    let sum = summary(&out);
    let count = |k: &str| sum[k].as_u64().expect(k);
    assert!(count("failed") > 0, "{sum}");
    assert!(count("written") >= 5, "{sum}");
    assert_eq!(
        count("written") + count("empty") + count("failed") + count("skipped"),
        count("tiles"),
        "every tile accounted for: {sum}"
    );
    assert!(stderr(&out).contains("failed"), "{}", stderr(&out));
    scratch.cleanup().await;
}
