//! The shared second level behind the in-process cache: encoded tiles in Redis/Valkey
//! ([`SharedStore`]), so that a tile rendered by one server is served by all of them.
//!
//! - **Keys carry the layer's shared generation**: `{prefix}tile:{layer}:{generation}:
//!   {z}/{x}/{y}[@2x].{ext}`, where `{layer}` is the layer's name and a fingerprint of
//!   what its tiles are made from (settings, style, file, server version), and the
//!   generation a random token kept at `{prefix}gen:{layer}`. A server that hears of a
//!   data change (the database's `NOTIFY`, a purge) writes a new token, so every server
//!   stops reading the old entries at once (they expire). Until its new token is written
//!   the server does not use the shared level for that layer (it renders), so a tile
//!   from before the change never comes back into its in-process cache.
//! - **One round trip per lookup**: a small script reads the generation (making one when
//!   there is none) and the tile together.
//! - **Write-behind**: a rendered tile is written by a task of its own; the client never
//!   waits for it. Entries expire after `ttl_s`; tiles over `max_entry_kb` are not
//!   written.
//! - **Checked on the way back** ([`entry`](super::entry)): a corrupt or truncated entry
//!   is a miss, and is rendered and written again.
//! - Only the catalog's public layers come here (through the tile service); the private
//!   plan and scenario tiles never do.
//!
//! Metrics: `shared_cache_requests_total{layer, result="hit"|"miss"|"corrupt"|"error"|
//! "skipped"}` and `shared_cache_writes_total{result="ok"|"error"|"too_large"|"skipped"}`,
//! beside the store's latency and error metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::entry;
use crate::config::SharedCacheConfig;
use crate::shared_store::{SharedError, SharedStore};
use crate::tile::{EncodedTile, TileFormat, TileId};

/// Reads a layer's generation (making one when there is none) and one of its tiles.
/// KEYS[1]: the generation key; ARGV: a new token, the tile key before and after the
/// generation. Returns `{generation, tile or nil}`.
const LOOKUP: &str = r"
local generation = redis.call('GET', KEYS[1])
if not generation then
  generation = ARGV[1]
  redis.call('SET', KEYS[1], generation)
end
return {generation, redis.call('GET', ARGV[2] .. generation .. ARGV[3])}
";

/// A tile as the shared level names it.
#[derive(Debug, Clone, Copy)]
pub struct SharedKey<'a> {
    /// The layer's shared id ([`layer_id`]).
    pub layer: &'a str,
    /// The tile.
    pub tile: TileId,
    /// Its format.
    pub format: TileFormat,
    /// Its pixel ratio.
    pub scale: u8,
}

impl SharedKey<'_> {
    /// The key's part after the generation: `:{z}/{x}/{y}[@2x].{ext}`.
    fn suffix(&self) -> String {
        let ratio = if self.scale == 2 { "@2x" } else { "" };
        format!(
            ":{}/{}/{}{ratio}.{}",
            self.tile.z,
            self.tile.x,
            self.tile.y,
            self.format.extension()
        )
    }
}

/// The shared id of a layer: its name and the fingerprint of what its tiles are made
/// from, so that servers configured differently never share a layer's tiles.
pub fn layer_id(name: &str, fingerprint: u64) -> String {
    format!("{name}:{fingerprint:016x}")
}

/// The generation a lookup saw: a miss is written under it.
#[derive(Debug, Clone)]
pub struct Generation(String);

/// What the shared level answered.
#[derive(Debug)]
pub enum Lookup {
    /// The tile.
    Hit(EncodedTile),
    /// Not there (or unusable): render it and write it under this generation.
    Miss(Generation),
    /// No answer (down, slow, breaker open, or the layer's change not told yet): render
    /// it, and write nothing.
    Unavailable,
}

/// The shared tile level (see the module documentation).
pub struct SharedTiles {
    store: Arc<SharedStore>,
    script: redis::Script,
    ttl_ms: u64,
    max_entry_bytes: usize,
    /// Generation keys whose layer changed but whose new token is not written yet, with
    /// the number of the latest change.
    changing: Mutex<HashMap<String, u64>>,
    changes: AtomicU64,
    retry: Duration,
}

impl std::fmt::Debug for SharedTiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTiles")
            .field("store", &self.store)
            .field("ttl_ms", &self.ttl_ms)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish_non_exhaustive()
    }
}

impl SharedTiles {
    /// The shared level over `store`, with `config`'s expiry and size cap.
    pub fn new(store: Arc<SharedStore>, config: &SharedCacheConfig) -> Self {
        Self {
            store,
            script: redis::Script::new(LOOKUP),
            ttl_ms: config.ttl_s.saturating_mul(1000),
            max_entry_bytes: usize::try_from(config.max_entry_kb.saturating_mul(1024))
                .unwrap_or(usize::MAX),
            changing: Mutex::new(HashMap::new()),
            changes: AtomicU64::new(0),
            retry: Duration::from_millis(config.breaker_cooldown_ms).min(Duration::from_secs(5)),
        }
    }

