//! The sections of the configuration besides layers: database, cache, HTTP, store,
//! regions, accounts and conditions, each with its defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::layers::default_geometry;
use super::{EMBEDDED_DATABASE_URL, PregeneratedConfig, SharedCacheConfig};

/// Where the conditions catalog and its built rasters are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionsConfig {
    /// The catalog file (regions -> pillars -> elements -> metrics).
    pub catalog: PathBuf,
    /// Folder of the element and pillar rasters `planscape conditions build` makes.
    #[serde(default = "default_conditions_dir")]
    pub dir: PathBuf,
    /// Folder of the metrics' raw and normalized rasters, in place of the folders the
    /// catalog names (each file keeps its name): one catalog, its rasters made at
    /// another resolution elsewhere (`tiles/demo-30m.toml`).
    #[serde(default)]
    pub rasters: Option<PathBuf>,
    /// Pixel size, metres, at which `planscape demo` generates the catalog's metric
    /// rasters (default 250; read by `planscape demo` only).
    #[serde(default)]
    pub demo_resolution_m: Option<f64>,
    /// Serve every condition layer from the tile store (`[conditions.pregenerated]`),
    /// as `[layers.NAME.pregenerated]` does for one layer.
    #[serde(default)]
    pub pregenerated: Option<PregeneratedConfig>,
}

fn default_conditions_dir() -> PathBuf {
    PathBuf::from(".data/conditions")
}

/// Accounts, sessions, request and plan limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// Session lifetime in seconds (`PLANSCAPE_SESSION_TTL_S`).
    #[serde(default = "default_session_ttl")]
    pub session_ttl_s: u64,
    /// Failed logins allowed per client address and per account in a window.
    #[serde(default = "default_login_failures")]
    pub login_max_failures: u32,
    /// The window of `login_max_failures`, seconds.
    #[serde(default = "default_login_window")]
    pub login_window_s: u64,
    /// Largest request body of the REST API, KiB (413 beyond).
    #[serde(default = "default_max_body_kb")]
    pub max_body_kb: usize,
    /// Largest uploaded plan file (`POST /plans/upload`), KiB (413 beyond).
    #[serde(default = "default_max_upload_kb")]
    pub max_upload_kb: usize,
    /// Largest plan, acres.
    #[serde(default = "default_plan_max_area")]
    pub plan_max_area_acres: f64,
    /// Smallest plan, acres (smaller areas are refused: a slip of the mouse, not a
    /// planning area; 1 acre is a square of about 64 m).
    #[serde(default = "default_plan_min_area")]
    pub plan_min_area_acres: f64,
    /// Most vertices in a plan's geometry.
    #[serde(default = "default_plan_max_vertices")]
    pub plan_max_vertices: usize,
    /// Most raster pixels one statistics request may read, over all its conditions
    /// (estimated from the area's bounding box in each raster): a request past it is
    /// refused (422) before any is read.
    #[serde(default = "default_stats_max_pixels")]
    pub stats_max_pixels: u64,
    /// Memory for statistics of drawn areas kept for repeated requests, MiB (0: none).
    #[serde(default = "default_stats_memo_mb")]
    pub stats_memo_mb: u64,
    /// Most pending invitations one user may have sent (429 beyond).
    #[serde(default = "default_invitations_max_pending")]
    pub invitations_max_pending: u32,
    /// Most invitations one user may send in an hour (429 beyond).
    #[serde(default = "default_invitations_per_hour")]
    pub invitations_per_hour: u32,
    /// Key of the session-token hashes (`PLANSCAPE_SIGNING_KEY` only: refused in a file).
    #[serde(default, skip_serializing)]
    pub signing_key: Option<String>,
    /// Lifetime of a password-reset link, seconds (`PLANSCAPE_RESET_TTL_S`).
    #[serde(default = "default_reset_ttl")]
    pub reset_ttl_s: u64,
}

fn default_session_ttl() -> u64 {
    14 * 24 * 3600
}
fn default_reset_ttl() -> u64 {
    3600
}
fn default_login_failures() -> u32 {
    10
}
fn default_login_window() -> u64 {
    900
}
fn default_max_body_kb() -> usize {
    2048
}
fn default_max_upload_kb() -> usize {
    10 * 1024
}
fn default_plan_max_area() -> f64 {
    5_000_000.0
}
fn default_plan_min_area() -> f64 {
    1.0
}
fn default_invitations_max_pending() -> u32 {
    50
}
fn default_invitations_per_hour() -> u32 {
    20
}
fn default_plan_max_vertices() -> usize {
    100_000
}
fn default_stats_memo_mb() -> u64 {
    16
}
fn default_stats_max_pixels() -> u64 {
    // All 55 demo conditions over 500,000 acres at 30 m read about 125 M pixels.
    250_000_000
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            session_ttl_s: default_session_ttl(),
            login_max_failures: default_login_failures(),
            login_window_s: default_login_window(),
            max_body_kb: default_max_body_kb(),
            max_upload_kb: default_max_upload_kb(),
            plan_max_area_acres: default_plan_max_area(),
            plan_max_vertices: default_plan_max_vertices(),
            stats_max_pixels: default_stats_max_pixels(),
            stats_memo_mb: default_stats_memo_mb(),
            plan_min_area_acres: default_plan_min_area(),
            invitations_max_pending: default_invitations_max_pending(),
            invitations_per_hour: default_invitations_per_hour(),
            signing_key: None,
            reset_ttl_s: default_reset_ttl(),
        }
    }
}

