//! A real Redis for the shared cache tests: the suite's (`PLANSCAPE_TEST_REDIS_URL`, which
//! `scripts/test.sh` starts with `scripts/redis.sh`), or one of the test's own, started
//! by `scripts/redis.sh` on a free port, which the test may stop and start again.

use std::path::PathBuf;
use std::process::Command;

use redis::AsyncCommands;

/// A Redis server the test talks to.
pub struct Redis {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// The port of an instance of the test's own.
    own_port: Option<u16>,
}

fn script(port: u16, arg: &str) {
    let status = Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/redis.sh"))
        .arg(arg)
        .env("PLANSCAPE_REDIS_PORT", port.to_string())
        .status()
        .expect("run scripts/redis.sh");
    assert!(status.success(), "scripts/redis.sh {arg} failed");
}

impl Redis {
    /// The suite's Redis when `PLANSCAPE_TEST_REDIS_URL` is set, else one of our own.
    /// Tests sharing it keep apart by key prefix.
    pub fn suite() -> Self {
        match std::env::var("PLANSCAPE_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Self {
                url,
                own_port: None,
            },
            _ => Self::own(),
        }
    }

    /// A Redis of the test's own on a free loopback port (stopped on drop).
    pub fn own() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        script(port, "start");
        Self {
            url: format!("redis://127.0.0.1:{port}"),
            own_port: Some(port),
        }
    }

    /// Stops the test's own instance (its data goes with it).
    pub fn stop(&self) {
        script(
            self.own_port.expect("an instance of the test's own"),
            "stop",
        );
    }

    /// Starts the test's own instance again (empty).
    pub fn start(&self) {
        script(
            self.own_port.expect("an instance of the test's own"),
            "start",
        );
    }

    /// A connection of the test's own.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("redis reachable")
    }

    /// Every key starting with `prefix` (SCAN, as an operator would).
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut connection = self.connection().await;
        let mut keys: Vec<String> = Vec::new();
        let mut iter = connection
            .scan_match::<_, String>(format!("{prefix}*"))
            .await
            .expect("scan");
        while let Some(key) = iter.next_item().await {
            keys.push(key.expect("key"));
        }
        keys.sort();
        keys
    }

    /// The bytes at `key`.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut connection = self.connection().await;
        connection.get(key).await.expect("GET")
    }

    /// Sets `key` to `value`, keeping its expiry.
    pub async fn set_keep_ttl(&self, key: &str, value: &[u8]) {
        let mut connection = self.connection().await;
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("KEEPTTL")
            .query_async::<()>(&mut connection)
            .await
            .expect("SET");
    }

    /// Seconds `key` has left to live (-1: no expiry, -2: no key).
    pub async fn ttl(&self, key: &str) -> i64 {
        let mut connection = self.connection().await;
        connection.ttl(key).await.expect("TTL")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(port) = self.own_port {
            script(port, "stop");
            // Its folder (log, pid file) goes too.
            let _ = std::fs::remove_dir_all(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(".data/redis/{port}")),
            );
        }
    }
}
