//! Raster tiles from GeoTIFFs/COGs through GDAL.
//!
//! At start-up each layer's file is opened once to validate it (band, CRS, style) and to
//! record its pyramid in EPSG:3857. Rendering runs on Tokio's blocking threads; each
//! thread keeps its own open handles (a GDAL dataset must not be shared between threads)
//! and reuses them for every later tile, so nothing is opened per request. A source in
//! another CRS is read through a GDAL warped VRT to EPSG:3857, created once per thread.

pub mod encode;
pub mod read;

use std::path::Path;
use std::sync::Arc;

use gdal::Dataset;
use gdal::spatial_ref::SpatialRef;

use crate::config::{RasterLayerConfig, Resampling};
use crate::dataset_pool::{OpenRaster, RASTERS, with_raster};
use crate::source::SourceError;
use crate::style::{Colormap, Rgba, Style};
use crate::tile::{Bounds, TileFormat, TileId, mercator_to_lonlat};
use encode::Pixels;
use read::Level;

/// A validated raster layer.
#[derive(Debug)]
pub struct RasterSource {
    /// Layer name.
    pub name: String,
    /// The file.
    pub path: String,
    /// 1-based band.
    pub band: usize,
    /// Resolved colours.
    pub colormap: Colormap,
    /// The style's name.
    pub style: String,
    /// Resampling.
    pub resampling: Resampling,
    /// Nodata value.
    pub nodata: Option<f64>,
    /// Units.
    pub units: Option<String>,
    /// Zoom range.
    pub minzoom: u8,
    /// Zoom range.
    pub maxzoom: u8,
    /// Data bounds in longitude/latitude.
    pub bounds: [f64; 4],
    /// Data bounds in EPSG:3857.
    pub extent: Bounds,
    /// TileJSON description.
    pub description: Option<String>,
    /// TileJSON attribution.
    pub attribution: Option<String>,
    warped: bool,
    levels: Vec<Level>,
    /// The file's size and modification time (seconds) when opened, for the fingerprint;
    /// `None` for a file GDAL reads from elsewhere (`/vsis3/...`).
    file_stamp: Option<(u64, u64)>,
}

/// The EPSG:3857 dataset of `raster`: the file itself, or, when `warped`, its warped view
/// (made the first time).
fn in_mercator(raster: &mut OpenRaster, warped: bool) -> Result<&Dataset, String> {
    if warped {
        raster.view(warped_view)
    } else {
        Ok(raster.file())
    }
}

/// A GDAL warped VRT of `file` in EPSG:3857 (nearest; tile resampling happens after).
fn warped_view(file: &Dataset) -> Result<Dataset, String> {
    let wkt = SpatialRef::from_epsg(3857)
        .and_then(|s| s.to_wkt())
        .map_err(|e| e.to_string())?;
    let wkt = std::ffi::CString::new(wkt).map_err(|e| e.to_string())?;
    // SAFETY: `file` outlives the view: both live in the same `OpenRaster`, which drops
    // the view first (`OpenRaster::view`). GDAL returns null on failure, checked below.
    let handle = unsafe {
        gdal_sys::GDALAutoCreateWarpedVRT(
            file.c_dataset(),
            std::ptr::null(),
            wkt.as_ptr(),
            gdal_sys::GDALResampleAlg::GRA_NearestNeighbour,
            0.125,
            std::ptr::null(),
        )
    };
    if handle.is_null() {
        return Err("cannot reproject the raster to EPSG:3857".into());
    }
    // SAFETY: a fresh, owned dataset handle.
    Ok(unsafe { Dataset::from_c_dataset(handle) })
}

/// One tile of a rendered block: its image, `None` when fully transparent.
pub type BlockTile = (TileId, Result<Option<Vec<u8>>, SourceError>);

/// A local file's size and modification time in seconds (blocking).
fn file_stamp(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((meta.len(), modified.as_secs()))
}

