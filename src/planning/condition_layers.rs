//! One catalog of tile layers: the configuration's layers and, when a conditions catalog
//! is configured, a raster layer for every node of it (normalized, and raw for metrics).
//! The server, `seed` and `purge` all take their layers from here, so a condition layer
//! is served, seeded, purged and pregenerated like any configured one.

use std::collections::BTreeMap;
use std::path::Path;

use super::conditions::{CatalogError, Conditions, Node};
use crate::config::{Config, LayerConfig, RasterLayerConfig};

/// Loads the configured conditions catalog (`None` without a `[conditions]` section).
pub fn load_conditions(config: &Config) -> Result<Option<Conditions>, CatalogError> {
    config
        .conditions
        .as_ref()
        .map(Conditions::from_config)
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

/// The raster tile layers of every node: `{region}_{node}` (normalized values in the
/// five condition bands) and, for metrics, `{region}_{metric}_raw` (raw
/// values, viridis over the metric's range, reversed when high raw values are bad).
pub fn layer_configs(nodes: &BTreeMap<(String, String), Node>) -> Vec<(String, RasterLayerConfig)> {
    let layer =
        |path: &Path, style: &str, range: [f64; 2], units: Option<String>, description: String| {
            RasterLayerConfig {
                path: path.display().to_string(),
                band: 1,
                style: style.to_owned(),
                range: Some(range),
                resampling: Default::default(),
                nodata: None,
                units,
                minzoom: 0,
                maxzoom: 16,
                description: Some(description),
                attribution: None,
                pregenerated: None,
            }
        };
    let mut out = Vec::new();
    for node in nodes.values() {
        out.push((
            node.layer.clone(),
            layer(
                &node.normalized,
                "condition_bands",
                [-1.0, 1.0],
                None,
                format!("{} (normalized)", node.display_name),
            ),
        ));
        if let (Some(m), Some(raw_layer), Some(raw)) = (&node.metric, &node.raw_layer, &node.raw) {
            out.push((
                raw_layer.clone(),
                layer(
                    raw,
                    if m.invert_raw { "viridis_r" } else { "viridis" },
                    [m.min_value, m.max_value],
                    m.data_units.clone(),
                    m.display_name.clone(),
                ),
            ));
        }
    }
    out
}
