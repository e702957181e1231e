//! The conditions catalog, statistics of conditions over an area, and plan scores.

use crate::tile::MAX_LATITUDE;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody, path_id};
use crate::accounts::access::Action;
use crate::analytics::{Event, EventKind};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::conditions::{Conditions, Node};
use crate::planning::scores::{self, ConditionStats, Scores, Values, compute};
use crate::planning::stats_memo::StatsMemo;
use crate::planning::{geometry, plans};

/// A statistics request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsRequest {
    /// Region of the conditions.
    pub region: String,
    /// Conditions (metric, element or pillar names of the region; metrics only for
    /// raw values), distinct.
    #[schema(min_items = 1, max_items = 100)]
    pub conditions: Vec<String>,
    /// GeoJSON Polygon or MultiPolygon in longitude, latitude (or a Feature of one).
    #[schema(value_type = Object)]
    pub geometry: Value,
    /// Normalized (default) or raw values.
    #[serde(default)]
    pub values: Values,
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

fn catalog(state: &AppState) -> Result<&Conditions, ApiError> {
    state
        .conditions
        .as_deref()
        .ok_or_else(|| ApiError::not_found("no conditions catalog is configured"))
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

/// Statistics of conditions over a drawn area. A pixel counts when its centre is inside.
#[utoipa::path(post, path = "/conditions/stats", tag = "conditions", request_body = StatsRequest,
    responses((status = 200, body = StatsResponse), (status = 401, description = "not signed in"),
              (status = 422, description = "invalid field")))]
pub async fn area_stats(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    JsonBody(form): JsonBody<StatsRequest>,
) -> Result<Json<StatsResponse>, ApiError> {
    let c = catalog(&state)?;
    let nodes = scores::select(c, &form.region, &form.conditions, form.values)?;
    let limits = state.config.accounts.plan_max_vertices;
    let (bare, _) = geometry::extract(&form.geometry, limits)
        .map_err(|e| ApiError::invalid_field("geometry", e))?;
    // Validity by PostGIS (indexed), the connection given back before the raster work.
    {
        let client = state.db().await?;
        plans::check_shape(&**client, &bare.to_string(), "geometry").await?;
    }
    let shape =
        geometry::to_multipolygon(&bare).map_err(|e| ApiError::invalid_field("geometry", e))?;
    // Rasters in Web Mercator cannot place the poles: refused up front rather than
    // failing on each raster.
    let rect = geo::BoundingRect::bounding_rect(&shape);
    if rect.is_some_and(|r| r.min().y < -MAX_LATITUDE || r.max().y > MAX_LATITUDE) {
        return Err(ApiError::invalid_field(
            "geometry",
            format!("latitudes must lie within ±{MAX_LATITUDE:.6}° (Web Mercator's range)"),
        ));
    }
    // A ring wider than a hemisphere wraps in any projection (-180° and 180° are one
    // meridian): its area would come out near zero and pass the limit below.
    if rect.is_some_and(|r| r.width() > 180.0) {
        return Err(ApiError::invalid_field(
            "geometry",
            "spans more than 180° of longitude",
        ));
    }
    // The memo key (the rasters' stamps: file metadata, no GDAL or PROJ) off the async
    // threads, on the blocking pool: a repeated area is answered without waiting for a
    // raster thread behind renders. Only areas that passed the checks below were kept.
    let shape = Arc::new(shape);
    let memo_key = {
        let (region, nodes, geometry) = (form.region.clone(), nodes.clone(), bare.to_string());
        let values = form.values;
        tokio::task::spawn_blocking(move || StatsMemo::key(&region, values, &nodes, &geometry))
            .await
            .map_err(|e| ApiError::internal(format!("statistics task failed: {e}")))?
    };
    // The same area, conditions and rasters as a request before: its results.
    if let Some(results) = state.stats_memo.get(memo_key).await {
        state
            .analytics
            .record(Event::new(EventKind::ScoresRead, Some(auth.user.id)).detail("area"));
        return Ok(Json(StatsResponse {
            region: form.region,
            values: form.values,
            results: results.as_ref().clone(),
        }));
    }
    // The area in acres (PROJ) on a raster thread: no other thread gets a PROJ context.
    let acres = {
        let shape = Arc::clone(&shape);
        crate::raster_threads::run(move || {
            crate::planning::stands::to_albers(&shape)
                .map(|a| geo::Area::unsigned_area(&a) / crate::planning::units::M2_PER_ACRE)
        })
        .await
        .map_err(|e| ApiError::internal(format!("statistics task failed: {e}")))?
    };
    let acres = acres.map_err(|e| ApiError::invalid_field("geometry", e))?;
    let limit = state.config.accounts.plan_max_area_acres;
    if acres > limit {
        return Err(ApiError::invalid_field(
            "geometry",
            format!("covers {acres:.0} acres, more than the limit of {limit:.0}"),
        ));
    }
    // A budget on the pixels read, checked from the rasters' headers before any is read;
    // an area that none of the region's rasters covers is refused too.
    let pixels = scores::pixels_to_read(&nodes, form.values, Arc::clone(&shape)).await?;
    if pixels == 0 {
        return Err(ApiError::invalid_field(
            "geometry",
            format!("lies outside the rasters of region `{}`", form.region),
        ));
    }
    let budget = state.config.accounts.stats_max_pixels;
    if pixels > budget {
        return Err(ApiError::invalid_field(
            "geometry",
            format!(
                "would read {pixels} raster pixels over the {} conditions, more than the \
                 budget of {budget}: draw a smaller area or ask for fewer conditions",
                nodes.len()
            ),
        ));
    }
    let results = compute(nodes, form.values, shape).await?;
    state
        .stats_memo
        .insert(memo_key, Arc::new(results.clone()))
        .await;
    state
        .analytics
        .record(Event::new(EventKind::ScoresRead, Some(auth.user.id)).detail("area"));
    Ok(Json(StatsResponse {
        region: form.region,
        values: form.values,
        results,
    }))
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
    let id = path_id(&id, "plan")?;
    let plan = {
        let client = state.db().await?;
        plans::authorize(&**client, id, auth.user.id, Action::View).await?
    };
    let scores = scores::plan_scores(&state.pool, state.conditions.as_deref(), &plan).await?;
    state
        .analytics
        .record(Event::new(EventKind::ScoresRead, Some(auth.user.id)).plan(id));
    Ok(Json(scores))
}
