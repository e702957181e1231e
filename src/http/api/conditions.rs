//! The conditions catalog, statistics of conditions over an area, and plan scores.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody};
use crate::accounts::access::Action;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::conditions::{Conditions, Level, Node};
use crate::planning::geometry;
use crate::planning::stats::{self, ZonalStats};

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

/// A statistics request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsRequest {
    /// Region of the conditions.
    pub region: String,
    /// Conditions (metric, element or pillar names of the region).
    pub conditions: Vec<String>,
    /// GeoJSON Polygon or MultiPolygon in longitude, latitude (or a Feature of one).
    #[schema(value_type = Object)]
    pub geometry: Value,
    /// Normalized (default) or raw values.
    #[serde(default)]
    pub values: Values,
}

/// Statistics of one condition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConditionStats {
    /// The condition.
    pub condition: String,
    /// Its level.
    #[schema(value_type = String)]
    pub level: String,
    /// Valid pixels whose centre is inside.
    pub count: u64,
    /// Nodata pixels whose centre is inside.
    pub nodata: u64,
    /// Sum of the valid values.
    pub sum: f64,
    /// Minimum (null without valid pixels).
    pub min: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Poor / Fair / Ok / Good / Excellent of the mean (normalized values).
    pub band: Option<String>,
}

/// Statistics of several conditions.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    /// Region.
    pub region: String,
    /// Which values.
    pub values: Values,
    /// One entry per condition, in the order asked.
    pub results: Vec<ConditionStats>,
}

/// Most conditions in one statistics request.
const MAX_CONDITIONS: usize = 100;

fn catalog(state: &AppState) -> Result<&Conditions, ApiError> {
    state
        .conditions
        .as_deref()
        .ok_or_else(|| ApiError::not_found("no conditions catalog is configured"))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Pillar => "pillar",
        Level::Element => "element",
        Level::Metric => "metric",
    }
}

/// Computes statistics of `nodes` over `shape`, each raster on a blocking thread, at
/// most two per core at once.
pub async fn compute(
    nodes: Vec<Node>,
    values: Values,
    shape: Arc<geo_types::MultiPolygon<f64>>,
) -> Result<Vec<ConditionStats>, ApiError> {
    use futures_util::StreamExt;
    let parallel = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    let results: Vec<Result<ConditionStats, ApiError>> = futures_util::stream::iter(nodes)
        .map(|node| {
            let shape = Arc::clone(&shape);
            async move {
                let path = match values {
                    Values::Normalized => node.normalized.clone(),
                    Values::Raw => node.raw.clone().unwrap_or_default(),
                };
                let computed: ZonalStats = tokio::task::spawn_blocking(move || {
                    stats::zonal_stats_pooled(&path, 1, &shape)
                })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "condition_unavailable",
                        format!(
                            "the raster of `{}` cannot be read (run `planscape conditions build`?): {e}",
                            node.name
                        ),
                    )
                })?;
                let band = match (values, computed.mean) {
                    (Values::Normalized, Some(m)) => Some(stats::band(m).to_owned()),
                    _ => None,
                };
                Ok(ConditionStats {
                    condition: node.name.clone(),
                    level: level_name(node.level).to_owned(),
                    count: computed.count,
                    nodata: computed.nodata,
                    sum: computed.sum,
                    min: computed.min,
                    max: computed.max,
                    mean: computed.mean,
                    band,
                })
            }
        })
        .buffered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The catalog: regions, pillars, elements, metrics, with their tile layers.
#[utoipa::path(get, path = "/conditions", tag = "conditions",
    responses((status = 200, description = "the tree per region"), (status = 404, description = "no catalog")))]
