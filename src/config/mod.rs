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

mod analytics;
mod basemaps;
mod database_url;
mod env;
mod layers;
mod mail;
mod memory;
mod sections;
mod shared_cache;

pub use analytics::AnalyticsConfig;
pub use basemaps::{Basemap, BasemapConfig};
pub use database_url::{CertCheck, DatabaseUrl, DatabaseUrlError, RootCerts, SslMode};
pub use env::ENV_OVERRIDES;
pub use layers::{
    Fallback, LayerConfig, PregeneratedConfig, RasterLayerConfig, Resampling, VectorLayerConfig,
};
pub use mail::{MailConfig, SmtpTls};
pub use memory::MemoryConfig;
pub use sections::{
    AccountsConfig, CacheConfig, ConditionsConfig, DatabaseConfig, HttpConfig, RegionsConfig,
    StoreConfig,
};
pub use shared_cache::SharedCacheConfig;

/// The deepest zoom level anything accepts (tile URLs, layer ranges, seeds).
pub const MAX_ZOOM: u8 = 24;

/// Layer names the URL space keeps for other uses.
pub const RESERVED_LAYER_NAMES: &[&str] = &["plans", "legend"];

/// The database URL of the embedded cluster that `scripts/db.sh` starts.
pub const EMBEDDED_DATABASE_URL: &str = "postgres://planscape@127.0.0.1:54329/planscape";

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
    /// Memory bounds besides the tile cache (GDAL's block cache, allocator arenas).
    #[serde(default)]
    pub memory: MemoryConfig,
    /// Seconds to let in-flight requests finish after SIGTERM/SIGINT before exiting
    /// (keep it below the orchestrator's stop timeout, e.g. ECS's 30 s).
    #[serde(default = "default_grace")]
    pub shutdown_grace_s: u64,
    /// Folder of the colormap styles (`NAME.json`).
    #[serde(default = "default_styles_dir")]
    pub styles_dir: PathBuf,
    /// Folder of the built web app served at `/` (`scripts/web-build.sh` makes it).
    #[serde(default = "default_web_dir")]
    pub web_dir: PathBuf,
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
    /// Outgoing mail (password-reset links).
    #[serde(default)]
    pub mail: MailConfig,
    /// Usage analytics: events, page views, tile demand.
    #[serde(default)]
    pub analytics: AnalyticsConfig,
    /// The conditions catalog.
    #[serde(default)]
    pub conditions: Option<ConditionsConfig>,
    /// Tile layers by name.
    #[serde(default)]
    pub layers: BTreeMap<String, LayerConfig>,
    /// The web app's basemaps (`[[basemaps]]`; OpenStreetMap by default).
    #[serde(default = "basemaps::default_basemaps")]
    pub basemaps: Vec<BasemapConfig>,
    /// The basemaps with their keys read from the environment (those whose key
    /// variable is unset are left out), as the web app receives them.
    #[serde(skip)]
    pub resolved_basemaps: Vec<Basemap>,
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
        env::refuse_file_secrets(&table)?;
        let mut origin = origin.to_owned();
        let mut overridden = Vec::new();
        for (var, key) in ENV_OVERRIDES {
            if let Some(value) = env(var) {
                env::set_dotted(&mut table, key, env::env_value(key, &value));
                overridden.push(*var);
            }
        }
        if !overridden.is_empty() {
            origin = format!("{origin} with {}", overridden.join(", "));
        }
        let mut config: Config =
            Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Parse {
                origin,
                message: e.to_string(),
            })?;
        config.validate()?;
        config.resolved_basemaps = config
            .basemaps
            .iter()
            .filter_map(|b| b.resolve(&env))
            .collect();
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
        // The messages never echo the URL (it may hold a password).
        if let Err(e) = DatabaseUrl::parse(&self.database.url) {
            return Err(invalid("database.url", e.to_string()));
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
        for (key, seconds) in [
            (
                "http.header_read_timeout_s",
                self.http.header_read_timeout_s,
            ),
            ("http.body_read_timeout_s", self.http.body_read_timeout_s),
            ("http.idle_timeout_s", self.http.idle_timeout_s),
        ] {
            if seconds == 0 || seconds > 86_400 {
                return Err(invalid(key, "must be between 1 and 86400 seconds".into()));
            }
        }
        for proxy in &self.http.trusted_proxies {
            if let Err(message) = crate::http::client_ip::parse_cidr(proxy) {
                return Err(invalid("http.trusted_proxies", message));
            }
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
            || a.max_upload_kb == 0
            || a.plan_max_vertices < 4
            || a.invitations_max_pending == 0
            || a.invitations_per_hour == 0
        {
            return Err(invalid(
                "accounts",
                "session_ttl_s, login_max_failures, login_window_s, max_body_kb, max_upload_kb, invitations_max_pending and invitations_per_hour must be positive, plan_max_vertices at least 4".into(),
            ));
        }
        if !(a.plan_max_area_acres.is_finite() && a.plan_max_area_acres > 0.0) {
            return Err(invalid(
                "accounts.plan_max_area_acres",
                "must be positive".into(),
            ));
        }
        if !(a.plan_min_area_acres.is_finite()
            && a.plan_min_area_acres >= 0.0
            && a.plan_min_area_acres < a.plan_max_area_acres)
        {
            return Err(invalid(
                "accounts.plan_min_area_acres",
                "must be at least 0 and less than plan_max_area_acres".into(),
            ));
        }
        if a.reset_ttl_s == 0 {
            return Err(invalid("accounts.reset_ttl_s", "must be positive".into()));
        }
        self.mail.validate(self.public_url.as_deref())?;
        self.analytics.validate()?;
        self.cache.shared.validate()?;
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
            if RESERVED_LAYER_NAMES.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("layers.{name}"),
                    "this name is reserved".into(),
                ));
            }
            layer.validate(name)?;
        }
        for (i, basemap) in self.basemaps.iter().enumerate() {
            basemap.validate(i)?;
            if self.basemaps[..i].iter().any(|b| b.id == basemap.id) {
                return Err(invalid(
                    &format!("basemaps[{i}]"),
                    format!("id `{}` is used twice", basemap.id),
                ));
            }
        }
        Ok(())
    }
}

