//! Batch pregeneration (`planscape seed`) and removal (`planscape purge`) of stored tiles.
//!
//! A seed enumerates the tiles of some layers over a zoom range and a coverage (a bbox,
//! polygons, a named region), keeps this shard's part, drops what `--resume` finds
//! already stored, then renders and writes with bounded concurrency. Raster tiles are
//! rendered in metatiles (one raster read for a 4 x 4 block); empty tiles (no feature,
//! fully transparent) are not written, as the server answers them without the store,
//! but recorded ([`empties`]) so that `--resume` skips them too. Every tile ends up
//! written, skipped, empty or failed: none is dropped.

pub mod empties;
mod plan;
mod progress;

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use serde::Serialize;

use crate::cache::EncodedTile;
use crate::config::{Config, LayerConfig, RegionsConfig};
use crate::coverage::{Coverage, CoverageError};
use crate::source::raster::RasterSource;
use crate::source::vector::VectorSource;
use crate::source::{Source, SourceError};
use crate::store::{StoreError, StoredTile, TileStore, parse_tile_key, tile_key};
use crate::tile::{TileFormat, TileId};
use empties::EmptyRecords;
pub use plan::{METATILE, Shard};
use progress::Progress;

/// After this many failed tiles in a row the seed stops trying: the store or database is
/// down, and the remaining tiles are reported failed for a later `--resume`.
const MAX_CONSECUTIVE_FAILURES: u64 = 50;

/// The most tiles one seed plans (its tile list is held in memory, about 12 bytes a
/// tile): larger jobs are split by zoom range into several runs.
pub const MAX_PLANNED_TILES: u64 = 20_000_000;

/// A seed or purge that cannot start, with what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The layer is not in the configuration.
    #[error("unknown layer `{0}`")]
    UnknownLayer(String),
    /// The layer cannot be seeded as asked.
    #[error("layer `{layer}`: {message}")]
    Layer {
        /// The layer.
        layer: String,
        /// Why.
        message: String,
    },
    /// The zoom range is not usable.
    #[error("zoom range: {0}")]
    Zoom(String),
    /// The store cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database cannot be used.
    #[error("database: {0}")]
    Database(String),
    /// The region is unknown or not configured.
    #[error("region: {0}")]
    Region(String),
    /// The coverage is not usable.
    #[error(transparent)]
    Coverage(#[from] CoverageError),
}

/// Parses `MIN-MAX` (or a single zoom) into an inclusive range.
pub fn parse_zooms(text: &str) -> Result<RangeInclusive<u8>, String> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let parse = |s: &str| {
        s.trim()
            .parse::<u8>()
            .ok()
            .filter(|z| *z <= crate::tile::MAX_ZOOM)
            .ok_or_else(|| format!("`{s}` is not a zoom level (0..={})", crate::tile::MAX_ZOOM))
    };
    let (lo, hi) = (parse(a)?, parse(b)?);
    if lo > hi {
        return Err(format!("the range {lo}-{hi} is inverted (use {hi}-{lo})"));
    }
    Ok(lo..=hi)
}

/// A layer opened for seeding, with the format its tiles are stored in.
#[derive(Debug)]
pub struct SeedLayer {
    /// Layer name (the first key segment).
    pub name: String,
    /// Its source.
    pub source: Source,
    /// Stored format.
    pub format: TileFormat,
    /// Pixel ratio (2 = `@2x` raster tiles).
    pub scale: u8,
    /// Zooms to seed: the request intersected with the layer's range.
    pub zooms: RangeInclusive<u8>,
}

/// Whether any of `names` is a vector layer (a database connection is then needed).
pub fn needs_database(config: &Config, names: &[String]) -> bool {
    names
        .iter()
        .any(|n| matches!(config.layers.get(n), Some(LayerConfig::Vector(_))))
}

