//! The web app's basemap list, from the configuration (`[[basemaps]]`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::config::Basemap;
use crate::http::AppState;

/// The basemaps of the map's switch, in the configured order, keys already in their
/// URLs (an entry whose key variable is unset is left out). The app always adds a
/// plain background of its own, which needs no network.
#[utoipa::path(get, path = "/basemaps", tag = "map",
    responses((status = 200, body = [Basemap], description = "the configured basemaps")))]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<Basemap>> {
    Json(state.config.resolved_basemaps.clone())
}
