//! Zonal statistics of a raster over a polygon, read in blocks.
//!
//! The rule: a pixel counts when its centre lies inside the polygon (even-odd over all
//! rings, so holes are excluded; a centre exactly on the left edge of a span is in, on
//! the right edge out), as GDAL's default rasterization and PostGIS `ST_Clip` do. The
//! polygon (longitude, latitude) is reprojected vertex by vertex to the raster's CRS;
//! each row of the raster window under the polygon is read once, in strips of rows,
//! and the row's spans inside the polygon are found by intersecting its centre line
//! with the edges. Memory: one strip of the window (at most `STRIP_ROWS` rows),
//! whatever the area.

use std::path::Path;

use gdal::Dataset;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo_types::MultiPolygon;
use serde::Serialize;

/// Rows read at once.
const STRIP_ROWS: usize = 128;

/// Statistics of the valid pixels inside a polygon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ZonalStats {
    /// Valid pixels inside.
    pub count: u64,
    /// Nodata (or NaN) pixels inside.
    pub nodata: u64,
    /// Sum of the valid values.
    pub sum: f64,
    /// Smallest valid value (null without any).
    pub min: Option<f64>,
    /// Largest valid value.
    pub max: Option<f64>,
    /// Mean of the valid values.
    pub mean: Option<f64>,
}

/// A statistics failure (the raster, not the polygon).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StatsError(pub String);

fn gdal_err(e: impl std::fmt::Display) -> StatsError {
    StatsError(e.to_string())
}

