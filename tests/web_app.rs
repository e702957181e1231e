//! The planner web app's files at `/`: content-hashed files cached for a year, the rest
//! revalidated, gzip twins for clients that accept them, unknown paths a JSON 404, and a
//! hint when the app is not built. (The app itself is tested in Chromium by
//! scripts/e2e-stack.sh.)

mod common;

use common::{TestServer, unique};

/// A built app in a folder of its own: `index.html`, a hashed script and its gzip twin.
fn built_app() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("web"));
    std::fs::create_dir_all(&dir).expect("web dir");
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><script src=\"main-AB12CD34.js\"></script>",
    )
    .expect("index");
    let script = "console.log('planscape');\n".repeat(50);
    std::fs::write(dir.join("main-AB12CD34.js"), &script).expect("script");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, script.as_bytes()).expect("gzip");
    std::fs::write(dir.join("main-AB12CD34.js.gz"), gz.finish().expect("gzip")).expect("gz");
    // The API reference, as web/build.mjs writes it.
    std::fs::create_dir_all(dir.join("docs")).expect("docs dir");
    std::fs::write(
        dir.join("docs/index.html"),
        "<!doctype html><script src=\"/planscape-backend/docs/docs-EF56GH78.js\"></script>",
    )
    .expect("docs index");
    std::fs::write(dir.join("docs/docs-EF56GH78.js"), "SwaggerUIBundle();").expect("docs js");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_with_the_right_cache_headers() {
    let dir = built_app();
    let server = TestServer::start(&format!("web_dir = \"{}\"\n", dir.display())).await;

    let index = server.get("/", &[]).await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert!(
        index
            .text()
            .await
            .expect("body")
            .contains("main-AB12CD34.js")
    );

    let script = server.get("/main-AB12CD34.js", &[]).await;
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(script.headers().get("content-encoding").is_none());
    let plain = script.bytes().await.expect("body");
    let zipped = server
        .get("/main-AB12CD34.js", &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert!(zipped.bytes().await.expect("body").len() < plain.len());

    // Not a file of the app, nor a route: the API's JSON 404.
    let missing = server.get("/main-ZZZZZZZZ.js", &[]).await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "not_found");
    // Routes still win over files.
    assert_eq!(server.get("/health", &[]).await.status(), 200);

    // The API reference under the API's prefix (so that nginx forwards it with the API).
    for path in ["/planscape-backend/docs", "/planscape-backend/docs/"] {
        let docs = server.get(path, &[]).await;
        assert_eq!(docs.status(), 200, "{path}");
        assert_eq!(docs.headers()["cache-control"], "no-cache");
        assert!(
            docs.text()
                .await
                .expect("body")
                .contains("docs-EF56GH78.js")
        );
    }
    let docs_js = server
        .get("/planscape-backend/docs/docs-EF56GH78.js", &[])
        .await;
    assert_eq!(docs_js.status(), 200);
    assert_eq!(
        docs_js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let missing = server.get("/planscape-backend/docs/nope.js", &[]).await;
    assert_eq!(missing.status(), 404);
    server.stop().await;
    std::fs::remove_dir_all(&dir).ok();

    // Without a built app, `/` says how to build it.
    let server = TestServer::start("web_dir = \"/nonexistent/planscape-web\"\n").await;
    let hint = server.get("/", &[]).await;
    assert_eq!(hint.status(), 503);
    assert!(
        hint.text()
            .await
            .expect("body")
            .contains("scripts/web-build.sh")
    );
    server.stop().await;
}