fn default_grace() -> u64 {
    25
}
fn default_styles_dir() -> PathBuf {
    PathBuf::from("styles")
}
fn default_web_dir() -> PathBuf {
    PathBuf::from("web/dist")
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
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
    fn io_threads_default_to_half_the_cores_and_zero_keeps_the_shared_workers() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let c = Config::load(None, |_| None).unwrap();
        assert_eq!(c.http.io_threads, (cores / 2).max(1));
        assert_eq!(HttpConfig::default().io_threads, c.http.io_threads);
        let shared = load_str("[http]\nio_threads = 0\n", &[]).unwrap();
        assert_eq!(shared.http.io_threads, 0);
        let env = load_str("", &[("PLANSCAPE_IO_THREADS", "3")]).unwrap();
        assert_eq!(env.http.io_threads, 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_str("[layers.a]\ntype = \"vector\"\ntabel = \"t\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("tabel"), "{err}");
    }

    #[test]
    fn lowzoom_settings_are_checked() {
        let layer = "[layers.a]\ntype = \"vector\"\ntable = \"t\"\nproperties = [\"p\", \"q\"]\n\
                     minzoom = 5\nmaxzoom = 14\n";
        let ok = format!("{layer}id = \"id\"\nlowzoom_maxzoom = 8\nlowzoom_properties = [\"q\"]\n");
        assert!(load_str(&ok, &[]).is_ok());
        for (extra, key) in [
            ("lowzoom_maxzoom = 8\n", "lowzoom_maxzoom"),
            ("id = \"id\"\nlowzoom_maxzoom = 4\n", "lowzoom_maxzoom"),
            ("id = \"id\"\nlowzoom_maxzoom = 15\n", "lowzoom_maxzoom"),
            (
                "id = \"id\"\nlowzoom_maxzoom = 8\nlowzoom_properties = [\"r\"]\n",
                "lowzoom_properties",
            ),
        ] {
            let err = load_str(&format!("{layer}{extra}"), &[]).unwrap_err();
            assert!(
                err.to_string().contains(&format!("layers.a.{key}")),
                "{extra}: {err}"
            );
        }
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
    fn every_numeric_key_takes_a_number_from_the_environment() {
        // Each override whose key holds a number by default takes "3" as the number 3
        // (a key missing from `env_value`'s list would get the text "3" and fail).
        let defaults = Config::load(None, |_| None).expect("defaults");
        let defaults = toml::Table::try_from(&defaults).expect("as a table");
        let lookup = |table: &toml::Table, key: &str| -> Option<toml::Value> {
            let mut value = toml::Value::Table(table.clone());
            for part in key.split('.') {
                value = value.as_table()?.get(part)?.clone();
            }
            Some(value)
        };
        let mut checked = 0;
        for (var, key) in env::ENV_OVERRIDES {
            if !matches!(lookup(&defaults, key), Some(toml::Value::Integer(_))) {
                continue;
            }
            let c = load_str("", &[(var, "3")]).unwrap_or_else(|e| panic!("{var}: {e}"));
            let c = toml::Table::try_from(&c).expect("as a table");
            assert_eq!(lookup(&c, key), Some(toml::Value::Integer(3)), "{var}");
            checked += 1;
        }
        assert!(checked >= 15, "{checked}");
    }

    #[test]
    fn sendfile_is_on_by_default_and_turned_off_by_file_or_environment() {
        let defaults = Config::load(None, |_| None).expect("defaults");
        assert!(defaults.cache.sendfile);
        let c = load_str("[cache]\nsendfile = false\n", &[]).expect("file");
        assert!(!c.cache.sendfile);
        for value in ["false", "0", "no"] {
            let c = load_str("", &[("PLANSCAPE_CACHE_SENDFILE", value)]).expect("env");
            assert!(!c.cache.sendfile, "{value}");
        }
        assert!(load_str("", &[("PLANSCAPE_CACHE_SENDFILE", "maybe")]).is_err());
    }

    #[test]
    fn http_timeouts_and_trusted_proxies() {
        let defaults = Config::load(None, |_| None).unwrap();
        assert!(defaults.http.trusted_proxies.is_empty(), "none by default");
        assert_eq!(defaults.http.header_read_timeout_s, 10);
        let c = load_str(
            "[http]\nbody_read_timeout_s = 5\n",
            &[
                ("PLANSCAPE_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8,"),
                ("PLANSCAPE_IDLE_TIMEOUT_S", "90"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.trusted_proxies, ["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!((c.http.body_read_timeout_s, c.http.idle_timeout_s), (5, 90));
        let err = load_str("[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", &[]).unwrap_err();
        assert!(err.to_string().contains("http.trusted_proxies"), "{err}");
        let err = load_str("", &[("PLANSCAPE_TRUSTED_PROXIES", "nginx")]).unwrap_err();
        assert!(err.to_string().contains("`nginx`"), "{err}");
        let err = load_str("[http]\nheader_read_timeout_s = 0\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("http.header_read_timeout_s"),
            "{err}"
        );
    }

    #[test]
    fn analytics_settings() {
        let d = Config::load(None, |_| None).unwrap().analytics;
        assert!(d.enabled);
        assert_eq!((d.raw_retention_days, d.flush_interval_s), (30, 10));
        let c = load_str(
            "[analytics]\nqueue_size = 5\n",
            &[
                ("PLANSCAPE_ANALYTICS_ENABLED", "false"),
                ("PLANSCAPE_ANALYTICS_RETENTION_DAYS", "7"),
                ("PLANSCAPE_ANALYTICS_FLUSH_S", "2"),
            ],
        )
        .unwrap()
        .analytics;
        assert!(!c.enabled);
        assert_eq!(
            (c.raw_retention_days, c.flush_interval_s, c.queue_size),
            (7, 2, 5)
        );
        for bad in [
            "raw_retention_days = 1",
            "flush_interval_s = 0",
            "queue_size = 0",
        ] {
            let err = load_str(&format!("[analytics]\n{bad}\n"), &[]).unwrap_err();
            let key = bad.split(' ').next().unwrap_or_default();
            assert!(
                err.to_string().contains(&format!("analytics.{key}")),
                "{err}"
            );
        }
    }

    #[test]
    fn shared_cache_is_off_by_default_and_takes_its_token_from_the_environment() {
        let defaults = Config::load(None, |_| None).unwrap();
        assert!(defaults.cache.shared.url.is_none());
        assert!(defaults.cache.shared.limits);
        let c = load_str(
            "[cache.shared]\nttl_s = 60\nmax_entry_kb = 64\n",
            &[
                (
                    "PLANSCAPE_SHARED_CACHE_URL",
                    "rediss://:tok@cache.example:6379",
                ),
                ("PLANSCAPE_SHARED_CACHE_TIMEOUT_MS", "25"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.cache.shared.url.as_deref(),
            Some("rediss://:tok@cache.example:6379")
        );
        assert_eq!((c.cache.shared.ttl_s, c.cache.shared.timeout_ms), (60, 25));
        let err = load_str(
            "[cache.shared]\nurl = \"redis://:hunter2@cache.example\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("PLANSCAPE_SHARED_CACHE_URL") && !err.contains("hunter2"),
            "{err}"
        );
        let err = load_str("", &[("PLANSCAPE_SHARED_CACHE_URL", "memcached://x:11211")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("cache.shared.url"), "{err}");
        let err = load_str("[cache.shared]\ntimeout_ms = 0\n", &[]).unwrap_err();
        assert!(err.to_string().contains("cache.shared.timeout_ms"), "{err}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Config::load(Some(Path::new("/nonexistent/planscape.toml")), |_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
