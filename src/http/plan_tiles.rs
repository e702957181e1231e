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
    Path(path): Path<(String, String, String, String)>,
    MaybeAuth(auth): MaybeAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    private_tile(&state, Private::Plan, path, auth, &headers).await
}

/// The project areas tile endpoint.
pub async fn project_areas_tile(
    State(state): State<Arc<AppState>>,
    Path(path): Path<(String, String, String, String)>,
    MaybeAuth(auth): MaybeAuth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    private_tile(&state, Private::ProjectAreas, path, auth, &headers).await
}

/// The two private layers.
#[derive(Clone, Copy)]
enum Private {
    /// A plan's outline, by plan id.
    Plan,
    /// A scenario's project areas, by scenario id.
    ProjectAreas,
}

/// A private tile `(id, z, x, y.mvt)` for a signed-in user who may view its plan.
async fn private_tile(
    state: &AppState,
    layer: Private,
    (id, z, x, y_segment): (String, String, String, String),
    auth: Option<super::api::extract::Auth>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth.ok_or_else(unauthorized)?;
    let what = match layer {
        Private::Plan => "plan",
        Private::ProjectAreas => "scenario",
    };
    let (tile, id) = parse(&id, &z, &x, &y_segment, what)?;
    {
        let client = state.db().await?;
        match layer {
            Private::Plan => {
                crate::planning::plans::authorize(&**client, id, auth.user.id, Action::View)
                    .await?;
            }
            Private::ProjectAreas => {
                crate::planning::scenarios::store::authorize_plan_of(
                    &**client,
                    id,
                    auth.user.id,
                    Action::View,
                )
                .await?;
            }
        }
    }
    let source = match layer {
        Private::Plan => state.plan_source.as_ref(),
        Private::ProjectAreas => state.project_area_source.as_ref(),
    };
    render(source, state, tile, id, headers).await
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
