//! Plans (planning areas) and their members.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody, path_id};
use crate::accounts::access::{Action, Role};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::plans::{self, Limits, Member, Plan, Region};

/// A new plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Name.
    pub name: String,
    /// Region slug (`GET /regions`).
    pub region: String,
    /// GeoJSON Polygon or MultiPolygon in longitude, latitude (or a Feature, or a
    /// FeatureCollection of one feature), inside California.
    #[schema(value_type = Object)]
    pub geometry: Value,
}

/// Changes to a plan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    /// New name.
    pub name: Option<String>,
    /// New geometry (as for creation).
    #[schema(value_type = Option<Object>)]
    pub geometry: Option<Value>,
}

/// An invitation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The invited user's email.
    pub email: String,
    /// Their role.
    pub role: Role,
}

/// A role change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
}

/// The plan limits of the configuration.
pub(super) fn limits(state: &AppState) -> Limits {
    Limits {
        max_area_acres: state.config.accounts.plan_max_area_acres,
        max_vertices: state.config.accounts.plan_max_vertices,
    }
}

/// The planning regions.
#[utoipa::path(get, path = "/regions", tag = "plans", responses((status = 200, body = [Region])))]
pub async fn regions(State(state): State<Arc<AppState>>) -> Result<Json<Vec<Region>>, ApiError> {
    let client = state.db().await?;
    Ok(Json(plans::regions(&**client).await?))
}

/// Plans the user owns or is a member of (without geometries).
#[utoipa::path(get, path = "/plans", operation_id = "list_plans", tag = "plans",
    responses((status = 200, body = [Plan]), (status = 401, description = "not signed in")))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    auth: Auth,
) -> Result<Json<Vec<Plan>>, ApiError> {
    let client = state.db().await?;
    Ok(Json(plans::list(&**client, auth.user.id).await?))
}

/// Creates a plan owned by the user.
#[utoipa::path(post, path = "/plans", operation_id = "create_plan", tag = "plans", request_body = NewPlan,
    responses((status = 201, body = Plan), (status = 401, description = "not signed in"),
              (status = 413, description = "body too large"), (status = 422, description = "invalid field")))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    JsonBody(form): JsonBody<NewPlan>,
) -> Result<Response, ApiError> {
    let name = plans::check_name(&form.name)?;
    let client = state.db().await?;
    plans::check_region(&**client, &form.region).await?;
    let (geojson, acres) =
        plans::check_input_geometry(&**client, &form.geometry, &limits(&state)).await?;
    let id = plans::create(
        &**client,
        auth.user.id,
        &name,
        &form.region,
        &geojson,
        acres,
    )
    .await?;
    let plan = plans::get(&**client, id, auth.user.id)
        .await?
        .ok_or_else(|| ApiError::internal("created plan vanished"))?;
    Ok((StatusCode::CREATED, Json(plan)).into_response())
}

/// One plan with its geometry.
#[utoipa::path(get, path = "/plans/{id}", operation_id = "get_plan", tag = "plans", params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = Plan), (status = 401, description = "not signed in"),
              (status = 404, description = "no such plan, or no role on it")))]
pub async fn get(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Plan>, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    Ok(Json(
        plans::authorize(&**client, id, auth.user.id, Action::View).await?,
    ))
}

/// Renames a plan and/or replaces its geometry (owners).
#[utoipa::path(patch, path = "/plans/{id}", operation_id = "update_plan", tag = "plans", request_body = PlanChange,
    params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = Plan), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan"), (status = 422, description = "invalid field")))]
pub async fn update(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<PlanChange>,
) -> Result<Json<Plan>, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::Edit).await?;
    let name = change.name.as_deref().map(plans::check_name).transpose()?;
    let geometry = match &change.geometry {
        Some(g) => Some(plans::check_input_geometry(&**client, g, &limits(&state)).await?),
        None => None,
    };
    plans::update(
        &**client,
        id,
        name.as_deref(),
        geometry.as_ref().map(|(g, a)| (g.as_str(), *a)),
    )
    .await?;
    Ok(Json(
        plans::authorize(&**client, id, auth.user.id, Action::View).await?,
    ))
}

/// Deletes a plan (owners).
#[utoipa::path(delete, path = "/plans/{id}", operation_id = "delete_plan", tag = "plans", params(("id" = i64, Path, description = "plan id")),
    responses((status = 204, description = "deleted"), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan")))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::Delete).await?;
    plans::delete(&**client, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The plan's owner and members (any member may look).
#[utoipa::path(get, path = "/plans/{id}/members", tag = "sharing", params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = [Member]), (status = 404, description = "no such plan")))]
pub async fn members(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::ListMembers).await?;
    Ok(Json(plans::members(&**client, id).await?))
}

/// Shares the plan with a user by email, with a role (owners).
#[utoipa::path(post, path = "/plans/{id}/members", tag = "sharing", request_body = NewMember,
    params(("id" = i64, Path, description = "plan id")),
    responses((status = 201, body = Member), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan"), (status = 422, description = "unknown email or role"),
              (status = 429, description = "too many unknown emails")))]
pub async fn invite(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(form): JsonBody<NewMember>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "plan")?;
    // Invites naming no account tell that the email has none: limited per inviting
    // user like failed logins, so they cannot be used to list who has an account.
    let probe_key = format!("invite:{}", auth.user.id);
    if let Some(wait) = state.login_limiter.blocked(&probe_key) {
        return Ok(super::auth::rate_limited(
            wait,
            "too many invitations of unknown emails; try again later",
        ));
    }
    let client = state.db().await?;
    let plan = plans::authorize(&**client, id, auth.user.id, Action::ManageMembers).await?;
    match plans::add_member(&**client, &plan, &form.email, form.role).await {
        Ok(member) => Ok((StatusCode::CREATED, Json(member)).into_response()),
        Err(e @ plans::PlanError::Invalid { field: "email", .. }) => {
            state.login_limiter.failed(&probe_key);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Changes a member's role (owners).
#[utoipa::path(patch, path = "/plans/{id}/members/{user_id}", tag = "sharing", request_body = RoleChange,
    params(("id" = i64, Path, description = "plan id"), ("user_id" = i64, Path, description = "member's user id")),
    responses((status = 204, description = "changed"), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan or member")))]
pub async fn change_role(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path((id, member)): Path<(String, String)>,
    JsonBody(form): JsonBody<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let (id, member) = (path_id(&id, "plan")?, path_id(&member, "member")?);
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::ManageMembers).await?;
    plans::set_member_role(&**client, id, member, form.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (owners; any member may remove themselves).
#[utoipa::path(delete, path = "/plans/{id}/members/{user_id}", tag = "sharing",
    params(("id" = i64, Path, description = "plan id"), ("user_id" = i64, Path, description = "member's user id")),
    responses((status = 204, description = "removed"), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan or member")))]
pub async fn remove(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path((id, member)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (id, member) = (path_id(&id, "plan")?, path_id(&member, "member")?);
    let client = state.db().await?;
    let action = if member == auth.user.id {
        Action::View
    } else {
        Action::ManageMembers
    };
    plans::authorize(&**client, id, auth.user.id, action).await?;
    plans::remove_member(&**client, id, member).await?;
    Ok(StatusCode::NO_CONTENT)
}
