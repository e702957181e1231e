//! Configuration: `planscape.toml`, environment overrides, validation at start-up.
//!
//! The file is read into a TOML table, environment overrides are written into that
//! table (so an override is checked exactly like the key it replaces), and only then is
//! it deserialized into typed structs with unknown keys rejected. Every error names the
//! key (and the variable, for overrides) before the server starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::raster::RasterLayerConfig;
use crate::tile::MAX_ZOOM;

/// The database URL of the embedded cluster that `scripts/db.sh` starts.
pub const EMBEDDED_DATABASE_URL: &str = "postgres://planscape@127.0.0.1:54329/planscape";

/// Environment variables that override a key of the file: (variable, dotted key).
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("PLANSCAPE_LISTEN", "listen"),
    ("PLANSCAPE_PUBLIC_URL", "public_url"),
    ("PLANSCAPE_DATABASE_POOL_SIZE", "database.pool_size"),
    (
        "PLANSCAPE_STATEMENT_TIMEOUT_MS",
        "database.statement_timeout_ms",
    ),
    ("PLANSCAPE_CACHE_SIZE_MB", "cache.size_mb"),
    ("PLANSCAPE_CACHE_CONTROL", "http.cache_control"),
    ("PLANSCAPE_CORS_ORIGINS", "http.cors_origins"),
    ("PLANSCAPE_SHUTDOWN_GRACE_S", "shutdown_grace_s"),
    ("PLANSCAPE_STYLES_DIR", "styles_dir"),
    ("PLANSCAPE_STORE_URL", "store.url"),
    ("PLANSCAPE_STORE_ENDPOINT", "store.endpoint"),
    ("PLANSCAPE_STORE_REGION", "store.region"),
    ("PLANSCAPE_STORE_PATH_STYLE", "store.path_style"),
    ("PLANSCAPE_STORE_PUBLIC_URL", "store.public_url"),
    ("PLANSCAPE_ADMIN_TOKEN", "admin_token"),
    ("PLANSCAPE_SIGNING_KEY", "accounts.signing_key"),
    ("PLANSCAPE_CONDITIONS_CATALOG", "conditions.catalog"),
    ("PLANSCAPE_SESSION_TTL_S", "accounts.session_ttl_s"),
];

/// Secrets come from the environment only: a file holding one (the admin token, the
/// signing key, a password in the database URL) is refused, naming the variable to use.
fn refuse_file_secrets(table: &toml::Table) -> Result<(), ConfigError> {
    let refused = |key: &str, var: &str| ConfigError::Invalid {
        key: key.to_owned(),
        message: format!("is a secret: set {var} in the environment, not in a file"),
    };
    if table.contains_key("admin_token") {
        return Err(refused("admin_token", "PLANSCAPE_ADMIN_TOKEN"));
    }
    let section = |name: &str| table.get(name).and_then(toml::Value::as_table);
    if section("accounts").is_some_and(|a| a.contains_key("signing_key")) {
        return Err(refused("accounts.signing_key", "PLANSCAPE_SIGNING_KEY"));
    }
    let url = section("database")
        .and_then(|d| d.get("url"))
        .and_then(toml::Value::as_str);
    if let Some(url) = url
        && url
            .parse::<tokio_postgres::Config>()
            .is_ok_and(|c| c.get_password().is_some())
    {
        return Err(refused("database.url", "DATABASE_URL (with the password)"));
    }
    Ok(())
}

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("invalid config {origin}: {message}")]
    Parse {
        /// The file (and overriding variables, if any).
        origin: String,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A value is well-typed but not acceptable.
    #[error("invalid config key `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Public base URL used in TileJSON (e.g. `https://maps.example.org`); when unset the
    /// URL is derived from `X-Forwarded-*` and `Host` request headers.
    #[serde(default)]
    pub public_url: Option<String>,
    /// PostGIS connection.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// In-process tile cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// HTTP response policy.
    #[serde(default)]
    pub http: HttpConfig,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT before exiting
    /// (keep it below the orchestrator's stop timeout, e.g. ECS's 30 s).
    #[serde(default = "default_grace")]
    pub shutdown_grace_s: u64,
    /// Folder of the colormap styles (`NAME.json`).
    #[serde(default = "default_styles_dir")]
    pub styles_dir: PathBuf,
    /// The tile store holding pregenerated tiles.
    #[serde(default)]
    pub store: StoreConfig,
    /// Where `seed --region NAME` finds region outlines.
    #[serde(default)]
    pub regions: Option<RegionsConfig>,
    /// Bearer token of the admin API (`PLANSCAPE_ADMIN_TOKEN` only: refused in a file).
    /// Without one the admin API is off.
    #[serde(default, skip_serializing)]
    pub admin_token: Option<String>,
    /// Accounts, sessions and plan limits.
    #[serde(default)]
    pub accounts: AccountsConfig,
    /// The conditions catalog.
    #[serde(default)]
    pub conditions: Option<ConditionsConfig>,
    /// Tile layers by name.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerConfig>,
}