impl RasterSource {
    /// Opens and checks the raster (blocking: call off the async runtime). The error
    /// names what is wrong.
    pub fn inspect(name: &str, cfg: &RasterLayerConfig, styles_dir: &Path) -> Result<Self, String> {
        let style = Style::load(styles_dir, &cfg.style).map_err(|e| e.to_string())?;
        let file = Dataset::open(Path::new(&cfg.path))
            .map_err(|e| format!("cannot open `{}`: {e}", cfg.path))?;
        let count = file.raster_count();
        if cfg.band == 0 || cfg.band > count {
            return Err(format!(
                "band {} does not exist (`{}` has {count})",
                cfg.band, cfg.path
            ));
        }
        let srs = file
            .spatial_ref()
            .map_err(|_| format!("`{}` has no coordinate reference system", cfg.path))?;
        let mercator = SpatialRef::from_epsg(3857).map_err(|e| e.to_string())?;
        let warped = srs != mercator;
        let mut open = OpenRaster::new(file);
        let ds = in_mercator(&mut open, warped)?;
        let gt = ds
            .geo_transform()
            .map_err(|_| format!("`{}` has no geotransform", cfg.path))?;
        if gt[2] != 0.0 || gt[4] != 0.0 {
            return Err(format!(
                "`{}` is rotated; warp it first (planscape import)",
                cfg.path
            ));
        }
        let band = ds.rasterband(cfg.band).map_err(|e| e.to_string())?;
        let (width, height) = ds.raster_size();
        let mut levels = vec![Level { gt, width, height }];
        for i in 0..band.overview_count().unwrap_or(0).max(0) as usize {
            if let Ok(ov) = band.overview(i) {
                let (w, h) = ov.size();
                let (fx, fy) = (width as f64 / w as f64, height as f64 / h as f64);
                levels.push(Level {
                    gt: [gt[0], gt[1] * fx, 0.0, gt[3], 0.0, gt[5] * fy],
                    width: w,
                    height: h,
                });
            }
        }
        let nodata = cfg.nodata.or_else(|| band.no_data_value());
        let range = match cfg.range {
            Some([lo, hi]) => Some((lo, hi)),
            None if style.needs_range() => {
                let mm = band
                    .compute_raster_min_max(true)
                    .map_err(|e| format!("cannot compute the value range: {e}"))?;
                Some((mm.min, mm.max))
            }
            None => None,
        };
        let colormap = style.resolve(range).map_err(|e| e.to_string())?;
        let extent = Bounds {
            xmin: gt[0],
            ymax: gt[3],
            xmax: gt[0] + gt[1] * width as f64,
            ymin: gt[3] + gt[5] * height as f64,
        };
        let (w, s) = mercator_to_lonlat(extent.xmin, extent.ymin);
        let (e, n) = mercator_to_lonlat(extent.xmax, extent.ymax);
        // Kept for the first renders.
        RASTERS.put(Path::new(&cfg.path), open);
        Ok(Self {
            name: name.to_owned(),
            path: cfg.path.clone(),
            band: cfg.band,
            colormap,
            style: cfg.style.clone(),
            resampling: cfg.resampling,
            nodata,
            units: cfg.units.clone(),
            minzoom: cfg.minzoom,
            maxzoom: cfg.maxzoom,
            bounds: [w, s, e, n],
            extent,
            description: cfg.description.clone(),
            attribution: cfg.attribution.clone(),
            warped,
            levels,
            file_stamp: file_stamp(Path::new(&cfg.path)),
        })
    }

    /// What its tiles are made from (settings, colours, the file's geometry, size and
    /// time), as text for [`super::Source::fingerprint`].
    pub fn fingerprint_text(&self) -> String {
        format!(
            "{:?}",
            (
                (&self.name, &self.path, self.band),
                (&self.colormap, &self.style, self.resampling, self.nodata),
                (self.minzoom, self.maxzoom, self.warped),
                (&self.levels, self.file_stamp),
            )
        )
    }

    /// Renders one tile image.
    pub async fn render(
        self: &Arc<Self>,
        tile: TileId,
        format: TileFormat,
        scale: u8,
    ) -> Result<Vec<u8>, SourceError> {
        let size = 256 * u32::from(scale);
        let bounds = tile.bounds();
        let e = &self.extent;
        if bounds.xmax <= e.xmin
            || bounds.xmin >= e.xmax
            || bounds.ymax <= e.ymin
            || bounds.ymin >= e.ymax
        {
            return encode::transparent(size, format)
                .map_err(|e| SourceError::Internal(e.to_string()));
        }
        let this = Arc::clone(self);
        crate::raster_threads::run(move || this.render_blocking(&bounds, size, format))
            .await
            .map_err(|e| SourceError::Internal(format!("render task failed: {e}")))?
    }

