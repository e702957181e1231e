//! The demo planning region: an outline of the Sierra Nevada drawn for the demo
//! (longitude, latitude), with a point-in-polygon test and a local metric frame.

/// The Sierra Nevada region, roughly from Lassen to the Tehachapi Mountains, as a closed
/// ring of (longitude, latitude) in counter-clockwise order.
pub const SIERRA_NEVADA: &[(f64, f64)] = &[
    (-121.60, 40.40),
    (-121.30, 39.60),
    (-121.10, 39.00),
    (-120.80, 38.40),
    (-120.40, 37.80),
    (-119.90, 37.20),
    (-119.40, 36.60),
    (-119.00, 36.00),
    (-118.90, 35.40),
    (-118.70, 35.00),
    (-118.20, 35.20),
    (-118.00, 35.80),
    (-118.10, 36.50),
    (-118.40, 37.20),
    (-118.80, 37.90),
    (-119.30, 38.50),
    (-119.70, 39.10),
    (-120.00, 39.60),
    (-120.30, 40.10),
    (-120.70, 40.60),
    (-121.20, 40.70),
    (-121.60, 40.40),
];

/// A local equirectangular frame (metres) centred on the region: accurate to well
/// under 1 % for distances and areas over the region, which is all the demo needs.
#[derive(Debug, Clone, Copy)]
pub struct LocalFrame {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
}

impl LocalFrame {
    /// The frame centred at (`lon0`, `lat0`).
    pub fn new(lon0: f64, lat0: f64) -> Self {
        Self {
            lon0,
            lat0,
            kx: 111_320.0 * lat0.to_radians().cos(),
            ky: 110_574.0,
        }
    }

    /// Metres from longitude/latitude.
    pub fn to_local(&self, (lon, lat): (f64, f64)) -> (f64, f64) {
        ((lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky)
    }

    /// How much longer an east-west metre of this frame is at latitude `lat` than at the
    /// frame's centre (multiply local areas by it for true areas).
    pub fn x_scale_at(&self, lat: f64) -> f64 {
        lat.to_radians().cos() / self.lat0.to_radians().cos()
    }

    /// Longitude/latitude from metres.
    pub fn to_lonlat(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (self.lon0 + x / self.kx, self.lat0 + y / self.ky)
    }
}

/// Even-odd point-in-polygon test for a closed ring.
pub fn contains(ring: &[(f64, f64)], (x, y): (f64, f64)) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ((x1, y1), (x2, y2)) = (w[0], w[1]);
        if (y1 > y) != (y2 > y) && x < x1 + (y - y1) * (x2 - x1) / (y2 - y1) {
            inside = !inside;
        }
    }
    inside
}

/// Signed shoelace area of a closed ring (positive when counter-clockwise).
pub fn ring_area(ring: &[(f64, f64)]) -> f64 {
    ring.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum::<f64>()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_is_closed_ccw_and_holds_yosemite_not_sacramento() {
        assert_eq!(SIERRA_NEVADA.first(), SIERRA_NEVADA.last());
        assert!(ring_area(SIERRA_NEVADA) > 0.0);
        assert!(contains(SIERRA_NEVADA, (-119.55, 37.75)));
        assert!(!contains(SIERRA_NEVADA, (-121.49, 38.58)));
    }
}
