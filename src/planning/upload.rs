//! Plans uploaded as files: a GeoJSON file or a zipped Shapefile, read by GDAL from
//! memory (`/vsimem/`, and `/vsizip/` inside a zip) with only those two drivers allowed,
//! its polygons unioned into one (Multi)Polygon in the file's own CRS, then reprojected
//! to EPSG:4326 (longitude, latitude). The result goes through the same checks as a
//! drawn plan ([`check_uploaded`]); every refusal names the field `file`.

use std::sync::atomic::{AtomicU64, Ordering};

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Geometry, LayerAccess, OGRwkbGeometryType, geometry_type_flatten};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};
use serde_json::Value;
use tokio_postgres::GenericClient;

use super::plans::{self, Limits, PlanError};

/// The form field the file comes in (named by every refusal).
pub const FIELD: &str = "file";

fn refuse(message: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        field: FIELD,
        message: message.into(),
    }
}

/// What kind of file an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// GeoJSON (`.geojson`, `.json`).
    GeoJson,
    /// A zip holding a Shapefile (`.shp`, `.shx`, `.dbf`, `.prj`).
    ZippedShapefile,
}

impl UploadKind {
    /// The kind of an upload by its content (a zip's signature) and, failing that, its
    /// file name; other file types are refused.
    pub fn detect(bytes: &[u8], file_name: Option<&str>) -> Result<Self, PlanError> {
        if bytes.starts_with(b"PK\x03\x04") {
            return Ok(Self::ZippedShapefile);
        }
        let ext = file_name
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            None | Some("geojson" | "json") => Ok(Self::GeoJson),
            Some("zip") => Err(refuse("is not a readable zip file")),
            Some(other) => Err(refuse(format!(
                "`.{other}` files are not accepted: send GeoJSON (.geojson, .json) or a zipped Shapefile (.zip)"
            ))),
        }
    }
}

/// A file in GDAL's memory file system, removed on drop.
struct MemFile(String);

impl MemFile {
    fn new(bytes: Vec<u8>, ext: &str) -> Result<Self, PlanError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = format!(
            "/vsimem/planscape-upload-{}-{}.{ext}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        gdal::vsi::create_mem_file(&path, bytes)
            .map_err(|e| refuse(format!("cannot be read: {e}")))?;
        Ok(Self(path))
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        let _ = gdal::vsi::unlink_mem_file(&self.0);
    }
}

fn open(path: &str, driver: &str) -> Option<Dataset> {
    Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
            allowed_drivers: Some(&[driver]),
            ..DatasetOptions::default()
        },
    )
    .ok()
}

/// The total uncompressed size of a zip's members, from its central directory; `None`
/// when that cannot be read (not a zip, or ZIP64 sizes).
fn unzipped_size(zip: &[u8]) -> Option<u64> {
    let u16_at = |i: usize| -> Option<u64> {
        zip.get(i..i + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |i: usize| -> Option<u64> {
        zip.get(i..i + 4)
            .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
    };
    // The end-of-central-directory record: in the last 22 + 65535 bytes.
    let lowest = zip.len().saturating_sub(22 + 65_535);
    let eocd = (lowest..=zip.len().checked_sub(22)?)
        .rev()
        .find(|&i| zip[i..].starts_with(b"PK\x05\x06"))?;
    let entries = u16_at(eocd + 10)?;
    let mut at = usize::try_from(u32_at(eocd + 16)?).ok()?;
    let mut total = 0u64;
    for _ in 0..entries {
        if !zip.get(at..)?.starts_with(b"PK\x01\x02") {
            return None;
        }
        let size = u32_at(at + 24)?;
        if size == u64::from(u32::MAX) {
            return None;
        }
        total += size;
        let lengths = u16_at(at + 28)? + u16_at(at + 30)? + u16_at(at + 32)?;
        at += 46 + usize::try_from(lengths).ok()?;
    }
    Some(total)
}

/// Refuses a zip that is unreadable or expands past `max_unzipped` bytes.
fn check_zip(zip: &[u8], max_unzipped: u64) -> Result<(), PlanError> {
    let total = unzipped_size(zip).ok_or_else(|| refuse("is not a readable zip file"))?;
    if total > max_unzipped {
        return Err(refuse(format!(
            "unzips to {} MB, more than the limit of {} MB",
            total / 1_000_000,
            max_unzipped / 1_000_000
        )));
    }
    Ok(())
}

/// The path of the one Shapefile inside a zip in memory, which must come with its
/// `.shx`, `.dbf` and `.prj`.
fn shapefile_in_zip(zip: &str) -> Result<String, PlanError> {
    let root = format!("/vsizip/{zip}");
    let entries =
        gdal::vsi::read_dir(&root, true).map_err(|_| refuse("is not a readable zip file"))?;
    let names: Vec<String> = entries
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let shapefiles: Vec<&String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".shp"))
        .collect();
    let shp = match shapefiles.as_slice() {
        [one] => *one,
        [] => return Err(refuse("the zip holds no Shapefile (.shp)")),
        more => {
            return Err(refuse(format!(
                "the zip holds {} Shapefiles; send one",
                more.len()
            )));
        }
    };
    let stem = &shp[..shp.len() - 4];
    for ext in ["shx", "dbf", "prj"] {
        let wanted = format!("{stem}.{ext}").to_ascii_lowercase();
        if !names.iter().any(|n| n.to_ascii_lowercase() == wanted) {
            let why = if ext == "prj" {
                " (its coordinate reference system)"
            } else {
                ""
            };
            return Err(refuse(format!("the zip has no .{ext} beside {shp}{why}")));
        }
    }
    Ok(format!("{root}/{shp}"))
}

