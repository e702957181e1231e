//! The admin API: `DELETE /admin/tiles/{layer}?zoom=MIN-MAX&bbox=W,S,E,N` purges a
//! layer's stored tiles and the cached copies (here and, through the database, on every
//! other server). Authorized by `Authorization: Bearer $PLANSCAPE_ADMIN_TOKEN`, or by the
//! session of an administrator account (`planscape user create --admin`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::coverage::Coverage;

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// The admin token, or the session of an administrator account.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    user: Option<&crate::accounts::User>,
) -> Result<(), ApiError> {
    let given = super::api::extract::bearer_token(headers);
    if let (Some(token), Some(given)) = (&state.config.admin_token, given)
        && same_secret(given.as_bytes(), token.as_bytes())
    {
        return Ok(());
    }
    match user {
        Some(u) if u.is_admin => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "administrators only",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an admin token or an administrator's session is required",
        )),
    }
}

/// Purges stored tiles of a layer.
pub async fn purge(
    State(state): State<Arc<AppState>>,
    Path(layer): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    // The admin token is not a session: only look for a user when it does not match.
    let token_matches = state.config.admin_token.as_ref().is_some_and(|t| {
        super::api::extract::bearer_token(&headers)
            .is_some_and(|g| same_secret(g.as_bytes(), t.as_bytes()))
    });
    // Sessions only as bearer tokens here: a cookie would need the CSRF checks.
    let bearer = matches!(
        super::api::extract::credential(&headers),
        Some((_, super::api::extract::Via::Bearer))
    );
    let user = if token_matches || !bearer {
        None
    } else {
        super::api::extract::session_user(&state, &headers).await?
    };
    authorize(&state, &headers, user.as_ref()).await?;
    if let Some(unknown) = query
        .keys()
        .find(|k| !["zoom", "bbox"].contains(&k.as_str()))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("unknown parameter `{unknown}` (zoom, bbox)"),
        ));
    }
    let zooms = query
        .get("zoom")
        .map(|z| crate::tile::parse_zooms(z))
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_zoom", e))?;
    let coverage = query
        .get("bbox")
        .map(|b| Coverage::parse_bbox(b))
        .transpose()?;
    // A layer whose source failed to open can still be purged (its stored tiles are
    // what is wrong, perhaps): its zooms then default to all.
    let (zooms, deleted) = state.tiles.purge(&layer, zooms, coverage.as_ref()).await?;
    Ok(Json(json!({
        "layer": layer,
        "zoom": [zooms.start(), zooms.end()],
        "deleted": deleted,
    })))
}
