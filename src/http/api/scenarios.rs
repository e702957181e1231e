//! Scenarios of a plan: create (runs in the background), poll, read results, delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody, path_id};
use crate::accounts::access::Action;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::scenarios::{self, ScenarioConfig};
use crate::planning::{geometry, plans};

/// A scenario and, when done, its ranked project areas.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scenario {
    /// Id.
    pub id: i64,
    /// The plan.
    pub plan_id: i64,
    /// Name.
    pub name: String,
    /// pending, running, done or failed.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// What was asked.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Stand counts and acres (when done).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Project areas as a GeoJSON FeatureCollection, best first (when done).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub project_areas: Option<Value>,
}

fn pg(e: tokio_postgres::Error) -> ApiError {
    ApiError::from(&crate::source::SourceError::from_pg(e))
}

const SCENARIO_SQL: &str = "SELECT id, plan_id, name, status, reason, config::text, summary::text, \
    to_json(created_at)#>>'{}', to_json(finished_at)#>>'{}' FROM planscape.scenarios";

fn scenario_from(row: &tokio_postgres::Row) -> Scenario {
    let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    Scenario {
        id: row.get(0),
        plan_id: row.get(1),
        name: row.get(2),
        status: row.get(3),
        reason: row.get(4),
        config: parse(row.get(5)).unwrap_or(Value::Null),
        summary: parse(row.get(6)),
        created_at: row.get(7),
        finished_at: row.get(8),
        project_areas: None,
    }
}

/// The scenario and the caller's access to its plan (404 when the plan is hidden).
async fn load(
    client: &deadpool_postgres::Object,
    sid: i64,
    user: i64,
    action: Action,
) -> Result<Scenario, ApiError> {
    let row = client
        .query_opt(&format!("{SCENARIO_SQL} WHERE id = $1"), &[&sid])
        .await
        .map_err(pg)?
        .ok_or_else(|| ApiError::not_found("no such scenario"))?;
    let scenario = scenario_from(&row);
    match plans::authorize(&***client, scenario.plan_id, user, action).await {
        Ok(_) => Ok(scenario),
        Err(plans::PlanError::NotFound) => Err(ApiError::not_found("no such scenario")),
        Err(e) => Err(e.into()),
    }
}

/// Starts a scenario (collaborators and owners); 202 with the pending scenario.
#[utoipa::path(post, path = "/plans/{id}/scenarios", operation_id = "create_scenario", tag = "scenarios", request_body = ScenarioConfig,
    params(("id" = i64, Path, description = "plan id")),
    responses((status = 202, body = Scenario), (status = 403, description = "viewers cannot add scenarios"),
              (status = 404, description = "no such plan"), (status = 422, description = "invalid field")))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(mut config): JsonBody<ScenarioConfig>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    let plan = plans::authorize(&**client, id, auth.user.id, Action::AddScenario).await?;
    scenarios::check(&config, state.conditions.as_deref(), &plan.region)
        .map_err(|(field, message)| ApiError::invalid_field(&field, message))?;
    let budget = config.max_treatment_share * plan.area_acres;
    if budget < f64::from(config.stand_size_acres) {
        return Err(ApiError::invalid_field(
            "stand_size_acres",
            format!(
                "the budget ({budget:.0} acres: max_treatment_share of the plan's {:.0}) holds no stand of {} acres",
                plan.area_acres, config.stand_size_acres
            ),
        ));
    }
    let exclude = match &config.exclude {
        Some(value) => {
            let (bare, _) = geometry::extract(value, state.config.accounts.plan_max_vertices)
                .map_err(|e| ApiError::invalid_field("exclude", e))?;
            plans::check_shape(&**client, &bare.to_string(), "exclude").await?;
            Some((
                geometry::to_multipolygon(&bare)
                    .map_err(|e| ApiError::invalid_field("exclude", e))?,
                bare,
            ))
        }
        None => None,
    };
    // Stored is the bare geometry, not a Feature's properties (free text, possibly with
    // characters PostgreSQL's jsonb refuses).
    let exclude = exclude.map(|(shape, bare)| {
        config.exclude = Some(bare);
        shape
    });
    let shape = geometry::to_multipolygon(plan.geometry.as_ref().unwrap_or(&Value::Null))
        .map_err(ApiError::internal)?;
    let stored = serde_json::to_string(&config).map_err(ApiError::internal)?;
    let row = client
        .query_one(
            &format!(
                "WITH s AS (INSERT INTO planscape.scenarios (plan_id, created_by, name, config) \
                 VALUES ($1, $2, $3, $4::text::jsonb) RETURNING *) {} ",
                SCENARIO_SQL.replace("planscape.scenarios", "s")
            ),
            &[&id, &auth.user.id, &config.name.trim(), &stored],
        )
        .await
        .map_err(pg)?;
    let scenario = scenario_from(&row);
    let sid = scenario.id;
    let task_state = Arc::clone(&state);
    tokio::spawn(async move {
        // The heartbeat goes while the run is queued or running, and stops with it.
        let outcome = tokio::select! {
            outcome = execute(&task_state, sid, config, plan, shape, exclude) => outcome,
            () = crate::planning::runs::keep_alive(&task_state.pool, sid) => Ok(()),
        };
        if let Err(reason) = outcome {
            tracing::warn!(scenario = sid, %reason, "scenario failed");
            record_failure(&task_state, sid, &reason).await;
        }
    });
    Ok((StatusCode::ACCEPTED, Json(scenario)).into_response())
}

