//! Usage analytics against real PostGIS over real HTTP: events appear after the actions
//! that cause them, page-view beacons honour Do-Not-Track and Global Privacy Control,
//! roll-ups equal the raw counts, every analytics route answers 403 to non-admins, no IP
//! address reaches the database, and tile counters add up exactly under 50,000
//! concurrent requests.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::api::{API, call, email, send, share, signup};
use common::cli::{assert_success, planscape};
use common::{Scratch, TestServer, client, db_config, unique};
use reqwest::Method;
use serde_json::{Value, json};

/// The analytics routes, from the served OpenAPI document.
async fn analytics_routes(server: &TestServer) -> Vec<String> {
    let doc: Value = client()
        .get(format!("{}{API}/openapi.json", server.base))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let paths: Vec<String> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter(|p| p.starts_with("/admin/analytics/"))
        .cloned()
        .collect();
    assert_eq!(paths.len(), 8, "{paths:?}");
    paths
}

/// Makes the account with `mail` an administrator, through the CLI.
fn make_admin(mail: &str) {
    assert_success(
        &planscape(&["user", "admin", "--email", mail])
            .output()
            .expect("run planscape"),
    );
}

/// A connection to the test database.
async fn db() -> tokio_postgres::Client {
    planscape::db::connect(&db_config()).await.expect("db")
}

/// The kinds (with detail) of the raw events of a user, in order.
async fn events_of(user: i64) -> Vec<(String, Option<String>, Option<i64>)> {
    db().await
        .query(
            "SELECT kind, detail, plan_id FROM planscape.analytics_events WHERE user_id = $1 ORDER BY id",
            &[&user],
        )
        .await
        .expect("events")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// A square around a point, in lon/lat.
fn square(lon: f64, lat: f64, half: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[lon - half, lat - half], [lon + half, lat - half],
        [lon + half, lat + half], [lon - half, lat + half], [lon - half, lat - half]]]})
}

/// Coarse demo rasters and a one-metric catalog over them; returns (folder, config).
fn conditions_setup() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(unique("analytics"));
    let rasters = dir.join("rasters");
    planscape::demo::rasters::generate(&rasters, 2000.0, false).expect("demo rasters");
    let r = |name: &str| rasters.join(format!("{name}.tif")).display().to_string();
    let catalog = format!(
        r#"[[regions]]
name = "sierra_nevada"
display_name = "Sierra Nevada"
[[regions.pillars]]
name = "forest_resilience"
display_name = "Forest Resilience"
[[regions.pillars.elements]]
name = "structure"
display_name = "Structure"
[[regions.pillars.elements.metrics]]
name = "aboveground_biomass"
display_name = "Biomass"
raw = "{ab}"
normalized = "{abn}"
data_units = "tons/acre"
min_value = 0
max_value = 300
"#,
        ab = r("aboveground_biomass"),
        abn = r("aboveground_biomass_normalized"),
    );
    std::fs::write(dir.join("conditions.toml"), catalog).expect("catalog");
    let catalog = planscape::planning::conditions::Catalog::load(&dir.join("conditions.toml"))
        .expect("catalog");
    planscape::planning::conditions::build(&catalog, &dir.join("built")).expect("build");
    let toml = format!(
        "styles_dir = \"{styles}\"\n[conditions]\ncatalog = \"{c}\"\ndir = \"{built}\"\n",
        styles = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("styles")
            .display(),
        c = dir.join("conditions.toml").display(),
        built = dir.join("built").display(),
    );
    (dir, toml)
}

