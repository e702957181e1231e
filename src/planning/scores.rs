//! Statistics of conditions over an area, and a plan's scores: every condition of its
//! region over the plan, kept in the database and recomputed when its geometry changes.

use std::sync::Arc;

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::conditions::{Conditions, Level, Node};
use super::geometry::{self, GeometryError};
use super::plans::Plan;
use super::scan::RasterError;
use super::stats::{self, ZonalStats};
use crate::db::DbError;

/// A statistics or scores failure, mapped to HTTP in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// A field of the request is unacceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (`conditions[2]`).
        field: String,
        /// Why.
        message: String,
    },
    /// A condition's raster cannot be read.
    #[error(
        "the raster of `{condition}` cannot be read (run `planscape conditions build`?): {source}"
    )]
    Raster {
        /// The condition.
        condition: String,
        /// Why.
        source: RasterError,
    },
    /// The plan is gone.
    #[error("no such plan")]
    NotFound,
    /// The plan's stored geometry cannot be read.
    #[error("the plan's geometry cannot be read: {0}")]
    Geometry(#[from] GeometryError),
    /// Stored or computed scores cannot be (de)serialized.
    #[error("scores: {0}")]
    Json(#[from] serde_json::Error),
    /// A blocking task failed.
    #[error("{0}")]
    Task(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbError),
}

impl From<tokio_postgres::Error> for ScoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e.into())
    }
}

/// Which values statistics are computed on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Values {
    /// Normalized values in [-1, 1] (scores; every node has them).
    #[default]
    Normalized,
    /// Raw values (metrics only).
    Raw,
}

/// Statistics of one condition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConditionStats {
    /// The condition.
    pub condition: String,
    /// Its level.
    #[schema(value_type = String)]
    pub level: String,
    /// Its statistics: valid and nodata pixels whose centre is inside, and the sum, min,
    /// max and mean of the valid values (null without any).
    #[serde(flatten)]
    pub stats: ZonalStats,
    /// Poor / Fair / Ok / Good / Excellent of the mean (normalized values).
    pub band: Option<String>,
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pillar => "pillar",
        Level::Element => "element",
        Level::Metric => "metric",
    }
}

/// Most conditions in one statistics request.
pub const MAX_CONDITIONS: usize = 100;

