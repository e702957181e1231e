//! The layer catalog: every layer the server knows — configured layers and the
//! conditions catalog's layers alike — with its opened [`Source`] (or the reason it could
//! not be opened, reported on `/ready` and in `/tiles` while the other layers keep
//! serving), its pregeneration settings, and its *version*, which changes whenever its
//! data changes so that cache keys never point at stale tiles.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::TileError;
use crate::config::{LayerConfig, PregeneratedConfig};
use crate::source::Source;
use crate::source::raster::RasterSource;
use crate::source::vector::VectorSource;
use crate::tile::TileFormat;

/// One layer.
#[derive(Debug)]
pub struct Layer {
    /// Its name (the URL path segment and the store's key prefix).
    pub name: String,
    /// The source, or why it is unavailable.
    pub source: Result<Source, String>,
    /// Set when its tiles are read from the tile store.
    pub pregenerated: Option<PregeneratedConfig>,
    /// Its name in the shared cache level: the name and a fingerprint of what its tiles
    /// are made from ([`crate::cache::shared::layer_id`]).
    pub shared_id: String,
    /// Its metric handles (tiles served, cache hits and misses).
    pub metrics: super::layer_metrics::LayerMetrics,
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

    /// The opened source (503 `layer_unavailable` for one that failed to open).
    pub fn source(&self) -> Result<&Source, TileError> {
        self.source
            .as_ref()
            .map_err(|reason| TileError::LayerUnavailable {
                layer: self.name.clone(),
                reason: reason.clone(),
            })
    }

    /// Checks that the layer makes tiles in `format` at pixel ratio `scale`.
    pub fn check_form(&self, format: TileFormat, scale: u8) -> Result<&Source, TileError> {
        let source = self.source()?;
        if !source.supports(format, scale) {
            return Err(TileError::UnsupportedForm {
                layer: self.name.clone(),
                form: format!(
                    "{}{}",
                    if scale == 2 { "@2x " } else { "" },
                    format.extension()
                ),
            });
        }
        Ok(source)
    }

    /// The part of `zooms` the layer serves (an error naming both when none).
    pub fn zooms_within(
        &self,
        zooms: &RangeInclusive<u8>,
    ) -> Result<RangeInclusive<u8>, TileError> {
        let source = self.source()?;
        let lo = (*zooms.start()).max(source.minzoom());
        let hi = (*zooms.end()).min(source.maxzoom());
        if lo > hi {
            return Err(TileError::ZoomOutOfRange {
                layer: self.name.clone(),
                asked: format!("{}-{}", zooms.start(), zooms.end()),
                min: source.minzoom(),
                max: source.maxzoom(),
            });
        }
        Ok(lo..=hi)
    }
}

/// All layers, by name and by index.
#[derive(Debug, Default)]
pub struct Catalog {
    layers: Vec<Layer>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Opens every layer of `configs`. A broken layer is kept, with its error, so the
    /// server still starts and reports it; vector layers need `client` to be inspected.
    pub async fn open(
        configs: &BTreeMap<String, LayerConfig>,
        styles_dir: &Path,
        client: Option<&tokio_postgres::Client>,
    ) -> Self {
        let mut catalog = Self::default();
        for (name, config) in configs {
            let source = match config {
                LayerConfig::Vector(cfg) => match client {
                    Some(client) => VectorSource::inspect(client, name, cfg)
                        .await
                        .map(|v| Source::Vector(Arc::new(v))),
                    None => Err("vector layers need the database".to_owned()),
                },
                LayerConfig::Raster(cfg) => {
                    let (name, cfg, styles) = (name.clone(), cfg.clone(), styles_dir.to_owned());
                    // On a raster thread: reading the CRS gives the thread a PROJ context
                    // that a blocking-pool thread would keep for as long as it lives.
                    crate::raster_threads::run(move || RasterSource::inspect(&name, &cfg, &styles))
                        .await
                        .map_err(|e| format!("opening the raster failed: {e}"))
                        .and_then(|r| r.map(|r| Source::Raster(Arc::new(r))))
                }
            };
            if let Err(e) = &source {
                tracing::error!(layer = %name, error = %e, "layer unavailable");
            }
            catalog.push(name.clone(), source, config.pregenerated().cloned());
        }
        catalog
    }

    /// Adds a layer.
    pub fn push(
        &mut self,
        name: String,
        source: Result<Source, String>,
        pregenerated: Option<PregeneratedConfig>,
    ) {
        self.by_name.insert(name.clone(), self.layers.len());
        let made_from = format!(
            "{:016x} {pregenerated:?}",
            source.as_ref().map_or(0, Source::fingerprint)
        );
        let shared_id =
            crate::cache::shared::layer_id(&name, xxhash_rust::xxh3::xxh3_64(made_from.as_bytes()));
        self.layers.push(Layer {
            metrics: super::layer_metrics::LayerMetrics::new(&name),
            name,
            source,
            pregenerated,
            shared_id,
            version: AtomicU64::new(1),
        });
    }

    /// The layer called `name` and its index.
    pub fn get(&self, name: &str) -> Option<(usize, &Layer)> {
        self.by_name.get(name).map(|&i| (i, &self.layers[i]))
    }

    /// The layer called `name` and its index (an error naming it when unknown).
    pub fn find(&self, name: &str) -> Result<(usize, &Layer), TileError> {
        self.get(name)
            .ok_or_else(|| TileError::UnknownLayer(name.chars().take(64).collect()))
    }

    /// All layers in name order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Layer)> {
        self.layers.iter().enumerate()
    }

    /// How many layers there are.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there is no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Whether any layer is pregenerated.
    pub fn any_pregenerated(&self) -> bool {
        self.layers.iter().any(|l| l.pregenerated.is_some())
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
