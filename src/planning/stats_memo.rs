//! Statistics of drawn areas kept in memory: a repeated request for the same area,
//! region, values and conditions is answered without reading a raster again. Each key
//! carries the modification time and size of every raster it read, so a rebuilt raster
//! (`planscape conditions build`, a new import) is read afresh at the next request.
//! Bounded by bytes (an entry is weighed by its serialized size).

use std::path::Path;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use moka::future::Cache;

use super::conditions::Node;
use super::scores::{ConditionStats, Values};

/// The kept results, keyed by a 128-bit hash of everything they depend on.
pub struct StatsMemo {
    cache: Option<Cache<u128, Arc<Vec<ConditionStats>>>>,
}

impl StatsMemo {
    /// A memo of at most `max_bytes` of results (0: nothing is kept).
    pub fn new(max_bytes: u64) -> Self {
        let cache = (max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key: &u128, value: &Arc<Vec<ConditionStats>>| {
                    // About what the results take in memory: their JSON size.
                    u32::try_from(serde_json::to_vec(value.as_ref()).map_or(0, |v| v.len()))
                        .unwrap_or(u32::MAX)
                        .saturating_add(64)
                })
                .build()
        });
        Self { cache }
    }

    /// The key of a request: the region, the values, the conditions in order with their
    /// rasters' modification times and sizes, and the area exactly as given (a GeoJSON
    /// geometry as the server parsed it). A raster that cannot be read changes the key.
    pub fn key(region: &str, values: Values, nodes: &[Node], geometry: &str) -> u128 {
        let mut bytes = Vec::with_capacity(geometry.len() + 64 * nodes.len() + 32);
        for part in [region, values_name(values), geometry] {
            bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        for node in nodes {
            let path = match values {
                Values::Normalized => Some(node.normalized.as_path()),
                Values::Raw => node.raw.as_deref(),
            };
            bytes.extend_from_slice(&(node.name.len() as u64).to_le_bytes());
            bytes.extend_from_slice(node.name.as_bytes());
            let (modified, size) = path.map_or((0, 0), file_stamp);
            bytes.extend_from_slice(&modified.to_le_bytes());
            bytes.extend_from_slice(&size.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_128(&bytes)
    }

    /// The kept results of `key`.
    pub async fn get(&self, key: u128) -> Option<Arc<Vec<ConditionStats>>> {
        let found = match &self.cache {
            Some(cache) => cache.get(&key).await,
            None => None,
        };
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("area_stats_requests_total", "result" => result).increment(1);
        found
    }

    /// Keeps `results` under `key`.
    pub async fn insert(&self, key: u128, results: Arc<Vec<ConditionStats>>) {
        if let Some(cache) = &self.cache {
            cache.insert(key, results).await;
        }
    }
}

fn values_name(values: Values) -> &'static str {
    match values {
        Values::Normalized => "normalized",
        Values::Raw => "raw",
    }
}

/// Nanoseconds since the epoch of the last change and the size (zeros when unreadable).
fn file_stamp(path: &Path) -> (u128, u64) {
    std::fs::metadata(path).map_or((0, 0), |m| {
        let modified = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        (modified, m.len())
    })
}
