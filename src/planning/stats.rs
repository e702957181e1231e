//! Zonal statistics of a raster over a polygon, by the pixel-centre rule and the scan
//! line of [`super::scan`]: the polygon (longitude, latitude) is reprojected vertex by
//! vertex to the raster's CRS, and each row of the raster window under it is read once.

use std::path::Path;

use gdal::Dataset;
use geo_types::MultiPolygon;
use serde::{Deserialize, Serialize};

use super::scan::{self, Edge, Polygons, RasterError};

/// Statistics of the valid pixels inside a polygon.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Computes the statistics of band `band` of `path` inside `shape` (EPSG:4326 lon/lat).
/// Blocking (GDAL): call off the async runtime.
pub fn zonal_stats(
    path: &Path,
    band: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, RasterError> {
    zonal_stats_in(&scan::open(path)?, band, shape)
}

/// As [`zonal_stats`], with a dataset kept open for the next reader of the file.
pub fn zonal_stats_pooled(
    path: &Path,
    band: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, RasterError> {
    with_pooled(path, |dataset| zonal_stats_in(dataset, band, shape))
}

/// How many pixels statistics of `path` over `shape` would read: the raster window
/// under the shape's bounding box (its outline densified, so a reprojected box is
/// covered), clipped to the raster; 0 when the shape lies outside it. Blocking (GDAL).
pub fn window_pixels(path: &Path, shape: &MultiPolygon<f64>) -> Result<u64, RasterError> {
    use geo::BoundingRect;
    let Some(rect) = shape.bounding_rect() else {
        return Ok(0);
    };
    with_pooled(path, |dataset| {
        let gt = scan::geo_transform(dataset)?;
        let transform = scan::transform_to(4326, dataset)?;
        // 16 points a side: a box in longitude and latitude bends in other projections.
        let steps = 16;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for i in 0..=steps {
            let t = f64::from(i) / f64::from(steps);
            let x = rect.min().x + t * rect.width();
            let y = rect.min().y + t * rect.height();
            xs.extend([x, x, rect.min().x, rect.max().x]);
            ys.extend([rect.min().y, rect.max().y, y, y]);
        }
        transform.transform_coords(&mut xs, &mut ys, &mut [])?;
        let (mut c0, mut r0, mut c1, mut r1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (&x, &y) in xs.iter().zip(&ys) {
            let (c, r) = scan::to_pixel(&gt, x, y);
            (c0, r0, c1, r1) = (c0.min(c), r0.min(r), c1.max(c), r1.max(r));
        }
        let (width, height) = dataset.raster_size();
        let cols = (c1.ceil().min(width as f64) - c0.floor().max(0.0)).max(0.0);
        let rows = (r1.ceil().min(height as f64) - r0.floor().max(0.0)).max(0.0);
        Ok((cols * rows) as u64)
    })
}

/// The centre of `path`'s extent as (longitude, latitude), from the process's raster
/// handles. Blocking (GDAL, PROJ).
pub fn centre_lonlat(path: &Path) -> Result<(f64, f64), RasterError> {
    with_pooled(path, |dataset| {
        let gt = scan::geo_transform(dataset)?;
        let (width, height) = dataset.raster_size();
        let mut x = [gt[0] + gt[1] * width as f64 / 2.0];
        let mut y = [gt[3] + gt[5] * height as f64 / 2.0];
        let crs = dataset.spatial_ref().map_err(|_| RasterError::NoCrs)?;
        let lonlat = gdal::spatial_ref::SpatialRef::from_epsg(4326)?;
        scan::transform_between(&crs, &lonlat)?.transform_coords(&mut x, &mut y, &mut [])?;
        Ok((x[0], y[0]))
    })
}

/// Runs `f` on an open dataset of `path` from the process's raster handles (shared with
/// tile rendering: [`crate::dataset_pool::RASTERS`]).
fn with_pooled<T>(
    path: &Path,
    f: impl FnOnce(&Dataset) -> Result<T, RasterError>,
) -> Result<T, RasterError> {
    crate::dataset_pool::with_raster(path, || scan::open(path), |raster| f(raster.file()))
}

/// As [`zonal_stats`], on an open dataset.
pub fn zonal_stats_in(
    dataset: &Dataset,
    band_index: usize,
    shape: &MultiPolygon<f64>,
) -> Result<ZonalStats, RasterError> {
    let gt = scan::geo_transform(dataset)?;
    let band = dataset.rasterband(band_index)?;
    let polygon = Polygons::new(project_edges(dataset, shape, &gt)?);
    let mut totals = Totals {
        nodata_value: band.no_data_value(),
        stats: ZonalStats::default(),
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
    scan::scan(dataset, &band, &polygon, &mut totals)?;
    let mut stats = totals.stats;
    if stats.count > 0 {
        stats.min = Some(totals.min);
        stats.max = Some(totals.max);
        stats.mean = Some(stats.sum / stats.count as f64);
    }
    Ok(stats)
}

/// The running totals of a scan.
struct Totals {
    nodata_value: Option<f64>,
    stats: ZonalStats,
    min: f64,
    max: f64,
}

impl scan::Visitor for Totals {
    const WHOLE_ROWS: bool = false;

    /// The hot loop of statistics. The sum is added pixel by pixel in row order (the
    /// order PostGIS adds them: the same sum to the last bit); what may run side by side
    /// does: the count, and the minimum and maximum over four lanes (order does not
    /// change them), without a branch per pixel (a nodata pixel adds 0.0, which leaves a
    /// sum unchanged: a sum that starts at +0.0 is never -0.0).
    fn span(&mut self, _polygon: u32, pixels: &[f64]) {
        let nodata = self.nodata_value;
        let mut sum = self.stats.sum;
        let mut count = 0u64;
        let mut lo = [f64::INFINITY; 4];
        let mut hi = [f64::NEG_INFINITY; 4];
        let mut chunks = pixels.chunks_exact(4);
        for chunk in &mut chunks {
            for lane in 0..4 {
                let v = chunk[lane];
                let data = scan::is_data(v, nodata);
                count += u64::from(data);
                sum += if data { v } else { 0.0 };
                let (low, high) = if data {
                    (v, v)
                } else {
                    (f64::INFINITY, f64::NEG_INFINITY)
                };
                lo[lane] = if low < lo[lane] { low } else { lo[lane] };
                hi[lane] = if high > hi[lane] { high } else { hi[lane] };
            }
        }
        for &v in chunks.remainder() {
            if scan::is_data(v, nodata) {
                count += 1;
                sum += v;
                lo[0] = if v < lo[0] { v } else { lo[0] };
                hi[0] = if v > hi[0] { v } else { hi[0] };
            }
        }
        self.stats.sum = sum;
        self.stats.count += count;
        self.stats.nodata += pixels.len() as u64 - count;
        for lane in 0..4 {
            self.min = self.min.min(lo[lane]);
            self.max = self.max.max(hi[lane]);
        }
    }
}

/// The polygon's edges in the raster's pixel space (one polygon: id 0).
fn project_edges(
    dataset: &Dataset,
    shape: &MultiPolygon<f64>,
    gt: &[f64; 6],
) -> Result<Vec<Edge>, RasterError> {
    let transform = scan::transform_to(4326, dataset)?;
    let mut edges = Vec::new();
    for polygon in &shape.0 {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let mut xs: Vec<f64> = ring.0.iter().map(|c| c.x).collect();
            let mut ys: Vec<f64> = ring.0.iter().map(|c| c.y).collect();
            if xs.len() < 4 {
                continue;
            }
            transform.transform_coords(&mut xs, &mut ys, &mut [])?;
            let px: Vec<(f64, f64)> = xs
                .iter()
                .zip(&ys)
                .map(|(&x, &y)| scan::to_pixel(gt, x, y))
                .collect();
            edges.extend(px.windows(2).map(|w| Edge {
                x0: w[0].0,
                y0: w[0].1,
                x1: w[1].0,
                y1: w[1].1,
                id: 0,
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
