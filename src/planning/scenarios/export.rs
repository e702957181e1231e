//! A done scenario's project areas as files planners open in GIS tools: GeoJSON, a
//! zipped Shapefile, or CSV (geometry as WKT), written by GDAL in memory (`/vsimem/`,
//! nothing on disk) on a blocking thread.

use std::sync::atomic::{AtomicU64, Ordering};

use gdal::DriverManager;
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    Feature, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use serde::Deserialize;
use tokio_postgres::GenericClient;

use super::ScenarioError;

/// A file format of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// GeoJSON (RFC 7946), `application/geo+json`.
    Geojson,
    /// A zip of the Shapefile's `.shp`, `.shx`, `.dbf` and `.prj` (EPSG:4326).
    Shapefile,
    /// CSV, one row per project area, the outline as WKT in `WKT`.
    Csv,
}

impl ExportFormat {
    /// The file's media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Geojson => "application/geo+json",
            Self::Shapefile => "application/zip",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The format's name (as the `format` parameter spells it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Geojson => "geojson",
            Self::Shapefile => "shapefile",
            Self::Csv => "csv",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Geojson => "geojson",
            Self::Shapefile => "zip",
            Self::Csv => "csv",
        }
    }
}

/// One project area as read for export.
#[derive(Debug, Clone)]
pub struct ExportRow {
    /// 1 = best.
    pub rank: i32,
    /// Weighted score.
    pub score: f64,
    /// Area.
    pub area_acres: f64,
    /// Stands in it.
    pub stand_count: i32,
    /// Outline, WKB in EPSG:4326.
    pub wkb: Vec<u8>,
}

/// The project areas of scenario `id`, best first.
pub async fn rows(client: &impl GenericClient, id: i64) -> Result<Vec<ExportRow>, ScenarioError> {
    let rows = client
        .query(
            "SELECT rank, score, area_acres, stand_count, ST_AsBinary(geom) \
             FROM planscape.project_areas WHERE scenario_id = $1 ORDER BY rank",
            &[&id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ExportRow {
            rank: r.get(0),
            score: r.get(1),
            area_acres: r.get(2),
            stand_count: r.get(3),
            wkb: r.get(4),
        })
        .collect())
}

/// An export GDAL could not write.
#[derive(Debug, thiserror::Error)]
#[error("export: {0}")]
pub struct ExportError(String);

impl From<gdal::errors::GdalError> for ExportError {
    fn from(e: gdal::errors::GdalError) -> Self {
        Self(e.to_string())
    }
}

/// The layer name inside the files.
const LAYER: &str = "project_areas";

/// Writes the file (blocking: call off the async runtime).
pub fn write(rows: &[ExportRow], format: ExportFormat) -> Result<Vec<u8>, ExportError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = format!(
        "/vsimem/planscape-export-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // (driver, dataset to create, the file it writes, layer options)
    let (driver, create, path, options): (&str, String, String, &[&str]) = match format {
        ExportFormat::Geojson => (
            "GeoJSON",
            format!("{dir}/{LAYER}.geojson"),
            format!("{dir}/{LAYER}.geojson"),
            &["RFC7946=YES", "COORDINATE_PRECISION=7"],
        ),
        // `.shp.zip`: the Shapefile driver writes the zip itself (GDAL >= 3.1).
        ExportFormat::Shapefile => {
            let zip = format!("{dir}/{LAYER}.shp.zip");
            ("ESRI Shapefile", zip.clone(), zip, &[])
        }
        // The CSV driver writes one file per layer into a folder.
        ExportFormat::Csv => (
            "CSV",
            dir.clone(),
            format!("{dir}/{LAYER}.csv"),
            &["GEOMETRY=AS_WKT"],
        ),
    };
    let result = write_to(rows, driver, &create, options)
        .and_then(|()| Ok(gdal::vsi::get_vsi_mem_file_bytes_owned(&path)?));
    // Whatever happened, leave nothing behind in memory.
    let _ = gdal::vsi::unlink_mem_file(&path);
    let _ = gdal::vsi::unlink_mem_file(&dir);
    result
}

fn write_to(
    rows: &[ExportRow],
    driver: &str,
    create: &str,
    options: &[&str],
) -> Result<(), ExportError> {
    let driver = DriverManager::get_driver_by_name(driver)?;
    let mut ds = driver.create_vector_only(create)?;
    let mut srs = SpatialRef::from_epsg(4326)?;
    srs.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    {
        let layer = ds.create_layer(LayerOptions {
            name: LAYER,
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbMultiPolygon,
            options: Some(options),
        })?;
        let fields = [
            ("rank", OGRFieldType::OFTInteger),
            ("score", OGRFieldType::OFTReal),
            ("area_acres", OGRFieldType::OFTReal),
            ("stands", OGRFieldType::OFTInteger),
        ];
        layer.create_defn_fields(&fields)?;
        for row in rows {
            let mut feature = Feature::new(layer.defn())?;
            feature.set_geometry(Geometry::from_wkb(&row.wkb)?)?;
            feature.set_field(0, &FieldValue::IntegerValue(row.rank))?;
            feature.set_field(1, &FieldValue::RealValue(row.score))?;
            feature.set_field(2, &FieldValue::RealValue(row.area_acres))?;
            feature.set_field(3, &FieldValue::IntegerValue(row.stand_count))?;
            feature.create(&layer)?;
        }
    }
    // Closing the dataset flushes it (and, for `.shp.zip`, writes the zip).
    drop(ds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> ExportRow {
        let g =
            Geometry::from_wkt("MULTIPOLYGON(((-120 38,-119.9 38,-119.9 38.1,-120 38.1,-120 38)))")
                .expect("wkt");
        ExportRow {
            rank: 1,
            score: 0.5,
            area_acres: 1000.0,
            stand_count: 7,
            wkb: g.wkb().expect("wkb"),
        }
    }

    #[test]
    fn every_format_is_written_and_nothing_stays_in_memory() {
        for format in [
            ExportFormat::Geojson,
            ExportFormat::Shapefile,
            ExportFormat::Csv,
        ] {
            let bytes = write(&[square()], format).expect("written");
            assert!(!bytes.is_empty(), "{format:?}");
            match format {
                ExportFormat::Shapefile => assert_eq!(&bytes[..2], b"PK"),
                ExportFormat::Geojson => {
                    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
                    assert_eq!(v["features"][0]["properties"]["stands"], 7);
                }
                ExportFormat::Csv => {
                    let text = String::from_utf8(bytes).expect("utf-8");
                    assert!(
                        text.starts_with("WKT,rank,score,area_acres,stands"),
                        "{text}"
                    );
                }
            }
        }
    }
}
