//! Request extractors of the REST API: JSON bodies whose errors name the field, and the
//! signed-in user (session cookie or bearer token) with CSRF protection for cookies.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::accounts::{self, User, session};
use crate::http::AppState;
use crate::http::error::ApiError;

/// The header a browser app sends with cookie-authenticated changes (a cross-site form
/// cannot set it, and CORS does not allow it from other origins).
pub const CSRF_HEADER: &str = "x-planscape-csrf";

/// A JSON object body: 415 without a JSON content type, 413 past the configured size,
/// 408 when it does not arrive within `http.body_read_timeout_s`, 400 when it is not
/// JSON, 422 naming the field when it does not fit the schema (or `body` when it is JSON
/// but not an object: serde would read a struct from an array).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        let limit = state.config.http.body_read_timeout_s;
        let bytes = tokio::time::timeout(
            std::time::Duration::from_secs(limit),
            Bytes::from_request(req, state),
        )
        .await
        .map_err(|_| ApiError::body_timeout(limit))?
        .map_err(|e| ApiError::body_rejection(e.status(), e.body_text()))?;
        // Every request type is an object; serde's derive would also take an array of
        // its fields in order, which the document does not allow.
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !object {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
                    Ok(_) => ApiError::invalid_field("body", "must be a JSON object"),
                    Err(e) => ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {e}"),
                    ),
                },
            );
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(value) => {
                de.end().map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {e}"),
                    )
                })?;
                Ok(Self(value))
            }
            Err(e) => {
                let inner = e.inner();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {inner}"),
                    ));
                }
                let path = e.path().to_string();
                let field = if path == "." {
                    // serde names a missing field only in its message.
                    inner
                        .to_string()
                        .split('`')
                        .nth(1)
                        .unwrap_or("body")
                        .to_owned()
                } else {
                    path
                };
                Err(ApiError::invalid_field(&field, inner.to_string()))
            }
        }
    }
}

/// How the request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The session cookie (a browser).
    Cookie,
    /// `Authorization: Bearer` (an API client).
    Bearer,
}

/// The signed-in user; 401 otherwise.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The user.
    pub user: User,
    /// Their session token.
    pub token: String,
    /// Cookie or bearer.
    pub via: Via,
}

/// The signed-in user when there is one (401 only for a bad or expired credential is not
/// wanted here: callers decide).
pub struct MaybeAuth(pub Option<Auth>);

/// The token of an `Authorization: Bearer TOKEN` header; the scheme's name is
/// case-insensitive (RFC 7235), so `bearer` and `BEARER` are read too.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The values of the cookies named `name` a request carries (of every `Cookie` header).
pub fn cookie_values<'h>(headers: &'h HeaderMap, name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value.trim())
}

/// The session token of a request: the bearer token, else the session cookie.
pub fn credential(headers: &HeaderMap) -> Option<(String, Via)> {
    if let Some(token) = bearer_token(headers) {
        return Some((token.to_owned(), Via::Bearer));
    }
    cookie_values(headers, session::COOKIE)
        .next()
        .map(|value| (value.to_owned(), Via::Cookie))
}

pub(crate) fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "sign in first (session cookie or Authorization: Bearer)",
    )
}

/// The origin this server is reached at (public URL, else forwarded/Host headers).
fn own_origin(state: &AppState, headers: &HeaderMap) -> String {
    let base = crate::http::tilejson::base_url(state, headers);
    match base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
    {
        Some(end) => base[..end].to_owned(),
        None => base,
    }
}

/// Cookie-authenticated changes must come from our own pages: the anti-CSRF header is
/// required, and an `Origin`, when sent, must be ours or an allowed CORS origin.
fn check_csrf(state: &AppState, parts: &Parts) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let forbidden =
        |message: &str| ApiError::new(StatusCode::FORBIDDEN, "csrf", message.to_owned());
    if parts.headers.get(CSRF_HEADER).is_none() {
        return Err(forbidden(
            "cookie-authenticated changes need the X-Planscape-CSRF header",
        ));
    }
    if let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let allowed = origin == own_origin(state, &parts.headers)
            || state
                .config
                .http
                .cors_origins
                .iter()
                .any(|o| o != "*" && o == origin);
        if !allowed {
            return Err(forbidden("cross-site request refused"));
        }
    }
    Ok(())
}

/// The user of the request's session (no CSRF check: for read-only or bearer use).
pub async fn session_user(state: &AppState, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    match credential(headers) {
        Some((token, _)) => user_of(state, &token).await,
        None => Ok(None),
    }
}

/// The user whose session `token` is, if it is a live session.
async fn user_of(state: &AppState, token: &str) -> Result<Option<User>, ApiError> {
    let client = state.db().await?;
    accounts::session_user(&**client, token, state.signing_key())
        .await
        .map_err(ApiError::from)
}

async fn authenticate(state: &AppState, parts: &Parts) -> Result<Option<Auth>, ApiError> {
    let Some((token, via)) = credential(&parts.headers) else {
        return Ok(None);
    };
    let user = user_of(state, &token).await?.ok_or_else(unauthorized)?;
    if via == Via::Cookie {
        check_csrf(state, parts)?;
    }
    Ok(Some(Auth { user, token, via }))
}

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, parts).await?.ok_or_else(unauthorized)
    }
}

impl FromRequestParts<Arc<AppState>> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, parts).await.map(MaybeAuth)
    }
}

/// An administrator: the admin token (`Authorization: Bearer $PLANSCAPE_ADMIN_TOKEN`), or
/// the session (cookie or bearer) of an account with the admin flag (`planscape user
/// create --admin`, `planscape user admin`); 401 without either, 403 for anyone else.
#[derive(Debug, Clone)]
pub struct Administrator {
    /// The administrator's account (`None` for the admin token).
    pub user: Option<User>,
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

impl FromRequestParts<Arc<AppState>> for Administrator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if let (Some(token), Some(given)) =
            (&state.config.admin_token, bearer_token(&parts.headers))
            && same_secret(given.as_bytes(), token.as_bytes())
        {
            return Ok(Self { user: None });
        }
        match authenticate(state, parts).await? {
            Some(auth) if auth.user.is_admin => Ok(Self {
                user: Some(auth.user),
            }),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "administrators only",
            )),
            None => Err(unauthorized()),
        }
    }
}

/// A positive id from a path segment; anything else names nothing (404 "no such {what}").
pub fn path_id(id: &str, what: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::not_found(format!("no such {what}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().expect("header"));
            bearer_token(&h).map(str::to_owned)
        };
        for v in ["Bearer abc", "bearer abc", "BEARER  abc ", "bEaReR abc"] {
            assert_eq!(with(v).as_deref(), Some("abc"), "{v}");
        }
        for v in ["Basic abc", "Bearer", "Bearer ", "Bearerabc", "Token abc"] {
            assert_eq!(with(v), None, "{v}");
        }
    }
}
