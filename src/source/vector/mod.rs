//! Vector tiles from a PostGIS table.
//!
//! Division of labour, chosen by measurement (see `docs/benchmarks.md`): PostGIS does
//! what only it can do well, the index scan (`&&` against the tile envelope in the
//! table's own SRID), the reprojection to EPSG:3857 and a Douglas–Peucker
//! simplification at an eighth of a pixel, which shrinks what crosses the wire. Features
//! smaller than a pixel at the zoom send only their bounding box. Everything per-tile
//! beyond that — clipping, snapping to the 4096 grid, ring orientation, tiny-polygon
//! reduction, protobuf and gzip encoding — runs in Rust on a blocking thread of this
//! server, so the shared database does less work per tile than `ST_AsMVT` (which also
//! validates every clipped polygon) and servers scale out horizontally. A layer may serve
//! its low zooms from generalized copies kept beside the table instead ([`lowzoom`]).

mod clip;
pub mod encode;
mod inspect;
pub mod lowzoom;

use deadpool_postgres::Pool;
use geozero::ToGeo;
use tokio_postgres::Row;

use crate::source::SourceError;
use crate::tile::{Bounds, TileId};
use encode::{BUFFER, EXTENT, Feature, FeatureGeom, PIXEL, PropValue, SIMPLIFY_UNITS};

/// The type a property is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropKind {
    /// Integers.
    Int,
    /// Floating point and numeric.
    Float,
    /// Booleans.
    Bool,
    /// Text and anything else (cast to text).
    Str,
}

impl PropKind {
    fn from_pg_type(typname: &str) -> Self {
        match typname {
            "int2" | "int4" | "int8" => Self::Int,
            "float4" | "float8" | "numeric" => Self::Float,
            "bool" => Self::Bool,
            _ => Self::Str,
        }
    }

    fn cast(self) -> &'static str {
        match self {
            Self::Int => "::int8",
            Self::Float => "::float8",
            Self::Bool => "",
            Self::Str => "::text",
        }
    }

    /// The TileJSON `vector_layers.fields` type name.
    pub fn tilejson_type(self) -> &'static str {
        match self {
            Self::Int | Self::Float => "Number",
            Self::Bool => "Boolean",
            Self::Str => "String",
        }
    }
}

/// A validated vector layer, bound to one table.
#[derive(Debug)]
pub struct VectorSource {
    /// Layer name (also the MVT layer name inside tiles).
    pub name: String,
    /// `schema.table` as the change trigger reports it.
    pub table: String,
    /// SRID of the geometry column.
    pub srid: i32,
    /// Geometry type as declared (e.g. `MULTIPOLYGON`, or `GEOMETRY`).
    pub geometry_type: String,
    /// Properties and their types.
    pub properties: Vec<(String, PropKind)>,
    /// Data bounds in longitude/latitude (`[w, s, e, n]`), if the table has rows.
    pub bounds: Option<[f64; 4]>,
    /// Zoom range.
    pub minzoom: u8,
    /// Zoom range.
    pub maxzoom: u8,
    /// TileJSON description.
    pub description: Option<String>,
    /// TileJSON attribution.
    pub attribution: Option<String>,
    prop_names: Vec<String>,
    has_id: bool,
    /// What "tiny" means: polygons get tiny-polygon reduction, lines are dropped, and
    /// points or mixed layers are never tiny.
    tiny: TinyPolicy,
    /// How bounding boxes of tiny features map to EPSG:3857.
    frame: SourceFrame,
    sql: String,
    sql_by_id: Option<String>,
    /// Generalized copies serving the low zooms (`lowzoom_maxzoom`).
    lowzoom: Option<lowzoom::LowZoom>,
}

/// The kind of coordinates the layer's SRID has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceFrame {
    /// EPSG:3857 itself: no transformation.
    Mercator,
    /// Longitude/latitude (EPSG:4326, 4269, ...): boxes are mapped to Web Mercator in Rust.
    Geographic,
    /// Any other CRS: PostGIS transforms the boxes of tiny features.
    Projected,
}

impl SourceFrame {
    /// Maps a box of the query's tiny-feature columns to EPSG:3857.
    fn to_mercator(self, b: Bounds) -> Bounds {
        match self {
            Self::Mercator | Self::Projected => b,
            Self::Geographic => {
                let (xmin, ymin) = crate::tile::lonlat_to_mercator(b.xmin, b.ymin);
                let (xmax, ymax) = crate::tile::lonlat_to_mercator(b.xmax, b.ymax);
                Bounds {
                    xmin,
                    ymin,
                    xmax,
                    ymax,
                }
            }
        }
    }
}

/// The parts of a layer's tile query.
struct TileSql<'a> {
    cols: &'a str,
    inner: &'a str,
    qgeom: &'a str,
    qtable: &'a str,
    srid: i32,
    frame: SourceFrame,
    order: &'a str,
    filter: &'a str,
}

