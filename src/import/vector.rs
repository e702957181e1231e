//! Vector import: any vector file GDAL reads (GeoJSON, a Shapefile or a zipped one, a
//! GeoPackage, ...) becomes a PostGIS table in EPSG:4326 — one integer key `fid`, the
//! attributes as columns, the geometry in `geom` (`Multi*` of the file's geometry kind)
//! with a GiST index — and the layer is registered in the configuration file.
//!
//! GDAL reads on a blocking thread and streams COPY rows (hex WKB geometries) to the
//! async side, so a large file never sits in memory whole. Everything happens in one
//! transaction: a failed import leaves no table behind, and the configuration file is
//! changed only once the table is committed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{LayerAccess, OGRFieldType, OGRwkbGeometryType};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use super::{ImportError, register};
use crate::config::{DatabaseConfig, is_identifier};
use crate::db::{self, quote_ident};

/// What to import.
#[derive(Debug, Clone)]
pub struct VectorImportOptions {
    /// The input file (a `.zip` is read through `/vsizip/`).
    pub input: PathBuf,
    /// Layer name in the configuration.
    pub layer: String,
    /// Target table, `table` or `schema.table` (default: the layer name, `-` as `_`,
    /// in `public`).
    pub table: Option<String>,
    /// The file's layer to read (default: its first).
    pub source_layer: Option<String>,
    /// Config file to register the layer in (`None`: do not register).
    pub register: Option<PathBuf>,
}

/// What a vector import produced.
#[derive(Debug, Clone)]
pub struct VectorImported {
    /// The table, `schema.table`.
    pub table: String,
    /// Rows written.
    pub rows: u64,
    /// The PostGIS geometry type of `geom` (e.g. `MultiPolygon`).
    pub geometry_type: String,
    /// The attribute columns, in the file's order.
    pub columns: Vec<String>,
}

/// The key column every imported table has.
pub const ID_COLUMN: &str = "fid";
/// The geometry column every imported table has.
pub const GEOMETRY_COLUMN: &str = "geom";

/// A PostgreSQL column type for an OGR field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    BigInt,
    Float,
    Text,
}

impl Kind {
    fn from_ogr(field_type: OGRFieldType::Type, boolean: bool) -> Self {
        match field_type {
            OGRFieldType::OFTInteger if boolean => Self::Bool,
            OGRFieldType::OFTInteger => Self::Int,
            OGRFieldType::OFTInteger64 => Self::BigInt,
            OGRFieldType::OFTReal => Self::Float,
            // Strings, dates and times (as GDAL writes them), lists, binary.
            _ => Self::Text,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Bool => "boolean",
            Self::Int => "integer",
            Self::BigInt => "bigint",
            Self::Float => "double precision",
            Self::Text => "text",
        }
    }
}

/// One attribute column: the OGR field index, the column name, its type.
#[derive(Debug, Clone)]
struct Column {
    index: usize,
    name: String,
    kind: Kind,
}

/// The source as inspected before any database work.
#[derive(Debug, Clone)]
struct Source {
    /// What GDAL opens.
    path: String,
    /// The layer's index in the dataset.
    layer: usize,
    columns: Vec<Column>,
}

/// What reading the features found.
#[derive(Debug, Default, Clone, Copy)]
struct Read {
    rows: u64,
    with_geometry: u64,
    points: bool,
    lines: bool,
    polygons: bool,
    other: bool,
}

