//! `planscape demo`: the demo data into PostGIS, and the demo condition rasters.

use std::path::PathBuf;

use crate::config::Config;
use crate::demo::{self, DemoOptions, DemoOutcome};

use super::BoxError;

/// Pixel size of the demo rasters unless told otherwise, metres.
const DEFAULT_RESOLUTION: f64 = 250.0;

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
    /// Folder of the demo layers' rasters (COGs): those of the configuration's layers
    /// that are demo metrics are made there.
    #[arg(long, default_value = ".data/rasters")]
    rasters: PathBuf,
    /// Pixel size of the demo rasters, metres (default: 250 for the demo layers, and for
    /// the catalog's metrics the configuration's `[conditions] demo_resolution_m`, else
    /// 250). A folder holds rasters of one resolution only.
    #[arg(long)]
    raster_resolution: Option<f64>,
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
    let layers_resolution = raster_resolution.unwrap_or(DEFAULT_RESOLUTION);
    let catalog_resolution = raster_resolution
        .or(config.conditions.as_ref().and_then(|c| c.demo_resolution_m))
        .unwrap_or(DEFAULT_RESOLUTION);
    for r in [layers_resolution, catalog_resolution] {
        if !(r.is_finite() && r >= 10.0) {
            return Err("the demo rasters' resolution must be at least 10 metres".into());
        }
    }
    // The catalog with its metrics' rasters where the configuration puts them
    // (`[conditions] rasters`).
    let catalog = match &config.conditions {
        Some(c) => Some(crate::planning::conditions::Catalog::from_config(c)?),
        None => None,
    };
    let served_paths: Vec<PathBuf> = config
        .layers
        .values()
        .filter_map(|l| match l {
            crate::config::LayerConfig::Raster(r) => Some(PathBuf::from(&r.path)),
            crate::config::LayerConfig::Vector(_) => None,
        })
        .collect();
    let written = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        // The demo layers the configuration serves (`[layers.*]` paths in `rasters`).
        let served = |path: &std::path::Path| served_paths.iter().any(|p| p == path);
        let mut written =
            demo::rasters::generate_wanted(&rasters, layers_resolution, large_raster, &served)?;
        // Every metric of the configured catalog gets demo rasters too.
        if let Some(catalog) = catalog {
            written.extend(demo::rasters::generate_catalog(
                &catalog,
                catalog_resolution,
            )?);
        }
        if !written.is_empty() {
            println!(
                "demo rasters: {} written in {:.1} s",
                written.len(),
                started.elapsed().as_secs_f64()
            );
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
