//! The conditions catalog end to end: `planscape conditions build` (element = mean, pillar
//! = min of the children, checked pixel by pixel), the catalog endpoints, node layers
//! served as tiles, statistics over an area (checked against the statistics engine, which
//! tests/zonal_stats.rs checks against PostGIS), bad input, and plan scores kept and
//! recomputed when the geometry changes.

mod common;

use std::path::{Path, PathBuf};

use common::api::{API, call, send, share, signup};
use common::cli::{assert_success, run};
use common::{TestServer, unique};
use reqwest::Method;
use serde_json::{Value, json};

/// Demo rasters (coarse, fast) and a catalog over them.
fn setup() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(unique("conditions"));
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
operation = "min"
[[regions.pillars.elements]]
name = "disturbance"
display_name = "Disturbance"
operation = "mean"
[[regions.pillars.elements.metrics]]
name = "tree_mortality"
display_name = "Tree Mortality"
raw = "{tm}"
normalized = "{tmn}"
data_units = "%"
min_value = 0
max_value = 100
invert_raw = true
[[regions.pillars.elements.metrics]]
name = "fire_probability"
display_name = "Fire Probability"
raw = "{fp}"
normalized = "{fpn}"
min_value = 0
max_value = 1
invert_raw = true
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
        tm = r("tree_mortality"),
        tmn = r("tree_mortality_normalized"),
        fp = r("fire_probability"),
        fpn = r("fire_probability_normalized"),
        ab = r("aboveground_biomass"),
        abn = r("aboveground_biomass_normalized"),
    );
    std::fs::write(dir.join("conditions.toml"), catalog).expect("catalog");
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

fn read(path: &Path) -> (Vec<f64>, Option<f64>) {
    let ds = gdal::Dataset::open(path).expect("open");
    let band = ds.rasterband(1).expect("band");
    let size = ds.raster_size();
    let data = band.read_as::<f64>((0, 0), size, size, None).expect("read");
    (data.data().to_vec(), band.no_data_value())
}

