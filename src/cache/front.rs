//! A read-mostly front of the tile cache: the tiles asked for most recently, one per
//! slot of a fixed table, answered without moka.
//!
//! A moka lookup records every read for its eviction policy (a channel push, and now and
//! then the housekeeping that drains it); on the warm path that was the largest cost of
//! a hit outside the kernel (docs/benchmarks.md, "Cache hits against nginx"). Here a hit
//! is a hash, an uncontended lock and a reference-count increment. Every
//! [`SAMPLE`]-th hit of a slot still goes through moka, so that the tiles served from
//! here keep their place in its policy.
//!
//! The front holds only what moka holds: moka's eviction listener calls
//! [`Front::forget`] for every entry it drops (evicted, invalidated, replaced), and a
//! fill that raced with a removal is refused by the removal epoch. No tile bytes are
//! held twice and none outlives its cache entry, so the cache's byte bound stays the
//! bound of both.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// One hit in this many of a slot goes through moka (see the module's documentation).
pub const SAMPLE: u32 = 8;

/// The tiles (values `V`, cheap to clone: `Arc`s) of the front's slots by key `K`, and
/// the count of removals from the cache.
pub struct Front<K, V> {
    slots: Box<[Cell<K, V>]>,
    /// Bumped by every removal from the cache, before its slot is cleared.
    removals: AtomicU64,
}

/// A slot: empty, or a key's tile.
type Cell<K, V> = Mutex<Option<Slot<K, V>>>;

struct Slot<K, V> {
    key: K,
    tile: V,
    hits: u32,
}

/// Slots for a cache of `max_bytes`: one per 32 KiB (a typical tile), 1,024 to 65,536.
pub fn slots_for(max_bytes: u64) -> usize {
    usize::try_from(max_bytes / (32 << 10))
        .unwrap_or(usize::MAX)
        .clamp(1 << 10, 1 << 16)
}

/// A multiplicative hash of a key's fields (not a keyed hash: the table is small, its
/// slots are overwritten, and a collision costs a moka lookup, no more).
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    fn write_isize(&mut self, value: isize) {
        self.write_u64(value as u64);
    }

    fn finish(&self) -> u64 {
        let h = (self.0 ^ (self.0 >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^ (h >> 29)
    }
}

impl<K: Copy + Eq + Hash, V: Clone> Front<K, V> {
    /// A front of `slots` slots (rounded up to a power of two, at least 2).
    pub fn new(slots: usize) -> Self {
        let slots = slots.max(2).next_power_of_two();
        Self {
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            removals: AtomicU64::new(0),
        }
    }

    fn slot(&self, key: &K) -> &Cell<K, V> {
        let mut hasher = SlotHasher::default();
        key.hash(&mut hasher);
        // The length is a power of two.
        &self.slots[(hasher.finish() as usize) & (self.slots.len() - 1)]
    }

    /// The tile of `key` if its slot holds it, except on every [`SAMPLE`]-th hit of the
    /// slot (the caller then asks moka, and [`Front::fill`]s the slot again).
    pub fn get(&self, key: &K) -> Option<V> {
        let mut slot = self
            .slot(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = slot.as_mut().filter(|s| s.key == *key)?;
        held.hits = held.hits.wrapping_add(1);
        (held.hits % SAMPLE != 0).then(|| held.tile.clone())
    }

    /// The removal epoch: read it before asking moka, and give it to [`Front::fill`].
    pub fn epoch(&self) -> u64 {
        self.removals.load(Ordering::Acquire)
    }

    /// Puts `tile`, which moka held for `key` when the epoch was `epoch`, in its slot;
    /// refused if anything was removed from the cache since (it may have been this tile).
    pub fn fill(&self, key: K, tile: V, epoch: u64) {
        let mut slot = self
            .slot(&key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the slot's lock: a removal bumps the epoch before taking it, so either it
        // is seen here, or the removal clears the slot after this.
        if self.removals.load(Ordering::Acquire) != epoch {
            return;
        }
        let hits = slot.as_ref().filter(|s| s.key == key).map_or(0, |s| s.hits);
        *slot = Some(Slot { key, tile, hits });
    }

    /// The cache dropped `key`: it is not answered from here any more.
    pub fn forget(&self, key: &K) {
        self.removals.fetch_add(1, Ordering::AcqRel);
        let mut slot = self
            .slot(key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|s| s.key == *key) {
            *slot = None;
        }
    }

    /// Every key `stale` tells is dropped (moka's invalidation closures drop their
    /// entries lazily; the front drops them at once).
    pub fn forget_where(&self, stale: impl Fn(&K) -> bool) {
        self.removals.fetch_add(1, Ordering::AcqRel);
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.as_ref().is_some_and(|s| stale(&s.key)) {
                *slot = None;
            }
        }
    }

    /// Tiles held (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Keys as the tile cache's: a layer, a version and a tile.
    fn key(x: u32) -> (usize, u64, u8, u32, u32) {
        (1, 3, 12, x, 7)
    }

    fn tile(byte: u8) -> Arc<Vec<u8>> {
        Arc::new(vec![byte; 10])
    }

    #[test]
    fn hits_come_from_the_slot_and_every_eighth_goes_to_the_cache() {
        let front = Front::<_, Arc<Vec<u8>>>::new(64);
        assert!(front.get(&key(1)).is_none());
        front.fill(key(1), tile(1), front.epoch());
        let answered = (0..80).filter(|_| front.get(&key(1)).is_some()).count();
        assert_eq!(answered, 80 - 80 / SAMPLE as usize);
        assert_eq!(front.get(&key(1)).as_deref(), Some(&vec![1; 10]));
        // Another key is never answered with this key's tile.
        assert!((2..200).all(|x| front.get(&key(x)).is_none()));
    }

    #[test]
    fn a_removed_tile_is_not_answered_and_a_fill_racing_a_removal_is_refused() {
        let front = Front::<_, Arc<Vec<u8>>>::new(64);
        front.fill(key(1), tile(1), front.epoch());
        front.forget(&key(1));
        assert!(front.get(&key(1)).is_none());
        assert_eq!(front.held(), 0);
        // Read before a removal (of any key), filled after it: refused.
        let epoch = front.epoch();
        front.forget(&key(99));
        front.fill(key(1), tile(1), epoch);
        assert!(front.get(&key(1)).is_none());
        // Removing another key leaves this one.
        front.fill(key(1), tile(1), front.epoch());
        front.forget(&key(2));
        assert!(front.get(&key(1)).is_some());
    }

    #[test]
    fn colliding_keys_replace_each_other() {
        let front = Front::<_, Arc<Vec<u8>>>::new(2);
        for x in 0..10 {
            front.fill(key(x), tile(x as u8), front.epoch());
            assert_eq!(
                front.get(&key(x)).map(|t| t[0]),
                Some(x as u8),
                "the last fill of a slot is its tile"
            );
        }
        assert!(front.held() <= 2);
        assert_eq!(slots_for(0), 1024);
        assert_eq!(slots_for(512 << 20), 16384);
        assert_eq!(slots_for(u64::MAX), 65536);
    }
}
