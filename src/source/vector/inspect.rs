//! Start-up inspection of a vector layer: the table, its columns and their types, the
//! geometry's SRID and extent, checked against the database and turned into the
//! prepared tile queries.

use super::lowzoom::{LowZoom, LowZoomSql};
use super::{PropKind, SourceFrame, TileSql, TinyPolicy, VectorSource, build_tile_sql};
use crate::config::VectorLayerConfig;
use crate::db::quote_ident;

impl VectorSource {
    /// Checks the layer against the database (table, columns, types, SRID) and prepares
    /// its tile query. The error names the layer and what is wrong.
    pub async fn inspect(
        client: &tokio_postgres::Client,
        name: &str,
        cfg: &VectorLayerConfig,
    ) -> Result<Self, String> {
        Self::inspect_filtered(client, name, cfg, cfg.id.as_deref()).await
    }

    /// As [`VectorSource::inspect`], with [`VectorSource::render_filtered`] selecting
    /// rows by the integer column `filter` (the id column by default).
    pub async fn inspect_filtered(
        client: &tokio_postgres::Client,
        name: &str,
        cfg: &VectorLayerConfig,
        filter: Option<&str>,
    ) -> Result<Self, String> {
        let table_row = client
            .query_opt(
                "SELECT n.nspname::text, c.relname::text, c.oid \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass($1)",
                &[&quote_ident(&cfg.table)],
            )
            .await
            .map_err(|e| format!("cannot look up table `{}`: {e}", cfg.table))?
            .ok_or_else(|| format!("table `{}` does not exist", cfg.table))?;
        let (schema, table, oid): (String, String, u32) =
            (table_row.get(0), table_row.get(1), table_row.get(2));
        let columns = client
            .query(
                "SELECT a.attname::text, t.typname::text, a.atttypmod \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&oid],
            )
            .await
            .map_err(|e| format!("cannot read columns of `{}`: {e}", cfg.table))?;
        let column = |wanted: &str| -> Result<(String, i32), String> {
            columns
                .iter()
                .find(|r| r.get::<_, String>(0) == wanted)
                .map(|r| (r.get::<_, String>(1), r.get::<_, i32>(2)))
                .ok_or_else(|| format!("column `{wanted}` does not exist in `{}`", cfg.table))
        };
        let (geom_type, typmod) = column(&cfg.geometry)?;
        if geom_type != "geometry" {
            return Err(format!(
                "column `{}` is `{geom_type}`, not a PostGIS geometry",
                cfg.geometry
            ));
        }
        let qtable = quote_ident(&format!("{schema}.{table}"));
        let qgeom = quote_ident(&cfg.geometry);
        let meta = client
            .query_one(
                &format!(
                    "SELECT postgis_typmod_srid($1), upper(postgis_typmod_type($1)), \
                     (SELECT ST_SRID({qgeom}) FROM {qtable} WHERE {qgeom} IS NOT NULL LIMIT 1)"
                ),
                &[&typmod],
            )
            .await
            .map_err(|e| format!("cannot read the geometry column: {e}"))?;
        let declared: i32 = meta.get(0);
        let sampled: Option<i32> = meta.get(2);
        let srid = if declared > 0 {
            declared
        } else {
            sampled.unwrap_or(0)
        };
        if srid <= 0 {
            return Err(format!(
                "geometry column `{}` has no SRID: constrain it, e.g. geometry(MultiPolygon, 4326)",
                cfg.geometry
            ));
        }
        let geometry_type: String = meta.get(1);
        let tiny = if geometry_type.contains("POLYGON") {
            TinyPolicy::Reduce
        } else if geometry_type.contains("LINE") {
            TinyPolicy::Drop
        } else {
            TinyPolicy::Never
        };
        let mut select = Vec::new();
        let has_id = match &cfg.id {
            Some(id) => {
                let (t, _) = column(id)?;
                if !matches!(t.as_str(), "int2" | "int4" | "int8") {
                    return Err(format!(
                        "id column `{id}` is `{t}`; an integer column is needed"
                    ));
                }
                select.push(format!("t.{}::int8", quote_ident(id)));
                true
            }
            None => {
                select.push("NULL::int8".to_owned());
                false
            }
        };
        let mut properties = Vec::new();
        for p in &cfg.properties {
            let (t, _) = column(p)?;
            let kind = PropKind::from_pg_type(&t);
            select.push(format!("t.{}{}", quote_ident(p), kind.cast()));
            properties.push((p.clone(), kind));
        }
        let proj4: Option<String> = client
            .query_opt(
                "SELECT proj4text::text FROM spatial_ref_sys WHERE srid = $1",
                &[&srid],
            )
            .await
            .map_err(|e| format!("cannot read spatial_ref_sys: {e}"))?
            .and_then(|r| r.get(0));
        let frame = if srid == 3857 {
            SourceFrame::Mercator
        } else if proj4
            .as_deref()
            .is_some_and(|p| p.contains("+proj=longlat"))
        {
            SourceFrame::Geographic
        } else {
            SourceFrame::Projected
        };
        let order = if has_id { "ORDER BY 1" } else { "" };
        // Column aliases keep the outer query independent of user column names.
        let aliases: Vec<String> = std::iter::once("__id".to_owned())
            .chain((0..properties.len()).map(|i| format!("__p{i}")))
            .collect();
        let inner = select
            .iter()
            .zip(&aliases)
            .map(|(expr, alias)| format!("{expr} AS {alias}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cols = aliases.join(", ");
        let mut tile_sql = TileSql {
            cols: &cols,
            inner: &inner,
            qgeom: &qgeom,
            qtable: &qtable,
            srid,
            frame,
            order,
            filter: "",
        };
        let sql = build_tile_sql(&tile_sql);
        // The same query for one feature (`$7` = its id), for per-object layers.
        let id_filter = filter.map(|column| format!(" AND t.{}::int8 = $7", quote_ident(column)));
        let sql_by_id = id_filter.as_ref().map(|f| {
            tile_sql.filter = f;
            build_tile_sql(&tile_sql)
        });
        let lowzoom = match (cfg.lowzoom_maxzoom, cfg.id.as_deref()) {
            (None, _) => None,
            (Some(_), None) => {
                return Err("`lowzoom_maxzoom` needs an `id` column".to_owned());
            }
            (Some(maxzoom), Some(id)) => {
                let qid = quote_ident(id);
                // Properties left out at the copies' zooms read as NULL (absent).
                let inner_low = select
                    .iter()
                    .zip(&aliases)
                    .enumerate()
                    .map(|(i, (expr, alias))| {
                        let kept = i == 0
                            || cfg.lowzoom_properties.as_ref().is_none_or(|keep| {
                                properties
                                    .get(i - 1)
                                    .is_some_and(|(name, _)| keep.contains(name))
                            });
                        if kept {
                            format!("{expr} AS {alias}")
                        } else {
                            let cast = properties.get(i - 1).map_or("", |(_, k)| k.cast());
                            format!("NULL{cast} AS {alias}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let lz = LowZoom::new(
                    &format!("{schema}.{table}"),
                    oid,
                    id,
                    &cfg.geometry,
                    cfg.minzoom,
                    maxzoom,
                    &LowZoomSql {
                        inner: &inner_low,
                        qtable: &qtable,
                        qid: &qid,
                        qgeom: &qgeom,
                        srid,
                        frame,
                        properties: properties.len(),
                    },
                );
                client
                    .prepare(&lz.sql)
                    .await
                    .map_err(|e| format!("low-zoom tile query does not prepare: {e}"))?;
                Some(lz)
            }
        };
        let bounds_row = client
            .query_one(
                &format!(
                    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM \
                     (SELECT ST_Transform(ST_SetSRID(ST_Extent({qgeom})::geometry, {srid}), 4326)::box2d AS e \
                      FROM {qtable}) AS x"
                ),
                &[],
            )
            .await
            .map_err(|e| format!("cannot compute the extent: {e}"))?;
        let bounds = match (
            bounds_row.get::<_, Option<f64>>(0),
            bounds_row.get::<_, Option<f64>>(1),
            bounds_row.get::<_, Option<f64>>(2),
            bounds_row.get::<_, Option<f64>>(3),
        ) {
            (Some(w), Some(s), Some(e), Some(n)) => Some([w, s, e, n]),
            _ => None,
        };
        // Prepare once now so that a broken query is reported at start-up, not per request.
        client
            .prepare(&sql)
            .await
            .map_err(|e| format!("tile query does not prepare: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            table: format!("{schema}.{table}"),
            srid,
            geometry_type,
            prop_names: properties.iter().map(|(n, _)| n.clone()).collect(),
            properties,
            bounds,
            minzoom: cfg.minzoom,
            maxzoom: cfg.maxzoom,
            description: cfg.description.clone(),
            attribution: cfg.attribution.clone(),
            has_id,
            tiny,
            frame,
            sql,
            sql_by_id,
            lowzoom,
        })
    }
}
