//! Importing data to serve: [`raster`] turns any GDAL raster into a Cloud-Optimized
//! GeoTIFF in EPSG:3857; [`vector`] loads any GDAL vector file into a PostGIS table in
//! EPSG:4326; [`register`] adds the new layer to the configuration file, keeping the
//! file's own comments and layout.

use std::path::PathBuf;

pub mod raster;
pub mod register;
pub mod vector;

pub use raster::{COG_BLOCK_SIZE, Codec, ImportOptions, Imported, import_raster, write_cog};
pub use vector::{VectorImportOptions, VectorImported, import_vector};

/// An import failure.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is not a raster GDAL can read.
    #[error("`{0}` is not a readable raster")]
    NotRaster(PathBuf),
    /// The input is not vector data GDAL can read.
    #[error(
        "`{0}` is not a readable vector file (GeoJSON, Shapefile, zipped Shapefile, GeoPackage, ...)"
    )]
    NotVector(PathBuf),
    /// The vector input has no geometry (no geometry column, or no feature with one).
    #[error("`{0}` has no geometry")]
    NoGeometry(PathBuf),
    /// The input has no CRS.
    #[error(
        "`{0}` has no coordinate reference system; assign one first (gdal_edit.py -a_srs for rasters, ogr2ogr -a_srs for vector files)"
    )]
    NoCrs(PathBuf),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
    /// The database failed or refused the data.
    #[error("database: {0}")]
    Database(String),
    /// GDAL failed.
    #[error("GDAL failed: {0}")]
    Gdal(String),
    /// File system failure.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}
