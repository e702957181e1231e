//! The conditions catalog: regions -> pillars -> elements -> metrics, as in the original
//! Planscape. Metrics name their raw and normalized rasters; elements and pillars get a
//! normalized raster computed from their children (mean or min, per node) by
//! `planscape conditions build`. Every node is also a raster tile layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod build;

pub use build::build;

/// How a node combines its children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Mean of the children's normalized values (pixels where all children have data).
    #[default]
    Mean,
    /// Minimum (the weakest child decides).
    Min,
}

/// A metric: a raster of raw values and its normalized twin in [-1, 1].
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Identifier, unique in the region.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// Raster of raw values (not shown to clients).
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub raw: PathBuf,
    /// Raster of normalized values in [-1, 1], higher is better (not shown to clients).
    #[serde(skip_serializing)]
    #[schema(ignore)]
    pub normalized: PathBuf,
    /// Units of raw values.
    #[serde(default)]
    pub data_units: Option<String>,
    /// Raw range used for the legend.
    pub min_value: f64,
    /// Raw range used for the legend.
    pub max_value: f64,
    /// Whether high raw values are bad (the normalized raster is inverted).
    #[serde(default)]
    pub invert_raw: bool,
    /// Data source.
    #[serde(default)]
    pub source: Option<String>,
    /// Link to the source.
    #[serde(default)]
    pub source_link: Option<String>,
    /// Who provides the data.
    #[serde(default)]
    pub data_provider: Option<String>,
    /// Year of the data.
    #[serde(default)]
    pub data_year: Option<String>,
    /// Metric documentation.
    #[serde(default)]
    pub reference_link: Option<String>,
}

/// An element: metrics combined.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Element {
    /// Identifier, unique in the region.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// How the metrics combine.
    #[serde(default)]
    pub operation: Operation,
    /// Its metrics.
    pub metrics: Vec<Metric>,
}

/// A pillar: elements combined.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pillar {
    /// Identifier, unique in the region.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// How the elements combine.
    #[serde(default)]
    pub operation: Operation,
    /// Shown in the app's catalog.
    #[serde(default = "yes")]
    pub display: bool,
    /// Its elements.
    pub elements: Vec<Element>,
}

fn yes() -> bool {
    true
}

/// A region's catalog.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Identifier (the plans' region slug).
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// Its pillars.
    pub pillars: Vec<Pillar>,
}

/// The catalog file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Regions.
    #[serde(default)]
    pub regions: Vec<Region>,
}

/// The level of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A pillar.
    Pillar,
    /// An element.
    Element,
    /// A metric.
    Metric,
}

/// A node of the tree, flattened for lookups and statistics.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Node {
    /// Region.
    pub region: String,
    /// Identifier.
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// Level.
    pub level: Level,
    /// Parent (element of a metric, pillar of an element).
    pub parent: Option<String>,
    /// Children.
    pub children: Vec<String>,
    /// How the children combine (elements, pillars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// Normalized raster.
    #[serde(skip)]
    pub normalized: PathBuf,
    /// Raw raster (metrics).
    #[serde(skip)]
    pub raw: Option<PathBuf>,
    /// Tile layer of the normalized values.
    pub layer: String,
    /// Tile layer of the raw values (metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_layer: Option<String>,
    /// Metric metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
}

/// A catalog problem, reported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file cannot be read or parsed.
    #[error("conditions catalog {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A node is wrong.
    #[error("conditions catalog: {0}")]
    Invalid(String),
}