/// Marks a scenario failed with its reason, retrying while the database is away (up to
/// about a minute; after that its stopped heartbeat gets it swept, see `planning::runs`).
async fn record_failure(state: &AppState, sid: i64, reason: &str) {
    for attempt in 0..8u32 {
        let written = match state.pool.get().await {
            Ok(client) => client
                .execute(
                    "UPDATE planscape.scenarios SET status = 'failed', reason = $2, finished_at = now() WHERE id = $1",
                    &[&sid, &reason],
                )
                .await
                .map_err(|e| crate::db::error_chain(&e)),
            Err(e) => Err(crate::db::error_chain(&e)),
        };
        match written {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(scenario = sid, error = %e, attempt, "cannot record the failure yet");
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt.min(4))).await;
            }
        }
    }
    tracing::error!(scenario = sid, "the failure could not be recorded");
}

/// Runs a scenario and writes its results in one transaction.
async fn execute(
    state: &Arc<AppState>,
    sid: i64,
    config: ScenarioConfig,
    plan: plans::Plan,
    shape: geo_types::MultiPolygon<f64>,
    exclude: Option<geo_types::MultiPolygon<f64>>,
) -> Result<(), String> {
    // At most one run per core at a time (each run sweeps rasters on every core);
    // others wait as `pending`.
    static RUNS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _permit = RUNS.acquire().await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    {
        // No connection held during the run.
        let client = state
            .pool
            .get()
            .await
            .map_err(|e| crate::db::error_chain(&e))?;
        client
            .execute(
                "UPDATE planscape.scenarios SET status = 'running' WHERE id = $1",
                &[&sid],
            )
            .await
            .map_err(|e| crate::db::error_chain(&e))?;
    }
    let conditions = state.conditions.clone().ok_or("no conditions catalog")?;
    let region = plan.region.clone();
    let acres = plan.area_acres;
    let outcome = tokio::task::spawn_blocking(move || {
        scenarios::run(
            &config,
            &conditions,
            &region,
            &shape,
            acres,
            exclude.as_ref(),
        )
    })
    .await
    .map_err(|e| e.to_string())??;
    let computed = started.elapsed().as_secs_f64();
    let mut client = state
        .pool
        .get()
        .await
        .map_err(|e| crate::db::error_chain(&e))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| crate::db::error_chain(&e))?;
    for area in &outcome.areas {
        tx.execute(
            "INSERT INTO planscape.project_areas (scenario_id, rank, score, area_acres, stand_count, geom) \
             VALUES ($1, $2, $3, $4, $5, ST_Multi(ST_Transform(ST_GeomFromText($6, 5070), 4326)))",
            &[&sid, &area.rank, &area.score, &area.acres, &(area.stand_count as i32), &area.outline],
        )
        .await
        .map_err(|e| crate::db::error_chain(&e))?;
    }
    let mut summary = serde_json::to_value(&outcome).map_err(|e| e.to_string())?;
    summary["seconds"] = json!(started.elapsed().as_secs_f64());
    summary["compute_seconds"] = json!(computed);
    summary["project_areas"] = json!(outcome.areas.len());
    tx.execute(
        "UPDATE planscape.scenarios SET status = 'done', summary = $2::text::jsonb, finished_at = now() WHERE id = $1",
        &[&sid, &summary.to_string()],
    )
    .await
    .map_err(|e| crate::db::error_chain(&e))?;
    tx.commit().await.map_err(|e| crate::db::error_chain(&e))?;
    tracing::info!(
        scenario = sid,
        seconds = started.elapsed().as_secs_f64(),
        "scenario done"
    );
    Ok(())
}

