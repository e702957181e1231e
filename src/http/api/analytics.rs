//! Usage analytics over HTTP: the page-view beacon of the web app
//! (`POST /analytics/pageview`, nothing recorded under Do-Not-Track or Global Privacy
//! Control), and the administrators' reports under `/admin/analytics/...`, each over a
//! date range (UTC days) and each as JSON or CSV (`format=csv`): the data of one chart
//! of the dashboard.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::csv::{CsvRow, csv_response};
use super::extract::{Administrator, CSRF_HEADER, JsonBody, Via, credential};
use crate::analytics::latency::{self, RouteLatency};
use crate::analytics::report::{self, DayCounts, DayRange, TileRequests};
use crate::analytics::tile_counts::today;
use crate::analytics::{Event, EventKind};
use crate::http::AppState;
use crate::http::error::ApiError;

/// The pages of the web app a beacon may name.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Page {
    /// The planner app was opened.
    App,
    /// A plan was opened.
    Plan,
    /// A scenario's results were opened.
    Scenario,
    /// The admin dashboard was opened.
    Dashboard,
}

impl Page {
    fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Plan => "plan",
            Self::Scenario => "scenario",
            Self::Dashboard => "dashboard",
        }
    }
}

/// A page view.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageView {
    /// Which page.
    pub page: Page,
}

/// Whether the browser asks not to be tracked (`DNT: 1` or `Sec-GPC: 1`).
fn opted_out(headers: &HeaderMap) -> bool {
    ["dnt", "sec-gpc"].iter().any(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1")
    })
}

/// Counts a page view of the web app: 204 whatever happens to it. Nothing is recorded
/// when the browser sends `DNT: 1` or `Sec-GPC: 1`; otherwise the view is stored with
/// the page's name, the signed-in user's id (a bearer session, or the session cookie
/// with the `X-Planscape-CSRF` header) and a visitor hash that changes every day (of
/// the address and user agent, under a salt kept only in memory); never the address.
#[utoipa::path(post, path = "/analytics/pageview", operation_id = "page_view", tag = "analytics",
    request_body = PageView,
    responses((status = 204, description = "counted (or, under DNT / Sec-GPC, not)")))]
pub async fn page_view(
    State(state): State<Arc<AppState>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(view): JsonBody<PageView>,
) -> StatusCode {
    if opted_out(&headers) || !state.analytics.enabled() {
        return StatusCode::NO_CONTENT;
    }
    // A cookie counts only with the CSRF header: another site cannot make a user's
    // browser add views to their account.
    let user = match credential(&headers) {
        Some((_, via)) if via == Via::Bearer || headers.contains_key(CSRF_HEADER) => {
            super::extract::session_user(&state, &headers)
                .await
                .ok()
                .flatten()
        }
        _ => None,
    };
    let address = state.client_address(peer.map(|c| (c.0).0), &headers);
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut event = Event::new(EventKind::PageView, user.map(|u| u.id)).detail(view.page.as_str());
    event.visitor = state.analytics.visitor(&address, agent);
    state.analytics.record(event);
    StatusCode::NO_CONTENT
}

/// JSON or CSV.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// JSON (default).
    #[default]
    Json,
    /// CSV with a header row, as a download.
    Csv,
}

/// The longest range a report covers, days.
pub const MAX_RANGE_DAYS: i64 = 732;

/// A report's date range and format.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), included; default today.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<DataFormat>,
}

/// The heat map's range, format and hexagon size.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CellQuery {
    /// First day, `YYYY-MM-DD` (UTC); default 29 days before `to`.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), included; default today.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub to: Option<String>,
    /// `json` (GeoJSON, default) or `csv`.
    #[param(inline)]
    pub format: Option<DataFormat>,
    /// Side of a hexagon, km (1 to 100; default 10).
    #[param(minimum = 1, maximum = 100)]
    pub cell_km: Option<u32>,
}

/// Just the format (the latency report has no range: it is since the server started).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<DataFormat>,
}

fn invalid_query(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
}

/// A query's parameters, or 400 naming what is wrong.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| invalid_query(e.body_text()))
}

