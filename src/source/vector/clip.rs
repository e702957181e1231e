//! Clipping to the buffered tile square, in tile coordinates.
//!
//! Polygons use Sutherland–Hodgman against each of the four edges: for a convex clip
//! window it is exact, and the only artefacts for concave rings are zero-width edges
//! running along the clip border, which lies `buffer` units outside the visible tile,
//! so they never show. It is a few dozen lines, allocation-light and linear in the
//! number of vertices, which is why it is written here rather than pulling in a general
//! polygon boolean library for a rectangle.

/// A point in tile coordinates.
pub type Pt = (f64, f64);

/// The clip window `[min, max]²` in tile coordinates.
#[derive(Debug, Clone, Copy)]
pub struct ClipRect {
    /// Lower bound of both axes.
    pub min: f64,
    /// Upper bound of both axes.
    pub max: f64,
}

#[derive(Clone, Copy)]
enum Edge {
    Left,
    Right,
    Top,
    Bottom,
}

impl ClipRect {
    fn inside(&self, p: Pt, edge: Edge) -> bool {
        match edge {
            Edge::Left => p.0 >= self.min,
            Edge::Right => p.0 <= self.max,
            Edge::Top => p.1 >= self.min,
            Edge::Bottom => p.1 <= self.max,
        }
    }

    fn intersect(&self, a: Pt, b: Pt, edge: Edge) -> Pt {
        let at_x = |x: f64| (x, a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0));
        let at_y = |y: f64| (a.0 + (b.0 - a.0) * (y - a.1) / (b.1 - a.1), y);
        match edge {
            Edge::Left => at_x(self.min),
            Edge::Right => at_x(self.max),
            Edge::Top => at_y(self.min),
            Edge::Bottom => at_y(self.max),
        }
    }

    /// Whether a point lies in the window.
    pub fn contains(&self, p: Pt) -> bool {
        p.0 >= self.min && p.0 <= self.max && p.1 >= self.min && p.1 <= self.max
    }

    /// Clips a closed ring (first point not repeated at the end). Returns an empty vector
    /// when nothing remains.
    pub fn ring(&self, ring: &[Pt]) -> Vec<Pt> {
        if ring.iter().all(|&p| self.contains(p)) {
            return ring.to_vec();
        }
        let mut input: Vec<Pt> = ring.to_vec();
        let mut output = Vec::with_capacity(ring.len() + 8);
        for edge in [Edge::Left, Edge::Right, Edge::Top, Edge::Bottom] {
            output.clear();
            let Some(&last) = input.last() else {
                return Vec::new();
            };
            let mut prev = last;
            for &cur in &input {
                let (cur_in, prev_in) = (self.inside(cur, edge), self.inside(prev, edge));
                if cur_in {
                    if !prev_in {
                        output.push(self.intersect(prev, cur, edge));
                    }
                    output.push(cur);
                } else if prev_in {
                    output.push(self.intersect(prev, cur, edge));
                }
                prev = cur;
            }
            std::mem::swap(&mut input, &mut output);
        }
        input
    }

    /// Clips a line string into the parts that lie in the window (Liang–Barsky per segment).
    pub fn line(&self, line: &[Pt]) -> Vec<Vec<Pt>> {
        let mut parts = Vec::new();
        let mut current: Vec<Pt> = Vec::new();
        for seg in line.windows(2) {
            match self.segment(seg[0], seg[1]) {
                Some((a, b)) => {
                    if current.last() != Some(&a) {
                        if current.len() >= 2 {
                            parts.push(std::mem::take(&mut current));
                        }
                        current.clear();
                        current.push(a);
                    }
                    current.push(b);
                    if b != seg[1] {
                        // Left the window inside this segment.
                        parts.push(std::mem::take(&mut current));
                    }
                }
                None => {
                    if current.len() >= 2 {
                        parts.push(std::mem::take(&mut current));
                    }
                    current.clear();
                }
            }
        }
        if current.len() >= 2 {
            parts.push(current);
        }
        parts
    }

    fn segment(&self, a: Pt, b: Pt) -> Option<(Pt, Pt)> {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - self.min),
            (dx, self.max - a.0),
            (-dy, a.1 - self.min),
            (dy, self.max - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return None;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
        if t0 > t1 {
            return None;
        }
        let at = |t: f64| {
            if t == 0.0 {
                a
            } else if t == 1.0 {
                b
            } else {
                (a.0 + t * dx, a.1 + t * dy)
            }
        };
        Some((at(t0), at(t1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ClipRect = ClipRect {
        min: 0.0,
        max: 10.0,
    };

    fn area(ring: &[Pt]) -> f64 {
        let n = ring.len();
        (0..n)
            .map(|i| ring[i].0 * ring[(i + 1) % n].1 - ring[(i + 1) % n].0 * ring[i].1)
            .sum::<f64>()
            / 2.0
    }

    #[test]
    fn inside_ring_is_untouched() {
        let ring = vec![(1.0, 1.0), (5.0, 1.0), (5.0, 5.0)];
        assert_eq!(R.ring(&ring), ring);
    }

    #[test]
    fn ring_crossing_corner_is_cut_to_window() {
        let ring = vec![(-5.0, -5.0), (5.0, -5.0), (5.0, 5.0), (-5.0, 5.0)];
        let out = R.ring(&ring);
        assert!((area(&out).abs() - 25.0).abs() < 1e-9, "{out:?}");
        assert!(out.iter().all(|&p| R.contains(p)));
    }

    #[test]
    fn ring_outside_is_empty_and_ring_around_is_window() {
        assert!(
            R.ring(&[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)])
                .is_empty()
        );
        let around = R.ring(&[(-5.0, -5.0), (15.0, -5.0), (15.0, 15.0), (-5.0, 15.0)]);
        assert!((area(&around).abs() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn line_is_split_where_it_leaves() {
        let parts = R.line(&[
            (-5.0, 5.0),
            (5.0, 5.0),
            (5.0, 20.0),
            (8.0, 20.0),
            (8.0, 5.0),
        ]);
        assert_eq!(
            parts,
            vec![
                vec![(0.0, 5.0), (5.0, 5.0), (5.0, 10.0)],
                vec![(8.0, 10.0), (8.0, 5.0)]
            ]
        );
        assert!(R.line(&[(20.0, 0.0), (30.0, 0.0)]).is_empty());
    }
}