/// Reads an uploaded file (blocking: GDAL) into one GeoJSON Polygon or MultiPolygon in
/// EPSG:4326: every feature's polygons, unioned. `max_unzipped` bounds what a zip may
/// expand to. Refusals (unreadable, no CRS, no polygons, other geometry types, invalid
/// polygons) name the field `file`.
pub fn read_upload(
    bytes: Vec<u8>,
    file_name: Option<&str>,
    max_unzipped: u64,
) -> Result<Value, PlanError> {
    if bytes.is_empty() {
        return Err(refuse("is empty"));
    }
    let kind = UploadKind::detect(&bytes, file_name)?;
    let (dataset, _mem) = match kind {
        UploadKind::GeoJson => {
            let mem = MemFile::new(bytes, "geojson")?;
            let ds = open(&mem.0, "GeoJSON")
                .ok_or_else(|| refuse("is not readable GeoJSON (nor a zipped Shapefile)"))?;
            (ds, mem)
        }
        UploadKind::ZippedShapefile => {
            check_zip(&bytes, max_unzipped)?;
            let mem = MemFile::new(bytes, "zip")?;
            let shp = shapefile_in_zip(&mem.0)?;
            let ds = open(&shp, "ESRI Shapefile")
                .ok_or_else(|| refuse("the Shapefile is not readable"))?;
            (ds, mem)
        }
    };
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(|e| refuse(e.to_string()))?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);

    let mut polygons =
        Geometry::empty(OGRwkbGeometryType::wkbMultiPolygon).map_err(|e| refuse(e.to_string()))?;
    let mut crs: Option<SpatialRef> = None;
    let mut features = 0usize;
    for mut layer in dataset.layers() {
        let Some(mut srs) = layer.spatial_ref() else {
            return Err(refuse(
                "has no coordinate reference system (a zipped Shapefile needs its .prj)",
            ));
        };
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        match &crs {
            Some(first) if *first != srs => {
                return Err(refuse("mixes coordinate reference systems"));
            }
            Some(_) => {}
            None => crs = Some(srs),
        }
        for feature in layer.features() {
            features += 1;
            let Some(geometry) = feature.geometry().filter(|g| !g.is_empty()) else {
                continue;
            };
            let mut geometry = geometry.clone();
            geometry.flatten_to_2d();
            match geometry_type_flatten(geometry.geometry_type()) {
                OGRwkbGeometryType::wkbPolygon => add_polygon(&mut polygons, geometry, features)?,
                OGRwkbGeometryType::wkbMultiPolygon => {
                    for i in 0..geometry.geometry_count() {
                        let part = geometry.get_geometry(i).clone();
                        add_polygon(&mut polygons, part, features)?;
                    }
                }
                _ => {
                    return Err(refuse(format!(
                        "feature {features} is a {}; only polygons make a planning area",
                        geometry.geometry_name()
                    )));
                }
            }
        }
    }
    if polygons.geometry_count() == 0 {
        return Err(refuse(if features == 0 {
            "holds no features"
        } else {
            "holds no polygons"
        }));
    }
    let mut union = union_all(&polygons)?;
    let crs = crs.ok_or_else(|| refuse("holds no layers"))?;
    let transform = CoordTransform::new(&crs, &wgs84)
        .map_err(|e| refuse(format!("cannot be reprojected to EPSG:4326: {e}")))?;
    union
        .transform_inplace(&transform)
        .map_err(|e| refuse(format!("cannot be reprojected to EPSG:4326: {e}")))?;
    let json = union.json().map_err(|e| refuse(e.to_string()))?;
    serde_json::from_str(&json).map_err(|e| refuse(e.to_string()))
}

