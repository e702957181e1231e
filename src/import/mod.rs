//! Importing data to serve: [`raster`] turns any GDAL raster into a Cloud-Optimized
//! GeoTIFF in EPSG:3857; [`register`] adds the new layer to the configuration file,
//! keeping the file's own comments and layout.

use std::path::PathBuf;

pub mod raster;
pub mod register;

pub use raster::{ImportOptions, Imported, import_raster};

/// An import failure.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not a raster GDAL can read.
    #[error("`{0}` is not a readable raster")]
    NotRaster(PathBuf),
    /// The input has no CRS.
    #[error("`{0}` has no coordinate reference system; assign one first (gdal_edit.py -a_srs)")]
    NoCrs(PathBuf),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
    /// GDAL failed.
    #[error("GDAL failed: {0}")]
    Gdal(String),
    /// File system failure.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}
