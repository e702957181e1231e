//! Password reset by email: ask for a link (`/auth/reset/request`), then set a new
//! password with its token (`/auth/reset`).
//!
//! Asking answers the same (202, same body) whether or not an account has the email:
//! the handler only checks the limits and hands the work (finding the account, storing
//! a token, sending the mail) to a task of its own, so the answer's content and timing
//! say nothing about the account. Requests are limited per client address and per
//! email on the login limiter's allowance (keys `reset-ip:` and `reset-account:`); tokens
//! that fail count on the address's.
//!
//! A reset does not sign in: the user signs in with the new password (the link may be
//! opened on a device they would not stay signed in on); every session of the account
//! ends, and a login lockout of the account is lifted.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth;
use super::extract::JsonBody;
use crate::accounts::{self, password, reset};
use crate::http::AppState;
use crate::http::error::ApiError;

/// A request for a reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The account's email.
    pub email: String,
}

/// The answer to every well-formed reset request, whether or not the account exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetRequested {
    /// What happens next.
    pub message: &'static str,
}

/// A new password with the token of a reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetForm {
    /// The token from the link (`#reset=TOKEN`).
    pub token: String,
    /// The new password (at least 10 characters).
    pub new_password: String,
}

/// A completed reset: the account's email, to sign in with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetDone {
    /// The account's email.
    pub email: String,
}

const REQUESTED: &str = "If an account has this email, a link to reset its password is on its way. \
     It works once, for a limited time.";

/// The client's key on the reset allowance.
fn address_key(
    state: &AppState,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> String {
    format!(
        "reset-ip:{}",
        state.client_address(peer.map(|c| (c.0).0), headers)
    )
}

fn too_many(wait: u64) -> Response {
    auth::rate_limited(wait, "too many password-reset attempts; try again later")
}

/// Asks for a password-reset link by email. The answer is the same whether or not an
/// account has the email; the mail (when it has, and SMTP is configured) is sent
/// meanwhile.
#[utoipa::path(post, path = "/auth/reset/request", tag = "accounts", request_body = ResetRequest,
    responses((status = 202, body = ResetRequested), (status = 422, description = "not an email address"),
              (status = 429, description = "too many requests from this client or for this email")))]
pub async fn request_reset(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<ResetRequest>,
) -> Result<Response, ApiError> {
    let address_key = address_key(&state, peer, &headers);
    if let Some(wait) = state.login_limiter.blocked(&address_key).await {
        return Ok(too_many(wait));
    }
    state.login_limiter.failed(&address_key).await;
    let email = accounts::normalize_email(&form.email).map_err(ApiError::from)?;
    let account_key = format!("reset-account:{email}");
    if let Some(wait) = state.login_limiter.blocked(&account_key).await {
        return Ok(too_many(wait));
    }
    state.login_limiter.failed(&account_key).await;
    tokio::spawn(send_reset_mail(Arc::clone(&state), email));
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetRequested { message: REQUESTED }),
    )
        .into_response())
}

/// Finds the account, stores a token and mails the link; counts the outcome in
/// `password_reset_requests_total` (the test of "no mail for an unknown email" waits
/// for it).
async fn send_reset_mail(state: Arc<AppState>, email: String) {
    let outcome = match deliver(&state, &email).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(error = %e, "password-reset mail failed");
            "failed"
        }
    };
    metrics::counter!("password_reset_requests_total", "outcome" => outcome).increment(1);
}

async fn deliver(state: &AppState, email: &str) -> Result<&'static str, String> {
    let Some(mailer) = &state.mailer else {
        tracing::warn!(
            "a password reset was asked for, but no SMTP server is configured: no mail sent"
        );
        return Ok("no_mailer");
    };
    let ttl = state.config.accounts.reset_ttl_s;
    let mut client = state.pool.get().await.map_err(|e| e.to_string())?;
    let issued = reset::issue(&mut client, email, ttl, state.signing_key())
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let Some((user, token)) = issued else {
        return Ok("no_account");
    };
    // Validated at start-up: with SMTP configured, one of the two is set.
    let app_url = state
        .config
        .mail
        .app_url
        .as_deref()
        .or(state.config.public_url.as_deref())
        .unwrap_or_default();
    let (subject, body) = reset::mail_text(&user, &reset::link(app_url, &token), ttl);
    mailer
        .send(&user.email, &subject, body)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(user = user.id, "password-reset mail sent");
    Ok("mailed")
}

/// Sets a new password with the token of a reset link: the token is used up, every
/// session of the account ends. Does not sign in.
#[utoipa::path(post, path = "/auth/reset", tag = "accounts", request_body = ResetForm,
    responses((status = 200, body = ResetDone),
              (status = 422, description = "the token is unknown, used or expired (field `token`), or the new password is too weak (field `new_password`)"),
              (status = 429, description = "too many failed tokens from this client")))]
pub async fn reset_password(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<ResetForm>,
) -> Result<Response, ApiError> {
    let address_key = address_key(&state, peer, &headers);
    if let Some(wait) = state.login_limiter.blocked(&address_key).await {
        return Ok(too_many(wait));
    }
    let checked = {
        let client = state.db().await?;
        reset::check(&**client, &form.token, state.signing_key()).await
    };
    if let Err(reset::ResetError::InvalidToken) = checked {
        state.login_limiter.failed(&address_key).await;
    }
    checked.map_err(ApiError::from)?;
    password::check_policy(&form.new_password)
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    let hash = auth::hash_blocking(form.new_password).await?;
    let mut client = state.db().await?;
    let user = reset::complete(&mut client, &form.token, &hash, state.signing_key())
        .await
        .map_err(ApiError::from)?;
    drop(client);
    state
        .login_limiter
        .reset(&format!("account:{}", user.email))
        .await;
    tracing::info!(user = user.id, "password reset by email");
    Ok(Json(ResetDone { email: user.email }).into_response())
}