/// Adds one polygon of feature `feature` to the collection, refusing invalid ones.
fn add_polygon(
    polygons: &mut Geometry,
    polygon: Geometry,
    feature: usize,
) -> Result<(), PlanError> {
    if polygon.is_empty() {
        return Ok(());
    }
    if !polygon.is_valid() {
        return Err(refuse(format!(
            "feature {feature} has an invalid polygon (self-intersecting or badly nested rings)"
        )));
    }
    polygons
        .add_geometry(polygon)
        .map_err(|e| refuse(e.to_string()))
}

/// The union of a MultiPolygon's polygons (GEOS cascaded union).
fn union_all(polygons: &Geometry) -> Result<Geometry, PlanError> {
    if polygons.geometry_count() == 1 {
        return Ok(polygons.get_geometry(0).clone());
    }
    // SAFETY: a valid MultiPolygon handle borrowed for the call; the returned geometry is
    // new (owned here), exported to WKB and destroyed before leaving the block.
    let wkb = unsafe {
        let union = gdal_sys::OGR_G_UnionCascaded(polygons.c_geometry());
        if union.is_null() {
            return Err(refuse("its polygons cannot be unioned"));
        }
        let size = gdal_sys::OGR_G_WkbSize(union).max(0) as usize;
        let mut buf = vec![0u8; size];
        let err = gdal_sys::OGR_G_ExportToIsoWkb(
            union,
            gdal_sys::OGRwkbByteOrder::wkbNDR,
            buf.as_mut_ptr(),
        );
        gdal_sys::OGR_G_DestroyGeometry(union);
        if err != gdal_sys::OGRErr::OGRERR_NONE {
            return Err(refuse("its polygons cannot be unioned"));
        }
        buf
    };
    Geometry::from_wkb(&wkb).map_err(|e| refuse(e.to_string()))
}

/// Checks an uploaded area exactly as a drawn plan's geometry
/// ([`plans::check_input_geometry`]: vertices, validity, inside California, area),
/// naming the field `file` in refusals. Returns the bare GeoJSON text and its acres.
pub async fn check_uploaded(
    client: &impl GenericClient,
    geometry: &Value,
    limits: &Limits,
) -> Result<(String, f64), PlanError> {
    plans::check_input_geometry(client, geometry, limits)
        .await
        .map_err(|e| match e {
            PlanError::Invalid { message, .. } => refuse(
                message
                    .strip_prefix("geometry: ")
                    .map(str::to_owned)
                    .unwrap_or(message),
            ),
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: PlanError) -> String {
        match e {
            PlanError::Invalid { field, message } => {
                assert_eq!(field, FIELD);
                message
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn polygons_are_unioned_and_others_refused() {
        let two = br#"{"type":"FeatureCollection","features":[
            {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-120,38],[-119,38],[-119,39],[-120,39],[-120,38]]]}},
            {"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-119.5,38],[-118.5,38],[-118.5,39],[-119.5,39],[-119.5,38]]]}}]}"#;
        let union = read_upload(two.to_vec(), Some("two.geojson"), 1 << 20).expect("read");
        assert_eq!(union["type"], "Polygon", "{union}");
        let apart = br#"{"type":"MultiPolygon","coordinates":[[[[-120,38],[-119,38],[-119,39],[-120,38]]],[[[-110,38],[-109,38],[-109,39],[-110,38]]]]}"#;
        let union = read_upload(apart.to_vec(), None, 1 << 20).expect("read");
        assert_eq!(union["type"], "MultiPolygon", "{union}");

        let point = br#"{"type":"Point","coordinates":[-120,38]}"#;
        let e = message(read_upload(point.to_vec(), None, 1 << 20).expect_err("point"));
        assert!(e.contains("only polygons"), "{e}");
        let e = message(read_upload(b"nonsense".to_vec(), None, 1 << 20).expect_err("junk"));
        assert!(e.contains("not readable"), "{e}");
        let e = message(read_upload(b"x".to_vec(), Some("a.kml"), 1 << 20).expect_err("kml"));
        assert!(e.contains(".kml"), "{e}");
        let bowtie = br#"{"type":"Polygon","coordinates":[[[-120,38],[-119,39],[-119,38],[-120,39],[-120,38]]]}"#;
        let e = message(read_upload(bowtie.to_vec(), None, 1 << 20).expect_err("bow tie"));
        assert!(e.contains("invalid polygon"), "{e}");
    }
}
