//! Demo condition rasters: smooth, deterministic fields over the Sierra Nevada, nodata
//! outside the region, generated in California Albers (EPSG:3310) as the originals came,
//! then imported to EPSG:3857 COGs by the same code as `planscape import`.
//!
//! Each metric has raw values with units and a normalized twin in [-1, 1]
//! (`2 (v - min) / (max - min) - 1`, negated when higher raw values are worse).

use std::path::{Path, PathBuf};

use gdal::raster::Buffer;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::{Dataset, DriverManager};

use super::noise::{fractal, fractal_row};
use super::region::{SIERRA_NEVADA, contains};
use super::watersheds::SEED;
use crate::config::Resampling;
use crate::import::Codec;

/// Nodata of the generated rasters.
pub const NODATA: f64 = -9999.0;

/// A demo condition metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Layer and file name.
    pub name: &'static str,
    /// Units of raw values.
    pub units: &'static str,
    /// Raw value range.
    pub min: f64,
    /// Raw value range.
    pub max: f64,
    /// Whether higher raw values are worse.
    pub invert_raw: bool,
    /// Noise seed offset (each metric its own field).
    seed: u64,
    /// Feature size of the field, metres.
    scale: f64,
}

/// The demo metrics.
pub const METRICS: [Metric; 5] = [
    Metric {
        name: "aboveground_biomass",
        units: "tons/acre",
        min: 0.0,
        max: 300.0,
        invert_raw: false,
        seed: 101,
        scale: 40_000.0,
    },
    Metric {
        name: "tree_mortality",
        units: "%",
        min: 0.0,
        max: 100.0,
        invert_raw: true,
        seed: 202,
        scale: 25_000.0,
    },
    Metric {
        name: "fire_probability",
        units: "probability",
        min: 0.0,
        max: 1.0,
        invert_raw: true,
        seed: 303,
        scale: 60_000.0,
    },
    Metric {
        name: "stand_density",
        units: "trees/acre",
        min: 0.0,
        max: 500.0,
        invert_raw: false,
        seed: 404,
        scale: 18_000.0,
    },
    Metric {
        name: "wildfire_hazard",
        units: "index",
        min: 0.0,
        max: 10.0,
        invert_raw: true,
        seed: 505,
        scale: 35_000.0,
    },
];

/// A failure while making the rasters.
#[derive(Debug, thiserror::Error)]
#[error("demo rasters: {0}")]
pub struct RasterDemoError(String);

impl From<gdal::errors::GdalError> for RasterDemoError {
    fn from(e: gdal::errors::GdalError) -> Self {
        Self(e.to_string())
    }
}

/// The raw value of `metric` at a point (EPSG:3310 metres): smooth noise stretched to
/// the metric's range.
pub fn raw_value(metric: &Metric, x: f64, y: f64) -> f64 {
    stretch(
        metric,
        fractal(SEED + metric.seed, x, y, metric.scale, OCTAVES),
    )
}

/// Octaves of the fields' noise.
const OCTAVES: u32 = 5;

/// Noise in about [0, 1] as a raw value of `metric`.
fn stretch(metric: &Metric, n: f64) -> f64 {
    // Fractal noise clusters around 0.5: stretch it to use the whole range.
    let t = ((n - 0.5) * 2.5 + 0.5).clamp(0.0, 1.0);
    metric.min + t * (metric.max - metric.min)
}

/// The normalized twin of a raw value.
pub fn normalized(metric: &Metric, raw: f64) -> f64 {
    let t = 2.0 * (raw - metric.min) / (metric.max - metric.min) - 1.0;
    if metric.invert_raw { -t } else { t }
}

/// Writes `{dir}/{metric}.tif` and `{dir}/{metric}_normalized.tif` (COGs, EPSG:3857) for
/// every metric at `resolution` metres, plus, when `large` is set, a 30 m Int16 raster
/// `aboveground_biomass_30m.tif` for benchmarks. Files already present are kept.
pub fn generate(dir: &Path, resolution: f64, large: bool) -> Result<Vec<PathBuf>, RasterDemoError> {
    generate_wanted(dir, resolution, large, &|_| true)
}

