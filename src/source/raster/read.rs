//! Reading a tile's pixels from a raster in EPSG:3857 (the file itself, or a warped
//! view of it): pick the pyramid level, read the one window that covers the tile, and
//! resample to the tile grid, keeping nodata apart.
//!
//! Sampling follows `gdalwarp`'s convention: each tile pixel takes the value of the
//! source pixel under its centre (nearest), the four around it (bilinear), or the mean
//! of the source pixels whose centres fall inside it (average).

use serde::{Deserialize, Serialize};

use crate::tile::Bounds;

/// Resampling from the source grid to the tile grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    /// Nearest neighbour: for categories, and exact values.
    #[default]
    Nearest,
    /// Bilinear: for continuous fields.
    Bilinear,
    /// Mean of covered pixels: for continuous fields seen from afar.
    Average,
}

/// One level of the pyramid (full resolution or an overview), in EPSG:3857.
#[derive(Debug, Clone, Copy)]
pub struct Level {
    /// GDAL geotransform (north-up: `gt[2] == gt[4] == 0`).
    pub gt: [f64; 6],
    /// Pixels.
    pub width: usize,
    /// Pixels.
    pub height: usize,
}

impl Level {
    /// Pixel width in metres.
    pub fn pixel_size(&self) -> f64 {
        self.gt[1].abs()
    }
}

/// Picks the coarsest level still at least as fine as `resolution` (metres per tile
/// pixel), as GDAL does; the full resolution when even that is coarser.
pub fn choose_level(levels: &[Level], resolution: f64) -> usize {
    let mut best = 0;
    for (i, level) in levels.iter().enumerate() {
        if level.pixel_size() <= resolution * 1.000_001
            && level.pixel_size() >= levels[best].pixel_size()
        {
            best = i;
        }
    }
    best
}

/// The source window a tile needs at one level, and how it was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// First column read.
    pub col: usize,
    /// First row read.
    pub row: usize,
    /// Columns covered.
    pub width: usize,
    /// Rows covered.
    pub height: usize,
    /// Columns in the buffer GDAL fills (less than `width` when it decimates a huge window).
    pub buf_width: usize,
    /// Rows in the buffer.
    pub buf_height: usize,
}

/// The window of `level` covering the tile `bounds` at `size` pixels, or `None` when the
/// tile lies wholly outside the raster. `margin` extra source pixels are included on
/// each side (1 for bilinear).
pub fn window(level: &Level, bounds: &Bounds, size: usize, margin: usize) -> Option<Window> {
    let res = (bounds.xmax - bounds.xmin) / size as f64;
    let win = span(level, bounds, res, margin)?;
    // A window far larger than the tile (a big raster without overviews): let GDAL
    // decimate it on read to at most four source pixels per tile pixel.
    let cap = size * 4;
    Some(Window {
        buf_width: win.width.min(cap),
        buf_height: win.height.min(cap),
        ..win
    })
}

/// The undecimated window of `level` covering `bounds` sampled at `res` metres per
/// pixel (a tile or a block of tiles), with `margin` extra source pixels on each side.
pub fn span(level: &Level, bounds: &Bounds, res: f64, margin: usize) -> Option<Window> {
    let gt = level.gt;
    let col_of = |x: f64| ((x - gt[0]) / gt[1]).floor();
    let row_of = |y: f64| ((y - gt[3]) / gt[5]).floor();
    // Columns/rows under the first and last tile pixel centres (and the pixel edges for
    // averaging, which the margin covers).
    let c0 = col_of(bounds.xmin + 0.5 * res) - margin as f64 - 1.0;
    let c1 = col_of(bounds.xmax - 0.5 * res) + margin as f64 + 1.0;
    let r0 = row_of(bounds.ymax - 0.5 * res) - margin as f64 - 1.0;
    let r1 = row_of(bounds.ymin + 0.5 * res) + margin as f64 + 1.0;
    let (c0, r0) = (c0.max(0.0), r0.max(0.0));
    let (c1, r1) = (
        c1.min(level.width as f64 - 1.0),
        r1.min(level.height as f64 - 1.0),
    );
    if !(c0 <= c1 && r0 <= r1 && c0.is_finite() && r0.is_finite()) {
        return None;
    }
    let (width, height) = ((c1 - c0) as usize + 1, (r1 - r0) as usize + 1);
    Some(Window {
        col: c0 as usize,
        row: r0 as usize,
        width,
        height,
        buf_width: width,
        buf_height: height,
    })
}