/// The range asked for: `to` defaults to today, `from` to 29 days before `to`.
fn range(from: Option<&str>, to: Option<&str>) -> Result<DayRange, ApiError> {
    let day = |name: &str, text: &str| {
        report::parse_day(text).ok_or_else(|| {
            invalid_query(format!("`{name}` must be a date YYYY-MM-DD (2000 to 2999)"))
        })
    };
    let to = match to {
        Some(t) => day("to", t)?,
        None => today(),
    };
    let from = match from {
        Some(f) => day("from", f)?,
        None => to - 29,
    };
    if from > to {
        return Err(invalid_query("`from` is after `to`"));
    }
    if to - from >= MAX_RANGE_DAYS {
        return Err(invalid_query(format!(
            "a range covers at most {MAX_RANGE_DAYS} days"
        )));
    }
    Ok(DayRange { from, to })
}

/// A report as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct Report<T: ToSchema> {
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// The rows.
    pub rows: Vec<T>,
}

/// The report as JSON or as a CSV download named for the chart and range.
fn answer<T: Serialize + CsvRow + ToSchema>(
    chart: &str,
    range: DayRange,
    format: Option<DataFormat>,
    rows: Vec<T>,
) -> Response {
    let (from, to) = (report::format_day(range.from), report::format_day(range.to));
    match format.unwrap_or_default() {
        DataFormat::Csv => csv_response(&format!("planscape-{chart}-{from}-{to}.csv"), &rows),
        DataFormat::Json => Json(Report { from, to, rows }).into_response(),
    }
}

/// The daily roll-ups of a range, fresh up to the last flush.
async fn days(state: &AppState, range: DayRange) -> Result<Vec<(i64, DayCounts)>, ApiError> {
    state.analytics.refresh_for_reading().await;
    Ok(report::daily(&state.pool, range).await?)
}

/// The sum of a metric over its keys.
fn total(counts: &DayCounts, metric: &str) -> i64 {
    counts
        .iter()
        .filter(|((m, _), _)| m == metric)
        .map(|(_, v)| *v)
        .sum()
}

fn one(counts: &DayCounts, metric: &str, key: &str) -> i64 {
    counts
        .get(&(metric.to_owned(), key.to_owned()))
        .copied()
        .unwrap_or(0)
}

/// Daily activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityDay {
    /// The day (UTC).
    pub day: String,
    /// Signed-in users who did anything.
    pub active_users: i64,
    /// Distinct visitors of the web app (page views; signed in or not).
    pub visitors: i64,
    /// Page views.
    pub page_views: i64,
    /// Sign-ins.
    pub signins: i64,
}

impl CsvRow for ActivityDay {
    const HEADER: &'static [&'static str] =
        &["day", "active_users", "visitors", "page_views", "signins"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.active_users.to_string(),
            self.visitors.to_string(),
            self.page_views.to_string(),
            self.signins.to_string(),
        ]
    }
}

/// Sign-ups of a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupDay {
    /// The day (UTC).
    pub day: String,
    /// Accounts created.
    pub signups: i64,
}

impl CsvRow for SignupDay {
    const HEADER: &'static [&'static str] = &["day", "signups"];
    fn cells(&self) -> Vec<String> {
        vec![self.day.clone(), self.signups.to_string()]
    }
}

/// Plans of a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanDay {
    /// The day (UTC).
    pub day: String,
    /// Plans created (drawn or uploaded).
    pub created: i64,
    /// Plans renamed or redrawn.
    pub changed: i64,
    /// Invitations to plans sent.
    pub shared: i64,
    /// Scores (and area statistics) read.
    pub scores_read: i64,
}

impl CsvRow for PlanDay {
    const HEADER: &'static [&'static str] = &["day", "created", "changed", "shared", "scores_read"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.created.to_string(),
            self.changed.to_string(),
            self.shared.to_string(),
            self.scores_read.to_string(),
        ]
    }
}

/// Scenario runs of a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScenarioDay {
    /// The day (UTC).
    pub day: String,
    /// Runs that finished with results.
    pub done: i64,
    /// Runs that failed.
    pub failed: i64,
    /// Mean run time (queued time included), seconds; none without runs.
    pub mean_seconds: Option<f64>,
    /// Scenario exports.
    pub exports: i64,
}

impl CsvRow for ScenarioDay {
    const HEADER: &'static [&'static str] = &["day", "done", "failed", "mean_seconds", "exports"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.day.clone(),
            self.done.to_string(),
            self.failed.to_string(),
            self.mean_seconds
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
            self.exports.to_string(),
        ]
    }
}