pub async fn tree(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let c = catalog(&state)?;
    let layer = |region: &str, name: &str| {
        c.node(region, name)
            .map(|n| json!({ "layer": n.layer, "raw_layer": n.raw_layer }))
            .unwrap_or(Value::Null)
    };
    let regions: Vec<Value> = c
        .catalog
        .regions
        .iter()
        .map(|r| {
            let pillars: Vec<Value> = r
                .pillars
                .iter()
                .map(|p| {
                    let elements: Vec<Value> = p
                        .elements
                        .iter()
                        .map(|e| {
                            let metrics: Vec<Value> = e
                                .metrics
                                .iter()
                                .map(|m| {
                                    let mut v = json!(m);
                                    v["layer"] = layer(&r.name, &m.name)["layer"].clone();
                                    v["raw_layer"] = layer(&r.name, &m.name)["raw_layer"].clone();
                                    v
                                })
                                .collect();
                            json!({ "name": e.name, "display_name": e.display_name,
                                    "operation": e.operation, "layer": layer(&r.name, &e.name)["layer"],
                                    "metrics": metrics })
                        })
                        .collect();
                    json!({ "name": p.name, "display_name": p.display_name, "operation": p.operation,
                            "display": p.display, "layer": layer(&r.name, &p.name)["layer"],
                            "elements": elements })
                })
                .collect();
            json!({ "name": r.name, "display_name": r.display_name, "pillars": pillars })
        })
        .collect();
    Ok(Json(json!({ "regions": regions })))
}

/// One node's metadata.
#[utoipa::path(get, path = "/conditions/{region}/{name}", tag = "conditions",
    params(("region" = String, Path, description = "region"), ("name" = String, Path, description = "condition")),
    responses((status = 200, body = Node), (status = 404, description = "unknown condition")))]
pub async fn node(
    State(state): State<Arc<AppState>>,
    Path((region, name)): Path<(String, String)>,
) -> Result<Json<Node>, ApiError> {
    let c = catalog(&state)?;
    c.node(&region, &name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no condition `{name}` in region `{region}`")))
}

/// The latitude limit of Web Mercator (EPSG:3857), in degrees.
const MAX_MERCATOR_LAT: f64 = 85.051_128_78;

/// Statistics of conditions over a drawn area. A pixel counts when its centre is inside.
#[utoipa::path(post, path = "/conditions/stats", tag = "conditions", request_body = StatsRequest,
    responses((status = 200, body = StatsResponse), (status = 401, description = "not signed in"),
              (status = 422, description = "invalid field")))]
