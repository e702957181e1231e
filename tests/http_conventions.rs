//! The HTTP contract of tiles: bad input, ETag/304, gzip negotiation, 204, HEAD, CORS,
//! Cache-Control, JSON errors.

mod common;

use std::io::Read;

use common::{Scratch, TestServer};
use planscape::tile::TileId;

async fn server_with_counties() -> (Scratch, TestServer) {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let config = format!(
        "[http]\ncache_control = \"public, max-age=42\"\n{}minzoom = 3\nmaxzoom = 12\n",
        scratch.counties_layer()
    );
    let server = TestServer::start(&config).await;
    (scratch, server)
}

fn sacramento() -> String {
    format!(
        "/tiles/counties/{}.mvt",
        TileId::containing(-121.49, 38.58, 7)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_errors_never_500() {
    let (scratch, server) = server_with_counties().await;
    let cases: &[(&str, u16, &str)] = &[
        ("/tiles/counties/a/0/0.mvt", 400, "invalid_tile"),
        ("/tiles/counties/7/x/0.mvt", 400, "invalid_tile"),
        ("/tiles/counties/7/0/-1.mvt", 400, "invalid_tile"),
        ("/tiles/counties/7/+1/0.mvt", 400, "invalid_tile"),
        ("/tiles/counties/7/128/0.mvt", 400, "invalid_tile"),
        ("/tiles/counties/7/0/128.mvt", 400, "invalid_tile"),
        ("/tiles/counties/25/0/0.mvt", 400, "invalid_tile"),
        (
            "/tiles/counties/99999999999999999999/0/0.mvt",
            400,
            "invalid_tile",
        ),
        (
            "/tiles/counties/7/0/99999999999999999999999.mvt",
            400,
            "invalid_tile",
        ),
        ("/tiles/counties/7/20/49.gif", 400, "unknown_format"),
        ("/tiles/counties/7/20/49", 400, "unknown_format"),
        ("/tiles/counties/2/0/0.mvt", 404, "not_found"),
        ("/tiles/counties/13/0/0.mvt", 404, "not_found"),
        ("/tiles/counties/7/20/49.png", 404, "not_found"),
        ("/tiles/counties/7/20/49@2x.mvt", 404, "not_found"),
        ("/tiles/nope/7/20/49.mvt", 404, "not_found"),
        ("/tiles/nope", 404, "not_found"),
        ("/tiles/counties/7/20/49/extra.mvt", 404, "not_found"),
        ("/nothing-here", 404, "not_found"),
        ("/tiles/counties/7/%FF%FE/49.mvt", 400, "invalid_path"),
        ("/tiles/%C3%28", 400, "invalid_path"),
    ];
    for (path, status, code) in cases {
        let response = server.get(path, &[]).await;
        assert_eq!(response.status().as_u16(), *status, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = response.json().await.expect("JSON error body");
        assert_eq!(body["error"]["code"], *code, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}"
        );
    }
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_and_conditional_requests() {
    let (scratch, server) = server_with_counties().await;
    let first = server.get(&sacramento(), &[]).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "public, max-age=42");
    assert_eq!(first.headers()["vary"], "Accept-Encoding");
    let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    let body = first.bytes().await.expect("body");

    let again = server.get(&sacramento(), &[]).await;
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(again.bytes().await.expect("body"), body);

    let not_modified = server.get(&sacramento(), &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());
    assert!(not_modified.bytes().await.expect("body").is_empty());

    let listed = server
        .get(
            &sacramento(),
            &[("if-none-match", &format!("\"other\", {etag}"))],
        )
        .await;
    assert_eq!(listed.status(), 304);
    let other = server
        .get(&sacramento(), &[("if-none-match", "\"other\"")])
        .await;
    assert_eq!(other.status(), 200);
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_only_when_accepted() {
    let (scratch, server) = server_with_counties().await;
    let plain = server.get(&sacramento(), &[]).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_etag = plain.headers()["etag"].to_str().expect("etag").to_owned();
    let plain_body = plain.bytes().await.expect("body");

    let gz = server
        .get(&sacramento(), &[("accept-encoding", "gzip, deflate, br")])
        .await;
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "Accept-Encoding");
    let gz_etag = gz.headers()["etag"].to_str().expect("etag").to_owned();
    assert_ne!(
        gz_etag, plain_etag,
        "each representation has its own strong ETag"
    );
    let gz_body = gz.bytes().await.expect("body");
    assert!(gz_body.len() < plain_body.len());
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gz_body[..])
        .read_to_end(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, plain_body);

    let refused = server
        .get(&sacramento(), &[("accept-encoding", "gzip;q=0, br")])
        .await;
    assert!(refused.headers().get("content-encoding").is_none());
    assert_eq!(refused.bytes().await.expect("body"), plain_body);

    let not_modified = server
        .get(
            &sacramento(),
            &[("accept-encoding", "gzip"), ("if-none-match", &gz_etag)],
        )
        .await;
    assert_eq!(not_modified.status(), 304);
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_tiles_are_204_and_cached() {
    let (scratch, server) = server_with_counties().await;
    // The middle of the Pacific.
    let ocean = TileId::containing(-150.0, 20.0, 7);
    let path = format!("/tiles/counties/{ocean}.mvt");
    for _ in 0..2 {
        let response = server.get(&path, &[("accept-encoding", "gzip")]).await;
        assert_eq!(response.status(), 204);
        assert!(response.headers().get("content-encoding").is_none());
        assert_eq!(response.headers()["cache-control"], "public, max-age=42");
        assert!(response.bytes().await.expect("body").is_empty());
    }
    let (index, layer) = server.state.tiles.catalog().get("counties").expect("layer");
    let key = planscape::cache::TileKey {
        layer: index,
        version: layer.version(),
        tile: ocean,
        format: planscape::tile::TileFormat::Mvt,
        scale: 1,
    };
    assert!(
        server.state.tiles.cache().contains(&key),
        "the empty tile is cached"
    );
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_cors_and_health() {
    let (scratch, server) = server_with_counties().await;
    let head = common::client()
        .head(format!("{}{}", server.base, sacramento()))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert!(head.headers().contains_key("etag"));
    assert!(head.bytes().await.expect("body").is_empty());

    let cors = server
        .get(&sacramento(), &[("origin", "https://app.example.org")])
        .await;
    assert_eq!(cors.headers()["access-control-allow-origin"], "*");
    let preflight = common::client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}{}", server.base, sacramento()),
        )
        .header("origin", "https://app.example.org")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap_or("")
            .contains("GET")
    );

    // A path without the request's method: 405 with a JSON error and `Allow`, for tiles
    // and for the API alike.
    for (method, path) in [
        (reqwest::Method::POST, sacramento()),
        (reqwest::Method::DELETE, "/tiles/counties".to_owned()),
        (
            reqwest::Method::PUT,
            "/planscape-backend/auth/login".to_owned(),
        ),
        (
            reqwest::Method::DELETE,
            "/planscape-backend/regions".to_owned(),
        ),
    ] {
        let r = common::client()
            .request(method.clone(), format!("{}{path}", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 405, "{method} {path}");
        assert!(r.headers().contains_key("allow"), "{method} {path}");
        let body: serde_json::Value = r.json().await.expect("a JSON body");
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
    }
    // TileJSON may be cached briefly, per the headers its URLs come from.
    let tilejson = server.get("/tiles/counties", &[]).await;
    assert_eq!(tilejson.headers()["cache-control"], "public, max-age=60");
    assert!(
        tilejson.headers()["vary"]
            .to_str()
            .unwrap_or("")
            .contains("X-Forwarded-Host")
    );

    let health: serde_json::Value = server.get("/health", &[]).await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let ready = server.get("/ready", &[]).await;
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["broken_layers"], serde_json::json!([]));
    server.stop().await;
    scratch.cleanup().await;
}

