//! Private vector tiles: `GET /tiles/plans/{id}/{z}/{x}/{y}.mvt` (a plan's outline) and
//! `GET /tiles/scenarios/{id}/project_areas/{z}/{x}/{y}.mvt` (a scenario's ranked project
//! areas), for those who may see the plan: 401 without a session, 404 for one that does
//! not exist or that the user has no role on. Not in the shared tile cache;
//! `Cache-Control: private, no-cache` (revalidated by ETag).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::AppState;
use super::api::extract::{MaybeAuth, unauthorized};
use super::error::ApiError;
use crate::accounts::access::Action;
use crate::tile::EncodedTile;
use crate::tile::{TileFormat, TileId, parse_y_segment};

/// The plan tile endpoint.
pub async fn get_tile(
    State(state): State<Arc<AppState>>,
    Path((id, z, x, y_segment)): Path<(String, String, String, String)>,
    MaybeAuth(auth): MaybeAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth.ok_or_else(unauthorized)?;
    let (tile, id) = parse(&id, &z, &x, &y_segment, "plan")?;
    {
        let client = state.db().await?;
        crate::planning::plans::authorize(&**client, id, auth.user.id, Action::View).await?;
    }
    render(state.plan_source.as_ref(), &state, tile, id, &headers).await
}

/// The project areas tile endpoint.
pub async fn project_areas_tile(
    State(state): State<Arc<AppState>>,
    Path((id, z, x, y_segment)): Path<(String, String, String, String)>,
    MaybeAuth(auth): MaybeAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth.ok_or_else(unauthorized)?;
    let (tile, id) = parse(&id, &z, &x, &y_segment, "scenario")?;
    {
        let client = state.db().await?;
        crate::planning::scenarios::store::authorize_plan_of(
            &**client,
            id,
            auth.user.id,
            Action::View,
        )
        .await?;
    }
    render(
        state.project_area_source.as_ref(),
        &state,
        tile,
        id,
        &headers,
    )
    .await
}

fn parse(
    id: &str,
    z: &str,
    x: &str,
    y_segment: &str,
    what: &str,
) -> Result<(TileId, i64), ApiError> {
    let segment = parse_y_segment(y_segment)?;
    let tile = TileId::parse(z, x, segment.y)?;
    if segment.format != TileFormat::Mvt || segment.scale != 1 {
        return Err(ApiError::not_found("these tiles are .mvt"));
    }
    let id: i64 = id
        .parse()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::not_found(format!("no such {what}")))?;
    Ok((tile, id))
}

async fn render(
    source: Option<&Arc<crate::source::vector::VectorSource>>,
    state: &AppState,
    tile: TileId,
    id: i64,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let source = source.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "these tiles are unavailable",
        )
    })?;
    let raw = source
        .render_filtered(&state.pool, tile, Some(id))
        .await
        .map_err(|e| ApiError::from(&e))?;
    let encoded = EncodedTile::new(raw, TileFormat::Mvt);
    Ok(super::tiles::respond(
        &HeaderValue::from_static("private, no-cache"),
        &encoded,
        TileFormat::Mvt.content_type(),
        true,
        headers,
    ))
}
