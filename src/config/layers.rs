//! Layer settings: vector and raster layers, their pregeneration, and the checks their
//! values need beyond their types.

use serde::{Deserialize, Serialize};

use super::{ConfigError, MAX_ZOOM, is_identifier};

/// One layer, tagged by `type`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerConfig {
    /// Vector tiles from a PostGIS table.
    Vector(VectorLayerConfig),
    /// Raster tiles from a GeoTIFF/COG.
    Raster(RasterLayerConfig),
}

impl LayerConfig {
    /// The layer's pregeneration settings, when it is pregenerated.
    pub fn pregenerated(&self) -> Option<&PregeneratedConfig> {
        match self {
            Self::Vector(v) => v.pregenerated.as_ref(),
            Self::Raster(r) => r.pregenerated.as_ref(),
        }
    }

    /// Checks values the types alone cannot; errors name `layers.{name}.KEY`.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        match self {
            Self::Vector(v) => v.validate(name),
            Self::Raster(r) => validate_zooms(name, r.minzoom, r.maxzoom),
        }
    }
}

/// A PostGIS table served as MVT.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VectorLayerConfig {
    /// `table` or `schema.table`.
    pub table: String,
    /// Geometry column.
    #[serde(default = "default_geometry")]
    pub geometry: String,
    /// Integer column used as the MVT feature id.
    #[serde(default)]
    pub id: Option<String>,
    /// Columns written as feature properties.
    #[serde(default)]
    pub properties: Vec<String>,
    /// Lowest zoom served.
    #[serde(default)]
    pub minzoom: u8,
    /// Highest zoom served.
    #[serde(default = "default_vector_maxzoom")]
    pub maxzoom: u8,
    /// Human description for TileJSON.
    #[serde(default)]
    pub description: Option<String>,
    /// Attribution for TileJSON.
    #[serde(default)]
    pub attribution: Option<String>,
    /// Read tiles from the tile store (`[layers.NAME.pregenerated]`).
    #[serde(default)]
    pub pregenerated: Option<PregeneratedConfig>,
    /// Serve zooms `minzoom..=lowzoom_maxzoom` from generalized copies kept beside the
    /// table (pixel covers, migration V9); needs `id`. Off when absent.
    #[serde(default)]
    pub lowzoom_maxzoom: Option<u8>,
    /// The properties kept in tiles served from the low-zoom copies (a subset of
    /// `properties`; all of them when absent). Attributes are most of a low-zoom tile's
    /// bytes.
    #[serde(default)]
    pub lowzoom_properties: Option<Vec<String>>,
}

/// A raster layer: a GeoTIFF/COG band drawn with a colormap style.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RasterLayerConfig {
    /// GeoTIFF/COG path or GDAL virtual path (e.g. `/vsis3/bucket/key.tif`).
    pub path: String,
    /// 1-based band.
    #[serde(default = "one")]
    pub band: usize,
    /// Style name (`styles/NAME.json`; `NAME_r` reversed).
    pub style: String,
    /// Value range `[min, max]` for styles whose stops are fractions; when absent, the
    /// band's minimum and maximum.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// Resampling to the tile grid.
    #[serde(default)]
    pub resampling: Resampling,
    /// Nodata value, overriding the file's.
    #[serde(default)]
    pub nodata: Option<f64>,
    /// Units of the values (legend).
    #[serde(default)]
    pub units: Option<String>,
    /// Lowest zoom served.
    #[serde(default)]
    pub minzoom: u8,
    /// Highest zoom served.
    #[serde(default = "default_raster_maxzoom")]
    pub maxzoom: u8,
    /// TileJSON description.
    #[serde(default)]
    pub description: Option<String>,
    /// TileJSON attribution.
    #[serde(default)]
    pub attribution: Option<String>,
    /// Read tiles from the tile store (`[layers.NAME.pregenerated]`).
    #[serde(default)]
    pub pregenerated: Option<PregeneratedConfig>,
}

/// Resampling from the source grid to the tile grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Resampling {
    /// Nearest neighbour: for categories, and exact values.
    #[default]
    Nearest,
    /// Bilinear: for continuous fields.
    Bilinear,
    /// Mean of covered pixels: for continuous fields seen from afar.
    Average,
}

/// Marks a layer as pregenerated: its tiles are read from the tile store.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PregeneratedConfig {
    /// What a tile missing from the store gets: rendered live, or served as empty.
    #[serde(default)]
    pub fallback: Fallback,
    /// Write tiles rendered on a miss back to the store.
    #[serde(default)]
    pub write_back: bool,
}

/// What a pregenerated layer serves for a tile missing from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Render it live (the seed may not have covered it yet).
    #[default]
    Render,
    /// Serve an empty tile (the seed wrote every non-empty tile).
    Empty,
}

pub(super) fn default_geometry() -> String {
    "geom".to_owned()
}
fn default_vector_maxzoom() -> u8 {
    14
}
fn default_raster_maxzoom() -> u8 {
    16
}
fn one() -> usize {
    1
}

impl VectorLayerConfig {
    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("layers.{name}.{key}"),
            message,
        };
        let parts: Vec<&str> = self.table.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(invalid(
                "table",
                format!("`{}` is not `table` or `schema.table`", self.table),
            ));
        }
        let columns = std::iter::once(("geometry", &self.geometry))
            .chain(self.id.iter().map(|c| ("id", c)))
            .chain(self.properties.iter().map(|c| ("properties", c)));
        for (key, column) in columns {
            if !is_identifier(column) {
                return Err(invalid(
                    key,
                    format!("`{column}` is not a plain column name"),
                ));
            }
        }
        validate_zooms(name, self.minzoom, self.maxzoom)?;
        if let Some(low) = self.lowzoom_maxzoom {
            if self.id.is_none() {
                return Err(invalid(
                    "lowzoom_maxzoom",
                    "needs an `id` column (copies are kept per feature id)".to_owned(),
                ));
            }
            if let Some(p) = self
                .lowzoom_properties
                .iter()
                .flatten()
                .find(|p| !self.properties.contains(p))
            {
                return Err(invalid(
                    "lowzoom_properties",
                    format!("`{p}` is not one of the layer's properties"),
                ));
            }
            if low < self.minzoom || low > self.maxzoom {
                return Err(invalid(
                    "lowzoom_maxzoom",
                    format!(
                        "{low} is outside the layer's zooms {}..={}",
                        self.minzoom, self.maxzoom
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn validate_zooms(name: &str, minzoom: u8, maxzoom: u8) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: format!("layers.{name}.{key}"),
        message,
    };
    if maxzoom > MAX_ZOOM {
        return Err(invalid("maxzoom", format!("{maxzoom} is above {MAX_ZOOM}")));
    }
    if minzoom > maxzoom {
        return Err(invalid(
            "minzoom",
            format!("{minzoom} is above maxzoom {maxzoom}"),
        ));
    }
    Ok(())
}
