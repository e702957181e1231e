//! Environment overrides and the secrets rule: a variable overrides a key of the file
//! (written into the TOML table before it is typed, so it is checked like the key), and
//! secrets are accepted from the environment only.

use super::ConfigError;

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
    ("PLANSCAPE_CACHE_SENDFILE", "cache.sendfile"),
    ("PLANSCAPE_SHARED_CACHE_URL", "cache.shared.url"),
    ("PLANSCAPE_SHARED_CACHE_TTL_S", "cache.shared.ttl_s"),
    (
        "PLANSCAPE_SHARED_CACHE_TIMEOUT_MS",
        "cache.shared.timeout_ms",
    ),
    ("PLANSCAPE_GDAL_CACHE_MB", "memory.gdal_cache_mb"),
    ("PLANSCAPE_MALLOC_TRIM_S", "memory.trim_interval_s"),
    ("PLANSCAPE_MALLOC_ARENAS", "memory.malloc_arenas"),
    ("PLANSCAPE_RASTER_HANDLES", "memory.raster_handles"),
    ("PLANSCAPE_MMAP_THRESHOLD_KB", "memory.mmap_threshold_kb"),
    ("PLANSCAPE_RASTER_THREADS", "memory.raster_threads"),
    ("PLANSCAPE_IO_THREADS", "http.io_threads"),
    ("PLANSCAPE_CACHE_CONTROL", "http.cache_control"),
    ("PLANSCAPE_CORS_ORIGINS", "http.cors_origins"),
    (
        "PLANSCAPE_HEADER_READ_TIMEOUT_S",
        "http.header_read_timeout_s",
    ),
    ("PLANSCAPE_BODY_READ_TIMEOUT_S", "http.body_read_timeout_s"),
    ("PLANSCAPE_IDLE_TIMEOUT_S", "http.idle_timeout_s"),
    ("PLANSCAPE_TRUSTED_PROXIES", "http.trusted_proxies"),
    ("PLANSCAPE_SHUTDOWN_GRACE_S", "shutdown_grace_s"),
    ("PLANSCAPE_STYLES_DIR", "styles_dir"),
    ("PLANSCAPE_WEB_DIR", "web_dir"),
    ("PLANSCAPE_STORE_URL", "store.url"),
    ("PLANSCAPE_STORE_ENDPOINT", "store.endpoint"),
    ("PLANSCAPE_STORE_REGION", "store.region"),
    ("PLANSCAPE_STORE_PATH_STYLE", "store.path_style"),
    ("PLANSCAPE_STORE_PUBLIC_URL", "store.public_url"),
    ("PLANSCAPE_ADMIN_TOKEN", "admin_token"),
    ("PLANSCAPE_SIGNING_KEY", "accounts.signing_key"),
    ("PLANSCAPE_CONDITIONS_CATALOG", "conditions.catalog"),
    ("PLANSCAPE_SESSION_TTL_S", "accounts.session_ttl_s"),
    ("PLANSCAPE_RESET_TTL_S", "accounts.reset_ttl_s"),
    ("PLANSCAPE_SMTP_HOST", "mail.smtp_host"),
    ("PLANSCAPE_SMTP_PORT", "mail.smtp_port"),
    ("PLANSCAPE_SMTP_TLS", "mail.smtp_tls"),
    ("PLANSCAPE_SMTP_USER", "mail.smtp_user"),
    ("PLANSCAPE_SMTP_PASSWORD", "mail.smtp_password"),
    ("PLANSCAPE_MAIL_FROM", "mail.from"),
    ("PLANSCAPE_APP_URL", "mail.app_url"),
    ("PLANSCAPE_ANALYTICS_ENABLED", "analytics.enabled"),
    (
        "PLANSCAPE_ANALYTICS_RETENTION_DAYS",
        "analytics.raw_retention_days",
    ),
    ("PLANSCAPE_ANALYTICS_FLUSH_S", "analytics.flush_interval_s"),
    ("PLANSCAPE_ANALYTICS_QUEUE", "analytics.queue_size"),
];

/// Secrets come from the environment only: a file holding one (the admin token, the
/// signing key, a password in the database URL) is refused, naming the variable to use.
pub(super) fn refuse_file_secrets(table: &toml::Table) -> Result<(), ConfigError> {
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
    if section("mail").is_some_and(|m| m.contains_key("smtp_password")) {
        return Err(refused("mail.smtp_password", "PLANSCAPE_SMTP_PASSWORD"));
    }
    let shared_url = section("cache")
        .and_then(|c| c.get("shared"))
        .and_then(toml::Value::as_table)
        .and_then(|s| s.get("url"))
        .and_then(toml::Value::as_str);
    if shared_url.is_some_and(super::shared_cache::has_password) {
        return Err(refused(
            "cache.shared.url",
            "PLANSCAPE_SHARED_CACHE_URL (with the auth token)",
        ));
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

/// Converts an environment string to the TOML value its key expects.
pub(super) fn env_value(key: &str, value: &str) -> toml::Value {
    if key == "http.cors_origins" || key == "http.trusted_proxies" {
        return toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        );
    }
    if matches!(
        key,
        "store.path_style" | "analytics.enabled" | "cache.sendfile"
    ) {
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
            | "cache.shared.ttl_s"
            | "cache.shared.timeout_ms"
            | "shutdown_grace_s"
            | "accounts.session_ttl_s"
            | "http.header_read_timeout_s"
            | "http.body_read_timeout_s"
            | "http.idle_timeout_s"
            | "accounts.reset_ttl_s"
            | "mail.smtp_port"
            | "analytics.raw_retention_days"
            | "analytics.flush_interval_s"
            | "analytics.queue_size"
            | "memory.gdal_cache_mb"
            | "memory.trim_interval_s"
            | "memory.malloc_arenas"
            | "memory.raster_handles"
            | "memory.mmap_threshold_kb"
            | "memory.raster_threads"
            | "http.io_threads"
    );
    match value.parse::<i64>() {
        Ok(n) if numeric => toml::Value::Integer(n),
        _ => toml::Value::String(value.to_owned()),
    }
}

pub(super) fn set_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
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