/// The plan's scenarios (any member).
#[utoipa::path(get, path = "/plans/{id}/scenarios", operation_id = "list_scenarios", tag = "scenarios", params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = [Scenario]), (status = 404, description = "no such plan")))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<Scenario>>, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::View).await?;
    let rows = client
        .query(
            &format!("{SCENARIO_SQL} WHERE plan_id = $1 ORDER BY id DESC"),
            &[&id],
        )
        .await
        .map_err(pg)?;
    Ok(Json(rows.iter().map(scenario_from).collect()))
}

/// One scenario: its status to poll, and its ranked project areas when done.
#[utoipa::path(get, path = "/scenarios/{sid}", operation_id = "get_scenario", tag = "scenarios", params(("sid" = i64, Path, description = "scenario id")),
    responses((status = 200, body = Scenario), (status = 404, description = "no such scenario")))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(sid): Path<String>,
) -> Result<Json<Scenario>, ApiError> {
    let sid = path_id(&sid, "scenario")?;
    let client = state.db().await?;
    let mut scenario = load(&client, sid, auth.user.id, Action::View).await?;
    if scenario.status == "done" {
        let row = client
            .query_one(
                "SELECT coalesce(json_build_object('type', 'FeatureCollection', 'features', \
                   coalesce(json_agg(json_build_object('type', 'Feature', 'id', id, \
                     'properties', json_build_object('rank', rank, 'score', score, 'area_acres', area_acres, 'stand_count', stand_count), \
                     'geometry', ST_AsGeoJSON(geom, 7)::json) ORDER BY rank), '[]'::json))::text, '') \
                 FROM planscape.project_areas WHERE scenario_id = $1",
                &[&sid],
            )
            .await
            .map_err(pg)?;
        let text: String = row.get(0);
        scenario.project_areas = serde_json::from_str(&text).ok();
    }
    Ok(Json(scenario))
}

/// Deletes a scenario (owners).
#[utoipa::path(delete, path = "/scenarios/{sid}", operation_id = "delete_scenario", tag = "scenarios", params(("sid" = i64, Path, description = "scenario id")),
    responses((status = 204, description = "deleted"), (status = 403, description = "owners only"),
              (status = 404, description = "no such scenario")))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sid = path_id(&sid, "scenario")?;
    let client = state.db().await?;
    load(&client, sid, auth.user.id, Action::Edit).await?;
    client
        .execute("DELETE FROM planscape.scenarios WHERE id = $1", &[&sid])
        .await
        .map_err(pg)?;
    Ok(StatusCode::NO_CONTENT)
}
