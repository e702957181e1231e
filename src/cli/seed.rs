//! `planscape seed`: argument checks (all before any work), then the library's seed.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::TileCache;
use crate::config::{Config, LayerConfig};
use crate::coverage::Coverage;
use crate::planning::condition_layers;
use crate::seed::{self, SeedOptions, Shard};
use crate::store::TileStore;
use crate::tile::TileFormat;
use crate::tiles::{Catalog, TileError, TileService};

use super::BoxError;

/// `planscape seed` arguments.
#[derive(clap::Args)]
pub struct SeedArgs {
    /// Layers to seed.
    #[arg(required = true)]
    pub layers: Vec<String>,
    /// Zoom range `MIN-MAX` (or one zoom); clipped to each layer's range.
    #[arg(long, short, value_parser = crate::tile::parse_zooms)]
    pub zoom: RangeInclusive<u8>,
    #[command(flatten)]
    pub area: AreaArgs,
    /// Destination: `file://FOLDER` or `s3://BUCKET/PREFIX` (default: `store.url`).
    #[arg(long)]
    pub to: Option<String>,
    /// Tiles (raster: 4x4 metatiles) rendered and written at once; default 2 per core.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Skip tiles already in the store (continue an interrupted run).
    #[arg(long)]
    pub resume: bool,
    /// Seed only part `i` of `n` (0-based) of the tile list; `auto/n` takes `i` from
    /// `JOB_COMPLETION_INDEX` (Kubernetes) or `AWS_BATCH_JOB_ARRAY_INDEX` (AWS Batch).
    #[arg(long)]
    pub shard: Option<String>,
    /// Print the tile count and an estimated size, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stored format of raster layers: png or webp.
    #[arg(long, hide_possible_values = true)]
    pub format: Option<TileFormat>,
    /// Pixel ratio of raster tiles: 1 (256 px) or 2 (512 px, `@2x`).
    #[arg(long, default_value_t = 1)]
    pub scale: u8,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What to seed: one of a bbox, a GeoJSON file or a region (default: the layers' bounds).
#[derive(clap::Args)]
#[group(multiple = false)]
pub struct AreaArgs {
    /// `WEST,SOUTH,EAST,NORTH` in degrees.
    #[arg(long, allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// A GeoJSON file (Polygon/MultiPolygon geometry, Feature or FeatureCollection):
    /// only tiles touching its polygons are seeded.
    #[arg(long)]
    pub geojson: Option<PathBuf>,
    /// A region name from the configured `[regions]` table.
    #[arg(long)]
    pub region: Option<String>,
}

/// `--shard i/n`, or `auto/n` with the index from the batch engine's environment.
fn parse_shard(text: &str) -> Result<Shard, String> {
    if let Some(count) = text.strip_prefix("auto/") {
        let index = ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .ok_or("--shard auto/N needs JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX")?;
        return Shard::parse(&format!("{index}/{count}"));
    }
    Shard::parse(text)
}

/// The tile store of `--to`, else of the configuration, checked to be usable.
pub(super) async fn open_store(config: &Config, to: Option<&str>) -> Result<TileStore, BoxError> {
    let url = to.unwrap_or(&config.store.url);
    let store = TileStore::open_url(url, &config.store).await?;
    store
        .check()
        .await
        .map_err(|e| format!("tile store {url} is not usable: {e}"))?;
    Ok(store)
}

/// The settings of the layers called `names`, from the one catalog of tile layers
/// (configured and condition layers alike); an unknown name is an error.
pub(super) fn named_layers(
    config: &Config,
    names: &[String],
) -> Result<BTreeMap<String, LayerConfig>, BoxError> {
    let conditions = condition_layers::load_conditions(config)?;
    let mut all = condition_layers::tile_layers(config, conditions.as_ref());
    names
        .iter()
        .map(|name| {
            all.remove_entry(name)
                .ok_or_else(|| TileError::UnknownLayer(name.clone()).into())
        })
        .collect()
}

/// Runs `planscape seed`.
pub async fn run(config: &Config, args: SeedArgs) -> Result<(), BoxError> {
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()?
        .unwrap_or_default();
    let format = args.format;
    if !(args.scale == 1 || args.scale == 2) {
        return Err("--scale must be 1 or 2".into());
    }
    if args.concurrency == Some(0) {
        return Err("--concurrency must be at least 1".into());
    }
    let mut coverage = match (&args.area.bbox, &args.area.geojson) {
        (Some(b), _) => Some(Coverage::parse_bbox(b)?),
        (_, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(Coverage::from_geojson(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        _ => None,
    };
    let selected = named_layers(config, &args.layers)?;
    let need_db = selected
        .values()
        .any(|l| matches!(l, LayerConfig::Vector(_)))
        || args.area.region.is_some();
    let client = if need_db {
        Some(crate::db::connect(&config.database).await?)
    } else {
        None
    };
    if let (Some(region), Some(client)) = (&args.area.region, &client) {
        coverage = Some(seed::region_coverage(client, config.regions.as_ref(), region).await?);
    }
    let catalog = Catalog::open(&selected, &config.styles_dir, client.as_ref()).await;
    drop(client);
    let store = open_store(config, args.to.as_deref()).await?;
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get() * 2));
    let pool = if need_db {
        let mut db = config.database.clone();
        db.pool_size = concurrency;
        Some(crate::db::create_pool(&db).await?)
    } else {
        None
    };
    let service = TileService::new(
        catalog,
        pool,
        TileCache::new(0),
        Some(Arc::new(store)),
        config.http.cache_control.clone(),
    );
    let layers = seed::seed_layers(&service, &args.layers, &args.zoom, format, args.scale)?;
    let coverage = match coverage {
        Some(c) => c,
        None => layers_bounds(&layers)?,
    };
    let opts = SeedOptions {
        coverage,
        concurrency,
        resume: args.resume,
        shard,
        terminal: std::io::stderr().is_terminal(),
    };
    if args.dry_run {
        let estimates = seed::estimate(&service, &layers, &opts).await?;
        if args.json {
            println!("{}", serde_json::to_string(&estimates)?);
            return Ok(());
        }
        let (mut tiles, mut bytes) = (0, 0);
        println!(
            "{:<24} {:>4} {:>12} {:>14}",
            "layer", "zoom", "tiles", "est. bytes"
        );
        for e in &estimates {
            println!(
                "{:<24} {:>4} {:>12} {:>14}",
                e.layer, e.z, e.tiles, e.estimated_bytes
            );
            tiles += e.tiles;
            bytes += e.estimated_bytes;
        }
        println!(
            "total: {tiles} tiles, about {:.1} MB (shard {}/{})",
            bytes as f64 / 1e6,
            shard.index,
            shard.count
        );
        return Ok(());
    }
    let summary = seed::run(&service, &layers, &opts).await?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("seeded: {summary}");
    }
    if summary.failed > 0 {
        return Err(format!(
            "{} tile(s) failed; rerun with --resume to retry only those",
            summary.failed
        )
        .into());
    }
    Ok(())
}

/// The union of the layers' bounds (lon/lat), when no area is given.
fn layers_bounds(layers: &[seed::SeedLayer]) -> Result<Coverage, BoxError> {
    let mut union: Option<[f64; 4]> = None;
    for layer in layers {
        let b = layer
            .source
            .bounds()
            .ok_or_else(|| format!("layer `{}` has no data bounds; give --bbox", layer.name))?;
        union = Some(match union {
            None => b,
            Some(u) => [
                u[0].min(b[0]),
                u[1].min(b[1]),
                u[2].max(b[2]),
                u[3].max(b[3]),
            ],
        });
    }
    let [w, s, e, n] = union.ok_or("no layer")?;
    Ok(Coverage::from_bbox(w, s, e, n)?)
}
