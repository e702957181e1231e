//! The polygon-over-raster scan line, shared by zonal statistics ([`super::stats`]) and
//! stand means ([`super::stands`]).
//!
//! The rule: a pixel belongs to a polygon when its centre lies inside (even-odd over
//! the polygon's rings, so holes are left out; a centre exactly on the left edge of a
//! span is in, on the right edge out), as GDAL's default rasterization and PostGIS
//! `ST_Clip` do. The polygons are given as edges in the raster's pixel space, each
//! tagged with its polygon; the window of rows and columns under them is read once, in
//! strips that follow the raster's block rows (see [`strip_rows`]), and each row's spans
//! inside every polygon are found by intersecting the row's centre line with the edges
//! that span it. Memory: one strip of the window, whatever the area.

use std::path::{Path, PathBuf};

use gdal::Dataset;
use gdal::errors::GdalError;
use gdal::raster::RasterBand;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

use super::readahead::RowSpan;

/// Most bytes of one strip's buffer (`f64` pixels); a strip as tall as a block row of a
/// wide window is cut to a fraction of the block row beyond it.
const STRIP_BYTES: usize = 8 << 20;

/// Rows read at once from a band of `block_rows`-row blocks over `cols` columns: a whole
/// block row (whole blocks of about 128 rows for a striped file), so that each block is
/// decoded by one read whatever GDAL's block cache holds (with strips of half a block
/// row, a 500,000-acre request over 55 rasters decoded blocks twice once four readers'
/// strips outgrew the 8 MiB cache: 706 against 627 ms with a 64 MiB cache); halved while
/// the buffer would pass [`STRIP_BYTES`] (then the block row's other strips find its
/// blocks in the cache, or decode them again). Strips start at block row boundaries
/// ([`scan`]).
fn strip_rows(block_rows: usize, cols: usize) -> usize {
    let mut rows = match block_rows {
        // Striped files (a block of a few rows): whole blocks, about 128 rows.
        0 => 128,
        1..64 => block_rows * (128 / block_rows),
        _ => block_rows.min(1024),
    };
    while rows > 16 && rows * cols * std::mem::size_of::<f64>() > STRIP_BYTES {
        rows /= 2;
    }
    rows
}

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
    transform_between(&SpatialRef::from_epsg(from)?, to)
}

/// A transform from `from` to `to`, both in longitude/easting-first order.
pub fn transform_between(
    from: &SpatialRef,
    to: &SpatialRef,
) -> Result<CoordTransform, RasterError> {
    let mut source = from.clone();
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

    /// The columns of the window `rows` x `cols` (first and last, inclusive) under the
    /// polygons in each block row of `block_rows` rows: every column a scan could read
    /// there (from the edges clipped to the block row, so a little more than the spans),
    /// block rows without an edge left out.
    fn block_row_columns(
        &self,
        block_rows: usize,
        rows: (usize, usize),
        cols: (usize, usize),
    ) -> Vec<RowSpan> {
        if block_rows == 0 {
            return Vec::new();
        }
        let (first_block, last_block) = (rows.0 / block_rows, rows.1 / block_rows);
        let mut extents: Vec<(f64, f64)> =
            vec![(f64::INFINITY, f64::NEG_INFINITY); last_block - first_block + 1];
        let height = block_rows as f64;
        for e in &self.edges {
            let top = ((e.y0 / height).floor().max(first_block as f64)) as usize;
            let bottom = ((e.y1 / height).floor().min(last_block as f64)).max(0.0) as usize;
            for block in top..=bottom.max(top) {
                if block > last_block {
                    break;
                }
                // The edge clipped to the block row's band of y.
                let ya = e.y0.max(block as f64 * height);
                let yb = e.y1.min((block + 1) as f64 * height);
                if ya > yb {
                    continue;
                }
                let at = |y: f64| e.x0 + (y - e.y0) * (e.x1 - e.x0) / (e.y1 - e.y0);
                let extent = &mut extents[block - first_block];
                for x in [at(ya), at(yb)] {
                    *extent = (extent.0.min(x), extent.1.max(x));
                }
            }
        }
        extents
            .into_iter()
            .enumerate()
            .filter(|(_, (low, high))| low <= high)
            .filter_map(|(i, (low, high))| {
                let first = (low - 0.5).floor().max(cols.0 as f64) as usize;
                let last = high.ceil().min(cols.1 as f64).max(0.0) as usize;
                (first <= last).then_some(RowSpan {
                    block_row: first_block + i,
                    first,
                    last,
                })
            })
            .collect()
    }
}

