//! The in-process tile cache: moka, weighted by bytes, one render per key at a time.
//!
//! Entries hold the tile exactly as it goes on the wire, both plain and gzip-compressed
//! (compressed once, at render time), with its ETag, so a hit costs a hash lookup and a
//! reference-count increment: never a compression. Keys carry the layer's data version;
//! when the version changes, the layer's old entries are invalidated.
//!
//! Behind it, optionally, the [`shared`] level (Redis/Valkey) that all servers read and
//! write; the tile service asks it on an in-process miss, before rendering. A server's
//! cache keeps its larger bodies in a memory file ([`arena`]) so that a hit is sent with
//! `sendfile`, as nginx sends a file.

pub mod arena;
mod entry;
mod front;
pub mod shared;

use std::sync::Arc;

use moka::future::Cache;

use crate::tile::{EncodedTile, TileFormat, TileId};

/// Bytes of bookkeeping charged per entry on top of the tile bytes.
const ENTRY_OVERHEAD: usize = 96;

/// The front of the cache's hot tiles ([`front`]).
type HotTiles = front::Front<TileKey, Arc<EncodedTile>>;

/// The moka cache of tiles.
type Tiles = Cache<TileKey, Arc<EncodedTile>>;

/// What identifies a cached tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Layer index in the catalog.
    pub layer: usize,
    /// The layer's data version when the tile was requested.
    pub version: u64,
    /// The tile.
    pub tile: TileId,
    /// Format.
    pub format: TileFormat,
    /// Pixel ratio.
    pub scale: u8,
}