/// As [`generate`], only the files for which `wanted(path)` holds (and the large raster
/// when `large` is set).
pub fn generate_wanted(
    dir: &Path,
    resolution: f64,
    large: bool,
    wanted: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, RasterDemoError> {
    let pick = |p: PathBuf| wanted(&p).then_some(p);
    let jobs: Vec<Job> = METRICS
        .iter()
        .map(|m| Job {
            field: *m,
            raw: pick(dir.join(format!("{}.tif", m.name))),
            normalized: pick(dir.join(format!("{}_normalized.tif", m.name))),
        })
        .collect();
    let mut written = run_jobs(jobs, resolution, DataType::Float32, Stamp::Claim)?;
    if large {
        let job = Job {
            field: METRICS[0],
            raw: Some(dir.join("aboveground_biomass_30m.tif")),
            normalized: None,
        };
        // Named for its resolution, beside rasters of any other: the folder's stamp is
        // about the metrics.
        written.extend(run_jobs(vec![job], 30.0, DataType::Int16, Stamp::Leave)?);
    }
    Ok(written)
}

/// Writes the raw and normalized rasters of every catalog metric whose files are
/// missing (the five metrics above keep their own fields; others get a field of their
/// own seeded by their name), at `resolution` metres. Returns the files written.
pub fn generate_catalog(
    catalog: &crate::planning::conditions::Catalog,
    resolution: f64,
) -> Result<Vec<PathBuf>, RasterDemoError> {
    let jobs: Vec<Job> = catalog
        .regions
        .iter()
        .flat_map(|r| &r.pillars)
        .flat_map(|p| &p.elements)
        .flat_map(|e| &e.metrics)
        .map(|metric| {
            let seed = xxhash_rust::xxh3::xxh3_64(metric.name.as_bytes());
            let field = METRICS
                .iter()
                .find(|m| m.name == metric.name)
                .copied()
                .unwrap_or(Metric {
                    name: "",
                    units: "",
                    min: metric.min_value,
                    max: metric.max_value,
                    invert_raw: metric.invert_raw,
                    seed: seed % 10_000,
                    scale: 15_000.0 + (seed % 45) as f64 * 1_000.0,
                });
            Job {
                field,
                raw: Some(metric.raw.clone()),
                normalized: Some(metric.normalized.clone()),
            }
        })
        .collect();
    run_jobs(jobs, resolution, DataType::Float32, Stamp::Claim)
}

/// Whether written files claim their folder for their resolution ([`claim_folder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamp {
    /// Metric rasters: a folder holds one resolution.
    Claim,
    /// The benchmark raster, whose name gives its resolution.
    Leave,
}

/// One field and the files to make of it (raw values, normalized twin).
struct Job {
    field: Metric,
    raw: Option<PathBuf>,
    normalized: Option<PathBuf>,
}

/// The pixel type of the written rasters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataType {
    Float32,
    Int16,
}

/// Condition rasters finer than this (metres) are written for decoding speed
/// ([`Codec::FastDecode`]): statistics of a large area read millions of their pixels,
/// and decoding DEFLATE with the floating-point predictor was most of a 30 m request.
/// Coarser ones (the 250 m default) and the Int16 benchmark raster stay compact.
const FAST_DECODE_BELOW_M: f64 = 100.0;

/// How the rasters of `data_type` at `resolution` metres are compressed.
fn codec_for(data_type: DataType, resolution: f64) -> Codec {
    if data_type == DataType::Float32 && resolution < FAST_DECODE_BELOW_M {
        Codec::FastDecode
    } else {
        Codec::Compact
    }
}

