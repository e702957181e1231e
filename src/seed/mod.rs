//! Batch pregeneration (`planscape seed`): fills the tile service's store.
//!
//! A seed enumerates the tiles of some layers over a zoom range and a coverage (a bbox,
//! polygons, a named region), keeps this shard's part, drops what `--resume` finds
//! already stored, then renders and writes with bounded concurrency. Raster tiles are
//! rendered in metatiles (one raster read for a 4 x 4 block); empty tiles (no feature,
//! fully transparent) are not written, as the server answers them without the store,
//! but recorded ([`empties`]) so that `--resume` skips them too. Every tile ends up
//! written, skipped, empty or failed: none is dropped. Rendering and writing go through
//! the [`TileService`], as the server's requests do.

pub mod empties;
mod plan;
mod progress;

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use serde::Serialize;

use crate::config::RegionsConfig;
use crate::coverage::{Coverage, CoverageError};
use crate::source::Source;
use crate::store::{StoreError, TileStore, parse_tile_key, tile_key};
use crate::tile::{TileFormat, TileId};
use crate::tiles::{TileError, TileService};
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
    /// A layer cannot be seeded as asked (unknown, broken, wrong format or zooms).
    #[error(transparent)]
    Layer(#[from] TileError),
    /// No layer was named.
    #[error("name at least one layer")]
    NoLayer,
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

/// Checks every layer to seed against the service's catalog — known, opened, able to
/// make `format` (default: its own) at `scale`, serving some of `zooms` — before any work.
pub fn seed_layers(
    service: &TileService,
    names: &[String],
    zooms: &RangeInclusive<u8>,
    format: Option<TileFormat>,
    scale: u8,
) -> Result<Vec<SeedLayer>, SeedError> {
    if names.is_empty() {
        return Err(SeedError::NoLayer);
    }
    let mut layers = Vec::new();
    for name in names {
        let (_, layer) = service.catalog().find(name)?;
        let format = format.unwrap_or(layer.source()?.format());
        let source = layer.check_form(format, scale)?.clone();
        let zooms = layer.zooms_within(zooms)?;
        layers.push(SeedLayer {
            name: name.clone(),
            source,
            format,
            scale,
            zooms,
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

/// The service's store, which a seed writes to.
fn store_of(service: &TileService) -> Result<&TileStore, SeedError> {
    service
        .store()
        .map(|s| s.as_ref())
        .ok_or(SeedError::Layer(TileError::NoStore))
}

/// Seeds `layers` into the service's store.
pub async fn run(
    service: &TileService,
    layers: &[SeedLayer],
    opts: &SeedOptions,
) -> Result<Summary, SeedError> {
    let started = Instant::now();
    let store = store_of(service)?;
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
                        service,
                        tally,
                        empties,
                    };
                    seed_block(layers, &block, &out).await;
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
    service: &'a TileService,
    tally: &'a Tally,
    empties: &'a EmptyRecords,
}

/// Renders one block, writes its non-empty tiles and records its empty ones.
async fn seed_block(layers: &[SeedLayer], block: &plan::Block, out: &Output<'_>) {
    let Output {
        service,
        tally,
        empties,
    } = *out;
    let layer = &layers[block.layer];
    let rendered = service
        .render_block(&layer.source, &block.tiles, layer.format, layer.scale)
        .await;
    for (tile, result) in rendered {
        let encoded = match result {
            Ok(Some(encoded)) => encoded,
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
        match service
            .put(&layer.name, tile, layer.format, layer.scale, &encoded)
            .await
        {
            Ok(bytes) => {
                tally.written.fetch_add(1, Ordering::Relaxed);
                tally.bytes.fetch_add(bytes, Ordering::Relaxed);
                tally.success();
            }
            Err(e) => tally.failure(&layer.name, tile, &e),
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
    service: &TileService,
    layers: &[SeedLayer],
    opts: &SeedOptions,
) -> Result<Vec<Estimate>, SeedError> {
    const SAMPLES: usize = 8;
    let store = store_of(service)?;
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
                let rendered = service
                    .render_block(&layer.source, &[*tile], layer.format, layer.scale)
                    .await;
                for (_, r) in rendered {
                    if let Ok(Some(encoded)) = r {
                        bytes += encoded.gzip.as_ref().unwrap_or(&encoded.raw).len() as u64;
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
