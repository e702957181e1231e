//! `[cache.shared]`: the shared second cache level and the shared login limits, in a
//! Redis or Valkey server (ElastiCache in AWS). Without `url` nothing is shared: every
//! server caches and counts on its own.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The shared cache settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCacheConfig {
    /// `redis://HOST:PORT[/DB]` or `rediss://` (TLS, the system's CA certificates), an
    /// auth token as the URL's password (`PLANSCAPE_SHARED_CACHE_URL`; one with a
    /// password only from the environment). Unset: no shared level.
    #[serde(default)]
    pub url: Option<String>,
    /// Prefix of every key the server writes (several deployments may share a server).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long a shared tile lives, seconds (`PLANSCAPE_SHARED_CACHE_TTL_S`).
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    /// Largest tile written to the shared level, KiB (plain and gzip bytes together).
    #[serde(default = "default_max_entry_kb")]
    pub max_entry_kb: u64,
    /// How long a request waits for the shared server, milliseconds
    /// (`PLANSCAPE_SHARED_CACHE_TIMEOUT_MS`); past it the tile is made as without it.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Failures (errors or timeouts) in a row after which the server stops asking.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long it stops asking then, milliseconds; then one request tries again.
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown_ms: u64,
    /// Count failed logins, sign-ups, password checks and reset requests in the shared
    /// server too, so a limit holds across all servers.
    #[serde(default = "default_limits")]
    pub limits: bool,
}

fn default_prefix() -> String {
    "planscape:".to_owned()
}
fn default_ttl() -> u64 {
    86_400
}
fn default_max_entry_kb() -> u64 {
    4096
}
fn default_timeout() -> u64 {
    100
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown() -> u64 {
    5_000
}
fn default_limits() -> bool {
    true
}

impl Default for SharedCacheConfig {
    fn default() -> Self {
        Self {
            url: None,
            prefix: default_prefix(),
            ttl_s: default_ttl(),
            max_entry_kb: default_max_entry_kb(),
            timeout_ms: default_timeout(),
            breaker_failures: default_breaker_failures(),
            breaker_cooldown_ms: default_breaker_cooldown(),
            limits: default_limits(),
        }
    }
}

impl SharedCacheConfig {
    /// Checks the values; messages never echo the URL (it may hold the auth token).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("cache.shared.{key}"),
            message: message.to_owned(),
        };
        if let Some(url) = &self.url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid("url", "must start with redis:// or rediss://"));
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || !self.prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid(
                "prefix",
                "must be 1 to 64 printable characters without spaces",
            ));
        }
        if self.ttl_s == 0 || self.ttl_s > 30 * 86_400 {
            return Err(invalid("ttl_s", "must be between 1 and 2592000 (30 days)"));
        }
        if self.max_entry_kb == 0 || self.max_entry_kb > 64 * 1024 {
            return Err(invalid("max_entry_kb", "must be between 1 and 65536"));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 10_000 {
            return Err(invalid("timeout_ms", "must be between 1 and 10000"));
        }
        if self.breaker_failures == 0 {
            return Err(invalid("breaker_failures", "must be at least 1"));
        }
        if self.breaker_cooldown_ms == 0 || self.breaker_cooldown_ms > 600_000 {
            return Err(invalid(
                "breaker_cooldown_ms",
                "must be between 1 and 600000",
            ));
        }
        Ok(())
    }
}

/// Whether `url` (a `redis://` URL) carries a password, which a file may not hold.
pub(super) fn has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':') || !userinfo.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_found() {
        assert!(has_password("rediss://:token@cache.example:6379"));
        assert!(has_password("redis://user:token@cache.example:6379/0"));
        assert!(has_password("redis://token@cache.example"));
        assert!(!has_password("redis://cache.example:6379/0"));
        assert!(!has_password("redis://127.0.0.1:6379/0?x=a@b"));
    }
}