impl Catalog {
    /// Reads and checks a catalog file.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let file_err = |message: String| CatalogError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let catalog: Catalog = toml::from_str(&text).map_err(|e| file_err(e.to_string()))?;
        catalog.check()?;
        Ok(catalog)
    }

    /// The catalog of a `[conditions]` section: its file, with the metrics' rasters
    /// looked up in the section's `rasters` folder when it names one.
    pub fn from_config(config: &crate::config::ConditionsConfig) -> Result<Self, CatalogError> {
        let mut catalog = Self::load(&config.catalog)?;
        if let Some(dir) = &config.rasters {
            catalog.move_rasters(dir);
        }
        Ok(catalog)
    }

    /// Looks every metric's raw and normalized rasters up in `dir` (same file names).
    pub fn move_rasters(&mut self, dir: &Path) {
        let moved = |path: &Path| match path.file_name() {
            Some(name) => dir.join(name),
            None => path.to_path_buf(),
        };
        for metric in self
            .regions
            .iter_mut()
            .flat_map(|r| &mut r.pillars)
            .flat_map(|p| &mut p.elements)
            .flat_map(|e| &mut e.metrics)
        {
            metric.raw = moved(&metric.raw);
            metric.normalized = moved(&metric.normalized);
        }
    }

    fn check(&self) -> Result<(), CatalogError> {
        let mut regions = std::collections::HashSet::new();
        for region in &self.regions {
            if !crate::config::is_identifier(&region.name) || !regions.insert(&region.name) {
                return Err(CatalogError::Invalid(format!(
                    "region `{}` is not a unique plain name",
                    region.name
                )));
            }
            let mut names = std::collections::HashSet::new();
            for p in &region.pillars {
                if p.elements.is_empty() {
                    return Err(CatalogError::Invalid(format!(
                        "pillar `{}` has no elements",
                        p.name
                    )));
                }
                let element_names = p.elements.iter().map(|e| &e.name);
                for e in &p.elements {
                    if e.metrics.is_empty() {
                        return Err(CatalogError::Invalid(format!(
                            "element `{}` has no metrics",
                            e.name
                        )));
                    }
                    for m in &e.metrics {
                        if m.min_value.partial_cmp(&m.max_value) != Some(std::cmp::Ordering::Less) {
                            return Err(CatalogError::Invalid(format!(
                                "metric `{}`: min_value must be below max_value",
                                m.name
                            )));
                        }
                    }
                }
                let all = std::iter::once(&p.name).chain(element_names).chain(
                    p.elements
                        .iter()
                        .flat_map(|e| e.metrics.iter().map(|m| &m.name)),
                );
                for name in all {
                    if !crate::config::is_identifier(name) || !names.insert(name.clone()) {
                        return Err(CatalogError::Invalid(format!(
                            "`{name}` in region `{}` is not a unique plain name",
                            region.name
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every node, by (region, name), with the built rasters of elements and pillars in
    /// `built_dir/{region}/{name}.tif`.
    pub fn nodes(&self, built_dir: &Path) -> BTreeMap<(String, String), Node> {
        let mut out = BTreeMap::new();
        let layer = |region: &str, name: &str| format!("{region}_{name}");
        for r in &self.regions {
            let built = |name: &str| built_dir.join(&r.name).join(format!("{name}.tif"));
            for p in &r.pillars {
                out.insert(
                    (r.name.clone(), p.name.clone()),
                    Node {
                        region: r.name.clone(),
                        name: p.name.clone(),
                        display_name: p.display_name.clone(),
                        level: Level::Pillar,
                        parent: None,
                        children: p.elements.iter().map(|e| e.name.clone()).collect(),
                        operation: Some(p.operation),
                        normalized: built(&p.name),
                        raw: None,
                        layer: layer(&r.name, &p.name),
                        raw_layer: None,
                        metric: None,
                    },
                );
                for e in &p.elements {
                    out.insert(
                        (r.name.clone(), e.name.clone()),
                        Node {
                            region: r.name.clone(),
                            name: e.name.clone(),
                            display_name: e.display_name.clone(),
                            level: Level::Element,
                            parent: Some(p.name.clone()),
                            children: e.metrics.iter().map(|m| m.name.clone()).collect(),
                            operation: Some(e.operation),
                            normalized: built(&e.name),
                            raw: None,
                            layer: layer(&r.name, &e.name),
                            raw_layer: None,
                            metric: None,
                        },
                    );
                    for m in &e.metrics {
                        out.insert(
                            (r.name.clone(), m.name.clone()),
                            Node {
                                region: r.name.clone(),
                                name: m.name.clone(),
                                display_name: m.display_name.clone(),
                                level: Level::Metric,
                                parent: Some(e.name.clone()),
                                children: Vec::new(),
                                operation: None,
                                normalized: m.normalized.clone(),
                                raw: Some(m.raw.clone()),
                                layer: layer(&r.name, &m.name),
                                raw_layer: Some(format!("{}_raw", layer(&r.name, &m.name))),
                                metric: Some(m.clone()),
                            },
                        );
                    }
                }
            }
        }
        out
    }
}

/// The loaded catalog and its nodes, shared by the server.
#[derive(Debug)]
pub struct Conditions {
    /// The catalog as configured.
    pub catalog: Catalog,
    /// Every node by (region, name).
    pub nodes: BTreeMap<(String, String), Node>,
}

impl Conditions {
    /// Loads the catalog; built rasters live in `built_dir`.
    pub fn load(path: &Path, built_dir: &Path) -> Result<Self, CatalogError> {
        let catalog = Catalog::load(path)?;
        let nodes = catalog.nodes(built_dir);
        Ok(Self { catalog, nodes })
    }

    /// Loads the catalog of a `[conditions]` section (see [`Catalog::from_config`]).
    pub fn from_config(config: &crate::config::ConditionsConfig) -> Result<Self, CatalogError> {
        let catalog = Catalog::from_config(config)?;
        let nodes = catalog.nodes(&config.dir);
        Ok(Self { catalog, nodes })
    }

    /// A node.
    pub fn node(&self, region: &str, name: &str) -> Option<&Node> {
        self.nodes.get(&(region.to_owned(), name.to_owned()))
    }

    /// The node a tile layer shows, and whether the layer holds its normalized values
    /// (`false`: a metric's raw values).
    pub fn by_layer(&self, layer: &str) -> Option<(&Node, bool)> {
        self.nodes.values().find_map(|n| {
            if n.layer == layer {
                Some((n, true))
            } else if n.raw_layer.as_deref() == Some(layer) {
                Some((n, false))
            } else {
                None
            }
        })
    }

    /// The nodes of a region, pillars first, then elements, then metrics.
    pub fn region_nodes(&self, region: &str) -> Vec<&Node> {
        let mut nodes: Vec<&Node> = self.nodes.values().filter(|n| n.region == region).collect();
        nodes.sort_by_key(|n| (n.level as u8, n.name.clone()));
        nodes
    }
}
