//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a
//! browser that signed in to an account gets a signed cookie naming a random nonce, and
//! its later logins to that account are limited on the device's own allowance (keyed by
//! the nonce) instead of the account's shared allowance for untrusted clients, which an
//! outsider can exhaust.
//!
//! The cookie is `NONCE.MAC`: 128 random bits and HMAC-SHA-256 over the account's
//! normalized email and the nonce, keyed by a key derived from `PLANSCAPE_SIGNING_KEY`
//! (or, without one, a random key of the process: cookies then last until a restart
//! and are not shared by servers behind a balancer). The email is not in the cookie: a
//! cookie is valid only for the account it was issued for, checked without a database
//! query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The device cookie's name.
pub const COOKIE: &str = "planscape_device";

/// How long a browser keeps its device cookie: a year.
pub const MAX_AGE_S: u64 = 365 * 24 * 3600;

/// Length of the nonce in bytes.
const NONCE_BYTES: usize = 16;

/// Issues and checks device cookies.
#[derive(Clone)]
pub struct DeviceCookies {
    /// HMAC-SHA-256 keyed, cloned for each MAC.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for DeviceCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCookies")
    }
}

impl DeviceCookies {
    /// Keyed by `signing_key` (a key derived from it, so that device MACs and session
    /// hashes never share a key), or by a random key of this process.
    pub fn new(signing_key: Option<&[u8]>) -> Result<Self, String> {
        let mut key = [0u8; 32];
        match signing_key {
            Some(secret) => {
                let mut mac =
                    <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|e| e.to_string())?;
                mac.update(b"planscape device cookies v1");
                key.copy_from_slice(&mac.finalize().into_bytes());
            }
            None => getrandom::fill(&mut key).map_err(|e| e.to_string())?,
        }
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).map_err(|e| e.to_string())?;
        Ok(Self { keyed })
    }

    fn mac(&self, email: &str, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(email.as_bytes());
        mac.update(b"\n");
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new cookie value for the account `email` (normalized).
    pub fn issue(&self, email: &str) -> Result<String, String> {
        let mut bytes = [0u8; NONCE_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        let tag = self.mac(email, &nonce).finalize().into_bytes();
        Ok(format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// The nonce of `value` when it is a cookie this server issued for `email`.
    pub fn verify<'v>(&self, value: &'v str, email: &str) -> Option<&'v str> {
        let (nonce, tag) = value.trim().split_once('.')?;
        if nonce.len() != 22 || tag.len() != 43 {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(email, nonce).verify_slice(&tag).ok()?;
        Some(nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_bound_to_their_account_and_key() {
        let d = DeviceCookies::new(Some(b"a signing key of at least 32 characters")).expect("key");
        let value = d.issue("ann@example.org").expect("issue");
        let nonce = d.verify(&value, "ann@example.org").expect("valid");
        assert_eq!(nonce.len(), 22);
        assert!(value.starts_with(nonce));
        // Another account, another key, a tampered nonce or tag: not a device cookie.
        assert!(d.verify(&value, "bob@example.org").is_none());
        let other = DeviceCookies::new(Some(b"another signing key of 32 characters")).expect("key");
        assert!(other.verify(&value, "ann@example.org").is_none());
        let mut tampered = value.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(d.verify(&tampered, "ann@example.org").is_none());
        let (nonce, _) = value.split_once('.').expect("dot");
        let forged = format!("{nonce}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert!(d.verify(&forged, "ann@example.org").is_none());
        for junk in ["", ".", "x.y", &value[..value.len() - 1]] {
            assert!(d.verify(junk, "ann@example.org").is_none(), "{junk}");
        }
        // The same key makes the same MAC (servers behind a balancer share cookies).
        let same =
            DeviceCookies::new(Some(b"a signing key of at least 32 characters")).expect("key");
        assert!(same.verify(&value, "ann@example.org").is_some());
        // Two cookies of one account have different nonces.
        assert_ne!(d.issue("ann@example.org").expect("issue"), value);
    }
}