/// The nodes of `names` in `region` whose `values` statistics are asked for: 1 to
/// [`MAX_CONDITIONS`] distinct conditions of the region (metrics only for raw values).
pub fn select(
    conditions: &Conditions,
    region: &str,
    names: &[String],
    values: Values,
) -> Result<Vec<Node>, ScoreError> {
    let invalid = |field: &str, message: String| ScoreError::Invalid {
        field: field.to_owned(),
        message,
    };
    let regions = &conditions.catalog.regions;
    if !regions.iter().any(|r| r.name == region) {
        let known: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
        return Err(invalid(
            "region",
            format!("unknown region (one of: {})", known.join(", ")),
        ));
    }
    if names.is_empty() || names.len() > MAX_CONDITIONS {
        return Err(invalid(
            "conditions",
            format!("name 1 to {MAX_CONDITIONS} conditions"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(i) = names.iter().position(|c| !seen.insert(c)) {
        return Err(invalid(&format!("conditions[{i}]"), "appears twice".into()));
    }
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("conditions[{i}]");
        let node = match conditions.node(region, name) {
            Some(n) => n,
            None if conditions.nodes.keys().any(|(_, n)| n == name) => {
                return Err(invalid(
                    &field,
                    format!("`{name}` is not a condition of region `{region}`"),
                ));
            }
            None => return Err(invalid(&field, format!("unknown condition `{name}`"))),
        };
        if values == Values::Raw && node.raw.is_none() {
            return Err(invalid(
                &field,
                format!("`{name}` is not a metric: it has no raw values"),
            ));
        }
        nodes.push(node.clone());
    }
    Ok(nodes)
}

/// Pixels that statistics of `nodes` over `shape` would read, over all their rasters
/// (see [`stats::window_pixels`]), and whether the shape touches any of them. One
/// blocking task: each raster's header only.
pub async fn pixels_to_read(
    nodes: &[Node],
    values: Values,
    shape: Arc<geo_types::MultiPolygon<f64>>,
) -> Result<u64, ScoreError> {
    let rasters: Vec<(String, std::path::PathBuf)> = nodes
        .iter()
        .map(|node| {
            let path = match values {
                Values::Normalized => node.normalized.clone(),
                Values::Raw => node.raw.clone().unwrap_or_default(),
            };
            (node.name.clone(), path)
        })
        .collect();
    crate::raster_threads::run(move || {
        let mut total: u64 = 0;
        for (condition, path) in rasters {
            let pixels = stats::window_pixels(&path, &shape)
                .map_err(|source| ScoreError::Raster { condition, source })?;
            total = total.saturating_add(pixels);
        }
        Ok(total)
    })
    .await
    .map_err(|e| ScoreError::Task(e.to_string()))?
}

/// Computes statistics of `nodes` over `shape`, each raster on a raster thread, at most
/// as many at once as there are raster threads.
pub async fn compute(
    nodes: Vec<Node>,
    values: Values,
    shape: Arc<geo_types::MultiPolygon<f64>>,
) -> Result<Vec<ConditionStats>, ScoreError> {
    use futures_util::StreamExt;
    let parallel = crate::raster_threads::threads();
    let results: Vec<Result<ConditionStats, ScoreError>> = futures_util::stream::iter(nodes)
        .map(|node| {
            let shape = Arc::clone(&shape);
            async move {
                let path = match values {
                    Values::Normalized => node.normalized.clone(),
                    Values::Raw => node.raw.clone().unwrap_or_default(),
                };
                let computed: ZonalStats =
                    crate::raster_threads::run(move || stats::zonal_stats_pooled(&path, 1, &shape))
                        .await
                        .map_err(|e| ScoreError::Task(e.to_string()))?
                        .map_err(|source| ScoreError::Raster {
                            condition: node.name.clone(),
                            source,
                        })?;
                let band = match (values, computed.mean) {
                    (Values::Normalized, Some(m)) => Some(stats::band(m).to_owned()),
                    _ => None,
                };
                Ok(ConditionStats {
                    condition: node.name.clone(),
                    level: level_name(node.level).to_owned(),
                    stats: computed,
                    band,
                })
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A plan's scores.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scores {
    /// The plan.
    pub plan_id: i64,
    /// Its region.
    pub region: String,
    /// When they were computed (RFC 3339).
    pub computed_at: String,
    /// Every condition of the region (normalized values).
    pub scores: Vec<ConditionStats>,
}

/// The scores of `plan` (already authorized): kept ones when they are for its current
/// geometry, else computed (no connection held meanwhile) and kept while the plan still
/// has the geometry they were computed for.
pub async fn plan_scores(
    pool: &Pool,
    conditions: Option<&Conditions>,
    plan: &Plan,
) -> Result<Scores, ScoreError> {
    let id = plan.id;
    let client = pool.get().await.map_err(DbError::from)?;
    let row = client
        .query_opt(
            "SELECT md5(ST_AsBinary(p.geom)), s.geom_md5, to_json(s.computed_at)#>>'{}', s.scores::text, \
                    CASE WHEN s.geom_md5 IS DISTINCT FROM md5(ST_AsBinary(p.geom)) \
                         THEN ST_AsGeoJSON(p.geom, 7) END \
             FROM planscape.plans p LEFT JOIN planscape.plan_scores s ON s.plan_id = p.id WHERE p.id = $1",
            &[&id],
        )
        .await?
        .ok_or(ScoreError::NotFound)?;
    // The geometry and its md5 from one statement (a change landing in between cannot
    // pair new-geometry md5 with old-geometry scores); the geometry only when the kept
    // scores are not for it.
    let (current, stored_md5, computed_at, stored, geometry): (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if let (Some(md5), Some(at), Some(text)) = (stored_md5, computed_at, stored)
        && md5 == current
        && let Ok(scores) = serde_json::from_str::<Vec<ConditionStats>>(&text)
    {
        return Ok(Scores {
            plan_id: id,
            region: plan.region.clone(),
            computed_at: at,
            scores,
        });
    }
    let nodes: Vec<Node> = conditions
        .map(|c| c.region_nodes(&plan.region).into_iter().cloned().collect())
        .unwrap_or_default();
    // (No geometry in the row: kept scores for this geometry that did not parse; the
    // plan's, read by `authorize`, is then the same geometry.)
    let geometry: Value = match geometry {
        Some(text) => serde_json::from_str(&text)?,
        None => plan.geometry.clone().unwrap_or(Value::Null),
    };
    let shape = geometry::to_multipolygon(&geometry)?;
    // No connection held while the rasters are read.
    drop(client);
    let scores = compute(nodes, Values::Normalized, Arc::new(shape)).await?;
    let client = pool.get().await.map_err(DbError::from)?;
    let text = serde_json::to_string(&scores)?;
    // Kept only while the plan still has the geometry they were computed for (it may
    // have changed or gone during the computation: then they are answered, not kept).
    let row = client
        .query_one(
            "WITH kept AS (INSERT INTO planscape.plan_scores (plan_id, geom_md5, scores) \
                 SELECT $1, $2, $3::text::jsonb FROM planscape.plans \
                 WHERE id = $1 AND md5(ST_AsBinary(geom)) = $2 \
             ON CONFLICT (plan_id) DO UPDATE SET geom_md5 = EXCLUDED.geom_md5, scores = EXCLUDED.scores, computed_at = now() \
             RETURNING computed_at) \
             SELECT to_json(coalesce((SELECT computed_at FROM kept), now()))#>>'{}'",
            &[&id, &current, &text],
        )
        .await?;
    Ok(Scores {
        plan_id: id,
        region: plan.region.clone(),
        computed_at: row.get(0),
        scores,
    })
}