/// Opens the layers to seed and checks every argument against them, before any work.
pub async fn open_layers(
    config: &Config,
    names: &[String],
    zooms: &RangeInclusive<u8>,
    format: Option<TileFormat>,
    scale: u8,
    client: Option<&tokio_postgres::Client>,
) -> Result<Vec<SeedLayer>, SeedError> {
    if names.is_empty() {
        return Err(SeedError::Layer {
            layer: String::new(),
            message: "name at least one layer".into(),
        });
    }
    let mut layers = Vec::new();
    for name in names {
        let layer_cfg = config
            .layers
            .get(name)
            .ok_or_else(|| SeedError::UnknownLayer(name.clone()))?;
        let failed = |message: String| SeedError::Layer {
            layer: name.clone(),
            message,
        };
        let source = match layer_cfg {
            LayerConfig::Vector(cfg) => {
                let client = client
                    .ok_or_else(|| SeedError::Database("vector layers need the database".into()))?;
                VectorSource::inspect(client, name, cfg)
                    .await
                    .map(|v| Source::Vector(Arc::new(v)))
                    .map_err(failed)?
            }
            LayerConfig::Raster(cfg) => {
                let (n, cfg, styles) = (name.clone(), cfg.clone(), config.styles_dir.clone());
                tokio::task::spawn_blocking(move || RasterSource::inspect(&n, &cfg, &styles))
                    .await
                    .map_err(|e| failed(e.to_string()))?
                    .map(|r| Source::Raster(Arc::new(r)))
                    .map_err(failed)?
            }
        };
        let format = format.unwrap_or_else(|| source.format());
        if !source.supports(format, scale) {
            return Err(failed(format!(
                "cannot be stored as {}{}",
                if scale == 2 { "@2x " } else { "" },
                format.extension()
            )));
        }
        let lo = (*zooms.start()).max(source.minzoom());
        let hi = (*zooms.end()).min(source.maxzoom());
        if lo > hi {
            return Err(SeedError::Zoom(format!(
                "{}-{} is outside layer `{name}`'s zooms {}-{}",
                zooms.start(),
                zooms.end(),
                source.minzoom(),
                source.maxzoom()
            )));
        }
        layers.push(SeedLayer {
            name: name.clone(),
            source,
            format,
            scale,
            zooms: lo..=hi,
        });
    }
    Ok(layers)
}

/// The outline of a named region from the configured regions table.
pub async fn region_coverage(
    client: &tokio_postgres::Client,
    regions: Option<&RegionsConfig>,
    name: &str,
) -> Result<Coverage, SeedError> {
    let regions = regions.ok_or_else(|| {
        SeedError::Region("no `[regions]` table is configured; use --bbox or --geojson".into())
    })?;
    let table = regions
        .table
        .split('.')
        .map(crate::db::quote_ident)
        .collect::<Vec<_>>()
        .join(".");
    let (key, geom) = (
        crate::db::quote_ident(&regions.key),
        crate::db::quote_ident(&regions.geometry),
    );
    let sql = format!(
        "SELECT ST_AsGeoJSON(ST_Transform(ST_Force2D(ST_Union({geom})), 4326)) \
         FROM {table} WHERE {key}::text = $1 HAVING count(*) > 0"
    );
    let row = client
        .query_opt(&sql, &[&name])
        .await
        .map_err(|e| SeedError::Database(e.to_string()))?;
    match row {
        Some(row) => {
            let text: String = row.get(0);
            Ok(Coverage::from_geojson(&text)?)
        }
        None => {
            let known = client
                .query(
                    &format!("SELECT DISTINCT {key}::text FROM {table} ORDER BY 1 LIMIT 20"),
                    &[],
                )
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            Err(SeedError::Region(format!(
                "unknown region `{name}` (known: {})",
                known.join(", ")
            )))
        }
    }
}

/// What a seed does.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Area to cover.
    pub coverage: Coverage,
    /// Blocks rendered and written at once.
    pub concurrency: usize,
    /// Skip tiles already in the store.
    pub resume: bool,
    /// This process's part of the tile list.
    pub shard: Shard,
    /// `Cache-Control` of the written objects (the live responses').
    pub cache_control: String,
    /// Draw a progress bar (else log lines).
    pub terminal: bool,
}

/// The outcome of a seed.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Tiles in this shard's list.
    pub tiles: u64,
    /// Tiles written to the store.
    pub written: u64,
    /// Tiles already stored or recorded empty (`--resume`).
    pub skipped: u64,
    /// Empty tiles found by this run: recorded, not written.
    pub empty: u64,
    /// Tiles that could not be rendered or written.
    pub failed: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = (self.tiles - self.skipped) as f64 / self.seconds.max(1e-3);
        write!(
            f,
            "{} tiles: {} written, {} skipped, {} empty, {} failed; {:.1} MB in {:.1} s ({rate:.0} tiles/s)",
            self.tiles,
            self.written,
            self.skipped,
            self.empty,
            self.failed,
            self.bytes as f64 / 1e6,
            self.seconds
        )
    }
}

