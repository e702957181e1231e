//! The tile store: pregenerated tiles in a local folder or an S3 bucket.
//!
//! Objects live at `{prefix}/{layer}/{z}/{x}/{y}.{ext}` (`{y}@2x.{ext}` for 512 px raster
//! tiles) and carry the `Content-Type`, `Content-Encoding` and `Cache-Control` of the live
//! responses, so a Leaflet/MapLibre URL template pointed at the bucket works unchanged.
//! Vector tiles are stored gzip-compressed (`Content-Encoding: gzip`), images as they are.
//! Keys given to the store are relative to its root or prefix.

mod fs;
mod s3;

use bytes::Bytes;

use crate::config::StoreConfig;
use crate::tile::{EncodedTile, TileFormat, TileId};

/// Where a store lives, parsed from `file://FOLDER` or `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A local folder.
    File(std::path::PathBuf),
    /// An S3 bucket and key prefix (no leading or trailing `/`; may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

impl StoreUrl {
    /// Parses a store URL; the error says what is expected.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("`file://` needs a folder, e.g. `file://.data/tiles`".into());
            }
            return Ok(Self::File(path.into()));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
            if !valid_bucket {
                return Err(format!("`{bucket}` is not a valid S3 bucket name"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        Err(format!(
            "`{url}` is neither file://FOLDER nor s3://BUCKET/PREFIX"
        ))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "file://{}", p.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A tile store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not one of the accepted forms.
    #[error("invalid store url: {0}")]
    Url(String),
    /// A local file operation failed.
    #[error("tile store {path}: {message}")]
    Io {
        /// The file or folder.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An S3 request failed (after the SDK's retries with backoff).
    #[error("S3 {operation} {key}: {message}")]
    S3 {
        /// The operation (`GetObject`, ...).
        operation: &'static str,
        /// The bucket or key.
        key: String,
        /// The service's or the client's message.
        message: String,
    },
}

/// The HTTP metadata an object carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `Content-Type`.
    pub content_type: String,
    /// `Content-Encoding`, when compressed.
    pub content_encoding: Option<String>,
    /// `Cache-Control`.
    pub cache_control: String,
}

/// A tile as stored: the body and its metadata.
#[derive(Debug, Clone)]
pub struct StoredTile {
    /// Object body.
    pub body: Bytes,
    /// Object metadata.
    pub meta: ObjectMeta,
}

impl StoredTile {
    /// The stored form of a non-empty rendered tile: gzip for vector tiles (as the live
    /// server sends them to clients accepting gzip), the image bytes otherwise.
    pub fn from_encoded(tile: &EncodedTile, format: TileFormat, cache_control: &str) -> Self {
        let (body, content_encoding) = match &tile.gzip {
            Some(gz) => (gz.clone(), Some("gzip".to_owned())),
            None => (tile.raw.clone(), None),
        };
        Self {
            body,
            meta: ObjectMeta {
                content_type: format.content_type().to_owned(),
                content_encoding,
                cache_control: cache_control.to_owned(),
            },
        }
    }
}

/// Decodes a stored body back into a servable tile (a gzip body is inflated once, so the
/// server can answer clients with and without gzip, with the live ETag).
pub fn decode_stored(body: Bytes, format: TileFormat) -> Result<EncodedTile, StoreError> {
    if body.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut raw = Vec::with_capacity(body.len() * 3);
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .map_err(|e| StoreError::Io {
                path: "(stored tile)".into(),
                message: format!("corrupt gzip body: {e}"),
            })?;
        return Ok(EncodedTile::with_gzip(raw, body));
    }
    Ok(EncodedTile::new(body.to_vec(), format))
}

/// The key of a tile, relative to the store's root: `{layer}/{z}/{x}/{y}[@2x].{ext}`.
pub fn tile_key(layer: &str, tile: TileId, format: TileFormat, scale: u8) -> String {
    let ratio = if scale == 2 { "@2x" } else { "" };
    format!(
        "{layer}/{}/{}/{}{ratio}.{}",
        tile.z,
        tile.x,
        tile.y,
        format.extension()
    )
}

/// The folder of `layer`'s empty-tile records for zoom `z` (written by `seed`, beside
/// the tiles; the `_empty` segment is no zoom level, so no tile URL reaches it).
pub fn empty_records_prefix(layer: &str, z: u8) -> String {
    format!("{layer}/_empty/{z}/")
}

/// Parses `{z}/{x}/{y}...` of a key below `{layer}/` back into a tile.
pub fn parse_tile_key(rest: &str) -> Option<TileId> {
    let mut parts = rest.splitn(3, '/');
    let z = parts.next()?;
    let x = parts.next()?;
    let file = parts.next()?;
    let y = file.split(['.', '@']).next()?;
    TileId::parse(z, x, y).ok()
}

/// A tile store.
#[derive(Debug)]
pub enum TileStore {
    /// A local folder.
    Fs(fs::FsStore),
    /// An S3 bucket.
    S3(s3::S3Store),
}

impl TileStore {
    /// Opens the store at `url` (S3 settings from `config`; credentials from the standard
    /// AWS chain). Does not contact the store: see [`TileStore::check`].
    pub async fn open(url: &StoreUrl, config: &StoreConfig) -> Self {
        match url {
            StoreUrl::File(root) => Self::Fs(fs::FsStore::new(root.clone())),
            StoreUrl::S3 { bucket, prefix } => {
                Self::S3(s3::S3Store::new(bucket.clone(), prefix.clone(), config).await)
            }
        }
    }

    /// Parses `url` (`file://FOLDER` or `s3://BUCKET/PREFIX`) and opens the store there.
    /// Does not contact the store: see [`TileStore::check`].
    pub async fn open_url(url: &str, config: &StoreConfig) -> Result<Self, StoreError> {
        let url = StoreUrl::parse(url).map_err(StoreError::Url)?;
        Ok(Self::open(&url, config).await)
    }

    /// Checks that the store can be reached and written to (the folder exists or can
    /// be made; the bucket exists and answers).
    pub async fn check(&self) -> Result<(), StoreError> {
        match self {
            Self::Fs(s) => s.check().await,
            Self::S3(s) => s.check().await,
        }
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self {
            Self::Fs(s) => s.get(key).await,
            Self::S3(s) => s.get(key).await,
        }
    }

    /// Writes an object (atomically: readers see the old object or the whole new one).
    pub async fn put(&self, key: &str, tile: &StoredTile) -> Result<(), StoreError> {
        match self {
            Self::Fs(s) => s.put(key, &tile.body).await,
            Self::S3(s) => s.put(key, tile).await,
        }
    }

    /// Keys below `prefix` (relative to the store's root), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Fs(s) => s.list(prefix).await,
            Self::S3(s) => s.list(prefix).await,
        }
    }

    /// Deletes objects; missing ones are not an error.
    pub async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        match self {
            Self::Fs(s) => s.delete(keys).await,
            Self::S3(s) => s.delete(keys).await,
        }
    }

    /// The object's metadata as stored (S3 only; a folder keeps none). For tests and
    /// `seed` reports.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self {
            Self::Fs(_) => Ok(None),
            Self::S3(s) => s.head(key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("file://.data/tiles"),
            Ok(StoreUrl::File(".data/tiles".into()))
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/tiles/v1/"),
            Ok(StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "tiles/v1".into()
            })
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").map(|u| u.to_string()),
            Ok("s3://my-bucket".into())
        );
        assert!(StoreUrl::parse("s3://My_Bucket/x").is_err());
        assert!(StoreUrl::parse("http://x").is_err());
        assert!(StoreUrl::parse("file://").is_err());
    }

    #[test]
    fn tile_keys_round_trip() {
        let tile = TileId {
            z: 9,
            x: 83,
            y: 197,
        };
        assert_eq!(
            tile_key("slope", tile, TileFormat::Png, 2),
            "slope/9/83/197@2x.png"
        );
        let key = tile_key("watersheds", tile, TileFormat::Mvt, 1);
        assert_eq!(key, "watersheds/9/83/197.mvt");
        assert_eq!(parse_tile_key("9/83/197.mvt"), Some(tile));
        assert_eq!(parse_tile_key("9/83/197@2x.png"), Some(tile));
        assert_eq!(parse_tile_key("9/83"), None);
        assert_eq!(parse_tile_key("9/83/999.png"), None);
    }

    #[test]
    fn stored_vector_tiles_decode_to_the_live_tile() {
        let live = EncodedTile::new(b"some mvt bytes, some mvt bytes".to_vec(), TileFormat::Mvt);
        let stored = StoredTile::from_encoded(&live, TileFormat::Mvt, "public, max-age=60");
        assert_eq!(stored.meta.content_encoding.as_deref(), Some("gzip"));
        let back = decode_stored(stored.body, TileFormat::Mvt).expect("decodes");
        assert_eq!(back.raw, live.raw);
        assert_eq!(back.etag, live.etag);
        assert!(decode_stored(Bytes::from_static(&[0x1f, 0x8b, 1, 2]), TileFormat::Mvt).is_err());
    }
}