/// Builds a layer's tile query. Parameters: `$1..$4` the buffered tile envelope in
/// EPSG:3857, `$5` the simplification tolerance and `$6` the tiny-feature size, both in
/// EPSG:3857 metres. Columns: id, properties, `tiny`, WKB (EPSG:3857, NULL when tiny),
/// and the feature's box (EPSG:3857 for projected sources, else source units).
///
/// Work is done in the table's own SRID as far as possible: the envelope is transformed
/// once (densified, so its box covers curved edges), the feature box is read from the
/// geometry header (`postgis_getbbox`, no full decompression), sizes are compared in
/// source units scaled by the envelope's own ratio, and geometries are simplified
/// *before* they are reprojected, so the projection runs on the few remaining vertices
/// (three times faster at z7 on the demo data than transform-then-simplify).
fn build_tile_sql(q: &TileSql<'_>) -> String {
    let TileSql {
        cols,
        inner,
        qgeom,
        qtable,
        srid,
        frame,
        order,
        filter,
    } = *q;
    let (envelope, geometry) = if frame == SourceFrame::Mercator {
        (
            "ST_MakeEnvelope($1, $2, $3, $4, 3857)".to_owned(),
            "ST_Simplify(f.g, $5, false)".to_owned(),
        )
    } else {
        (
            format!(
                "ST_Transform(ST_Segmentize(ST_MakeEnvelope($1, $2, $3, $4, 3857), ($3 - $1) / 8), {srid})"
            ),
            "ST_Transform(ST_Simplify(f.g, $5 * LEAST(f.sx, f.sy), false), 3857)".to_owned(),
        )
    };
    let boxes = if frame == SourceFrame::Projected {
        format!(
            "ST_XMin(l.tb), ST_YMin(l.tb), ST_XMax(l.tb), ST_YMax(l.tb) FROM f \
             CROSS JOIN LATERAL (SELECT CASE WHEN f.tiny THEN \
               ST_Transform(ST_SetSRID(f.b::geometry, {srid}), 3857)::box2d END AS tb) AS l"
        )
    } else {
        "ST_XMin(f.b), ST_YMin(f.b), ST_XMax(f.b), ST_YMax(f.b) FROM f".to_owned()
    };
    format!(
        "WITH e AS (SELECT env, (ST_XMax(env) - ST_XMin(env)) / ($3 - $1) AS sx, \
                           (ST_YMax(env) - ST_YMin(env)) / ($4 - $2) AS sy \
                    FROM (SELECT {envelope} AS env) AS x), \
              f AS (SELECT {cols}, g, b, sx, sy, \
                      (ST_XMax(b) - ST_XMin(b)) < $6 * sx AND (ST_YMax(b) - ST_YMin(b)) < $6 * sy AS tiny \
                    FROM (SELECT {inner}, t.{qgeom} AS g, postgis_getbbox(t.{qgeom}) AS b, e.sx, e.sy \
                          FROM {qtable} AS t, e WHERE t.{qgeom} && e.env{filter}) AS s) \
         SELECT {cols}, f.tiny, CASE WHEN NOT f.tiny THEN ST_AsBinary({geometry}) END, {boxes} {order}"
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TinyPolicy {
    Reduce,
    Drop,
    Never,
}

impl VectorSource {
    /// What its tiles are made from besides the rows (not the data bounds, which follow
    /// the data), as text for [`super::Source::fingerprint`].
    pub fn fingerprint_text(&self) -> String {
        format!(
            "{:?}",
            (
                &self.name,
                &self.table,
                self.srid,
                &self.geometry_type,
                &self.properties,
                (self.minzoom, self.maxzoom, self.has_id),
                (self.tiny, self.frame),
                &self.sql,
                &self.sql_by_id,
                self.lowzoom.as_ref().map(|l| (&l.fingerprint, &l.sql)),
            )
        )
    }

    /// Renders one tile: the MVT bytes, or an empty vector for an empty tile.
    pub async fn render(
        self: &std::sync::Arc<Self>,
        pool: &Pool,
        tile: TileId,
    ) -> Result<Vec<u8>, SourceError> {
        self.render_filtered(pool, tile, None).await
    }

    /// Renders one tile of only the rows whose filter column (the id column unless
    /// inspected with another) equals `only`.
    pub async fn render_filtered(
        self: &std::sync::Arc<Self>,
        pool: &Pool,
        tile: TileId,
        only: Option<i64>,
    ) -> Result<Vec<u8>, SourceError> {
        let bounds = tile.bounds();
        let unit = (bounds.xmax - bounds.xmin) / f64::from(EXTENT);
        let envelope = bounds.buffered(unit * f64::from(BUFFER));
        let min_size = match self.tiny {
            TinyPolicy::Never => 0.0,
            TinyPolicy::Reduce | TinyPolicy::Drop => unit * PIXEL,
        };
        let tolerance = if tile.z >= self.maxzoom {
            unit
        } else {
            unit * SIMPLIFY_UNITS
        };
        let started = std::time::Instant::now();
        let rows = {
            let client = pool.get().await.map_err(SourceError::from_pool)?;
            let sql = match only {
                Some(_) => self.sql_by_id.as_ref().ok_or_else(|| {
                    SourceError::Internal(format!("layer `{}` has no id column", self.name))
                })?,
                None => &self.sql,
            };
            // Low zooms come from the generalized copies once they are built.
            let low = match &self.lowzoom {
                Some(lz) if only.is_none() && lz.covers(tile.z) => lz
                    .ready(&client)
                    .await
                    .map_err(SourceError::from_pg)?
                    .then_some(lz),
                _ => None,
            };
            if let Some(lz) = low {
                let statement = client
                    .prepare_cached(&lz.sql)
                    .await
                    .map_err(SourceError::from_pg)?;
                let z = i32::from(tile.z);
                client
                    .query(
                        &statement,
                        &[
                            &envelope.xmin,
                            &envelope.ymin,
                            &envelope.xmax,
                            &envelope.ymax,
                            &z,
                            &lz.source,
                        ],
                    )
                    .await
                    .map_err(SourceError::from_pg)?
            } else {
                let statement = client
                    .prepare_cached(sql)
                    .await
                    .map_err(SourceError::from_pg)?;
                let id = only.unwrap_or(0);
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
                    &envelope.xmin,
                    &envelope.ymin,
                    &envelope.xmax,
                    &envelope.ymax,
                    &tolerance,
                    &min_size,
                ];
                if only.is_some() {
                    params.push(&id);
                }
                client
                    .query(&statement, &params)
                    .await
                    .map_err(SourceError::from_pg)?
            }
        };
        let queried = started.elapsed();
        let this = std::sync::Arc::clone(self);
        let tile_bytes = tokio::task::spawn_blocking(move || {
            this.encode_rows(&rows, &bounds).map(|t| (t, rows.len()))
        })
        .await
        .map_err(|e| SourceError::Internal(format!("render task failed: {e}")))??;
        tracing::debug!(
            layer = %self.name,
            %tile,
            rows = tile_bytes.1,
            bytes = tile_bytes.0.len(),
            query_ms = queried.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "rendered"
        );
        Ok(tile_bytes.0)
    }

    /// Decodes rows and encodes the tile (CPU only: runs on a blocking thread).
    fn encode_rows(&self, rows: &[Row], bounds: &Bounds) -> Result<Vec<u8>, SourceError> {
        let n = self.properties.len();
        let mut features = Vec::with_capacity(rows.len());
        for row in rows {
            let tiny: bool = row.try_get(n + 1).map_err(SourceError::from_pg)?;
            let geom = if tiny {
                if self.tiny != TinyPolicy::Reduce {
                    continue;
                }
                let f = |i| nullable::<f64>(row, i);
                match (f(n + 3), f(n + 4), f(n + 5), f(n + 6)) {
                    (Some(xmin), Some(ymin), Some(xmax), Some(ymax)) => {
                        FeatureGeom::Tiny(self.frame.to_mercator(Bounds {
                            xmin,
                            ymin,
                            xmax,
                            ymax,
                        }))
                    }
                    _ => continue,
                }
            } else {
                let Some(wkb) = row
                    .try_get::<_, Option<&[u8]>>(n + 2)
                    .map_err(SourceError::from_pg)?
                else {
                    continue;
                };
                match geozero::wkb::Wkb(wkb).to_geo() {
                    Ok(g) => FeatureGeom::Full(g),
                    Err(e) => {
                        tracing::warn!(layer = %self.name, error = %e, "skipping a feature with unreadable WKB");
                        continue;
                    }
                }
            };
            let id = if self.has_id {
                nullable::<i64>(row, 0).and_then(|i| u64::try_from(i).ok())
            } else {
                None
            };
            let mut props = Vec::with_capacity(n);
            for (i, (_, kind)) in self.properties.iter().enumerate() {
                let col = i + 1;
                let value = match kind {
                    PropKind::Int => nullable(row, col).map(PropValue::Int),
                    PropKind::Float => nullable(row, col).map(PropValue::Float),
                    PropKind::Bool => nullable(row, col).map(PropValue::Bool),
                    PropKind::Str => nullable(row, col).map(PropValue::Str),
                };
                if let Some(v) = value {
                    props.push((i, v));
                }
            }
            features.push(Feature { id, props, geom });
        }
        encode::encode_layer(&self.name, bounds, &self.prop_names, &features)
            .map_err(|e| SourceError::Internal(e.to_string()))
    }
}

/// A nullable column; NULL and type mismatches (which the query's casts rule out) are
/// `None`.
fn nullable<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> Option<T> {
    row.try_get::<_, Option<T>>(index).ok().flatten()
}
