//! The REST API under /planscape-backend: accounts and sessions, login rate limits, CSRF,
//! plans with geometry checks against PostGIS, sharing with the full permission matrix,
//! plan tiles, and the OpenAPI document. Real PostGIS, real HTTP.

mod common;

use std::time::Duration;

use common::api::{API, call, email, invitation_to, send, share, signup};
use common::cli::{assert_success, planscape};
use common::{TestServer, client, shared_data, unique};
use reqwest::Method;
use serde_json::{Value, json};

/// A GeoJSON file of the shared data.
fn geojson(file: &str) -> Value {
    let text = std::fs::read_to_string(shared_data(&format!("planscape/{file}"))).expect("file");
    serde_json::from_str(&text).expect("json")
}

/// The planning areas of a file: each feature is one area.
fn areas(file: &str) -> Vec<Value> {
    let value = geojson(file);
    match value["features"].as_array() {
        Some(features) => features.iter().map(|f| f["geometry"].clone()).collect(),
        None => vec![bare(&value)],
    }
}

async fn new_plan(server: &TestServer, token: &str, file: &str) -> Value {
    let (status, _, body) = call(
        server,
        Method::POST,
        "/plans",
        Some(token),
        Some(json!({"name": file, "region": "southern_california", "geometry": geojson(file)})),
    )
    .await;
    assert_eq!(status, 201, "{file}: {body}");
    body
}

/// `GET /auth/me` with a token (or none): the status.
async fn me_status(server: &TestServer, token: Option<&str>) -> u16 {
    call(server, Method::GET, "/auth/me", token, None).await.0
}

/// `POST /auth/login`.
async fn login(server: &TestServer, form: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    call(server, Method::POST, "/auth/login", None, Some(form)).await
}

