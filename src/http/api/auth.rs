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
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::accounts::{self, User, device, password, session};
use crate::analytics::{Event, EventKind};
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
    let ip_key = format!(
        "signup:{}",
        state.client_address(peer.map(|c| (c.0).0), &headers)
    );
    if let Some(wait) = state.login_limiter.blocked(&ip_key).await {
        return Ok(rate_limited(
            wait,
            "too many sign-ups from this address; try again later",
        ));
    }
    state.login_limiter.failed(&ip_key).await;
    let email = accounts::normalize_email(&form.email).map_err(ApiError::from)?;
    password::check_policy(&form.password).map_err(|m| ApiError::invalid_field("password", m))?;
    let hash = hash_blocking(form.password).await?;
    let client = state.db().await?;
    let user = accounts::create_user(&**client, &email, &form.name, &hash, false)
        .await
        .map_err(ApiError::from)?;
    drop(client);
    tracing::info!(user = user.id, "account created");
    state
        .analytics
        .record(Event::new(EventKind::Signup, Some(user.id)));
    let device = new_device_cookie(&state, &headers, &email)?;
    let mut response = start_session(&state, &headers, user, StatusCode::CREATED).await?;
    response.headers_mut().append(header::SET_COOKIE, device);
    Ok(response)
}

/// 429 for an untrusted client (no valid device cookie): the account's shared allowance
/// or this address's is spent.
fn too_many_untrusted(retry_after: u64) -> Response {
    rate_limited(
        retry_after,
        "too many failed logins for this account or from this address; try again later \
         (a browser that signed in to this account before can still sign in)",
    )
}

/// The device cookie of a login for `email`: `Set-Cookie` value.
fn device_cookie_header(value: &str, secure: bool) -> HeaderValue {
    let cookie = format!(
        "{}={value}; Path={}/auth; HttpOnly; SameSite=Lax; Max-Age={}{}",
        device::COOKIE,
        super::PREFIX,
        device::MAX_AGE_S,
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A new device cookie for the account `email` (after a successful sign-in).
fn new_device_cookie(
    state: &AppState,
    headers: &HeaderMap,
    email: &str,
) -> Result<HeaderValue, ApiError> {
    let value = state.devices.issue(email).map_err(ApiError::internal)?;
    Ok(device_cookie_header(&value, secure(state, headers)))
}

/// The nonce of a valid device cookie of `email` the request carries, if any (a
/// tampered, forged or other account's cookie counts as none).
fn device_of<'h>(state: &AppState, headers: &'h HeaderMap, email: &str) -> Option<&'h str> {
    super::extract::cookie_values(headers, device::COOKIE)
        .find_map(|value| state.devices.verify(value, email))
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

/// Logs in. Failures say the same whether or not the email exists, and are limited
/// (429 with `Retry-After`): a browser presenting the device cookie of an earlier
/// sign-in to the account spends its own allowance; any other client (API clients
/// without the cookie too) spends its address's and the account's shared allowance, so
/// outsiders guessing an account's password cannot lock its owner's browsers out.
#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, description = "wrong email or password"),
              (status = 429, description = "too many failures")))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let email: String = form.email.trim().to_lowercase().chars().take(254).collect();
    let device = device_of(&state, &headers, &email).map(|nonce| format!("device:{nonce}"));
    let keys = match &device {
        Some(device_key) => vec![device_key.clone()],
        None => vec![
            format!(
                "ip:{}",
                state.client_address(peer.map(|c| (c.0).0), &headers)
            ),
            format!("account:{email}"),
        ],
    };
    for key in &keys {
        if let Some(wait) = state.login_limiter.blocked(key).await {
            return Ok(match device {
                Some(_) => rate_limited(
                    wait,
                    "too many failed logins from this browser; try again later",
                ),
                None => too_many_untrusted(wait),
            });
        }
    }
    // Counted before the (slow) verification, so parallel guesses cannot all slip under
    // the limit; taken back on success.
    for key in &keys {
        state.login_limiter.failed(key).await;
    }
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
            let cookie = match &device {
                Some(device_key) => {
                    state.login_limiter.reset(device_key).await;
                    None
                }
                None => {
                    // keys = [ip, account]
                    state.login_limiter.succeeded(&keys[0]).await;
                    state.login_limiter.reset(&keys[1]).await;
                    Some(new_device_cookie(&state, &headers, &email)?)
                }
            };
            state
                .analytics
                .record(Event::new(EventKind::Signin, Some(user.id)));
            let mut response = start_session(&state, &headers, user, StatusCode::OK).await?;
            if let Some(cookie) = cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            Ok(response)
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

/// Checks the signed-in user's current password (422 naming `field` when wrong).
/// Guesses through a (stolen) session are limited per session, counted before the
/// verification like logins; failed logins (outsiders') do not touch this allowance,
/// nor does it touch theirs. `Ok(Err(response))` is the 429 to answer; `Ok(Ok(key))`
/// the limiter key to reset once the action is done.
pub(super) async fn confirm_current_password(
    state: &AppState,
    auth: &Auth,
    password: String,
    field: &'static str,
) -> Result<Result<String, Response>, ApiError> {
    let session_key = format!(
        "password:{}",
        URL_SAFE_NO_PAD.encode(session::token_hash(&auth.token, None))
    );
    if let Some(wait) = state.login_limiter.blocked(&session_key).await {
        return Ok(Err(rate_limited(
            wait,
            "too many wrong current passwords in this session; try again later",
        )));
    }
    state.login_limiter.failed(&session_key).await;
    let stored = {
        let client = state.db().await?;
        let (_, stored) = accounts::find_by_id(&**client, auth.user.id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(super::extract::unauthorized)?;
        stored
    };
    if !verify_blocking(password, stored).await? {
        return Err(ApiError::invalid_field(
            field,
            "is not the current password",
        ));
    }
    Ok(Ok(session_key))
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
    let session_key =
        match confirm_current_password(&state, &auth, form.current_password, "current_password")
            .await?
        {
            Ok(key) => key,
            Err(too_many) => return Ok(too_many),
        };
    state.login_limiter.reset(&session_key).await;
    let hash = hash_blocking(form.new_password).await?;
    let mut client = state.db().await?;
    accounts::set_password(&mut client, auth.user.id, &hash)
        .await
        .map_err(ApiError::from)?;
    drop(client);
    start_session(&state, &headers, auth.user, StatusCode::OK).await
}