/// Where the conditions catalog and its built rasters are.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionsConfig {
    /// The catalog file (regions -> pillars -> elements -> metrics).
    pub catalog: PathBuf,
    /// Folder of the element and pillar rasters `planscape conditions build` makes.
    #[serde(default = "default_conditions_dir")]
    pub dir: PathBuf,
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
    /// Largest plan, acres.
    #[serde(default = "default_plan_max_area")]
    pub plan_max_area_acres: f64,
    /// Most vertices in a plan's geometry.
    #[serde(default = "default_plan_max_vertices")]
    pub plan_max_vertices: usize,
    /// Key of the session-token hashes (`PLANSCAPE_SIGNING_KEY` only: refused in a file).
    #[serde(default, skip_serializing)]
    pub signing_key: Option<String>,
}

fn default_session_ttl() -> u64 {
    14 * 24 * 3600
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
fn default_plan_max_area() -> f64 {
    5_000_000.0
}
fn default_plan_max_vertices() -> usize {
    100_000
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            session_ttl_s: default_session_ttl(),
            login_max_failures: default_login_failures(),
            login_window_s: default_login_window(),
            max_body_kb: default_max_body_kb(),
            plan_max_area_acres: default_plan_max_area(),
            plan_max_vertices: default_plan_max_vertices(),
            signing_key: None,
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

/// Marks a layer as pregenerated: its tiles are read from the tile store.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PregeneratedConfig {
    /// What a tile missing from the store gets: rendered live, or served as empty.
    #[serde(default)]
    pub fallback: Fallback,
    /// Write tiles rendered on a miss back to the store.
    #[serde(default)]
    pub write_back: bool,
}

/// What a pregenerated layer serves for a tile missing from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Render it live (the seed may not have covered it yet).
    #[default]
    Render,
    /// Serve an empty tile (the seed wrote every non-empty tile).
    Empty,
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
}

/// HTTP response policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `Cache-Control` header of tile responses.
    #[serde(default = "default_cache_control")]
    pub cache_control: String,
    /// Allowed CORS origins; `["*"]` allows any.
    #[serde(default = "default_cors")]
    pub cors_origins: Vec<String>,
}

/// One layer, tagged by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerConfig {
    /// Vector tiles from a PostGIS table.
    Vector(VectorLayerConfig),
    /// Raster tiles from a GeoTIFF/COG.
    Raster(RasterLayerConfig),
}

/// A PostGIS table served as MVT.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VectorLayerConfig {
    /// `table` or `schema.table`.
    pub table: String,
    /// Geometry column.
    #[serde(default = "default_geometry")]
    pub geometry: String,
    /// Integer column used as the MVT feature id.
    #[serde(default)]
    pub id: Option<String>,
    /// Columns written as feature properties.
    #[serde(default)]
    pub properties: Vec<String>,
    /// Lowest zoom served.
    #[serde(default)]
    pub minzoom: u8,
    /// Highest zoom served.
    #[serde(default = "default_maxzoom")]
    pub maxzoom: u8,
    /// Human description for TileJSON.
    #[serde(default)]
    pub description: Option<String>,
    /// Attribution for TileJSON.
    #[serde(default)]
    pub attribution: Option<String>,
    /// Read tiles from the tile store (`[layers.NAME.pregenerated]`).
    #[serde(default)]
    pub pregenerated: Option<PregeneratedConfig>,
}