/// Makes the missing files of `jobs`: the region's mask once, then each field once for
/// both twins (rows shared out to every core), and the twins' COGs one after the other
/// (each compressed on every core: [`crate::import::write_cog`]).
fn run_jobs(
    jobs: Vec<Job>,
    resolution: f64,
    data_type: DataType,
    stamp: Stamp,
) -> Result<Vec<PathBuf>, RasterDemoError> {
    let missing = |p: &Option<PathBuf>| p.as_ref().filter(|p| !p.exists()).cloned();
    let todo: Vec<(Metric, Option<PathBuf>, Option<PathBuf>)> = jobs
        .iter()
        .map(|j| (j.field, missing(&j.raw), missing(&j.normalized)))
        .filter(|(_, r, n)| r.is_some() || n.is_some())
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    if stamp == Stamp::Claim {
        // Each folder once (its stamp is read and written once, not once per file).
        let folders: std::collections::BTreeSet<&Path> = todo
            .iter()
            .flat_map(|(_, r, n)| [r, n])
            .flatten()
            .map(|path| {
                path.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
            })
            .collect();
        for dir in folders {
            claim_folder(dir, resolution)?;
        }
    }
    let grid = Grid::around_region(resolution)?;
    let codec = codec_for(data_type, resolution);
    let started = std::time::Instant::now();
    let mask = grid.mask()?;
    tracing::info!(
        resolution,
        width = grid.width,
        height = grid.height,
        seconds = started.elapsed().as_secs_f64(),
        "demo rasters: region mask"
    );
    let mut written = Vec::new();
    for (field, raw, normalized) in todo {
        let started = std::time::Instant::now();
        let (raw_values, normalized_values) =
            grid.field(&mask, &field, raw.is_some(), normalized.is_some());
        let computed = started.elapsed().as_secs_f64();
        let outputs: Vec<(PathBuf, Vec<f32>)> =
            [(raw, raw_values), (normalized, normalized_values)]
                .into_iter()
                .filter_map(|(p, v)| p.map(|p| (p, v)))
                .collect();
        // One writer at a time. Two GDAL datasets written at once from two threads share
        // GDAL's process-wide block cache: once it is full, one writer flushes the other's
        // dirty blocks and waits for that dataset's lock while the other, building its
        // overviews, waits for its own jobs (GDAL issue #1488). With the small cache
        // of `[memory] gdal_cache_mb` the 30 m demo hung that way after a few rasters.
        for (path, values) in &outputs {
            grid.write_cog(values, path, data_type, codec)?;
        }
        tracing::info!(
            raster = %outputs.first().map_or(Path::new(""), |(p, _)| p.as_path()).display(),
            files = outputs.len(),
            field_seconds = computed,
            total_seconds = started.elapsed().as_secs_f64(),
            "demo rasters: written"
        );
        written.extend(outputs.into_iter().map(|(p, _)| p));
    }
    Ok(written)
}

/// The file that records at which pixel size a folder's demo rasters were made.
pub const RESOLUTION_STAMP: &str = ".demo-resolution";

/// Records that `dir` holds demo rasters of `resolution` metres, or refuses when it holds
/// rasters of another resolution (a folder never mixes them: a 30 m run must not fill
/// the gaps of the default 250 m folder).
fn claim_folder(dir: &Path, resolution: f64) -> Result<(), RasterDemoError> {
    std::fs::create_dir_all(dir).map_err(|e| RasterDemoError(format!("{}: {e}", dir.display())))?;
    let stamp = dir.join(RESOLUTION_STAMP);
    let text = format!("{resolution}\n");
    match std::fs::read_to_string(&stamp) {
        Ok(found) if found.trim() == text.trim() => Ok(()),
        Ok(found) => Err(RasterDemoError(format!(
            "{} holds demo rasters of {} m, not {resolution} m: write these to another folder \
             (e.g. `planscape --config tiles/demo-30m.toml demo`, whose catalog reads \
             .data/rasters-30m)",
            dir.display(),
            found.trim()
        ))),
        Err(_) => std::fs::write(&stamp, text)
            .map_err(|e| RasterDemoError(format!("{}: {e}", stamp.display()))),
    }
}

/// The grid of the generated rasters: EPSG:3310 at `resolution` metres, the region's
/// bounding box snapped outwards to whole pixels.
struct Grid {
    x0: f64,
    y1: f64,
    resolution: f64,
    width: usize,
    height: usize,
}

/// Rows handed to a worker at a time.
const ROWS_PER_TASK: usize = 16;

fn albers_and_wgs84() -> Result<(SpatialRef, SpatialRef), RasterDemoError> {
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut albers = SpatialRef::from_epsg(3310)?;
    albers.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok((albers, wgs84))
}

/// Runs `work(first_row, rows)` over chunks of [`ROWS_PER_TASK`] rows of `width` items
/// of every buffer in `buffers`, on every core.
fn par_rows<T: Send, E: Send>(
    buffers: Vec<&mut [T]>,
    width: usize,
    work: impl Fn(usize, &mut [&mut [T]]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    type Tasks<'a, T> = Vec<(usize, Vec<&'a mut [T]>)>;
    let mut tasks: Tasks<'_, T> = Vec::new();
    let mut iters: Vec<_> = buffers
        .into_iter()
        .map(|b| b.chunks_mut((width * ROWS_PER_TASK).max(1)))
        .collect();
    let mut index = 0;
    loop {
        let chunks: Vec<&mut [T]> = iters.iter_mut().filter_map(Iterator::next).collect();
        if chunks.is_empty() {
            break;
        }
        tasks.push((index * ROWS_PER_TASK, chunks));
        index += 1;
    }
    tasks.reverse();
    let queue = std::sync::Mutex::new(tasks);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let task = queue.lock().ok().and_then(|mut q| q.pop());
                        let Some((row, mut chunks)) = task else {
                            return Ok(());
                        };
                        work(row, &mut chunks)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Ok(())))
            .collect::<Result<Vec<()>, E>>()
    })?;
    Ok(())
}

