//! Tile sources: renderers that take resolved layer settings and make one tile's bytes,
//! vector tiles from PostGIS ([`vector`]) and raster tiles through GDAL ([`raster`]).

pub mod raster;
pub mod vector;

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::tile::{TileFormat, TileId};
use raster::RasterSource;
use vector::VectorSource;

/// A failure while rendering a tile.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The database cannot be reached (down, restarting, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The tile store cannot be read.
    #[error("tile store unavailable: {0}")]
    Store(String),
    /// The tile query ran past `statement_timeout`.
    #[error("tile query timed out")]
    Timeout,
    /// Anything else; logged in full, reported generically.
    #[error("{0}")]
    Internal(String),
}

impl SourceError {
    /// Classifies a pool error.
    pub fn from_pool(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Self::from_pg(e),
            other => Self::Unavailable(other.to_string()),
        }
    }

    /// Classifies a query error as [`crate::db::DbError`] does: connection loss,
    /// shutdown and a connection refused over TLS are "unavailable", a cancelled
    /// statement a timeout.
    pub fn from_pg(e: tokio_postgres::Error) -> Self {
        use crate::db::DbError;
        match DbError::from(e) {
            DbError::Timeout => Self::Timeout,
            DbError::Unavailable(message) => Self::Unavailable(message),
            // A pooled connection refused over TLS: no retry mends it; tell the operator.
            tls @ (DbError::Tls(_) | DbError::EncryptionRequired(_)) => {
                tracing::error!(error = %tls, "cannot connect to the database");
                Self::Unavailable(tls.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A tile source of any kind.
#[derive(Debug, Clone)]
pub enum Source {
    /// PostGIS vector tiles.
    Vector(Arc<VectorSource>),
    /// GDAL raster tiles.
    Raster(Arc<RasterSource>),
}

impl Source {
    /// Lowest zoom served.
    pub fn minzoom(&self) -> u8 {
        match self {
            Self::Vector(v) => v.minzoom,
            Self::Raster(r) => r.minzoom,
        }
    }

    /// Highest zoom served.
    pub fn maxzoom(&self) -> u8 {
        match self {
            Self::Vector(v) => v.maxzoom,
            Self::Raster(r) => r.maxzoom,
        }
    }

    /// Formats this source can produce.
    pub fn supports(&self, format: TileFormat, scale: u8) -> bool {
        match self {
            Self::Vector(_) => format == TileFormat::Mvt && scale == 1,
            Self::Raster(_) => {
                matches!(format, TileFormat::Png | TileFormat::Webp) && (scale == 1 || scale == 2)
            }
        }
    }

    /// The native format (used in TileJSON URLs).
    pub fn format(&self) -> TileFormat {
        match self {
            Self::Vector(_) => TileFormat::Mvt,
            Self::Raster(_) => TileFormat::Png,
        }
    }

    /// What this source serves for a tile without data: nothing for vector tiles (204),
    /// a transparent image for raster tiles.
    pub fn empty_tile(&self, format: TileFormat, scale: u8) -> Result<Vec<u8>, SourceError> {
        match self {
            Self::Vector(_) => Ok(Vec::new()),
            Self::Raster(_) => raster::encode::transparent(256 * u32::from(scale), format)
                .map_err(|e| SourceError::Internal(e.to_string())),
        }
    }

    /// The data bounds in longitude/latitude, when known.
    pub fn bounds(&self) -> Option<[f64; 4]> {
        match self {
            Self::Vector(v) => v.bounds,
            Self::Raster(r) => Some(r.bounds),
        }
    }

    /// The configured description (TileJSON, the layer catalog).
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Vector(v) => v.description.as_deref(),
            Self::Raster(r) => r.description.as_deref(),
        }
    }

    /// A hash of what this source's tiles are made from besides the data (settings,
    /// style, the raster file's size and time, the server's version): servers whose
    /// fingerprints differ never share a layer's tiles in the shared cache level.
    pub fn fingerprint(&self) -> u64 {
        let made_from = match self {
            Self::Vector(v) => v.fingerprint_text(),
            Self::Raster(r) => r.fingerprint_text(),
        };
        xxhash_rust::xxh3::xxh3_64(format!("{} {made_from}", env!("CARGO_PKG_VERSION")).as_bytes())
    }

    /// `"vector"` or `"raster"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Vector(_) => "vector",
            Self::Raster(_) => "raster",
        }
    }

    /// Renders a tile; an empty vector means an empty tile. Vector sources need `pool`.
    pub async fn render(
        &self,
        pool: Option<&Pool>,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Result<Vec<u8>, SourceError> {
        match self {
            Self::Vector(v) => match pool {
                Some(pool) => v.render(pool, tile).await,
                None => Err(SourceError::Unavailable("no database pool".into())),
            },
            Self::Raster(r) => r.render(tile, format, scale).await,
        }
    }
}
