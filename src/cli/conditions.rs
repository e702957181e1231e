//! `planscape conditions`: build the element and pillar rasters of the catalog, and time
//! the statistics of a raster over a polygon.

use std::path::PathBuf;

use crate::config::Config;
use crate::planning;

use super::BoxError;

/// `planscape conditions` subcommands.
#[derive(clap::Subcommand)]
pub enum ConditionsCommand {
    /// Compute the normalized rasters of every element (from its metrics) and pillar
    /// (from its elements), mean or min per node, into the catalog's `dir`.
    Build,
    /// Statistics of a raster over a GeoJSON polygon (pixel-centre rule), as JSON, with
    /// the time taken (median of `--repeat` runs, the dataset kept open between runs).
    Stats {
        /// The raster.
        raster: PathBuf,
        /// GeoJSON Polygon/MultiPolygon (or a Feature of one), longitude/latitude.
        #[arg(long)]
        geojson: PathBuf,
        /// Band.
        #[arg(long, default_value_t = 1)]
        band: usize,
        /// Runs to time.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
}

/// Runs `planscape conditions …`.
pub async fn run(config: &Config, what: ConditionsCommand) -> Result<(), BoxError> {
    match what {
        ConditionsCommand::Build => build(config).await,
        ConditionsCommand::Stats {
            raster,
            geojson,
            band,
            repeat,
        } => stats(raster, geojson, band, repeat).await,
    }
}

async fn build(config: &Config) -> Result<(), BoxError> {
    let c = config
        .conditions
        .clone()
        .ok_or("no [conditions] catalog in the configuration")?;
    let written = tokio::task::spawn_blocking(move || {
        let catalog = planning::conditions::Catalog::from_config(&c)?;
        planning::conditions::build(&catalog, &c.dir)
    })
    .await??;
    println!(
        "conditions: {} element and pillar rasters built",
        written.len()
    );
    Ok(())
}

async fn stats(
    raster: PathBuf,
    geojson: PathBuf,
    band: usize,
    repeat: usize,
) -> Result<(), BoxError> {
    let text = std::fs::read_to_string(&geojson)?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let (bare, _) = planning::geometry::extract(&value, usize::MAX)?;
    let shape = planning::geometry::to_multipolygon(&bare)?;
    let (stats, times) = tokio::task::spawn_blocking(move || {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..repeat.max(1) {
            let started = std::time::Instant::now();
            last = Some(planning::stats::zonal_stats_pooled(&raster, band, &shape));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        (last, times)
    })
    .await?;
    let stats = stats.ok_or("no run")??;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({ "stats": stats, "median_ms": median, "runs": times.len() })
    );
    Ok(())
}