#[derive(Default)]
struct Tally {
    written: AtomicU64,
    empty: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    failing_in_a_row: AtomicU64,
}

impl Tally {
    fn success(&self) {
        self.failing_in_a_row.store(0, Ordering::Relaxed);
    }

    fn failure(&self, layer: &str, tile: TileId, error: &dyn std::fmt::Display) {
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        self.failing_in_a_row.fetch_add(1, Ordering::Relaxed);
        if failed <= 20 {
            tracing::warn!(layer, %tile, error = %error, "tile failed");
        } else if failed == 21 {
            tracing::warn!("more tiles failed; only the count is reported from now on");
        }
    }

    fn giving_up(&self) -> bool {
        self.failing_in_a_row.load(Ordering::Relaxed) >= MAX_CONSECUTIVE_FAILURES
    }
}

/// The tile list of each layer for this shard: blocks (metatiles for rasters), without
/// the tiles `resume` finds stored or recorded empty (this shard's records are loaded
/// into `empties`). Returns the blocks and the skipped count.
async fn plan(
    layers: &[SeedLayer],
    store: &TileStore,
    opts: &SeedOptions,
    empties: &EmptyRecords,
) -> Result<(Vec<plan::Block>, u64), SeedError> {
    let bound: u64 = layers
        .iter()
        .flat_map(|l| l.zooms.clone())
        .map(|z| opts.coverage.max_tiles(z))
        .fold(0u64, u64::saturating_add);
    if bound > MAX_PLANNED_TILES {
        return Err(SeedError::Zoom(format!(
            "the area spans up to {bound} tiles over these zooms, more than {MAX_PLANNED_TILES} for one run: \
             seed the zoom range in several runs (e.g. one per zoom for the deepest ones)"
        )));
    }
    let mut blocks = Vec::new();
    let mut skipped = 0;
    for (index, layer) in layers.iter().enumerate() {
        for z in layer.zooms.clone() {
            let (block, filter): (u32, Box<dyn Fn(TileId) -> bool>) = match &layer.source {
                Source::Raster(r) => {
                    let r = Arc::clone(r);
                    (METATILE, Box::new(move |t| r.overlaps(t)))
                }
                Source::Vector(_) => (1, Box::new(|_| true)),
            };
            let mut zoom_blocks =
                plan::layer_blocks(index, z..=z, &opts.coverage, filter, block, opts.shard);
            if opts.resume {
                let stored = stored_tiles(store, layer, z).await?;
                let empty = empties.load(store, index, layer, z).await?;
                for b in &mut zoom_blocks {
                    let before = b.tiles.len();
                    b.tiles
                        .retain(|t| !stored.contains(t) && !empty.contains(t));
                    skipped += (before - b.tiles.len()) as u64;
                }
                zoom_blocks.retain(|b| !b.tiles.is_empty());
            }
            blocks.extend(zoom_blocks);
        }
    }
    Ok((blocks, skipped))
}

async fn stored_tiles(
    store: &TileStore,
    layer: &SeedLayer,
    z: u8,
) -> Result<HashSet<TileId>, StoreError> {
    let prefix = format!("{}/{z}/", layer.name);
    let keys = store.list(&prefix).await?;
    Ok(keys
        .iter()
        .filter_map(|k| k.strip_prefix(&format!("{}/", layer.name)))
        .filter_map(|rest| {
            let tile = parse_tile_key(rest)?;
            (tile_key(&layer.name, tile, layer.format, layer.scale)
                == format!("{}/{rest}", layer.name))
            .then_some(tile)
        })
        .collect())
}

