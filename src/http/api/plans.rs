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
use crate::accounts::access::{self, Action, Role};
use crate::analytics::{Event, EventKind};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::planning::invitations::{self, InviteLimits, ReceivedInvitation, SentInvitation};
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

/// An invitation to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The invited person's email (they need not have an account yet).
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
        min_area_acres: state.config.accounts.plan_min_area_acres,
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
    state.analytics.record(
        Event::new(EventKind::PlanCreated, Some(auth.user.id))
            .plan(id)
            .detail("drawn"),
    );
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
    state
        .analytics
        .record(Event::new(EventKind::PlanChanged, Some(auth.user.id)).plan(id));
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

/// The plan's owner and members (any member may look); owners also see the pending
/// invitations (`status: pending`, with `invitation_id`, no name or user id).
#[utoipa::path(get, path = "/plans/{id}/members", tag = "sharing", params(("id" = i64, Path, description = "plan id")),
    responses((status = 200, body = [Member]), (status = 404, description = "no such plan")))]
pub async fn members(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let id = path_id(&id, "plan")?;
    let client = state.db().await?;
    let plan = plans::authorize(&**client, id, auth.user.id, Action::ListMembers).await?;
    let mut list = plans::members(&**client, id).await?;
    if access::allows(plan.role, Action::ManageMembers) {
        list.extend(invitations::pending_for_plan(&**client, id).await?);
    }
    Ok(Json(list))
}

/// The invitation limits of the configuration.
fn invite_limits(state: &AppState) -> InviteLimits {
    InviteLimits {
        max_pending: state.config.accounts.invitations_max_pending,
        per_hour: state.config.accounts.invitations_per_hour,
    }
}

/// Invites an email to the plan with a role (owners). The invitation waits for the
/// person with that email (now or once they sign up) to accept it; the answer is the
/// same whether or not an account has the email. At most `invitations_max_pending`
/// pending and `invitations_per_hour` sent per inviter (429 beyond).
#[utoipa::path(post, path = "/plans/{id}/members", tag = "sharing", request_body = NewMember,
    params(("id" = i64, Path, description = "plan id")),
    responses((status = 201, body = SentInvitation), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan"),
              (status = 422, description = "not an email address, an existing member, or an unknown role"),
              (status = 429, description = "too many invitations pending or sent in the last hour")))]
pub async fn invite(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(form): JsonBody<NewMember>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "plan")?;
    let mut client = state.db().await?;
    let plan = plans::authorize(&**client, id, auth.user.id, Action::ManageMembers).await?;
    match invitations::invite(
        &mut client,
        &plan,
        auth.user.id,
        &form.email,
        form.role,
        invite_limits(&state),
    )
    .await
    {
        Ok(sent) => {
            state.analytics.record(
                Event::new(EventKind::PlanShared, Some(auth.user.id))
                    .plan(id)
                    .detail(form.role.as_str()),
            );
            Ok((StatusCode::CREATED, Json(sent)).into_response())
        }
        Err(plans::PlanError::TooManyInvitations {
            retry_after_s,
            message,
        }) => Ok(super::auth::rate_limited(retry_after_s, &message)),
        Err(e) => Err(e.into()),
    }
}

/// Revokes a pending invitation (owners).
#[utoipa::path(delete, path = "/plans/{id}/invitations/{invitation_id}", tag = "sharing",
    params(("id" = i64, Path, description = "plan id"), ("invitation_id" = i64, Path, description = "invitation id")),
    responses((status = 204, description = "revoked"), (status = 403, description = "role does not allow"),
              (status = 404, description = "no such plan or pending invitation")))]
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path((id, invitation)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (id, invitation) = (path_id(&id, "plan")?, path_id(&invitation, "invitation")?);
    let client = state.db().await?;
    plans::authorize(&**client, id, auth.user.id, Action::ManageMembers).await?;
    invitations::revoke(&**client, id, invitation).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The invitations waiting for the signed-in user's answer, with each plan's name and
/// the inviter's name.
#[utoipa::path(get, path = "/invitations", tag = "sharing",
    responses((status = 200, body = [ReceivedInvitation]), (status = 401, description = "not signed in")))]
pub async fn received(
    State(state): State<Arc<AppState>>,
    auth: Auth,
) -> Result<Json<Vec<ReceivedInvitation>>, ApiError> {
    let client = state.db().await?;
    Ok(Json(
        invitations::received(&**client, &auth.user.email).await?,
    ))
}

/// Accepts an invitation addressed to the signed-in user: they get the offered role,
/// and the plan is returned as they now see it.
#[utoipa::path(post, path = "/invitations/{id}/accept", tag = "sharing",
    params(("id" = i64, Path, description = "invitation id")),
    responses((status = 200, body = Plan), (status = 401, description = "not signed in"),
              (status = 404, description = "no such pending invitation for this user")))]
pub async fn accept(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Plan>, ApiError> {
    let id = path_id(&id, "invitation")?;
    let mut client = state.db().await?;
    let plan_id = invitations::accept(&mut client, id, auth.user.id, &auth.user.email).await?;
    Ok(Json(
        plans::authorize(&**client, plan_id, auth.user.id, Action::View).await?,
    ))
}

/// Declines an invitation addressed to the signed-in user: no access is given.
#[utoipa::path(post, path = "/invitations/{id}/decline", tag = "sharing",
    params(("id" = i64, Path, description = "invitation id")),
    responses((status = 204, description = "declined"), (status = 401, description = "not signed in"),
              (status = 404, description = "no such pending invitation for this user")))]
pub async fn decline(
    State(state): State<Arc<AppState>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "invitation")?;
    let client = state.db().await?;
    invitations::decline(&**client, id, &auth.user.email).await?;
    Ok(StatusCode::NO_CONTENT)
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