/// Daily active users, visitors, page views and sign-ins.
#[utoipa::path(get, path = "/admin/analytics/activity", operation_id = "analytics_activity", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per day", content(
                  (Report<ActivityDay> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn activity(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let rows = days(&state, range)
        .await?
        .into_iter()
        .map(|(day, c)| ActivityDay {
            day: report::format_day(day),
            active_users: one(&c, "active_users", ""),
            visitors: one(&c, "visitors", ""),
            page_views: total(&c, "page_view"),
            signins: total(&c, "signin"),
        })
        .collect();
    Ok(answer("activity", range, q.format, rows))
}

/// Sign-ups per day.
#[utoipa::path(get, path = "/admin/analytics/signups", operation_id = "analytics_signups", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per day", content(
                  (Report<SignupDay> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn signups(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let rows = days(&state, range)
        .await?
        .into_iter()
        .map(|(day, c)| SignupDay {
            day: report::format_day(day),
            signups: total(&c, "signup"),
        })
        .collect();
    Ok(answer("signups", range, q.format, rows))
}

/// Plans created, changed and shared, and scores read, per day.
#[utoipa::path(get, path = "/admin/analytics/plans", operation_id = "analytics_plans", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per day", content(
                  (Report<PlanDay> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn plans(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let rows = days(&state, range)
        .await?
        .into_iter()
        .map(|(day, c)| PlanDay {
            day: report::format_day(day),
            created: total(&c, "plan_created"),
            changed: total(&c, "plan_changed"),
            shared: total(&c, "plan_shared"),
            scores_read: total(&c, "scores_read"),
        })
        .collect();
    Ok(answer("plans", range, q.format, rows))
}

/// Scenario runs (done, failed, mean time) and exports per day.
#[utoipa::path(get, path = "/admin/analytics/scenarios", operation_id = "analytics_scenarios", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per day", content(
                  (Report<ScenarioDay> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn scenarios(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let rows = days(&state, range)
        .await?
        .into_iter()
        .map(|(day, c)| {
            let runs = total(&c, "scenario_run");
            let ms = total(&c, "scenario_ms");
            ScenarioDay {
                day: report::format_day(day),
                done: one(&c, "scenario_run", "done"),
                failed: one(&c, "scenario_run", "failed"),
                mean_seconds: (runs > 0).then(|| ms as f64 / runs as f64 / 1e3),
                exports: total(&c, "export"),
            }
        })
        .collect();
    Ok(answer("scenarios", range, q.format, rows))
}

impl CsvRow for TileRequests {
    const HEADER: &'static [&'static str] = &["layer", "zoom", "requests"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.layer.clone(),
            self.zoom.to_string(),
            self.requests.to_string(),
        ]
    }
}

/// Tile requests by layer and zoom over the range (every layer, condition layers and
/// boundaries alike), most requested first.
#[utoipa::path(get, path = "/admin/analytics/tiles", operation_id = "analytics_tiles", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per layer and zoom", content(
                  (Report<TileRequests> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn tiles(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    state.analytics.refresh_for_reading().await;
    let rows = report::tiles(&state.pool, range).await?;
    Ok(answer("tiles", range, q.format, rows))
}

/// How often a condition layer was looked at.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionViews {
    /// The tile layer.
    pub layer: String,
    /// The condition's region.
    pub region: String,
    /// The condition.
    pub condition: String,
    /// Its name as shown.
    pub display_name: String,
    /// `normalized` or `raw` values.
    pub values: String,
    /// Tile requests over the range.
    pub requests: i64,
}

impl CsvRow for ConditionViews {
    const HEADER: &'static [&'static str] = &[
        "layer",
        "region",
        "condition",
        "display_name",
        "values",
        "requests",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.layer.clone(),
            self.region.clone(),
            self.condition.clone(),
            self.display_name.clone(),
            self.values.clone(),
            self.requests.to_string(),
        ]
    }
}

