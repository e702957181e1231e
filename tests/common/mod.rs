//! Shared test helpers: a real PostGIS (the embedded cluster or `DATABASE_URL`), a real
//! server on a loopback socket, and GDAL's own MVT driver to decode tiles; the REST API
//! in [`api`], the `planscape` binary in [`cli`].
#![allow(dead_code)]

pub mod api;
pub mod cli;
pub mod redis;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod s3;

use planscape::config::{Config, DatabaseConfig, EMBEDDED_DATABASE_URL};
use planscape::http::AppState;
use serde_json::Value;

/// The value of the Prometheus samples `name{labels} value` whose labels contain every
/// `needle`, summed (0 when there is none).
pub fn sample(metrics: &str, name: &str, needles: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// The test database URL.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| EMBEDDED_DATABASE_URL.to_owned())
}

/// Database settings for tests.
pub fn db_config() -> DatabaseConfig {
    DatabaseConfig {
        url: database_url(),
        ..DatabaseConfig::default()
    }
}

/// `../shared/data/...`.
pub fn shared_data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}

/// A name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A schema of its own for one test; dropped by [`Scratch::cleanup`].
pub struct Scratch {
    /// The schema name.
    pub schema: String,
    /// A connection for setting up and checking data.
    pub client: tokio_postgres::Client,
}

impl Scratch {
    /// Creates a fresh schema.
    pub async fn new() -> Self {
        let client = planscape::db::connect(&db_config())
            .await
            .expect("test database reachable (run scripts/db.sh start)");
        let schema = unique("t");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("create schema");
        Self { schema, client }
    }

    /// Drops the schema and everything in it.
    pub async fn cleanup(self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await;
    }

    /// Loads the 58 California counties (`id`, `name`, `geom` in EPSG:4326) into
    /// `{schema}.{table}` straight from the GeoJSON file, through PostGIS.
    pub async fn load_counties(&self, table: &str) {
        let text = std::fs::read_to_string(shared_data("census/ca_counties.geojson"))
            .expect("ca_counties.geojson");
        let doc: Value = serde_json::from_str(&text).expect("valid GeoJSON");
        self.client
            .batch_execute(&format!(
                "CREATE TABLE {s}.{table} (id integer PRIMARY KEY, name text NOT NULL, \
                 geom geometry(MultiPolygon, 4326) NOT NULL); \
                 CREATE INDEX ON {s}.{table} USING gist (geom);",
                s = self.schema
            ))
            .await
            .expect("create counties");
        let insert = format!(
            "INSERT INTO {}.{table} VALUES ($1::text::integer, $2, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($3), 4326)))",
            self.schema
        );
        let features = doc["features"].as_array().expect("features");
        for f in features {
            let id = match &f["properties"]["id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = f["properties"]["name"].as_str().expect("name").to_owned();
            let geom = f["geometry"].to_string();
            self.client
                .execute(&insert, &[&id, &name, &geom])
                .await
                .expect("insert county");
        }
        assert_eq!(features.len(), 58);
    }

    /// The `[layers.counties]` section of a configuration serving the loaded counties
    /// (feature id `id`, property `name`).
    pub fn counties_layer(&self) -> String {
        format!(
            "[layers.counties]\ntype = \"vector\"\ntable = \"{}.counties\"\nid = \"id\"\nproperties = [\"name\"]\n",
            self.schema
        )
    }

    /// Creates the view `{schema}.{view}` over the loaded counties with an extra column
    /// `slow` whose every row takes `seconds` to compute: tile queries over it are slow.
    pub async fn create_slow_view(&self, view: &str, seconds: f64) {
        let s = &self.schema;
        self.client
            .batch_execute(&format!(
                "CREATE OR REPLACE FUNCTION {s}.slowly(v integer) RETURNS integer VOLATILE LANGUAGE plpgsql \
                   AS $$ BEGIN PERFORM pg_sleep({seconds}); RETURN v; END $$; \
                 CREATE VIEW {s}.{view} AS SELECT id, name, geom, {s}.slowly(id) AS slow FROM {s}.counties"
            ))
            .await
            .expect("slow view");
    }
}

/// A server on an ephemeral loopback port, shut down on drop.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its shared state.
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server from TOML text (listen and database are filled in).
    pub async fn start(toml_text: &str) -> Self {
        Self::start_with_env(toml_text, &[]).await
    }