impl Grid {
    fn around_region(resolution: f64) -> Result<Self, RasterDemoError> {
        let (albers, wgs84) = albers_and_wgs84()?;
        let to_albers = CoordTransform::new(&wgs84, &albers)?;
        let mut xs: Vec<f64> = SIERRA_NEVADA.iter().map(|p| p.0).collect();
        let mut ys: Vec<f64> = SIERRA_NEVADA.iter().map(|p| p.1).collect();
        to_albers.transform_coords(&mut xs, &mut ys, &mut [])?;
        let snap = |v: f64, up: bool| {
            if up {
                (v / resolution).ceil() * resolution
            } else {
                (v / resolution).floor() * resolution
            }
        };
        let (x0, x1) = (
            snap(xs.iter().copied().fold(f64::MAX, f64::min), false),
            snap(xs.iter().copied().fold(f64::MIN, f64::max), true),
        );
        let (y0, y1) = (
            snap(ys.iter().copied().fold(f64::MAX, f64::min), false),
            snap(ys.iter().copied().fold(f64::MIN, f64::max), true),
        );
        Ok(Self {
            x0,
            y1,
            resolution,
            width: ((x1 - x0) / resolution).round() as usize,
            height: ((y1 - y0) / resolution).round() as usize,
        })
    }

    /// Easting of the centre of column `col`.
    fn x(&self, col: usize) -> f64 {
        self.x0 + (col as f64 + 0.5) * self.resolution
    }

    /// Northing of the centre of row `row`.
    fn y(&self, row: usize) -> f64 {
        self.y1 - (row as f64 + 0.5) * self.resolution
    }

    /// Which pixel centres lie in the region, one flag a pixel (the test in longitude
    /// and latitude, as every field is masked): computed once for all the fields.
    fn mask(&self) -> Result<Vec<bool>, RasterDemoError> {
        let mut mask = vec![false; self.width * self.height];
        let xs: Vec<f64> = (0..self.width).map(|c| self.x(c)).collect();
        par_rows(vec![&mut mask[..]], self.width, |row0, chunks| {
            let (albers, wgs84) = albers_and_wgs84()?;
            let to_lonlat = CoordTransform::new(&albers, &wgs84)?;
            for (r, line) in chunks[0].chunks_mut(self.width).enumerate() {
                let (mut lon, mut lat) = (xs.clone(), vec![self.y(row0 + r); self.width]);
                to_lonlat.transform_coords(&mut lon, &mut lat, &mut [])?;
                for ((inside, &lon), &lat) in line.iter_mut().zip(&lon).zip(&lat) {
                    *inside = contains(SIERRA_NEVADA, (lon, lat));
                }
            }
            Ok::<_, RasterDemoError>(())
        })?;
        Ok(mask)
    }

    /// The raw values of `metric` (when `raw`) and their normalized twin (when
    /// `normalized`), nodata outside the region; empty when not asked for.
    fn field(
        &self,
        mask: &[bool],
        metric: &Metric,
        want_raw: bool,
        want_normalized: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let size = self.width * self.height;
        let mut raw_values = vec![NODATA as f32; if want_raw { size } else { 0 }];
        let mut norm_values = vec![NODATA as f32; if want_normalized { size } else { 0 }];
        let xs: Vec<f64> = (0..self.width).map(|c| self.x(c)).collect();
        let buffers: Vec<&mut [f32]> = [&mut raw_values[..], &mut norm_values[..]]
            .into_iter()
            .filter(|b| !b.is_empty())
            .collect();
        let _ = par_rows(buffers, self.width, |row0, chunks| {
            let mut noise = vec![0.0; self.width];
            let rows = chunks[0].len() / self.width;
            for r in 0..rows {
                let row = row0 + r;
                let inside = &mask[row * self.width..(row + 1) * self.width];
                // Spans of the row inside the region.
                let mut c = 0;
                while c < self.width {
                    if !inside[c] {
                        c += 1;
                        continue;
                    }
                    let start = c;
                    while c < self.width && inside[c] {
                        c += 1;
                    }
                    let span = &mut noise[start..c];
                    fractal_row(
                        SEED + metric.seed,
                        &xs[start..c],
                        self.y(row),
                        metric.scale,
                        OCTAVES,
                        span,
                    );
                    for (i, &n) in span.iter().enumerate() {
                        let raw = stretch(metric, n);
                        let at = r * self.width + start + i;
                        let mut k = 0;
                        if want_raw {
                            chunks[k][at] = raw as f32;
                            k += 1;
                        }
                        if want_normalized {
                            chunks[k][at] = normalized(metric, raw) as f32;
                        }
                    }
                }
            }
            Ok::<_, std::convert::Infallible>(())
        });
        (raw_values, norm_values)
    }