/// An edge of the projected polygon in pixel coordinates (column, row space).
#[derive(Debug, Clone, Copy)]
struct Edge {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

/// Computes the statistics of band `band` of `path` inside `shape` (EPSG:4326 lon/lat).
/// Blocking (GDAL): call off the async runtime.
pub fn zonal_stats(
    path: &Path,
    band: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, StatsError> {
    let dataset =
        Dataset::open(path).map_err(|e| StatsError(format!("{}: {e}", path.display())))?;
    zonal_stats_in(&dataset, band, shape)
}

thread_local! {
    /// Datasets this thread has open for statistics, by path.
    static OPEN: std::cell::RefCell<std::collections::HashMap<std::path::PathBuf, (Option<std::time::SystemTime>, Dataset)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// As [`zonal_stats`], keeping the dataset open on this thread for the next call.
pub fn zonal_stats_pooled(
    path: &Path,
    band: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, StatsError> {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        // Bounded per thread, and reopened when the file was replaced (rebuilt).
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if open.get(path).is_some_and(|(m, _)| *m != modified) {
            open.remove(path);
        }
        if open.len() >= 64 && !open.contains_key(path) {
            open.clear();
        }
        if !open.contains_key(path) {
            let dataset =
                Dataset::open(path).map_err(|e| StatsError(format!("{}: {e}", path.display())))?;
            open.insert(path.to_path_buf(), (modified, dataset));
        }
        let (_, dataset) = open
            .get(path)
            .ok_or_else(|| StatsError("dataset cache".into()))?;
        zonal_stats_in(dataset, band, shape)
    })
}

/// As [`zonal_stats`], on an open dataset.
pub fn zonal_stats_in(
    dataset: &Dataset,
    band_index: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, StatsError> {
    let gt = dataset.geo_transform().map_err(gdal_err)?;
    if gt[2] != 0.0 || gt[4] != 0.0 {
        return Err(StatsError("rotated rasters are not supported".into()));
    }
    let (width, height) = dataset.raster_size();
    let band = dataset.rasterband(band_index).map_err(gdal_err)?;
    let nodata = band.no_data_value();
    let edges = project_edges(dataset, shape, &gt)?;
    if edges.is_empty() {
        return Ok(ZonalStats::default());
    }
    // The window of rows and columns whose centres can be inside.
    let (mut ymin, mut ymax, mut xmin, mut xmax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for e in &edges {
        ymin = ymin.min(e.y0.min(e.y1));
        ymax = ymax.max(e.y0.max(e.y1));
        xmin = xmin.min(e.x0.min(e.x1));
        xmax = xmax.max(e.x0.max(e.x1));
    }
    let row0 = ((ymin - 0.5).ceil().max(0.0)) as usize;
    let row1 = ((ymax - 0.5).floor().min(height as f64 - 1.0)).max(-1.0) as isize;
    let col0 = ((xmin - 0.5).ceil().max(0.0)) as usize;
    let col1 = ((xmax - 0.5).floor().min(width as f64 - 1.0)).max(-1.0) as isize;
    let mut stats = ZonalStats::default();
    if row1 < row0 as isize || col1 < col0 as isize {
        return Ok(stats);
    }
    let (row1, col1) = (row1 as usize, col1 as usize);
    let cols = col1 - col0 + 1;
    // Edges sorted by their top, so each row looks only at the edges spanning it.
    let mut by_top: Vec<Edge> = edges
        .into_iter()
        .map(|e| {
            if e.y0 <= e.y1 {
                e
            } else {
                Edge {
                    x0: e.x1,
                    y0: e.y1,
                    x1: e.x0,
                    y1: e.y0,
                }
            }
        })
        .filter(|e| e.y1 > e.y0)
        .collect();
    by_top.sort_by(|a, b| a.y0.total_cmp(&b.y0));
    let mut next = 0;
    let mut active: Vec<Edge> = Vec::new();
    let mut crossings: Vec<f64> = Vec::new();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut strip_start = row0;
    while strip_start <= row1 {
        let rows = STRIP_ROWS.min(row1 - strip_start + 1);
        let buffer = band
            .read_as::<f64>(
                (col0 as isize, strip_start as isize),
                (cols, rows),
                (cols, rows),
                None,
            )
            .map_err(gdal_err)?;
        let data = buffer.data();
        for r in 0..rows {
            let y = (strip_start + r) as f64 + 0.5;
            while next < by_top.len() && by_top[next].y0 <= y {
                active.push(by_top[next]);
                next += 1;
            }
            active.retain(|e| e.y1 > y);
            crossings.clear();
            crossings.extend(
                active
                    .iter()
                    .filter(|e| e.y0 <= y && y < e.y1)
                    .map(|e| e.x0 + (y - e.y0) * (e.x1 - e.x0) / (e.y1 - e.y0)),
            );
            crossings.sort_by(f64::total_cmp);
            let line = &data[r * cols..(r + 1) * cols];
            for pair in crossings.chunks_exact(2) {
                // Columns whose centre c + 0.5 is in [pair[0], pair[1]).
                let first = (pair[0] - 0.5).ceil().max(col0 as f64) as usize;
                let last = (pair[1] - 0.5).ceil() as isize - 1;
                let last = last.min(col1 as isize);
                if last < first as isize {
                    continue;
                }
                for &v in &line[first - col0..=(last as usize) - col0] {
                    if v.is_nan() || nodata.is_some_and(|nd| v == nd) {
                        stats.nodata += 1;
                    } else {
                        stats.count += 1;
                        stats.sum += v;
                        min = min.min(v);
                        max = max.max(v);
                    }
                }
            }
        }
        strip_start += rows;
    }
    if stats.count > 0 {
        stats.min = Some(min);
        stats.max = Some(max);
        stats.mean = Some(stats.sum / stats.count as f64);
    }
    Ok(stats)
}

/// The polygon's edges in the raster's pixel space.
fn project_edges(
    dataset: &Dataset,
    shape: &MultiPolygon<f64>,
    gt: &[f64; 6],
) -> Result<Vec<Edge>, StatsError> {
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(gdal_err)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut target = dataset
        .spatial_ref()
        .map_err(|_| StatsError("the raster has no coordinate reference system".into()))?;
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let transform = CoordTransform::new(&wgs84, &target).map_err(gdal_err)?;
    let mut edges = Vec::new();
    for polygon in &shape.0 {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let mut xs: Vec<f64> = ring.0.iter().map(|c| c.x).collect();
            let mut ys: Vec<f64> = ring.0.iter().map(|c| c.y).collect();
            if xs.len() < 4 {
                continue;
            }
            transform
                .transform_coords(&mut xs, &mut ys, &mut [])
                .map_err(gdal_err)?;
            let px: Vec<(f64, f64)> = xs
                .iter()
                .zip(&ys)
                .map(|(x, y)| ((x - gt[0]) / gt[1], (y - gt[3]) / gt[5]))
                .collect();
            edges.extend(px.windows(2).map(|w| Edge {
                x0: w[0].0,
                y0: w[0].1,
                x1: w[1].0,
                y1: w[1].1,
            }));
        }
    }
    Ok(edges)
}

/// The band of a normalized value, as users read scores.
pub fn band(normalized_mean: f64) -> &'static str {
    match normalized_mean {
        v if v < -0.6 => "Poor",
        v if v < -0.2 => "Fair",
        v if v <= 0.2 => "Ok",
        v if v <= 0.6 => "Good",
        _ => "Excellent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_follow_the_original_bounds() {
        assert_eq!(band(-1.0), "Poor");
        assert_eq!(band(-0.6), "Fair");
        assert_eq!(band(-0.2), "Ok");
        assert_eq!(band(0.2), "Ok");
        assert_eq!(band(0.2001), "Good");
        assert_eq!(band(0.6), "Good");
        assert_eq!(band(0.61), "Excellent");
    }
}
