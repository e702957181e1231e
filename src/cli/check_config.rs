//! `planscape check-config`: print the effective configuration, secrets hidden.

use crate::config::Config;

use super::BoxError;

/// Runs `planscape check-config`.
pub fn run(config: &Config) -> Result<(), BoxError> {
    let mut shown = config.clone();
    shown.database.url = redact(&shown.database.url);
    shown.cache.shared.url = shown.cache.shared.url.as_deref().map(redact_userinfo);
    println!("{}", toml::to_string_pretty(&shown)?);
    Ok(())
}

/// Hides everything before the host of a URL (a Redis URL may carry the auth token as
/// its user name or its password).
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Hides the password of a URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
