//! Accounts: sign up, log in, log out, the current user, change password.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Auth, JsonBody};
use crate::accounts::{self, User, password, session};
use crate::http::AppState;
use crate::http::error::ApiError;

/// Sign-up form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Email (the login).
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    /// Display name.
    pub name: String,
}

/// Login form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Password change form.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The current password.
    pub current_password: String,
    /// The new password (at least 10 characters).
    pub new_password: String,
}

/// A new session: the token for API clients (browsers get the same in a cookie).
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The user.
    pub user: User,
    /// Bearer token (`Authorization: Bearer TOKEN`).
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

pub(super) async fn hash_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)
}

pub(super) async fn verify_blocking(password: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || password::verify(&password, &stored))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Whether responses should mark cookies `Secure` (served over HTTPS).
pub(super) fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    crate::http::tilejson::base_url(state, headers).starts_with("https://")
}

pub(super) fn session_cookie(token: &str, max_age: u64, secure: bool) -> HeaderValue {
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        session::COOKIE,
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: User,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let client = state.db().await?;
    let ttl = state.config.accounts.session_ttl_s;
    let (token, _) = accounts::create_session(&**client, user.id, ttl, state.signing_key())
        .await
        .map_err(ApiError::from)?;
    let cookie = session_cookie(&token, ttl, secure(state, headers));
    let body = SessionResponse {
        user,
        token,
        expires_in: ttl,
    };
    Ok((status, [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Creates an account and signs it in.
#[utoipa::path(post, path = "/auth/signup", tag = "accounts", request_body = SignupRequest,
    responses((status = 201, body = SessionResponse), (status = 409, description = "email taken"),
              (status = 422, description = "invalid field"), (status = 429, description = "too many from this client")))]
pub async fn signup(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<SignupRequest>,
) -> Result<Response, ApiError> {
    // Sign-ups (an Argon2 hash each) are limited per client like failed logins, on an
    // allowance of their own (an office signing its staff up is not locked out of login).
    let ip_key = format!("signup:{}", client_address(peer.map(|c| (c.0).0), &headers));
    if let Some(wait) = state.login_limiter.blocked(&ip_key) {
        return Ok(too_many(wait));
    }
    state.login_limiter.failed(&ip_key);
    let email = accounts::normalize_email(&form.email).map_err(ApiError::from)?;
    password::check_policy(&form.password).map_err(|m| ApiError::invalid_field("password", m))?;
    let hash = hash_blocking(form.password).await?;
    let client = state.db().await?;
    let user = accounts::create_user(&**client, &email, &form.name, &hash, false)
        .await
        .map_err(ApiError::from)?;
    drop(client);
    tracing::info!(user = user.id, "account created");
    start_session(&state, &headers, user, StatusCode::CREATED).await
}

/// The client address for rate limiting: the peer, or the proxy's `X-Real-IP` /
/// first `X-Forwarded-For` hop when the peer is a local proxy (nginx).
pub(super) fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let forwarded = || {
        headers
            .get("x-real-ip")
            .or_else(|| headers.get("x-forwarded-for"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
    };
    match peer {
        Some(p) if p.ip().is_loopback() => forwarded().unwrap_or_else(|| p.ip().to_string()),
        Some(p) => p.ip().to_string(),
        None => forwarded().unwrap_or_else(|| "unknown".into()),
    }
}

fn too_many(retry_after: u64) -> Response {
    rate_limited(retry_after, "too many failed logins; try again later")
}

/// 429 with `Retry-After` and a JSON error saying what was limited.
pub(super) fn rate_limited(retry_after: u64, message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Logs in. Failures say the same whether or not the email exists, and are limited per
/// client address and per account (429 with `Retry-After`).
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, description = "wrong email or password"),
              (status = 429, description = "too many failures")))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let ip_key = format!("ip:{}", client_address(peer.map(|c| (c.0).0), &headers));
    let email: String = form.email.trim().to_lowercase().chars().take(254).collect();
    let account_key = format!("account:{email}");
    for key in [&ip_key, &account_key] {
        if let Some(wait) = state.login_limiter.blocked(key) {
            return Ok(too_many(wait));
        }
    }
    // Counted before the (slow) verification, so parallel guesses cannot all slip under
    // the limit; taken back on success.
    state.login_limiter.failed(&ip_key);
    state.login_limiter.failed(&account_key);
    let client = state.db().await?;
    let found = accounts::find_by_email(&**client, &email)
        .await
        .map_err(ApiError::from)?;
    drop(client);
    let (user, stored) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, password::decoy().to_owned()),
    };
    let ok = verify_blocking(form.password, stored).await?;
    match user {
        Some(user) if ok => {
            state.login_limiter.reset(&account_key);
            state.login_limiter.succeeded(&ip_key);
            start_session(&state, &headers, user, StatusCode::OK).await
        }
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong email or password",
        )),
    }
}

/// Ends the current session (and clears the cookie).
#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    responses((status = 204, description = "signed out"), (status = 401, description = "not signed in")))]
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    auth: Auth,
) -> Result<Response, ApiError> {
    let client = state.db().await?;
    accounts::revoke_session(&**client, &auth.token, state.signing_key())
        .await
        .map_err(ApiError::from)?;
    let cookie = session_cookie("", 0, secure(&state, &headers));
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "accounts",
    responses((status = 200, body = User), (status = 401, description = "not signed in")))]
pub async fn me(auth: Auth) -> Json<User> {
    Json(auth.user)
}

/// Changes the password; every session of the account ends, and a new one starts.
#[utoipa::path(post, path = "/auth/password", tag = "accounts", request_body = PasswordRequest,
    responses((status = 200, body = SessionResponse), (status = 401, description = "not signed in"),
              (status = 422, description = "wrong current password or weak new one"),
              (status = 429, description = "too many wrong current passwords")))]
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    auth: Auth,
    JsonBody(form): JsonBody<PasswordRequest>,
) -> Result<Response, ApiError> {
    password::check_policy(&form.new_password)
        .map_err(|m| ApiError::invalid_field("new_password", m))?;
    // Guesses of the current password (a stolen session) share the account's login
    // allowance, counted before the verification like logins.
    let account_key = format!("account:{}", auth.user.email);
    if let Some(wait) = state.login_limiter.blocked(&account_key) {
        return Ok(too_many(wait));
    }
    state.login_limiter.failed(&account_key);
    let stored = {
        let client = state.db().await?;
        let (_, stored) = accounts::find_by_id(&**client, auth.user.id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(super::extract::unauthorized)?;
        stored
    };
    if !verify_blocking(form.current_password, stored).await? {
        return Err(ApiError::invalid_field(
            "current_password",
            "is not the current password",
        ));
    }
    state.login_limiter.succeeded(&account_key);
    let hash = hash_blocking(form.new_password).await?;
    let mut client = state.db().await?;
    accounts::set_password(&mut client, auth.user.id, &hash)
        .await
        .map_err(ApiError::from)?;
    drop(client);
    start_session(&state, &headers, auth.user, StatusCode::OK).await
}
