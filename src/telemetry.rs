//! Prometheus metrics and request ids.
//!
//! Metric names and labels (label values are bounded: route patterns from the router,
//! configured layer names, zoom levels 0–24, status codes):
//! - `http_requests_total{route, method, status}` and `http_request_duration_seconds{route}`
//! - `tiles_served_total{layer, zoom, format}`: usage analytics per layer and zoom
//! - `tile_cache_requests_total{layer, result="hit"|"miss"}`
//! - `tile_render_seconds{layer}`: time spent rendering (misses only)
//! - `tile_render_errors_total{layer, kind}`
//! - `tile_cache_bytes`, `tile_cache_entries`, `db_pool_connections{state}`,
//!   `db_pool_max_connections`, `process_resident_memory_bytes`, `gdal_cache_bytes`,
//!   `gdal_cache_max_bytes`: gauges refreshed on every scrape

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// The process-wide Prometheus recorder (installed on first use).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (cannot happen outside tests): render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Counts and times every request by route pattern; adds a request id (kept from the
/// client when it is short and printable) to the response and to the log span.
pub async fn track(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_owned);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    // A debug-level span: at the default `info` level it costs nothing per request; the
    // request id still goes into the warn line of failed requests below.
    let span = tracing::debug_span!("request", id = %id, method = %method, route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let code = response.status().as_u16();
    span.in_scope(|| {
        if code >= 500 {
            tracing::warn!(
                status = code,
                ms = elapsed.as_secs_f64() * 1e3,
                "request failed"
            );
        } else {
            tracing::debug!(status = code, ms = elapsed.as_secs_f64() * 1e3, "request");
        }
    });
    let status = code.to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seed = [0u8; 24];
    seed[..16].copy_from_slice(&nanos.to_le_bytes());
    seed[16..].copy_from_slice(&n.to_le_bytes());
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64_with_seed(&seed, u64::from(std::process::id()))
    )
}