/// Cache hits are answered before routing (`http::tile_hits`); the answer must be the
/// routed endpoint's, header for header. The same tile asked through a percent-escaped path
/// goes through the router (which decodes it) and is a hit there too: it is the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_answer_as_the_routed_endpoint_does() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    // Any origin allowed (the default), and a list of origins: the hit path works out
    // the CORS headers once where it can.
    for cors in ["", "cors_origins = [\"https://app.example.org\"]\n"] {
        hits_answer_as_routed(&scratch, cors).await;
    }
    scratch.cleanup().await;
}

async fn hits_answer_as_routed(scratch: &Scratch, cors: &str) {
    // A layer name of this test alone: the metrics registry is shared by the process.
    let layer = common::unique("hits").replace('_', "-");
    let config = format!(
        "[http]\ncache_control = \"public, max-age=42\"\n{cors}[layers.{layer}]\ntype = \"vector\"\ntable = \"{}.counties\"\nproperties = [\"name\"]\n",
        scratch.schema
    );
    let server = TestServer::start(&config).await;
    // `h` is %68.
    let escaped_layer = format!("%68{}", &layer[1..]);
    let land = TileId::containing(-121.49, 38.58, 7);
    let ocean = TileId::containing(-150.0, 20.0, 7);
    for tile in [land, ocean] {
        let path = format!("/tiles/{layer}/{tile}.mvt");
        let escaped = format!("/tiles/{escaped_layer}/{tile}.mvt");
        let first = server.get(&path, &[]).await;
        assert!([200, 204].contains(&first.status().as_u16()), "{path}");
        let etag = first.headers()["etag"].to_str().expect("etag").to_owned();
        let cases: [&[(&str, &str)]; 6] = [
            &[],
            &[("accept-encoding", "gzip, br")],
            &[("origin", "https://app.example.org")],
            &[("origin", "https://elsewhere.example.org")],
            &[("if-none-match", &etag)],
            &[("x-request-id", "client-id-7")],
        ];
        for headers in cases {
            let routed = server.get(&escaped, headers).await;
            let hit = server.get(&path, headers).await;
            assert_eq!(routed.status(), hit.status(), "{path} {headers:?}");
            // Request ids differ unless the client sent one.
            let sent_id = headers.iter().any(|(k, _)| *k == "x-request-id");
            let comparable = |r: &reqwest::Response| {
                let mut list: Vec<(String, String)> = r
                    .headers()
                    .iter()
                    .filter(|(k, _)| *k != "date" && (*k != "x-request-id" || sent_id))
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
                    .collect();
                list.sort();
                list
            };
            assert_eq!(comparable(&routed), comparable(&hit), "{path} {headers:?}");
            assert!(hit.headers().contains_key("x-request-id"));
            let routed_body = routed.bytes().await.expect("body");
            assert_eq!(routed_body, hit.bytes().await.expect("body"), "{path}");
        }
    }
    // Both paths counted their requests as hits, under the tile route.
    let text = server.metrics().await;
    let this_layer = format!("layer=\"{layer}\"");
    assert_eq!(
        common::sample(
            &text,
            "tile_cache_requests_total",
            &[&this_layer, "result=\"hit\""]
        ),
        24.0
    );
    assert_eq!(
        common::sample(
            &text,
            "tiles_served_total",
            &[&this_layer, "zoom=\"7\"", "format=\"mvt\""]
        ),
        26.0
    );
    assert!(
        common::sample(
            &text,
            "http_requests_total",
            &["route=\"/tiles/{layer}/{z}/{x}/{y}\"", "status=\"304\""]
        ) >= 4.0
    );
    server.stop().await;
}
