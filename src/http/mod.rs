//! The HTTP server: shared state, routes, middleware.

mod admin;
pub mod api;
pub mod client_ip;
pub mod connection_timeouts;
pub mod error;
pub(crate) mod health;
mod legend;
mod plan_tiles;
pub mod tile_hits;
pub mod tilejson;
pub mod tiles;
pub(crate) mod web;
pub mod zero_copy;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use deadpool_postgres::Pool;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::tiles::TileService;
use error::ApiError;

/// Everything request handlers share.
pub struct AppState {
    /// The validated configuration.
    pub config: Config,
    /// Layers, their versions, the tile cache and store: every tile comes from here.
    pub tiles: Arc<TileService>,
    /// The database pool (API requests; tile queries go through `tiles`, which shares it).
    pub pool: Pool,
    /// The `Cache-Control` header value of tiles.
    pub cache_control: HeaderValue,
    /// Failed-login counters.
    pub login_limiter: crate::accounts::limiter::Limiter,
    /// Proxies whose forwarding headers name the client (`http.trusted_proxies`).
    pub trusted_proxies: client_ip::TrustedProxies,
    /// Issues and checks the device cookies of logins.
    pub devices: crate::accounts::device::DeviceCookies,
    /// Outgoing mail (password-reset links), when an SMTP server is configured.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
    /// The conditions catalog.
    pub conditions: Option<Arc<crate::planning::conditions::Conditions>>,
    /// Plan outlines as vector tiles (`/tiles/plans/{id}/...`).
    pub plan_source: Option<Arc<crate::source::vector::VectorSource>>,
    /// Project areas as vector tiles (`/tiles/scenarios/{id}/project_areas/...`).
    pub project_area_source: Option<Arc<crate::source::vector::VectorSource>>,
    /// Usage analytics: events and tile demand, recorded without waiting.
    pub analytics: Arc<crate::analytics::Analytics>,
    /// Statistics of drawn areas kept for repeated requests.
    pub stats_memo: crate::planning::stats_memo::StatsMemo,
}

impl AppState {
    /// A pooled database connection (503 when none can be had).
    pub async fn db(&self) -> Result<deadpool_postgres::Object, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApiError::from(crate::db::DbError::from(e)))
    }

    /// The client address of a request for rate limits: the TCP peer, or the address a
    /// trusted proxy forwarded (see [`client_ip`]).
    pub fn client_address(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> String {
        client_ip::client_address(&self.trusted_proxies, peer, headers)
    }

    /// The key of session-token hashes, when configured.
    pub fn signing_key(&self) -> Option<&[u8]> {
        self.config
            .accounts
            .signing_key
            .as_deref()
            .map(str::as_bytes)
    }
}

/// What every connection serves: cached layer tiles answered before routing
/// ([`tile_hits`]), and the router for everything else.
#[derive(Clone)]
pub struct App {
    router: Router,
    hits: Arc<tile_hits::TileHits>,
}

impl App {
    /// The server's routes and its hit path over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            hits: Arc::new(tile_hits::TileHits::new(Arc::clone(&state))),
            router: router(state),
        }
    }
}

impl tower::Service<axum::extract::Request> for App {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = tile_hits::HitFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // The router is always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        tile_hits::serve(&self.hits, &mut self.router, request, None)
    }
}

impl connection_timeouts::PeerService for App {
    fn call_from(
        &mut self,
        request: axum::extract::Request,
        peer: axum::extract::ConnectInfo<std::net::SocketAddr>,
    ) -> Self::Future {
        tile_hits::serve(&self.hits, &mut self.router, request, Some(peer))
    }
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.config.http.cors_origins);
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/ready", get(health::ready))
        .route("/tiles", get(tilejson::catalog))
        .route("/tiles/{layer}", get(tilejson::tilejson))
        .route("/tiles/{layer}/point", get(api::point::point))
        .route("/tiles/{layer}/{file}", get(legend::legend))
        .route("/tiles/{layer}/{z}/{x}/{y}", get(tiles::get_tile))
        .route("/tiles/plans/{id}/{z}/{x}/{y}", get(plan_tiles::get_tile))
        .route(
            "/tiles/scenarios/{id}/project_areas/{z}/{x}/{y}",
            get(plan_tiles::project_areas_tile),
        )
        .route("/admin/tiles/{layer}", axum::routing::delete(admin::purge))
        .nest(api::PREFIX, api::router(&state))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback_service(web::router(&state.config.web_dir))
        .layer(cors)
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let any = origins.iter().any(|o| o == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::ETAG, header::CONTENT_ENCODING]);
    if any {
        // Answers do not depend on the request's Origin (nor, with fixed allowed methods
        // and headers, on a preflight's): no `Vary` to add, and none to build per request.
        layer.vary([])
    } else {
        layer
    }
}
