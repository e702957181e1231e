//! The database going away: cached tiles keep being served, uncached ones get 503 with a
//! JSON error, `/ready` says so, and everything recovers without a restart when the
//! database returns. Stops and starts the embedded cluster (`scripts/db.sh`), so this
//! binary holds a single test: `cargo test` runs test binaries one after another.

mod common;

use std::time::{Duration, Instant};

use common::{Scratch, TestServer, db_script};
use planscape::tile::TileId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_is_survived() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let config = format!(
        "[database]\nconnect_timeout_ms = 1000\n{}",
        scratch.counties_layer()
    );
    let server = TestServer::start(&config).await;
    let cached = format!(
        "/tiles/counties/{}.mvt",
        TileId::containing(-121.49, 38.58, 7)
    );
    let uncached = format!(
        "/tiles/counties/{}.mvt",
        TileId::containing(-118.25, 34.05, 8)
    );
    let cached_body = server.get(&cached, &[]).await.bytes().await.expect("body");
    assert!(!cached_body.is_empty());

    db_script("stop");
    {
        // Brings the database back even when an assertion below fails.
        struct StartOnDrop;
        impl Drop for StartOnDrop {
            fn drop(&mut self) {
                db_script("start");
            }
        }
        let _restart = StartOnDrop;
        let hit = server.get(&cached, &[]).await;
        assert_eq!(
            hit.status(),
            200,
            "cached tile served while the database is down"
        );
        assert_eq!(hit.bytes().await.expect("body"), cached_body);

        let miss = server.get(&uncached, &[]).await;
        assert_eq!(miss.status(), 503);
        assert!(miss.headers().contains_key("retry-after"));
        let body: serde_json::Value = miss.json().await.expect("JSON error");
        assert_eq!(body["error"]["code"], "database_unavailable");

        let ready = server.get("/ready", &[]).await;
        assert_eq!(ready.status(), 503);
        assert_eq!(server.get("/health", &[]).await.status(), 200);
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = server.get(&uncached, &[]).await.status();
        if status == 200 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, 200, "rendering recovers once the database is back");
    assert_eq!(server.get("/ready", &[]).await.status(), 200);

    server.stop().await;
    let scratch = Scratch {
        schema: scratch.schema,
        client: planscape::db::connect(&common::db_config())
            .await
            .expect("reconnect"),
    };
    scratch.cleanup().await;
}
