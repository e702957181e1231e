//! The admin API: `DELETE /admin/tiles/{layer}?zoom=MIN-MAX&bbox=W,S,E,N` purges a
//! layer's stored tiles and the cached copies (here and, through the database, on every
//! other server). Authorized by `Authorization: Bearer $PLANSCAPE_ADMIN_TOKEN`; without a
//! configured token the API does not exist (404).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::coverage::Coverage;

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.config.admin_token else {
        return Err(ApiError::not_found("no such endpoint"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if same_secret(given.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an admin bearer token is required",
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
    authorize(&state, &headers)?;
    let (index, layer_ref, source) = state.layer_source(&layer)?;
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
    let zooms = match query.get("zoom") {
        Some(z) => crate::seed::parse_zooms(z)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_zoom", e))?,
        None => source.minzoom()..=source.maxzoom(),
    };
    let coverage = query
        .get("bbox")
        .map(|b| Coverage::parse_bbox(b))
        .transpose()?;
    let store = state
        .store
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no tile store"))?;
    let deleted =
        crate::seed::purge(store, &layer_ref.name, zooms.clone(), coverage.as_ref()).await?;
    let version = layer_ref.bump();
    state.cache.invalidate_layer(index, version);
    // Other servers drop their copies when they hear of it (best effort).
    if let Ok(client) = state.pool.get().await
        && let Err(e) = crate::changes::notify_layer_changed(&client, &layer_ref.name).await
    {
        tracing::warn!(error = %e, "could not notify other servers of the purge");
    }
    tracing::info!(layer = %layer_ref.name, deleted, "purged");
    Ok(Json(json!({
        "layer": layer_ref.name,
        "zoom": [zooms.start(), zooms.end()],
        "deleted": deleted,
    })))
}
