//! The basemaps the web app offers (`[[basemaps]]`): tile URL templates of other
//! providers, drawn under this server's layers. The web app always adds a plain
//! background, which needs no network.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One basemap of the web app's switch.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasemapConfig {
    /// Identifier in the app's URL (`basemap=ID`): letters, digits, `_`, `-`.
    pub id: String,
    /// The name shown in the switch.
    pub name: String,
    /// XYZ URL template (`{z}`, `{x}`, `{y}`; Leaflet's `{s}` and `{r}` too), http(s).
    /// `{key}` is replaced by the value of the environment variable `key_env`.
    pub url: String,
    /// Attribution shown on the map (HTML, as the provider asks for it).
    #[serde(default)]
    pub attribution: String,
    /// Deepest zoom the provider serves.
    #[serde(default = "default_max_zoom")]
    pub max_zoom: u8,
    /// Environment variable holding the provider's key (e.g. a Stadia Maps API key),
    /// kept out of the file like every secret.
    #[serde(default)]
    pub key_env: Option<String>,
}

fn default_max_zoom() -> u8 {
    19
}

/// The default list: OpenStreetMap's standard tiles.
pub fn default_basemaps() -> Vec<BasemapConfig> {
    vec![BasemapConfig {
        id: "osm".into(),
        name: "OpenStreetMap".into(),
        url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
        attribution: "&copy; <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors".into(),
        max_zoom: 19,
        key_env: None,
    }]
}

/// A basemap as the web app receives it: the key, when any, already in the URL.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Basemap {
    /// Identifier (`basemap=ID` in the app's URL).
    pub id: String,
    /// Display name.
    pub name: String,
    /// XYZ URL template for Leaflet.
    pub url: String,
    /// Attribution (HTML).
    pub attribution: String,
    /// Deepest zoom.
    pub max_zoom: u8,
}

impl BasemapConfig {
    /// Checks the entry at `[[basemaps]]` index `i`.
    pub fn validate(&self, i: usize) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            key: format!("basemaps[{i}]"),
            message,
        };
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 32
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !id_ok || self.id == "plain" {
            return Err(invalid(format!(
                "id `{}` must be 1-32 letters, digits, `_` or `-`, and not `plain` (the app's own background)",
                self.id
            )));
        }
        if self.name.trim().is_empty() {
            return Err(invalid("name must not be empty".into()));
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(invalid(format!(
                "url `{}` must start with https:// or http://",
                self.url
            )));
        }
        if !["{z}", "{x}", "{y}"].iter().all(|p| self.url.contains(p)) {
            return Err(invalid("url must contain {z}, {x} and {y}".into()));
        }
        if self.url.contains("{key}") != self.key_env.is_some() {
            return Err(invalid(
                "a url with {key} needs key_env, and key_env needs {key} in the url".into(),
            ));
        }
        if self.max_zoom > 24 {
            return Err(invalid("max_zoom must be at most 24".into()));
        }
        Ok(())
    }

    /// The basemap for the app, its key read through `env`; `None` when its key
    /// variable is unset or empty (the switch then leaves it out).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Option<Basemap> {
        let url = match &self.key_env {
            Some(var) => {
                let key = env(var).filter(|k| !k.is_empty())?;
                let key: String = url_encode(&key);
                self.url.replace("{key}", &key)
            }
            None => self.url.clone(),
        };
        Some(Basemap {
            id: self.id.clone(),
            name: self.name.clone(),
            url,
            attribution: self.attribution.clone(),
            max_zoom: self.max_zoom,
        })
    }
}

/// Percent-encodes everything but unreserved characters (a key goes in a query string).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stadia() -> BasemapConfig {
        BasemapConfig {
            id: "stadia".into(),
            name: "Stadia".into(),
            url:
                "https://tiles.stadiamaps.com/tiles/alidade_smooth/{z}/{x}/{y}{r}.png?api_key={key}"
                    .into(),
            attribution: String::new(),
            max_zoom: 20,
            key_env: Some("STADIA_KEY".into()),
        }
    }

    #[test]
    fn key_comes_from_the_environment_encoded() {
        let b = stadia();
        b.validate(0).unwrap();
        let got = b
            .resolve(|v| (v == "STADIA_KEY").then(|| "a b&c".to_owned()))
            .unwrap();
        assert_eq!(
            got.url,
            "https://tiles.stadiamaps.com/tiles/alidade_smooth/{z}/{x}/{y}{r}.png?api_key=a%20b%26c"
        );
        assert!(b.resolve(|_| None).is_none());
        assert!(b.resolve(|_| Some(String::new())).is_none());
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut b = stadia();
        b.key_env = None;
        assert!(b.validate(0).is_err());
        let mut b = stadia();
        b.url = "ftp://x/{z}/{x}/{y}?k={key}".into();
        assert!(b.validate(0).is_err());
        let mut b = stadia();
        b.id = "plain".into();
        assert!(b.validate(0).is_err());
        let mut b = stadia();
        b.url = "https://x/{z}/{x}.png?k={key}".into();
        assert!(b.validate(0).is_err());
        for d in default_basemaps() {
            d.validate(0).unwrap();
        }
    }
}
