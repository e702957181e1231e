//! `planscape purge`: delete a layer's stored tiles, then tell running servers.

use std::ops::RangeInclusive;

use crate::config::Config;
use crate::coverage::Coverage;
use crate::seed;

use super::BoxError;
use super::seed::open_store;

/// `planscape purge` arguments.
#[derive(clap::Args)]
pub struct PurgeArgs {
    /// The layer.
    layer: String,
    /// Zoom range `MIN-MAX` (default: all of the layer's zooms).
    #[arg(long, short, value_parser = crate::seed::parse_zooms)]
    zoom: Option<RangeInclusive<u8>>,
    /// Only tiles touching `WEST,SOUTH,EAST,NORTH` (lon/lat).
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Store: `file://FOLDER` or `s3://BUCKET/PREFIX` (default: `store.url`).
    #[arg(long)]
    to: Option<String>,
}

/// Runs `planscape purge`.
pub async fn run(config: &Config, args: PurgeArgs) -> Result<(), BoxError> {
    let PurgeArgs {
        layer,
        zoom,
        bbox,
        to,
    } = args;
    if !config.layers.contains_key(&layer) {
        return Err(seed::SeedError::UnknownLayer(layer).into());
    }
    let coverage = bbox.as_deref().map(Coverage::parse_bbox).transpose()?;
    let zoom = zoom.unwrap_or(0..=crate::tile::MAX_ZOOM);
    let store = open_store(config, to.as_deref()).await?;
    let deleted = seed::purge(&store, &layer, zoom, coverage.as_ref()).await?;
    println!("purged: {deleted} tile(s) of `{layer}`");
    // Running servers drop their cached copies when told through the database.
    match crate::db::connect(&config.database).await {
        Ok(client) => crate::changes::notify_layer_changed(&client, &layer).await?,
        Err(e) => eprintln!(
            "warning: could not reach the database to tell running servers ({e}); their cached tiles expire by themselves"
        ),
    }
    Ok(())
}