impl LayerConfig {
    /// The layer's pregeneration settings, when it is pregenerated.
    pub fn pregenerated(&self) -> Option<&PregeneratedConfig> {
        match self {
            Self::Vector(v) => v.pregenerated.as_ref(),
            Self::Raster(r) => r.pregenerated.as_ref(),
        }
    }
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

fn default_grace() -> u64 {
    25
}
fn default_styles_dir() -> PathBuf {
    PathBuf::from("styles")
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
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
fn default_cache_control() -> String {
    "public, max-age=300".to_owned()
}
fn default_cors() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_geometry() -> String {
    "geom".to_owned()
}
fn default_maxzoom() -> u8 {
    14
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
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cache_control: default_cache_control(),
            cors_origins: default_cors(),
        }
    }
}

impl Config {
    /// Loads `path` (or the defaults when `None`), applies the environment overrides
    /// from `env`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(&text, &path.display().to_string(), env)
            }
            None => Self::parse("", "(built-in defaults)", env),
        }
    }

    /// Parses TOML text (`origin` names it in errors), applies the environment overrides
    /// from `env`, and validates the result.
    pub fn parse(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        refuse_file_secrets(&table)?;
        let mut origin = origin.to_owned();
        let mut overridden = Vec::new();
        for (var, key) in ENV_OVERRIDES {
            if let Some(value) = env(var) {
                set_dotted(&mut table, key, env_value(key, &value));
                overridden.push(*var);
            }
        }
        if !overridden.is_empty() {
            origin = format!("{origin} with {}", overridden.join(", "));
        }
        let config: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
                origin,
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.to_owned(),
            message,
        };
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "public_url",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        if self.database.pool_size == 0 {
            return Err(invalid("database.pool_size", "must be at least 1".into()));
        }
        if self.database.statement_timeout_ms == 0 {
            return Err(invalid(
                "database.statement_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if self.database.url.parse::<tokio_postgres::Config>().is_err() {
            // The message of the parser may echo the password: do not include it.
            return Err(invalid(
                "database.url",
                "is not a valid PostgreSQL URL".into(),
            ));
        }
        if axum::http::HeaderValue::from_str(&self.http.cache_control).is_err() {
            return Err(invalid(
                "http.cache_control",
                "is not a valid header value".into(),
            ));
        }
        for origin in &self.http.cors_origins {
            if origin != "*" && axum::http::HeaderValue::from_str(origin).is_err() {
                return Err(invalid(
                    "http.cors_origins",
                    format!("`{origin}` is not a valid origin"),
                ));
            }
        }
        if let Err(message) = crate::store::StoreUrl::parse(&self.store.url) {
            return Err(invalid("store.url", message));
        }
        for (key, url) in [
            ("store.endpoint", &self.store.endpoint),
            ("store.public_url", &self.store.public_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    key,
                    format!("`{url}` must start with http:// or https://"),
                ));
            }
        }
        if let Some(regions) = &self.regions {
            let parts: Vec<&str> = regions.table.split('.').collect();
            if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
                return Err(invalid(
                    "regions.table",
                    format!("`{}` is not `table` or `schema.table`", regions.table),
                ));
            }
            for (key, column) in [
                ("regions.key", &regions.key),
                ("regions.geometry", &regions.geometry),
            ] {
                if !is_identifier(column) {
                    return Err(invalid(key, format!("`{column}` is not a column name")));
                }
            }
        }
        let a = &self.accounts;
        if a.session_ttl_s == 0
            || a.login_max_failures == 0
            || a.login_window_s == 0
            || a.max_body_kb == 0
            || a.plan_max_vertices < 4
        {
            return Err(invalid(
                "accounts",
                "session_ttl_s, login_max_failures, login_window_s and max_body_kb must be positive, plan_max_vertices at least 4".into(),
            ));
        }
        if !(a.plan_max_area_acres.is_finite() && a.plan_max_area_acres > 0.0) {
            return Err(invalid(
                "accounts.plan_max_area_acres",
                "must be positive".into(),
            ));
        }
        if a.signing_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(invalid(
                "accounts.signing_key",
                "must be at least 32 characters".into(),
            ));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "admin_token",
                "must be at least 16 characters".into(),
            ));
        }
        for (name, layer) in &self.layers {
            if !is_layer_name(name) {
                return Err(invalid(
                    &format!("layers.{name}"),
                    "layer names use only letters, digits, `_` and `-` (at most 64)".into(),
                ));
            }
            if crate::RESERVED_LAYER_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("layers.{name}"),
                    "this name is reserved".into(),
                ));
            }
            match layer {
                LayerConfig::Vector(v) => v.validate(name)?,
                LayerConfig::Raster(r) => validate_zooms(name, r.minzoom, r.maxzoom)?,
            }
        }
        Ok(())
    }
}

