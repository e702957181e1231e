//! The connection to the shared Redis/Valkey server (`[cache.shared]`), which the shared
//! tile cache level ([`crate::cache::shared`]) and the login limits
//! ([`crate::accounts::limiter`]) use.
//!
//! The shared server is never a dependency: every operation has a short timeout, and a
//! [`Breaker`] stops asking after failures in a row, so when it is slow or down requests
//! carry on as without it (callers treat [`SharedError`] as "no answer"); it recovers by
//! itself (a probe after each cooldown, on a fresh connection). One multiplexed
//! connection serves every request (pipelined, reconnecting on its own); `rediss://`
//! goes through rustls with the system's CA certificates.
//!
//! Metrics: `shared_cache_op_seconds{op}` (time of each answered operation),
//! `shared_cache_errors_total{op, kind="timeout"|"error"}`,
//! `shared_cache_skipped_total{op}` (not asked: the breaker is open) and the gauge
//! `shared_cache_breaker_open`.

mod breaker;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::SharedCacheConfig;
pub use breaker::{Breaker, Permit};

/// Why the shared server gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// Not asked: the breaker is open after failures.
    #[error("the shared cache is not asked for a while after failures")]
    Open,
    /// No answer in time.
    #[error("the shared cache did not answer within {0:?}")]
    Timeout(Duration),
    /// The server or the connection failed.
    #[error("shared cache: {0}")]
    Redis(String),
    /// The URL cannot be used.
    #[error("invalid shared cache URL (cache.shared.url, PLANSCAPE_SHARED_CACHE_URL): {0}")]
    Url(String),
}

/// The shared server (see the module documentation).
pub struct SharedStore {
    client: redis::Client,
    manager_config: ConnectionManagerConfig,
    connection: RwLock<ConnectionManager>,
    timeout: Duration,
    breaker: Breaker,
    prefix: String,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold the auth token.
        f.debug_struct("SharedStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SharedStore {
    /// The store of `config`, or `None` without a URL. Connects lazily (a server that is
    /// down at start-up is no start-up error) and starts connecting in the background at
    /// once. Needs a Tokio runtime.
    pub fn open(config: &SharedCacheConfig) -> Result<Option<Arc<Self>>, SharedError> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        // The parser's messages do not echo the URL.
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            SharedError::Url(match e.detail() {
                Some(detail) => format!("{}: {detail}", e.category()),
                None => e.category().to_owned(),
            })
        })?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            // Connecting (TCP, TLS, AUTH) may take longer than an answer: it goes on in
            // the background while requests carry on without the shared level.
            .set_connection_timeout(Some(timeout.max(Duration::from_secs(2))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map_err(|e| SharedError::Redis(e.to_string()))?;
        let store = Arc::new(Self {
            client,
            manager_config,
            connection: RwLock::new(connection),
            timeout,
            breaker: Breaker::new(
                config.breaker_failures,
                Duration::from_millis(config.breaker_cooldown_ms),
            ),
            prefix: config.prefix.clone(),
        });
        metrics::gauge!("shared_cache_breaker_open").set(0.0);
        store.connect_in_background();
        Ok(Some(store))
    }

    /// `prefix` + `rest`: every key the server writes.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// Runs one operation (`op` names it in metrics) under the timeout and the breaker.
    pub async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, SharedError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let permit = self.breaker.allow();
        if permit == Permit::Refused {
            metrics::counter!("shared_cache_skipped_total", "op" => op).increment(1);
            return Err(SharedError::Open);
        }
        if permit == Permit::Probe {
            // After failures the connection may be stuck (a peer that vanished without a
            // reset): the probe asks over a new one.
            self.renew_connection();
        }
        let connection = match self.connection.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, f(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(SharedError::Redis(e.to_string())),
            Err(_) => Err(SharedError::Timeout(self.timeout)),
        };
        match &result {
            Ok(_) => {
                metrics::histogram!("shared_cache_op_seconds", "op" => op)
                    .record(started.elapsed().as_secs_f64());
                if self.breaker.succeeded() {
                    metrics::gauge!("shared_cache_breaker_open").set(0.0);
                    tracing::info!("the shared cache answers again");
                }
            }
            Err(e) => {
                let kind = if matches!(e, SharedError::Timeout(_)) {
                    "timeout"
                } else {
                    "error"
                };
                metrics::counter!("shared_cache_errors_total", "op" => op, "kind" => kind)
                    .increment(1);
                if self.breaker.failed() {
                    metrics::gauge!("shared_cache_breaker_open").set(1.0);
                    tracing::warn!(error = %e, "the shared cache fails; not asking it for a while");
                } else {
                    tracing::debug!(error = %e, op, "shared cache operation failed");
                }
            }
        }
        result
    }

    fn renew_connection(&self) {
        match ConnectionManager::new_lazy_with_config(
            self.client.clone(),
            self.manager_config.clone(),
        ) {
            Ok(fresh) => {
                if let Ok(mut connection) = self.connection.write() {
                    *connection = fresh;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot make a new shared cache connection"),
        }
    }

    /// Drives the first connection from a task of its own (a lazy connection only makes
    /// progress while someone waits for it, and requests stop waiting at the timeout).
    fn connect_in_background(self: &Arc<Self>) {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let connection = match store.connection.read() {
                Ok(c) => c.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let mut connection = connection;
            match redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
            {
                Ok(_) => tracing::info!(prefix = %store.prefix, "shared cache connected"),
                Err(e) => {
                    tracing::warn!(error = %e, "shared cache not reachable yet; serving without it")
                }
            }
        });
    }
}
