//! `planscape purge`: delete a layer's stored tiles, then tell running servers.

use std::ops::RangeInclusive;
use std::sync::Arc;

use crate::cache::TileCache;
use crate::config::Config;
use crate::coverage::Coverage;
use crate::tiles::{Catalog, TileService};

use super::BoxError;
use super::seed::{named_layers, open_store};

/// `planscape purge` arguments.
#[derive(clap::Args)]
pub struct PurgeArgs {
    /// The layer.
    layer: String,
    /// Zoom range `MIN-MAX` (default: all of the layer's zooms).
    #[arg(long, short, value_parser = crate::tile::parse_zooms)]
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
    let selected = named_layers(config, std::slice::from_ref(&layer))?;
    let coverage = bbox.as_deref().map(Coverage::parse_bbox).transpose()?;
    let zoom = zoom.unwrap_or(0..=crate::tile::MAX_ZOOM);
    let store = open_store(config, to.as_deref()).await?;
    // The layer's source is not needed (the zooms are given); running servers hear of
    // the purge through the database and drop their cached copies.
    let mut catalog = Catalog::default();
    for name in selected.into_keys() {
        catalog.push(name, Err("not opened for a purge".into()), None);
    }
    let service = TileService::new(
        catalog,
        Some(crate::db::create_pool(&config.database).await?),
        TileCache::new(0),
        Some(Arc::new(store)),
        config.http.cache_control.clone(),
    );
    let (_, deleted) = service.purge(&layer, Some(zoom), coverage.as_ref()).await?;
    println!("purged: {deleted} tile(s) of `{layer}`");
    Ok(())
}
