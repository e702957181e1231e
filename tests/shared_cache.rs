//! The shared cache level and shared limits, with two servers and one real Redis
//! (`scripts/redis.sh`): a tile rendered by one server is served by the other without
//! rendering (both encodings, the same ETag); a data change makes both serve the new
//! tile; Redis stopped in the middle of a load fails no request, and shared hits resume
//! once it is back; a corrupt or truncated entry is ignored and rendered again; a tile
//! over the size cap is not written; plan tiles never reach Redis; failed logins split
//! across the servers reach the limit together, and each server counts on its own while
//! Redis is down; over TLS with an auth token (as ElastiCache) tiles are shared, and a
//! wrong token or an untrusted certificate only means rendering. Tiles go through `planscape serve` processes (each with its own
//! `/metrics`); the API tests run two in-process servers on real sockets.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::api::{API, call, signup};
use common::cli::ServeProcess;
use common::redis::Redis;
use common::{Scratch, TestServer, client, gdal_decode, sample, shared_data, unique};
use planscape::tile::TileId;
use reqwest::Method;
use serde_json::{Value, json};

/// Two servers' worth of configuration over the scratch counties and one Redis.
struct Setup {
    /// The vector layer's name.
    layer: String,
    /// The key prefix of this test.
    prefix: String,
    redis_url: String,
    config: String,
}

impl Setup {
    /// A counties layer and a raster layer, the shared level at `redis_url` under a prefix
    /// of the test's own, with `cache` TOML in `[cache]` and `shared` in `[cache.shared]`.
    fn new(scratch: &Scratch, redis_url: &str, cache: &str, shared: &str) -> Self {
        let layer = unique("shared").replace('_', "-");
        let prefix = format!("{}:", unique("test"));
        let config = format!(
            "[cache]\n{cache}\n[cache.shared]\nprefix = \"{prefix}\"\nttl_s = 3600\n\
             timeout_ms = 500\nbreaker_failures = 2\nbreaker_cooldown_ms = 300\n{shared}\n\
             [layers.{layer}]\ntype = \"vector\"\ntable = \"{}.counties\"\nid = \"id\"\n\
             properties = [\"name\"]\n\
             [layers.{layer}-raster]\ntype = \"raster\"\npath = \"{}\"\nstyle = \"viridis\"\n\
             range = [25, 752]\n",
            scratch.schema,
            shared_data("planscape/test_raster.tif").display()
        );
        Self {
            layer,
            prefix,
            redis_url: redis_url.to_owned(),
            config,
        }
    }

    async fn serve(&self) -> ServeProcess {
        ServeProcess::start(
            &self.config,
            &[("PLANSCAPE_SHARED_CACHE_URL", &self.redis_url)],
        )
        .await
    }

    fn path(&self, tile: TileId) -> String {
        format!("/tiles/{}/{}/{}/{}.mvt", self.layer, tile.z, tile.x, tile.y)
    }

    /// The Redis key of `tile` under any generation ends with this.
    fn key_end(tile: TileId) -> String {
        format!(":{}/{}/{}.mvt", tile.z, tile.x, tile.y)
    }
}

/// Tiles the server rendered for `layer` (from its `/metrics`).
async fn renders(server: &ServeProcess, layer: &str) -> f64 {
    sample(
        &server.metrics().await,
        "tile_render_seconds_count",
        &[&format!("layer=\"{layer}\"")],
    )
}

/// The server's shared-level lookups of `layer` with `result`.
async fn shared(server: &ServeProcess, layer: &str, result: &str) -> f64 {
    sample(
        &server.metrics().await,
        "shared_cache_requests_total",
        &[
            &format!("layer=\"{layer}\""),
            &format!("result=\"{result}\""),
        ],
    )
}