impl VectorLayerConfig {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("layers.{name}.{key}"),
            message,
        };
        let parts: Vec<&str> = self.table.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(invalid(
                "table",
                format!("`{}` is not `table` or `schema.table`", self.table),
            ));
        }
        let columns = std::iter::once(("geometry", &self.geometry))
            .chain(self.id.iter().map(|c| ("id", c)))
            .chain(self.properties.iter().map(|c| ("properties", c)));
        for (key, column) in columns {
            if !is_identifier(column) {
                return Err(invalid(
                    key,
                    format!("`{column}` is not a plain column name"),
                ));
            }
        }
        validate_zooms(name, self.minzoom, self.maxzoom)
    }
}

fn validate_zooms(name: &str, minzoom: u8, maxzoom: u8) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: format!("layers.{name}.{key}"),
        message,
    };
    if maxzoom > MAX_ZOOM {
        return Err(invalid("maxzoom", format!("{maxzoom} is above {MAX_ZOOM}")));
    }
    if minzoom > maxzoom {
        return Err(invalid(
            "minzoom",
            format!("{minzoom} is above maxzoom {maxzoom}"),
        ));
    }
    Ok(())
}

/// Whether `s` is a simple SQL identifier (letters, digits, `_`; not starting with a digit).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 63
}

fn is_layer_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Converts an environment string to the TOML value its key expects.
fn env_value(key: &str, value: &str) -> toml::Value {
    if key == "http.cors_origins" {
        return toml::Value::Array(
            value
                .split(',')
                .map(|s| toml::Value::String(s.trim().to_owned()))
                .collect(),
        );
    }
    if key == "store.path_style" {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => return toml::Value::Boolean(true),
            "false" | "0" | "no" => return toml::Value::Boolean(false),
            _ => {}
        }
    }
    // Numbers only where the key takes one, so that e.g. a numeric styles folder stays text.
    let numeric = matches!(
        key,
        "database.pool_size"
            | "database.statement_timeout_ms"
            | "cache.size_mb"
            | "shutdown_grace_s"
            | "accounts.session_ttl_s"
    );
    match value.parse::<i64>() {
        Ok(n) if numeric => toml::Value::Integer(n),
        _ => toml::Value::String(value.to_owned()),
    }
}

fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut table = table;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.insert(part.to_owned(), value);
            return;
        }
        let entry = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        table = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, |_| None).unwrap();
        assert_eq!(c.database.url, EMBEDDED_DATABASE_URL);
        assert_eq!(c.cache.size_mb, 512);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_str("[layers.a]\ntype = \"vector\"\ntabel = \"t\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("tabel"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = load_str("[cache]\nsize_mb = \"lots\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("size_mb"), "{err}");
        let err = load_str(
            "[layers.a]\ntype = \"vector\"\ntable = \"t\"\nminzoom = 9\nmaxzoom = 3\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("layers.a.minzoom"), "{err}");
        let err = load_str(
            "[layers.a]\ntype = \"vector\"\ntable = \"t; drop table x\"\n",
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("layers.a.table"), "{err}");
        let err =
            load_str("[layers.\"a b\"]\ntype = \"vector\"\ntable = \"t\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("layers.a b"), "{err}");
    }

    #[test]
    fn environment_overrides_keys() {
        let c = load_str(
            "listen = \"127.0.0.1:1\"\n",
            &[
                ("PLANSCAPE_LISTEN", "0.0.0.0:9000"),
                ("PLANSCAPE_CACHE_SIZE_MB", "7"),
                ("DATABASE_URL", "postgres://u@h:1/d"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.cache.size_mb, 7);
        assert_eq!(c.database.url, "postgres://u@h:1/d");
        let err = load_str("", &[("PLANSCAPE_CACHE_SIZE_MB", "many")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PLANSCAPE_CACHE_SIZE_MB") && err.contains("size_mb"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Config::load(Some(Path::new("/nonexistent/planscape.toml")), |_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
