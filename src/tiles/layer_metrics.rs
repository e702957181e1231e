//! The metric handles of one layer, resolved once: a tile request counts itself with
//! an atomic add instead of building labels and looking them up in the registry (what
//! `metrics::counter!` with labels does on every call).

use std::sync::OnceLock;

use metrics::Counter;

use crate::tile::TileFormat;

/// Zoom levels with a handle of their own (0–24, the range [`crate::tile::TileId`] accepts).
const ZOOMS: usize = 25;
/// The formats, in [`format_index`] order.
const FORMATS: [TileFormat; 3] = [TileFormat::Mvt, TileFormat::Png, TileFormat::Webp];

/// `tiles_served_total{layer, zoom, format}` and `tile_cache_requests_total{layer, result}`
/// of one layer. A series appears in `/metrics` once it has been counted.
#[derive(Debug)]
pub struct LayerMetrics {
    name: String,
    served: Box<[OnceLock<Counter>]>,
    hits: OnceLock<Counter>,
    misses: OnceLock<Counter>,
}

impl LayerMetrics {
    /// The handles of layer `name` (none resolved yet).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            served: (0..ZOOMS * FORMATS.len())
                .map(|_| OnceLock::new())
                .collect(),
            hits: OnceLock::new(),
            misses: OnceLock::new(),
        }
    }

    /// Counts a tile served at zoom `z` in `format`.
    pub fn served(&self, z: u8, format: TileFormat) {
        let index = usize::from(z) * FORMATS.len() + format_index(format);
        match self.served.get(index) {
            Some(slot) => slot
                .get_or_init(|| self.served_counter(z, format))
                .increment(1),
            None => self.served_counter(z, format).increment(1),
        }
    }

    /// Counts a cache lookup: a hit, or a miss that rendered.
    pub fn cache_lookup(&self, hit: bool) {
        let (slot, result) = if hit {
            (&self.hits, "hit")
        } else {
            (&self.misses, "miss")
        };
        slot.get_or_init(|| {
            crate::telemetry::handle();
            metrics::counter!("tile_cache_requests_total", "layer" => self.name.clone(), "result" => result)
        })
        .increment(1);
    }

    fn served_counter(&self, z: u8, format: TileFormat) -> Counter {
        // Resolve against the installed recorder, never a no-op one.
        crate::telemetry::handle();
        metrics::counter!(
            "tiles_served_total",
            "layer" => self.name.clone(),
            "zoom" => z.to_string(),
            "format" => format.extension()
        )
    }
}

fn format_index(format: TileFormat) -> usize {
    match format {
        TileFormat::Mvt => 0,
        TileFormat::Png => 1,
        TileFormat::Webp => 2,
    }
}