    /// Reads, styles and encodes (blocking).
    pub fn render_blocking(
        &self,
        bounds: &Bounds,
        size: u32,
        format: TileFormat,
    ) -> Result<Vec<u8>, SourceError> {
        let values = self.read(bounds, size as usize)?;
        match self.encode_values(&values, size, format)? {
            Some(image) => Ok(image),
            None => {
                encode::transparent(size, format).map_err(|e| SourceError::Internal(e.to_string()))
            }
        }
    }

    /// Styles and encodes a tile's values; `None` when every pixel is transparent.
    fn encode_values(
        &self,
        values: &[f64],
        size: u32,
        format: TileFormat,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        if values.iter().all(|v| v.is_nan()) && self.colormap.color(f64::NAN)[3] == 0 {
            return Ok(None);
        }
        let pixels = self.style_pixels(values);
        if pixels.is_transparent() {
            return Ok(None);
        }
        encode::encode(&pixels, size, size, format)
            .map(Some)
            .map_err(|e| SourceError::Internal(e.to_string()))
    }

    /// Whether `tile` overlaps the raster at all.
    pub fn overlaps(&self, tile: TileId) -> bool {
        let b = tile.bounds();
        let e = &self.extent;
        b.xmax > e.xmin && b.xmin < e.xmax && b.ymax > e.ymin && b.ymin < e.ymax
    }

    /// Renders tiles of one zoom level that lie close together (a metatile) with one
    /// read of the raster for all of them (blocking). Each tile gets exactly the pixels
    /// the live server renders; `None` marks a fully transparent tile.
    pub fn render_block_blocking(
        &self,
        tiles: &[TileId],
        format: TileFormat,
        scale: u8,
    ) -> Vec<BlockTile> {
        let size = 256 * u32::from(scale);
        let wanted: Vec<TileId> = tiles
            .iter()
            .copied()
            .filter(|t| self.overlaps(*t))
            .collect();
        let mut out: Vec<BlockTile> = tiles
            .iter()
            .filter(|t| !self.overlaps(**t))
            .map(|t| (*t, Ok(None)))
            .collect();
        let Some(first) = wanted.first() else {
            return out;
        };
        let res = first.bounds().xmax - first.bounds().xmin;
        let res = res / f64::from(size);
        let index = read::choose_level(&self.levels, res);
        let level = self.levels[index];
        let margin = usize::from(self.resampling == Resampling::Bilinear);
        let union = wanted.iter().skip(1).fold(first.bounds(), |u, t| {
            let b = t.bounds();
            Bounds {
                xmin: u.xmin.min(b.xmin),
                ymin: u.ymin.min(b.ymin),
                xmax: u.xmax.max(b.xmax),
                ymax: u.ymax.max(b.ymax),
            }
        });
        // One read serves the block only when no tile alone would be decimated on read.
        let undecimated = wanted.iter().all(|t| {
            read::window(&level, &t.bounds(), size as usize, margin)
                .is_none_or(|w| w.buf_width == w.width && w.buf_height == w.height)
        });
        let block = match read::span(&level, &union, res, margin) {
            Some(win) if undecimated => self.read_window(index, &win).map(|data| Some((win, data))),
            _ => Ok(None),
        };
        for tile in wanted {
            let bounds = tile.bounds();
            let values = match &block {
                Ok(Some((win, data))) => Ok(read::resample(
                    &level,
                    win,
                    data,
                    self.nodata,
                    &bounds,
                    size as usize,
                    self.resampling,
                )),
                Ok(None) => self.read(&bounds, size as usize),
                Err(e) => Err(e.clone()),
            };
            let encoded = values.and_then(|v| self.encode_values(&v, size, format));
            out.push((tile, encoded));
        }
        out
    }

    /// The tile's values on its pixel grid; NaN where there is no data.
    pub fn read(&self, bounds: &Bounds, size: usize) -> Result<Vec<f64>, SourceError> {
        let resolution = (bounds.xmax - bounds.xmin) / size as f64;
        let index = read::choose_level(&self.levels, resolution);
        let level = self.levels[index];
        let margin = usize::from(self.resampling == Resampling::Bilinear);
        let Some(win) = read::window(&level, bounds, size, margin) else {
            return Ok(vec![f64::NAN; size * size]);
        };
        let data = self.read_window(index, &win)?;
        Ok(read::resample(
            &level,
            &win,
            &data,
            self.nodata,
            bounds,
            size,
            self.resampling,
        ))
    }

