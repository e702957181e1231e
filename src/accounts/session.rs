//! Session tokens: 256 random bits, given to the client once (cookie or bearer token) and
//! stored only as a hash (HMAC-SHA-256 keyed by `PLANSCAPE_SIGNING_KEY` when set, else
//! SHA-256), so a database leak yields no usable session.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "planscape_session";

/// A new random token (43 URL-safe characters).
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database stores for `token`.
pub fn token_hash(token: &str, key: Option<&[u8]>) -> Vec<u8> {
    match key {
        Some(key) => match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(token.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Sha256::digest(token.as_bytes()).to_vec(),
        },
        None => Sha256::digest(token.as_bytes()).to_vec(),
    }
}

/// Whether a string looks like one of our tokens (checked before any database work).
pub fn plausible(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token().expect("token"), new_token().expect("token"));
        assert_ne!(a, b);
        assert!(plausible(&a) && plausible(&b));
        assert!(!plausible("short") && !plausible(&format!("{}!", &a[..42])));
        assert_eq!(token_hash(&a, None).len(), 32);
        assert_ne!(token_hash(&a, None), token_hash(&a, Some(b"key")));
        assert_eq!(token_hash(&a, Some(b"key")), token_hash(&a, Some(b"key")));
    }
}