/// Resamples a window buffer to a `size` x `size` tile: `NaN` marks pixels without data.
pub fn resample(
    level: &Level,
    win: &Window,
    data: &[f64],
    nodata: Option<f64>,
    bounds: &Bounds,
    size: usize,
    method: Resampling,
) -> Vec<f64> {
    let gt = level.gt;
    // Geotransform of the buffer (decimated windows have larger pixels).
    let sx = gt[1] * win.width as f64 / win.buf_width as f64;
    let sy = gt[5] * win.height as f64 / win.buf_height as f64;
    let ox = gt[0] + win.col as f64 * gt[1];
    let oy = gt[3] + win.row as f64 * gt[5];
    let (bw, bh) = (win.buf_width as isize, win.buf_height as isize);
    let valid = |v: f64| !v.is_nan() && nodata.is_none_or(|nd| v != nd);
    let at = |c: isize, r: isize| -> Option<f64> {
        if c < 0 || r < 0 || c >= bw || r >= bh {
            return None;
        }
        let v = data[(r * bw + c) as usize];
        valid(v).then_some(v)
    };
    // Whether a buffer column/row lies inside the raster (outside it nothing is drawn).
    let res = (bounds.xmax - bounds.xmin) / size as f64;
    let mut out = vec![f64::NAN; size * size];
    if method == Resampling::Nearest {
        // The source column under each tile column is the same on every row.
        let cols: Vec<isize> = (0..size)
            .map(|i| (((bounds.xmin + (i as f64 + 0.5) * res) - ox) / sx).floor() as isize)
            .collect();
        for (j, row) in out.chunks_exact_mut(size).enumerate() {
            let y = bounds.ymax - (j as f64 + 0.5) * res;
            let r = ((y - oy) / sy).floor() as isize;
            if r < 0 || r >= bh {
                continue;
            }
            let line = &data[(r * bw) as usize..((r + 1) * bw) as usize];
            for (value, &c) in row.iter_mut().zip(&cols) {
                if c >= 0 && c < bw {
                    let v = line[c as usize];
                    if valid(v) {
                        *value = v;
                    }
                }
            }
        }
        return out;
    }
    for j in 0..size {
        let y = bounds.ymax - (j as f64 + 0.5) * res;
        let fy = (y - oy) / sy;
        for i in 0..size {
            let x = bounds.xmin + (i as f64 + 0.5) * res;
            let fx = (x - ox) / sx;
            let value = match method {
                Resampling::Nearest => at(fx.floor() as isize, fy.floor() as isize),
                Resampling::Bilinear => {
                    if at(fx.floor() as isize, fy.floor() as isize).is_none() {
                        None
                    } else {
                        bilinear(fx, fy, &at)
                    }
                }
                Resampling::Average => average(fx, fy, res / sx.abs(), res / sy.abs(), &at),
            };
            if let Some(v) = value {
                out[j * size + i] = v;
            }
        }
    }
    out
}

