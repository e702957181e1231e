//! The polygon-over-raster scan line, shared by zonal statistics ([`super::stats`]) and
//! stand means ([`super::stands`]).
//!
//! The rule: a pixel belongs to a polygon when its centre lies inside (even-odd over
//! the polygon's rings, so holes are left out; a centre exactly on the left edge of a
//! span is in, on the right edge out), as GDAL's default rasterization and PostGIS
//! `ST_Clip` do. The polygons are given as edges in the raster's pixel space, each
//! tagged with its polygon; the window of rows and columns under them is read once, in
//! strips of `STRIP_ROWS` rows, and each row's spans inside every polygon are found by
//! intersecting the row's centre line with the edges that span it. Memory: one strip
//! of the window, whatever the area.

use std::path::{Path, PathBuf};

use gdal::Dataset;
use gdal::errors::GdalError;
use gdal::raster::RasterBand;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// Rows read at once.
const STRIP_ROWS: usize = 128;

/// A raster that cannot be read or placed.
#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    /// The file cannot be opened.
    #[error("{}: {}", .path.display(), .source)]
    Open {
        /// The file.
        path: PathBuf,
        /// GDAL's reason.
        source: GdalError,
    },
    /// The raster's grid is rotated or sheared.
    #[error("rotated rasters are not supported")]
    Rotated,
    /// The raster has no coordinate reference system.
    #[error("the raster has no coordinate reference system")]
    NoCrs,
    /// Reading, or a reprojection, failed.
    #[error("{0}")]
    Gdal(#[from] GdalError),
}

/// Opens a raster, naming the file in the error.
pub fn open(path: &Path) -> Result<Dataset, RasterError> {
    Dataset::open(path).map_err(|source| RasterError::Open {
        path: path.to_path_buf(),
        source,
    })
}

/// The north-up geotransform of `dataset` (rotated grids are refused).
pub fn geo_transform(dataset: &Dataset) -> Result<[f64; 6], RasterError> {
    let gt = dataset.geo_transform()?;
    if gt[2] != 0.0 || gt[4] != 0.0 {
        return Err(RasterError::Rotated);
    }
    Ok(gt)
}

/// A transform from EPSG code `from` to `to`, both in longitude/easting-first order.
pub fn transform(from: u32, to: &SpatialRef) -> Result<CoordTransform, RasterError> {
    let mut source = SpatialRef::from_epsg(from)?;
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut target = to.clone();
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(CoordTransform::new(&source, &target)?)
}

/// A transform from EPSG code `from` into the CRS of `dataset`.
pub fn transform_to(from: u32, dataset: &Dataset) -> Result<CoordTransform, RasterError> {
    let target = dataset.spatial_ref().map_err(|_| RasterError::NoCrs)?;
    transform(from, &target)
}

/// A point in the CRS of a grid as pixel coordinates (column, row) of that grid.
pub fn to_pixel(gt: &[f64; 6], x: f64, y: f64) -> (f64, f64) {
    ((x - gt[0]) / gt[1], (y - gt[3]) / gt[5])
}

/// An edge of polygon `id` in pixel space (`x` a column, `y` a row).
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// One end.
    pub x0: f64,
    /// One end.
    pub y0: f64,
    /// The other end.
    pub x1: f64,
    /// The other end.
    pub y1: f64,
    /// The polygon it belongs to.
    pub id: u32,
}

/// Polygons ready to scan: their edges top end first, sorted by their top (horizontal
/// edges dropped), and the pixel-space box around every edge. Made once, scanned over
/// any number of rasters on the same grid.
#[derive(Debug, Clone, Default)]
pub struct Polygons {
    edges: Vec<Edge>,
    /// `(xmin, ymin, xmax, ymax)`, when there is an edge.
    bounds: Option<(f64, f64, f64, f64)>,
}

impl Polygons {
    /// Prepares edges given in any order and orientation.
    pub fn new(edges: impl IntoIterator<Item = Edge>) -> Self {
        let mut bounds: Option<(f64, f64, f64, f64)> = None;
        let mut by_top: Vec<Edge> = edges
            .into_iter()
            .inspect(|e| {
                let (xmin, ymin, xmax, ymax) =
                    bounds.unwrap_or((f64::MAX, f64::MAX, f64::MIN, f64::MIN));
                bounds = Some((
                    xmin.min(e.x0.min(e.x1)),
                    ymin.min(e.y0.min(e.y1)),
                    xmax.max(e.x0.max(e.x1)),
                    ymax.max(e.y0.max(e.y1)),
                ));
            })
            .map(|e| {
                if e.y0 <= e.y1 {
                    e
                } else {
                    Edge {
                        x0: e.x1,
                        y0: e.y1,
                        x1: e.x0,
                        y1: e.y0,
                        id: e.id,
                    }
                }
            })
            .filter(|e| e.y1 > e.y0)
            .collect();
        by_top.sort_by(|a, b| a.y0.total_cmp(&b.y0));
        Self {
            edges: by_top,
            bounds,
        }
    }
}