/// Every block row of the window `rows` x `cols`, all its columns.
fn whole_window(block_rows: usize, rows: (usize, usize), cols: (usize, usize)) -> Vec<RowSpan> {
    if block_rows == 0 {
        return Vec::new();
    }
    (rows.0 / block_rows..=rows.1 / block_rows)
        .map(|block_row| RowSpan {
            block_row,
            first: cols.0,
            last: cols.1,
        })
        .collect()
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

/// The window of rows and columns (first and last, inclusive) whose centres can be
/// inside `polygons`, in a raster of `size` columns and rows; `None` when empty.
fn window(
    polygons: &Polygons,
    (width, height): (usize, usize),
) -> Option<((usize, usize), (usize, usize))> {
    let (xmin, ymin, xmax, ymax) = polygons.bounds?;
    let row0 = ((ymin - 0.5).ceil().max(0.0)) as usize;
    let row1 = ((ymax - 0.5).floor().min(height as f64 - 1.0)).max(-1.0) as isize;
    let col0 = ((xmin - 0.5).ceil().max(0.0)) as usize;
    let col1 = ((xmax - 0.5).floor().min(width as f64 - 1.0)).max(-1.0) as isize;
    if row1 < row0 as isize || col1 < col0 as isize {
        return None;
    }
    Some(((row0, row1 as usize), (col0, col1 as usize)))
}

/// Advises the kernel of the blocks of `band` that a scan of `polygons` by a visitor
/// `V` will read in the window `rows` x `cols` ([`super::readahead`]).
fn advise_window<V: Visitor>(
    dataset: &Dataset,
    band: &RasterBand,
    polygons: &Polygons,
    rows: (usize, usize),
    cols: (usize, usize),
) {
    let (_, block_rows) = band.block_size();
    let reads = if V::WHOLE_ROWS {
        whole_window(block_rows, rows, cols)
    } else {
        polygons.block_row_columns(block_rows, rows, cols)
    };
    super::readahead::advise(dataset, band, &reads);
}

/// Scans `band` of `dataset` under `polygons`, reading each row of the window once. The
/// blocks the scan will read are first advised to the kernel
/// ([`super::readahead`]). Blocking (GDAL).
pub fn scan<V: Visitor>(
    dataset: &Dataset,
    band: &RasterBand,
    polygons: &Polygons,
    visitor: &mut V,
) -> Result<(), RasterError> {
    let Some(((row0, row1), (col0, col1))) = window(polygons, dataset.raster_size()) else {
        return Ok(());
    };
    advise_window::<V>(dataset, band, polygons, (row0, row1), (col0, col1));
    let edges = &polygons.edges;
    let mut next = 0;
    let mut active: Vec<Edge> = Vec::new();
    let mut crossings: Vec<(u32, f64)> = Vec::new();
    // The spans of a strip: (row in the strip, polygon, first column, last column).
    let mut spans: Vec<(usize, u32, usize, usize)> = Vec::new();
    let strip = strip_rows(band.block_size().1, col1 - col0 + 1);
    let mut strip_start = row0;
    while strip_start <= row1 {
        // To the next multiple of `strip` (a block row's boundary, or a fraction of it).
        let rows = (strip - strip_start % strip).min(row1 - strip_start + 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygons {
        let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        Polygons::new(corners.windows(2).map(|w| Edge {
            x0: w[0].0,
            y0: w[0].1,
            x1: w[1].0,
            y1: w[1].1,
            id: 0,
        }))
    }

    #[test]
    fn strips_are_block_rows_within_the_buffer_bound() {
        // A block row of 256 or 128 rows over a 100,000-acre window (about 1,000 columns).
        assert_eq!(strip_rows(256, 1_000), 256);
        assert_eq!(strip_rows(128, 1_000), 128);
        // Wide windows: halves of the block row, never a buffer over STRIP_BYTES.
        assert_eq!(strip_rows(256, 5_000), 128);
        let rows = strip_rows(512, 20_000);
        assert_eq!(rows, 32);
        assert!(rows * 20_000 * std::mem::size_of::<f64>() <= STRIP_BYTES);
        // Striped files: whole strips of about 128 rows; a degenerate block size.
        assert_eq!(strip_rows(1, 1_000), 128);
        assert_eq!(strip_rows(10, 1_000), 120);
        assert_eq!(strip_rows(0, 1_000), 128);
        // Never under 16 rows, however wide.
        assert_eq!(strip_rows(256, 1_000_000), 16);
    }

    #[test]
    fn the_block_rows_to_read_cover_the_polygon_and_no_more() {
        // A box over columns 10-300 and rows 10-600, in a window of columns 0-999 and
        // rows 0-999, blocks of 256 rows: block rows 0, 1 and 2, columns 9-300.
        let box_ = square(10.0, 10.0, 300.0, 600.0);
        let spans = box_.block_row_columns(256, (0, 999), (0, 999));
        let expected: Vec<RowSpan> = (0..3)
            .map(|block_row| RowSpan {
                block_row,
                first: 9,
                last: 300,
            })
            .collect();
        assert_eq!(spans, expected);
        // Clipped to a narrower window: rows from 300, columns up to 200.
        let spans = box_.block_row_columns(256, (300, 999), (0, 200));
        assert_eq!(
            spans,
            vec![
                RowSpan {
                    block_row: 1,
                    first: 9,
                    last: 200
                },
                RowSpan {
                    block_row: 2,
                    first: 9,
                    last: 200
                },
            ]
        );
        // A triangle narrows from block row to block row.
        let triangle = Polygons::new([
            Edge {
                x0: 0.0,
                y0: 0.0,
                x1: 512.0,
                y1: 512.0,
                id: 0,
            },
            Edge {
                x0: 512.0,
                y0: 512.0,
                x1: 0.0,
                y1: 512.0,
                id: 0,
            },
            Edge {
                x0: 0.0,
                y0: 512.0,
                x1: 0.0,
                y1: 0.0,
                id: 0,
            },
        ]);
        let spans = triangle.block_row_columns(256, (0, 511), (0, 511));
        assert_eq!(
            spans,
            vec![
                RowSpan {
                    block_row: 0,
                    first: 0,
                    last: 256
                },
                RowSpan {
                    block_row: 1,
                    first: 0,
                    last: 511
                },
            ]
        );
        // Every block row of the window, whole, for a visitor of whole rows.
        assert_eq!(whole_window(256, (100, 600), (5, 50)).len(), 3);
    }
}
