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
//!
//! What does not change from hit to hit is worked out once: the CORS headers (the layer's
//! answer to a `GET`, which depends only on the request's `Origin`, and not even on that
//! when any origin is allowed) and the metric handles of the route. A hit that the
//! cache's front table answers (a hot tile; [`crate::cache`]) with those fixed CORS
//! headers is answered when the request comes, as a ready [`HitFuture`]: no future is
//! built, boxed or moved for it. The others wait on the cache in a boxed future.

use std::convert::Infallible;
use std::future::{Future, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use super::{AppState, tiles};
use crate::telemetry::{RequestLog, RouteHandles};
use crate::tile::{EncodedTile, TileFormat, TileId, parse_y_segment};

/// The router's pattern of the tile endpoint: the `route` label of a hit's metrics.
pub const ROUTE: &str = "/tiles/{layer}/{z}/{x}/{y}";

/// A response future of the hit path.
pub enum HitFuture {
    /// A hit answered from the cache's front table when the request came: nothing to
    /// wait for, nothing allocated for the future.
    Ready(Option<Response>),
    /// Anything else: a hit found by waiting on the cache, or the router's answer.
    Boxed(Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>),
}

impl Future for HitFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled once: a second poll (a contract breach of the caller) gets an empty
            // response rather than a panic.
            Self::Ready(response) => Poll::Ready(Ok(response.take().unwrap_or_default())),
            Self::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

/// Answers cached layer tiles before routing (see the module's documentation).
pub struct TileHits {
    state: Arc<AppState>,
    cors: CorsLayer,
    /// The headers `cors` adds to a `GET` without `Origin`, if worked out.
    cors_without_origin: Option<HeaderMap>,
    /// Whether any origin is allowed: `cors_without_origin` is then every `GET`'s.
    any_origin: bool,
    metrics: RouteHandles,
}

impl TileHits {
    /// The hit path of `state`'s tiles, with its CORS configuration.
    pub fn new(state: Arc<AppState>) -> Self {
        let origins = &state.config.http.cors_origins;
        let cors = super::cors_layer(origins);
        Self {
            cors_without_origin: headers_added(&cors),
            any_origin: origins.iter().any(|o| o == "*"),
            cors,
            metrics: RouteHandles::new(ROUTE),
            state,
        }
    }

    /// The response to `request` if it asks for a layer tile that the cache's front
    /// table holds now and its CORS headers are the fixed ones (most hits): answered
    /// without waiting. `None` leaves it to [`TileHits::answer`].
    fn answer_now(&self, request: &Request) -> Option<Response> {
        let (layer, z, x, y_segment) = tile_path(request.uri().path())?;
        let cors = self.fixed_cors(request.headers())?;
        // Timed from here, as the routed path is; the log itself (request id, span) is
        // made only for a hit: a miss goes on to `answer`, which starts its own.
        let started = Instant::now();
        let segment = parse_y_segment(y_segment).ok()?;
        let tile = TileId::parse(z, x, segment.y).ok()?;
        let tiles = &self.state.tiles;
        let ask = tiles.hit_key(layer, tile, segment.format, segment.scale)?;
        let encoded = tiles.cached_now(&ask)?;
        let log = RequestLog::start_at(request, ROUTE, started);
        let mut response = self.respond(layer, tile, segment.format, &encoded, request.headers());
        add_cors(response.headers_mut(), cors);
        log.finish_on(&self.metrics, &mut response);
        Some(response)
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
        // The CORS headers of the routed path: worked out once, or from the same layer.
        let mut response = match self.fixed_cors(request.headers()) {
            Some(fixed) => {
                let mut response = response;
                add_cors(response.headers_mut(), fixed);
                response
            }
            None => {
                let mut prepared = Some(response);
                let mut cors = self.cors.layer(tower::service_fn(move |_: Request| {
                    ready(Ok::<_, Infallible>(prepared.take().unwrap_or_default()))
                }));
                let Ok(response) = cors.call(request).await;
                response
            }
        };
        log.finish_on(&self.metrics, &mut response);
        Ok(response)
    }

    /// The CORS headers worked out once, if they are those of a request with `headers`:
    /// always when any origin is allowed, otherwise for requests without `Origin`.
    fn fixed_cors(&self, headers: &HeaderMap) -> Option<&HeaderMap> {
        self.cors_without_origin
            .as_ref()
            .filter(|_| self.any_origin || !headers.contains_key(header::ORIGIN))
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
        let tiles = &self.state.tiles;
        let ask = tiles.hit_key(layer, tile, segment.format, segment.scale)?;
        let encoded = tiles.cached(&ask).await?;
        Some(self.respond(layer, tile, segment.format, &encoded, headers))
    }

    /// The tile handler's response for a cached tile, counted in the usage analytics.
    fn respond(
        &self,
        layer: &str,
        tile: TileId,
        format: TileFormat,
        encoded: &EncodedTile,
        headers: &HeaderMap,
    ) -> Response {
        self.state.analytics.count_tile(layer, tile.z);
        tiles::respond(
            &self.state.cache_control,
            encoded,
            format.content_type(),
            format.compressible(),
            headers,
        )
    }
}

/// The headers `cors` adds to the response of a `GET` without `Origin` (`None` if its
/// answer were not immediate, which tower-http's is).
fn headers_added(cors: &CorsLayer) -> Option<HeaderMap> {
    let mut service = cors.layer(tower::service_fn(|_: Request| {
        ready(Ok::<_, Infallible>(Response::new(Body::empty())))
    }));
    let request = Request::get("/tiles/layer/0/0/0.mvt")
        .body(Body::empty())
        .ok()?;
    let mut answer = std::pin::pin!(service.call(request));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match answer.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Ok(response)) => Some(response.headers().clone()),
        _ => None,
    }
}

