//! Hexagonal stands over a planning area, laid out in the equal-area EPSG:5070, and the
//! mean of a raster in every stand computed in one pass over the raster.
//!
//! A stand is a regular hexagon of the chosen area whose centre lies inside the planning
//! area (so the stand count is the area divided by the stand size, up to the boundary).
//! Means use the pixel-centre rule of [`super::stats`]: each row of the raster window is
//! read once, and each stand takes the pixels whose centres fall inside its hexagon.

use std::path::Path;

use gdal::Dataset;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo_types::{Coord, LineString, MultiPolygon, Polygon};

use super::units::M2_PER_ACRE;

/// Corners of a pointy-top hexagon on the vertex lattice (units of half a hex width
/// across, half a side up), counter-clockwise from the upper right; the centre of hex
/// (q, r) is at (2q + r, 3r).
const CORNER_OFFSETS: [(i64, i64); 6] = [(1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2), (1, -1)];

/// A stand: its axial hex coordinates and its hexagon (EPSG:5070).
#[derive(Debug, Clone)]
pub struct Stand {
    /// Axial column.
    pub q: i64,
    /// Axial row.
    pub r: i64,
    /// Corners, counter-clockwise, EPSG:5070 metres.
    pub corners: [(f64, f64); 6],
}

impl Stand {
    /// The six axial neighbours.
    pub fn neighbours(&self) -> [(i64, i64); 6] {
        let (q, r) = (self.q, self.r);
        [
            (q + 1, r),
            (q - 1, r),
            (q, r + 1),
            (q, r - 1),
            (q + 1, r - 1),
            (q - 1, r + 1),
        ]
    }

    /// The hexagon as a polygon (EPSG:5070).
    pub fn polygon(&self) -> Polygon<f64> {
        let mut ring: Vec<Coord<f64>> = self.corners.iter().map(|&(x, y)| Coord { x, y }).collect();
        ring.push(ring[0]);
        Polygon::new(LineString(ring), vec![])
    }
}

/// A transform between two EPSG codes in longitude/easting-first order.
pub fn transform(from: u32, to: &SpatialRef) -> Result<CoordTransform, String> {
    let mut source = SpatialRef::from_epsg(from).map_err(|e| e.to_string())?;
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut target = to.clone();
    target.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    CoordTransform::new(&source, &target).map_err(|e| e.to_string())
}