    /// Writes `values` (one per pixel, row by row) as a COG in EPSG:3857 at `path`
    /// (under a temporary name until complete, compressed by `codec`), through an
    /// in-memory Albers dataset.
    fn write_cog(
        &self,
        values: &[f32],
        path: &Path,
        data_type: DataType,
        codec: Codec,
    ) -> Result<(), RasterDemoError> {
        let (albers, _) = albers_and_wgs84()?;
        let driver = DriverManager::get_driver_by_name("MEM")?;
        let mut ds: Dataset = match data_type {
            DataType::Int16 => {
                driver.create_with_band_type::<i16, _>("", self.width, self.height, 1)?
            }
            DataType::Float32 => {
                driver.create_with_band_type::<f32, _>("", self.width, self.height, 1)?
            }
        };
        ds.set_spatial_ref(&albers)?;
        ds.set_geo_transform(&[
            self.x0,
            self.resolution,
            0.0,
            self.y1,
            0.0,
            -self.resolution,
        ])?;
        {
            let mut band = ds.rasterband(1)?;
            band.set_no_data_value(Some(NODATA))?;
            // In strips, so that a copy of the whole field is never made.
            let strip = 1024;
            for row in (0..self.height).step_by(strip) {
                let rows = strip.min(self.height - row);
                let part = &values[row * self.width..(row + rows) * self.width];
                match data_type {
                    DataType::Int16 => {
                        let data = part.iter().map(|&v| v.round() as i16).collect();
                        band.write(
                            (0, row as isize),
                            (self.width, rows),
                            &mut Buffer::new((self.width, rows), data),
                        )?;
                    }
                    DataType::Float32 => {
                        band.write(
                            (0, row as isize),
                            (self.width, rows),
                            &mut Buffer::new((self.width, rows), part.to_vec()),
                        )?;
                    }
                }
            }
        }
        let partial = path.with_extension("tif.partial");
        let result = crate::import::write_cog(&ds, &partial, Resampling::Bilinear, codec, false)
            .map_err(|e| RasterDemoError(format!("{}: {e}", path.display())))
            .and_then(|()| {
                std::fs::rename(&partial, path)
                    .map_err(|e| RasterDemoError(format!("{}: {e}", path.display())))
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_condition_rasters_are_written_for_decoding_speed() {
        assert_eq!(codec_for(DataType::Float32, 30.0), Codec::FastDecode);
        assert_eq!(codec_for(DataType::Float32, 250.0), Codec::Compact);
        // The Int16 benchmark raster is drawn as tiles, not summarized.
        assert_eq!(codec_for(DataType::Int16, 30.0), Codec::Compact);
    }

    #[test]
    fn the_benchmark_raster_goes_beside_metrics_of_another_resolution() {
        // A folder of 250 m metrics (its stamp), and coarse rasters to keep the test
        // quick: a metric at another resolution is refused, a raster that leaves the
        // stamp alone (the 30 m benchmark raster) is written, the stamp unchanged.
        let dir = std::env::temp_dir().join(format!("planscape-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(RESOLUTION_STAMP), "250\n").expect("stamp");
        let job = |name: &str| Job {
            field: METRICS[0],
            raw: Some(dir.join(name)),
            normalized: None,
        };
        let refused = run_jobs(
            vec![job("metric.tif")],
            5_000.0,
            DataType::Float32,
            Stamp::Claim,
        );
        assert!(refused.is_err_and(|e| e.0.contains("holds demo rasters of 250 m")));
        assert!(!dir.join("metric.tif").exists());
        let written = run_jobs(
            vec![job("bench.tif")],
            5_000.0,
            DataType::Int16,
            Stamp::Leave,
        )
        .expect("written beside them");
        assert_eq!(written, vec![dir.join("bench.tif")]);
        let stamp = std::fs::read_to_string(dir.join(RESOLUTION_STAMP)).expect("stamp");
        assert_eq!(stamp.trim(), "250");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
