//! Generalized low-zoom copies of a vector layer (`lowzoom_maxzoom`).
//!
//! At the zooms where a layer's features are a few pixels or less, a tile made from the
//! source reads every vertex of thousands of features to draw a few pixels each. For
//! those zooms the server keeps, beside the table, each feature's *pixel cover* per
//! zoom (`planscape.lowzoom_features`, migration V9): the union of the zoom's screen
//! pixels whose centres the feature contains. A low-zoom tile then reads a few vertices
//! per feature and rasterizes at 256 px exactly like the source geometry (a feature
//! that contains no pixel centre is left out at that zoom, as a renderer would).
//!
//! Freshness: a row trigger records inserted, deleted and re-shaped ids in
//! `planscape.lowzoom_dirty`; tile
//! queries compute those rows' covers live (the same SQL function) instead of reading
//! their copies, so a change shows in the next tile. The change listener then refreshes
//! the dirty rows ([`Generalizer`]). Until a source's copies are built (or when they
//! were built for other zooms), tiles are rendered from the table as before.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{SourceFrame, VectorSource};
use crate::config::DatabaseConfig;
use crate::db::{self, quote_ident};
use crate::source::Source;
use crate::tiles::TileService;

/// Version of the cover algorithm; part of the fingerprint, so a change rebuilds.
const ALGORITHM: &str = "pixel_cover/1";

/// A layer's generalized copies.
#[derive(Debug)]
pub struct LowZoom {
    /// Lowest zoom with copies (the layer's minzoom).
    pub minzoom: u8,
    /// Highest zoom served from the copies.
    pub maxzoom: u8,
    /// Key of the copies: `schema.table.geometry`.
    pub source: String,
    /// What the copies are built from; compared with `planscape.lowzoom_sources`.
    pub fingerprint: String,
    table: String,
    id_column: String,
    geom_column: String,
    /// The tile query over the copies.
    pub(super) sql: String,
}

/// The parts of a layer's low-zoom tile query.
pub(super) struct LowZoomSql<'a> {
    /// Id and property expressions over `t` with their aliases (as the main query's).
    pub inner: &'a str,
    /// Quoted table.
    pub qtable: &'a str,
    /// Quoted id column.
    pub qid: &'a str,
    /// Quoted geometry column.
    pub qgeom: &'a str,
    /// Source SRID.
    pub srid: i32,
    /// Source frame.
    pub frame: SourceFrame,
    /// The number of property columns.
    pub properties: usize,
}

impl LowZoom {
    /// The copies of `schema.table` (relation `oid`; `geom_column`, `id_column`) for zooms
    /// `minzoom..=maxzoom`, with the tile query built from `q`.
    pub(super) fn new(
        table: &str,
        oid: u32,
        id_column: &str,
        geom_column: &str,
        minzoom: u8,
        maxzoom: u8,
        q: &LowZoomSql<'_>,
    ) -> Self {
        let source = format!("{table}.{geom_column}");
        Self {
            minzoom,
            maxzoom,
            // The table's oid: a table dropped and made again (its trigger gone with it)
            // is rebuilt.
            fingerprint: format!(
                "{ALGORITHM} {source} oid={oid} id={id_column} z={minzoom}-{maxzoom}"
            ),
            source,
            table: table.to_owned(),
            id_column: id_column.to_owned(),
            geom_column: geom_column.to_owned(),
            sql: build_sql(q),
        }
    }

    /// Whether zoom `z` is served from the copies (once built).
    pub fn covers(&self, z: u8) -> bool {
        (self.minzoom..=self.maxzoom).contains(&z)
    }

    /// Whether the copies in the database were built for this layer's zooms.
    pub async fn ready(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<bool, tokio_postgres::Error> {
        let row = client
            .query_opt(
                "SELECT fingerprint FROM planscape.lowzoom_sources WHERE source = $1",
                &[&self.source],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get::<_, String>(0) == self.fingerprint))
    }

    /// Installs the dirty-row trigger, then builds the copies when they are missing or
    /// stale, else refreshes the dirty rows. Returns whether it rebuilt.
    pub async fn ensure(&self, client: &tokio_postgres::Client) -> Result<bool, String> {
        let trigger = format!(
            "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR DELETE OR UPDATE OF {}, {} ON {} \
             FOR EACH ROW EXECUTE FUNCTION planscape.lowzoom_mark_dirty({}, {})",
            quote_ident(&format!("planscape_lowzoom_{}", self.geom_column)),
            quote_ident(&self.geom_column),
            quote_ident(&self.id_column),
            quote_ident(&self.table),
            quote_literal(&self.source),
            quote_literal(&self.id_column),
        );
        client
            .batch_execute(&trigger)
            .await
            .map_err(|e| format!("cannot install the low-zoom trigger: {e}"))?;
        let rebuild = !self.ready(client).await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let rows = self.refresh_with(client, rebuild).await?;
        tracing::info!(
            source = %self.source,
            rebuild,
            rows,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "low-zoom copies up to date"
        );
        Ok(rebuild)
    }

    /// Recomputes the dirty rows' copies; returns how many copies were written.
    pub async fn refresh(&self, client: &tokio_postgres::Client) -> Result<i64, String> {
        self.refresh_with(client, false).await
    }

