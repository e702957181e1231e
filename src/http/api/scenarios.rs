//! Scenarios of a plan: create (runs in the background), poll, read results, delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::{Auth, JsonBody, path_id};
use crate::accounts::access::Action;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::plans;
use crate::planning::scenarios::store::{self, Scenario};
use crate::planning::scenarios::{self, ScenarioConfig, runner};

/// Starts a scenario (collaborators and owners); 202 with the pending scenario.
#[utoipa::path(post, path = "/plans/{id}/scenarios", operation_id = "create_scenario", tag = "scenarios", request_body = ScenarioConfig,
    params(("id" = i64, Path, description = "plan id")),
    responses((status = 202, body = Scenario), (status = 403, description = "viewers cannot add scenarios"),
              (status = 404, description = "no such plan"), (status = 422, description = "invalid field")))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(config): JsonBody<ScenarioConfig>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    let plan = plans::authorize(&**client, id, auth.user.id, Action::AddScenario).await?;
    let job = scenarios::prepare(
        &**client,
        state.conditions.as_deref(),
        plan,
        config,
        state.config.accounts.plan_max_vertices,
    )
    .await?;
    let scenario = store::insert(&**client, id, auth.user.id, &job.config).await?;
    runner::spawn(
        state.pool.clone(),
        state.conditions.clone(),
        scenario.id,
        job,
    );
    Ok((StatusCode::ACCEPTED, Json(scenario)).into_response())
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
    Ok(Json(store::list(&**client, id).await?))
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
    let mut scenario = store::authorize(&**client, sid, auth.user.id, Action::View).await?;
    if scenario.status == "done" {
        scenario.project_areas = store::project_areas(&**client, sid).await?;
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
    store::authorize(&**client, sid, auth.user.id, Action::Edit).await?;
    store::delete(&**client, sid).await?;
    Ok(StatusCode::NO_CONTENT)
}
