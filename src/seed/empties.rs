//! Records of the empty tiles a seed found (no feature, fully transparent): they are not
//! written as tiles, so without a record `--resume` would render them all again.
//!
//! One small text object per layer, zoom, stored form and shard, beside the tiles:
//! `{layer}/_empty/{z}/{i}-of-{n}[@2x].{ext}.txt`, one `x/y` per line. The `_empty`
//! segment is no zoom level, so no tile URL reaches it. Each shard writes only its own
//! record (shards running together never write the same object); a resumed run reads the
//! records of every shard. Records are rewritten whole every [`FLUSH_EVERY`] and at the
//! end, so a killed run loses at most that much of them (those tiles are only rendered
//! again). `purge` deletes the records of the zooms it purges.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;

use super::{SeedLayer, Shard};
use crate::store::{ObjectMeta, StoreError, StoredTile, TileStore, empty_records_prefix};
use crate::tile::TileId;

/// How often a running seed rewrites the records that changed.
pub const FLUSH_EVERY: Duration = Duration::from_secs(20);

/// The ending shared by the records of one stored form: `[@2x].{ext}.txt`.
fn form_suffix(layer: &SeedLayer) -> String {
    let ratio = if layer.scale == 2 { "@2x" } else { "" };
    format!("{ratio}.{}.txt", layer.format.extension())
}

/// The key of this shard's record.
fn record_key(layer: &SeedLayer, z: u8, shard: Shard) -> String {
    format!(
        "{}{}-of-{}{}",
        empty_records_prefix(&layer.name, z),
        shard.index,
        shard.count,
        form_suffix(layer)
    )
}

/// Parses a record body; lines that are not `x/y` of a tile at `z` are ignored.
fn parse(z: u8, body: &[u8]) -> impl Iterator<Item = TileId> + '_ {
    body.split(|b| *b == b'\n').filter_map(move |line| {
        let line = std::str::from_utf8(line).ok()?;
        let (x, y) = line.trim().split_once('/')?;
        TileId::parse(&z.to_string(), x, y).ok()
    })
}

#[derive(Default)]
struct Record {
    /// `(x, y)` of the empty tiles, sorted so the body is deterministic.
    tiles: BTreeSet<(u32, u32)>,
    /// Changed since the last write.
    dirty: bool,
}

/// This run's records: what this shard's records already held (on `--resume`) and the
/// empty tiles found since.
#[derive(Default)]
pub struct EmptyRecords {
    shard: Shard,
    records: Mutex<HashMap<(usize, u8), Record>>,
}

impl EmptyRecords {
    /// Records for `shard`.
    pub fn new(shard: Shard) -> Self {
        Self {
            shard,
            records: Mutex::default(),
        }
    }

    /// Reads the recorded empty tiles of `layer` (number `index`) at zoom `z`, from
    /// every shard's record of this stored form; this shard's own are kept, so that the
    /// rewritten record still holds them.
    pub async fn load(
        &self,
        store: &TileStore,
        index: usize,
        layer: &SeedLayer,
        z: u8,
    ) -> Result<HashSet<TileId>, StoreError> {
        let suffix = form_suffix(layer);
        let own = record_key(layer, z, self.shard);
        let mut all = HashSet::new();
        for key in store.list(&empty_records_prefix(&layer.name, z)).await? {
            if !key.ends_with(&suffix) || key.contains("@2x") != (layer.scale == 2) {
                continue;
            }
            let Some(body) = store.get(&key).await? else {
                continue;
            };
            let tiles: Vec<TileId> = parse(z, &body).collect();
            if key == own {
                let mut records = self.lock();
                let record = records.entry((index, z)).or_default();
                record.tiles.extend(tiles.iter().map(|t| (t.x, t.y)));
            }
            all.extend(tiles);
        }
        Ok(all)
    }

    /// Notes an empty tile of layer number `index`.
    pub fn add(&self, index: usize, tile: TileId) {
        let mut records = self.lock();
        let record = records.entry((index, tile.z)).or_default();
        if record.tiles.insert((tile.x, tile.y)) {
            record.dirty = true;
        }
    }

    /// Writes every record that changed since the last flush.
    pub async fn flush(&self, layers: &[SeedLayer], store: &TileStore) -> Result<(), StoreError> {
        let pending: Vec<(usize, u8, Bytes)> = {
            let mut records = self.lock();
            records
                .iter_mut()
                .filter(|(_, r)| r.dirty)
                .map(|(&(index, z), r)| {
                    r.dirty = false;
                    let mut body = String::with_capacity(r.tiles.len() * 10);
                    for (x, y) in &r.tiles {
                        let _ = writeln!(body, "{x}/{y}");
                    }
                    (index, z, Bytes::from(body))
                })
                .collect()
        };
        for (index, z, body) in pending {
            let Some(layer) = layers.get(index) else {
                continue;
            };
            let object = StoredTile {
                body,
                meta: ObjectMeta {
                    content_type: "text/plain; charset=utf-8".into(),
                    content_encoding: None,
                    cache_control: "no-cache".into(),
                },
            };
            if let Err(e) = store.put(&record_key(layer, z, self.shard), &object).await {
                // Marked dirty again: the next flush retries it.
                if let Some(r) = self.lock().get_mut(&(index, z)) {
                    r.dirty = true;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, u8), Record>> {
        // A panic while holding the lock leaves plain data behind: still usable.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_bodies_parse_back_and_ignore_junk() {
        let tiles: Vec<TileId> = parse(3, b"1/2\n7/7\n\n8/1\nx/y\n3/4/5\n").collect();
        assert_eq!(
            tiles,
            vec![TileId { z: 3, x: 1, y: 2 }, TileId { z: 3, x: 7, y: 7 }]
        );
    }
}