/// The tile store: a local folder or an S3 bucket.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `file://FOLDER` (relative to the working directory) or `s3://BUCKET/PREFIX`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// S3 endpoint URL of an S3-compatible service (MinIO, moto); unset means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region; unset means the AWS default chain (`AWS_REGION`, profile), else us-west-2.
    #[serde(default)]
    pub region: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`), which most S3-compatible
    /// services need.
    #[serde(default)]
    pub path_style: bool,
    /// Public base URL of the store (e.g. `https://BUCKET.s3.us-west-2.amazonaws.com/PREFIX`):
    /// when set, TileJSON of pregenerated layers points clients straight at it.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// The table of named regions (`seed --region`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegionsConfig {
    /// `table` or `schema.table`.
    pub table: String,
    /// Column holding the region name.
    #[serde(default = "default_region_key")]
    pub key: String,
    /// Geometry column.
    #[serde(default = "default_geometry")]
    pub geometry: String,
}

/// PostGIS connection settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// libpq-style URL; `DATABASE_URL` overrides it. Keep passwords out of the file:
    /// set them through `DATABASE_URL` or `PGPASSWORD`.
    #[serde(default = "default_database_url")]
    pub url: String,
    /// Maximum pooled connections.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// `statement_timeout` of tile queries, in milliseconds.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
    /// How long to wait for a connection, in milliseconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
}

/// Cache settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Maximum bytes of tiles held, in MiB; 0 turns the cache off.
    #[serde(default = "default_cache_size")]
    pub size_mb: u64,
    /// Keep cached bodies of 8 KiB and more in a memory file and send hits of them with
    /// `sendfile`, without copying them into the socket (on by default; `false` keeps
    /// them in ordinary memory and copies them, as before).
    #[serde(default = "default_sendfile")]
    pub sendfile: bool,
    /// The shared second level (Redis/Valkey) and shared login limits; off without a URL.
    #[serde(default)]
    pub shared: SharedCacheConfig,
}

/// HTTP response policy, connection timeouts and trusted proxies.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `Cache-Control` header of tile responses.
    #[serde(default = "default_cache_control")]
    pub cache_control: String,
    /// Allowed CORS origins; `["*"]` allows any.
    #[serde(default = "default_cors")]
    pub cors_origins: Vec<String>,
    /// Seconds a client has to send a complete request head, from the connection's
    /// opening or the request's first byte; then the connection is closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_s: u64,
    /// Seconds a client has to send a request body (JSON or upload) once its head is
    /// in; then 408.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_s: u64,
    /// Seconds a connection may stay open without a request in flight and without
    /// traffic; then it is closed. Keep it above the upstream keep-alive timeout of a
    /// proxy in front (nginx: 60 s).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Proxies whose `X-Forwarded-For` / `X-Real-IP` name the client (CIDRs or single
    /// addresses, e.g. `["127.0.0.1/32"]`); none by default: the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Threads that serve connections, each with its own single-threaded runtime
    /// ([`crate::io_threads`]); by default half the cores, at least one
    /// ([`default_io_threads`]): the other half is left to the proxy or the clients on the
    /// same host and to rendering. 0 serves connections from the main runtime's
    /// work-stealing workers instead (docs/configuration.md, "I/O threads").
    #[serde(default = "default_io_threads")]
    pub io_threads: usize,
}

fn default_store_url() -> String {
    "file://.data/tiles".to_owned()
}
fn default_region_key() -> String {
    "slug".to_owned()
}
impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: default_store_url(),
            endpoint: None,
            region: None,
            path_style: false,
            public_url: None,
        }
    }
}

fn default_database_url() -> String {
    EMBEDDED_DATABASE_URL.to_owned()
}
fn default_pool_size() -> usize {
    16
}
fn default_statement_timeout() -> u64 {
    10_000
}
fn default_connect_timeout() -> u64 {
    3_000
}
fn default_cache_size() -> u64 {
    512
}
fn default_sendfile() -> bool {
    true
}
fn default_cache_control() -> String {
    "public, max-age=300".to_owned()
}
fn default_cors() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_body_read_timeout() -> u64 {
    60
}
fn default_idle_timeout() -> u64 {
    75
}

/// The default of `[http] io_threads`: half the cores this process may use, at least one.
/// On two cores that is one I/O thread, which answered 5-10 % more cache hits than the
/// work-stealing workers, with a sixth of their p99 (docs/benchmarks.md).
pub fn default_io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_database_url(),
            pool_size: default_pool_size(),
            statement_timeout_ms: default_statement_timeout(),
            connect_timeout_ms: default_connect_timeout(),
        }
    }
}
impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            size_mb: default_cache_size(),
            sendfile: default_sendfile(),
            shared: SharedCacheConfig::default(),
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cache_control: default_cache_control(),
            cors_origins: default_cors(),
            header_read_timeout_s: default_header_read_timeout(),
            body_read_timeout_s: default_body_read_timeout(),
            idle_timeout_s: default_idle_timeout(),
            trusted_proxies: Vec::new(),
            io_threads: default_io_threads(),
        }
    }
}
