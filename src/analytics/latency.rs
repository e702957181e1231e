//! p50 and p95 response times per route from this server's Prometheus histogram
//! (`http_request_duration_seconds{route}`, since the process started), estimated as
//! Prometheus's `histogram_quantile` does: linear interpolation inside the bucket where
//! the quantile falls.

use std::collections::BTreeMap;

use serde::Serialize;

/// The latency of one route.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RouteLatency {
    /// The route pattern (as the router matched it).
    pub route: String,
    /// Requests answered.
    pub requests: u64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
}

/// One label's value in a Prometheus sample's label set (`name="value"`).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// The latencies of every route in a Prometheus text exposition, slowest p95 first.
pub fn from_exposition(text: &str) -> Vec<RouteLatency> {
    const METRIC: &str = "http_request_duration_seconds_bucket{";
    // route -> [(upper bound, cumulative count)]
    let mut buckets: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let (Some(route), Some(le)) = (label(labels, "route"), label(labels, "le")) else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(b) => b,
                Err(_) => continue,
            }
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        buckets
            .entry(route.to_owned())
            .or_default()
            .push((bound, count));
    }
    let mut out: Vec<RouteLatency> = buckets
        .into_iter()
        .filter_map(|(route, mut b)| {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            let total = b.last()?.1;
            if total <= 0.0 {
                return None;
            }
            Some(RouteLatency {
                route,
                requests: total as u64,
                p50_ms: quantile(&b, 0.5) * 1e3,
                p95_ms: quantile(&b, 0.95) * 1e3,
            })
        })
        .collect();
    out.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms).then(a.route.cmp(&b.route)));
    out
}

/// The `q` quantile of cumulative buckets (sorted by bound, the last `+Inf`). In the
/// `+Inf` bucket the answer is the largest finite bound, as Prometheus gives it.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return 0.0;
    };
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return lower.0;
            }
            let inside = count - lower.1;
            return if inside <= 0.0 {
                bound
            } else {
                lower.0 + (bound - lower.0) * (rank - lower.1) / inside
            };
        }
        lower = (bound, count);
    }
    lower.0
}

/// This server's latencies now.
pub fn current() -> Vec<RouteLatency> {
    from_exposition(&crate::telemetry::handle().render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_in_their_bucket() {
        let text = "\
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route=\"/tiles\",le=\"0.001\"} 0
http_request_duration_seconds_bucket{route=\"/tiles\",le=\"0.01\"} 50
http_request_duration_seconds_bucket{route=\"/tiles\",le=\"0.1\"} 100
http_request_duration_seconds_bucket{route=\"/tiles\",le=\"+Inf\"} 100
http_request_duration_seconds_sum{route=\"/tiles\"} 2.5
http_request_duration_seconds_count{route=\"/tiles\"} 100
http_request_duration_seconds_bucket{route=\"/health\",le=\"0.001\"} 4
http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 4
";
        let got = from_exposition(text);
        assert_eq!(got.len(), 2);
        let tiles = &got[0];
        assert_eq!((tiles.route.as_str(), tiles.requests), ("/tiles", 100));
        // The 50th of 100 is the top of (0.001, 0.01]; the 95th is 90% into (0.01, 0.1].
        assert!((tiles.p50_ms - 10.0).abs() < 1e-9, "{}", tiles.p50_ms);
        assert!((tiles.p95_ms - 91.0).abs() < 1e-9, "{}", tiles.p95_ms);
        let health = &got[1];
        assert!((health.p50_ms - 0.5).abs() < 1e-9, "{}", health.p50_ms);
    }
}
