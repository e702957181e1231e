//! `/health` (the process is alive) and `/ready` (the database and the tile store answer;
//! broken layers listed), and the stand-in that answers them while the server starts.
//!
//! `/health` says the server serves: 200 once started, whatever its database does, so a
//! load balancer checking it does not take every task out (and ECS replace them) because
//! the database is briefly away; 503 while starting. `/ready` is readiness, for
//! monitoring: the database and the store answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// 200 once the server serves (the start-up's stand-in answers 503), whatever the
/// database does.
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the database (and the tile store, when used) answer within two seconds,
/// 503 otherwise. Layers that failed to open are listed either way (they do not make
/// the server unready: every replica would share the problem).
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let database = tokio::time::timeout(Duration::from_secs(2), async {
        // Through DbError: its message carries the cause (a refused certificate, say).
        let client = state
            .pool
            .get()
            .await
            .map_err(|e| crate::db::DbError::from(e).to_string())?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    })
    .await
    .unwrap_or_else(|_| Err("timed out".to_owned()));
    let broken: Vec<Value> = state
        .tiles
        .catalog()
        .iter()
        .filter_map(|(_, l)| {
            l.source
                .as_ref()
                .err()
                .map(|e| json!({ "layer": l.name, "error": e }))
        })
        .collect();
    let store = match state.tiles.store() {
        None => None,
        Some(store) => Some(
            tokio::time::timeout(Duration::from_secs(2), store.check())
                .await
                .map_err(|_| "timed out".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string())),
        ),
    };
    let store_ok = store.as_ref().is_none_or(Result::is_ok);
    let status = if database.is_ok() && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database.is_ok() && store_ok { "ready" } else { "unavailable" },
        "database": match &database { Ok(()) => json!("ok"), Err(e) => json!({ "error": e }) },
        "store": match &store {
            None => json!(null),
            Some(Ok(())) => json!("ok"),
            Some(Err(e)) => json!({ "error": e }),
        },
        "broken_layers": broken,
    });
    (status, Json(body))
}

/// The router that answers while the server starts (waiting for its database,
/// migrating, opening layers): `/health` and `/ready` 503 `{"status": "starting"}`,
/// anything else 503 with a JSON error and `Retry-After`. The process answers, so an
/// orchestrator can tell it is alive (any answer) from serving (`/health` 200), and a
/// database that is unreachable at start neither ends it nor gets it restarted in a loop.
pub fn starting_router() -> axum::Router {
    async fn starting() -> (StatusCode, Json<Value>) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting" })),
        )
    }
    axum::Router::new()
        .route("/health", axum::routing::get(starting))
        .route("/ready", axum::routing::get(starting))
        .fallback(|| async {
            super::error::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "starting",
                "the server is starting; try again shortly",
            )
        })
}

/// Prometheus text exposition; gauges are refreshed at each scrape.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    let cache = state.tiles.cache();
    cache.settle().await;
    let status = state.pool.status();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(status.available as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(status.size.saturating_sub(status.available) as f64);
    metrics::gauge!("db_pool_max_connections").set(status.max_size as f64);
    metrics::gauge!("tile_cache_bytes").set(cache.weighted_size() as f64);
    metrics::gauge!("tile_cache_entries").set(cache.entry_count() as f64);
    let in_file = cache
        .arena()
        .map_or(0, crate::cache::arena::BodyArena::used_bytes);
    metrics::gauge!("tile_cache_file_bytes").set(in_file as f64);
    crate::memory::record_gauges();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::handle().render(),
    )
}