    fn generation_key(&self, layer: &str) -> String {
        self.store.key(&format!("gen:{layer}"))
    }

    /// Looks a tile up.
    pub async fn get(&self, key: &SharedKey<'_>) -> Lookup {
        let generation_key = self.generation_key(key.layer);
        if self
            .changing
            .lock()
            .is_ok_and(|c| c.contains_key(&generation_key))
        {
            count(key.layer, "skipped");
            return Lookup::Unavailable;
        }
        let token = new_token();
        let before = self.store.key(&format!("tile:{}:", key.layer));
        let after = key.suffix();
        let answer = self
            .store
            .call("get", |mut connection| async move {
                self.script
                    .key(&generation_key)
                    .arg(&token)
                    .arg(&before)
                    .arg(&after)
                    .invoke_async::<(String, Option<Vec<u8>>)>(&mut connection)
                    .await
            })
            .await;
        match answer {
            Ok((generation, None)) => {
                count(key.layer, "miss");
                Lookup::Miss(Generation(generation))
            }
            Ok((generation, Some(bytes))) => match entry::decode(Bytes::from(bytes)) {
                Ok(tile) => {
                    count(key.layer, "hit");
                    Lookup::Hit(tile)
                }
                Err(e) => {
                    count(key.layer, "corrupt");
                    tracing::warn!(layer = key.layer, tile = %key.tile, error = %e, "ignoring a shared cache entry");
                    Lookup::Miss(Generation(generation))
                }
            },
            Err(SharedError::Open) => {
                count(key.layer, "skipped");
                Lookup::Unavailable
            }
            Err(_) => {
                count(key.layer, "error");
                Lookup::Unavailable
            }
        }
    }

    /// Writes `tile` under `generation` from a task of its own (the caller does not
    /// wait); a tile over the size cap is not written.
    pub fn put_behind(&self, key: &SharedKey<'_>, generation: &Generation, tile: &EncodedTile) {
        if entry::encoded_len(tile) > self.max_entry_bytes {
            metrics::counter!("shared_cache_writes_total", "result" => "too_large").increment(1);
            return;
        }
        // Shared references to the tile's bytes: the entry is made by the write task.
        let (raw, gzip) = (tile.raw.clone(), tile.gzip.clone());
        let tile_key = self.store.key(&format!(
            "tile:{}:{}{}",
            key.layer,
            generation.0,
            key.suffix()
        ));
        let (store, ttl_ms) = (Arc::clone(&self.store), self.ttl_ms);
        tokio::spawn(async move {
            let bytes = entry::encode(&raw, gzip.as_deref());
            let written = store
                .call("put", |mut connection| async move {
                    redis::cmd("SET")
                        .arg(&tile_key)
                        .arg(bytes)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
            let result = match written {
                Ok(()) => "ok",
                Err(SharedError::Open) => "skipped",
                Err(_) => "error",
            };
            metrics::counter!("shared_cache_writes_total", "result" => result).increment(1);
        });
    }

    /// Layer `layer`'s data changed: until a new generation is written (by a task of
    /// its own, retried while the shared server is unreachable) this server does not use
    /// the shared level for the layer.
    pub fn layer_changed(self: &Arc<Self>, layer: &str) {
        let generation_key = self.generation_key(layer);
        let change = self.changes.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut changing) = self.changing.lock() {
            changing.insert(generation_key.clone(), change);
        }
        let this = Arc::clone(self);
        tokio::spawn(async move { this.tell_change(generation_key, change).await });
    }

    async fn tell_change(&self, generation_key: String, change: u64) {
        loop {
            let token = new_token();
            let key = generation_key.clone();
            let told = self
                .store
                .call("generation", |mut connection| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&token)
                        .query_async::<()>(&mut connection)
                        .await
                })
                .await;
            let done = match self.changing.lock() {
                Ok(mut changing) => match changing.get(&generation_key) {
                    // A later change took over (its own task writes its token).
                    Some(latest) if *latest != change => true,
                    None => true,
                    Some(_) if told.is_ok() => {
                        changing.remove(&generation_key);
                        true
                    }
                    Some(_) => false,
                },
                Err(_) => true,
            };
            if done {
                return;
            }
            tokio::time::sleep(self.retry).await;
        }
    }
}

fn count(layer: &str, result: &'static str) {
    metrics::counter!("shared_cache_requests_total", "layer" => layer_name(layer).to_owned(), "result" => result)
        .increment(1);
}

/// The layer's name in a shared id (metrics label it by name only).
fn layer_name(layer: &str) -> &str {
    layer.rsplit_once(':').map_or(layer, |(name, _)| name)
}

/// A random generation token.
fn new_token() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the clock still makes a token no earlier generation had.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{:016x}", nanos as u64);
    }
    format!("{:016x}", u64::from_le_bytes(bytes))
}