/// Runs the import: inspection and reading on blocking threads, the writing in one
/// transaction.
pub async fn import_vector(
    db_config: &DatabaseConfig,
    opts: &VectorImportOptions,
) -> Result<VectorImported, ImportError> {
    register::check_new_layer(opts.register.as_deref(), &opts.layer)?;
    let table = target_table(opts)?;
    let source = {
        let (input, wanted) = (opts.input.clone(), opts.source_layer.clone());
        tokio::task::spawn_blocking(move || inspect(&input, wanted.as_deref()))
            .await
            .map_err(|e| ImportError::Gdal(e.to_string()))??
    };

    let db = |e: tokio_postgres::Error| ImportError::Database(db::DbError::from(e).to_string());
    let mut client = db::connect(db_config)
        .await
        .map_err(|e| ImportError::Database(e.to_string()))?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&quote_ident(&table)],
        )
        .await
        .map_err(db)?
        .get(0);
    if exists {
        return Err(ImportError::Invalid(format!(
            "table `{table}` already exists; choose another with --table"
        )));
    }
    let qtable = quote_ident(&table);
    let (schema, _) = table.split_once('.').unwrap_or(("public", ""));
    let columns_sql: Vec<String> = source
        .columns
        .iter()
        .map(|c| format!("{} {}", quote_ident(&c.name), c.kind.sql()))
        .collect();
    let tx = client.transaction().await.map_err(db)?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE {qtable} ({ID_COLUMN} bigint PRIMARY KEY, {cols}{comma}{GEOMETRY_COLUMN} geometry)",
        schema = quote_ident(schema),
        cols = columns_sql.join(", "),
        comma = if columns_sql.is_empty() { "" } else { ", " },
    ))
    .await
    .map_err(db)?;

    let names: Vec<String> = source
        .columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {qtable} ({ID_COLUMN}, {cols}{comma}{GEOMETRY_COLUMN}) FROM STDIN",
            cols = names.join(", "),
            comma = if names.is_empty() { "" } else { ", " },
        ))
        .await
        .map_err(db)?;
    let mut sink = Box::pin(sink);
    let (tx_rows, mut rx_rows) = tokio::sync::mpsc::channel::<Bytes>(4);
    let reader = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || read_rows(&source, &tx_rows))
    };
    let mut send_failed = None;
    while let Some(chunk) = rx_rows.recv().await {
        if let Err(e) = sink.send(chunk).await {
            send_failed = Some(e);
            break;
        }
    }
    drop(rx_rows);
    let read = reader.await.map_err(|e| ImportError::Gdal(e.to_string()))?;
    if let Some(e) = send_failed {
        return Err(db(e));
    }
    let read = read?;
    sink.as_mut().finish().await.map_err(db)?;
    if read.with_geometry == 0 {
        return Err(ImportError::NoGeometry(opts.input.clone()));
    }

    let g = "ST_Force2D(ST_SetSRID(geom, 4326))";
    let (geometry_type, using) = match (read.points, read.lines, read.polygons, read.other) {
        (true, false, false, false) => ("MultiPoint", format!("ST_Multi({g})")),
        (false, true, false, false) => ("MultiLineString", format!("ST_Multi({g})")),
        // Polygons PostGIS finds invalid are repaired (keeping their polygonal part), so
        // tiles and area math work on them.
        (false, false, true, false) => (
            "MultiPolygon",
            format!(
                "ST_Multi(CASE WHEN ST_IsValid({g}) THEN {g} \
                 ELSE ST_CollectionExtract(ST_MakeValid({g}), 3) END)"
            ),
        ),
        _ => ("Geometry", g.to_owned()),
    };
    tx.batch_execute(&format!(
        "ALTER TABLE {qtable} ALTER COLUMN {GEOMETRY_COLUMN} TYPE geometry({geometry_type}, 4326) \
           USING {using}; \
         CREATE INDEX ON {qtable} USING gist ({GEOMETRY_COLUMN}); \
         ANALYZE {qtable}"
    ))
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;

    let columns: Vec<String> = source.columns.iter().map(|c| c.name.clone()).collect();
    if let Some(config) = &opts.register {
        let registered =
            register::append_layer(config, &opts.layer, layer_table(opts, &table, &columns));
        if let Err(e) = registered {
            // The config refused the layer: leave nothing half-done behind.
            let _ = client
                .batch_execute(&format!("DROP TABLE IF EXISTS {qtable}"))
                .await;
            return Err(e);
        }
    }
    Ok(VectorImported {
        table,
        rows: read.rows,
        geometry_type: geometry_type.to_owned(),
        columns,
    })
}

/// The target table, `schema.table`, checked.
fn target_table(opts: &VectorImportOptions) -> Result<String, ImportError> {
    let given = match &opts.table {
        Some(t) => t.clone(),
        None => opts.layer.replace('-', "_").to_lowercase(),
    };
    let (schema, table) = match given.split_once('.') {
        Some((s, t)) => (s.to_owned(), t.to_owned()),
        None => ("public".to_owned(), given.clone()),
    };
    if !is_identifier(&schema) || !is_identifier(&table) {
        return Err(ImportError::Invalid(format!(
            "`{given}` is not a valid table name (letters, digits and `_`, not starting with a digit; `schema.table`); choose one with --table"
        )));
    }
    Ok(format!("{schema}.{table}"))
}

/// What GDAL opens for `input`: a `.zip` through `/vsizip/`.
fn gdal_path(input: &Path) -> String {
    let text = input.to_string_lossy().into_owned();
    let zipped = input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if zipped && !text.starts_with("/vsi") {
        format!("/vsizip/{text}")
    } else {
        text
    }
}

fn open(path: &str) -> Option<Dataset> {
    Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
            ..DatasetOptions::default()
        },
    )
    .ok()
}

