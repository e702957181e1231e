//! A plan's geometry survives its own round trip, and has a minimum area: what
//! `GET /plans/{id}` returns, `PATCH` and `POST` accept unchanged and store unchanged,
//! for real outlines and for generated ones (near the minimum area, many vertices,
//! holes, several polygons, detail finer than the stored precision); a plan smaller
//! than `plan_min_area_acres` is refused when drawn, changed or uploaded. Real PostGIS,
//! real HTTP.

mod common;

use common::api::{API, call, signup};
use common::{TestServer, client, shared_data};
use reqwest::Method;
use serde_json::{Value, json};

/// A square `side` degrees wide with its south-west corner at (`lon`, `lat`).
fn square(lon: f64, lat: f64, side: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]]})
}

/// Creates a plan (status and body).
async fn create(server: &TestServer, token: &str, geometry: &Value) -> (u16, Value) {
    let (status, _, body) = call(
        server,
        Method::POST,
        "/plans",
        Some(token),
        Some(json!({"name": "round trip", "region": "sierra_nevada", "geometry": geometry})),
    )
    .await;
    (status, body)
}

/// Uploads a GeoJSON file as a plan (status and body).
async fn upload(server: &TestServer, token: &str, geojson: &Value) -> (u16, Value) {
    const BOUNDARY: &str = "plan-geometry-boundary";
    let mut body = Vec::new();
    for (name, value) in [("name", "uploaded"), ("region", "sierra_nevada")] {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.geojson\"\r\n\
             Content-Type: application/geo+json\r\n\r\n{geojson}\r\n--{BOUNDARY}--\r\n"
        )
        .as_bytes(),
    );
    let resp = client()
        .post(format!("{}{API}/plans/upload", server.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /plans/{id}`'s geometry and acres.
async fn stored(server: &TestServer, token: &str, id: i64) -> (Value, f64) {
    let (status, _, plan) = call(
        server,
        Method::GET,
        &format!("/plans/{id}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{plan}");
    (
        plan["geometry"].clone(),
        plan["area_acres"].as_f64().expect("acres"),
    )
}

/// Checks that plan `id`'s geometry, as GET returns it, is accepted unchanged by PATCH
/// and by POST and stored unchanged by both.
async fn assert_round_trip(server: &TestServer, token: &str, id: i64, what: &str) {
    let (geometry, acres) = stored(server, token, id).await;
    let (status, _, patched) = call(
        server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(token),
        Some(json!({"geometry": geometry})),
    )
    .await;
    assert_eq!(status, 200, "{what}: PATCH of its own geometry: {patched}");
    assert_eq!(patched["geometry"], geometry, "{what}: changed by PATCH");
    assert_eq!(patched["area_acres"].as_f64(), Some(acres), "{what}");
    let (again, again_acres) = stored(server, token, id).await;
    assert_eq!(again, geometry, "{what}: changed by PATCH (GET)");
    assert_eq!(again_acres, acres, "{what}");
    let (status, copy) = create(server, token, &geometry).await;
    assert_eq!(status, 201, "{what}: POST of its geometry: {copy}");
    assert_eq!(copy["geometry"], geometry, "{what}: changed by POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_smaller_than_the_minimum_are_refused() {
    let server = TestServer::start("").await;
    let (token, _, _) = signup(&server, "tiny").await;
    // The probe's square (1e-9 degrees: 2.4e-12 acres), and one of about 0.6 acres.
    for side in [1e-9, 0.0005] {
        let tiny = square(-119.6, 37.6, side);
        let (status, err) = create(&server, &token, &tiny).await;
        assert_eq!(status, 422, "{side}: {err}");
        assert_eq!(err["error"]["field"], "geometry");
        let message = err["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("less than the minimum of 1 acres"),
            "{message}"
        );
        let (status, err) = upload(&server, &token, &tiny).await;
        assert_eq!(status, 422, "{side}: {err}");
        assert_eq!(err["error"]["field"], "file");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("less than the minimum"),
            "{err}"
        );
    }
    // About 2.3 acres is a plan; shrinking it below the minimum is refused and changes
    // nothing.
    let (status, plan) = create(&server, &token, &square(-119.6, 37.6, 0.001)).await;
    assert_eq!(status, 201, "{plan}");
    let id = plan["id"].as_i64().expect("id");
    let acres = plan["area_acres"].as_f64().expect("acres");
    assert!((1.0..4.0).contains(&acres), "{acres}");
    let (status, _, err) = call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&token),
        Some(json!({"geometry": square(-119.6, 37.6, 1e-9)})),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["field"]),
        (422, &json!("geometry")),
        "{err}"
    );
    assert_eq!(stored(&server, &token, id).await.0, plan["geometry"]);
    server.stop().await;

    // The minimum is configurable.
    let server = TestServer::start("[accounts]\nplan_min_area_acres = 0.1\n").await;
    let (token, _, _) = signup(&server, "tiny").await;
    let (status, plan) = create(&server, &token, &square(-119.6, 37.6, 0.0005)).await;
    assert_eq!(status, 201, "{plan}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_outline_round_trips() {
    let server = TestServer::start("").await;
    let (token, _, _) = signup(&server, "outline").await;
    let text = std::fs::read_to_string(shared_data("planscape/sandiego.geojson")).expect("file");
    let outline: Value = serde_json::from_str(&text).expect("json");
    let (status, _, plan) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&token),
        Some(json!({"name": "San Diego", "region": "southern_california", "geometry": outline})),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    assert_round_trip(
        &server,
        &token,
        plan["id"].as_i64().expect("id"),
        "sandiego",
    )
    .await;
    server.stop().await;
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// A closed star-shaped ring of `n` vertices around (`lon`, `lat`) with radii in
/// [`r0`, `r1`] degrees (simple: angles increase), counter-clockwise unless `cw`.
fn star(rng: &mut Rng, lon: f64, lat: f64, n: usize, r0: f64, r1: f64, cw: bool) -> Vec<Value> {
    let mut ring: Vec<Value> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * (i as f64 + rng.range(0.0, 0.9)) / n as f64;
            let r = rng.range(r0, r1);
            json!([lon + r * a.cos(), lat + r * a.sin()])
        })
        .collect();
    if cw {
        ring.reverse();
    }
    ring.push(ring[0].clone());
    ring
}

/// Generated shapes of every kind: (what, GeoJSON geometry).
fn generated(seed: u64) -> Vec<(String, Value)> {
    let mut rng = Rng(seed);
    let mut shapes = Vec::new();
    let (lon, lat) = (rng.range(-120.8, -120.2), rng.range(37.0, 37.8));
    // Just above the minimum area (1 acre: a square of 0.000705 x 0.000705 degrees at
    // this latitude is about 1.1 acres), at full double precision.
    let side = rng.range(0.00075, 0.0008);
    shapes.push((
        format!("near the minimum, seed {seed}"),
        square(lon, lat, side),
    ));
    // Many vertices, closer together than a little more than the stored precision.
    let n = 3000 + (rng.next() * 2000.0) as usize;
    shapes.push((
        format!("{n} vertices, seed {seed}"),
        json!({"type": "Polygon", "coordinates": [star(&mut rng, lon + 0.01, lat, n, 0.0005, 0.0006, false)]}),
    ));
    // Holes.
    let (cx, cy) = (lon + 0.05, lat + 0.01);
    let shell = star(&mut rng, cx, cy, 60, 0.02, 0.03, false);
    let hole1 = star(&mut rng, cx - 0.007, cy, 20, 0.002, 0.004, true);
    let hole2 = star(&mut rng, cx + 0.007, cy, 30, 0.002, 0.004, true);
    shapes.push((
        format!("two holes, seed {seed}"),
        json!({"type": "Polygon", "coordinates": [shell, hole1, hole2]}),
    ));
    // Several polygons, one with a hole.
    let polygons: Vec<Value> = (0..3)
        .map(|i| {
            let (px, py) = (lon + 0.1 + 0.05 * f64::from(i), lat + 0.02);
            let mut rings = vec![Value::Array(star(&mut rng, px, py, 40, 0.01, 0.02, false))];
            if i == 1 {
                rings.push(Value::Array(star(&mut rng, px, py, 12, 0.002, 0.005, true)));
            }
            Value::Array(rings)
        })
        .collect();
    shapes.push((
        format!("multipolygon, seed {seed}"),
        json!({"type": "MultiPolygon", "coordinates": polygons}),
    ));
    // A hole a billionth of a degree inside its shell's slanted edge: rounding may make
    // them cross (then the shape is snap-rounded instead, and must round-trip too).
    let (x0, y0) = (lon + 0.3, lat + 0.05);
    let shell = vec![
        json!([x0, y0]),
        json!([x0 + 0.01, y0 + 0.0031]),
        json!([x0 + 0.008, y0 + 0.012]),
        json!([x0 - 0.001, y0 + 0.009]),
        json!([x0, y0]),
    ];
    let t = rng.range(0.3, 0.7);
    let (ex, ey) = (x0 + 0.01 * t, y0 + 0.0031 * t);
    let (nx, ny) = (-0.0031, 0.01);
    let norm = f64::hypot(nx, ny);
    let touch = json!([ex + 1e-9 * nx / norm, ey + 1e-9 * ny / norm]);
    let hole = vec![
        touch.clone(),
        json!([ex + 0.001, ey + 0.003]),
        json!([ex - 0.001, ey + 0.003]),
        touch,
    ];
    shapes.push((
        format!("hole nearly touching, seed {seed}"),
        json!({"type": "Polygon", "coordinates": [shell, hole]}),
    ));
    shapes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_shapes_round_trip() {
    let server = TestServer::start("").await;
    let (token, _, _) = signup(&server, "shapes").await;
    let mut accepted = 0;
    for seed in [1u64, 7, 42, 2024, 99_991, 123_456_789] {
        for (what, geometry) in generated(seed) {
            let (status, plan) = create(&server, &token, &geometry).await;
            assert_eq!(status, 201, "{what}: {plan}");
            accepted += 1;
            assert_round_trip(&server, &token, plan["id"].as_i64().expect("id"), &what).await;
        }
    }
    assert_eq!(accepted, 30);
    server.stop().await;
}
