//! The conditions catalog: regions -> pillars -> elements -> metrics, as in the original
//! Planscape. Metrics name their raw and normalized rasters; elements and pillars get a
//! normalized raster computed from their children (mean or min, per node) by
//! `planscape conditions build`. Every node is also a raster tile layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// Builds the normalized raster of every element (from its metrics) and pillar (from its
/// elements) into `built_dir/{region}/{name}.tif`: tiled, DEFLATE, with overviews, on the
/// children's common grid (children on different grids are refused). Blocking.
pub fn build(catalog: &Catalog, built_dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let nodes = catalog.nodes(built_dir);
    let mut written = Vec::new();
    for region in &catalog.regions {
        std::fs::create_dir_all(built_dir.join(&region.name))
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", built_dir.display())))?;
        for pillar in &region.pillars {
            for element in &pillar.elements {
                let inputs: Vec<PathBuf> = element
                    .metrics
                    .iter()
                    .map(|m| m.normalized.clone())
                    .collect();
                let out = &nodes[&(region.name.clone(), element.name.clone())].normalized;
                combine(&inputs, element.operation, out).map_err(|e| {
                    CatalogError::Invalid(format!("element `{}`: {e}", element.name))
                })?;
                written.push(out.clone());
            }
            let inputs: Vec<PathBuf> = pillar
                .elements
                .iter()
                .map(|e| {
                    nodes[&(region.name.clone(), e.name.clone())]
                        .normalized
                        .clone()
                })
                .collect();
            let out = &nodes[&(region.name.clone(), pillar.name.clone())].normalized;
            combine(&inputs, pillar.operation, out)
                .map_err(|e| CatalogError::Invalid(format!("pillar `{}`: {e}", pillar.name)))?;
            written.push(out.clone());
        }
    }
    Ok(written)
}

/// Output nodata of built rasters.
pub const BUILT_NODATA: f64 = -9999.0;

/// Combines same-grid single-band rasters pixel by pixel into a new GeoTIFF.
fn combine(inputs: &[PathBuf], op: Operation, out: &Path) -> Result<(), String> {
    use gdal::Dataset;
    use gdal::raster::{Buffer, RasterCreationOptions};
    let datasets: Vec<Dataset> = inputs
        .iter()
        .map(|p| Dataset::open(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    let first = datasets.first().ok_or("no inputs")?;
    let gt = first.geo_transform().map_err(|e| e.to_string())?;
    let size = first.raster_size();
    let srs = first.spatial_ref().map_err(|e| e.to_string())?;
    for (d, p) in datasets.iter().zip(inputs) {
        let same = d.raster_size() == size
            && d.geo_transform().map_err(|e| e.to_string())? == gt
            && d.spatial_ref().map_err(|e| e.to_string())? == srs;
        if !same {
            return Err(format!(
                "{} is not on the grid of {} (warp the children to one grid first)",
                p.display(),
                inputs[0].display()
            ));
        }
    }
    let nodatas: Vec<Option<f64>> = datasets
        .iter()
        .map(|d| d.rasterband(1).ok().and_then(|b| b.no_data_value()))
        .collect();
    let temp = out.with_extension("tif.tmp");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").map_err(|e| e.to_string())?;
    let options = RasterCreationOptions::from_iter([
        "TILED=YES",
        "COMPRESS=DEFLATE",
        "PREDICTOR=3",
        "BLOCKXSIZE=256",
        "BLOCKYSIZE=256",
    ]);
    let (width, height) = size;
    {
        let mut target = driver
            .create_with_band_type_with_options::<f32, _>(&temp, width, height, 1, &options)
            .map_err(|e| e.to_string())?;
        target.set_geo_transform(&gt).map_err(|e| e.to_string())?;
        target.set_spatial_ref(&srs).map_err(|e| e.to_string())?;
        let mut band = target.rasterband(1).map_err(|e| e.to_string())?;
        band.set_no_data_value(Some(BUILT_NODATA))
            .map_err(|e| e.to_string())?;
        const ROWS: usize = 256;
        let mut row = 0;
        while row < height {
            let rows = ROWS.min(height - row);
            let strips: Vec<Vec<f64>> = datasets
                .iter()
                .map(|d| {
                    d.rasterband(1)
                        .and_then(|b| {
                            b.read_as::<f64>((0, row as isize), (width, rows), (width, rows), None)
                        })
                        .map(|b| b.data().to_vec())
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?;
            let mut values = vec![BUILT_NODATA as f32; width * rows];
            for (i, value) in values.iter_mut().enumerate() {
                let mut acc: Option<f64> = None;
                let mut n = 0usize;
                let mut complete = true;
                for (strip, nd) in strips.iter().zip(&nodatas) {
                    let v = strip[i];
                    if v.is_nan() || nd.is_some_and(|nd| v == nd) {
                        complete = false;
                        break;
                    }
                    n += 1;
                    acc = Some(match (acc, op) {
                        (None, _) => v,
                        (Some(a), Operation::Mean) => a + v,
                        (Some(a), Operation::Min) => a.min(v),
                    });
                }
                if let (true, Some(a)) = (complete, acc) {
                    *value = match op {
                        Operation::Mean => (a / n as f64) as f32,
                        Operation::Min => a as f32,
                    };
                }
            }
            let mut buffer = Buffer::new((width, rows), values);
            band.write((0, row as isize), (width, rows), &mut buffer)
                .map_err(|e| e.to_string())?;
            row += rows;
        }
        target
            .build_overviews("AVERAGE", &[2, 4, 8, 16, 32], &[])
            .map_err(|e| e.to_string())?;
    }
    std::fs::rename(&temp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}

/// The raster tile layers of every node: `{region}_{node}` (normalized values in the
/// five condition bands) and, for metrics, `{region}_{metric}_raw` (raw
/// values, viridis over the metric's range, reversed when high raw values are bad).
pub fn layer_configs(
    nodes: &BTreeMap<(String, String), Node>,
) -> Vec<(String, crate::config::RasterLayerConfig)> {
    use crate::config::RasterLayerConfig;
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

    /// A node.
    pub fn node(&self, region: &str, name: &str) -> Option<&Node> {
        self.nodes.get(&(region.to_owned(), name.to_owned()))
    }

    /// The nodes of a region, pillars first, then elements, then metrics.
    pub fn region_nodes(&self, region: &str) -> Vec<&Node> {
        let mut nodes: Vec<&Node> = self.nodes.values().filter(|n| n.region == region).collect();
        nodes.sort_by_key(|n| (n.level as u8, n.name.clone()));
        nodes
    }
}