/// Opens the file, picks the layer, names the columns; refuses files that are not
/// vector data, layers without geometry or CRS.
fn inspect(input: &Path, wanted: Option<&str>) -> Result<Source, ImportError> {
    let path = gdal_path(input);
    let not_vector = || ImportError::NotVector(input.to_owned());
    let dataset = open(&path).ok_or_else(not_vector)?;
    if dataset.layer_count() == 0 {
        return Err(not_vector());
    }
    let index = match wanted {
        Some(name) => (0..dataset.layer_count())
            .find(|&i| dataset.layer(i).is_ok_and(|l| l.name() == name))
            .ok_or_else(|| {
                let names: Vec<String> = dataset.layers().map(|l| l.name()).collect();
                ImportError::Invalid(format!(
                    "`{}` has no layer `{name}` (it has: {})",
                    input.display(),
                    names.join(", ")
                ))
            })?,
        None => 0,
    };
    let layer = dataset.layer(index).map_err(|_| not_vector())?;
    if layer.defn().geom_fields().next().is_none() {
        return Err(ImportError::NoGeometry(input.to_owned()));
    }
    if layer.spatial_ref().is_none() {
        return Err(ImportError::NoCrs(input.to_owned()));
    }
    let mut taken: HashSet<String> = [ID_COLUMN, GEOMETRY_COLUMN]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut columns = Vec::new();
    for (i, field) in layer.defn().fields().enumerate() {
        // SAFETY: the layer's definition and its field `i` live as long as `layer`.
        let boolean = unsafe {
            let defn = gdal_sys::OGR_L_GetLayerDefn(layer.c_layer());
            let fdefn = gdal_sys::OGR_FD_GetFieldDefn(defn, i as i32);
            !fdefn.is_null()
                && gdal_sys::OGR_Fld_GetSubType(fdefn) == gdal_sys::OGRFieldSubType::OFSTBoolean
        };
        let name = column_name(&field.name(), i, &mut taken);
        columns.push(Column {
            index: i,
            name,
            kind: Kind::from_ogr(field.field_type(), boolean),
        });
    }
    Ok(Source {
        path,
        layer: index,
        columns,
    })
}

/// A PostgreSQL column name for a field: lower case, `[a-z0-9_]`, not starting with a
/// digit, at most 63 bytes, unique among `taken` (`fid` and `geom` are the table's own).
fn column_name(field: &str, index: usize, taken: &mut HashSet<String>) -> String {
    let mut base: String = field
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.trim_matches('_').is_empty() {
        base = format!("field_{}", index + 1);
    }
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        base.insert(0, '_');
    }
    base.truncate(56);
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}_{n}");
    }
    taken.insert(name.clone());
    name
}

/// Reads every feature into COPY text rows, sent in chunks of about 1 MiB.
fn read_rows(source: &Source, out: &tokio::sync::mpsc::Sender<Bytes>) -> Result<Read, ImportError> {
    let gdal = |e: gdal::errors::GdalError| ImportError::Gdal(e.to_string());
    let dataset = open(&source.path).ok_or_else(|| ImportError::Gdal("reopening failed".into()))?;
    let mut layer = dataset.layer(source.layer).map_err(gdal)?;
    let mut from = layer
        .spatial_ref()
        .ok_or_else(|| ImportError::Gdal("the layer lost its CRS".into()))?;
    from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs84 = SpatialRef::from_epsg(4326).map_err(gdal)?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let transform = CoordTransform::new(&from, &wgs84).map_err(gdal)?;

    let mut read = Read::default();
    let mut buf = BytesMut::with_capacity(1 << 20);
    for feature in layer.features() {
        read.rows += 1;
        write_u64(&mut buf, read.rows);
        for column in &source.columns {
            buf.put_u8(b'\t');
            // SAFETY: a live feature and one of its field indexes.
            let set = unsafe {
                gdal_sys::OGR_F_IsFieldSetAndNotNull(feature.c_feature(), column.index as i32)
            } != 0;
            if !set {
                buf.put_slice(b"\\N");
                continue;
            }
            match column.kind {
                Kind::Bool => {
                    let v = feature.field_as_integer(column.index).map_err(gdal)?;
                    buf.put_slice(if v.unwrap_or(0) != 0 { b"t" } else { b"f" });
                }
                Kind::Int | Kind::BigInt => {
                    let v = feature.field_as_integer64(column.index).map_err(gdal)?;
                    buf.put_slice(v.unwrap_or(0).to_string().as_bytes());
                }
                Kind::Float => {
                    let v = feature
                        .field_as_double(column.index)
                        .map_err(gdal)?
                        .unwrap_or(0.0);
                    let text = if v.is_nan() {
                        "NaN".to_owned()
                    } else if v.is_infinite() {
                        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
                    } else {
                        v.to_string()
                    };
                    buf.put_slice(text.as_bytes());
                }
                Kind::Text => {
                    let v = feature
                        .field_as_string(column.index)
                        .map_err(gdal)?
                        .unwrap_or_default();
                    copy_escape(&mut buf, &v);
                }
            }
        }
        buf.put_u8(b'\t');
        match feature.geometry().filter(|g| !g.is_empty()) {
            Some(geometry) => {
                let mut geometry = geometry.clone();
                match gdal::vector::geometry_type_flatten(geometry.geometry_type()) {
                    OGRwkbGeometryType::wkbPoint | OGRwkbGeometryType::wkbMultiPoint => {
                        read.points = true;
                    }
                    OGRwkbGeometryType::wkbLineString | OGRwkbGeometryType::wkbMultiLineString => {
                        read.lines = true
                    }
                    OGRwkbGeometryType::wkbPolygon | OGRwkbGeometryType::wkbMultiPolygon => {
                        read.polygons = true;
                    }
                    _ => read.other = true,
                }
                geometry.transform_inplace(&transform).map_err(|e| {
                    ImportError::Gdal(format!("feature {}: cannot reproject: {e}", read.rows))
                })?;
                let wkb = geometry.wkb().map_err(gdal)?;
                put_hex(&mut buf, &wkb);
                read.with_geometry += 1;
            }
            None => buf.put_slice(b"\\N"),
        }
        buf.put_u8(b'\n');
        if buf.len() >= 1 << 20 && out.blocking_send(buf.split().freeze()).is_err() {
            // The writer stopped (it reports why).
            return Ok(read);
        }
    }
    if !buf.is_empty() {
        let _ = out.blocking_send(buf.freeze());
    }
    Ok(read)
}