    /// Starts a server from TOML text and environment variables (secrets, which a
    /// file may not hold).
    pub async fn start_with_env(toml_text: &str, env: &[(&str, &str)]) -> Self {
        Self::start_on(toml_text, &database_url(), env).await
    }

    /// Starts a server from TOML text against the database at `url`.
    pub async fn start_on(toml_text: &str, url: &str, env: &[(&str, &str)]) -> Self {
        let url = url.to_owned();
        let config = Config::parse(toml_text, "test config", |k| match k {
            "DATABASE_URL" => Some(url.clone()),
            "PLANSCAPE_LISTEN" => Some("127.0.0.1:0".to_owned()),
            _ => env
                .iter()
                .find(|(var, _)| *var == k)
                .map(|(_, v)| (*v).to_owned()),
        })
        .expect("valid test config");
        let server = planscape::server::start(config)
            .await
            .expect("server starts");
        let base = format!("http://{}", server.addr);
        let state = Arc::clone(&server.state);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            base,
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// GET with optional headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        get_at(&self.base, path, headers).await
    }

    /// The text of `/metrics`.
    pub async fn metrics(&self) -> String {
        metrics_at(&self.base).await
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP client that neither decompresses nor follows redirects on its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GET `path` from the server at `base` (`http://host:port`) with optional headers.
pub async fn get_at(base: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client().get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request sent")
}

/// The `/metrics` text of the server at `base`.
pub async fn metrics_at(base: &str) -> String {
    get_at(base, "/metrics", &[])
        .await
        .text()
        .await
        .expect("metrics text")
}

/// Decodes an MVT tile with GDAL's MVT driver (`ogr2ogr` to GeoJSON, EPSG:3857).
pub fn gdal_decode(tile: &[u8], z: u8, x: u32, y: u32) -> Value {
    let dir = std::env::temp_dir().join(unique("mvt"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("tile.mvt");
    std::fs::write(&path, tile).expect("write tile");
    let out = std::process::Command::new("ogr2ogr")
        .args(["-f", "GeoJSON", "/vsistdout/"])
        .arg(&path)
        .args([
            "-oo",
            &format!("Z={z}"),
            "-oo",
            &format!("X={x}"),
            "-oo",
            &format!("Y={y}"),
            "-oo",
            "METADATA_FILE=",
            "-oo",
            "CLIP=NO",
        ])
        .output()
        .expect("ogr2ogr runs (apt install gdal-bin)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "ogr2ogr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ogr2ogr wrote GeoJSON")
}

/// Area of a decoded GeoJSON (Multi)Polygon: exterior rings minus holes.
pub fn geojson_area(geometry: &Value) -> f64 {
    fn ring_area(ring: &Value) -> f64 {
        let pts: Vec<(f64, f64)> = ring
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| (p[0].as_f64().unwrap_or(0.0), p[1].as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        (pts.windows(2)
            .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
            .sum::<f64>()
            / 2.0)
            .abs()
    }
    fn polygon_area(rings: &Value) -> f64 {
        let rings = rings.as_array().cloned().unwrap_or_default();
        rings
            .iter()
            .enumerate()
            .map(|(i, r)| if i == 0 { ring_area(r) } else { -ring_area(r) })
            .sum()
    }
    match geometry["type"].as_str() {
        Some("Polygon") => polygon_area(&geometry["coordinates"]),
        Some("MultiPolygon") => geometry["coordinates"]
            .as_array()
            .map(|ps| ps.iter().map(polygon_area).sum())
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Runs `scripts/db.sh ARG` (the embedded cluster).
pub fn db_script(arg: &str) {
    let status = std::process::Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/db.sh"))
        .arg(arg)
        .status()
        .expect("run scripts/db.sh");
    assert!(status.success(), "scripts/db.sh {arg} failed");
}
