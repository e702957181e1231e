//! Deleting one's own account (`DELETE /auth/account`, with the password): the rule of
//! what goes with it is in [`crate::accounts::deletion`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{confirm_current_password, secure, session_cookie};
use super::extract::{Auth, JsonBody, unauthorized};
use crate::accounts::deletion;
use crate::http::AppState;
use crate::http::error::ApiError;

/// The confirmation of an account deletion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// The account's current password.
    pub password: String,
}

/// Deletes the signed-in account: its sessions end, the plans it alone owns are deleted
/// with their scenarios, plans it co-owns pass to the other owner, its memberships are
/// removed. Wrong passwords spend the session's allowance of password changes.
#[utoipa::path(delete, path = "/auth/account", tag = "accounts", request_body = DeleteAccountRequest,
    responses((status = 204, description = "deleted; the session cookie is cleared"),
              (status = 401, description = "not signed in"),
              (status = 422, description = "wrong password"),
              (status = 429, description = "too many wrong passwords")))]
pub async fn delete_account(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    auth: Auth,
    JsonBody(form): JsonBody<DeleteAccountRequest>,
) -> Result<Response, ApiError> {
    // Guesses of the password through a (stolen) session share the session's allowance
    // of password changes.
    let session_key =
        match confirm_current_password(&state, &auth, form.password, "password").await? {
            Ok(key) => key,
            Err(too_many) => return Ok(too_many),
        };
    let mut client = state.db().await?;
    let deleted = deletion::delete_account(&mut client, auth.user.id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(unauthorized)?;
    drop(client);
    state.login_limiter.reset(&session_key).await;
    tracing::info!(
        user = auth.user.id,
        plans_deleted = deleted.plans_deleted,
        plans_handed_over = deleted.plans_handed_over,
        "account deleted"
    );
    let cookie = session_cookie("", 0, secure(&state, &headers));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}
