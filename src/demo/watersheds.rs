//! Watershed-like polygons: a tessellation of the region into irregular cells whose
//! borders wander like drainage divides.
//!
//! Cells start as a hexagonal lattice; every lattice vertex is jittered, and every edge
//! is bent by midpoint displacement seeded from its two end vertices, so the two cells
//! sharing an edge get exactly the same border and the cells tile the plane without
//! gaps or overlaps. Each cell has about 190 vertices, like a simplified HUC-12.

use std::collections::HashMap;

use super::noise::{fractal, hash01};
use super::region::{LocalFrame, contains, ring_area};
use crate::planning::units::M2_PER_ACRE;

/// Seed of every random choice in the demo.
pub const SEED: u64 = 0x5EED_2026;

/// Levels of midpoint displacement per edge (2^5 = 32 segments per edge).
const LEVELS: u32 = 5;

/// One generated watershed.
#[derive(Debug, Clone, PartialEq)]
pub struct Watershed {
    /// 1-based id.
    pub id: i64,
    /// A HUC-12-like code.
    pub huc12: String,
    /// A plausible name.
    pub name: String,
    /// Area in acres.
    pub area_acres: f64,
    /// Mean elevation, metres.
    pub elevation_m: f64,
    /// A smooth fire-risk index in [0, 1].
    pub fire_risk: f64,
    /// Closed exterior ring, counter-clockwise, longitude/latitude.
    pub ring: Vec<(f64, f64)>,
}

const STEMS: &[&str] = &[
    "Bear",
    "Deer",
    "Pine",
    "Cedar",
    "Granite",
    "Willow",
    "Eagle",
    "Silver",
    "Rock",
    "Aspen",
    "Fir",
    "Oak",
    "Elk",
    "Coyote",
    "Sugar",
    "Iron",
    "Lost",
    "Dry",
    "Clear",
    "Wolf",
    "Manzanita",
    "Bald",
];
const FEATURES: &[&str] = &[
    "Creek", "Canyon", "Gulch", "Fork", "Meadow", "Ridge", "Lake", "Valley", "Flat", "Springs",
];
const PARTS: &[&str] = &[
    "",
    "-Upper",
    "-Lower",
    "-Middle",
    "-North Fork",
    "-South Fork",
];

/// Generates about `target` watersheds covering `region` (a closed lon/lat ring).
pub fn generate(region: &[(f64, f64)], target: usize) -> Vec<Watershed> {
    let (lon0, lat0) = centroid(region);
    let frame = LocalFrame::new(lon0, lat0);
    let local: Vec<(f64, f64)> = region.iter().map(|&p| frame.to_local(p)).collect();
    let area = ring_area(&local).abs();
    // A regular hexagon of side s has area 3*sqrt(3)/2 * s^2.
    let side = (area / (target.max(1) as f64 * 2.598_076_211)).sqrt();
    let width = 3f64.sqrt() * side;
    let (xmin, xmax) = local
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = local
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let rows = ((ymax - ymin) / (1.5 * side)).ceil() as i64 + 1;
    let cols = ((xmax - xmin) / width).ceil() as i64 + 1;
    let mut edges = EdgeCache::default();
    let mut out = Vec::new();
    for row in 0..rows {
        for col in 0..cols {
            // Lattice units: x in half-widths, y in half-sides.
            let cx2 = 2 * col + (row & 1);
            let cy2 = 3 * row;
            let center = (
                xmin + cx2 as f64 * width / 2.0,
                ymin + cy2 as f64 * side / 2.0,
            );
            if !contains(&local, center) {
                continue;
            }
            // Pointy-top hexagon corners, counter-clockwise, as lattice keys.
            let corners = [(1, -1), (1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2)]
                .map(|(dx, dy)| (cx2 + dx, cy2 + dy));
            let mut ring: Vec<(f64, f64)> = Vec::with_capacity(6 << LEVELS);
            for i in 0..6 {
                let (a, b) = (corners[i], corners[(i + 1) % 6]);
                let key_point = |k: (i64, i64)| jittered(k, xmin, ymin, width, side);
                ring.push(key_point(a));
                ring.extend(edges.interior(a, b, key_point));
            }
            ring.push(ring[0]);
            let id = out.len() as i64 + 1;
            out.push(describe(
                id,
                center,
                &ring,
                &frame,
                (xmin, ymin),
                (xmax - xmin, ymax - ymin),
            ));
        }
    }
    out
}

fn centroid(ring: &[(f64, f64)]) -> (f64, f64) {
    let n = ring.len().max(1) as f64;
    let (sx, sy) = ring.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    (sx / n, sy / n)
}