pub async fn area_stats(
    State(state): State<Arc<AppState>>,
    _auth: Auth,
    JsonBody(form): JsonBody<StatsRequest>,
) -> Result<Json<StatsResponse>, ApiError> {
    let c = catalog(&state)?;
    if !c.catalog.regions.iter().any(|r| r.name == form.region) {
        let known: Vec<&str> = c.catalog.regions.iter().map(|r| r.name.as_str()).collect();
        return Err(ApiError::invalid_field(
            "region",
            format!("unknown region (one of: {})", known.join(", ")),
        ));
    }
    if form.conditions.is_empty() || form.conditions.len() > MAX_CONDITIONS {
        return Err(ApiError::invalid_field(
            "conditions",
            format!("name 1 to {MAX_CONDITIONS} conditions"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(i) = form.conditions.iter().position(|c| !seen.insert(c)) {
        return Err(ApiError::invalid_field(
            &format!("conditions[{i}]"),
            "appears twice",
        ));
    }
    let mut nodes = Vec::new();
    for (i, name) in form.conditions.iter().enumerate() {
        let field = format!("conditions[{i}]");
        let node = match c.node(&form.region, name) {
            Some(n) => n,
            None if c.nodes.keys().any(|(_, n)| n == name) => {
                return Err(ApiError::invalid_field(
                    &field,
                    format!("`{name}` is not a condition of region `{}`", form.region),
                ));
            }
            None => {
                return Err(ApiError::invalid_field(
                    &field,
                    format!("unknown condition `{name}`"),
                ));
            }
        };
        if form.values == Values::Raw && node.raw.is_none() {
            return Err(ApiError::invalid_field(
                &field,
                format!("`{name}` is not a metric: it has no raw values"),
            ));
        }
        nodes.push(node.clone());
    }
    let limits = state.config.accounts.plan_max_vertices;
    let (bare, _) = geometry::extract(&form.geometry, limits)
        .map_err(|e| ApiError::invalid_field("geometry", e))?;
    // Validity by PostGIS (indexed), the connection given back before the raster work.
    {
        let client = state.db().await?;
        crate::planning::plans::check_shape(&**client, &bare.to_string(), "geometry").await?;
    }
    let shape =
        geometry::to_multipolygon(&bare).map_err(|e| ApiError::invalid_field("geometry", e))?;
    // Rasters in Web Mercator cannot place the poles: refused up front rather than
    // failing on each raster.
    if geo::BoundingRect::bounding_rect(&shape)
        .is_some_and(|r| r.min().y < -MAX_MERCATOR_LAT || r.max().y > MAX_MERCATOR_LAT)
    {
        return Err(ApiError::invalid_field(
            "geometry",
            format!("latitudes must lie within ±{MAX_MERCATOR_LAT}° (Web Mercator's range)"),
        ));
    }
    let acres = crate::planning::stands::to_albers(&shape)
        .map(|a| geo::Area::unsigned_area(&a) / crate::planning::units::M2_PER_ACRE)
        .map_err(|e| ApiError::invalid_field("geometry", e))?;
    let limit = state.config.accounts.plan_max_area_acres;
    if acres > limit {
        return Err(ApiError::invalid_field(
            "geometry",
            format!("covers {acres:.0} acres, more than the limit of {limit:.0}"),
        ));
    }
    let results = compute(nodes, form.values, Arc::new(shape)).await?;
    Ok(Json(StatsResponse {
        region: form.region,
        values: form.values,
        results,
    }))
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

/// Every condition of the plan's region over the plan, kept in the database and
/// recomputed when the plan's geometry changes.
#[utoipa::path(get, path = "/plans/{id}/scores", tag = "conditions", params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = Scores), (status = 401, description = "not signed in"),
              (status = 404, description = "no such plan")))]
pub async fn plan_scores(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Scores>, ApiError> {
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::not_found("no such plan"))?;
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from(&crate::source::SourceError::from_pool(e)))?;
    let db = |e: tokio_postgres::Error| ApiError::from(&crate::source::SourceError::from_pg(e));
    let plan = crate::planning::plans::authorize(&**client, id, auth.user.id, Action::View).await?;
    let row = client
        .query_opt(
            "SELECT md5(ST_AsBinary(p.geom)), s.geom_md5, to_json(s.computed_at)#>>'{}', s.scores::text, \
                    CASE WHEN s.geom_md5 IS DISTINCT FROM md5(ST_AsBinary(p.geom)) \
                         THEN ST_AsGeoJSON(p.geom, 7) END \
             FROM planscape.plans p LEFT JOIN planscape.plan_scores s ON s.plan_id = p.id WHERE p.id = $1",
            &[&id],
        )
        .await
        .map_err(db)?
        .ok_or_else(|| ApiError::not_found("no such plan"))?;
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
        return Ok(Json(Scores {
            plan_id: id,
            region: plan.region,
            computed_at: at,
            scores,
        }));
    }
    let nodes: Vec<Node> = state
        .conditions
        .as_deref()
        .map(|c| c.region_nodes(&plan.region).into_iter().cloned().collect())
        .unwrap_or_default();
    // (No geometry in the row: kept scores for this geometry that did not parse; the
    // plan's, read by `authorize`, is then the same geometry.)
    let geometry: Value = match geometry {
        Some(text) => serde_json::from_str(&text).map_err(|e| ApiError::internal(e.to_string()))?,
        None => plan.geometry.clone().unwrap_or(Value::Null),
    };
    let shape =
        geometry::to_multipolygon(&geometry).map_err(|e| ApiError::internal(e.to_string()))?;
    // No connection held while the rasters are read.
    drop(client);
    let scores = compute(nodes, Values::Normalized, Arc::new(shape)).await?;
    let client = state
        .pool
        .get()
        .await
        .map_err(|e| ApiError::from(&crate::source::SourceError::from_pool(e)))?;
    let text = serde_json::to_string(&scores).map_err(|e| ApiError::internal(e.to_string()))?;
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
        .await
        .map_err(db)?;
    Ok(Json(Scores {
        plan_id: id,
        region: plan.region,
        computed_at: row.get(0),
        scores,
    }))
}