/// The condition layers looked at most (tile requests over the range, all zooms),
/// most viewed first.
#[utoipa::path(get, path = "/admin/analytics/conditions", operation_id = "analytics_conditions", tag = "analytics",
    params(RangeQuery),
    responses((status = 200, description = "one row per condition layer viewed", content(
                  (Report<ConditionViews> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn conditions(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    state.analytics.refresh_for_reading().await;
    let tiles = report::tiles(&state.pool, range).await?;
    let mut layers: HashMap<&str, (&crate::planning::conditions::Node, &str)> = HashMap::new();
    if let Some(c) = state.conditions.as_deref() {
        for node in c.nodes.values() {
            layers.insert(node.layer.as_str(), (node, "normalized"));
            if let Some(raw) = &node.raw_layer {
                layers.insert(raw.as_str(), (node, "raw"));
            }
        }
    }
    let mut by_layer: HashMap<&str, i64> = HashMap::new();
    for t in &tiles {
        if layers.contains_key(t.layer.as_str()) {
            *by_layer.entry(t.layer.as_str()).or_default() += t.requests;
        }
    }
    let mut rows: Vec<ConditionViews> = by_layer
        .into_iter()
        .filter_map(|(layer, requests)| {
            let (node, values) = layers.get(layer)?;
            Some(ConditionViews {
                layer: layer.to_owned(),
                region: node.region.clone(),
                condition: node.name.clone(),
                display_name: node.display_name.clone(),
                values: (*values).to_owned(),
                requests,
            })
        })
        .collect();
    rows.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.layer.cmp(&b.layer)));
    Ok(answer("conditions", range, q.format, rows))
}

impl CsvRow for report::PlanCell {
    const HEADER: &'static [&'static str] = &["i", "j", "lon", "lat", "plans"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.i.to_string(),
            self.j.to_string(),
            format!("{:.5}", self.lon),
            format!("{:.5}", self.lat),
            self.plans.to_string(),
        ]
    }
}

/// Where plans are drawn: the plans created over the range counted per hexagon (of
/// `cell_km` side, laid in California Albers, EPSG:3310), as a GeoJSON
/// FeatureCollection of hexagons (EPSG:4326) with `plans`, `i`, `j`; or CSV of the
/// hexagons' grid cells and centres.
#[utoipa::path(get, path = "/admin/analytics/plan-cells", operation_id = "analytics_plan_cells", tag = "analytics",
    params(CellQuery),
    responses((status = 200, description = "hexagons with their plans", content(
                  (Object = "application/geo+json"), (String = "text/csv"))),
              (status = 400, description = "a bad date, range, size or parameter"),
              (status = 403, description = "administrators only")))]
pub async fn plan_cells(
    State(state): State<Arc<AppState>>,
    _admin: Administrator,
    q: Result<Query<CellQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let range = range(q.from.as_deref(), q.to.as_deref())?;
    let km = q.cell_km.unwrap_or(10);
    if !(1..=100).contains(&km) {
        return Err(invalid_query("`cell_km` must be between 1 and 100"));
    }
    state.analytics.refresh_for_reading().await;
    let cells = report::plan_cells(&state.pool, range, f64::from(km) * 1e3).await?;
    let (from, to) = (report::format_day(range.from), report::format_day(range.to));
    if q.format == Some(DataFormat::Csv) {
        return Ok(csv_response(
            &format!("planscape-plan-cells-{from}-{to}.csv"),
            &cells,
        ));
    }
    let features: Vec<serde_json::Value> = cells
        .into_iter()
        .map(|c| {
            serde_json::json!({
                "type": "Feature",
                "geometry": c.geometry,
                "properties": { "i": c.i, "j": c.j, "plans": c.plans },
            })
        })
        .collect();
    let body = serde_json::json!({
        "type": "FeatureCollection",
        "from": from,
        "to": to,
        "cell_km": km,
        "features": features,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/geo+json")],
        body.to_string(),
    )
        .into_response())
}

impl CsvRow for RouteLatency {
    const HEADER: &'static [&'static str] = &["route", "requests", "p50_ms", "p95_ms"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.route.clone(),
            self.requests.to_string(),
            format!("{:.3}", self.p50_ms),
            format!("{:.3}", self.p95_ms),
        ]
    }
}

/// p50 and p95 response times per route of the server that answers, since it started
/// (its Prometheus histogram `http_request_duration_seconds`), slowest first. Behind a
/// load balancer each server has its own: scrape `/metrics` for all of them.
#[utoipa::path(get, path = "/admin/analytics/latency", operation_id = "analytics_latency", tag = "analytics",
    params(FormatQuery),
    responses((status = 200, description = "one row per route", content(
                  (Report<RouteLatency> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "a bad parameter"),
              (status = 403, description = "administrators only")))]
pub async fn latency(
    _admin: Administrator,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let rows = latency::current();
    let day = today();
    Ok(answer(
        "latency",
        DayRange { from: day, to: day },
        q.format,
        rows,
    ))
}