/// Reprojects every vertex of `shape` (EPSG:4326) to EPSG:5070.
pub fn to_albers(shape: &MultiPolygon<f64>) -> Result<MultiPolygon<f64>, String> {
    let albers = SpatialRef::from_epsg(5070).map_err(|e| e.to_string())?;
    let t = transform(4326, &albers)?;
    let ring = |ls: &LineString<f64>| -> Result<LineString<f64>, String> {
        let mut xs: Vec<f64> = ls.0.iter().map(|c| c.x).collect();
        let mut ys: Vec<f64> = ls.0.iter().map(|c| c.y).collect();
        t.transform_coords(&mut xs, &mut ys, &mut [])
            .map_err(|e| e.to_string())?;
        Ok(LineString(
            xs.into_iter()
                .zip(ys)
                .map(|(x, y)| Coord { x, y })
                .collect(),
        ))
    };
    let polygons = shape
        .0
        .iter()
        .map(|p| {
            Ok(Polygon::new(
                ring(p.exterior())?,
                p.interiors()
                    .iter()
                    .map(ring)
                    .collect::<Result<_, String>>()?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(MultiPolygon(polygons))
}

/// Pointy-top hexagons of `acres` each whose centres lie in `area` (EPSG:5070) and not in
/// `exclude`.
pub fn hex_grid(
    area: &MultiPolygon<f64>,
    acres: f64,
    exclude: Option<&MultiPolygon<f64>>,
) -> Vec<Stand> {
    use geo::BoundingRect;
    let Some(bbox) = area.bounding_rect() else {
        return Vec::new();
    };
    let size = (2.0 * acres * M2_PER_ACRE / (3.0 * 3f64.sqrt())).sqrt();
    let (w, h) = (3f64.sqrt() * size, 1.5 * size);
    let r0 = (bbox.min().y / h).floor() as i64 - 1;
    let r1 = (bbox.max().y / h).ceil() as i64 + 1;
    let (area_edges, exclude_edges) = (edges(area), exclude.map(edges).unwrap_or_default());
    let mut stands = Vec::new();
    for r in r0..=r1 {
        let cy = r as f64 * h;
        let shift = r as f64 / 2.0;
        let q0 = (bbox.min().x / w - shift).floor() as i64 - 1;
        let q1 = (bbox.max().x / w - shift).ceil() as i64 + 1;
        // One row at a time: where the row's line crosses the rings (even-odd), so a
        // centre costs a binary search, not a pass over every vertex of the plan.
        let (inside, excluded) = (crossings(&area_edges, cy), crossings(&exclude_edges, cy));
        for q in q0..=q1 {
            let cx = w * (q as f64 + shift);
            if !within(&inside, cx) || within(&excluded, cx) {
                continue;
            }
            // Corners from the integer vertex lattice, so that neighbours share them
            // bit for bit (the dissolve of project areas relies on it).
            let mut corners = [(0.0, 0.0); 6];
            for (c, (dx, dy)) in corners.iter_mut().zip(CORNER_OFFSETS) {
                let (kx, ky) = ((2 * q + r + dx) as f64, (3 * r + dy) as f64);
                *c = (kx * w / 2.0, ky * size / 2.0);
            }
            stands.push(Stand { q, r, corners });
        }
    }
    stands
}

/// The edges of every ring of `shape`, as `(x0, y0, x1, y1)`.
fn edges(shape: &MultiPolygon<f64>) -> Vec<(f64, f64, f64, f64)> {
    shape
        .0
        .iter()
        .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
        .flat_map(|ring| ring.0.windows(2).map(|w| (w[0].x, w[0].y, w[1].x, w[1].y)))
        .collect()
}

/// The sorted x where the line `y` crosses `edges` (half-open in y, so a vertex on the
/// line counts once): between the 1st and 2nd, 3rd and 4th, ... is inside.
fn crossings(edges: &[(f64, f64, f64, f64)], y: f64) -> Vec<f64> {
    let mut xs: Vec<f64> = edges
        .iter()
        .filter(|(_, y0, _, y1)| (*y0 <= y) != (*y1 <= y))
        .map(|(x0, y0, x1, y1)| x0 + (y - y0) / (y1 - y0) * (x1 - x0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs
}

/// Whether `x` lies inside by the even-odd rule over `crossings`.
fn within(crossings: &[f64], x: f64) -> bool {
    crossings.partition_point(|c| *c < x) % 2 == 1
}

/// The stands in the pixel space of one raster grid: edges sorted by their top, and
/// the pixel under each stand's centre. Made once per grid, swept once per raster.
pub struct PixelStands {
    edges: Vec<(f64, f64, f64, f64, u32)>,
    by_row: Vec<(isize, isize, usize)>,
    count: usize,
    gt: [f64; 6],
    size: (usize, usize),
}

impl PixelStands {
    /// Projects the stands (EPSG:5070) into the grid of `dataset`.
    pub fn new(dataset: &Dataset, stands: &[Stand]) -> Result<Self, String> {
        let gt = dataset.geo_transform().map_err(|e| e.to_string())?;
        if gt[2] != 0.0 || gt[4] != 0.0 {
            return Err("rotated rasters are not supported".into());
        }
        let srs = dataset.spatial_ref().map_err(|e| e.to_string())?;
        let t = transform(5070, &srs)?;
        let centre = |s: &Stand| {
            let (x, y) = s
                .corners
                .iter()
                .fold((0.0, 0.0), |a, c| (a.0 + c.0, a.1 + c.1));
            (x / 6.0, y / 6.0)
        };
        // Six corners, then the centre, of every stand.
        let mut xs: Vec<f64> = stands
            .iter()
            .flat_map(|s| s.corners.iter().map(|c| c.0))
            .collect();
        let mut ys: Vec<f64> = stands
            .iter()
            .flat_map(|s| s.corners.iter().map(|c| c.1))
            .collect();
        xs.extend(stands.iter().map(|s| centre(s).0));
        ys.extend(stands.iter().map(|s| centre(s).1));
        if !xs.is_empty() {
            t.transform_coords(&mut xs, &mut ys, &mut [])
                .map_err(|e| e.to_string())?;
        }
        let centres = stands.len() * 6;
        let mut by_row: Vec<(isize, isize, usize)> = (0..stands.len())
            .map(|i| {
                let col = ((xs[centres + i] - gt[0]) / gt[1]).floor() as isize;
                let row = ((ys[centres + i] - gt[3]) / gt[5]).floor() as isize;
                (row, col, i)
            })
            .collect();
        by_row.sort_unstable();
        // Edges in pixel space, top first: (y_top, y_bottom, x_at_top, dx/dy, stand).
        let mut edges: Vec<(f64, f64, f64, f64, u32)> = Vec::with_capacity(stands.len() * 6);
        for i in 0..stands.len() {
            let px: Vec<(f64, f64)> = (0..6)
                .map(|k| {
                    let j = i * 6 + k;
                    ((xs[j] - gt[0]) / gt[1], (ys[j] - gt[3]) / gt[5])
                })
                .collect();
            for k in 0..6 {
                let (a, b) = (px[k], px[(k + 1) % 6]);
                let (top, bottom) = if a.1 <= b.1 { (a, b) } else { (b, a) };
                if bottom.1 > top.1 {
                    let slope = (bottom.0 - top.0) / (bottom.1 - top.1);
                    edges.push((top.1, bottom.1, top.0, slope, i as u32));
                }
            }
        }
        edges.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self {
            edges,
            by_row,
            count: stands.len(),
            gt,
            size: dataset.raster_size(),
        })
    }

    /// Whether `dataset` is on this grid (same size, geotransform and CRS as the one
    /// these stands were projected into).
    pub fn fits(&self, dataset: &Dataset) -> bool {
        dataset.raster_size() == self.size && dataset.geo_transform().ok() == Some(self.gt)
    }
}

/// The mean of band 1 of `path` in every stand: the pixels whose centres fall inside the
/// hexagon, or, for a stand smaller than a pixel (no centre inside), the pixel under
/// the stand's centre; `None` without valid data. One pass over the raster window.
/// Blocking.
pub fn stand_means(path: &Path, stands: &[Stand]) -> Result<Vec<Option<f64>>, String> {
    let dataset = Dataset::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let projected = PixelStands::new(&dataset, stands)?;
    sweep(&dataset, &projected)
}

/// As [`stand_means`], with the stands already projected into the raster's grid.
pub fn sweep(dataset: &Dataset, stands: &PixelStands) -> Result<Vec<Option<f64>>, String> {
    let (width, height) = dataset.raster_size();
    let band = dataset.rasterband(1).map_err(|e| e.to_string())?;
    let nodata = band.no_data_value();
    let (edges, by_row) = (&stands.edges, &stands.by_row);
    let mut sums = vec![0.0f64; stands.count];
    let mut counts = vec![0u64; stands.count];
    let mut centre_values: Vec<Option<f64>> = vec![None; stands.count];
    let Some(first) = edges.first() else {
        return Ok(vec![None; stands.count]);
    };
    let ymax = edges.iter().map(|e| e.1).fold(f64::MIN, f64::max);
    let xmin = edges
        .iter()
        .map(|e| e.2.min(e.2 + e.3 * (e.1 - e.0)))
        .fold(f64::MAX, f64::min);
    let xmax = edges
        .iter()
        .map(|e| e.2.max(e.2 + e.3 * (e.1 - e.0)))
        .fold(f64::MIN, f64::max);
    let row0 = (first.0 - 0.5).ceil().max(0.0) as usize;
    let row1 = ((ymax - 0.5).floor().min(height as f64 - 1.0)) as isize;
    let col0 = (xmin - 0.5).ceil().max(0.0) as usize;
    let col1 = ((xmax - 0.5).floor().min(width as f64 - 1.0)) as isize;
    if row1 < row0 as isize || col1 < col0 as isize {
        return Ok(vec![None; stands.count]);
    }
    let (row1, col1) = (row1 as usize, col1 as usize);
    let cols = col1 - col0 + 1;
    const STRIP: usize = 128;
    let mut next = 0;
    let mut active: Vec<(f64, f64, f64, f64, u32)> = Vec::new();
    let mut crossings: Vec<(u32, f64)> = Vec::new();
    let mut pending = by_row
        .iter()
        .position(|&(r, _, _)| r >= row0 as isize)
        .unwrap_or(by_row.len());
    let mut row = row0;
    while row <= row1 {
        let rows = STRIP.min(row1 - row + 1);
        let buffer = band
            .read_as::<f64>(
                (col0 as isize, row as isize),
                (cols, rows),
                (cols, rows),
                None,
            )
            .map_err(|e| e.to_string())?;
        let data = buffer.data();
        for k in 0..rows {
            let y = (row + k) as f64 + 0.5;
            while next < edges.len() && edges[next].0 <= y {
                active.push(edges[next]);
                next += 1;
            }
            active.retain(|e| e.1 > y);
            crossings.clear();
            crossings.extend(
                active
                    .iter()
                    .filter(|e| e.0 <= y && y < e.1)
                    .map(|e| (e.4, e.2 + (y - e.0) * e.3)),
            );
            // Hexagons are convex: two crossings per stand on a row.
            crossings.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let line = &data[k * cols..(k + 1) * cols];
            while pending < by_row.len() && by_row[pending].0 == (row + k) as isize {
                let (_, col, stand) = by_row[pending];
                if col >= col0 as isize && col <= col1 as isize {
                    let v = line[col as usize - col0];
                    if !(v.is_nan() || nodata.is_some_and(|nd| v == nd)) {
                        centre_values[stand] = Some(v);
                    }
                }
                pending += 1;
            }
            for pair in crossings.chunks_exact(2) {
                if pair[0].0 != pair[1].0 {
                    continue;
                }
                let stand = pair[0].0 as usize;
                let first = (pair[0].1 - 0.5).ceil().max(col0 as f64) as usize;
                let last = ((pair[1].1 - 0.5).ceil() as isize - 1).min(col1 as isize);
                if last < first as isize {
                    continue;
                }
                for &v in &line[first - col0..=(last as usize) - col0] {
                    if !(v.is_nan() || nodata.is_some_and(|nd| v == nd)) {
                        sums[stand] += v;
                        counts[stand] += 1;
                    }
                }
            }
        }
        row += rows;
    }
    Ok(sums
        .iter()
        .zip(&counts)
        .zip(&centre_values)
        .map(|((s, &n), centre)| if n > 0 { Some(s / n as f64) } else { *centre })
        .collect())
}

/// The outline of a group of stands (EPSG:5070): their hexagons dissolved into
/// polygons (holes kept).
pub fn dissolve(stands: &[&Stand]) -> MultiPolygon<f64> {
    let polygons: Vec<Polygon<f64>> = stands.iter().map(|s| s.polygon()).collect();
    geo::unary_union(&polygons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_crossings_agree_with_point_in_polygon() {
        use geo::Contains;
        // A 40-point star with a square hole, and a second part beside it.
        let star: Vec<(f64, f64)> = (0..=40)
            .map(|i| {
                let t = std::f64::consts::TAU * f64::from(i % 40) / 40.0;
                let r = if i % 2 == 0 { 10_000.0 } else { 4_000.0 };
                (r * t.cos(), r * t.sin())
            })
            .collect();
        let hole = vec![
            (-1_000.0, -1_000.0),
            (-1_000.0, 1_000.0),
            (1_000.0, 1_000.0),
            (1_000.0, -1_000.0),
            (-1_000.0, -1_000.0),
        ];
        let side = vec![
            (12_000.0, 0.0),
            (15_000.0, 0.0),
            (15_000.0, 3_000.0),
            (12_000.0, 0.0),
        ];
        let shape = MultiPolygon(vec![
            Polygon::new(LineString::from(star), vec![LineString::from(hole)]),
            Polygon::new(LineString::from(side), vec![]),
        ]);
        let edges = edges(&shape);
        let mut inside = 0;
        for j in 0..200 {
            let y = -10_500.0 + 105.3 * f64::from(j);
            let xs = crossings(&edges, y);
            for i in 0..300 {
                let x = -10_500.0 + 87.1 * f64::from(i);
                let expected = shape.contains(&geo_types::Point::new(x, y));
                assert_eq!(within(&xs, x), expected, "({x}, {y})");
                inside += usize::from(expected);
            }
        }
        assert!(inside > 5_000, "{inside} points inside");
    }

    #[test]
    fn hexagons_have_the_stand_area_and_tile_the_plane() {
        let square = MultiPolygon(vec![Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (60_000.0, 0.0),
                (60_000.0, 60_000.0),
                (0.0, 60_000.0),
                (0.0, 0.0),
            ]),
            vec![],
        )]);
        for acres in [10.0, 100.0, 500.0] {
            let stands = hex_grid(&square, acres, None);
            let expected = 3.6e9 / (acres * M2_PER_ACRE);
            let n = stands.len() as f64;
            assert!(
                (n - expected).abs() / expected < 0.03,
                "{acres}: {n} vs {expected}"
            );
            use geo::Area;
            let area = stands[0].polygon().unsigned_area() / M2_PER_ACRE;
            assert!((area - acres).abs() < 1e-6 * acres, "{area}");
            // Neighbours share an edge: their centres are one hex width apart.
            let a = &stands[0];
            let b = stands
                .iter()
                .find(|s| (s.q, s.r) == a.neighbours()[0])
                .expect("neighbour");
            let centre = |s: &Stand| {
                let (x, y) = s
                    .corners
                    .iter()
                    .fold((0.0, 0.0), |acc, c| (acc.0 + c.0, acc.1 + c.1));
                (x / 6.0, y / 6.0)
            };
            let (ca, cb) = (centre(a), centre(b));
            let d = ((ca.0 - cb.0).powi(2) + (ca.1 - cb.1).powi(2)).sqrt();
            let size = (2.0 * acres * M2_PER_ACRE / (3.0 * 3f64.sqrt())).sqrt();
            assert!((d - 3f64.sqrt() * size).abs() < 1e-6);
        }
    }
}