/// What a scan reports, row by row of the window.
pub trait Visitor {
    /// Whether [`Visitor::row`] needs every row of the window whole; when not, a scan
    /// reads only the columns under each strip's spans (and skips strips without any).
    const WHOLE_ROWS: bool = true;

    /// Row `row` of the raster was read: `line[i]` is column `col0 + i` (only the
    /// columns of the spans unless [`Visitor::WHOLE_ROWS`]).
    fn row(&mut self, _row: usize, _col0: usize, _line: &[f64]) {}

    /// `pixels` of the current row have their centres inside polygon `id` (one call per
    /// span, left to right within a polygon).
    fn span(&mut self, id: u32, pixels: &[f64]);
}

/// Scans `band` (of a raster of `size` columns and rows) under `polygons`, reading each
/// row of the window once. Blocking (GDAL).
pub fn scan<V: Visitor>(
    band: &RasterBand,
    size: (usize, usize),
    polygons: &Polygons,
    visitor: &mut V,
) -> Result<(), RasterError> {
    let (width, height) = size;
    let Some((xmin, ymin, xmax, ymax)) = polygons.bounds else {
        return Ok(());
    };
    // The window of rows and columns whose centres can be inside.
    let row0 = ((ymin - 0.5).ceil().max(0.0)) as usize;
    let row1 = ((ymax - 0.5).floor().min(height as f64 - 1.0)).max(-1.0) as isize;
    let col0 = ((xmin - 0.5).ceil().max(0.0)) as usize;
    let col1 = ((xmax - 0.5).floor().min(width as f64 - 1.0)).max(-1.0) as isize;
    if row1 < row0 as isize || col1 < col0 as isize {
        return Ok(());
    }
    let (row1, col1) = (row1 as usize, col1 as usize);
    let edges = &polygons.edges;
    let mut next = 0;
    let mut active: Vec<Edge> = Vec::new();
    let mut crossings: Vec<(u32, f64)> = Vec::new();
    // The spans of a strip: (row in the strip, polygon, first column, last column).
    let mut spans: Vec<(usize, u32, usize, usize)> = Vec::new();
    let mut strip_start = row0;
    while strip_start <= row1 {
        let rows = STRIP_ROWS.min(row1 - strip_start + 1);
        spans.clear();
        for r in 0..rows {
            let y = (strip_start + r) as f64 + 0.5;
            while next < edges.len() && edges[next].y0 <= y {
                active.push(edges[next]);
                next += 1;
            }
            active.retain(|e| e.y1 > y);
            crossings.clear();
            crossings.extend(
                active
                    .iter()
                    .filter(|e| e.y0 <= y && y < e.y1)
                    .map(|e| (e.id, e.x0 + (y - e.y0) * (e.x1 - e.x0) / (e.y1 - e.y0))),
            );
            crossings.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            for polygon in crossings.chunk_by(|a, b| a.0 == b.0) {
                for pair in polygon.chunks_exact(2) {
                    // Columns whose centre c + 0.5 is in [pair[0], pair[1]).
                    let first = (pair[0].1 - 0.5).ceil().max(col0 as f64) as usize;
                    let last = ((pair[1].1 - 0.5).ceil() as isize - 1).min(col1 as isize);
                    if last < first as isize {
                        continue;
                    }
                    spans.push((r, pair[0].0, first, last as usize));
                }
            }
        }
        // The columns to read: the whole window's for a visitor of whole rows, else
        // only those under this strip's spans (none: the strip is not read at all).
        let (c0, c1) = if V::WHOLE_ROWS {
            (col0, col1)
        } else {
            match (
                spans.iter().map(|s| s.2).min(),
                spans.iter().map(|s| s.3).max(),
            ) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    strip_start += rows;
                    continue;
                }
            }
        };
        let cols = c1 - c0 + 1;
        let buffer = band.read_as::<f64>(
            (c0 as isize, strip_start as isize),
            (cols, rows),
            (cols, rows),
            None,
        )?;
        let data = buffer.data();
        let mut at = 0;
        for r in 0..rows {
            let line = &data[r * cols..(r + 1) * cols];
            visitor.row(strip_start + r, c0, line);
            while at < spans.len() && spans[at].0 == r {
                let (_, id, first, last) = spans[at];
                visitor.span(id, &line[first - c0..=last - c0]);
                at += 1;
            }
        }
        strip_start += rows;
    }
    Ok(())
}

/// Whether a pixel value is data (not NaN, not the band's nodata value).
pub fn is_data(v: f64, nodata: Option<f64>) -> bool {
    !(v.is_nan() || nodata.is_some_and(|nd| v == nd))
}