    async fn refresh_with(
        &self,
        client: &tokio_postgres::Client,
        rebuild: bool,
    ) -> Result<i64, String> {
        let (zmin, zmax) = (i32::from(self.minzoom), i32::from(self.maxzoom));
        let row = client
            .query_one(
                "SELECT planscape.lowzoom_refresh($1, $2::text::regclass, $3, $4, $5, $6, $7, $8)",
                &[
                    &self.source,
                    &quote_ident(&self.table),
                    &self.id_column,
                    &self.geom_column,
                    &zmin,
                    &zmax,
                    &self.fingerprint,
                    &rebuild,
                ],
            )
            .await
            .map_err(|e| format!("low-zoom refresh of {} failed: {e}", self.source))?;
        Ok(row.get(0))
    }
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The tile query over the copies. Parameters as the main query's `$1..$4` (the
/// buffered envelope in EPSG:3857), `$5` the zoom (int4) and `$6` the source key.
/// Columns as the main query's: id, properties, `tiny` (false), WKB, four NULL box
/// columns. Dirty rows are computed live from the table.
fn build_sql(q: &LowZoomSql<'_>) -> String {
    let LowZoomSql {
        inner,
        qtable,
        qid,
        qgeom,
        srid,
        frame,
        properties,
    } = *q;
    let source_env = if frame == SourceFrame::Mercator {
        "e.env".to_owned()
    } else {
        format!("ST_Transform(ST_Segmentize(e.env, ($3 - $1) / 8), {srid})")
    };
    let cols = std::iter::once("__id".to_owned())
        .chain((0..properties).map(|i| format!("__p{i}")))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH e AS (SELECT ST_MakeEnvelope($1, $2, $3, $4, 3857) AS env), \
              d AS (SELECT id FROM planscape.lowzoom_dirty WHERE source = $6::text), \
              c AS (SELECT l.id, l.geom AS g FROM planscape.lowzoom_features AS l, e \
                    WHERE l.source = $6 AND l.z = $5::int4 AND l.geom && e.env \
                      AND NOT EXISTS (SELECT 1 FROM d WHERE d.id = l.id) \
                    UNION ALL \
                    SELECT x.id, x.g FROM (SELECT t.{qid}::int8 AS id, \
                             planscape.pixel_cover(t.{qgeom}, $5::int4) AS g \
                           FROM {qtable} AS t, e \
                           WHERE t.{qgeom} && {source_env} AND t.{qid} IN (SELECT id FROM d)) AS x, e \
                    WHERE x.g && e.env), \
              r AS (SELECT {inner}, c.g FROM c JOIN {qtable} AS t ON t.{qid} = c.id) \
         SELECT {cols}, false, ST_AsBinary(r.g), NULL::float8, NULL::float8, NULL::float8, NULL::float8 \
         FROM r ORDER BY 1"
    )
}

impl VectorSource {
    /// The layer's generalized copies, if configured.
    pub fn lowzoom(&self) -> Option<&LowZoom> {
        self.lowzoom.as_ref()
    }
}

/// Keeps the low-zoom copies of every layer up to date: builds them at start (in the
/// background; tiles render from the tables until then) and refreshes a table's dirty
/// rows when its change notification arrives.
#[derive(Clone)]
pub struct Generalizer {
    tx: mpsc::UnboundedSender<Option<String>>,
}

impl Generalizer {
    /// Starts the worker over the vector layers of `tiles` with copies; `None` when no
    /// layer has any.
    pub fn spawn(db: DatabaseConfig, tiles: Arc<TileService>) -> Option<Self> {
        let sources: Vec<(String, Arc<VectorSource>)> = tiles
            .catalog()
            .iter()
            .filter_map(|(_, layer)| match &layer.source {
                Ok(Source::Vector(v)) if v.lowzoom.is_some() => {
                    Some((layer.name.clone(), Arc::clone(v)))
                }
                _ => None,
            })
            .collect();
        if sources.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, tiles, sources, rx));
        // Build (or catch up) at start.
        let _ = tx.send(None);
        Some(Self { tx })
    }

    /// A table changed: refresh the dirty rows of its layers' copies.
    pub fn table_changed(&self, table: &str) {
        let _ = self.tx.send(Some(table.to_owned()));
    }

    /// Notifications may have been missed: check every layer's copies.
    pub fn all_changed(&self) {
        let _ = self.tx.send(None);
    }
}

async fn run(
    db: DatabaseConfig,
    tiles: Arc<TileService>,
    sources: Vec<(String, Arc<VectorSource>)>,
    mut rx: mpsc::UnboundedReceiver<Option<String>>,
) {
    while let Some(first) = rx.recv().await {
        // Coalesce what queued up meanwhile: `None` means every source.
        let mut all = first.is_none();
        let mut tables: BTreeSet<String> = first.into_iter().collect();
        while let Ok(next) = rx.try_recv() {
            match next {
                Some(t) => {
                    tables.insert(t);
                }
                None => all = true,
            }
        }
        let client = match db::connect(&db).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "low-zoom copies: cannot connect; tiles use the tables");
                continue;
            }
        };
        for (name, source) in &sources {
            let Some(lz) = source.lowzoom.as_ref() else {
                continue;
            };
            if all {
                match lz.ensure(&client).await {
                    // Tiles cached from the table before the build: render again.
                    Ok(true) => tiles.layer_changed(name),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(layer = %name, error = %e, "low-zoom copies unavailable")
                    }
                }
            } else if tables.contains(&source.table)
                && let Err(e) = lz.refresh(&client).await
            {
                tracing::warn!(layer = %name, error = %e, "low-zoom refresh failed (tiles still fresh: dirty rows render live)");
            }
        }
    }
}