    /// The value of the full-resolution pixel under a point (EPSG:3857 metres): the
    /// pixel the deepest tiles show there. `None` outside the raster or on nodata.
    pub async fn value_at(self: &Arc<Self>, x: f64, y: f64) -> Result<Option<f64>, SourceError> {
        let level = self.levels[0];
        let gt = level.gt;
        let col = ((x - gt[0]) / gt[1]).floor();
        let row = ((y - gt[3]) / gt[5]).floor();
        if !(col >= 0.0 && row >= 0.0 && col < level.width as f64 && row < level.height as f64) {
            return Ok(None);
        }
        let win = read::Window {
            col: col as usize,
            row: row as usize,
            width: 1,
            height: 1,
            buf_width: 1,
            buf_height: 1,
        };
        let this = Arc::clone(self);
        let value = crate::raster_threads::run(move || this.read_window(0, &win))
            .await
            .map_err(|e| SourceError::Internal(format!("read task failed: {e}")))??;
        Ok(value
            .first()
            .copied()
            .filter(|v| !v.is_nan() && self.nodata.is_none_or(|nd| *v != nd)))
    }

    /// Reads a window of pyramid level `index` (0 = full resolution) with a handle
    /// of the process's shared pool ([`RASTERS`]).
    fn read_window(&self, index: usize, win: &read::Window) -> Result<Vec<f64>, SourceError> {
        let path = Path::new(&self.path);
        with_raster(
            path,
            || {
                Dataset::open(path)
                    .map_err(|e| SourceError::Internal(format!("cannot open `{}`: {e}", self.path)))
            },
            |raster| {
                let dataset = in_mercator(raster, self.warped).map_err(SourceError::Internal)?;
                let band = dataset
                    .rasterband(self.band)
                    .map_err(|e| SourceError::Internal(e.to_string()))?;
                let band = if index == 0 {
                    band
                } else {
                    band.overview(index - 1)
                        .map_err(|e| SourceError::Internal(e.to_string()))?
                };
                let buffer = band
                    .read_as::<f64>(
                        (win.col as isize, win.row as isize),
                        (win.width, win.height),
                        (win.buf_width, win.buf_height),
                        Some(gdal::raster::ResampleAlg::NearestNeighbour),
                    )
                    .map_err(|e| SourceError::Internal(format!("reading `{}`: {e}", self.path)))?;
                Ok(buffer.into_shape_and_vec().1)
            },
        )
    }

    /// Applies the style.
    fn style_pixels(&self, values: &[f64]) -> Pixels {
        // Rasters repeat their values (integers, classes): remember recent colours.
        let mut memo = ColorMemo::new();
        match self.colormap.palette() {
            Some(palette) => {
                let indices = values
                    .iter()
                    .map(|&v| {
                        let c = memo.get(v, |v| self.colormap.color(v));
                        palette.iter().position(|p| *p == c).unwrap_or(0) as u8
                    })
                    .collect();
                Pixels::Indexed { indices, palette }
            }
            None => match self.colormap.ramp_palette() {
                Some(ramp) => Pixels::Indexed {
                    indices: values.iter().map(|&v| ramp.index(v)).collect(),
                    palette: ramp.colors().to_vec(),
                },
                None => {
                    let mut rgba = Vec::with_capacity(values.len() * 4);
                    for &v in values {
                        rgba.extend_from_slice(&memo.get(v, |v| self.colormap.color(v)));
                    }
                    Pixels::Rgba(rgba)
                }
            },
        }
    }
}

/// A small direct-mapped cache of value -> colour (exact: keyed by the value's bits).
struct ColorMemo {
    slots: Vec<(u64, Rgba)>,
}

impl ColorMemo {
    const BITS: u32 = 10;
    /// Marks an empty slot: NaN never reaches the slots.
    const EMPTY: u64 = u64::MAX;

    fn new() -> Self {
        Self {
            slots: vec![(Self::EMPTY, [0; 4]); 1 << Self::BITS],
        }
    }

    fn get(&mut self, v: f64, color: impl Fn(f64) -> Rgba) -> Rgba {
        if v.is_nan() {
            return color(v);
        }
        let bits = v.to_bits();
        let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::BITS)) as usize;
        let entry = &mut self.slots[slot];
        if entry.0 != bits {
            *entry = (bits, color(v));
        }
        entry.1
    }
}