fn write_u64(buf: &mut BytesMut, v: u64) {
    buf.put_slice(v.to_string().as_bytes());
}

/// COPY text format: backslash, tab, newline and carriage return escaped; NUL dropped.
fn copy_escape(buf: &mut BytesMut, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => buf.put_slice(b"\\\\"),
            '\t' => buf.put_slice(b"\\t"),
            '\n' => buf.put_slice(b"\\n"),
            '\r' => buf.put_slice(b"\\r"),
            '\0' => {}
            c => {
                let mut tmp = [0u8; 4];
                buf.put_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

fn put_hex(buf: &mut BytesMut, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        buf.put_u8(DIGITS[usize::from(b >> 4)]);
        buf.put_u8(DIGITS[usize::from(b & 15)]);
    }
}

/// The `[layers.NAME]` table of the imported layer.
fn layer_table(opts: &VectorImportOptions, table: &str, columns: &[String]) -> toml_edit::Table {
    let mut t = toml_edit::Table::new();
    t["type"] = toml_edit::value("vector");
    t["table"] = toml_edit::value(table);
    t["geometry"] = toml_edit::value(GEOMETRY_COLUMN);
    t["id"] = toml_edit::value(ID_COLUMN);
    t["properties"] = toml_edit::value(toml_edit::Array::from_iter(columns.iter()));
    let file = opts
        .input
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    t["description"] = toml_edit::value(format!("Imported from {file}"));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_plain_and_unique() {
        let mut taken: HashSet<String> = [ID_COLUMN, GEOMETRY_COLUMN]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let names: Vec<String> = ["Name", "name", "FID", "geom", "2020 Acres", "été", ""]
            .iter()
            .enumerate()
            .map(|(i, f)| column_name(f, i, &mut taken))
            .collect();
        assert_eq!(
            names,
            [
                "name",
                "name_2",
                "fid_2",
                "geom_2",
                "_2020_acres",
                "_t_",
                "field_7"
            ]
        );
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut buf = BytesMut::new();
        copy_escape(&mut buf, "a\tb\\c\nd\re\0f");
        assert_eq!(&buf[..], b"a\\tb\\\\c\\nd\\ref" as &[u8]);
        let mut buf = BytesMut::new();
        copy_escape(&mut buf, "f");
        assert_eq!(&buf[..], b"f");
    }

    #[test]
    fn table_names_are_checked() {
        let opts = |layer: &str, table: Option<&str>| VectorImportOptions {
            input: PathBuf::from("x.geojson"),
            layer: layer.to_owned(),
            table: table.map(str::to_owned),
            source_layer: None,
            register: None,
        };
        assert_eq!(
            target_table(&opts("ca-counties", None)).expect("ok"),
            "public.ca_counties"
        );
        assert_eq!(
            target_table(&opts("x", Some("geo.counties"))).expect("ok"),
            "geo.counties"
        );
        assert!(target_table(&opts("1st", None)).is_err());
        assert!(target_table(&opts("x", Some("a;drop"))).is_err());
    }
}
