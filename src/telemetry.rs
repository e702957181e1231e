//! Prometheus metrics and request ids.
//!
//! Metric names and labels (label values are bounded: route patterns from the router,
//! configured layer names, zoom levels 0–24, status codes):
//! - `http_requests_total{route, method, status}` (methods other than GET, HEAD, POST,
//!   PUT, PATCH, DELETE and OPTIONS count as `other`) and `http_request_duration_seconds{route}`
//! - `tiles_served_total{layer, zoom, format}`: usage analytics per layer and zoom
//! - `tile_cache_requests_total{layer, result="hit"|"miss"}`
//! - `tile_render_seconds{layer}`: time spent rendering (misses only)
//! - `tile_render_errors_total{layer, kind}`
//! - `tile_cache_bytes`, `tile_cache_entries`, `tile_cache_file_bytes` (the cache's
//!   bodies in its memory file, whole pages), `db_pool_connections{state}`,
//!   `db_pool_max_connections`, `process_resident_memory_bytes`, `gdal_cache_bytes`,
//!   `gdal_cache_max_bytes`: gauges refreshed on every scrape

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
/// client when it is short and printable) to the response and to the log span (handlers
/// do not read it, so it is not copied into the request's headers).
///
/// This runs on every routed request, so it allocates as little as it can: the route is
/// borrowed from the router's [`MatchedPath`], the metric handles are resolved once per
/// worker thread ([`record`]), and the id is made once, as the response's header value.
/// Cache hits of tiles are answered before routing and do the same through
/// [`RequestLog`].
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route_name = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let log = RequestLog::start(&request, route_name);
    let mut response = next.run(request).instrument(log.span.clone()).await;
    log.finish(route_name, &mut response);
    response
}

/// One request's bookkeeping: its start time, method, id and (debug-level) log span;
/// [`RequestLog::finish`] logs, counts and times it and gives the response its id.
pub struct RequestLog {
    started: Instant,
    method: Method,
    id: HeaderValue,
    span: tracing::Span,
}

impl RequestLog {
    /// Starts the log of `request`, served by the route pattern `route`.
    pub fn start(request: &Request, route: &str) -> Self {
        Self::start_at(request, route, Instant::now())
    }

    /// As [`RequestLog::start`], for a request that began at `started` (the clock read
    /// before work that may turn out not to be this log's).
    pub fn start_at(request: &Request, route: &str, started: Instant) -> Self {
        let method = request.method().clone();
        let id = request
            .headers()
            .get(&REQUEST_ID)
            .filter(|v| {
                let b = v.as_bytes();
                !b.is_empty() && b.len() <= 64 && b.iter().all(u8::is_ascii_graphic)
            })
            .cloned()
            .unwrap_or_else(new_request_id);
        let id_text = id.to_str().unwrap_or_default();
        // A debug-level span: at the default `info` level it costs nothing per request;
        // the request id still goes into the warn line of failed requests below.
        let span = tracing::debug_span!("request", id = %id_text, method = %method, route = %route);
        Self {
            started,
            method,
            id,
            span,
        }
    }

    /// Logs the request (a warning for a 5xx), counts and times it under `route`, and adds
    /// its id to `response`.
    pub fn finish(self, route: &str, response: &mut Response) {
        let (seconds, code, method) = self.finish_quietly(response);
        record(route, &method, code, seconds);
    }

    /// As [`RequestLog::finish`], counted and timed with the handles of `route` (of the
    /// request's route).
    pub fn finish_on(self, route: &RouteHandles, response: &mut Response) {
        let (seconds, code, method) = self.finish_quietly(response);
        route.record(&method, code, seconds);
    }