/// Waits until a key of `tile` is in Redis (the write happens behind the response);
/// returns it.
async fn written(redis: &Redis, prefix: &str, tile: TileId) -> String {
    let end = Setup::key_end(tile);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(key) = redis
            .keys(&format!("{prefix}tile:"))
            .await
            .into_iter()
            .find(|k| k.ends_with(&end))
        {
            return key;
        }
        assert!(Instant::now() < deadline, "tile {tile} never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Status, ETag, Content-Encoding and body of a tile request.
async fn fetch(
    server: &ServeProcess,
    path: &str,
    gzip: bool,
) -> (u16, String, Option<String>, Vec<u8>) {
    let headers: &[(&str, &str)] = if gzip {
        &[("accept-encoding", "gzip")]
    } else {
        &[]
    };
    let response = server.get(path, headers).await;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, encoding) = (
        header("etag").unwrap_or_default(),
        header("content-encoding"),
    );
    let body = response.bytes().await.expect("body").to_vec();
    (status, etag, encoding, body)
}

/// Tiles over California at zoom `z` (x and y ranges of the state's box).
fn california(z: u8) -> Vec<TileId> {
    let nw = TileId::containing(-124.4, 42.0, z);
    let se = TileId::containing(-114.1, 32.5, z);
    (nw.x..=se.x)
        .flat_map(|x| (nw.y..=se.y).map(move |y| TileId { z, x, y }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_rendered_by_one_server_is_served_by_the_other_without_rendering() {
    let redis = Redis::suite();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 64", "");
    let (a, b) = (setup.serve().await, setup.serve().await);
    let tile = TileId { z: 7, x: 20, y: 49 };
    let path = setup.path(tile);

    let (status, etag_a, encoding, gzip_a) = fetch(&a, &path, true).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let (_, plain_etag_a, _, plain_a) = fetch(&a, &path, false).await;
    assert_eq!(renders(&a, &setup.layer).await, 1.0);
    let key = written(&redis, &setup.prefix, tile).await;
    let ttl = redis.ttl(&key).await;
    assert!(
        ttl > 0 && ttl <= 3600,
        "the entry expires as configured: {ttl}"
    );

    // B has never seen the tile: it comes from Redis, byte for byte, in both encodings.
    let (status, etag_b, encoding, gzip_b) = fetch(&b, &path, true).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    assert_eq!((etag_b, gzip_b), (etag_a, gzip_a));
    let (_, plain_etag_b, encoding, plain_b) = fetch(&b, &path, false).await;
    assert_eq!(encoding, None);
    assert_eq!((plain_etag_b, &plain_b), (plain_etag_a, &plain_a));
    assert_eq!(renders(&b, &setup.layer).await, 0.0, "B rendered nothing");
    assert_eq!(shared(&b, &setup.layer, "hit").await, 1.0);
    assert_eq!(renders(&a, &setup.layer).await, 1.0, "nor did A again");
    let features = gdal_decode(&plain_b, tile.z, tile.x, tile.y);
    assert!(
        !features["features"]
            .as_array()
            .expect("features")
            .is_empty()
    );
    // A raster tile (PNG, no gzip copy) goes the same way.
    let raster = format!("{}-raster", setup.layer);
    let tilejson: Value = a
        .get(&format!("/tiles/{raster}"), &[])
        .await
        .json()
        .await
        .expect("TileJSON");
    let center = tilejson["center"].as_array().expect("center");
    let (lon, lat) = (
        center[0].as_f64().expect("lon"),
        center[1].as_f64().expect("lat"),
    );
    let zoom = u8::try_from(center[2].as_u64().expect("zoom")).expect("zoom");
    let png = TileId::containing(lon, lat, zoom);
    let png_path = format!("/tiles/{raster}/{}/{}/{}.png", png.z, png.x, png.y);
    let (status, etag_a, _, body_a) = fetch(&a, &png_path, true).await;
    assert_eq!(status, 200);
    let png_end = format!(":{}/{}/{}.png", png.z, png.x, png.y);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !redis
        .keys(&format!("{}tile:{raster}:", setup.prefix))
        .await
        .iter()
        .any(|k| k.ends_with(&png_end))
    {
        assert!(Instant::now() < deadline, "the PNG tile was never written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, etag_b, encoding, body_b) = fetch(&b, &png_path, true).await;
    assert_eq!((status, encoding), (200, None));
    assert_eq!((etag_b, body_b), (etag_a, body_a));
    assert_eq!(renders(&b, &raster).await, 0.0);
    assert_eq!(shared(&b, &raster, "hit").await, 1.0);
    // The shared level's latency is measured.
    let metrics = b.metrics().await;
    assert!(sample(&metrics, "shared_cache_op_seconds_count", &["op=\"get\""]) >= 1.0);
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_change_makes_both_servers_serve_the_new_tile() {
    let redis = Redis::suite();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 64", "");
    let (a, b) = (setup.serve().await, setup.serve().await);
    let tile = TileId { z: 7, x: 20, y: 49 };
    let path = setup.path(tile);
    let (_, _, _, old) = fetch(&a, &path, false).await;
    written(&redis, &setup.prefix, tile).await;
    assert_eq!(fetch(&b, &path, false).await.3, old);
    assert_eq!(shared(&b, &setup.layer, "hit").await, 1.0);

    scratch
        .client
        .batch_execute(&format!(
            "UPDATE {}.counties SET name = name || ' (renamed)'",
            scratch.schema
        ))
        .await
        .expect("update");
    // Each server hears of the change from the database; until then it may still serve
    // the old tile from its memory, never afterwards.
    let renamed = |body: &[u8]| {
        let decoded = gdal_decode(body, tile.z, tile.x, tile.y);
        let names: Vec<String> = decoded["features"]
            .as_array()
            .expect("features")
            .iter()
            .filter_map(|f| f["properties"]["name"].as_str().map(str::to_owned))
            .collect();
        !names.is_empty() && names.iter().all(|n| n.ends_with("(renamed)"))
    };
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, _, _, body) = fetch(server, &path, false).await;
            assert_eq!(status, 200);
            if renamed(&body) {
                break;
            }
            assert!(Instant::now() < deadline, "a server kept the old tile");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // And they keep serving the new one, from memory or Redis.
    for server in [&a, &b, &a, &b] {
        let (_, _, _, body) = fetch(server, &path, false).await;
        assert!(renamed(&body));
    }
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_under_load_fails_no_request_and_shared_hits_resume() {
    let redis = Redis::own();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    // No in-process cache: every request asks the shared level (or renders).
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 0", "");
    let (a, b) = (Arc::new(setup.serve().await), Arc::new(setup.serve().await));
    let load_tiles: Vec<TileId> = california(7).into_iter().chain(california(8)).collect();
    let (stop, requests, failures) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (a, b, stop, requests, failures) = (
                Arc::clone(&a),
                Arc::clone(&b),
                Arc::clone(&stop),
                Arc::clone(&requests),
                Arc::clone(&failures),
            );
            let (tiles, layer) = (load_tiles.clone(), setup.layer.clone());
            tokio::spawn(async move {
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let tile = tiles[i % tiles.len()];
                    let server = if i % 2 == 0 { &a } else { &b };
                    let path = format!("/tiles/{layer}/{}/{}/{}.mvt", tile.z, tile.x, tile.y);
                    let ok = match client().get(format!("{}{path}", server.base)).send().await {
                        Ok(r) => {
                            matches!(r.status().as_u16(), 200 | 204) && r.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 3;
                }
            })
        })
        .collect();
    let total_hits = |a: Arc<ServeProcess>, b: Arc<ServeProcess>, layer: String| async move {
        shared(&a, &layer, "hit").await + shared(&b, &layer, "hit").await
    };
    let wait_for = |what: &'static str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        move || assert!(Instant::now() < deadline, "{what}")
    };

    // Under load with Redis up, the servers share tiles.
    let check = wait_for("no shared hits under load");
    while total_hits(Arc::clone(&a), Arc::clone(&b), setup.layer.clone()).await < 5.0 {
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    redis.stop();
    let errors_before = sample(&a.metrics().await, "shared_cache_errors_total", &[])
        + sample(&a.metrics().await, "shared_cache_skipped_total", &[]);
    let check = wait_for("the outage was never noticed");
    let served_before = requests.load(Ordering::Relaxed);
    loop {
        let noticed = sample(&a.metrics().await, "shared_cache_errors_total", &[])
            + sample(&a.metrics().await, "shared_cache_skipped_total", &[]);
        if noticed > errors_before && requests.load(Ordering::Relaxed) > served_before + 50 {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The shared level is no dependency: both servers stay ready.
    for server in [&a, &b] {
        assert_eq!(server.get("/ready", &[]).await.status(), 200);
    }

    redis.start();
    // Fresh tiles rendered by A reach B through Redis again (after the breakers' probes).
    let before = total_hits(Arc::clone(&a), Arc::clone(&b), setup.layer.clone()).await;
    let check = wait_for("shared hits never resumed");
    let mut fresh = california(10).into_iter();
    loop {
        let tile = fresh.next().expect("enough fresh tiles");
        let path = setup.path(tile);
        assert!(matches!(fetch(&a, &path, false).await.0, 200 | 204));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(matches!(fetch(&b, &path, false).await.0, 200 | 204));
        if total_hits(Arc::clone(&a), Arc::clone(&b), setup.layer.clone()).await > before {
            break;
        }
        check();
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let (requests, failures) = (
        requests.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    assert!(requests > 100, "a real load: {requests} requests");
    assert_eq!(failures, 0, "{failures} of {requests} requests failed");
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_entries_are_ignored_and_rendered_again() {
    let redis = Redis::suite();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 64", "");
    let (a, b) = (setup.serve().await, setup.serve().await);
    let tiles = [TileId { z: 7, x: 20, y: 49 }, TileId { z: 7, x: 21, y: 50 }];
    let mut good = Vec::new();
    for tile in tiles {
        let (status, etag, _, body) = fetch(&a, &setup.path(tile), false).await;
        assert_eq!(status, 200);
        let key = written(&redis, &setup.prefix, tile).await;
        let entry = redis.get(&key).await.expect("entry");
        good.push((key, entry, etag, body));
    }
    // One entry cut in half, one with a byte changed in the middle.
    let (truncated, flipped) = (&good[0], &good[1]);
    redis
        .set_keep_ttl(&truncated.0, &truncated.1[..truncated.1.len() / 2])
        .await;
    let mut changed = flipped.1.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x5a;
    redis.set_keep_ttl(&flipped.0, &changed).await;

    for (tile, (_, _, etag, body)) in tiles.iter().zip(&good) {
        let (status, etag_b, _, body_b) = fetch(&b, &setup.path(*tile), false).await;
        assert_eq!((status, &etag_b, &body_b), (200, etag, body), "{tile}");
    }
    assert_eq!(shared(&b, &setup.layer, "corrupt").await, 2.0);
    assert_eq!(shared(&b, &setup.layer, "hit").await, 0.0);
    assert_eq!(renders(&b, &setup.layer).await, 2.0, "both rendered again");
    // B wrote the good entries back.
    for (key, entry, _, _) in &good {
        let deadline = Instant::now() + Duration::from_secs(30);
        while redis.get(key).await.as_ref() != Some(entry) {
            assert!(Instant::now() < deadline, "{key} never repaired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_over_the_size_cap_are_not_written() {
    let redis = Redis::suite();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 64", "max_entry_kb = 1");
    let a = setup.serve().await;
    // A tile over all of California: far more than 1 KiB.
    let tile = TileId { z: 5, x: 5, y: 12 };
    let (status, _, _, body) = fetch(&a, &setup.path(tile), false).await;
    assert_eq!(status, 200);
    assert!(body.len() > 1024, "{}", body.len());
    let metrics = a.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "shared_cache_writes_total",
            &["result=\"too_large\""]
        ),
        1.0
    );
    assert!(
        redis
            .keys(&format!("{}tile:", setup.prefix))
            .await
            .is_empty()
    );
    scratch.cleanup().await;
}

/// An in-process server with the shared level (for the API tests).
async fn api_server(redis_url: &str, config: &str) -> TestServer {
    TestServer::start_with_env(config, &[("PLANSCAPE_SHARED_CACHE_URL", redis_url)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_tiles_never_reach_the_shared_cache() {
    let redis = Redis::suite();
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let setup = Setup::new(&scratch, &redis.url, "size_mb = 64", "");
    let (a, b) = (
        api_server(&redis.url, &setup.config).await,
        api_server(&redis.url, &setup.config).await,
    );
    let (token, _, _) = signup(&a, "plantiles").await;
    let (status, _, plan) = call(
        &a,
        Method::POST,
        "/plans",
        Some(&token),
        Some(json!({"name": "private", "region": "sierra_nevada", "geometry":
            {"type": "Polygon", "coordinates": [[[-119.62, 37.78], [-119.61, 37.78], [-119.61, 37.79], [-119.62, 37.79], [-119.62, 37.78]]]}})),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    let id = plan["id"].as_i64().expect("id");
    // A public tile goes to Redis (the level works) ...
    let public = TileId::containing(-119.615, 37.785, 7);
    assert_eq!(a.get(&setup.path(public), &[]).await.status(), 200);
    let public_key = written(&redis, &setup.prefix, public).await;
    // ... the plan's tiles, asked of both servers, never do.
    for z in [7, 10, 12] {
        let tile = TileId::containing(-119.615, 37.785, z);
        for server in [&a, &b] {
            let response = client()
                .get(format!(
                    "{}/tiles/plans/{id}/{}/{}/{}.mvt",
                    server.base, tile.z, tile.x, tile.y
                ))
                .bearer_auth(&token)
                .send()
                .await
                .expect("plan tile");
            assert_eq!(response.status(), 200);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys = redis.keys(&setup.prefix).await;
    let generation = format!("{}gen:{}:", setup.prefix, setup.layer);
    let tiles = format!("{}tile:{}:", setup.prefix, setup.layer);
    // The public layer's generation and tile, and the sign-up's counter: nothing else.
    let limits = format!("{}limit:", setup.prefix);
    assert!(
        keys.iter()
            .all(|k| k.starts_with(&generation) || k.starts_with(&tiles) || k.starts_with(&limits)),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with(&tiles))
            .collect::<Vec<_>>(),
        [&public_key],
        "only the public tile is in Redis"
    );
    assert!(!keys.iter().any(|k| k.contains("plans")), "{keys:?}");
    b.stop().await;
    a.stop().await;
    scratch.cleanup().await;
}

const LIMITS: &str = "[accounts]\nlogin_max_failures = 3\nlogin_window_s = 600\n";

/// A wrong-password login for `mail`: the status.
async fn wrong_login(server: &TestServer, mail: &str) -> u16 {
    client()
        .post(format!("{}{API}/auth/login", server.base))
        .json(&json!({"email": mail, "password": "not the password at all"}))
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_split_across_servers_reach_the_limit_together() {
    let redis = Redis::suite();
    let prefix = format!("{}:", unique("limits"));
    let config = format!("{LIMITS}[cache.shared]\nprefix = \"{prefix}\"\n");
    let (a, b) = (
        api_server(&redis.url, &config).await,
        api_server(&redis.url, &config).await,
    );
    let (_, _, mail) = signup(&a, "limited").await;
    // Three failures in all (two on A, one on B): each server alone saw fewer than three.
    assert_eq!(wrong_login(&a, &mail).await, 401);
    assert_eq!(wrong_login(&b, &mail).await, 401);
    assert_eq!(wrong_login(&a, &mail).await, 401);
    // The fourth is refused whichever server answers.
    assert_eq!(wrong_login(&b, &mail).await, 429);
    assert_eq!(wrong_login(&a, &mail).await, 429);
    let (status, _, body) = call(
        &b,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": mail, "password": "a good long password"})),
    )
    .await;
    assert_eq!(status, 429, "even the right password waits: {body}");
    // The counters are in Redis, under hashed keys (no email, no address).
    let keys = redis.keys(&format!("{prefix}limit:")).await;
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|k| !k.contains('@') && !k.contains("127.0.0.1")),
        "{keys:?}"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_each_server_counts_on_its_own() {
    let redis = Redis::own();
    let config = format!(
        "{LIMITS}[cache.shared]\nprefix = \"{}:\"\ntimeout_ms = 500\nbreaker_cooldown_ms = 300\n",
        unique("fallback")
    );
    let (a, b) = (
        api_server(&redis.url, &config).await,
        api_server(&redis.url, &config).await,
    );
    let (_, _, mail) = signup(&a, "fallback").await;
    redis.stop();
    // A counts its own failures and refuses the fourth ...
    for _ in 0..3 {
        assert_eq!(wrong_login(&a, &mail).await, 401);
    }
    assert_eq!(wrong_login(&a, &mail).await, 429);
    // ... while B, which saw none, still checks the password (per-server counting).
    assert_eq!(wrong_login(&b, &mail).await, 401);
    let (status, _, body): (u16, _, Value) = call(
        &b,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": mail, "password": "a good long password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    b.stop().await;
    a.stop().await;
}

/// `openssl ARGS` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A redis-server speaking only TLS (a certificate for localhost from a CA of the test's
/// own) and asking for a password, as ElastiCache with in-transit encryption and an auth
/// token does. Killed (and its folder removed) on drop.
struct TlsRedis {
    dir: std::path::PathBuf,
    port: u16,
    child: std::process::Child,
}

impl TlsRedis {
    fn start(token: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("planscape_redis_tls"));
        std::fs::create_dir_all(&dir).expect("folder");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-days",
            "2",
            "-subj",
            "/CN=Planscape test Redis CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        openssl(&dir, &ca);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        let mut csr = vec!["req", "-new"];
        csr.extend(ec);
        csr.extend([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&dir, &csr);
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = std::process::Command::new("redis-server")
            .current_dir(&dir)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
            ])
            .args([
                "--tls-cert-file",
                "server.crt",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
            .args(["--requirepass", token, "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/setup-debian.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { dir, port, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_are_shared_over_tls_with_an_auth_token() {
    let token = "an auth token of the TLS test";
    let redis = TlsRedis::start(token);
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    // The URL is given to each server below.
    let setup = Setup::new(&scratch, "", "size_mb = 64", "");
    let ca = redis.dir.join("ca.crt").display().to_string();
    // `trust`: the file of CA certificates the server trusts, as rustls-native-certs reads
    // the system's (SSL_CERT_FILE).
    let serve = |url: String, trust: String| {
        let config = setup.config.clone();
        async move {
            ServeProcess::start(
                &config,
                &[
                    ("PLANSCAPE_SHARED_CACHE_URL", url.as_str()),
                    ("SSL_CERT_FILE", trust.as_str()),
                ],
            )
            .await
        }
    };
    let good = format!(
        "rediss://:{}@localhost:{}",
        token.replace(' ', "%20"),
        redis.port
    );
    let (a, b) = (
        serve(good.clone(), ca.clone()).await,
        serve(good.clone(), ca.clone()).await,
    );
    let tile = TileId { z: 7, x: 20, y: 49 };
    let path = setup.path(tile);
    let (status, etag_a, _, body_a) = fetch(&a, &path, true).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sample(
        &a.metrics().await,
        "shared_cache_writes_total",
        &["result=\"ok\""],
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no write over TLS: {}",
            a.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, etag_b, _, body_b) = fetch(&b, &path, true).await;
    assert_eq!((status, etag_b, body_b), (200, etag_a, body_a.clone()));
    assert_eq!(shared(&b, &setup.layer, "hit").await, 1.0);
    assert_eq!(renders(&b, &setup.layer).await, 0.0);

    // A wrong token, or a server certificate from a CA nobody trusts: the shared level
    // gives nothing, and the tile is served all the same (rendered).
    for (url, trust) in [
        (
            format!("rediss://:not-the-token@localhost:{}", redis.port),
            ca.clone(),
        ),
        (good, "/dev/null".to_owned()),
    ] {
        let refused = serve(url, trust).await;
        let (status, _, _, body) = fetch(&refused, &path, true).await;
        assert_eq!((status, &body), (200, &body_a));
        assert!(sample(&refused.metrics().await, "shared_cache_errors_total", &[]) >= 1.0);
        assert_eq!(shared(&refused, &setup.layer, "hit").await, 0.0);
        assert_eq!(renders(&refused, &setup.layer).await, 1.0);
    }
    scratch.cleanup().await;
}
