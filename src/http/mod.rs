//! The HTTP server: shared state, routes, middleware.

mod admin;
pub mod api;
pub mod error;
mod health;
mod legend;
mod plan_tiles;
pub mod tilejson;
pub mod tiles;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use deadpool_postgres::Pool;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::cache::TileCache;
use crate::config::Config;
use crate::source::{Catalog, Layer, Source};
use crate::store::TileStore;
use error::ApiError;

/// Everything request handlers share.
pub struct AppState {
    /// The validated configuration.
    pub config: Config,
    /// Layers.
    pub catalog: Catalog,
    /// Tile query pool.
    pub pool: Pool,
    /// Tile cache.
    pub cache: TileCache,
    /// The `Cache-Control` header value of tiles.
    pub cache_control: HeaderValue,
    /// The tile store, when a layer is pregenerated or the admin API is on.
    pub store: Option<Arc<TileStore>>,
    /// Failed-login counters.
    pub login_limiter: crate::accounts::limiter::Limiter,
    /// The conditions catalog.
    pub conditions: Option<Arc<crate::planning::conditions::Conditions>>,
    /// Plan outlines as vector tiles (`/tiles/plans/{id}/...`).
    pub plan_source: Option<Arc<crate::source::vector::VectorSource>>,
    /// Project areas as vector tiles (`/tiles/scenarios/{id}/project_areas/...`).
    pub project_area_source: Option<Arc<crate::source::vector::VectorSource>>,
}

impl AppState {
    /// A pooled database connection (503 when none can be had).
    pub async fn db(&self) -> Result<deadpool_postgres::Object, ApiError> {
        self.pool
            .get()
            .await
            .map_err(|e| ApiError::from(crate::db::DbError::from(e)))
    }

    /// The key of session-token hashes, when configured.
    pub fn signing_key(&self) -> Option<&[u8]> {
        self.config
            .accounts
            .signing_key
            .as_deref()
            .map(str::as_bytes)
    }

    /// A configured layer by name, opened or not (404 when unknown).
    pub fn layer(&self, name: &str) -> Result<(usize, &Layer), ApiError> {
        self.catalog.get(name).ok_or_else(|| {
            ApiError::not_found(format!(
                "unknown layer `{}`",
                name.chars().take(64).collect::<String>()
            ))
        })
    }

    /// The layer called `name`, its catalog index and its source: 404 for an unknown
    /// layer, 503 for one that failed to open (the reason is on `/ready`).
    pub fn layer_source(&self, name: &str) -> Result<(usize, &Layer, &Source), ApiError> {
        let (index, layer) = self.layer(name)?;
        let source = layer.source.as_ref().map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "layer_unavailable",
                format!("layer `{}` failed to open: {e}", layer.name),
            )
        })?;
        Ok((index, layer, source))
    }

    /// A table changed: bump the versions of the layers reading it.
    pub fn table_changed(&self, table: &str) {
        for index in self.catalog.layers_of_table(table) {
            if let Some(layer) = self.catalog.layer(index) {
                let version = layer.bump();
                self.cache.invalidate_layer(index, version);
                tracing::info!(layer = %layer.name, version, "data changed");
            }
        }
    }

    /// A layer's stored tiles changed (purged): bump its version.
    pub fn layer_changed(&self, name: &str) {
        if let Some((index, layer)) = self.catalog.get(name) {
            let version = layer.bump();
            self.cache.invalidate_layer(index, version);
            tracing::info!(layer = %layer.name, version, "stored tiles changed");
        }
    }

    /// Changes may have been missed: bump every layer.
    pub fn all_changed(&self) {
        for (index, layer) in self.catalog.iter() {
            let version = layer.bump();
            self.cache.invalidate_layer(index, version);
        }
        tracing::info!("all layer versions bumped after reconnecting");
    }
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let cors = cors_layer(&state.config.http.cors_origins);
    Router::new()
        .route("/", get(demo_map))
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/ready", get(health::ready))
        .route("/tiles", get(tilejson::catalog))
        .route("/tiles/{layer}", get(tilejson::tilejson))
        .route("/tiles/{layer}/{file}", get(legend::legend))
        .route("/tiles/{layer}/{z}/{x}/{y}", get(tiles::get_tile))
        .route("/tiles/plans/{id}/{z}/{x}/{y}", get(plan_tiles::get_tile))
        .route(
            "/tiles/scenarios/{id}/project_areas/{z}/{x}/{y}",
            get(plan_tiles::project_areas_tile),
        )
        .route("/admin/tiles/{layer}", axum::routing::delete(admin::purge))
        .nest(api::PREFIX, api::router(&state))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(cors)
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        .with_state(state)
}

/// A MapLibre page showing the layers (`web/index.html`, built into the binary).
async fn demo_map() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../../web/index.html"))
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::ETAG, header::CONTENT_ENCODING])
}