/// The position of lattice vertex `key`, jittered by up to a fifth of a side.
fn jittered(key: (i64, i64), xmin: f64, ymin: f64, width: f64, side: f64) -> (f64, f64) {
    let jx = (hash01(SEED, key.0, key.1) - 0.5) * 0.4 * side;
    let jy = (hash01(SEED + 1, key.0, key.1) - 0.5) * 0.4 * side;
    (
        xmin + key.0 as f64 * width / 2.0 + jx,
        ymin + key.1 as f64 * side / 2.0 + jy,
    )
}

/// A lattice vertex.
type VertexKey = (i64, i64);

/// Bent edges, shared by the two cells on either side.
#[derive(Default)]
struct EdgeCache {
    edges: HashMap<(VertexKey, VertexKey), Vec<(f64, f64)>>,
}

impl EdgeCache {
    /// The interior points of edge a→b (excluding both ends).
    fn interior(
        &mut self,
        a: (i64, i64),
        b: (i64, i64),
        point: impl Fn((i64, i64)) -> (f64, f64),
    ) -> Vec<(f64, f64)> {
        let (lo, hi, reversed) = if a < b { (a, b, false) } else { (b, a, true) };
        let pts = self.edges.entry((lo, hi)).or_insert_with(|| {
            let seed = (lo.0 * 1_000_003 + lo.1) ^ (hi.0 * 7_919 + hi.1 * 104_729);
            let mut pts = vec![point(lo), point(hi)];
            for level in 0..LEVELS {
                let mut next = Vec::with_capacity(pts.len() * 2);
                for (i, w) in pts.windows(2).enumerate() {
                    let ((x1, y1), (x2, y2)) = (w[0], w[1]);
                    let (dx, dy) = (x2 - x1, y2 - y1);
                    let r = hash01(SEED + 2 + u64::from(level), seed, i as i64) - 0.5;
                    // Perpendicular offset proportional to the segment length.
                    let k = r * 0.3;
                    next.push(w[0]);
                    next.push(((x1 + x2) / 2.0 - dy * k, (y1 + y2) / 2.0 + dx * k));
                }
                next.push(pts[pts.len() - 1]);
                pts = next;
            }
            pts
        });
        let inner = &pts[1..pts.len() - 1];
        if reversed {
            inner.iter().rev().copied().collect()
        } else {
            inner.to_vec()
        }
    }
}

fn describe(
    id: i64,
    center: (f64, f64),
    ring_local: &[(f64, f64)],
    frame: &LocalFrame,
    origin: (f64, f64),
    span: (f64, f64),
) -> Watershed {
    let pick = |list: &[&'static str], salt: u64| {
        list[(hash01(SEED + 100 + salt, id, 0) * list.len() as f64) as usize % list.len()]
    };
    let name = format!("{} {}{}", pick(STEMS, 0), pick(FEATURES, 1), pick(PARTS, 2));
    // Elevation rises to the east (the crest) with rolling noise on top.
    let east = ((center.0 - origin.0) / span.0).clamp(0.0, 1.0);
    let elevation_m =
        300.0 + 2600.0 * east + 900.0 * (fractal(SEED + 10, center.0, center.1, 40_000.0, 4) - 0.5);
    let fire_risk = fractal(SEED + 20, center.0, center.1, 60_000.0, 5);
    Watershed {
        id,
        huc12: format!("18{:010}", 4_000_000_000 + id * 37 % 1_000_000_000),
        name,
        // The frame's east-west scale is exact only at its own latitude: correct it for
        // the cell's latitude so the acres hold across the region.
        area_acres: ring_area(ring_local).abs() * frame.x_scale_at(frame.to_lonlat(center).1)
            / M2_PER_ACRE,
        elevation_m: (elevation_m * 10.0).round() / 10.0,
        fire_risk: (fire_risk * 1000.0).round() / 1000.0,
        ring: ring_local.iter().map(|&p| frame.to_lonlat(p)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::region::SIERRA_NEVADA;

    #[test]
    fn deterministic_dense_and_watertight() {
        let a = generate(SIERRA_NEVADA, 400);
        let b = generate(SIERRA_NEVADA, 400);
        assert_eq!(a, b);
        assert!((300..=500).contains(&a.len()), "{}", a.len());
        assert!(
            a.iter()
                .all(|w| w.ring.len() == 6 * 32 + 1 && w.ring.first() == w.ring.last())
        );
        // Cells tile the region: their areas add up to about the region's.
        let frame = LocalFrame::new(-119.8, 37.9);
        let region: Vec<_> = SIERRA_NEVADA.iter().map(|&p| frame.to_local(p)).collect();
        let region_acres = ring_area(&region).abs() / M2_PER_ACRE;
        let cells: f64 = a.iter().map(|w| w.area_acres).sum();
        assert!(
            (cells / region_acres - 1.0).abs() < 0.1,
            "{cells} vs {region_acres}"
        );
    }
}
