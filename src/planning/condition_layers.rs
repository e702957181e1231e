//! One catalog of tile layers: the configuration's layers and, when a conditions catalog
//! is configured, a raster layer for every node of it (normalized, and raw for metrics).
//! The server, `seed` and `purge` all take their layers from here, so a condition layer
//! is served, seeded, purged and pregenerated like any configured one.

use std::collections::BTreeMap;

use super::conditions::{CatalogError, Conditions, layer_configs};
use crate::config::{Config, LayerConfig};

/// Loads the configured conditions catalog (`None` without a `[conditions]` section).
pub fn load_conditions(config: &Config) -> Result<Option<Conditions>, CatalogError> {
    config
        .conditions
        .as_ref()
        .map(|c| Conditions::load(&c.catalog, &c.dir))
        .transpose()
}

/// Every tile layer by name: the configured ones, then one raster layer per node of
/// `conditions` (a configured layer of the same name wins), each carrying
/// `[conditions.pregenerated]` when set.
pub fn tile_layers(
    config: &Config,
    conditions: Option<&Conditions>,
) -> BTreeMap<String, LayerConfig> {
    let mut layers = config.layers.clone();
    if let Some(conditions) = conditions {
        let pregenerated = config
            .conditions
            .as_ref()
            .and_then(|c| c.pregenerated.clone());
        for (name, mut layer) in layer_configs(&conditions.nodes) {
            layer.pregenerated.clone_from(&pregenerated);
            layers.entry(name).or_insert(LayerConfig::Raster(layer));
        }
    }
    layers
}
