//! `planscape demo`: the demo data into PostGIS, and the demo condition rasters.

use std::path::PathBuf;

use crate::config::Config;
use crate::demo::{self, DemoOptions, DemoOutcome};

use super::BoxError;

/// `planscape demo` arguments.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Schema to create the demo tables in.
    #[arg(long, default_value = "demo")]
    schema: String,
    /// About how many watershed polygons to generate.
    #[arg(long, default_value_t = 50_000)]
    watersheds: usize,
    /// Regenerate even when the data is current.
    #[arg(long)]
    force: bool,
    /// Folder of the demo condition rasters (COGs).
    #[arg(long, default_value = ".data/rasters")]
    rasters: PathBuf,
    /// Pixel size of the demo rasters, metres.
    #[arg(long, default_value_t = 250.0)]
    raster_resolution: f64,
    /// Also make the large 30 m raster for benchmarks (about 11,700 x 21,700 pixels).
    #[arg(long)]
    large_raster: bool,
}

/// Runs `planscape demo`.
pub async fn run(config: &Config, args: DemoArgs) -> Result<(), BoxError> {
    let DemoArgs {
        schema,
        watersheds,
        force,
        rasters,
        raster_resolution,
        large_raster,
    } = args;
    let outcome = demo::run(
        &config.database,
        &DemoOptions {
            schema,
            watersheds,
            force,
        },
    )
    .await?;
    match outcome {
        DemoOutcome::Loaded { watersheds } => {
            println!("demo data loaded: {watersheds} watersheds")
        }
        DemoOutcome::UpToDate => {
            println!("demo data already loaded (use --force to regenerate)")
        }
    }
    if !(raster_resolution.is_finite() && raster_resolution >= 10.0) {
        return Err("--raster-resolution must be at least 10 metres".into());
    }
    let catalog = match &config.conditions {
        Some(c) => Some(crate::planning::conditions::Catalog::load(&c.catalog)?),
        None => None,
    };
    let written = tokio::task::spawn_blocking(move || {
        let mut written = demo::rasters::generate(&rasters, raster_resolution, large_raster)?;
        // Every metric of the configured catalog gets demo rasters too.
        if let Some(catalog) = catalog {
            written.extend(demo::rasters::generate_catalog(
                &catalog,
                raster_resolution,
            )?);
        }
        Ok::<_, demo::rasters::RasterDemoError>(written)
    })
    .await??;
    println!(
        "demo rasters: {} written (existing ones kept)",
        written.len()
    );
    Ok(())
}
