//! Login rate limiting: failed attempts counted per client address and per account in a
//! fixed window; past the limit, logins answer 429 with `Retry-After` until the window
//! ends. Counters live in each server's memory (behind a load balancer each server
//! counts on its own: the effective limit is per server).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per key.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    /// At most `max` failures per key per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when `key` is over the limit.
    pub fn blocked(&self, key: &str) -> Option<u64> {
        let counts = self.counts.lock().ok()?;
        let (start, n) = counts.get(key)?;
        let elapsed = start.elapsed();
        (elapsed < self.window && *n >= self.max).then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Records a failure for `key`.
    pub fn failed(&self, key: &str) {
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
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(entry) = counts.get_mut(key)
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Forgets `key` (after a successful login).
    pub fn reset(&self, key: &str) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let l = Limiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(l.blocked("k").is_none());
            l.failed("k");
        }
        assert!(l.blocked("k").is_some());
        assert!(l.blocked("other").is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.blocked("k").is_none());
        l.failed("k");
        l.reset("k");
        assert!(l.blocked("k").is_none());
    }
}