/// Seeds `layers` into `store`.
pub async fn run(
    layers: &[SeedLayer],
    pool: Option<&Pool>,
    store: &TileStore,
    opts: &SeedOptions,
) -> Result<Summary, SeedError> {
    let started = Instant::now();
    store.check().await?;
    let empties = EmptyRecords::new(opts.shard);
    let (blocks, skipped) = plan(layers, store, opts, &empties).await?;
    let total: u64 = blocks.iter().map(|b| b.tiles.len() as u64).sum();
    tracing::info!(
        tiles = total,
        skipped,
        blocks = blocks.len(),
        "seed planned"
    );
    let progress = Progress::new(total, opts.terminal);
    let tally = Tally::default();
    let mut results = futures_util::stream::iter(blocks)
        .map(|block| {
            let (tally, progress, empties) = (&tally, &progress, &empties);
            async move {
                let n = block.tiles.len() as u64;
                if tally.giving_up() {
                    tally.failed.fetch_add(n, Ordering::Relaxed);
                } else {
                    let out = Output {
                        store,
                        cache_control: &opts.cache_control,
                        tally,
                        empties,
                    };
                    seed_block(layers, &block, pool, &out).await;
                }
                progress.advance(n);
            }
        })
        .buffer_unordered(opts.concurrency.max(1));
    let mut flushed = Instant::now();
    while results.next().await.is_some() {
        if flushed.elapsed() >= empties::FLUSH_EVERY {
            flush_empties(&empties, layers, store).await;
            flushed = Instant::now();
        }
    }
    drop(results);
    flush_empties(&empties, layers, store).await;
    progress.finish();
    if tally.giving_up() {
        tracing::error!(
            "stopped after {MAX_CONSECUTIVE_FAILURES} failures in a row; the rest is counted failed (rerun with --resume)"
        );
    }
    Ok(Summary {
        tiles: total + skipped,
        written: tally.written.load(Ordering::Relaxed),
        skipped,
        empty: tally.empty.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        bytes: tally.bytes.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes the empty-tile records that changed; a failure is reported, and only means a
/// later `--resume` renders those empty tiles again.
async fn flush_empties(empties: &EmptyRecords, layers: &[SeedLayer], store: &TileStore) {
    if let Err(e) = empties.flush(layers, store).await {
        tracing::warn!(error = %e, "empty-tile records not written (--resume renders those tiles again)");
    }
}

/// Where a seed's rendered tiles go.
struct Output<'a> {
    store: &'a TileStore,
    cache_control: &'a str,
    tally: &'a Tally,
    empties: &'a EmptyRecords,
}

/// Renders one block, writes its non-empty tiles and records its empty ones.
async fn seed_block(
    layers: &[SeedLayer],
    block: &plan::Block,
    pool: Option<&Pool>,
    out: &Output<'_>,
) {
    let Output {
        store,
        cache_control,
        tally,
        empties,
    } = *out;
    let layer = &layers[block.layer];
    let rendered = render_block(layer, &block.tiles, pool).await;
    for (tile, result) in rendered {
        let image = match result {
            Ok(Some(image)) => image,
            Ok(None) => {
                tally.empty.fetch_add(1, Ordering::Relaxed);
                empties.add(block.layer, tile);
                tally.success();
                continue;
            }
            Err(e) => {
                tally.failure(&layer.name, tile, &e);
                continue;
            }
        };
        let format = layer.format;
        let encoded = if format.compressible() {
            match tokio::task::spawn_blocking(move || EncodedTile::new(image, format)).await {
                Ok(e) => e,
                Err(e) => {
                    tally.failure(&layer.name, tile, &e);
                    continue;
                }
            }
        } else {
            EncodedTile::new(image, format)
        };
        let stored = StoredTile::from_encoded(&encoded, format, cache_control);
        let key = tile_key(&layer.name, tile, format, layer.scale);
        match store.put(&key, &stored).await {
            Ok(()) => {
                tally.written.fetch_add(1, Ordering::Relaxed);
                tally
                    .bytes
                    .fetch_add(stored.body.len() as u64, Ordering::Relaxed);
                tally.success();
            }
            Err(e) => tally.failure(&layer.name, tile, &e),
        }
    }
}

type Rendered = Vec<crate::source::raster::BlockTile>;

/// Renders tiles of one block; `None` marks an empty tile.
async fn render_block(layer: &SeedLayer, tiles: &[TileId], pool: Option<&Pool>) -> Rendered {
    match &layer.source {
        Source::Raster(r) => {
            let (r, tiles_owned) = (Arc::clone(r), tiles.to_vec());
            let (format, scale) = (layer.format, layer.scale);
            match tokio::task::spawn_blocking(move || {
                r.render_block_blocking(&tiles_owned, format, scale)
            })
            .await
            {
                Ok(out) => out,
                Err(e) => tiles
                    .iter()
                    .map(|t| (*t, Err(SourceError::Internal(e.to_string()))))
                    .collect(),
            }
        }
        Source::Vector(v) => {
            let mut out = Vec::with_capacity(tiles.len());
            for &tile in tiles {
                let result = match pool {
                    Some(pool) => v
                        .render(pool, tile)
                        .await
                        .map(|mvt| (!mvt.is_empty()).then_some(mvt)),
                    None => Err(SourceError::Unavailable("no database pool".into())),
                };
                out.push((tile, result));
            }
            out
        }
    }
}

/// Tile counts and an estimated size per layer and zoom, for `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Layer.
    pub layer: String,
    /// Zoom.
    pub z: u8,
    /// Tiles in this shard's list.
    pub tiles: u64,
    /// Estimated bytes written (from rendering a sample of the tiles).
    pub estimated_bytes: u64,
}

/// Counts the tiles and renders a few of each zoom to estimate the size.
pub async fn estimate(
    layers: &[SeedLayer],
    pool: Option<&Pool>,
    store: &TileStore,
    opts: &SeedOptions,
) -> Result<Vec<Estimate>, SeedError> {
    const SAMPLES: usize = 8;
    let (blocks, _) = plan(layers, store, opts, &EmptyRecords::new(opts.shard)).await?;
    let mut out = Vec::new();
    for (index, layer) in layers.iter().enumerate() {
        for z in layer.zooms.clone() {
            let tiles: Vec<TileId> = blocks
                .iter()
                .filter(|b| b.layer == index)
                .flat_map(|b| b.tiles.iter().copied())
                .filter(|t| t.z == z)
                .collect();
            if tiles.is_empty() {
                continue;
            }
            let step = tiles.len().div_ceil(SAMPLES);
            let sample: Vec<TileId> = tiles.iter().step_by(step.max(1)).copied().collect();
            let mut bytes = 0u64;
            for tile in &sample {
                for (_, r) in render_block(layer, &[*tile], pool).await {
                    if let Ok(Some(image)) = r {
                        bytes += if layer.format.compressible() {
                            EncodedTile::new(image, layer.format)
                                .gzip
                                .map_or(0, |g| g.len() as u64)
                        } else {
                            image.len() as u64
                        };
                    }
                }
            }
            out.push(Estimate {
                layer: layer.name.clone(),
                z,
                tiles: tiles.len() as u64,
                estimated_bytes: bytes * tiles.len() as u64 / sample.len() as u64,
            });
        }
    }
    Ok(out)
}

/// Removes `layer`'s stored tiles over `zooms` (and `coverage`, else everywhere), all
/// formats and pixel ratios, and the empty-tile records of those zooms (whole: a later
/// `--resume` renders the zooms' empty tiles again rather than trust a stale record).
/// Returns how many tiles were deleted.
pub async fn purge(
    store: &TileStore,
    layer: &str,
    zooms: RangeInclusive<u8>,
    coverage: Option<&Coverage>,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    for z in zooms {
        let keys = store.list(&format!("{layer}/{z}/")).await?;
        let doomed: Vec<String> = keys
            .into_iter()
            .filter(|k| {
                k.strip_prefix(&format!("{layer}/"))
                    .and_then(parse_tile_key)
                    .is_some_and(|t| coverage.is_none_or(|c| c.touches(t)))
            })
            .collect();
        store.delete(&doomed).await?;
        deleted += doomed.len();
        let records = store.list(&empties::zoom_prefix(layer, z)).await?;
        store.delete(&records).await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_ranges() {
        assert_eq!(parse_zooms("7-13"), Ok(7..=13));
        assert_eq!(parse_zooms("5"), Ok(5..=5));
        assert!(parse_zooms("13-7").unwrap_err().contains("inverted"));
        assert!(parse_zooms("0-99").is_err());
        assert!(parse_zooms("a-3").is_err());
    }
}
