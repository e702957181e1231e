//! Login rate limiting: failed attempts counted per client address and per account in a
//! fixed window; past the limit, logins answer 429 with `Retry-After` until the window
//! ends. The same counters limit sign-ups, password checks and reset requests (their
//! keys have prefixes of their own).
//!
//! Counters live in each server's memory and, when the shared cache is configured
//! (`[cache.shared]`, `limits = true`), in the shared Redis/Valkey too: one atomic script
//! per operation (increment with expiry), so behind a load balancer a limit holds across
//! all servers. When the shared server does not answer (down, slow, breaker open), each
//! server goes on with its own counts, which it always keeps. Keys are hashed before
//! they are sent (no email or address is stored in the shared server). Invitations are
//! limited in the database, across servers already
//! ([`crate::planning::invitations`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::shared_store::SharedStore;

/// Adds a failure to the key's window (which starts with the first failure); returns
/// the count.
const FAILED: &str = r"
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// -1 when the key is under the limit ARGV[1], else the milliseconds left in its window.
const BLOCKED: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then
  return -1
end
return math.max(redis.call('PTTL', KEYS[1]), 0)
";

/// Takes one failure back (never below zero).
const SUCCEEDED: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
";

/// Counts failures per key.
pub struct Limiter {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
    shared: Option<SharedCounts>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("max", &self.max)
            .field("window", &self.window)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// The counters in the shared server.
struct SharedCounts {
    store: Arc<SharedStore>,
    failed: redis::Script,
    blocked: redis::Script,
    succeeded: redis::Script,
}

impl Limiter {
    /// At most `max` failures per key per `window`, counted in this server.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            counts: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// The limiter counting in `store` too (when given).
    pub fn with_shared(mut self, store: Option<Arc<SharedStore>>) -> Self {
        self.shared = store.map(|store| SharedCounts {
            store,
            failed: redis::Script::new(FAILED),
            blocked: redis::Script::new(BLOCKED),
            succeeded: redis::Script::new(SUCCEEDED),
        });
        self
    }

    /// The shared server's key of `key`: hashed, under the store's prefix.
    fn shared_key(store: &SharedStore, key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        store.key(&format!("limit:{}", URL_SAFE_NO_PAD.encode(&digest[..18])))
    }

    /// `Some(seconds to wait)` when `key` is over the limit: as the shared server
    /// counts, or (without an answer from it) as this server does.
    pub async fn blocked(&self, key: &str) -> Option<u64> {
        if let Some(shared) = &self.shared {
            let shared_key = Self::shared_key(&shared.store, key);
            let max = self.max;
            let answer = shared
                .store
                .call("limit", |mut connection| async move {
                    shared
                        .blocked
                        .key(&shared_key)
                        .arg(max)
                        .invoke_async::<i64>(&mut connection)
                        .await
                })
                .await;
            if let Ok(ms) = answer {
                metrics::counter!("shared_limits_total", "result" => "shared").increment(1);
                return u64::try_from(ms).ok().map(|ms| ms.div_ceil(1000).max(1));
            }
            metrics::counter!("shared_limits_total", "result" => "local").increment(1);
        }
        self.blocked_here(key)
    }

    fn blocked_here(&self, key: &str) -> Option<u64> {
        let counts = self.counts.lock().ok()?;
        let (start, n) = counts.get(key)?;
        let elapsed = start.elapsed();
        (elapsed < self.window && *n >= self.max).then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Records a failure for `key`.
    pub async fn failed(&self, key: &str) {
        self.failed_here(key);
        if let Some(shared) = &self.shared {
            let shared_key = Self::shared_key(&shared.store, key);
            let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
            let _ = shared
                .store
                .call("limit", |mut connection| async move {
                    shared
                        .failed
                        .key(&shared_key)
                        .arg(window_ms)
                        .invoke_async::<i64>(&mut connection)
                        .await
                })
                .await;
        }
    }

    fn failed_here(&self, key: &str) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if counts.len() > 100_000 {
            let window = self.window;
            counts.retain(|_, (start, _)| start.elapsed() < window);
            if counts.len() > 100_000 && !counts.contains_key(key) {
                // Bounded memory: past the cap, new keys are not tracked until the
                // window frees room (existing keys keep counting).
                return;
            }
        }
        let entry = counts.entry(key.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Takes back one counted attempt of `key` (it succeeded).
    pub async fn succeeded(&self, key: &str) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(entry) = counts.get_mut(key)
        {
            entry.1 = entry.1.saturating_sub(1);
        }
        if let Some(shared) = &self.shared {
            let shared_key = Self::shared_key(&shared.store, key);
            let _ = shared
                .store
                .call("limit", |mut connection| async move {
                    shared
                        .succeeded
                        .key(&shared_key)
                        .invoke_async::<i64>(&mut connection)
                        .await
                })
                .await;
        }
    }

    /// Forgets `key` (after a successful login).
    pub async fn reset(&self, key: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.remove(key);
        }
        if let Some(shared) = &self.shared {
            let shared_key = Self::shared_key(&shared.store, key);
            let _ = shared
                .store
                .call("limit", |mut connection| async move {
                    redis::cmd("DEL")
                        .arg(&shared_key)
                        .query_async::<i64>(&mut connection)
                        .await
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blocks_after_max_failures_until_the_window_ends() {
        let l = Limiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(l.blocked("k").await.is_none());
            l.failed("k").await;
        }
        assert!(l.blocked("k").await.is_some());
        assert!(l.blocked("other").await.is_none());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(l.blocked("k").await.is_none());
        l.failed("k").await;
        l.reset("k").await;
        assert!(l.blocked("k").await.is_none());
    }
}
