//! Tile sources and the layer catalog.
//!
//! Every configured layer becomes a [`Layer`]: its name, its validated [`Source`] (or the
//! reason it could not be opened, reported on `/ready` and in the catalog while the
//! other layers keep serving), and its *version*, which changes whenever its data
//! changes so that cache keys never point at stale tiles.

pub mod raster;
pub mod vector;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool_postgres::Pool;

use crate::config::{Config, LayerConfig};
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

    /// Classifies a query error as [`crate::db::DbError`] does: connection loss and
    /// shutdown are "unavailable", a cancelled statement a timeout.
    pub fn from_pg(e: tokio_postgres::Error) -> Self {
        use crate::db::DbError;
        match DbError::from(e) {
            DbError::Timeout => Self::Timeout,
            DbError::Unavailable(message) => Self::Unavailable(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A tile source of any kind.
#[derive(Debug)]
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

    /// Renders a tile; an empty vector means an empty tile.
    pub async fn render(
        &self,
        pool: &Pool,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Result<Vec<u8>, SourceError> {
        match self {
            Self::Vector(v) => v.render(pool, tile).await,
            Self::Raster(r) => r.render(tile, format, scale).await,
        }
    }
}

/// One configured layer.
#[derive(Debug)]
pub struct Layer {
    /// Name from the config (the URL path segment).
    pub name: String,
    /// The source, or why it is unavailable.
    pub source: Result<Source, String>,
    version: AtomicU64,
}

impl Layer {
    /// The current data version.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Marks the data as changed; returns the new version.
    pub fn bump(&self) -> u64 {
        self.version.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// All layers, by name and by index.
#[derive(Debug, Default)]
pub struct Catalog {
    layers: Vec<Layer>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Opens every configured layer. A broken layer is kept, with its error, so the
    /// server still starts and reports it.
    pub async fn open(config: &Config, client: &tokio_postgres::Client) -> Self {
        let mut catalog = Self::default();
        for (name, layer) in &config.layers {
            let source = match layer {
                LayerConfig::Vector(cfg) => VectorSource::inspect(client, name, cfg)
                    .await
                    .map(|v| Source::Vector(Arc::new(v))),
                LayerConfig::Raster(cfg) => {
                    let (name, cfg, styles) =
                        (name.clone(), cfg.clone(), config.styles_dir.clone());
                    tokio::task::spawn_blocking(move || RasterSource::inspect(&name, &cfg, &styles))
                        .await
                        .map_err(|e| format!("opening the raster failed: {e}"))
                        .and_then(|r| r.map(|r| Source::Raster(Arc::new(r))))
                }
            };
            if let Err(e) = &source {
                tracing::error!(layer = %name, error = %e, "layer unavailable");
            }
            catalog.push(name.clone(), source);
        }
        catalog
    }

    /// Adds a layer.
    pub fn push(&mut self, name: String, source: Result<Source, String>) {
        self.by_name.insert(name.clone(), self.layers.len());
        self.layers.push(Layer {
            name,
            source,
            version: AtomicU64::new(1),
        });
    }

    /// The layer called `name` and its index.
    pub fn get(&self, name: &str) -> Option<(usize, &Layer)> {
        self.by_name.get(name).map(|&i| (i, &self.layers[i]))
    }

    /// All layers in name order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Layer)> {
        self.layers.iter().enumerate()
    }

    /// Indices of the vector layers reading `schema.table`.
    pub fn layers_of_table(&self, table: &str) -> Vec<usize> {
        self.iter()
            .filter(|(_, l)| matches!(&l.source, Ok(Source::Vector(v)) if v.table == table))
            .map(|(i, _)| i)
            .collect()
    }

    /// The distinct tables behind vector layers.
    pub fn tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = self
            .layers
            .iter()
            .filter_map(|l| match &l.source {
                Ok(Source::Vector(v)) => Some(v.table.clone()),
                _ => None,
            })
            .collect();
        tables.sort();
        tables.dedup();
        tables
    }

    /// Layer by index.
    pub fn layer(&self, index: usize) -> Option<&Layer> {
        self.layers.get(index)
    }
}
