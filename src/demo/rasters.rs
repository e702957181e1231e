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

use super::noise::fractal;
use super::region::{SIERRA_NEVADA, contains};
use super::watersheds::SEED;
use crate::config::Resampling;
use crate::import::{ImportOptions, import_raster};

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
    let n = fractal(SEED + metric.seed, x, y, metric.scale, 5);
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
    std::fs::create_dir_all(dir).map_err(|e| RasterDemoError(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for metric in &METRICS {
        for twin in [false, true] {
            let name = if twin {
                format!("{}_normalized", metric.name)
            } else {
                metric.name.to_owned()
            };
            let cog = dir.join(format!("{name}.tif"));
            if cog.exists() {
                continue;
            }
            let albers = dir.join(format!("{name}.3310.tif"));
            write_field(
                &albers,
                metric,
                resolution,
                twin,
                gdal::raster::GdalDataType::Float32,
            )?;
            import(&albers, &name, dir)?;
            let _ = std::fs::remove_file(&albers);
            written.push(cog);
        }
    }
    if large {
        let name = "aboveground_biomass_30m";
        let cog = dir.join(format!("{name}.tif"));
        if !cog.exists() {
            let albers = dir.join(format!("{name}.3310.tif"));
            write_field(
                &albers,
                &METRICS[0],
                30.0,
                false,
                gdal::raster::GdalDataType::Int16,
            )?;
            import(&albers, name, dir)?;
            let _ = std::fs::remove_file(&albers);
            written.push(cog);
        }
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
    let mut written = Vec::new();
    for metric in catalog
        .regions
        .iter()
        .flat_map(|r| &r.pillars)
        .flat_map(|p| &p.elements)
        .flat_map(|e| &e.metrics)
    {
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
        for (path, twin) in [(&metric.raw, false), (&metric.normalized, true)] {
            if path.exists() {
                continue;
            }
            let (Some(dir), Some(name)) =
                (path.parent(), path.file_stem().and_then(|n| n.to_str()))
            else {
                return Err(RasterDemoError(format!(
                    "{}: not a file path",
                    path.display()
                )));
            };
            std::fs::create_dir_all(dir)
                .map_err(|e| RasterDemoError(format!("{}: {e}", dir.display())))?;
            let albers = dir.join(format!("{name}.3310.tif"));
            write_field(
                &albers,
                &field,
                resolution,
                twin,
                gdal::raster::GdalDataType::Float32,
            )?;
            import(&albers, name, dir)?;
            let _ = std::fs::remove_file(&albers);
            written.push(path.clone());
        }
    }
    Ok(written)
}

fn import(albers: &Path, name: &str, dir: &Path) -> Result<(), RasterDemoError> {
    let opts = ImportOptions {
        input: albers.to_owned(),
        layer: name.to_owned(),
        dir: dir.to_owned(),
        style: "viridis".into(),
        range: None,
        resampling: Resampling::Bilinear,
        units: None,
        register: None,
        progress: true,
    };
    import_raster(&opts).map_err(|e| RasterDemoError(e.to_string()))?;
    // The kept original of a generated raster is the Albers file itself: no need twice.
    let _ = std::fs::remove_file(dir.join(format!("{name}.source.tif")));
    Ok(())
}

/// Writes one field as a tiled GeoTIFF in EPSG:3310, row by row (bounded memory).
fn write_field(
    path: &Path,
    metric: &Metric,
    resolution: f64,
    normalize: bool,
    data_type: gdal::raster::GdalDataType,
) -> Result<(), RasterDemoError> {
    let mut wgs84 = SpatialRef::from_epsg(4326)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut albers = SpatialRef::from_epsg(3310)?;
    albers.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let to_albers = CoordTransform::new(&wgs84, &albers)?;
    let to_lonlat = CoordTransform::new(&albers, &wgs84)?;
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
    let width = ((x1 - x0) / resolution).round() as usize;
    let height = ((y1 - y0) / resolution).round() as usize;
    let driver = DriverManager::get_driver_by_name("GTiff")?;
    let options = gdal::raster::RasterCreationOptions::from_iter([
        "TILED=YES",
        "COMPRESS=DEFLATE",
        "BIGTIFF=IF_SAFER",
    ]);
    let mut ds: Dataset =
        match data_type {
            gdal::raster::GdalDataType::Int16 => driver
                .create_with_band_type_with_options::<i16, _>(path, width, height, 1, &options)?,
            _ => driver
                .create_with_band_type_with_options::<f32, _>(path, width, height, 1, &options)?,
        };
    ds.set_spatial_ref(&albers)?;
    ds.set_geo_transform(&[x0, resolution, 0.0, y1, 0.0, -resolution])?;
    let mut band = ds.rasterband(1)?;
    band.set_no_data_value(Some(NODATA))?;
    let mut row_x = vec![0.0; width];
    let mut row_y = vec![0.0; width];
    for row in 0..height {
        let y = y1 - (row as f64 + 0.5) * resolution;
        for (col, (rx, ry)) in row_x.iter_mut().zip(row_y.iter_mut()).enumerate() {
            *rx = x0 + (col as f64 + 0.5) * resolution;
            *ry = y;
        }
        let (mut lon, mut lat) = (row_x.clone(), row_y.clone());
        to_lonlat.transform_coords(&mut lon, &mut lat, &mut [])?;
        let values: Vec<f64> = (0..width)
            .map(|c| {
                if !contains(SIERRA_NEVADA, (lon[c], lat[c])) {
                    return NODATA;
                }
                let raw = raw_value(metric, row_x[c], y);
                if normalize {
                    normalized(metric, raw)
                } else {
                    raw
                }
            })
            .collect();
        match data_type {
            gdal::raster::GdalDataType::Int16 => {
                let mut buf = Buffer::new(
                    (width, 1),
                    values.iter().map(|&v| v.round() as i16).collect(),
                );
                band.write((0, row as isize), (width, 1), &mut buf)?;
            }
            _ => {
                let mut buf = Buffer::new((width, 1), values.iter().map(|&v| v as f32).collect());
                band.write((0, row as isize), (width, 1), &mut buf)?;
            }
        }
    }
    Ok(())
}