/// Adds CORS headers as tower-http's layer does: `Vary` values appended to the
/// response's own, the others replacing any of the same name.
fn add_cors(headers: &mut HeaderMap, cors: &HeaderMap) {
    for name in cors.keys() {
        let mut values = cors.get_all(name).iter().cloned();
        if name != header::VARY
            && let Some(first) = values.next()
        {
            headers.insert(name, first);
        }
        for value in values {
            headers.append(name, value);
        }
    }
}

/// Serves one request of a connection from `peer` (if known): a `GET` under `/tiles/`
/// goes to `hits` first (answered at once when the cache's front table holds the tile),
/// and to `router` when it is not a cached layer tile; every other request goes to
/// `router` directly. The peer's address goes into the extensions of
/// requests routed (handlers may read it); a hit does without.
pub fn serve(
    hits: &Arc<TileHits>,
    router: &mut axum::Router,
    request: Request,
    peer: Option<ConnectInfo<SocketAddr>>,
) -> HitFuture {
    let routed = move |mut request: Request| {
        if let Some(peer) = peer {
            request.extensions_mut().insert(peer);
        }
        request
    };
    if request.method() != Method::GET || !request.uri().path().starts_with("/tiles/") {
        return HitFuture::Boxed(Box::pin(router.call(routed(request))));
    }
    if let Some(response) = hits.answer_now(&request) {
        return HitFuture::Ready(Some(response));
    }
    let hits = Arc::clone(hits);
    let mut router = router.clone();
    HitFuture::Boxed(Box::pin(async move {
        match hits.answer(request).await {
            Ok(response) => Ok(response),
            Err(request) => router.call(routed(request)).await,
        }
    }))
}

/// The layer, z, x and `{y}.{ext}` segments of `/tiles/{layer}/{z}/{x}/{y}`, all non-empty
/// and without percent-escapes.
fn tile_path(path: &str) -> Option<(&str, &str, &str, &str)> {
    let rest = path.strip_prefix("/tiles/")?;
    // One pass over the bytes (this runs on every tile request): the three slashes, and
    // no escape.
    let mut slashes = [0; 3];
    let mut found = 0;
    for (i, byte) in rest.bytes().enumerate() {
        match byte {
            b'%' => return None,
            b'/' => {
                *slashes.get_mut(found)? = i;
                found += 1;
            }
            _ => {}
        }
    }
    let [a, b, c] = slashes;
    let segments = (
        rest.get(..a)?,
        rest.get(a + 1..b)?,
        rest.get(b + 1..c)?,
        rest.get(c + 1..)?,
    );
    let (layer, z, x, y) = segments;
    let none_empty = found == 3 && [layer, z, x, y].iter().all(|s| !s.is_empty());
    none_empty.then_some(segments)
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