fn error_field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_sessions_and_passwords() {
    let server = TestServer::start("").await;
    let mail = email("ana");
    let form =
        json!({"email": mail.to_uppercase(), "password": "first password ok", "name": "Ana"});
    let (status, headers, body) = call(
        &server,
        Method::POST,
        "/auth/signup",
        None,
        Some(form.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["user"]["email"], mail,
        "emails are stored in lower case"
    );
    let cookie = headers["set-cookie"].to_str().expect("cookie");
    assert!(cookie.starts_with("planscape_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag");
    let token = body["token"].as_str().expect("token").to_owned();

    let (status, _, body) = call(&server, Method::POST, "/auth/signup", None, Some(form)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("email_taken"))
    );
    assert_eq!(
        body["error"]["field"], "email",
        "the field it names: {body}"
    );

    let (status, _, me) = call(&server, Method::GET, "/auth/me", Some(&token), None).await;
    assert_eq!((status, me["email"].as_str()), (200, Some(mail.as_str())));
    assert!(me.get("password_hash").is_none());
    // The scheme's name is case-insensitive (RFC 7235).
    for scheme in ["bearer", "BEARER"] {
        let r = client()
            .get(format!("{}{API}/auth/me", server.base))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{scheme}");
    }
    assert_eq!(me_status(&server, None).await, 401);
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/auth/me",
            Some("x".repeat(43).as_str()),
            None
        )
        .await
        .0,
        401
    );

    // Same answer for a wrong password and an unknown email.
    let (s1, _, wrong) = login(
        &server,
        json!({"email": mail, "password": "not the password"}),
    )
    .await;
    let (s2, _, unknown) = login(
        &server,
        json!({"email": email("nobody"), "password": "not the password"}),
    )
    .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong, unknown);

    // Password change: the wrong current password is refused; then every session ends.
    let (_, _, session) = login(
        &server,
        json!({"email": mail, "password": "first password ok"}),
    )
    .await;
    let second = session["token"].as_str().expect("token").to_owned();
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/auth/password",
        Some(&token),
        Some(json!({"current_password": "nope nope nope", "new_password": "second password ok"})),
    )
    .await;
    assert_eq!((status, error_field(&body)), (422, "current_password"));
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/auth/password",
        Some(&token),
        Some(json!({"current_password": "first password ok", "new_password": "short"})),
    )
    .await;
    assert_eq!((status, error_field(&body)), (422, "new_password"));
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/auth/password",
        Some(&token),
        Some(
            json!({"current_password": "first password ok", "new_password": "second password ok"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let third = body["token"].as_str().expect("token").to_owned();
    for old in [&token, &second] {
        assert_eq!(me_status(&server, Some(old)).await, 401);
    }
    assert_eq!(me_status(&server, Some(&third)).await, 200);
    let (status, _, _) = login(
        &server,
        json!({"email": mail, "password": "first password ok"}),
    )
    .await;
    assert_eq!(status, 401);

    // Logout revokes the session.
    assert_eq!(
        call(&server, Method::POST, "/auth/logout", Some(&third), None)
            .await
            .0,
        204
    );
    assert_eq!(me_status(&server, Some(&third)).await, 401);

    // Bad bodies.
    let raw = |body: &'static str, content_type: &'static str| {
        client()
            .post(format!("{}{API}/auth/signup", server.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("{not json", "application/json")
            .await
            .expect("send")
            .status(),
        400
    );
    assert_eq!(raw("{}", "text/plain").await.expect("send").status(), 415);
    for (body, field) in [
        (
            json!({"email": 5, "password": "a good long password", "name": "x"}),
            "email",
        ),
        (
            json!({"password": "a good long password", "name": "x"}),
            "email",
        ),
        (
            json!({"email": "a@b.org", "password": "a good long password", "name": "x", "admin": true}),
            "admin",
        ),
        (
            json!({"email": "not-an-email", "password": "a good long password", "name": "x"}),
            "email",
        ),
        (
            json!({"email": email("p"), "password": "short", "name": "x"}),
            "password",
        ),
        (
            json!({"email": email("n"), "password": "a good long password", "name": ""}),
            "name",
        ),
    ] {
        let (status, _, err) = call(
            &server,
            Method::POST,
            "/auth/signup",
            None,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(error_field(&err), field, "{body}: {err}");
    }
    server.stop().await;

    // Sessions expire; behind HTTPS the cookie is `Secure`.
    let server = TestServer::start(
        "public_url = \"https://maps.example.org\"\n[accounts]\nsession_ttl_s = 1\n",
    )
    .await;
    let (status, headers, body) = call(
        &server,
        Method::POST,
        "/auth/signup",
        None,
        Some(json!({"email": email("brief"), "password": "a good long password", "name": "B"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let cookie = headers["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let token = body["token"].as_str().expect("token").to_owned();
    assert_eq!(me_status(&server, Some(&token)).await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(me_status(&server, Some(&token)).await, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_rate_limited_per_client_and_per_account() {
    // The test's requests come through a "proxy" on loopback naming the client.
    let server = TestServer::start(
        "[accounts]\nlogin_max_failures = 3\nlogin_window_s = 60\n\
         [http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let (_, _, mail) = signup(&server, "target").await;
    let login = |ip: &'static str, email: String, password: &'static str| {
        client()
            .post(format!("{}{API}/auth/login", server.base))
            .header("x-real-ip", ip)
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    // Per account: failures from many addresses lock the account for clients without a
    // device cookie of it (tests/login_limits.rs), even for the right password.
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_eq!(
            login(ip, mail.clone(), "wrong password!")
                .await
                .expect("send")
                .status(),
            401
        );
    }
    let blocked = login("10.0.0.4", mail.clone(), "a good long password")
        .await
        .expect("send");
    assert_eq!(blocked.status(), 429);
    let retry: u64 = blocked.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    // Per client: one address trying many accounts.
    for _ in 0..3 {
        let r = login("10.9.9.9", email("guess"), "wrong password!")
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
    }
    let (_, _, other) = signup(&server, "other").await;
    let r = login("10.9.9.9", other.clone(), "a good long password")
        .await
        .expect("send");
    assert_eq!(r.status(), 429);
    // Another address still logs the other account in.
    let r = login("10.1.1.1", other, "a good long password")
        .await
        .expect("send");
    assert_eq!(r.status(), 200);

    // Guessing the current password through a (stolen) session spends the session's
    // allowance: the right one is then refused as well.
    let (token, _, _) = signup(&server, "session").await;
    let change = |current: &'static str| {
        client()
            .post(format!("{}{API}/auth/password", server.base))
            .bearer_auth(&token)
            .json(
                &json!({"current_password": current, "new_password": "another good long password"}),
            )
            .send()
    };
    for _ in 0..3 {
        assert_eq!(change("wrong password!").await.expect("send").status(), 422);
    }
    let r = change("a good long password").await.expect("send");
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Sign-ups have an allowance of their own per client: an office signing up more
    // people than the login limit still logs in from the same address.
    let signup_from = |ip: &'static str, mail: String| {
        client()
            .post(format!("{}{API}/auth/signup", server.base))
            .header("x-real-ip", ip)
            .json(&json!({"email": mail, "password": "a good long password", "name": "staff"}))
            .send()
    };
    let mut staff = Vec::new();
    for _ in 0..3 {
        let mail = email("staff");
        assert_eq!(
            signup_from("10.5.5.5", mail.clone())
                .await
                .expect("send")
                .status(),
            201
        );
        staff.push(mail);
    }
    assert_eq!(
        signup_from("10.5.5.5", email("staff"))
            .await
            .expect("send")
            .status(),
        429
    );
    let r = login("10.5.5.5", staff[0].clone(), "a good long password")
        .await
        .expect("send");
    assert_eq!(r.status(), 200);

    // (Invitations are limited per inviter, and say nothing about accounts: the
    // `invitations` tests.)
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_need_the_csrf_header_and_a_same_origin() {
    let server = TestServer::start("").await;
    let (token, _, _) = signup(&server, "cookie").await;
    let cookie = format!("planscape_session={token}");
    let body = json!({"name": "p", "region": "southern_california", "geometry": geojson("sandiego.geojson")});
    let post = |headers: Vec<(&'static str, String)>| {
        let mut req = client()
            .post(format!("{}{API}/plans", server.base))
            .header("cookie", cookie.clone())
            .json(&body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let r = post(vec![]).await.expect("send");
    assert_eq!(r.status(), 403);
    let r = post(vec![
        ("x-planscape-csrf", "1".into()),
        ("origin", "https://evil.example".into()),
    ])
    .await
    .expect("send");
    assert_eq!(r.status(), 403);
    let r = post(vec![
        ("x-planscape-csrf", "1".into()),
        ("origin", server.base.clone()),
    ])
    .await
    .expect("send");
    assert_eq!(r.status(), 201);
    // Reads with the cookie need nothing more; bearer tokens need no header.
    let r = client()
        .get(format!("{}{API}/plans", server.base))
        .header("cookie", cookie.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let (status, _, _) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&token),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_areas_agree_with_postgis_and_bad_geometry_is_refused() {
    let server =
        TestServer::start("[accounts]\nmax_body_kb = 256\nplan_max_area_acres = 4000000\n").await;
    let (token, _, _) = signup(&server, "planner").await;
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("db");
    let (mut count, mut refused) = (0, 0);
    for file in [
        "sandiego.geojson",
        "riverside.geojson",
        "around_LA.geojson",
        "palmsprings_sanbernardino.geojson",
    ] {
        for area in areas(file) {
            let geometry = area.to_string();
            // PostGIS is the reference: one of the real drawn areas crosses itself.
            let valid: bool = db
                .query_one("SELECT ST_IsValid(ST_GeomFromGeoJSON($1))", &[&geometry])
                .await
                .expect("validity")
                .get(0);
            let (status, _, plan) = call(
                &server,
                Method::POST,
                "/plans",
                Some(&token),
                Some(json!({"name": file, "region": "southern_california", "geometry": area})),
            )
            .await;
            if !valid {
                assert_eq!(status, 422, "{file}: {plan}");
                let message = plan["error"]["message"].as_str().unwrap_or("");
                assert!(message.contains("Self-intersection"), "{message}");
                refused += 1;
                continue;
            }
            assert_eq!(status, 201, "{file}: {plan}");
            count += 1;
            let row = db
            .query_one(
                "SELECT ST_Area(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326)::geography) / 4046.8564224",
                &[&geometry],
            )
            .await
            .expect("area");
            let reference: f64 = row.get(0);
            let acres = plan["area_acres"].as_f64().expect("acres");
            assert!(
                ((acres - reference) / reference).abs() < 0.005,
                "{file}: {acres} vs {reference}"
            );
            assert_eq!(plan["geometry"]["type"], "MultiPolygon");
            assert_eq!(plan["role"], "owner");
        }
    }
    assert!(
        count >= 4 && refused == 1,
        "{count} accepted, {refused} refused"
    );
    let (_, _, before) = call(&server, Method::GET, "/plans", Some(&token), None).await;
    assert_eq!(before.as_array().expect("list").len(), count);

    let good = bare(&geojson("sandiego.geojson"));
    let ring = good["coordinates"][0].as_array().expect("ring").clone();
    // A bow tie: swap two vertices of the real outline.
    let mut bowtie = ring.clone();
    bowtie.swap(1, ring.len() / 2);
    let bowtie = json!({"type": "Polygon", "coordinates": [bowtie]});
    // The same outline moved 8 degrees east: Arizona.
    let moved: Vec<Value> = ring
        .iter()
        .map(|p| json!([p[0].as_f64().unwrap_or(0.0) + 8.0, p[1]]))
        .collect();
    let arizona = json!({"type": "Polygon", "coordinates": [moved]});
    let mut open = ring.clone();
    open.pop();
    let unclosed = json!({"type": "Polygon", "coordinates": [open]});
    let huge = json!({"type": "Polygon", "coordinates": [[[-121.5, 36.0], [-119.5, 36.0], [-119.5, 38.0], [-121.5, 38.0], [-121.5, 36.0]]]});
    let cases = [
        (
            json!({"name": "x", "region": "southern_california", "geometry": bowtie}),
            "geometry",
            "not valid",
        ),
        (
            json!({"name": "x", "region": "southern_california", "geometry": arizona}),
            "geometry",
            "inside California",
        ),
        (
            json!({"name": "x", "region": "southern_california", "geometry": unclosed}),
            "geometry",
            "closed",
        ),
        (
            json!({"name": "x", "region": "southern_california", "geometry": huge}),
            "geometry",
            "acres",
        ),
        (
            json!({"name": "x", "region": "southern_california", "geometry": {"type": "FeatureCollection", "features": []}}),
            "geometry",
            "exactly one",
        ),
        (
            json!({"name": "x", "region": "southern_california", "geometry": {"type": "Point", "coordinates": [-117, 33]}}),
            "geometry",
            "Polygon",
        ),
        (
            json!({"name": "x", "region": "atlantis", "geometry": good}),
            "region",
            "unknown region",
        ),
        (
            json!({"name": "", "region": "southern_california", "geometry": good}),
            "name",
            "characters",
        ),
        (
            json!({"name": 7, "region": "southern_california", "geometry": good}),
            "name",
            "invalid type",
        ),
        (
            json!({"region": "southern_california", "geometry": good}),
            "name",
            "missing",
        ),
    ];
    for (body, field, words) in cases {
        let (status, _, err) = call(
            &server,
            Method::POST,
            "/plans",
            Some(&token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(error_field(&err), field, "{err}");
        let message = err["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "expected `{words}` in {message}");
    }
    // Elevations are dropped (plans are 2-D); control characters are refused, not a 500.
    let with_z: Vec<Value> = ring.iter().map(|p| json!([p[0], p[1], 120.5])).collect();
    let (status, _, body) = call(&server, Method::POST, "/plans", Some(&token),
        Some(json!({"name": "3d", "region": "southern_california", "geometry": {"type": "Polygon", "coordinates": [with_z]}}))).await;
    assert_eq!(status, 201, "{body}");
    let count = count + 1;
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&token),
        Some(json!({"name": "a\u{0}b", "region": "southern_california", "geometry": good})),
    )
    .await;
    assert_eq!((status, error_field(&body)), (422, "name"), "{body}");
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&token),
        Some(json!({"name": "x", "region": "a\u{0}b", "geometry": good})),
    )
    .await;
    assert_eq!((status, error_field(&body)), (422, "region"), "{body}");
    // An oversized body: 413.
    let mut big = ring.clone();
    let last = big.pop().expect("closing vertex");
    while serde_json::to_string(&big).map(|s| s.len()).unwrap_or(0) < 300 * 1024 {
        big.extend(ring[..ring.len() - 1].iter().cloned());
    }
    big.push(last);
    let body = json!({"name": "big", "region": "southern_california", "geometry": {"type": "Polygon", "coordinates": [big]}});
    let (status, _, err) = call(&server, Method::POST, "/plans", Some(&token), Some(body)).await;
    assert_eq!(status, 413, "{err}");
    // Nothing was written by the refused requests.
    let (_, _, after) = call(&server, Method::GET, "/plans", Some(&token), None).await;
    assert_eq!(after.as_array().expect("list").len(), count);

    // Updates are checked the same way and change nothing when refused.
    let id = before[0]["id"].as_i64().expect("id");
    let (status, _, _) = call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&token),
        Some(json!({"geometry": arizona_again()})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _, renamed) = call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&token),
        Some(json!({"name": "Renamed", "geometry": geojson("riverside.geojson")})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "Renamed");
    assert!(renamed["area_acres"].as_f64().expect("acres") > 0.0);
    // An empty change changes nothing, not even the time of the last change.
    let (status, _, same) = call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["updated_at"], renamed["updated_at"]);
    assert_eq!(same["name"], "Renamed");
    server.stop().await;
}

/// The geometry of a GeoJSON geometry, Feature or FeatureCollection (first feature).
fn bare(v: &Value) -> Value {
    match v["type"].as_str() {
        Some("FeatureCollection") => v["features"][0]["geometry"].clone(),
        Some("Feature") => v["geometry"].clone(),
        _ => v.clone(),
    }
}

fn arizona_again() -> Value {
    json!({"type": "Polygon", "coordinates": [[[-111.0, 33.0], [-110.9, 33.0], [-110.9, 33.1], [-111.0, 33.0]]]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix() {
    let server = TestServer::start("").await;
    let (owner, _, owner_mail) = signup(&server, "owner").await;
    let (viewer, viewer_id, viewer_mail) = signup(&server, "viewer").await;
    let (collab, collab_id, collab_mail) = signup(&server, "collab").await;
    let (stranger, _, _) = signup(&server, "stranger").await;
    let (extra, extra_id, extra_mail) = signup(&server, "extra").await;
    let plan = new_plan(&server, &owner, "sandiego.geojson").await;
    let id = plan["id"].as_i64().expect("id");
    for (mail, role, token) in [
        (&viewer_mail, "viewer", &viewer),
        (&collab_mail, "collaborator", &collab),
    ] {
        share(&server, &owner, id, mail, role, token).await;
    }
    // Sharing errors: not an email, an existing member, the creator, an unknown role.
    for (mail, role, field) in [
        ("not an email", "viewer", "email"),
        (viewer_mail.as_str(), "collaborator", "email"),
        (owner_mail.as_str(), "viewer", "email"),
        (viewer_mail.as_str(), "emperor", "role"),
    ] {
        let (status, _, err) = call(
            &server,
            Method::POST,
            &format!("/plans/{id}/members"),
            Some(&owner),
            Some(json!({"email": mail, "role": role})),
        )
        .await;
        assert_eq!(
            (status, error_field(&err)),
            (422, field),
            "{mail} {role}: {err}"
        );
    }

    let tile = planscape::tile::TileId::containing(-117.0, 32.9, 9);
    let tile_path = format!("/tiles/plans/{id}/{}/{}/{}.mvt", tile.z, tile.x, tile.y);
    // Who gets what: anonymous, stranger, viewer, collaborator, owner.
    let who: [Option<&str>; 5] = [
        None,
        Some(&stranger),
        Some(&viewer),
        Some(&collab),
        Some(&owner),
    ];
    let member_path = format!("/plans/{id}/members/{extra_id}");
    let cases: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (
            Method::GET,
            format!("/plans/{id}"),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::PATCH,
            format!("/plans/{id}"),
            Some(json!({"name": "new name"})),
            [401, 404, 403, 403, 200],
        ),
        (
            Method::GET,
            format!("/plans/{id}/members"),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::POST,
            format!("/plans/{id}/members"),
            Some(json!({"email": extra_mail, "role": "viewer"})),
            [401, 404, 403, 403, 201],
        ),
        (
            Method::PATCH,
            member_path.clone(),
            Some(json!({"role": "collaborator"})),
            [401, 404, 403, 403, 204],
        ),
        (
            Method::DELETE,
            member_path.clone(),
            None,
            [401, 404, 403, 403, 204],
        ),
    ];
    for (method, path, body, expected) in &cases {
        for (i, token) in who.iter().enumerate() {
            // The extra member must have accepted an invitation before others try to
            // change their role (the owner's DELETE removes them again).
            if method != Method::POST && path == &member_path {
                call(
                    &server,
                    Method::POST,
                    &format!("/plans/{id}/members"),
                    Some(&owner),
                    Some(json!({"email": extra_mail, "role": "viewer"})),
                )
                .await;
                if let Some(invitation) = invitation_to(&server, &extra, id).await {
                    let accepted = call(
                        &server,
                        Method::POST,
                        &format!("/invitations/{invitation}/accept"),
                        Some(&extra),
                        None,
                    )
                    .await;
                    assert_eq!(accepted.0, 200, "{}", accepted.2);
                }
            }
            let (status, _, resp) = call(&server, method.clone(), path, *token, body.clone()).await;
            assert_eq!(status, expected[i], "{method} {path} as #{i}: {resp}");
            if status == 404 {
                assert_eq!(
                    resp["error"]["message"], "no such plan",
                    "no hint that it exists"
                );
            }
        }
    }
    // A plan that does not exist looks like one the user cannot see.
    let (status, _, missing) = call(
        &server,
        Method::GET,
        "/plans/999999999",
        Some(&stranger),
        None,
    )
    .await;
    let (_, _, hidden) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}"),
        Some(&stranger),
        None,
    )
    .await;
    assert_eq!((status, &missing), (404, &hidden));
    assert_eq!(
        call(
            &server,
            Method::GET,
            "/plans/not-a-number",
            Some(&owner),
            None
        )
        .await
        .0,
        404
    );
    // Lists: each sees the plans they have a role on, with that role.
    for (token, role) in [
        (&owner, Some("owner")),
        (&viewer, Some("viewer")),
        (&collab, Some("collaborator")),
        (&stranger, None),
    ] {
        let (_, _, list) = call(&server, Method::GET, "/plans", Some(token), None).await;
        let mine: Vec<&Value> = list
            .as_array()
            .expect("list")
            .iter()
            .filter(|p| p["id"] == id)
            .collect();
        assert_eq!(mine.first().map(|p| p["role"].as_str().unwrap_or("")), role);
        assert!(mine.iter().all(|p| p.get("geometry").is_none()));
    }
    // Plan tiles follow the same rules.
    for (i, token) in who.iter().enumerate() {
        let resp = send(&server, Method::GET, &tile_path, *token, None).await;
        let expected = [401, 404, 200, 200, 200][i];
        assert_eq!(resp.status().as_u16(), expected, "tile as #{i}");
        if expected == 200 {
            assert_eq!(resp.headers()["cache-control"], "private, no-cache");
            let bytes = resp.bytes().await.expect("body");
            let decoded = common::gdal_decode(&bytes, tile.z, tile.x, tile.y);
            let features = decoded["features"].as_array().expect("features");
            assert_eq!(features.len(), 1, "only this plan");
            assert_eq!(features[0]["properties"]["name"], "new name");
        }
    }
    // Viewers cannot delete the plan (collaborators neither: below).
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}"),
            Some(&viewer),
            None
        )
        .await
        .0,
        403
    );
    // Members leave on their own; viewers cannot remove others.
    let (status, _, _) = call(
        &server,
        Method::DELETE,
        &format!("/plans/{id}/members/{collab_id}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = call(
        &server,
        Method::DELETE,
        &format!("/plans/{id}/members/{viewer_id}"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        call(
            &server,
            Method::GET,
            &format!("/plans/{id}"),
            Some(&viewer),
            None
        )
        .await
        .0,
        404
    );
    // Delete: only the owner.
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}"),
            Some(&collab),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}"),
            Some(&stranger),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&server, Method::DELETE, &format!("/plans/{id}"), None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}"),
            Some(&owner),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(
            &server,
            Method::GET,
            &format!("/plans/{id}"),
            Some(&owner),
            None
        )
        .await
        .0,
        404
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_lists_every_route() {
    let server = TestServer::start("").await;
    let resp = server.get(&format!("{API}/openapi.json"), &[]).await;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.expect("json");
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    // Validated by an independent tool.
    let validator = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".data/tools/lint/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "run scripts/lint.sh first (installs openapi-spec-validator)"
    );
    let file = std::env::temp_dir().join(format!("{}.json", unique("openapi")));
    std::fs::write(&file, doc.to_string()).expect("write");
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("validator runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(file);

    // Every documented operation is served (not the router's fallback, not 405) ...
    let paths = doc["paths"].as_object().expect("paths");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["session_cookie"]["in"],
        "cookie"
    );
    let mut operations = Vec::new();
    for (path, item) in paths {
        // A path served outside the API's prefix names its own server ("/").
        let prefix = match item["servers"][0]["url"].as_str() {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => API.to_owned(),
        };
        for (method, op) in item.as_object().expect("item") {
            if method == "servers" {
                continue;
            }
            // Path parameters are in the path; the rest say where they go.
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap_or_default();
                assert_eq!(
                    param["in"] == "path",
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path}: parameter {param}"
                );
            }
            operations.push((
                op.get("security").is_some(),
                method.to_uppercase(),
                path.replace("{id}", "1")
                    .replace("{user_id}", "1")
                    .replace("{invitation_id}", "1")
                    .replace("{region}", "1")
                    .replace("{name}", "1")
                    .replace("{sid}", "1")
                    .replace("{layer}", "1"),
                prefix.clone(),
            ));
        }
    }
    for (secured, method, path, prefix) in &operations {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let resp = client()
            .request(method.clone(), format!("{}{prefix}{path}", server.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(
            body["error"]["message"], "no such endpoint",
            "{method} {path} is documented but not served"
        );
        // The documented security is the served one: anonymous requests to secured
        // operations get 401, to public ones never.
        assert_eq!(
            status == 401,
            *secured,
            "{method} {path}: {status}, documented secured: {secured}"
        );
    }
    // ... and every route of the API is documented.
    let expected = [
        ("POST", "/auth/signup"),
        ("POST", "/auth/login"),
        ("POST", "/auth/logout"),
        ("GET", "/auth/me"),
        ("POST", "/auth/password"),
        ("POST", "/auth/reset/request"),
        ("POST", "/auth/reset"),
        ("DELETE", "/auth/account"),
        ("GET", "/regions"),
        ("GET", "/plans"),
        ("POST", "/plans"),
        ("POST", "/plans/upload"),
        ("GET", "/plans/1"),
        ("PATCH", "/plans/1"),
        ("DELETE", "/plans/1"),
        ("GET", "/plans/1/members"),
        ("POST", "/plans/1/members"),
        ("PATCH", "/plans/1/members/1"),
        ("DELETE", "/plans/1/members/1"),
        ("DELETE", "/plans/1/invitations/1"),
        ("GET", "/invitations"),
        ("POST", "/invitations/1/accept"),
        ("POST", "/invitations/1/decline"),
        ("GET", "/conditions"),
        ("GET", "/conditions/1/1"),
        ("POST", "/conditions/stats"),
        ("GET", "/plans/1/scores"),
        ("POST", "/plans/1/scenarios"),
        ("GET", "/plans/1/scenarios"),
        ("GET", "/scenarios/1"),
        ("DELETE", "/scenarios/1"),
        ("GET", "/scenarios/1/export"),
        ("GET", "/basemaps"),
        ("GET", "/tiles/1/point"),
        ("POST", "/analytics/pageview"),
        ("GET", "/admin/analytics/activity"),
        ("GET", "/admin/analytics/signups"),
        ("GET", "/admin/analytics/plans"),
        ("GET", "/admin/analytics/scenarios"),
        ("GET", "/admin/analytics/tiles"),
        ("GET", "/admin/analytics/conditions"),
        ("GET", "/admin/analytics/plan-cells"),
        ("GET", "/admin/analytics/latency"),
    ];
    for (method, path) in expected {
        assert!(
            operations
                .iter()
                .any(|(_, m, p, _)| m == method && p == path),
            "{method} {path} missing"
        );
    }
    assert_eq!(operations.len(), expected.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_admins() {
    let mail = email("admin");
    let out = planscape(&[
        "user", "create", "--email", &mail, "--name", "Admin", "--admin",
    ])
    .env("PLANSCAPE_USER_PASSWORD", "an admin password")
    .current_dir(std::env::temp_dir())
    .output()
    .expect("run");
    assert_success(&out);
    let short = planscape(&[
        "user",
        "create",
        "--email",
        &email("weak"),
        "--name",
        "Weak",
    ])
    .env("PLANSCAPE_USER_PASSWORD", "short")
    .current_dir(std::env::temp_dir())
    .output()
    .expect("run");
    assert!(!short.status.success());
    let server = TestServer::start("").await;
    let (status, _, body) = login(
        &server,
        json!({"email": mail, "password": "an admin password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_admin"], true);
    server.stop().await;
}
