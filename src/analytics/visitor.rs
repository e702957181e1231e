//! The visitor hash of page views: HMAC-SHA-256 of the client's address and user agent
//! under a random salt that lives only in this process's memory and is replaced at
//! every UTC midnight, cut to 64 bits. The address itself is never stored; once a day's
//! salt is gone, nobody (the server included) can tell whose hash it was, and hashes of
//! different days cannot be linked.

use std::sync::Mutex;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// Hashes visitors under the day's salt.
pub struct VisitorHasher {
    salt: Mutex<(i64, [u8; 32])>,
}

impl Default for VisitorHasher {
    fn default() -> Self {
        Self {
            salt: Mutex::new((i64::MIN, [0; 32])),
        }
    }
}

impl VisitorHasher {
    /// The day's hash of a client (`address`, `user_agent`), or `None` when no salt can
    /// be had (no randomness): then nothing is recorded about the visitor.
    pub fn hash(&self, day: i64, address: &str, user_agent: &str) -> Option<i64> {
        let salt = {
            let mut salt = self.salt.lock().ok()?;
            if salt.0 != day {
                let mut fresh = [0u8; 32];
                getrandom::fill(&mut fresh).ok()?;
                *salt = (day, fresh);
            }
            salt.1
        };
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&salt).ok()?;
        mac.update(address.as_bytes());
        mac.update(b"\n");
        mac.update(user_agent.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Some(i64::from_be_bytes(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_day_links_a_visitor_and_the_next_does_not() {
        let v = VisitorHasher::default();
        let a = v.hash(1, "203.0.113.7", "Firefox");
        assert!(a.is_some());
        assert_eq!(a, v.hash(1, "203.0.113.7", "Firefox"));
        assert_ne!(a, v.hash(1, "203.0.113.8", "Firefox"));
        assert_ne!(a, v.hash(1, "203.0.113.7", "Chromium"));
        // A new day, a new salt: the same visitor is not linked.
        assert_ne!(a, v.hash(2, "203.0.113.7", "Firefox"));
    }
}