/// Bytes an entry is charged: both encodings (as whole pages when `in_pages`, for
/// bodies the [`arena`] keeps) and the bookkeeping.
fn weight(tile: &EncodedTile, in_pages: bool) -> u32 {
    let body = |len: usize| if in_pages { arena::footprint(len) } else { len };
    let bytes =
        body(tile.raw.len()) + tile.gzip.as_ref().map_or(0, |g| body(g.len())) + ENTRY_OVERHEAD;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The tile cache (or a pass-through when sized 0).
#[derive(Clone)]
pub struct TileCache {
    inner: Option<Tiles>,
    /// The hot tiles of `inner`, answered without it ([`front`]).
    front: Option<Arc<HotTiles>>,
    /// Where cached bodies are kept, when they are sent with `sendfile`.
    arena: Option<arena::BodyArena>,
}

impl TileCache {
    /// A cache holding at most `max_bytes` of tiles; 0 disables caching.
    pub fn new(max_bytes: u64) -> Self {
        let (inner, front) = Self::build(max_bytes, false);
        Self {
            inner,
            front,
            arena: None,
        }
    }

    /// As [`TileCache::new`], keeping bodies of [`arena::MIN_BODY`] bytes and more in a
    /// memory file of `max_bytes` for the connections' `sendfile` ([`Self::arena`]). If
    /// the kernel refuses the file, a warning, and bodies stay in ordinary memory.
    pub fn with_body_arena(max_bytes: u64) -> Self {
        let arena = (max_bytes > 0)
            .then(|| usize::try_from(max_bytes).unwrap_or(usize::MAX))
            .and_then(|capacity| match arena::BodyArena::new(capacity) {
                Ok(arena) => Some(arena),
                Err(e) => {
                    tracing::warn!(error = %e, "no memory file for cached bodies; hits are copied");
                    None
                }
            });
        let (inner, front) = Self::build(max_bytes, arena.is_some());
        Self {
            inner,
            front,
            arena,
        }
    }

    /// The moka cache of `max_bytes` and its front, told of every entry moka drops.
    fn build(max_bytes: u64, in_pages: bool) -> (Option<Tiles>, Option<Arc<HotTiles>>) {
        if max_bytes == 0 {
            return (None, None);
        }
        let front = Arc::new(HotTiles::new(front::slots_for(max_bytes)));
        let told = Arc::clone(&front);
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(move |_k: &TileKey, v: &Arc<EncodedTile>| weight(v, in_pages))
            .support_invalidation_closures()
            .eviction_listener(move |key: Arc<TileKey>, _, _| told.forget(&*key))
            .build();
        (Some(cache), Some(front))
    }

    /// The memory file of cached bodies, if bodies are kept in one.
    pub fn arena(&self) -> Option<&arena::BodyArena> {
        self.arena.as_ref()
    }

    /// The tile of `key` if the front table answers for it now, without waiting (see
    /// [`front`]): most hits of hot tiles. `None` does not mean uncached: ask [`Self::get`].
    pub fn get_now(&self, key: &TileKey) -> Option<Arc<EncodedTile>> {
        self.front.as_ref()?.get(key)
    }

    /// The cached tile of `key`, if any (the fast path of a hit: nothing else is built).
    pub async fn get(&self, key: &TileKey) -> Option<Arc<EncodedTile>> {
        let (Some(cache), Some(front)) = (&self.inner, &self.front) else {
            return None;
        };
        if let Some(tile) = front.get(key) {
            return Some(tile);
        }
        let epoch = front.epoch();
        let tile = cache.get(key).await?;
        front.fill(*key, Arc::clone(&tile), epoch);
        Some(tile)
    }

    /// Returns the cached tile, or runs `render` once for all concurrent callers of the
    /// same key and caches its result. Errors are shared by the waiting callers and not
    /// cached.
    pub async fn get_or_render<F, E>(
        &self,
        key: TileKey,
        render: F,
    ) -> Result<Arc<EncodedTile>, Arc<E>>
    where
        F: Future<Output = Result<EncodedTile, E>>,
        E: Send + Sync + 'static,
    {
        match &self.inner {
            Some(cache) => {
                // By reference: the key is copied into an `Arc` only when a render inserts
                // it, not on every hit (`try_get_with` allocates one per call).
                let arena = self.arena.as_ref();
                cache
                    .try_get_with_by_ref(&key, async {
                        render.await.map(|tile| Arc::new(keep(arena, tile)))
                    })
                    .await
            }
            None => render.await.map(Arc::new).map_err(Arc::new),
        }
    }

    /// Whether `key` is cached (for tests and diagnostics).
    pub fn contains(&self, key: &TileKey) -> bool {
        self.inner.as_ref().is_some_and(|c| c.contains_key(key))
    }

    /// Drops every entry of layer `layer` older than `version`.
    pub fn invalidate_layer(&self, layer: usize, version: u64) {
        if let Some(front) = &self.front {
            front.forget_where(|k| k.layer == layer && k.version < version);
        }
        if let Some(cache) = &self.inner
            && let Err(e) =
                cache.invalidate_entries_if(move |k, _| k.layer == layer && k.version < version)
        {
            tracing::warn!(error = %e, "cache invalidation failed");
        }
    }

    /// Applies pending bookkeeping so that sizes are current (for metrics).
    pub async fn settle(&self) {
        if let Some(cache) = &self.inner {
            cache.run_pending_tasks().await;
        }
    }

    /// Entries held.
    pub fn entry_count(&self) -> u64 {
        self.inner.as_ref().map_or(0, Cache::entry_count)
    }

    /// Approximate bytes held.
    pub fn weighted_size(&self) -> u64 {
        self.inner.as_ref().map_or(0, Cache::weighted_size)
    }
}

/// `tile` with its bodies moved into `arena` (those it keeps), if any.
fn keep(arena: Option<&arena::BodyArena>, tile: EncodedTile) -> EncodedTile {
    match arena {
        Some(arena) => EncodedTile {
            raw: arena.adopt(tile.raw),
            gzip: tile.gzip.map(|g| arena.adopt(g)),
            ..tile
        },
        None => tile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn key(version: u64) -> TileKey {
        TileKey {
            layer: 0,
            version,
            tile: TileId { z: 1, x: 0, y: 0 },
            format: TileFormat::Mvt,
            scale: 1,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_render_once() {
        let cache = TileCache::new(1 << 20);
        let renders = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, renders) = (cache.clone(), Arc::clone(&renders));
                tokio::spawn(async move {
                    cache
                        .get_or_render(key(1), async {
                            renders.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, &str>(EncodedTile::new(vec![7; 100], TileFormat::Mvt))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            let tile = t.await.expect("task").expect("render");
            assert_eq!(tile.raw.len(), 100);
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }

    /// The front answers only tiles the cache holds: not after an invalidation, nor
    /// after an eviction.
    #[tokio::test]
    async fn the_front_answers_only_what_the_cache_holds() {
        let cache = TileCache::new(1 << 20);
        let render = || async { Ok::<_, &str>(EncodedTile::new(vec![7; 100], TileFormat::Mvt)) };
        assert!(cache.get(&key(1)).await.is_none());
        cache.get_or_render(key(1), render()).await.expect("render");
        for _ in 0..20 {
            assert_eq!(cache.get(&key(1)).await.map(|t| t.raw.len()), Some(100));
        }
        cache.invalidate_layer(0, 2);
        assert!(cache.get(&key(1)).await.is_none());

        let small = TileCache::new(10_000);
        for v in 0..50 {
            small
                .get_or_render(key(v), async {
                    Ok::<_, &str>(EncodedTile::new(vec![1; 1000], TileFormat::Png))
                })
                .await
                .expect("render");
            assert!(small.get(&key(v)).await.is_some());
            assert!(small.get(&key(v)).await.is_some());
        }
        small.settle().await;
        let mut held = 0;
        for v in 0..50 {
            let in_cache = small.contains(&key(v));
            held += usize::from(in_cache);
            assert_eq!(small.get(&key(v)).await.is_some(), in_cache, "version {v}");
        }
        assert!((1..50).contains(&held), "{held} of 50 held");
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_weight_is_bounded() {
        let cache = TileCache::new(10_000);
        let failed = cache
            .get_or_render(key(1), async { Err("timed out") })
            .await;
        assert!(failed.is_err());
        assert!(!cache.contains(&key(1)));
        for v in 0..50 {
            let _ = cache
                .get_or_render(key(v), async {
                    Ok::<_, &str>(EncodedTile::new(vec![1; 1000], TileFormat::Png))
                })
                .await;
        }
        cache
            .inner
            .as_ref()
            .expect("enabled")
            .run_pending_tasks()
            .await;
        assert!(cache.weighted_size() <= 10_000, "{}", cache.weighted_size());
    }
}