/// A square around a point, in lon/lat.
fn square(lon: f64, lat: f64, half: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[lon - half, lat - half], [lon + half, lat - half],
        [lon + half, lat + half], [lon - half, lat + half], [lon - half, lat - half]]]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_build_stats_and_scores() {
    let (dir, toml) = setup();
    let config = dir.join("planscape.toml");
    std::fs::write(
        &config,
        format!("{toml}[database]\nurl = \"{}\"\n", common::database_url()),
    )
    .expect("config");
    assert_success(&run(&config, &["conditions", "build"]));

    // Element = mean of its metrics, pillar = min of its elements, pixel by pixel; nodata
    // wherever a child has none.
    let rasters = dir.join("rasters");
    let (tm, tm_nd) = read(&rasters.join("tree_mortality_normalized.tif"));
    let (fp, fp_nd) = read(&rasters.join("fire_probability_normalized.tif"));
    let (ab, ab_nd) = read(&rasters.join("aboveground_biomass_normalized.tif"));
    let (dist, dist_nd) = read(&dir.join("built/sierra_nevada/disturbance.tif"));
    let (structure, _) = read(&dir.join("built/sierra_nevada/structure.tif"));
    let (pillar, pillar_nd) = read(&dir.join("built/sierra_nevada/forest_resilience.tif"));
    let valid = |v: f64, nd: Option<f64>| !v.is_nan() && nd != Some(v);
    let mut checked = 0;
    for i in 0..tm.len() {
        let all = valid(tm[i], tm_nd) && valid(fp[i], fp_nd) && valid(ab[i], ab_nd);
        if !all {
            assert!(!valid(pillar[i], pillar_nd), "pixel {i}: nodata expected");
            continue;
        }
        let mean = (tm[i] + fp[i]) / 2.0;
        assert!(
            (dist[i] - mean).abs() < 1e-6,
            "pixel {i}: {} vs {mean}",
            dist[i]
        );
        assert!(valid(dist[i], dist_nd));
        assert!((structure[i] - ab[i]).abs() < 1e-6);
        assert!((pillar[i] - mean.min(ab[i])).abs() < 1e-6, "pixel {i}");
        checked += 1;
    }
    assert!(checked > 1000, "{checked} pixels checked");

    let server = TestServer::start(&toml).await;
    // The start-up warm-up reads every condition raster of the region once (3 metrics,
    // 2 elements, 1 pillar); the server also ran it in the background.
    let conditions = server.state.conditions.clone().expect("conditions");
    assert_eq!(planscape::planning::warm_up::warm_up(conditions).await, 6);
    // The tree and one node.
    let tree: Value = server
        .get(&format!("{API}/conditions"), &[])
        .await
        .json()
        .await
        .expect("json");
    let pillar_json = &tree["regions"][0]["pillars"][0];
    assert_eq!(pillar_json["name"], "forest_resilience");
    assert_eq!(pillar_json["layer"], "sierra_nevada_forest_resilience");
    assert_eq!(
        pillar_json["elements"][0]["metrics"][0]["raw_layer"],
        "sierra_nevada_tree_mortality_raw"
    );
    assert!(
        pillar_json["elements"][0]["metrics"][0]
            .get("raw")
            .is_none(),
        "no server paths"
    );
    let node: Value = server
        .get(&format!("{API}/conditions/sierra_nevada/disturbance"), &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(node["level"], "element");
    assert_eq!(
        node["children"],
        json!(["tree_mortality", "fire_probability"])
    );
    assert_eq!(
        server
            .get(&format!("{API}/conditions/sierra_nevada/nope"), &[])
            .await
            .status(),
        404
    );
    // Every node is a tile layer with a legend.
    let tile = planscape::tile::TileId::containing(-119.6, 37.6, 8);
    for layer in [
        "sierra_nevada_forest_resilience",
        "sierra_nevada_disturbance",
        "sierra_nevada_tree_mortality",
        "sierra_nevada_tree_mortality_raw",
    ] {
        let r = server
            .get(
                &format!("/tiles/{layer}/{}/{}/{}.png", tile.z, tile.x, tile.y),
                &[],
            )
            .await;
        assert_eq!(r.status(), 200, "{layer}");
        assert_eq!(
            server
                .get(&format!("/tiles/{layer}/legend"), &[])
                .await
                .status(),
            200
        );
    }

    // A point's value: the normalized layer gives the band, the raw layer the metric's
    // units; both name the condition.
    let (lon, lat) = (-119.6, 37.6);
    let normalized: Value = server
        .get(
            &format!("/tiles/sierra_nevada_tree_mortality/point?lon={lon}&lat={lat}"),
            &[],
        )
        .await
        .json()
        .await
        .expect("json");
    let v = normalized["value"].as_f64().expect("value");
    assert!((-1.0..=1.0).contains(&v), "{normalized}");
    assert_eq!(
        normalized["band"],
        planscape::planning::stats::band(v),
        "{normalized}"
    );
    assert_eq!(normalized["condition"]["name"], "tree_mortality");
    assert_eq!(normalized["condition"]["values"], "normalized");
    let raw: Value = server
        .get(
            &format!("/tiles/sierra_nevada_tree_mortality_raw/point?lon={lon}&lat={lat}"),
            &[],
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(raw["band"].is_null(), "{raw}");
    assert_eq!(raw["units"], "%", "{raw}");
    assert_eq!(raw["condition"]["values"], "raw");
    assert_eq!(raw["condition"]["display_name"], "Tree Mortality");

    // Statistics over an area (signed in) agree with the engine run directly on each raster.
    let area = square(-119.6, 37.6, 0.3);
    let (token, _, _) = signup(&server, "C").await;
    let (anonymous, _, _) = call(
        &server,
        Method::POST,
        "/conditions/stats",
        None,
        Some(json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": area})),
    )
    .await;
    assert_eq!(anonymous, 401);
    let post = |body: Value| {
        call(
            &server,
            Method::POST,
            "/conditions/stats",
            Some(&token),
            Some(body),
        )
    };
    let names = [
        "forest_resilience",
        "disturbance",
        "tree_mortality",
        "fire_probability",
    ];
    let (status, _, body) =
        post(json!({"region": "sierra_nevada", "conditions": names, "geometry": area})).await;
    assert_eq!(status, 200);
    let shape = planscape::planning::geometry::to_multipolygon(&area).expect("shape");
    let files = [
        dir.join("built/sierra_nevada/forest_resilience.tif"),
        dir.join("built/sierra_nevada/disturbance.tif"),
        rasters.join("tree_mortality_normalized.tif"),
        rasters.join("fire_probability_normalized.tif"),
    ];
    for (i, file) in files.iter().enumerate() {
        let expected = planscape::planning::stats::zonal_stats(file, 1, &shape).expect("stats");
        let got = &body["results"][i];
        assert_eq!(got["condition"], names[i]);
        assert_eq!(got["count"].as_u64(), Some(expected.count));
        assert!(expected.count > 100);
        assert_eq!(got["mean"].as_f64(), expected.mean);
        let band = planscape::planning::stats::band(expected.mean.expect("mean"));
        assert_eq!(got["band"], band);
    }
    // A repeated request is answered from memory (the same body, a hit counted), and a
    // raster replaced on disk is read afresh (its mtime and size are in the key).
    let hits = || async {
        let text = server.metrics().await;
        common::sample(&text, "area_stats_requests_total", &["result=\"hit\""])
    };
    let before = hits().await;
    let request = json!({"region": "sierra_nevada", "conditions": names, "geometry": area});
    // ... without a raster thread: with every one of them held busy, the repeat is
    // answered all the same (it does not wait behind renders).
    let threads = planscape::raster_threads::threads();
    let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let (started, mut running) = tokio::sync::mpsc::unbounded_channel();
    let busy: Vec<_> = (0..threads)
        .map(|_| {
            let (gate, started) = (std::sync::Arc::clone(&gate), started.clone());
            tokio::spawn(planscape::raster_threads::run(move || {
                let _ = started.send(());
                let (open, opened) = &*gate;
                let mut open = open.lock().expect("gate");
                while !*open {
                    open = opened.wait(open).expect("gate");
                }
            }))
        })
        .collect();
    for _ in 0..threads {
        running.recv().await.expect("a raster thread took a job");
    }
    let answered =
        tokio::time::timeout(std::time::Duration::from_secs(60), post(request.clone())).await;
    {
        let (open, opened) = &*gate;
        *open.lock().expect("gate") = true;
        opened.notify_all();
    }
    for job in busy {
        job.await.expect("job").expect("raster thread");
    }
    let (status, _, again) = answered.expect("the repeat waited for a raster thread");
    assert_eq!((status, &again), (200, &body));
    assert!(hits().await >= before + 1.0, "the repeat was a hit");
    let replaced = rasters.join("tree_mortality_normalized.tif");
    let kept = dir.join("tree_mortality_normalized.kept.tif");
    std::fs::copy(&replaced, &kept).expect("keep");
    std::fs::copy(rasters.join("fire_probability_normalized.tif"), &replaced).expect("replace");
    let (status, _, changed) = post(request.clone()).await;
    assert_eq!(status, 200, "{changed}");
    let now = planscape::planning::stats::zonal_stats(&replaced, 1, &shape).expect("stats");
    assert_eq!(changed["results"][2]["mean"].as_f64(), now.mean);
    assert_ne!(changed["results"][2]["mean"], body["results"][2]["mean"]);
    std::fs::copy(&kept, &replaced).expect("restore");
    let (_, _, restored) = post(request).await;
    assert_eq!(
        restored, body,
        "the restored raster gives the first results"
    );
    // Raw values of a metric.
    let (_, _, raw) = post(json!({"region": "sierra_nevada", "conditions": ["tree_mortality"], "geometry": area, "values": "raw"})).await;
    let mean = raw["results"][0]["mean"].as_f64().expect("mean");
    assert!((0.0..=100.0).contains(&mean) && raw["results"][0]["band"].is_null());
    // Outside every raster of the region: refused (issue 13: areas outside the region's
    // extent), naming the region.
    let (status, _, none) = post(json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": square(-117.0, 33.0, 0.05)})).await;
    assert_eq!(status, 422, "{none}");
    assert_eq!(none["error"]["field"], "geometry", "{none}");
    assert!(
        none["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("outside the rasters of region `sierra_nevada`")),
        "{none}"
    );
    // Bad input names the field.
    let bowtie = json!({"type": "Polygon", "coordinates": [[[-120, 37], [-119, 38], [-119, 37], [-120, 38], [-120, 37]]]});
    for (body, field) in [
        (
            json!({"region": "sierra_nevada", "conditions": ["nope"], "geometry": area}),
            "conditions[0]",
        ),
        (
            json!({"region": "mars", "conditions": ["disturbance"], "geometry": area}),
            "region",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": [], "geometry": area}),
            "conditions",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance", "disturbance"], "geometry": area}),
            "conditions[1]",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": square(-119.6, 37.6, 3.0)}),
            "geometry",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": bowtie}),
            "geometry",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": square(-120.0, 88.0, 1.0)}),
            "geometry",
        ),
        // A band around the world: -180° and 180° are one meridian, so its area came out
        // near zero and passed the limit (issue 13's probe).
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry":
                {"type": "Polygon", "coordinates": [[[-180, 36], [180, 36], [180, 40], [-180, 40], [-180, 36]]]}}),
            "geometry",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": area, "values": "raw"}),
            "conditions[0]",
        ),
        (
            json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": area, "values": "odd"}),
            "values",
        ),
    ] {
        let (status, _, err) = post(body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(err["error"]["field"], field, "{err}");
    }

    // A budget on the pixels read per request, checked before any pixel is read: with 2 km
    // pixels, a 0.02° square's window is at most 4 x 4 pixels a raster (two rasters: at
    // most 32, under the budget of 50), a 0.2° square's at least 9 x 11 (over it).
    let budget = TestServer::start(&format!("{toml}[accounts]\nstats_max_pixels = 50\n")).await;
    let (budget_token, _, _) = signup(&budget, "Budget").await;
    let ask = |conditions: Value, half: f64| {
        call(
            &budget,
            Method::POST,
            "/conditions/stats",
            Some(&budget_token),
            Some(json!({"region": "sierra_nevada", "conditions": conditions,
                        "geometry": square(-120.0, 38.5, half)})),
        )
    };
    let (status, _, small) = ask(json!(["tree_mortality", "fire_probability"]), 0.01).await;
    assert_eq!(status, 200, "{small}");
    let (status, _, err) = ask(json!(["tree_mortality"]), 0.1).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "geometry", "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("budget of 50"), "{message}");
    drop(budget);

    // A valid area drawn in detail (60,000 vertices: validity is PostGIS's indexed
    // check, not a pairwise one on the request path) gets its statistics.
    let detailed = {
        let n = 60_000;
        let ring: Vec<Value> = (0..=n)
            .map(|i| {
                let t = std::f64::consts::TAU * f64::from(i % n) / f64::from(n);
                let r = 0.05 * (1.0 + 0.1 * (40.0 * t).sin());
                let round = |v: f64| (v * 1e6).round() / 1e6;
                json!([round(-119.6 + r * t.cos()), round(37.6 + r * t.sin())])
            })
            .collect();
        json!({"type": "Polygon", "coordinates": [ring]})
    };
    let (status, _, detailed_body) = post(
        json!({"region": "sierra_nevada", "conditions": ["disturbance"], "geometry": detailed}),
    )
    .await;
    assert_eq!(status, 200);
    let detailed_shape = planscape::planning::geometry::to_multipolygon(&detailed).expect("shape");
    let expected = planscape::planning::stats::zonal_stats(
        &dir.join("built/sierra_nevada/disturbance.tif"),
        1,
        &detailed_shape,
    )
    .expect("stats");
    assert!(expected.count > 10, "the area lies on the raster");
    assert_eq!(
        detailed_body["results"][0]["count"].as_u64(),
        Some(expected.count),
        "{detailed_body}"
    );

    // Plan scores: every condition of the region, kept, recomputed on a geometry change.
    let (_, _, plan) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&token),
        Some(json!({"name": "scores", "region": "sierra_nevada", "geometry": area})),
    )
    .await;
    let id = plan["id"].as_i64().expect("id");
    let scores_path = format!("/plans/{id}/scores");
    let scores = |token: String| {
        let (server, path) = (&server, &scores_path);
        async move { call(server, Method::GET, path, Some(&token), None).await }
    };
    let (_, _, first) = scores(token.clone()).await;
    assert_eq!(
        first["scores"].as_array().expect("scores").len(),
        6,
        "1 pillar, 2 elements, 3 metrics: {first}"
    );
    let pillar_score = first["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .find(|s| s["condition"] == "forest_resilience")
        .expect("pillar")
        .clone();
    assert_eq!(
        pillar_score["mean"].as_f64(),
        body["results"][0]["mean"].as_f64()
    );
    let (_, _, again) = scores(token.clone()).await;
    assert_eq!(
        again["computed_at"], first["computed_at"],
        "kept, not recomputed"
    );
    call(
        &server,
        Method::PATCH,
        &format!("/plans/{id}"),
        Some(&token),
        Some(json!({"geometry": square(-119.2, 37.2, 0.2)})),
    )
    .await;
    let (_, _, changed) = scores(token.clone()).await;
    assert_ne!(changed["computed_at"], first["computed_at"], "recomputed");
    assert_ne!(changed["scores"], first["scores"]);
    let (stranger, _, _) = signup(&server, "C").await;
    assert_eq!(scores(stranger).await.0, 404);
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Checks project areas against PostGIS: each lies inside the plan and outside the
/// excluded area, both taken with straight edges in EPSG:5070 as the scenario does (but
/// for slivers of the output's 1 cm rounding), and its acres are its
/// geodesic area's within 0.5 %, never more than its stands'. Returns the stated and the
/// stands' (unclipped) acres.
async fn check_project_areas(
    areas: &[Value],
    plan: &Value,
    exclude: &Value,
    stand_acres: f64,
) -> (f64, f64) {
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("db");
    let (mut stated_sum, mut nominal_sum) = (0.0, 0.0);
    for a in areas {
        let row = db
            .query_one(
                "WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON($1), 4326) a, \
                                   ST_SetSRID(ST_GeomFromGeoJSON($2), 4326) p, \
                                   ST_SetSRID(ST_GeomFromGeoJSON($3), 4326) x) \
                 SELECT ST_Area(ST_Difference(ST_Transform(a, 5070), ST_Transform(p, 5070))), \
                        ST_Area(ST_Intersection(ST_Transform(a, 5070), ST_Transform(x, 5070))), \
                        ST_Area(a::geography) / 4046.8564224, \
                        ST_Perimeter(ST_Transform(a, 5070)) FROM g",
                &[
                    &a["geometry"].to_string(),
                    &plan.to_string(),
                    &exclude.to_string(),
                ],
            )
            .await
            .expect("PostGIS measures the area");
        let (outside, excluded, acres, perimeter): (f64, f64, f64, f64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        // The GeoJSON has 7 decimals (about 1 cm): slivers of at most that width.
        let slivers = perimeter * 0.01;
        assert!(outside < slivers, "{outside} m² outside the plan");
        assert!(excluded < slivers, "{excluded} m² in the excluded area");
        let stated = a["properties"]["area_acres"].as_f64().expect("acres");
        assert!(
            (stated - acres).abs() / acres < 0.005,
            "{stated} acres stated, {acres} by PostGIS"
        );
        let nominal = a["properties"]["stand_count"].as_f64().expect("stands") * stand_acres;
        assert!(
            stated <= nominal * (1.0 + 1e-6),
            "clipping never adds area: {stated} > {nominal}"
        );
        stated_sum += stated;
        nominal_sum += nominal;
    }
    (stated_sum, nominal_sum)
}

/// A file as GDAL (QGIS's reader) sees it: `ogrinfo` must open it, and the features
/// come back as GeoJSON-like values (properties as text or numbers, geometry as GeoJSON)
/// with the layer's CRS authority code.
fn read_vector(path: &str) -> (Vec<Value>, Option<i32>) {
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-so", path])
        .output()
        .expect("ogrinfo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Feature Count"),
        "ogrinfo {path}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).expect("gdal opens");
    let mut layer = ds.layer(0).expect("layer");
    let epsg = layer.spatial_ref().and_then(|s| s.auth_code().ok());
    let mut features = Vec::new();
    for f in layer.features() {
        let mut properties = serde_json::Map::new();
        for (name, value) in f.fields() {
            let v = match value {
                Some(gdal::vector::FieldValue::IntegerValue(i)) => json!(i),
                Some(gdal::vector::FieldValue::Integer64Value(i)) => json!(i),
                Some(gdal::vector::FieldValue::RealValue(x)) => json!(x),
                Some(gdal::vector::FieldValue::StringValue(s)) => json!(s),
                _ => Value::Null,
            };
            properties.insert(name, v);
        }
        let geometry = f
            .geometry()
            .and_then(|g| g.json().ok())
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or(Value::Null);
        features.push(json!({"properties": properties, "geometry": geometry}));
    }
    (features, epsg)
}

/// A done scenario's exports open in GDAL with every project area, its fields and
/// outline (area checked against the API's GeoJSON); bad formats and strangers refused.
async fn check_exports(
    server: &TestServer,
    token: &str,
    stranger: &str,
    sid: i64,
    areas: &[Value],
) {
    let dir = std::env::temp_dir().join(unique("export"));
    std::fs::create_dir_all(&dir).expect("dir");
    let expected_area: f64 = areas
        .iter()
        .map(|a| common::geojson_area(&a["geometry"]))
        .sum();
    for (format, ext, media, path_of) in [
        ("geojson", "geojson", "application/geo+json", None),
        ("shapefile", "zip", "application/zip", Some("/vsizip/")),
        ("csv", "csv", "text/csv; charset=utf-8", None),
    ] {
        let url = format!("{API}/scenarios/{sid}/export?format={format}");
        let r = send(server, Method::GET, &url, Some(token), None).await;
        assert_eq!(r.status(), 200, "{format}");
        assert_eq!(r.headers()["content-type"], media);
        let disposition = r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(
            disposition,
            format!("attachment; filename=\"scenario-{sid}-project-areas.{ext}\"")
        );
        let file = dir.join(format!("export.{ext}"));
        std::fs::write(&file, r.bytes().await.expect("body")).expect("write");
        let (features, epsg) = read_vector(&format!("{}{}", path_of.unwrap_or(""), file.display()));
        assert_eq!(features.len(), areas.len(), "{format}");
        for (f, a) in features.iter().zip(areas) {
            let p = &f["properties"];
            // CSV columns come back as text unless typed: compare as numbers.
            let num = |v: &Value| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            };
            assert_eq!(
                num(&p["rank"]),
                a["properties"]["rank"].as_f64(),
                "{format}"
            );
            assert_eq!(
                num(&p["stands"]),
                a["properties"]["stand_count"].as_f64(),
                "{format}"
            );
            let acres = num(&p["area_acres"]).expect("acres");
            let want = a["properties"]["area_acres"].as_f64().expect("acres");
            assert!(
                (acres - want).abs() < 1e-6 * want.max(1.0),
                "{format}: {acres} vs {want}"
            );
        }
        if format != "csv" {
            // Outlines in longitude/latitude, the same area as the API's.
            let got: f64 = features
                .iter()
                .map(|f| common::geojson_area(&f["geometry"]))
                .sum();
            assert!(
                (got - expected_area).abs() < 1e-4 * expected_area,
                "{format}: {got} vs {expected_area}"
            );
            assert_eq!(epsg, Some(4326), "{format}");
        }
    }
    // Bad or missing format: 400; strangers: 404; anonymous: 401.
    for query in ["?format=kml", "", "?format=geojson&x=1"] {
        let url = format!("{API}/scenarios/{sid}/export{query}");
        let r = send(server, Method::GET, &url, Some(token), None).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_query");
    }
    let url = format!("{API}/scenarios/{sid}/export?format=csv");
    assert_eq!(
        send(server, Method::GET, &url, Some(stranger), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(server, Method::GET, &url, None, None).await.status(),
        401
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Polls a scenario until it is done or failed.
async fn finished(server: &TestServer, token: &str, sid: i64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, _, s) = call(
            server,
            Method::GET,
            &format!("/scenarios/{sid}"),
            Some(token),
            None,
        )
        .await;
        if s["status"] == "done" || s["status"] == "failed" {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "scenario never finished: {s}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_rank_project_areas_within_the_constraints() {
    let (dir, toml) = setup();
    let catalog = planscape::planning::conditions::Catalog::load(&dir.join("conditions.toml"))
        .expect("catalog");
    planscape::planning::conditions::build(&catalog, &dir.join("built")).expect("build");
    let server = TestServer::start(&toml).await;
    let (owner, _, _) = signup(&server, "C").await;
    let (_, _, plan) = call(
        &server,
        Method::POST,
        "/plans",
        Some(&owner),
        Some(json!({"name": "scenario plan", "region": "sierra_nevada", "geometry": square(-119.6, 37.6, 0.2)})),
    )
    .await;
    let id = plan["id"].as_i64().expect("id");
    let plan_acres = plan["area_acres"].as_f64().expect("acres");
    let (viewer, _, viewer_mail) = signup(&server, "C").await;
    let (collaborator, _, collaborator_mail) = signup(&server, "C").await;
    let (stranger, _, _) = signup(&server, "C").await;
    for (mail, role, token) in [
        (&viewer_mail, "viewer", &viewer),
        (&collaborator_mail, "collaborator", &collaborator),
    ] {
        share(&server, &owner, id, mail, role, token).await;
    }
    let request = |stand: u32| {
        json!({"name": "thin first", "stand_size_acres": stand, "max_treatment_share": 0.2, "max_project_areas": 5,
               "priorities": [{"condition": "disturbance", "weight": 2.0}, {"condition": "aboveground_biomass", "weight": 1.0}],
               "exclude": square(-119.45, 37.45, 0.03)})
    };
    let scenarios_path = format!("/plans/{id}/scenarios");
    let create = |token: &str, body: Value| {
        let (server, path, token) = (&server, &scenarios_path, token.to_owned());
        async move { call(server, Method::POST, path, Some(&token), Some(body)).await }
    };
    // Permissions: viewers cannot add scenarios, strangers do not see the plan.
    assert_eq!(create(&viewer, request(100)).await.0, 403);
    assert_eq!(create(&stranger, request(100)).await.0, 404);
    // Bad input names the field.
    let mut bad_weight = request(100);
    bad_weight["priorities"][1]["weight"] = json!(-1.0);
    let mut zero = request(100);
    zero["priorities"] = json!([{"condition": "disturbance", "weight": 0.0}]);
    let mut unknown = request(100);
    unknown["priorities"][0]["condition"] = json!("nope");
    let mut share = request(100);
    share["max_treatment_share"] = json!(0.0);
    for (body, field) in [
        (request(50), "stand_size_acres"),
        (bad_weight, "priorities[1].weight"),
        (zero, "priorities"),
        (unknown, "priorities[0].condition"),
        (share, "max_treatment_share"),
        (
            {
                // 0.1 % of the plan (about 96 acres) holds no 500-acre stand.
                let mut b = request(500);
                b["max_treatment_share"] = json!(0.001);
                b
            },
            "stand_size_acres",
        ),
        (
            {
                let mut b = request(100);
                b["name"] = json!("tab\tand nul\u{0}");
                b
            },
            "name",
        ),
    ] {
        let (status, _, err) = create(&collaborator, body).await;
        assert_eq!(status, 422);
        assert_eq!(err["error"]["field"], field, "{err}");
    }

    // A collaborator runs one; it goes pending -> done.
    let (status, _, started) = create(&collaborator, request(10)).await;
    assert_eq!(status, 202);
    assert!(started["status"] == "pending" || started["status"] == "running");
    let sid = started["id"].as_i64().expect("id");
    let done = finished(&server, &viewer, sid).await;
    assert_eq!(done["status"], "done", "{done}");
    let summary = &done["summary"];
    // Stand count = area / stand size (the excluded square left out), within 2 %.
    let excluded_acres = {
        let db = planscape::db::connect(&common::db_config())
            .await
            .expect("db");
        let row = db
            .query_one(
                "SELECT ST_Area(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326), 5070)) / 4046.8564224",
                &[&square(-119.45, 37.45, 0.03).to_string()],
            )
            .await
            .expect("area");
        row.get::<_, f64>(0)
    };
    let expected = (plan_acres - excluded_acres) / 10.0;
    let stands = summary["stands"].as_f64().expect("stands");
    assert!(
        ((stands - expected) / expected).abs() < 0.02,
        "{stands} stands vs {expected}"
    );
    let areas = done["project_areas"]["features"]
        .as_array()
        .expect("features")
        .clone();
    assert!(
        !areas.is_empty() && areas.len() <= 5,
        "{} areas",
        areas.len()
    );
    let treated: f64 = areas
        .iter()
        .map(|a| a["properties"]["area_acres"].as_f64().expect("acres"))
        .sum();
    assert!(
        treated <= 0.2 * plan_acres + 1e-6,
        "{treated} > 20 % of {plan_acres}"
    );
    assert!(treated > 0.15 * plan_acres, "the budget is used: {treated}");
    for (i, a) in areas.iter().enumerate() {
        assert_eq!(a["properties"]["rank"].as_u64(), Some(i as u64 + 1));
        if i > 0 {
            assert!(
                areas[i - 1]["properties"]["score"].as_f64() >= a["properties"]["score"].as_f64(),
                "ranked by score"
            );
        }
        assert_eq!(a["geometry"]["type"], "MultiPolygon");
    }
    check_project_areas(
        &areas,
        &square(-119.6, 37.6, 0.2),
        &square(-119.45, 37.45, 0.03),
        10.0,
    )
    .await;
    // Treating everything in 500-acre stands: the edge stands reach past the plan and
    // into the excluded square, and the outlines are clipped back.
    let mut everything = request(500);
    everything["max_treatment_share"] = json!(1.0);
    // Given as a Feature with free-text properties (a NUL among them, which PostgreSQL
    // refuses in jsonb): the bare geometry is what is kept.
    everything["exclude"] = json!({"type": "Feature", "properties": {"note": "a\u{0}b"},
        "geometry": square(-119.45, 37.45, 0.03)});
    let (_, _, all) = create(&collaborator, everything).await;
    let all = finished(&server, &viewer, all["id"].as_i64().expect("id")).await;
    assert_eq!(all["status"], "done", "{all}");
    assert_eq!(all["config"]["exclude"]["type"], "Polygon", "{all}");
    let all_areas = all["project_areas"]["features"]
        .as_array()
        .expect("features")
        .clone();
    let (stated, nominal) = check_project_areas(
        &all_areas,
        &square(-119.6, 37.6, 0.2),
        &square(-119.45, 37.45, 0.03),
        500.0,
    )
    .await;
    assert!(
        stated < nominal - 500.0,
        "outlines clipped at the edges: {stated} of {nominal} acres"
    );
    assert!(
        stated <= (plan_acres - excluded_acres) * 1.001,
        "{stated} acres treated of {plan_acres} - {excluded_acres}"
    );
    // Exports for GIS tools.
    check_exports(&server, &viewer, &stranger, sid, &areas).await;
    // Project areas as private tiles.
    let tile = planscape::tile::TileId::containing(-119.6, 37.6, 7);
    let path = format!(
        "/tiles/scenarios/{sid}/project_areas/{}/{}/{}.mvt",
        tile.z, tile.x, tile.y
    );
    let r = send(&server, Method::GET, &path, Some(&viewer), None).await;
    assert_eq!(r.status(), 200);
    let decoded = common::gdal_decode(&r.bytes().await.expect("body"), tile.z, tile.x, tile.y);
    assert!(!decoded["features"].as_array().expect("features").is_empty());
    assert_eq!(
        send(&server, Method::GET, &path, Some(&stranger), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        send(&server, Method::GET, &path, None, None).await.status(),
        401
    );
    // The whole matrix over the plan-scoped endpoints of this issue: anonymous, stranger,
    // viewer, collaborator, owner. Creation is tried with a stand size not offered: the
    // role is checked first (401/404/403), then the body (422), so no run starts.
    let who: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("stranger", Some(&stranger)),
        ("viewer", Some(&viewer)),
        ("collaborator", Some(&collaborator)),
        ("owner", Some(&owner)),
    ];
    let mut bad_size = request(100);
    bad_size["stand_size_acres"] = json!(50);
    let cases: [(Method, String, Option<&Value>, [u16; 5]); 5] = [
        (
            Method::GET,
            format!("{API}/plans/{id}/scenarios"),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::GET,
            format!("{API}/scenarios/{sid}"),
            None,
            [401, 404, 200, 200, 200],
        ),
        (
            Method::GET,
            format!("{API}/plans/{id}/scores"),
            None,
            [401, 404, 200, 200, 200],
        ),
        (Method::GET, path.clone(), None, [401, 404, 200, 200, 200]),
        (
            Method::POST,
            format!("{API}/plans/{id}/scenarios"),
            Some(&bad_size),
            [401, 404, 403, 422, 422],
        ),
    ];
    for (method, url, body, expected) in &cases {
        for ((name, token), want) in who.iter().zip(expected) {
            let got = send(&server, method.clone(), url, *token, *body)
                .await
                .status()
                .as_u16();
            assert_eq!(got, *want, "{method} {url} as {name}");
        }
    }
    // Deleting: anonymous 401 and viewers 403 here; collaborators, strangers and the
    // owner below.
    let scenario_path = format!("/scenarios/{sid}");
    for (token, want) in [(None, 401), (Some(viewer.as_str()), 403)] {
        let (status, _, _) = call(&server, Method::DELETE, &scenario_path, token, None).await;
        assert_eq!(status, want);
    }

    // Listing, and deleting (owners only).
    let (_, _, list) = call(&server, Method::GET, &scenarios_path, Some(&viewer), None).await;
    assert_eq!(list.as_array().expect("list").len(), 2);
    for (token, want) in [(&collaborator, 403), (&stranger, 404), (&owner, 204)] {
        let (status, _, _) = call(&server, Method::DELETE, &scenario_path, Some(token), None).await;
        assert_eq!(status, want);
    }

    // A run that cannot read a raster ends in `failed` with the reason, and writes nothing.
    std::fs::remove_file(dir.join("built/sierra_nevada/structure.tif")).expect("remove");
    let mut broken = request(100);
    broken["priorities"] = json!([{"condition": "structure", "weight": 1.0}]);
    let (_, _, failed) = create(&owner, broken).await;
    let failed = finished(&server, &owner, failed["id"].as_i64().expect("id")).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or("")
            .contains("structure.tif"),
        "{failed}"
    );
    assert!(failed.get("project_areas").is_none() || failed["project_areas"].is_null());
    // A failed scenario has nothing to export: 409.
    let (status, _, err) = call(
        &server,
        Method::GET,
        &format!("/scenarios/{}/export?format=geojson", failed["id"]),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "not_done");
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("db");
    let rows_of = |sid: i64| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT count(*) FROM planscape.project_areas WHERE scenario_id = $1",
                &[&sid],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
        }
    };
    assert_eq!(rows_of(failed["id"].as_i64().expect("id")).await, 0);

    // A run failing while its results are written (the second project area refused by a
    // trigger) leaves none of them: one transaction.
    db.batch_execute(
        "CREATE FUNCTION planscape.test_refuse_rank_2() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.rank = 2 AND (SELECT name FROM planscape.scenarios WHERE id = NEW.scenario_id) = 'rollback probe' THEN
             RAISE EXCEPTION 'refused by the test';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER test_refuse_rank_2 BEFORE INSERT ON planscape.project_areas
           FOR EACH ROW EXECUTE FUNCTION planscape.test_refuse_rank_2();",
    )
    .await
    .expect("trigger");
    let mut probe = request(10);
    probe["name"] = json!("rollback probe");
    probe["priorities"] = json!([{"condition": "disturbance", "weight": 1.0}]);
    let (_, _, probe) = create(&owner, probe).await;
    let probe_id = probe["id"].as_i64().expect("id");
    let probe = finished(&server, &owner, probe_id).await;
    db.batch_execute(
        "DROP TRIGGER test_refuse_rank_2 ON planscape.project_areas; DROP FUNCTION planscape.test_refuse_rank_2();",
    )
    .await
    .expect("drop trigger");
    assert_eq!(probe["status"], "failed", "{probe}");
    assert!(
        probe["reason"]
            .as_str()
            .unwrap_or("")
            .contains("refused by the test"),
        "{probe}"
    );
    assert_eq!(
        rows_of(probe_id).await,
        0,
        "the first project area went too"
    );

    // Runs whose server stopped (a heartbeat an hour old) are closed as failed by the
    // next server to start; a run with a fresh heartbeat (a live server's) is left be.
    let owner_id = plan["owner_id"].as_i64().expect("owner id");
    let insert = |age: &'static str| {
        let db = &db;
        async move {
            db.query_one(
                "INSERT INTO planscape.scenarios (plan_id, created_by, name, config, status, heartbeat_at) \
                 VALUES ($1, $2, 'orphan', '{}', 'running', now() - $3::text::interval) RETURNING id",
                &[&id, &owner_id, &age],
            )
            .await
            .expect("insert run")
            .get::<_, i64>(0)
        }
    };
    let (orphan, live) = (insert("1 hour").await, insert("0 seconds").await);
    let second = TestServer::start(&toml).await;
    let status = |sid: i64| {
        let db = &db;
        async move {
            let row = db
                .query_one(
                    "SELECT status, coalesce(reason, '') FROM planscape.scenarios WHERE id = $1",
                    &[&sid],
                )
                .await
                .expect("status");
            (row.get::<_, String>(0), row.get::<_, String>(1))
        }
    };
    let (orphan_status, reason) = status(orphan).await;
    assert_eq!(orphan_status, "failed");
    assert!(reason.contains("interrupted"), "{reason}");
    assert_eq!(status(live).await.0, "running");
    second.stop().await;
    db.execute("DELETE FROM planscape.scenarios WHERE id = $1", &[&live])
        .await
        .expect("clean up");
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}
