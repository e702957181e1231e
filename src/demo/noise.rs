//! Deterministic hashing and smooth value noise: the randomness of the demo data, the
//! same on every machine and every run.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// A uniform number in `[0, 1)` from integer coordinates and a seed.
pub fn hash01(seed: u64, a: i64, b: i64) -> f64 {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    (xxh3_64_with_seed(&bytes, seed) >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth value noise in about `[0, 1]`: `octaves` layers of lattice noise with
/// smoothstep interpolation, the first with cells of `scale` units.
pub fn fractal(seed: u64, x: f64, y: f64, scale: f64, octaves: u32) -> f64 {
    let (mut sum, mut norm, mut amp, mut freq) = (0.0, 0.0, 1.0, 1.0 / scale);
    for octave in 0..octaves {
        sum += amp * value(seed.wrapping_add(u64::from(octave)), x * freq, y * freq);
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

/// [`fractal`] at `(x, y)` for every `x` of `xs` (increasing), into `out`: the same
/// values to the last bit, at a fraction of the cost along a row, since the lattice
/// corners of each octave are hashed once per cell instead of once per point.
pub fn fractal_row(seed: u64, xs: &[f64], y: f64, scale: f64, octaves: u32, out: &mut [f64]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    let (mut norm, mut amp, mut freq) = (0.0, 1.0, 1.0 / scale);
    for octave in 0..octaves {
        let seed = seed.wrapping_add(u64::from(octave));
        let y = y * freq;
        let y0 = y.floor();
        let fy = smooth(y - y0);
        let iy = y0 as i64;
        // The corners of the current cell: (ix, [v00, v10, v01, v11]).
        let mut cell: Option<(i64, [f64; 4])> = None;
        for (sum, &x) in out.iter_mut().zip(xs) {
            let x = x * freq;
            let x0 = x.floor();
            let fx = smooth(x - x0);
            let ix = x0 as i64;
            let corners = match cell {
                Some((i, c)) if i == ix => c,
                _ => {
                    let c = [
                        hash01(seed, ix, iy),
                        hash01(seed, ix + 1, iy),
                        hash01(seed, ix, iy + 1),
                        hash01(seed, ix + 1, iy + 1),
                    ];
                    cell = Some((ix, c));
                    c
                }
            };
            let [v00, v10, v01, v11] = corners;
            let top = v00 + (v10 - v00) * fx;
            let bottom = v01 + (v11 - v01) * fx;
            *sum += amp * (top + (bottom - top) * fy);
        }
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    out.iter_mut().for_each(|v| *v /= norm);
}

fn value(seed: u64, x: f64, y: f64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (smooth(x - x0), smooth(y - y0));
    let (ix, iy) = (x0 as i64, y0 as i64);
    let v = |dx, dy| hash01(seed, ix + dx, iy + dy);
    let top = v(0, 0) + (v(1, 0) - v(0, 0)) * fx;
    let bottom = v(0, 1) + (v(1, 1) - v(0, 1)) * fx;
    top + (bottom - top) * fy
}

fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        assert_eq!(hash01(1, 2, 3), hash01(1, 2, 3));
        assert_ne!(hash01(1, 2, 3), hash01(1, 3, 2));
        for i in 0..1000 {
            let v = fractal(7, f64::from(i) * 0.37, f64::from(i) * 0.11, 5.0, 4);
            assert!((0.0..=1.0).contains(&v));
        }
    }

    #[test]
    fn a_row_is_the_points_to_the_last_bit() {
        let xs: Vec<f64> = (0..5000).map(|i| -12_345.0 + f64::from(i) * 30.0).collect();
        let mut row = vec![0.0; xs.len()];
        for y in [-40_000.5, 0.0, 123_456.7] {
            fractal_row(9, &xs, y, 15_000.0, 5, &mut row);
            for (&x, &v) in xs.iter().zip(&row) {
                assert_eq!(v.to_bits(), fractal(9, x, y, 15_000.0, 5).to_bits());
            }
        }
    }

    #[test]
    fn smooth_means_neighbours_are_close() {
        let a = fractal(7, 10.0, 10.0, 50.0, 3);
        let b = fractal(7, 10.5, 10.0, 50.0, 3);
        assert!((a - b).abs() < 0.05);
    }
}