/// A page-view beacon with extra headers; asserts 204.
async fn beacon(server: &TestServer, token: Option<&str>, page: &str, headers: &[(&str, &str)]) {
    let mut req = client()
        .post(format!("{}{API}/analytics/pageview", server.base))
        .json(&json!({ "page": page }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("beacon");
    assert_eq!(resp.status(), 204);
}

/// Today's row of a daily report.
fn today_row(report: &Value) -> Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.last())
        .cloned()
        .expect("a row for today")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_appear_after_the_actions_that_cause_them() {
    let (dir, toml) = conditions_setup();
    let server = TestServer::start(&toml).await;
    let (owner, owner_id, owner_mail) = signup(&server, "An").await;
    let (friend, _, friend_mail) = signup(&server, "An").await;
    // A sign-in.
    let (status, _, _) = call(
        &server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": owner_mail, "password": "a good long password"})),
    )
    .await;
    assert_eq!(status, 200);
    // A plan drawn, renamed, shared; its scores read.
    let (status, _, plan) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&owner),
        Some(json!({"name": "analytics", "region": "sierra_nevada", "geometry": square(-119.6, 37.6, 0.1)})),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    let id = plan["id"].as_i64().expect("id");
    let (status, _, _) = call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&owner),
        Some(json!({"name": "analytics, renamed"})),
    )
    .await;
    assert_eq!(status, 200);
    share(&server, &owner, id, &friend_mail, "viewer", &friend).await;
    let (status, _, _) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}/scores"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A scenario run to its end, and exported.
    let (status, _, scenario) = call(
        &server,
        Method::POST,
        &format!("/plans/{id}/scenarios"),
        Some(&owner),
        Some(json!({"name": "run", "stand_size_acres": 500, "max_treatment_share": 0.3, "max_project_areas": 2,
                    "priorities": [{"condition": "aboveground_biomass", "weight": 1.0}]})),
    )
    .await;
    assert_eq!(status, 202, "{scenario}");
    let sid = scenario["id"].as_i64().expect("sid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, _, s) = call(
            &server,
            Method::GET,
            &format!("/scenarios/{sid}"),
            Some(&owner),
            None,
        )
        .await;
        if s["status"] == "done" {
            break;
        }
        assert_ne!(s["status"], "failed", "{s}");
        assert!(
            std::time::Instant::now() < deadline,
            "scenario never finished: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let export = send(
        &server,
        Method::GET,
        &format!("{API}/scenarios/{sid}/export?format=csv"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(export.status(), 200);
    // Page views: counted, except under Do-Not-Track or Global Privacy Control.
    beacon(&server, Some(&owner), "app", &[]).await;
    beacon(&server, Some(&owner), "plan", &[("DNT", "1")]).await;
    beacon(&server, Some(&owner), "scenario", &[("Sec-GPC", "1")]).await;
    // A cookie without the CSRF header is not taken as the user's.
    beacon(
        &server,
        None,
        "dashboard",
        &[("Cookie", "planscape_session=whatever")],
    )
    .await;

    server.state.analytics.flush().await;
    let kinds = events_of(owner_id).await;
    let plain: Vec<(&str, Option<&str>)> = kinds
        .iter()
        .map(|(k, d, _)| (k.as_str(), d.as_deref()))
        .collect();
    assert_eq!(
        plain,
        [
            ("signup", None),
            ("signin", None),
            ("plan_created", Some("drawn")),
            ("plan_changed", None),
            ("plan_shared", Some("viewer")),
            ("scores_read", None),
            ("scenario_run", Some("done")),
            ("export", Some("csv")),
            ("page_view", Some("app")),
        ],
        "{kinds:?}"
    );
    assert!(kinds[2..8].iter().take(5).all(|(_, _, p)| *p == Some(id)));
    // The run's duration, the plan's location (snapped to 0.01 degrees, on the plan).
    let client = db().await;
    let row = client
        .query_one(
            "SELECT (SELECT duration_ms FROM planscape.analytics_events WHERE user_id = $1 AND kind = 'scenario_run'), \
                    (SELECT ST_X(location) FROM planscape.analytics_events WHERE user_id = $1 AND kind = 'plan_created'), \
                    (SELECT ST_Y(location) FROM planscape.analytics_events WHERE user_id = $1 AND kind = 'plan_created')",
            &[&owner_id],
        )
        .await
        .expect("row");
    assert!(row.get::<_, Option<i64>>(0).is_some_and(|ms| ms >= 0));
    let (lon, lat): (f64, f64) = (row.get(1), row.get(2));
    assert!(
        (lon + 119.6).abs() <= 0.11 && (lat - 37.6).abs() <= 0.11,
        "{lon} {lat}"
    );
    assert!(
        ((lon * 100.0).round() - lon * 100.0).abs() < 1e-6,
        "snapped: {lon}"
    );
    // The anonymous beacon was counted without a user; those under DNT / GPC not at all.
    let pages: Vec<String> = client
        .query(
            "SELECT detail FROM planscape.analytics_events WHERE kind = 'page_view' AND at > now() - interval '10 minutes' \
             AND detail IN ('plan', 'scenario', 'dashboard') AND (user_id IS NULL OR user_id = $1)",
            &[&owner_id],
        )
        .await
        .expect("pages")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(pages.contains(&"dashboard".to_owned()), "{pages:?}");
    let opted_out = client
        .query_one(
            "SELECT count(*) FROM planscape.analytics_events WHERE user_id = $1 AND detail IN ('plan', 'scenario') \
             AND kind = 'page_view'",
            &[&owner_id],
        )
        .await
        .expect("count");
    assert_eq!(opted_out.get::<_, i64>(0), 0);

    // The dashboard's reports show them (today's rows count at least these).
    make_admin(&owner_mail);
    let report = |path: &'static str| {
        let (server, owner) = (&server, owner.clone());
        async move {
            let (status, _, body) = call(server, Method::GET, path, Some(&owner), None).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };
    let activity = today_row(&report("/admin/analytics/activity").await);
    assert!(activity["active_users"].as_i64() >= Some(2), "{activity}");
    assert!(activity["page_views"].as_i64() >= Some(2), "{activity}");
    assert!(activity["visitors"].as_i64() >= Some(1), "{activity}");
    assert!(activity["signins"].as_i64() >= Some(1), "{activity}");
    let signups = today_row(&report("/admin/analytics/signups").await);
    assert!(signups["signups"].as_i64() >= Some(2), "{signups}");
    let plans = today_row(&report("/admin/analytics/plans").await);
    for field in ["created", "changed", "shared", "scores_read"] {
        assert!(plans[field].as_i64() >= Some(1), "{field}: {plans}");
    }
    let runs = today_row(&report("/admin/analytics/scenarios").await);
    assert!(runs["done"].as_i64() >= Some(1), "{runs}");
    assert!(runs["exports"].as_i64() >= Some(1), "{runs}");
    assert!(runs["mean_seconds"].as_f64().is_some(), "{runs}");
    let (status, headers, cells) = call(
        &server,
        Method::GET,
        "/admin/analytics/plan-cells?cell_km=5",
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 200, "{cells}");
    assert_eq!(headers["content-type"], "application/geo+json");
    assert_eq!(cells["type"], "FeatureCollection");
    let near = cells["features"]
        .as_array()
        .expect("features")
        .iter()
        .any(|f| {
            f["properties"]["plans"].as_i64() >= Some(1) && f["geometry"]["type"] == "Polygon"
        });
    assert!(near, "{cells}");
    // Condition layers looked at, through their tiles.
    for z in [5, 6] {
        let (x, y) = if z == 5 { (5, 12) } else { (10, 24) };
        let tile = server
            .get(
                &format!("/tiles/sierra_nevada_aboveground_biomass/{z}/{x}/{y}.png"),
                &[],
            )
            .await;
        assert!(tile.status().is_success(), "{}", tile.status());
    }
    server.state.analytics.flush().await;
    let (_, _, conditions) = call(
        &server,
        Method::GET,
        "/admin/analytics/conditions",
        Some(&owner),
        None,
    )
    .await;
    let biomass = conditions["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["layer"] == "sierra_nevada_aboveground_biomass")
        .cloned()
        .expect("the biomass layer was viewed");
    assert_eq!(biomass["display_name"], "Biomass");
    assert!(biomass["requests"].as_i64() >= Some(2), "{biomass}");
    // CSV of a chart.
    let csv = send(
        &server,
        Method::GET,
        &format!("{API}/admin/analytics/signups?format=csv"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .expect("header")
            .starts_with("attachment; filename=\"planscape-signups-")
    );
    let text = csv.text().await.expect("csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("day,signups"));
    assert_eq!(lines.count(), 30, "30 days by default");
    // Latency per route, from this server's histograms.
    let (_, _, latency) = call(
        &server,
        Method::GET,
        "/admin/analytics/latency",
        Some(&owner),
        None,
    )
    .await;
    let plans_route = latency["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["route"] == "/planscape-backend/plans")
        .cloned()
        .expect("the plans route");
    assert!(plans_route["requests"].as_u64() >= Some(1));
    assert!(plans_route["p95_ms"].as_f64() >= plans_route["p50_ms"].as_f64());
    // Bad ranges are 400 with a clear message.
    for query in [
        "from=2024-02-30",
        "to=yesterday",
        "from=2024-03-02&to=2024-03-01",
        "from=2020-01-01&to=2024-01-01",
        "days=3",
    ] {
        let (status, _, body) = call(
            &server,
            Method::GET,
            &format!("/admin/analytics/activity?{query}"),
            Some(&owner),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query");
    }
    let (status, _, _) = call(
        &server,
        Method::GET,
        "/admin/analytics/plan-cells?cell_km=0",
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_ups_equal_the_raw_counts() {
    let server = TestServer::start("").await;
    let client = db().await;
    // Days of their own, far ahead, that nothing else writes (and nothing prunes).
    let first = planscape::analytics::report::parse_day("2990-01-01").expect("day")
        + i64::from(std::process::id() % 300) * 3;
    let days = [first, first + 1];
    let kinds = [
        "signup",
        "signin",
        "plan_created",
        "page_view",
        "scenario_run",
    ];
    let mut n = 0i64;
    for (d, day) in days.iter().enumerate() {
        for i in 0..40i64 {
            n += 1;
            let kind = kinds[(i as usize + d) % kinds.len()];
            let detail = match kind {
                "scenario_run" => Some(if i % 3 == 0 { "failed" } else { "done" }),
                "page_view" => Some("app"),
                _ => None,
            };
            client
                .execute(
                    "INSERT INTO planscape.analytics_events (at, kind, user_id, visitor, detail, duration_ms, location) \
                     VALUES ((date '1970-01-01' + $1::int4)::timestamp AT TIME ZONE 'UTC' + make_interval(secs => $2::float8), \
                             $3, $4, $5, $6, $7, \
                             CASE WHEN $3 = 'plan_created' THEN ST_SetSRID(ST_MakePoint(-120 + ($8::int % 3) * 0.01, 38), 4326) END)",
                    &[
                        &(*day as i32),
                        &((i * 2000) as f64),
                        &kind,
                        &(i % 7 + 1_000_000_000),
                        &(if kind == "page_view" { Some(i % 5) } else { None }),
                        &detail,
                        &(if kind == "scenario_run" { Some(i * 100) } else { None }),
                        &(i as i32),
                    ],
                )
                .await
                .expect("insert");
        }
    }
    assert_eq!(n, 80);
    for day in days {
        planscape::analytics::rollup::roll_up(&server.state.pool, day)
            .await
            .expect("roll up");
        // Twice changes nothing.
        planscape::analytics::rollup::roll_up(&server.state.pool, day)
            .await
            .expect("roll up");
    }
    let day_sql = "(at AT TIME ZONE 'UTC')::date - date '1970-01-01'";
    let raw = |sql: String| {
        let client = &client;
        async move {
            client
                .query(&sql, &[&(first as i32), &(first as i32 + 1)])
                .await
                .expect("query")
                .iter()
                .map(|r| {
                    (
                        (
                            r.get::<_, i32>(0),
                            r.get::<_, String>(1),
                            r.get::<_, String>(2),
                        ),
                        r.get::<_, i64>(3),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let expected = raw(format!(
        "SELECT {day_sql} AS d, kind, coalesce(detail, ''), count(*) FROM planscape.analytics_events \
         WHERE {day_sql} BETWEEN $1 AND $2 GROUP BY 1, 2, 3 \
         UNION ALL SELECT {day_sql}, 'active_users', '', count(DISTINCT user_id) FROM planscape.analytics_events \
         WHERE {day_sql} BETWEEN $1 AND $2 AND user_id IS NOT NULL GROUP BY 1 \
         UNION ALL SELECT {day_sql}, 'visitors', '', count(DISTINCT visitor) FROM planscape.analytics_events \
         WHERE {day_sql} BETWEEN $1 AND $2 AND visitor IS NOT NULL GROUP BY 1 \
         UNION ALL SELECT {day_sql}, 'scenario_ms', detail, sum(duration_ms)::int8 FROM planscape.analytics_events \
         WHERE {day_sql} BETWEEN $1 AND $2 AND kind = 'scenario_run' GROUP BY 1, 3"
    ))
    .await;
    let rolled = raw(
        "SELECT day - date '1970-01-01', metric, key, value FROM planscape.analytics_daily \
         WHERE day - date '1970-01-01' BETWEEN $1 AND $2"
            .to_owned(),
    )
    .await;
    assert_eq!(rolled, expected);
    assert_eq!(
        rolled
            .iter()
            .filter(|((_, m, _), _)| is_event_kind(m))
            .map(|(_, v)| v)
            .sum::<i64>(),
        80
    );
    // The plans' points.
    let points: i64 = client
        .query_one(
            "SELECT coalesce(sum(plans), 0)::int8 FROM planscape.analytics_plan_points \
             WHERE day - date '1970-01-01' BETWEEN $1 AND $2",
            &[&(first as i32), &(first as i32 + 1)],
        )
        .await
        .expect("points")
        .get(0);
    let created = rolled
        .iter()
        .filter(|((_, m, _), _)| m == "plan_created")
        .map(|(_, v)| v)
        .sum::<i64>();
    assert_eq!(points, created);
    // The API reads the same from the roll-ups.
    let (_, admin_id, admin_mail) = signup(&server, "Ad").await;
    make_admin(&admin_mail);
    let (status, _, login) = call(
        &server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": admin_mail, "password": "a good long password"})),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["user"]["id"], admin_id);
    assert_eq!(login["user"]["is_admin"], true);
    let token = login["token"].as_str().expect("token");
    let from = planscape::analytics::report::format_day(first);
    let to = planscape::analytics::report::format_day(first + 1);
    let (status, _, signups) = call(
        &server,
        Method::GET,
        &format!("/admin/analytics/signups?from={from}&to={to}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{signups}");
    let api_total: i64 = signups["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["signups"].as_i64().unwrap_or(0))
        .sum();
    let raw_total: i64 = expected
        .iter()
        .filter(|((_, m, _), _)| m == "signup")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(api_total, raw_total);
    // Cleaned up (the roll-ups of those days too).
    client
        .execute(
            &format!("DELETE FROM planscape.analytics_events WHERE {day_sql} BETWEEN $1 AND $2"),
            &[&(first as i32), &(first as i32 + 1)],
        )
        .await
        .expect("clean");
    for table in ["analytics_daily", "analytics_plan_points"] {
        client
            .execute(
                &format!(
                    "DELETE FROM planscape.{table} WHERE day - date '1970-01-01' BETWEEN $1 AND $2"
                ),
                &[&(first as i32), &(first as i32 + 1)],
            )
            .await
            .expect("clean");
    }
    server.stop().await;
}

/// Whether a roll-up metric is an event kind (not a distinct count or a duration).
fn is_event_kind(metric: &str) -> bool {
    planscape::analytics::EventKind::ALL
        .iter()
        .any(|k| k.as_str() == metric)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_read_analytics() {
    let server = TestServer::start_with_env(
        "",
        &[("PLANSCAPE_ADMIN_TOKEN", "an admin token of 32 chars!!")],
    )
    .await;
    let routes = analytics_routes(&server).await;
    let (user, _, _) = signup(&server, "Nu").await;
    let (admin, _, admin_mail) = signup(&server, "Ad").await;
    make_admin(&admin_mail);
    for route in &routes {
        for query in ["", "?format=csv", "?from=2026-01-01&to=2026-01-31"] {
            let path = format!("{route}{query}");
            let (status, _, body) = call(&server, Method::GET, &path, Some(&user), None).await;
            assert_eq!(status, 403, "{path}: {body}");
            assert_eq!(body["error"]["code"], "forbidden");
            let (status, _, _) = call(&server, Method::GET, &path, None, None).await;
            assert_eq!(status, 401, "{path}");
            let (status, _, _) =
                call(&server, Method::GET, &path, Some("not-a-session"), None).await;
            assert_eq!(status, 401, "{path}");
        }
        let (status, _, body) = call(&server, Method::GET, route, Some(&admin), None).await;
        assert_eq!(status, 200, "{route}: {body}");
        let (status, _, _) = call(
            &server,
            Method::GET,
            route,
            Some("an admin token of 32 chars!!"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{route} with the admin token");
    }
    // Revoked: 403 again at once.
    assert_success(
        &planscape(&["user", "admin", "--email", &admin_mail, "--revoke"])
            .output()
            .expect("run"),
    );
    let (status, _, _) = call(&server, Method::GET, &routes[0], Some(&admin), None).await;
    assert_eq!(status, 403);
    let out = planscape(&["user", "admin", "--email", &email("nobody")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ip_address_reaches_the_database() {
    // The server believes the loopback proxy's X-Real-IP, as behind nginx: the client
    // address it sees is the one below, and must not be stored.
    let server = TestServer::start("[http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let ip = "203.0.113.177";
    let v6 = "2001:db8::177";
    let (token, user, mail) = signup(&server, "Ip").await;
    for real_ip in [ip, v6] {
        let resp = client()
            .post(format!("{}{API}/auth/login", server.base))
            .header("X-Real-IP", real_ip)
            .header("X-Forwarded-For", real_ip)
            .json(&json!({"email": mail, "password": "a good long password"}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200);
        beacon(
            &server,
            Some(&token),
            "app",
            &[("X-Real-IP", real_ip), ("User-Agent", real_ip)],
        )
        .await;
        beacon(&server, None, "plan", &[("X-Forwarded-For", real_ip)]).await;
    }
    server.state.analytics.flush().await;
    let client = db().await;
    // The visitor was recorded, as a hash.
    let hashed: i64 = client
        .query_one(
            "SELECT count(*) FROM planscape.analytics_events WHERE user_id = $1 AND kind = 'page_view' AND visitor IS NOT NULL",
            &[&user],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(hashed, 2);
    // Every column of every table of the schema, as text: neither address anywhere.
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'planscape' AND table_name NOT LIKE 'spatial_ref_sys'",
            &[],
        )
        .await
        .expect("columns");
    assert!(columns.len() > 20);
    for c in &columns {
        let (table, column): (String, String) = (c.get(0), c.get(1));
        let found: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM planscape.\"{table}\" WHERE \"{column}\"::text LIKE '%' || $1 || '%' \
                     OR \"{column}\"::text LIKE '%' || $2 || '%'"
                ),
                &[&ip, &v6],
            )
            .await
            .expect("search")
            .get(0);
        assert_eq!(found, 0, "{table}.{column} holds the client's address");
    }
    // And nothing that looks like any address in the analytics tables.
    for c in columns
        .iter()
        .filter(|c| c.get::<_, String>(0).starts_with("analytics_"))
    {
        let (table, column): (String, String) = (c.get(0), c.get(1));
        let found: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM planscape.\"{table}\" WHERE \"{column}\"::text ~ \
                     '(\\m[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}\\M)|(([0-9a-fA-F]{{1,4}}:){{7}}[0-9a-fA-F]{{1,4}})|::'"
                ),
                &[],
            )
            .await
            .expect("search")
            .get(0);
        assert_eq!(found, 0, "{table}.{column} holds something like an address");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tile_counters_add_up_under_50000_concurrent_requests() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let (a, b) = (unique("load_a"), unique("load_b"));
    let layer = |name: &str| {
        format!(
            "[layers.{name}]\ntype = \"vector\"\ntable = \"{}.counties\"\nid = \"id\"\n",
            scratch.schema
        )
    };
    // Flushes every second, so the counters are written while they are counted.
    let server = TestServer::start(&format!(
        "[analytics]\nflush_interval_s = 1\n{}{}",
        layer(&a),
        layer(&b)
    ))
    .await;
    // Every request: layer a or b, zoom 0 to 7, the tile at the top-left corner.
    const REQUESTS: usize = 50_000;
    const WORKERS: usize = 32;
    let paths: Arc<Vec<(String, u8)>> = Arc::new(
        (0..REQUESTS)
            .map(|i| {
                let (name, z) = (if i % 3 == 0 { &a } else { &b }, (i % 8) as u8);
                (format!("{}/tiles/{name}/{z}/0/0.mvt", server.base), z)
            })
            .collect(),
    );
    let mut expected: BTreeMap<(String, u8), i64> = BTreeMap::new();
    for (i, (_, z)) in paths.iter().enumerate() {
        let name = if i % 3 == 0 { &a } else { &b };
        *expected.entry((name.clone(), *z)).or_default() += 1;
    }
    let http = client();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (paths, http) = (Arc::clone(&paths), http.clone());
            tokio::spawn(async move {
                let mut ok = 0usize;
                for (url, _) in paths.iter().skip(w).step_by(WORKERS) {
                    let resp = http.get(url).send().await.expect("request");
                    assert!(resp.status().is_success(), "{url}: {}", resp.status());
                    let _ = resp.bytes().await;
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.expect("worker");
    }
    assert_eq!(done, REQUESTS);
    // The shutdown writes what the last flush left.
    let pool = server.state.pool.clone();
    server.stop().await;
    let rows = pool
        .get()
        .await
        .expect("client")
        .query(
            "SELECT layer, zoom, sum(requests)::int8 FROM planscape.analytics_tiles \
             WHERE layer = $1 OR layer = $2 GROUP BY layer, zoom",
            &[&a, &b],
        )
        .await
        .expect("tiles");
    let got: BTreeMap<(String, u8), i64> = rows
        .iter()
        .map(|r| ((r.get(0), r.get::<_, i16>(1) as u8), r.get(2)))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(got.values().sum::<i64>(), REQUESTS as i64);
    scratch.cleanup().await;
}
