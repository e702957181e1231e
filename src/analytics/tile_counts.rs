//! Tile demand counted in memory: one relaxed atomic add per tile request, written to the
//! database in batches ([`TileCounter::take`]), never a write per request.
//!
//! Each layer has two slots of per-zoom counters, one for even and one for odd UTC days
//! (`day % 2`): a request adds to its day's slot, and a flush empties both slots, giving
//! each the most recent day of its parity. So counts are filed under the day they were
//! made, across midnight, as long as flushes come at least daily (they come every few
//! seconds).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::MAX_ZOOM;

const ZOOMS: usize = MAX_ZOOM as usize + 1;

/// The counters of one layer: `[day parity][zoom]`.
struct LayerCounts {
    slots: [[AtomicU64; ZOOMS]; 2],
}

impl LayerCounts {
    fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

/// Requests of one layer at one zoom on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// The layer.
    pub layer: String,
    /// The zoom.
    pub zoom: u8,
    /// Requests.
    pub requests: u64,
}

/// Per-layer, per-zoom, per-day tile request counters shared by every request.
#[derive(Default)]
pub struct TileCounter {
    layers: RwLock<HashMap<Box<str>, LayerCounts>>,
}

/// Today as days since 1970-01-01, UTC.
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

impl TileCounter {
    /// Counts one request of `layer` at zoom `z` today.
    pub fn count(&self, layer: &str, z: u8) {
        self.count_on(today(), layer, z, 1);
    }

    /// Adds `n` requests of `layer` at zoom `z` on `day`. A known layer costs a shared
    /// read lock, a hash lookup and one relaxed atomic add; the first request of a layer
    /// takes the write lock once to add it.
    pub fn count_on(&self, day: i64, layer: &str, z: u8, n: u64) {
        let zoom = usize::from(z.min(MAX_ZOOM));
        let slot = usize::from(day.rem_euclid(2) == 1);
        if let Ok(layers) = self.layers.read()
            && let Some(counts) = layers.get(layer)
        {
            counts.slots[slot][zoom].fetch_add(n, Ordering::Relaxed);
            return;
        }
        if let Ok(mut layers) = self.layers.write() {
            layers
                .entry(layer.into())
                .or_insert_with(LayerCounts::new)
                .slots[slot][zoom]
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Empties every counter; returns what they held, filed under `today` and the day
    /// before by slot.
    pub fn take(&self, today: i64) -> Vec<TileCount> {
        let Ok(layers) = self.layers.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (layer, counts) in layers.iter() {
            for day in [today - 1, today] {
                let slot = usize::from(day.rem_euclid(2) == 1);
                for (zoom, counter) in counts.slots[slot].iter().enumerate() {
                    let requests = counter.swap(0, Ordering::Relaxed);
                    if requests > 0 {
                        out.push(TileCount {
                            day,
                            layer: layer.to_string(),
                            zoom: u8::try_from(zoom).unwrap_or(MAX_ZOOM),
                            requests,
                        });
                    }
                }
            }
        }
        out
    }

    /// Puts counts back (after a failed write), so none are lost.
    pub fn restore(&self, counts: &[TileCount]) {
        for c in counts {
            self.count_on(c.day, &c.layer, c.zoom, c.requests);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_add_up_across_threads_and_takes() {
        let counter = Arc::new(TileCounter::default());
        let day = 20_000;
        let mut taken: HashMap<(String, u8), u64> = HashMap::new();
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let counter = Arc::clone(&counter);
                s.spawn(move || {
                    for i in 0..10_000u32 {
                        let layer = if i % 3 == 0 { "a" } else { "b" };
                        counter.count_on(day, layer, (t + (i % 5) as u8) % 25, 1);
                    }
                });
            }
            // Takes while the threads count: nothing may be lost or counted twice.
            for _ in 0..50 {
                for c in counter.take(day) {
                    assert_eq!(c.day, day);
                    *taken.entry((c.layer, c.zoom)).or_default() += c.requests;
                }
            }
        });
        for c in counter.take(day) {
            *taken.entry((c.layer, c.zoom)).or_default() += c.requests;
        }
        assert_eq!(taken.values().sum::<u64>(), 80_000);
        let a: u64 = taken
            .iter()
            .filter(|((l, _), _)| l == "a")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(a, 8 * 3334);
    }

    #[test]
    fn days_keep_their_counts_across_midnight() {
        let counter = TileCounter::default();
        counter.count_on(100, "a", 3, 2);
        counter.count_on(101, "a", 3, 5);
        let mut got = counter.take(101);
        got.sort_by_key(|c| c.day);
        assert_eq!(
            got.iter().map(|c| (c.day, c.requests)).collect::<Vec<_>>(),
            [(100, 2), (101, 5)]
        );
        counter.restore(&got);
        assert_eq!(counter.take(101).iter().map(|c| c.requests).sum::<u64>(), 7);
        assert!(counter.take(101).is_empty());
    }
}
