//! The tile service: the one place that knows how a tile is made.
//!
//! A [`TileService`] owns the layer [`Catalog`], the layers' versions, the in-process
//! [`TileCache`], the shared level behind it ([`SharedTiles`], when configured), the
//! [`TileStore`] and the render policy: cache first (one render per key at a time), then
//! the shared level (a rendered tile is written there behind the client's back), then
//! the store for a pregenerated layer (falling back to a live render
//! or an empty tile, writing rendered tiles back when asked), else a live render; CPU
//! work (GDAL reads, MVT encoding, gzip) runs off the async threads. The HTTP handlers,
//! `seed`, `purge` and the change listener all call it; it takes only its own narrow
//! parts, never the HTTP state.

pub mod catalog;
pub mod layer_metrics;

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Pool;

use crate::cache::shared::{Lookup, SharedKey, SharedTiles};
use crate::cache::{TileCache, TileKey};
use crate::config::Fallback;
use crate::coverage::Coverage;
use crate::source::{Source, SourceError};
use crate::store::{StoreError, StoredTile, TileStore, decode_stored, parse_tile_key, tile_key};
use crate::tile::{EncodedTile, MAX_ZOOM, TileFormat, TileId};
pub use catalog::{Catalog, Layer};

/// The channel on which a purge names a layer whose stored tiles changed, so that every
/// server listening on the database drops its cached copies.
pub const LAYER_CHANNEL: &str = "planscape_layer_change";

/// Tiles below this size are encoded on the async thread (cheaper than a hand-off).
const INLINE_BYTES: usize = 2048;

/// Why a tile (or a layer operation) could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// No layer has that name.
    #[error("unknown layer `{0}`")]
    UnknownLayer(String),
    /// The layer failed to open (the reason is on `/ready`).
    #[error("layer `{layer}` failed to open: {reason}")]
    LayerUnavailable {
        /// The layer.
        layer: String,
        /// Why.
        reason: String,
    },
    /// The layer does not make tiles in that format or pixel ratio.
    #[error("layer `{layer}` is not available as {form}")]
    UnsupportedForm {
        /// The layer.
        layer: String,
        /// The format asked for, e.g. `@2x webp`.
        form: String,
    },
    /// The zoom (range) is outside the layer's.
    #[error("zoom {asked} is outside layer `{layer}`'s range {min}..={max}")]
    ZoomOutOfRange {
        /// The layer.
        layer: String,
        /// The zoom or range asked for.
        asked: String,
        /// The layer's lowest zoom.
        min: u8,
        /// The layer's highest zoom.
        max: u8,
    },
    /// The operation needs a tile store and none is configured.
    #[error("no tile store")]
    NoStore,
    /// Rendering or reading the tile failed.
    #[error(transparent)]
    Render(#[from] Arc<SourceError>),
    /// The tile store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SourceError> for TileError {
    fn from(e: SourceError) -> Self {
        Self::Render(Arc::new(e))
    }
}

/// A tile rendered for a seed: ready to store, `None` when empty, or why it failed.
pub type RenderedTile = (TileId, Result<Option<EncodedTile>, SourceError>);

/// One tile to make: the layer, its opened source, and the tile in a format and scale.
#[derive(Clone, Copy)]
struct Job<'a> {
    layer: &'a Layer,
    source: &'a Source,
    tile: TileId,
    format: TileFormat,
    scale: u8,
}

/// The tile service (see the module documentation).
pub struct TileService {
    catalog: Catalog,
    pool: Option<Pool>,
    cache: TileCache,
    shared: Option<Arc<SharedTiles>>,
    store: Option<Arc<TileStore>>,
    cache_control: String,
}

impl TileService {
    /// A service over `catalog`. Vector layers render through `pool`; `store` holds
    /// pregenerated tiles (and receives written-back and seeded ones); `cache_control` is
    /// written on stored objects (the live responses' header).
    pub fn new(
        catalog: Catalog,
        pool: Option<Pool>,
        cache: TileCache,
        store: Option<Arc<TileStore>>,
        cache_control: impl Into<String>,
    ) -> Self {
        Self {
            catalog,
            pool,
            cache,
            shared: None,
            store,
            cache_control: cache_control.into(),
        }
    }

    /// The service with the shared cache level behind the in-process one.
    pub fn with_shared(mut self, shared: Option<Arc<SharedTiles>>) -> Self {
        self.shared = shared;
        self
    }

    /// The layers.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The in-process cache.
    pub fn cache(&self) -> &TileCache {
        &self.cache
    }

    /// The tile store, when there is one.
    pub fn store(&self) -> Option<&Arc<TileStore>> {
        self.store.as_ref()
    }

