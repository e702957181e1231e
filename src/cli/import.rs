//! `planscape import`: argument checks, then the library's import (GDAL work, off the
//! async threads).

use std::path::PathBuf;

use crate::config::{Config, Resampling};
use crate::import::{Codec, ImportOptions, VectorImportOptions, import_raster, import_vector};

use super::BoxError;

/// `planscape import` subcommands.
#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// Turn a raster (any GDAL format, any CRS) into a Cloud-Optimized GeoTIFF in
    /// EPSG:3857, keep the original beside it, and register a raster layer in the config.
    Raster(RasterArgs),
    /// Load a vector file (GeoJSON, Shapefile or zipped Shapefile, GeoPackage, any CRS)
    /// into a PostGIS table in EPSG:4326 with a GiST index, and register a vector layer
    /// in the config.
    Vector(VectorArgs),
}

/// `planscape import vector` arguments.
#[derive(clap::Args)]
pub struct VectorArgs {
    /// The input file (a `.zip` holding a Shapefile is read as it is).
    input: PathBuf,
    /// Layer name.
    #[arg(long)]
    layer: String,
    /// Target table, `table` or `schema.table` (default: the layer name, `-` as `_`,
    /// in `public`); it must not exist yet.
    #[arg(long)]
    table: Option<String>,
    /// The file's layer to read (default: its first).
    #[arg(long)]
    source_layer: Option<String>,
    /// Do not add the layer to the config file.
    #[arg(long)]
    no_register: bool,
}

/// `planscape import raster` arguments.
#[derive(clap::Args)]
pub struct RasterArgs {
    /// The input raster.
    input: PathBuf,
    /// Layer name (also the output file name).
    #[arg(long)]
    layer: String,
    /// Output folder.
    #[arg(long, default_value = "data/rasters")]
    dir: PathBuf,
    /// Style of the layer (styles/NAME.json).
    #[arg(long, default_value = "viridis")]
    style: String,
    /// Value range of the style, `MIN,MAX`.
    #[arg(long, value_parser = parse_range)]
    range: Option<[f64; 2]>,
    /// Resampling: nearest (categories), bilinear or average (continuous).
    #[arg(long, default_value = "nearest", hide_possible_values = true)]
    resampling: Resampling,
    /// Compression: compact (DEFLATE with a predictor, the smallest files) or
    /// fast-decode (ZSTD level 1, no predictor: 3.5x faster to read, 1.7x the bytes; for
    /// rasters that statistics read over large areas).
    #[arg(long, default_value = "compact")]
    codec: Codec,
    /// Units of the values.
    #[arg(long)]
    units: Option<String>,
    /// Do not add the layer to the config file.
    #[arg(long)]
    no_register: bool,
}

fn parse_range(s: &str) -> Result<[f64; 2], String> {
    let (a, b) = s.split_once(',').ok_or("expected MIN,MAX")?;
    let (a, b): (f64, f64) = (
        a.trim().parse().map_err(|_| "MIN is not a number")?,
        b.trim().parse().map_err(|_| "MAX is not a number")?,
    );
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err("MIN must be below MAX".into());
    }
    Ok([a, b])
}

/// Runs `planscape import …`; `config_path` is the file a new layer is registered in.
pub async fn run(
    config: &Config,
    config_path: PathBuf,
    what: ImportCommand,
) -> Result<(), BoxError> {
    match what {
        ImportCommand::Raster(args) => raster(config, config_path, args).await,
        ImportCommand::Vector(args) => vector(config, config_path, args).await,
    }
}

async fn vector(config: &Config, config_path: PathBuf, args: VectorArgs) -> Result<(), BoxError> {
    let opts = VectorImportOptions {
        input: args.input,
        layer: args.layer,
        table: args.table,
        source_layer: args.source_layer,
        register: (!args.no_register).then_some(config_path),
    };
    let imported = import_vector(&config.database, &opts).await?;
    println!(
        "imported: {} rows into {} ({}; columns: {})",
        imported.rows,
        imported.table,
        imported.geometry_type,
        imported.columns.join(", ")
    );
    Ok(())
}

async fn raster(config: &Config, config_path: PathBuf, args: RasterArgs) -> Result<(), BoxError> {
    // Refuse a style the server could not load before doing any work.
    crate::style::Style::load(&config.styles_dir, &args.style)?;
    let opts = ImportOptions {
        input: args.input,
        layer: args.layer,
        dir: args.dir,
        style: args.style,
        range: args.range,
        resampling: args.resampling,
        codec: args.codec,
        units: args.units,
        register: (!args.no_register).then_some(config_path),
        progress: true,
    };
    let imported = tokio::task::spawn_blocking(move || import_raster(&opts)).await??;
    println!(
        "imported: {} (original kept as {})",
        imported.cog.display(),
        imported.original.display()
    );
    Ok(())
}
