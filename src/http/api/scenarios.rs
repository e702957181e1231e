//! Scenarios of a plan: create (runs in the background), poll, read results, delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::extract::{Auth, JsonBody, path_id};
use crate::accounts::access::Action;
use crate::analytics::{Event, EventKind};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::plans;
use crate::planning::scenarios::export::{self, ExportFormat};
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
    let analytics = Arc::clone(&state.analytics);
    let (user, sid) = (auth.user.id, scenario.id);
    runner::spawn(
        state.pool.clone(),
        state.conditions.clone(),
        scenario.id,
        job,
        Box::new(move |end: runner::RunEnd| {
            let mut event = Event::new(EventKind::ScenarioRun, Some(user))
                .plan(id)
                .scenario(sid)
                .detail(if end.done { "done" } else { "failed" });
            event.duration = Some(end.duration);
            analytics.record(event);
        }),
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

/// The export's format.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `geojson`, `shapefile` (a zip) or `csv` (outlines as WKT).
    pub format: ExportFormat,
}

/// A done scenario's ranked project areas as a file (any member): GeoJSON, a zipped
/// Shapefile or CSV, in EPSG:4326, with rank, score, area_acres and stands.
#[utoipa::path(get, path = "/scenarios/{sid}/export", operation_id = "export_scenario", tag = "scenarios",
    params(("sid" = i64, Path, description = "scenario id"), ExportQuery),
    responses(
        (status = 200, description = "the file, as an attachment", content(
            (Object = "application/geo+json"), (Vec<u8> = "application/zip"), (String = "text/csv"))),
        (status = 400, description = "missing or unknown format"),
        (status = 404, description = "no such scenario"),
        (status = 409, description = "the scenario is not done")))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(sid): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let sid = path_id(&sid, "scenario")?;
    let Query(ExportQuery { format }) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!(
                "{}: format must be geojson, shapefile or csv",
                e.body_text()
            ),
        )
    })?;
    let client = state.db().await?;
    let scenario = store::authorize(&**client, sid, auth.user.id, Action::View).await?;
    if scenario.status != "done" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_done",
            format!(
                "scenario {sid} is {}: only a done scenario can be exported",
                scenario.status
            ),
        ));
    }
    let rows = export::rows(&**client, sid).await?;
    drop(client);
    let bytes = crate::raster_threads::run(move || export::write(&rows, format))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    state.analytics.record(
        Event::new(EventKind::Export, Some(auth.user.id))
            .scenario(sid)
            .detail(format.name()),
    );
    let filename = format!("scenario-{sid}-project-areas.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