    /// A tile of layer `name`, from the cache, the store or a live render (counted in
    /// `tiles_served_total` when it is had).
    pub async fn tile(
        &self,
        name: &str,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Result<Arc<EncodedTile>, TileError> {
        let (layer, source, key) = self.key(name, tile, format, scale)?;
        // A hit answers from here. The miss path lives in its own boxed future: its state
        // (renders, database and store requests) is tens of kilobytes, which every request
        // would otherwise allocate and copy, hits included.
        let encoded = match self.cache.get(&key).await {
            Some(hit) => {
                layer.metrics.cache_lookup(true);
                hit
            }
            None => Box::pin(self.miss(layer, source, key)).await?,
        };
        layer.metrics.served(tile.z, format);
        Ok(encoded)
    }

    /// The cache key of a tile for the hit path of the server's
    /// [`tile_hits`](crate::http::tile_hits), before any routing: `None` for a request
    /// [`TileService::tile`] must answer in full (an unknown layer, a zoom out of range).
    pub fn hit_key(
        &self,
        name: &str,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Option<HitKey<'_>> {
        let (layer, _, key) = self.key(name, tile, format, scale).ok()?;
        Some(HitKey {
            layer,
            key,
            zoom: tile.z,
            format,
        })
    }

    /// The tile if the in-process cache holds it, counted as a hit and as served; `None`
    /// for a miss, which [`TileService::tile`] then answers in full.
    pub async fn cached(&self, ask: &HitKey<'_>) -> Option<Arc<EncodedTile>> {
        let hit = self.cache.get(&ask.key).await?;
        Some(ask.counted(hit))
    }

    /// As [`Tiles::cached`], answered only from the cache's front table, without waiting
    /// (`None` when it does not answer now: [`Tiles::cached`] may still find the tile).
    pub fn cached_now(&self, ask: &HitKey<'_>) -> Option<Arc<EncodedTile>> {
        self.cache.get_now(&ask.key).map(|hit| ask.counted(hit))
    }

    /// The layer, source and cache key of a tile, once the request is checked against the
    /// layer (format, scale, zoom range).
    fn key(
        &self,
        name: &str,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Result<(&Layer, &Source, TileKey), TileError> {
        let (index, layer) = self.catalog.find(name)?;
        let source = layer.check_form(format, scale)?;
        if tile.z < source.minzoom() || tile.z > source.maxzoom() {
            return Err(TileError::ZoomOutOfRange {
                layer: layer.name.clone(),
                asked: tile.z.to_string(),
                min: source.minzoom(),
                max: source.maxzoom(),
            });
        }
        let key = TileKey {
            layer: index,
            version: layer.version(),
            tile,
            format,
            scale,
        };
        Ok((layer, source, key))
    }

    /// A tile that was not in the cache a moment ago: rendered (or read) once for all
    /// concurrent callers of the same key, and cached.
    async fn miss(
        &self,
        layer: &Layer,
        source: &Source,
        key: TileKey,
    ) -> Result<Arc<EncodedTile>, TileError> {
        let TileKey {
            tile,
            format,
            scale,
            ..
        } = key;
        let rendered_here = AtomicBool::new(false);
        let span = tracing::debug_span!("render", layer = %layer.name, %tile);
        let result = self
            .cache
            .get_or_render(
                key,
                tracing::Instrument::instrument(
                    async {
                        rendered_here.store(true, Ordering::Relaxed);
                        let job = Job {
                            layer,
                            source,
                            tile,
                            format,
                            scale,
                        };
                        self.make(&job).await
                    },
                    span,
                ),
            )
            .await;
        layer
            .metrics
            .cache_lookup(!rendered_here.load(Ordering::Relaxed));
        let encoded = result.map_err(|e| {
            let kind = match e.as_ref() {
                SourceError::Unavailable(_) => "unavailable",
                SourceError::Timeout => "timeout",
                SourceError::Store(_) => "store",
                SourceError::Internal(_) => "internal",
            };
            metrics::counter!("tile_render_errors_total", "layer" => layer.name.clone(), "kind" => kind).increment(1);
            TileError::Render(e)
        })?;
        Ok(encoded)
    }

    /// Makes a tile on an in-process miss: from the shared level when there is one, else
    /// (and on its miss, writing the result there without waiting) as [`Self::produce`].
    async fn make(&self, job: &Job<'_>) -> Result<EncodedTile, SourceError> {
        let Some(shared) = &self.shared else {
            return self.produce(job).await;
        };
        let key = SharedKey {
            layer: &job.layer.shared_id,
            tile: job.tile,
            format: job.format,
            scale: job.scale,
        };
        match shared.get(&key).await {
            Lookup::Hit(tile) => Ok(tile),
            Lookup::Miss(generation) => {
                let tile = self.produce(job).await?;
                shared.put_behind(&key, &generation, &tile);
                Ok(tile)
            }
            Lookup::Unavailable => self.produce(job).await,
        }
    }

    /// Makes a tile without the caches: from the store for a pregenerated layer (falling
    /// back as configured), else rendered live.
    async fn produce(&self, job: &Job<'_>) -> Result<EncodedTile, SourceError> {
        let Job {
            layer,
            source,
            tile,
            format,
            scale,
        } = *job;
        let (Some(pre), Some(store)) = (&layer.pregenerated, &self.store) else {
            return self.render(job).await;
        };
        let key = tile_key(&layer.name, tile, format, scale);
        let stored = store.get(&key).await.map_err(|e| {
            metrics::counter!("store_reads_total", "layer" => layer.name.clone(), "result" => "error")
                .increment(1);
            SourceError::Store(e.to_string())
        })?;
        let result = if stored.is_some() { "hit" } else { "miss" };
        metrics::counter!("store_reads_total", "layer" => layer.name.clone(), "result" => result)
            .increment(1);
        if let Some(body) = stored {
            return off_thread_if(body.len() >= INLINE_BYTES, move || {
                decode_stored(body, format).map_err(|e| SourceError::Internal(e.to_string()))
            })
            .await;
        }
        if pre.fallback == Fallback::Empty {
            return Ok(EncodedTile::new(source.empty_tile(format, scale)?, format));
        }
        let encoded = self.render(job).await?;
        if pre.write_back
            && !encoded.is_empty()
            && *encoded.raw != *source.empty_tile(format, scale)?
        {
            let stored = StoredTile::from_encoded(&encoded, format, &self.cache_control);
            let (store, name) = (Arc::clone(store), layer.name.clone());
            tokio::spawn(async move {
                let outcome = match store.put(&key, &stored).await {
                    Ok(()) => "ok",
                    Err(e) => {
                        tracing::warn!(layer = %name, key, error = %e, "write-back failed");
                        "error"
                    }
                };
                metrics::counter!("store_writes_total", "layer" => name, "result" => outcome)
                    .increment(1);
            });
        }
        Ok(encoded)
    }

    /// Renders a tile live and prepares it for the wire.
    async fn render(&self, job: &Job<'_>) -> Result<EncodedTile, SourceError> {
        let started = std::time::Instant::now();
        let raw = job
            .source
            .render(self.pool.as_ref(), job.tile, job.format, job.scale)
            .await?;
        let encoded = encode(raw, job.format).await?;
        metrics::histogram!("tile_render_seconds", "layer" => job.layer.name.clone())
            .record(started.elapsed().as_secs_f64());
        Ok(encoded)
    }

    /// Renders several tiles of one source for a seed (raster tiles as one metatile
    /// read), ready to store; `None` marks an empty tile (no feature, fully transparent).
    pub async fn render_block(
        &self,
        source: &Source,
        tiles: &[TileId],
        format: TileFormat,
        scale: u8,
    ) -> Vec<RenderedTile> {
        let raw: Vec<crate::source::raster::BlockTile> = match source {
            Source::Raster(r) => {
                let (r, owned) = (Arc::clone(r), tiles.to_vec());
                crate::raster_threads::run(move || r.render_block_blocking(&owned, format, scale))
                    .await
                    .unwrap_or_else(|e| {
                        tiles
                            .iter()
                            .map(|t| (*t, Err(SourceError::Internal(e.to_string()))))
                            .collect()
                    })
            }
            Source::Vector(_) => {
                let mut out = Vec::with_capacity(tiles.len());
                for &tile in tiles {
                    let result = source
                        .render(self.pool.as_ref(), tile, format, scale)
                        .await
                        .map(|mvt| (!mvt.is_empty()).then_some(mvt));
                    out.push((tile, result));
                }
                out
            }
        };
        let mut out = Vec::with_capacity(raw.len());
        for (tile, result) in raw {
            let encoded = match result {
                Ok(Some(bytes)) => encode(bytes, format).await.map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            out.push((tile, encoded));
        }
        out
    }

    /// Writes a rendered tile of `layer` to the store, with the live response's
    /// metadata; returns the bytes written.
    pub async fn put(
        &self,
        layer: &str,
        tile: TileId,
        format: TileFormat,
        scale: u8,
        encoded: &EncodedTile,
    ) -> Result<u64, TileError> {
        let store = self.store.as_ref().ok_or(TileError::NoStore)?;
        let stored = StoredTile::from_encoded(encoded, format, &self.cache_control);
        store
            .put(&tile_key(layer, tile, format, scale), &stored)
            .await?;
        Ok(stored.body.len() as u64)
    }

    /// Removes layer `name`'s stored tiles over `zooms` (default: the layer's range, or
    /// every zoom for a layer that failed to open) and `coverage` (default: everywhere),
    /// all formats and pixel ratios, with the empty-tile records of those zooms (whole:
    /// a later `--resume` renders the zooms' empty tiles again rather than trust a stale
    /// record). Then drops the cached copies, here and — through the database, best
    /// effort — on every other server. Returns the zooms and how many tiles were deleted.
    pub async fn purge(
        &self,
        name: &str,
        zooms: Option<RangeInclusive<u8>>,
        coverage: Option<&Coverage>,
    ) -> Result<(RangeInclusive<u8>, usize), TileError> {
        let (_, layer) = self.catalog.find(name)?;
        let store = self.store.as_ref().ok_or(TileError::NoStore)?;
        let zooms = zooms.unwrap_or_else(|| {
            layer
                .source
                .as_ref()
                .map_or(0..=MAX_ZOOM, |s| s.minzoom()..=s.maxzoom())
        });
        let mut deleted = 0;
        for z in zooms.clone() {
            let keys = store.list(&format!("{name}/{z}/")).await?;
            let doomed: Vec<String> = keys
                .into_iter()
                .filter(|k| {
                    k.strip_prefix(&format!("{name}/"))
                        .and_then(parse_tile_key)
                        .is_some_and(|t| coverage.is_none_or(|c| c.touches(t)))
                })
                .collect();
            store.delete(&doomed).await?;
            deleted += doomed.len();
            let records = store
                .list(&crate::store::empty_records_prefix(name, z))
                .await?;
            store.delete(&records).await?;
        }
        self.layer_changed(name);
        self.tell_other_servers(name).await;
        tracing::info!(layer = %name, deleted, "purged");
        Ok((zooms, deleted))
    }

    /// Tells every server listening on the database that `layer`'s tiles changed.
    async fn tell_other_servers(&self, layer: &str) {
        let Some(pool) = &self.pool else { return };
        let sent = match pool.get().await {
            Ok(client) => client
                .execute("SELECT pg_notify($1, $2)", &[&LAYER_CHANNEL, &layer])
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not tell other servers of the purge; their cached tiles expire by themselves");
        }
    }

    /// Tells the shared level that `layer` changed, before its version moves on (so no
    /// request of the new version reads the shared level's old entries).
    fn tell_shared(&self, layer: &Layer) {
        if let Some(shared) = &self.shared {
            shared.layer_changed(&layer.shared_id);
        }
    }

    /// A table changed: bump the versions of the layers reading it.
    pub fn table_changed(&self, table: &str) {
        for index in self.catalog.layers_of_table(table) {
            if let Some(layer) = self.catalog.layer(index) {
                self.tell_shared(layer);
                let version = layer.bump();
                self.cache.invalidate_layer(index, version);
                tracing::info!(layer = %layer.name, version, "data changed");
            }
        }
    }

    /// A layer's stored tiles changed (purged): bump its version.
    pub fn layer_changed(&self, name: &str) {
        if let Some((index, layer)) = self.catalog.get(name) {
            self.tell_shared(layer);
            let version = layer.bump();
            self.cache.invalidate_layer(index, version);
            tracing::info!(layer = %layer.name, version, "stored tiles changed");
        }
    }

    /// Changes may have been missed: bump every layer.
    pub fn all_changed(&self) {
        for (index, layer) in self.catalog.iter() {
            self.tell_shared(layer);
            let version = layer.bump();
            self.cache.invalidate_layer(index, version);
        }
        tracing::info!("all layer versions bumped after reconnecting");
    }
}

/// Wraps rendered bytes for the wire (gzip for vector tiles), off the async threads
/// unless the tile is small.
pub async fn encode(raw: Vec<u8>, format: TileFormat) -> Result<EncodedTile, SourceError> {
    off_thread_if(
        format.compressible() && raw.len() >= INLINE_BYTES,
        move || Ok(EncodedTile::new(raw, format)),
    )
    .await
}

/// Runs `work` on a blocking thread when `heavy`, else here.
async fn off_thread_if<T: Send + 'static>(
    heavy: bool,
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    if heavy {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    } else {
        work()
    }
}

/// A tile request checked against its layer ([`Tiles::hit_key`]): what the hit path
/// looks up in the cache.
pub struct HitKey<'a> {
    layer: &'a Layer,
    key: TileKey,
    zoom: u8,
    format: TileFormat,
}

impl HitKey<'_> {
    /// `hit`, counted in the layer's metrics as a cache hit and as served.
    fn counted(&self, hit: Arc<EncodedTile>) -> Arc<EncodedTile> {
        self.layer.metrics.cache_lookup(true);
        self.layer.metrics.served(self.zoom, self.format);
        hit
    }
}
