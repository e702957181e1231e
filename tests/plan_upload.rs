//! `POST /planscape-backend/plans/upload`: plans from GeoJSON files and zipped
//! Shapefiles (any CRS), read by GDAL, reprojected to EPSG:4326, unioned, checked and
//! stored as drawn plans; refusals name the field `file`; size limit, sign-in and CSRF
//! as for the other changes. Real counties, real PostGIS, real HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::api::{API, call, signup};
use common::{TestServer, client, shared_data, unique};
use reqwest::Method;
use serde_json::Value;

const BOUNDARY: &str = "planscape-test-boundary-7f3a";

/// A multipart/form-data body of text fields and one file field (name, file name,
/// bytes).
fn form(texts: &[(&str, &str)], file: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in texts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Posts a form to `/plans/upload` with a bearer token (when given) and extra headers;
/// returns the status and the JSON body.
async fn upload(
    server: &TestServer,
    token: Option<&str>,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut req = client()
        .post(format!("{}{API}/plans/upload", server.base))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let value = resp.json().await.unwrap_or(Value::Null);
    (status, value)
}

/// Uploads `file` as plan `name` in the Sierra Nevada region.
async fn upload_file(
    server: &TestServer,
    token: &str,
    name: &str,
    file_name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let body = form(
        &[("name", name), ("region", "sierra_nevada")],
        Some((file_name, bytes)),
    );
    upload(server, Some(token), body, &[]).await
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("")
}

/// Runs a command, asserting success.
fn run(cmd: &mut Command) {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ogr2ogr` of the counties named in `filter` (an OGR SQL WHERE) to `out`.
fn counties(out: &Path, filter: &str, extra: &[&str]) {
    run(Command::new("ogr2ogr")
        .args(extra)
        .args(["-where", filter])
        .arg(out)
        .arg(shared_data("census/ca_counties.geojson")));
}

/// Zips `files` (flat) into `zip` with Python's zipfile (no zip tool needed).
fn zip(zip: &Path, files: &[PathBuf]) {
    let script = "import sys, zipfile, os\n\
                  with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
                  \x20   [z.write(f, os.path.basename(f)) for f in sys.argv[2:]]\n";
    run(Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .args(files));
}

/// How far the stored plan's geometry is from `reference` (GeoJSON, EPSG:4326): the
/// area of their symmetric difference over the reference's area, and the stored area
/// over the reference's.
async fn drift(db: &tokio_postgres::Client, plan: i64, reference: &str) -> (f64, f64) {
    let row = db
        .query_one(
            "WITH r AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON($2), 4326) AS g), \
                  p AS (SELECT geom AS g FROM planscape.plans WHERE id = $1) \
             SELECT ST_Area(ST_SymDifference(p.g, r.g)::geography) / ST_Area(r.g::geography), \
                    ST_Area(p.g::geography) / ST_Area(r.g::geography) \
             FROM r, p",
            &[&plan, &reference],
        )
        .await
        .expect("compare");
    (row.get(0), row.get(1))
}

/// The union of the named counties' geometries, as GeoJSON, from the shared file.
fn reference(names: &[&str]) -> String {
    let text = std::fs::read_to_string(shared_data("census/ca_counties.geojson")).expect("read");
    let doc: Value = serde_json::from_str(&text).expect("json");
    let geometries: Vec<Value> = doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| names.contains(&f["properties"]["name"].as_str().unwrap_or("")))
        .map(|f| f["geometry"].clone())
        .collect();
    assert_eq!(geometries.len(), names.len());
    serde_json::json!({"type": "GeometryCollection", "geometries": geometries}).to_string()
}

async fn plan_count(server: &TestServer, token: &str) -> usize {
    let (_, _, list) = call(server, Method::GET, "/plans", Some(token), None).await;
    list.as_array().expect("list").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geojson_and_zipped_shapefiles_become_plans() {
    let server = TestServer::start("[accounts]\nmax_upload_kb = 512\n").await;
    let (token, user, _) = signup(&server, "uploader").await;
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("db");
    let dir = std::env::temp_dir().join(unique("plan_upload"));
    std::fs::create_dir_all(&dir).expect("tmp dir");

    // A county as GeoJSON: stored as it is.
    let sacramento = dir.join("sacramento.geojson");
    counties(&sacramento, "name = 'Sacramento'", &["-f", "GeoJSON"]);
    let bytes = std::fs::read(&sacramento).expect("read");
    let (status, plan) =
        upload_file(&server, &token, "Sacramento", "sacramento.geojson", &bytes).await;
    assert_eq!(status, 201, "{plan}");
    assert_eq!(plan["name"], "Sacramento");
    assert_eq!(plan["region"], "sierra_nevada");
    assert_eq!(plan["owner_id"], user);
    assert_eq!(plan["role"], "owner");
    assert_eq!(plan["geometry"]["type"], "MultiPolygon");
    let id = plan["id"].as_i64().expect("id");
    let (sym, ratio) = drift(&db, id, &reference(&["Sacramento"])).await;
    assert!(sym < 1e-6 && (ratio - 1.0).abs() < 1e-6, "{sym} {ratio}");
    let equal: bool = db
        .query_one(
            "SELECT ST_Equals(geom, ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)) \
             FROM planscape.plans WHERE id = $1",
            &[&id, &reference(&["Sacramento"])],
        )
        .await
        .expect("equals")
        .get(0);
    assert!(equal, "the GeoJSON upload is stored unchanged");
    // The same acres as a drawn plan of the same polygon.
    let acres: f64 = db
        .query_one(
            "SELECT ST_Area(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326), 5070)) / 4046.8564224",
            &[&reference(&["Sacramento"])],
        )
        .await
        .expect("acres")
        .get(0);
    let stored = plan["area_acres"].as_f64().expect("acres");
    assert!((stored / acres - 1.0).abs() < 1e-6, "{stored} vs {acres}");

    // The same county as a zipped Shapefile in California Albers (EPSG:3310), as GDAL
    // writes it (.shp, .shx, .dbf, .prj, .cpg): reprojected back.
    let albers = dir.join("sacramento_3310.shp.zip");
    counties(
        &albers,
        "name = 'Sacramento'",
        &["-f", "ESRI Shapefile", "-t_srs", "EPSG:3310"],
    );
    let bytes = std::fs::read(&albers).expect("read");
    let (status, plan) = upload_file(&server, &token, "Albers", "sacramento.zip", &bytes).await;
    assert_eq!(status, 201, "{plan}");
    let (sym, ratio) = drift(
        &db,
        plan["id"].as_i64().expect("id"),
        &reference(&["Sacramento"]),
    )
    .await;
    assert!(sym < 1e-6 && (ratio - 1.0).abs() < 1e-6, "{sym} {ratio}");

    // Two neighbouring counties in one file (a Shapefile zipped by hand, in a folder):
    // one plan, their union.
    let two = dir.join("two");
    std::fs::create_dir_all(&two).expect("dir");
    counties(
        &two.join("two.shp"),
        "name IN ('Sacramento', 'Amador')",
        &["-f", "ESRI Shapefile", "-t_srs", "EPSG:3310"],
    );
    let parts: Vec<PathBuf> = ["shp", "shx", "dbf", "prj"]
        .iter()
        .map(|e| two.join(format!("two.{e}")))
        .collect();
    let two_zip = dir.join("two.zip");
    zip(&two_zip, &parts);
    let bytes = std::fs::read(&two_zip).expect("read");
    let (status, plan) = upload_file(&server, &token, "Two", "two.zip", &bytes).await;
    assert_eq!(status, 201, "{plan}");
    let (sym, ratio) = drift(
        &db,
        plan["id"].as_i64().expect("id"),
        &reference(&["Sacramento", "Amador"]),
    )
    .await;
    assert!(sym < 1e-6 && (ratio - 1.0).abs() < 1e-6, "{sym} {ratio}");

    // A cookie session needs the CSRF header (and a same origin) as for other changes.
    let cookie = format!("planscape_session={token}");
    let json_bytes = std::fs::read(&sacramento).expect("read");
    let body = || {
        form(
            &[("name", "cookie"), ("region", "sierra_nevada")],
            Some(("s.geojson", &json_bytes)),
        )
    };
    let (status, err) = upload(&server, None, body(), &[("cookie", cookie.clone())]).await;
    assert_eq!(status, 403, "{err}");
    let (status, err) = upload(
        &server,
        None,
        body(),
        &[
            ("cookie", cookie.clone()),
            ("x-planscape-csrf", "1".into()),
            ("origin", "https://evil.example".into()),
        ],
    )
    .await;
    assert_eq!(status, 403, "{err}");
    let (status, plan) = upload(
        &server,
        None,
        body(),
        &[
            ("cookie", cookie),
            ("x-planscape-csrf", "1".into()),
            ("origin", server.base.clone()),
        ],
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    assert_eq!(plan_count(&server, &token).await, 4);

    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_write_nothing() {
    let server =
        TestServer::start("[accounts]\nmax_upload_kb = 512\nplan_max_area_acres = 2000000\n").await;
    let (token, _, _) = signup(&server, "refused").await;
    let dir = std::env::temp_dir().join(unique("plan_upload_bad"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let sacramento = dir.join("sacramento.geojson");
    counties(&sacramento, "name = 'Sacramento'", &["-f", "GeoJSON"]);
    let good = std::fs::read(&sacramento).expect("read");

    // Not signed in: 401.
    let body = form(
        &[("name", "x"), ("region", "sierra_nevada")],
        Some(("s.geojson", &good)),
    );
    let (status, err) = upload(&server, None, body, &[]).await;
    assert_eq!(status, 401, "{err}");

    // Too large: 413 (the limit of this server is 512 KiB).
    let mut big = good.clone();
    big.resize(600 * 1024, b' ');
    let (status, err) = upload_file(&server, &token, "big", "big.geojson", &big).await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "body_too_large");

    // A Shapefile without its .prj, zipped.
    let shp = dir.join("noprj.shp");
    counties(&shp, "name = 'Sacramento'", &["-f", "ESRI Shapefile"]);
    let noprj = dir.join("noprj.zip");
    zip(
        &noprj,
        &["shp", "shx", "dbf"].map(|e| dir.join(format!("noprj.{e}"))),
    );
    let noprj = std::fs::read(&noprj).expect("read");
    // Points, a line, a place outside California, a county over the area limit of this
    // server (Fresno, about 3.8 million acres), a bow tie.
    let points = br#"{"type":"FeatureCollection","features":[
        {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[-121.4,38.5]}},
        {"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[-121.3,38.6]}}]}"#;
    let line = br#"{"type":"LineString","coordinates":[[-121.4,38.5],[-121.3,38.6]]}"#;
    let arizona = br#"{"type":"Polygon","coordinates":[[[-112,33],[-111.9,33],[-111.9,33.1],[-112,33.1],[-112,33]]]}"#;
    let bowtie = br#"{"type":"Polygon","coordinates":[[[-121,38],[-120.9,38.1],[-120.9,38],[-121,38.1],[-121,38]]]}"#;
    let huge = dir.join("huge.geojson");
    counties(&huge, "name = 'Fresno'", &["-f", "GeoJSON"]);
    let huge = std::fs::read(&huge).expect("read");
    let cases: [(&str, &str, &[u8], &str); 10] = [
        (
            "garbage",
            "x.geojson",
            b"this is not GeoJSON",
            "not readable",
        ),
        ("empty", "x.geojson", b"", "is empty"),
        ("bad zip", "x.zip", b"PK\x03\x04 not really a zip", "zip"),
        ("kml", "x.kml", b"<kml/>", ".kml"),
        ("no prj", "noprj.zip", &noprj, ".prj"),
        ("points", "points.geojson", points, "point"),
        ("line", "line.geojson", line, "linestring"),
        ("arizona", "az.geojson", arizona, "inside California"),
        ("huge", "fresno.geojson", &huge, "limit"),
        ("bow tie", "bowtie.json", bowtie, "invalid"),
    ];
    for (what, file_name, bytes, message) in cases {
        let (status, err) = upload_file(&server, &token, what, file_name, bytes).await;
        assert_eq!((status, field(&err)), (422, "file"), "{what}: {err}");
        let text = err["error"]["message"].as_str().unwrap_or("");
        assert!(
            text.to_lowercase().contains(&message.to_lowercase()),
            "{what}: {text}"
        );
    }

    // The other fields: named when missing or wrong; a body that is not a form.
    let body = form(&[("region", "sierra_nevada")], Some(("s.geojson", &good)));
    let (status, err) = upload(&server, Some(&token), body, &[]).await;
    assert_eq!((status, field(&err)), (422, "name"), "{err}");
    let body = form(
        &[("name", "x"), ("region", "mars")],
        Some(("s.geojson", &good)),
    );
    let (status, err) = upload(&server, Some(&token), body, &[]).await;
    assert_eq!((status, field(&err)), (422, "region"), "{err}");
    let body = form(&[("name", "x"), ("region", "sierra_nevada")], None);
    let (status, err) = upload(&server, Some(&token), body, &[]).await;
    assert_eq!((status, field(&err)), (422, "file"), "{err}");
    let (status, _, err) = call(
        &server,
        Method::POST,
        "/plans/upload",
        Some(&token),
        Some(serde_json::json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 415, "{err}");

    assert_eq!(plan_count(&server, &token).await, 0, "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}
