//! Start-up checks: a bad config stops the binary with an error naming the key; a layer
//! whose table or column is missing is reported while the other layers serve.

mod common;

use std::path::Path;

use common::cli::{assert_success, run, run_config_text, stderr};
use common::{Scratch, TestServer};

#[test]
fn bad_config_is_refused_naming_the_key() {
    let cases = [
        (
            "[layers.a]\ntype = \"vector\"\ntable = \"t\"\ncolour = 1\n",
            "colour",
        ),
        ("[cache]\nsize_mb = -1\n", "size_mb"),
        ("listen = \"not an address\"\n", "listen"),
        (
            "[layers.a]\ntype = \"vector\"\ntable = \"t\"\nminzoom = 10\nmaxzoom = 2\n",
            "layers.a.minzoom",
        ),
        (
            "[layers.a]\ntype = \"raster3d\"\ntable = \"t\"\n",
            "raster3d",
        ),
        (
            "[layers.a]\ntype = \"vector\"\ntable = \"x; DROP TABLE y\"\n",
            "layers.a.table",
        ),
        (
            "[layers.a]\ntype = \"vector\"\ntable = \"t\"\nproperties = [\"name, 1\"]\n",
            "layers.a.properties",
        ),
        ("[database]\npool_size = 0\n", "database.pool_size"),
        // Secrets only from the environment.
        (
            "admin_token = \"0123456789abcdef0123\"\n",
            "PLANSCAPE_ADMIN_TOKEN",
        ),
        (
            "[accounts]\nsigning_key = \"0123456789abcdef0123456789abcdef\"\n",
            "PLANSCAPE_SIGNING_KEY",
        ),
        (
            "[database]\nurl = \"postgres://app:s3cret@db.internal/planscape\"\n",
            "DATABASE_URL",
        ),
        ("not toml at all [", "TOML"),
        (
            "[[basemaps]]\nid = \"topo\"\nname = \"Topo\"\nurl = \"https://t.example/{z}/{x}.png\"\n",
            "basemaps[0]",
        ),
        (
            "[[basemaps]]\nid = \"s\"\nname = \"S\"\nurl = \"https://t.example/{z}/{x}/{y}.png?api_key={key}\"\n",
            "key_env",
        ),
        (
            "[[basemaps]]\nid = \"plain\"\nname = \"P\"\nurl = \"https://t.example/{z}/{x}/{y}.png\"\n",
            "plain",
        ),
    ];
    for (text, needle) in cases {
        let out = run_config_text(text, &["serve"], &[]);
        assert_eq!(out.status.code(), Some(2), "{text}");
        let said = stderr(&out);
        assert!(
            said.contains(needle),
            "error for {text:?} should name {needle}: {said}"
        );
    }
    let missing = run(Path::new("/nonexistent/planscape.toml"), &["serve"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("/nonexistent/planscape.toml"));
}

#[test]
fn environment_overrides_are_applied_and_secrets_redacted() {
    let out = run_config_text(
        "[cache]\nsize_mb = 1\n",
        &["check-config"],
        &[
            (
                "DATABASE_URL",
                "postgres://app:s3cret@db.internal:5432/planscape",
            ),
            ("PLANSCAPE_CACHE_SIZE_MB", "64"),
            (
                "PLANSCAPE_SHARED_CACHE_URL",
                "rediss://:t0ken-value@cache.internal:6379",
            ),
        ],
    );
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("size_mb = 64"), "{stdout}");
    assert!(
        stdout.contains("postgres://app:***@db.internal:5432/planscape"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret"));
    assert!(
        stdout.contains("rediss://***@cache.internal:6379"),
        "{stdout}"
    );
    assert!(!stdout.contains("t0ken-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_layers_are_reported_and_the_rest_serve() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let s = &scratch.schema;
    let config = format!(
        "[layers.counties]\ntype = \"vector\"\ntable = \"{s}.counties\"\nproperties = [\"name\"]\ndescription = \"California counties\"\n\
         [layers.missing_table]\ntype = \"vector\"\ntable = \"{s}.nope\"\n\
         [layers.missing_column]\ntype = \"vector\"\ntable = \"{s}.counties\"\nproperties = [\"population\"]\n\
         [layers.not_geometry]\ntype = \"vector\"\ntable = \"{s}.counties\"\ngeometry = \"name\"\n\
         [layers.text_id]\ntype = \"vector\"\ntable = \"{s}.counties\"\nid = \"name\"\n"
    );
    let server = TestServer::start(&config).await;
    let ready = server.get("/ready", &[]).await;
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.expect("json");
    let broken = ready["broken_layers"].as_array().expect("list");
    let broken_names: Vec<&str> = broken.iter().filter_map(|b| b["layer"].as_str()).collect();
    assert_eq!(
        broken_names,
        ["missing_column", "missing_table", "not_geometry", "text_id"]
    );
    let message = |layer: &str| {
        broken
            .iter()
            .find(|b| b["layer"] == layer)
            .and_then(|b| b["error"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    assert!(message("missing_table").contains("does not exist"));
    assert!(message("missing_column").contains("population"));
    assert!(message("not_geometry").contains("not a PostGIS geometry"));
    assert!(message("text_id").contains("integer"));

    let catalog: serde_json::Value = server.get("/tiles", &[]).await.json().await.expect("json");
    let entry = catalog["layers"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == "missing_table").cloned());
    assert!(entry.is_some_and(|e| e["error"].is_string()));
    let counties = catalog["layers"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["id"] == "counties").cloned())
        .expect("counties listed");
    assert_eq!(counties["type"], "vector");
    assert_eq!(counties["description"], "California counties");

    let tile = server.get("/tiles/missing_table/0/0/0.mvt", &[]).await;
    assert_eq!(tile.status(), 503);
    let body: serde_json::Value = tile.json().await.expect("json");
    assert_eq!(body["error"]["code"], "layer_unavailable");
    assert_eq!(
        server.get("/tiles/counties/5/5/12.mvt", &[]).await.status(),
        200
    );

    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_serve_and_slow_queries_hit_the_statement_timeout() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let s = &scratch.schema;
    // A view whose every row takes 50 ms: tile queries over it exceed a 200 ms timeout.
    scratch.create_slow_view("slow_counties", 0.05).await;
    let config = format!(
        "[database]\nstatement_timeout_ms = 200\n\
         [layers.slow]\ntype = \"vector\"\ntable = \"{s}.slow_counties\"\nproperties = [\"name\", \"slow\"]\n\
         [layers.counties]\ntype = \"vector\"\ntable = \"{s}.counties\"\nproperties = [\"name\"]\n"
    );
    let server = TestServer::start(&config).await;
    let ready: serde_json::Value = server.get("/ready", &[]).await.json().await.expect("json");
    assert_eq!(
        ready["broken_layers"],
        serde_json::json!([]),
        "a view is a valid layer"
    );
    let slow = server.get("/tiles/slow/5/5/12.mvt", &[]).await;
    assert_eq!(slow.status(), 503);
    let body: serde_json::Value = slow.json().await.expect("json");
    assert_eq!(body["error"]["code"], "render_timeout");
    // The pool is fine afterwards.
    assert_eq!(
        server.get("/tiles/counties/5/5/12.mvt", &[]).await.status(),
        200
    );
    // One county (Alpine, the smallest by population) fits in the timeout: the view serves.
    let tile = planscape::tile::TileId::containing(-119.8, 38.6, 12);
    let small = server.get(&format!("/tiles/slow/{tile}.mvt"), &[]).await;
    assert_eq!(small.status(), 200);
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basemaps_come_from_the_config_with_keys_from_the_environment() {
    let toml = r#"
[[basemaps]]
id = "stadia"
name = "Stadia terrain"
url = "https://tiles.stadiamaps.com/tiles/stamen_terrain/{z}/{x}/{y}.png?api_key={key}"
attribution = "&copy; Stadia Maps"
max_zoom = 18
key_env = "TEST_STADIA_KEY"

[[basemaps]]
id = "unkeyed"
name = "Needs a key nobody set"
url = "https://example.com/{z}/{x}/{y}.png?k={key}"
key_env = "TEST_UNSET_KEY"

[[basemaps]]
id = "osm"
name = "OpenStreetMap"
url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
"#;
    let server = TestServer::start_with_env(toml, &[("TEST_STADIA_KEY", "a&b key")]).await;
    let r = server.get("/planscape-backend/basemaps", &[]).await;
    assert_eq!(r.status(), 200);
    let list: serde_json::Value = r.json().await.expect("json");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["stadia", "osm"],
        "the entry without its key is left out"
    );
    assert_eq!(
        list[0]["url"],
        "https://tiles.stadiamaps.com/tiles/stamen_terrain/{z}/{x}/{y}.png?api_key=a%26b%20key"
    );
    assert_eq!(list[0]["max_zoom"], 18);
    assert_eq!(list[1]["max_zoom"], 19);
    // Public, and in the OpenAPI document without a security requirement.
    let doc: serde_json::Value = server
        .get("/planscape-backend/openapi.json", &[])
        .await
        .json()
        .await
        .expect("json");
    let op = &doc["paths"]["/basemaps"]["get"];
    assert!(op.is_object(), "documented");
    assert!(op.get("security").is_none(), "public: {op}");
    server.stop().await;

    // Without a [[basemaps]] list: OpenStreetMap.
    let server = TestServer::start("").await;
    let list: serde_json::Value = server
        .get("/planscape-backend/basemaps", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["id"], "osm");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    server.stop().await;
}