    /// Logs the request and adds its id to `response`: its duration in seconds, its
    /// status code and its method, to be recorded.
    fn finish_quietly(self, response: &mut Response) -> (f64, u16, Method) {
        let elapsed = self.started.elapsed();
        let code = response.status().as_u16();
        self.span.in_scope(|| {
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
        response.headers_mut().insert(REQUEST_ID, self.id);
        (elapsed.as_secs_f64(), code, self.method)
    }
}

/// The metric handles of one route's `GET` requests answering 200, 204 or 304, resolved
/// once (a path that knows its route, as the cache hits do, skips [`record`]'s lookup by
/// route name); other methods and statuses are recorded as any request is.
pub struct RouteHandles {
    route: &'static str,
    duration: Histogram,
    get: [(u16, Counter); 3],
}

impl RouteHandles {
    /// The handles of `route` (a pattern of the router).
    pub fn new(route: &'static str) -> Self {
        handle();
        let get = |status: u16| {
            let counter = metrics::counter!("http_requests_total", "route" => route, "method" => "GET", "status" => status.to_string());
            (status, counter)
        };
        Self {
            route,
            duration: metrics::histogram!("http_request_duration_seconds", "route" => route),
            get: [get(200), get(204), get(304)],
        }
    }

    fn record(&self, method: &Method, status: u16, seconds: f64) {
        let known = (*method == Method::GET)
            .then(|| self.get.iter().find(|(s, _)| *s == status))
            .flatten();
        match known {
            Some((_, counter)) => {
                self.duration.record(seconds);
                counter.increment(1);
            }
            None => record(self.route, method, status, seconds),
        }
    }
}

/// The handles of one route's `http_request_duration_seconds` and of its
/// `http_requests_total` per method and status.
struct RouteMetrics {
    duration: Histogram,
    requests: Vec<(Option<Method>, u16, Counter)>,
}

thread_local! {
    /// Route handles of this worker thread, by route pattern (a bounded set: the router's
    /// patterns and `unmatched`).
    static ROUTES: RefCell<HashMap<Box<str>, RouteMetrics>> = RefCell::new(HashMap::new());
}

/// Counts one request of `route` and records its duration, with handles resolved on the
/// first request of each route, method and status on this thread (a lookup by label set
/// in the registry costs more than the rest of a cache hit's bookkeeping).
fn record(route: &str, method: &Method, status: u16, seconds: f64) {
    // Unusual methods share one label value (`None`, "other"): clients cannot grow the
    // series without bound.
    let method = match *method {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::OPTIONS => Some(method),
        _ => None,
    };
    ROUTES.with_borrow_mut(|routes| {
        if !routes.contains_key(route) {
            handle();
            let duration = metrics::histogram!("http_request_duration_seconds", "route" => route.to_owned());
            routes.insert(
                route.into(),
                RouteMetrics {
                    duration,
                    requests: Vec::new(),
                },
            );
        }
        let Some(metrics) = routes.get_mut(route) else {
            return;
        };
        metrics.duration.record(seconds);
        let known = metrics
            .requests
            .iter()
            .position(|(m, s, _)| m.as_ref() == method && *s == status);
        let index = known.unwrap_or_else(|| {
            let label = method.map_or("other", Method::as_str).to_owned();
            let counter = metrics::counter!("http_requests_total", "route" => route.to_owned(), "method" => label, "status" => status.to_string());
            metrics.requests.push((method.cloned(), status, counter));
            metrics.requests.len() - 1
        });
        if let Some((_, _, counter)) = metrics.requests.get(index) {
            counter.increment(1);
        }
    });
}

/// Drains the histograms' sample buffers into their buckets every few seconds. Without
/// it (the recorder is installed without its HTTP listener, which would run this), every
/// recorded duration stays in memory until `/metrics` is scraped: unbounded growth on a
/// server nobody scrapes. Runs until aborted.
pub fn spawn_upkeep() -> tokio::task::JoinHandle<()> {
    let handle = handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// A new request id: 16 hex digits, a hash of a counter keyed by the process's start
/// (its time and id), so ids differ across requests, processes and restarts.
fn new_request_id() -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Read once: the clock and, in glibc, `getpid` (a system call) cost more per request
    // than the rest of the id (`strace -c` and `perf` under the warm-path load).
    static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        xxhash_rust::xxh3::xxh3_64_with_seed(&nanos.to_le_bytes(), u64::from(std::process::id()))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), *SEED);
    let mut hex = [0u8; 16];
    for (i, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[((hash >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::new_request_id;
    use std::collections::HashSet;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_distinct() {
        let ids: Vec<String> = (0..10_000)
            .map(|_| {
                new_request_id()
                    .to_str()
                    .map(str::to_owned)
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())),
            "{:?}",
            ids.first()
        );
        assert!(ids.iter().all(|id| id.to_ascii_lowercase() == *id));
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }
}