fn bilinear(fx: f64, fy: f64, at: &impl Fn(isize, isize) -> Option<f64>) -> Option<f64> {
    let (gx, gy) = (fx - 0.5, fy - 0.5);
    let (c, r) = (gx.floor(), gy.floor());
    let (tx, ty) = (gx - c, gy - r);
    let (c, r) = (c as isize, r as isize);
    let mut sum = 0.0;
    let mut weight = 0.0;
    for (dc, dr, w) in [
        (0, 0, (1.0 - tx) * (1.0 - ty)),
        (1, 0, tx * (1.0 - ty)),
        (0, 1, (1.0 - tx) * ty),
        (1, 1, tx * ty),
    ] {
        if let Some(v) = at(c + dc, r + dr) {
            sum += v * w;
            weight += w;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

fn average(
    fx: f64,
    fy: f64,
    span_x: f64,
    span_y: f64,
    at: &impl Fn(isize, isize) -> Option<f64>,
) -> Option<f64> {
    if span_x <= 1.0 && span_y <= 1.0 {
        return at(fx.floor() as isize, fy.floor() as isize);
    }
    // Source pixels whose centres fall inside the tile pixel.
    let (x0, x1) = (fx - span_x / 2.0, fx + span_x / 2.0);
    let (y0, y1) = (fy - span_y / 2.0, fy + span_y / 2.0);
    let (c0, c1) = ((x0 - 0.5).ceil() as isize, (x1 - 0.5).floor() as isize);
    let (r0, r1) = ((y0 - 0.5).ceil() as isize, (y1 - 0.5).floor() as isize);
    let mut sum = 0.0;
    let mut n = 0u32;
    for r in r0..=r1 {
        for c in c0..=c1 {
            if let Some(v) = at(c, r) {
                sum += v;
                n += 1;
            }
        }
    }
    if n == 0 {
        return at(fx.floor() as isize, fy.floor() as isize);
    }
    Some(sum / f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level() -> Level {
        // 10 x 10 pixels of 10 m, from (0, 100) down to (100, 0).
        Level {
            gt: [0.0, 10.0, 0.0, 100.0, 0.0, -10.0],
            width: 10,
            height: 10,
        }
    }

    #[test]
    fn levels_are_chosen_like_gdal() {
        let levels = [
            level(),
            Level {
                gt: [0.0, 20.0, 0.0, 100.0, 0.0, -20.0],
                width: 5,
                height: 5,
            },
            Level {
                gt: [0.0, 40.0, 0.0, 100.0, 0.0, -40.0],
                width: 3,
                height: 3,
            },
        ];
        assert_eq!(choose_level(&levels, 5.0), 0);
        assert_eq!(choose_level(&levels, 10.0), 0);
        assert_eq!(choose_level(&levels, 25.0), 1);
        assert_eq!(choose_level(&levels, 40.0), 2);
        assert_eq!(choose_level(&levels, 400.0), 2);
    }

    #[test]
    fn nearest_is_exact_and_nodata_stays_out() {
        let lvl = level();
        let data: Vec<f64> = (0..100).map(f64::from).collect();
        // The tile is exactly the raster at the raster's resolution.
        let bounds = Bounds {
            xmin: 0.0,
            ymin: 0.0,
            xmax: 100.0,
            ymax: 100.0,
        };
        let win = window(&lvl, &bounds, 10, 0).unwrap();
        assert_eq!((win.col, win.row, win.width, win.height), (0, 0, 10, 10));
        let out = resample(
            &lvl,
            &win,
            &data,
            Some(42.0),
            &bounds,
            10,
            Resampling::Nearest,
        );
        for (i, v) in out.iter().enumerate() {
            if i == 42 {
                assert!(v.is_nan());
            } else {
                assert_eq!(*v, i as f64);
            }
        }
        // A tile half outside: the outside half is empty.
        let shifted = Bounds {
            xmin: 50.0,
            ymin: 0.0,
            xmax: 150.0,
            ymax: 100.0,
        };
        let win = window(&lvl, &shifted, 10, 0).unwrap();
        let window_data: Vec<f64> = (0..win.height)
            .flat_map(|r| (0..win.width).map(move |c| ((r + win.row) * 10 + c + win.col) as f64))
            .collect();
        let out = resample(
            &lvl,
            &win,
            &window_data,
            None,
            &shifted,
            10,
            Resampling::Nearest,
        );
        assert_eq!(out[0], 5.0);
        assert!(out[5].is_nan());
        assert!(
            window(
                &lvl,
                &Bounds {
                    xmin: 200.0,
                    ymin: 0.0,
                    xmax: 300.0,
                    ymax: 100.0
                },
                10,
                0
            )
            .is_none()
        );
    }

    #[test]
    fn bilinear_and_average_interpolate() {
        let lvl = level();
        let data: Vec<f64> = (0..100).map(|i| f64::from(i % 10)).collect();
        let bounds = Bounds {
            xmin: 0.0,
            ymin: 0.0,
            xmax: 100.0,
            ymax: 100.0,
        };
        // 20 px over 10 source px: centres fall between source centres.
        let win = window(&lvl, &bounds, 20, 1).unwrap();
        let out = resample(&lvl, &win, &data, None, &bounds, 20, Resampling::Bilinear);
        assert!((out[20 * 5 + 3] - 1.25).abs() < 1e-9, "{}", out[20 * 5 + 3]);
        let win = window(&lvl, &bounds, 5, 0).unwrap();
        let out = resample(&lvl, &win, &data, None, &bounds, 5, Resampling::Average);
        assert_eq!(out[0], 0.5);
        assert_eq!(out[4], 8.5);
    }
}
