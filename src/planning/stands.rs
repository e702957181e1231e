//! Hexagonal stands over a planning area, laid out in the equal-area EPSG:5070, and the
//! mean of a raster in every stand computed in one pass over the raster.
//!
//! A stand is a regular hexagon of the chosen area whose centre lies inside the planning
//! area (so the stand count is the area divided by the stand size, up to the boundary).
//! Means use the pixel-centre rule and the scan line of [`super::scan`]: each row of the
//! raster window is read once, and each stand takes the pixels whose centres fall inside
//! its hexagon.

use std::path::Path;

use gdal::Dataset;
use gdal::spatial_ref::SpatialRef;
use geo_types::{Coord, LineString, MultiPolygon, Polygon};

use super::scan::{self, Edge, Polygons, RasterError};
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

/// Reprojects every vertex of `shape` (EPSG:4326) to EPSG:5070.
pub fn to_albers(shape: &MultiPolygon<f64>) -> Result<MultiPolygon<f64>, RasterError> {
    let t = scan::transform(4326, &SpatialRef::from_epsg(5070)?)?;
    let ring = |ls: &LineString<f64>| -> Result<LineString<f64>, RasterError> {
        let mut xs: Vec<f64> = ls.0.iter().map(|c| c.x).collect();
        let mut ys: Vec<f64> = ls.0.iter().map(|c| c.y).collect();
        t.transform_coords(&mut xs, &mut ys, &mut [])?;
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
                    .collect::<Result<_, RasterError>>()?,
            ))
        })
        .collect::<Result<Vec<_>, RasterError>>()?;
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

/// The stands in the pixel space of one raster grid: their hexagons ready to scan, and
/// the pixel under each stand's centre. Made once per grid, swept once per raster.
pub struct PixelStands {
    hexagons: Polygons,
    /// (row, column, stand) of every stand's centre, sorted.
    by_row: Vec<(isize, isize, usize)>,
    count: usize,
    gt: [f64; 6],
    size: (usize, usize),
}

impl PixelStands {
    /// Projects the stands (EPSG:5070) into the grid of `dataset`.
    pub fn new(dataset: &Dataset, stands: &[Stand]) -> Result<Self, RasterError> {
        let gt = scan::geo_transform(dataset)?;
        let t = scan::transform_to(5070, dataset)?;
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
            t.transform_coords(&mut xs, &mut ys, &mut [])?;
        }
        let centres = stands.len() * 6;
        let mut by_row: Vec<(isize, isize, usize)> = (0..stands.len())
            .map(|i| {
                let (col, row) = scan::to_pixel(&gt, xs[centres + i], ys[centres + i]);
                (row.floor() as isize, col.floor() as isize, i)
            })
            .collect();
        by_row.sort_unstable();
        let hexagons = Polygons::new((0..stands.len()).flat_map(|i| {
            let px: Vec<(f64, f64)> = (0..6)
                .map(|k| scan::to_pixel(&gt, xs[i * 6 + k], ys[i * 6 + k]))
                .collect();
            (0..6).map(move |k| {
                let (a, b) = (px[k], px[(k + 1) % 6]);
                Edge {
                    x0: a.0,
                    y0: a.1,
                    x1: b.0,
                    y1: b.1,
                    id: i as u32,
                }
            })
        }));
        Ok(Self {
            hexagons,
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
pub fn stand_means(path: &Path, stands: &[Stand]) -> Result<Vec<Option<f64>>, RasterError> {
    let dataset = scan::open(path)?;
    let projected = PixelStands::new(&dataset, stands)?;
    sweep(&dataset, &projected)
}

/// As [`stand_means`], with the stands already projected into the raster's grid.
pub fn sweep(dataset: &Dataset, stands: &PixelStands) -> Result<Vec<Option<f64>>, RasterError> {
    let band = dataset.rasterband(1)?;
    let mut means = Means {
        stands,
        nodata: band.no_data_value(),
        sums: vec![0.0; stands.count],
        counts: vec![0; stands.count],
        centre_values: vec![None; stands.count],
        pending: 0,
    };
    scan::scan(dataset, &band, &stands.hexagons, &mut means)?;
    Ok(means
        .sums
        .iter()
        .zip(&means.counts)
        .zip(&means.centre_values)
        .map(|((s, &n), centre)| if n > 0 { Some(s / n as f64) } else { *centre })
        .collect())
}

/// The running sums of a sweep, and the value under each stand's centre.
struct Means<'a> {
    stands: &'a PixelStands,
    nodata: Option<f64>,
    sums: Vec<f64>,
    counts: Vec<u64>,
    centre_values: Vec<Option<f64>>,
    /// The first entry of `stands.by_row` not yet passed.
    pending: usize,
}

impl scan::Visitor for Means<'_> {
    fn row(&mut self, row: usize, col0: usize, line: &[f64]) {
        let by_row = &self.stands.by_row;
        let row = row as isize;
        while self.pending < by_row.len() && by_row[self.pending].0 <= row {
            let (centre_row, col, stand) = by_row[self.pending];
            if centre_row == row
                && col >= col0 as isize
                && let Some(&v) = line.get((col - col0 as isize) as usize)
                && scan::is_data(v, self.nodata)
            {
                self.centre_values[stand] = Some(v);
            }
            self.pending += 1;
        }
    }

    fn span(&mut self, stand: u32, pixels: &[f64]) {
        let stand = stand as usize;
        for &v in pixels {
            if scan::is_data(v, self.nodata) {
                self.sums[stand] += v;
                self.counts[stand] += 1;
            }
        }
    }
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
