//! Cache hits of layer tiles, answered before routing.
//!
//! A map pan asks for dozens of tiles, most of them already in the in-process cache. For
//! such a hit, the router's path matching, its extractors and the middleware chain cost
//! about a fifth of the server's CPU (docs/benchmarks.md, "Cache hits against nginx").
//! So every connection first offers `GET /tiles/{layer}/{z}/{x}/{y}` to [`TileHits`]. A
//! hit is answered here with the very response the routed handler would give: the same
//! body and headers ([`tiles::respond`]), CORS from the same layer, a request id, and the
//! same metrics under the tile route. Anything else goes to the router untouched: a miss,
//! a malformed or escaped path, `HEAD`, another route.

use std::convert::Infallible;
use std::future::{Future, ready};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use super::{AppState, tiles};
use crate::telemetry::RequestLog;
use crate::tile::{TileId, parse_y_segment};

/// The router's pattern of the tile endpoint: the `route` label of a hit's metrics.
pub const ROUTE: &str = "/tiles/{layer}/{z}/{x}/{y}";

/// A response future of the hit path (a hit, or the router's answer after a miss).
pub type HitFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Answers cached layer tiles before routing (see the module's documentation).
pub struct TileHits {
    state: Arc<AppState>,
    cors: CorsLayer,
}

impl TileHits {
    /// The hit path of `state`'s tiles, with its CORS configuration.
    pub fn new(state: Arc<AppState>) -> Self {
        let cors = super::cors_layer(&state.config.http.cors_origins);
        Self { state, cors }
    }

    /// The response to `request` if it asks for a cached layer tile; otherwise the
    /// request, unchanged, for the router. The path is parsed here once: a `GET` of
    /// `/tiles/{layer}/{z}/{x}/{y}` without percent-escapes (those are left to the router,
    /// which decodes them).
    pub async fn answer(&self, request: Request) -> Result<Response, Request> {
        let uri = request.uri().clone();
        let Some(path) = tile_path(uri.path()) else {
            return Err(request);
        };
        // Timed from here, as the routed path is (a miss drops it: the router logs its own).
        let log = RequestLog::start(&request, ROUTE);
        // Borrows of the headers, not of the request (whose body is not `Sync`): the
        // future stays `Send`.
        let Some(response) = self.cached(path, request.headers()).await else {
            return Err(request);
        };
        // The CORS headers of the routed path, from the same layer.
        let mut prepared = Some(response);
        let mut cors = self.cors.layer(tower::service_fn(move |_: Request| {
            ready(Ok::<_, Infallible>(prepared.take().unwrap_or_default()))
        }));
        let Ok(mut response) = cors.call(request).await;
        log.finish(ROUTE, &mut response);
        Ok(response)
    }

    /// The tile handler's response for the cached tile of a path's segments; `None` when
    /// they do not parse or the tile is not cached.
    async fn cached(
        &self,
        (layer, z, x, y_segment): (&str, &str, &str, &str),
        headers: &HeaderMap,
    ) -> Option<Response> {
        let segment = parse_y_segment(y_segment).ok()?;
        let tile = TileId::parse(z, x, segment.y).ok()?;
        let format = segment.format;
        let encoded = self
            .state
            .tiles
            .cached(layer, tile, format, segment.scale)
            .await?;
        self.state.analytics.count_tile(layer, tile.z);
        Some(tiles::respond(
            &self.state.cache_control,
            &encoded,
            format.content_type(),
            format.compressible(),
            headers,
        ))
    }
}

/// Serves one request of a connection: a `GET` under `/tiles/` goes to `hits` first, and
/// to `router` when it is not a cached layer tile; every other request goes to `router`
/// directly.
pub fn serve(hits: &Arc<TileHits>, router: &mut axum::Router, request: Request) -> HitFuture {
    if request.method() != Method::GET || !request.uri().path().starts_with("/tiles/") {
        return Box::pin(router.call(request));
    }
    let hits = Arc::clone(hits);
    let mut router = router.clone();
    Box::pin(async move {
        match hits.answer(request).await {
            Ok(response) => Ok(response),
            Err(request) => router.call(request).await,
        }
    })
}

/// The layer, z, x and `{y}.{ext}` segments of `/tiles/{layer}/{z}/{x}/{y}`, all non-empty
/// and without percent-escapes.
fn tile_path(path: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = path.strip_prefix("/tiles/")?;
    if rest.contains('%') {
        return None;
    }
    let mut segments = rest.split('/');
    let layer = segments.next()?;
    let z = segments.next()?;
    let x = segments.next()?;
    let y = segments.next()?;
    let none_empty = [layer, z, x, y].iter().all(|s| !s.is_empty());
    (segments.next().is_none() && none_empty).then_some((layer, z, x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_four_plain_segments_under_tiles_are_tile_paths() {
        assert_eq!(
            tile_path("/tiles/watersheds/7/20/49.mvt"),
            Some(("watersheds", "7", "20", "49.mvt"))
        );
        assert_eq!(
            tile_path("/tiles/dem/9/80/197@2x.png"),
            Some(("dem", "9", "80", "197@2x.png"))
        );
        for path in [
            "/tiles/watersheds",
            "/tiles/watersheds/7/20",
            "/tiles/watersheds/7/20/49.mvt/",
            "/tiles/plans/3/7/20/49.mvt",
            "/tiles//7/20/49.mvt",
            "/tiles/water%20sheds/7/20/49.mvt",
            "/tile/watersheds/7/20/49.mvt",
            "/planscape-backend/tiles/watersheds/7/20/49.mvt",
        ] {
            assert_eq!(tile_path(path), None, "{path}");
        }
    }
}
