//! A fresh server's statistics, warmed up: at start, every region's condition rasters are
//! read once over a small area at their centre, on the raster threads, in the background.
//! A fresh server's first statistics request otherwise also paid for opening each raster
//! (kept open afterwards, [`crate::dataset_pool`]), for each raster thread's PROJ set-up
//! and for the first decompression contexts: 273 against 143 ms for all 55 conditions
//! over a new 100,000-acre area at 30 m (docs/benchmarks.md). The server answers
//! meanwhile; a raster that cannot be read is logged, as a request would report it.

use std::sync::Arc;
use std::time::Instant;

use geo_types::{MultiPolygon, polygon};

use super::conditions::{Conditions, Node};
use super::scores::{self, Values};
use super::stats;

/// Half the side of the square read, in degrees (about 1 km: a few blocks of a raster).
const HALF_SIDE_DEG: f64 = 0.005;

/// Reads every region's normalized condition rasters over a small square at the centre
/// of the region's first raster. Returns how many rasters were read.
pub async fn warm_up(conditions: Arc<Conditions>) -> usize {
    let started = Instant::now();
    let mut read = 0;
    for region in &conditions.catalog.regions {
        let nodes: Vec<Node> = conditions
            .region_nodes(&region.name)
            .into_iter()
            .cloned()
            .collect();
        let Some(first) = nodes.first().map(|n| n.normalized.clone()) else {
            continue;
        };
        let centre = crate::raster_threads::run(move || stats::centre_lonlat(&first))
            .await
            .map_err(|e| e.to_string())
            .and_then(|centre| centre.map_err(|e| e.to_string()));
        let (lon, lat) = match centre {
            Ok(centre) => centre,
            Err(error) => {
                tracing::warn!(region = %region.name, %error, "statistics warm-up skipped");
                continue;
            }
        };
        match scores::compute(nodes, Values::Normalized, Arc::new(square(lon, lat))).await {
            Ok(results) => read += results.len(),
            Err(e) => {
                tracing::warn!(region = %region.name, error = %e, "statistics warm-up failed")
            }
        }
    }
    tracing::info!(
        rasters = read,
        ms = started.elapsed().as_millis() as u64,
        "statistics warmed up"
    );
    read
}

/// The square of [`HALF_SIDE_DEG`] around a point (longitude, latitude).
fn square(lon: f64, lat: f64) -> MultiPolygon<f64> {
    let d = HALF_SIDE_DEG;
    MultiPolygon(vec![polygon![
        (x: lon - d, y: lat - d),
        (x: lon + d, y: lat - d),
        (x: lon + d, y: lat + d),
        (x: lon - d, y: lat + d),
        (x: lon - d, y: lat - d),
    ]])
}
