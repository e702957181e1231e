//! Operations: Prometheus metrics move with traffic; SIGTERM lets in-flight requests
//! finish while refusing new connections, then exits 0.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cli::{ConfigFile, planscape_config};
use common::{Scratch, TestServer, sample, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let layer = unique("metered").replace('_', "-");
    let config = format!(
        "[layers.{layer}]\ntype = \"vector\"\ntable = \"{}.counties\"\nproperties = [\"name\"]\n",
        scratch.schema
    );
    let server = TestServer::start(&config).await;
    for _ in 0..3 {
        assert_eq!(
            server
                .get(&format!("/tiles/{layer}/7/20/49.mvt"), &[])
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        server
            .get(&format!("/tiles/{layer}/7/20/49.gif"), &[])
            .await
            .status(),
        400
    );
    // A request id sent by the client comes back; one is made (16 hex digits) otherwise.
    let echoed = server
        .get(
            &format!("/tiles/{layer}/7/20/49.mvt"),
            &[("x-request-id", "client-id-42")],
        )
        .await;
    assert_eq!(echoed.headers()["x-request-id"], "client-id-42");
    let made = server
        .get(&format!("/tiles/{layer}/7/20/49.mvt"), &[])
        .await;
    let made_id = made.headers()["x-request-id"].to_str().unwrap_or("");
    assert!(
        made_id.len() == 16 && made_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{made_id}"
    );
    // Methods outside the usual ones share the label `other`: clients cannot make series.
    let odd = common::client()
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").expect("method"),
            format!("{}/tiles/{layer}/7/20/49.mvt", server.base),
        )
        .send()
        .await
        .expect("PROPFIND");
    assert_eq!(odd.status(), 405);
    let response = server.get("/metrics", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("text");
    // Every sample line is `name{labels} value` with a number.
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
        }
    }
    let tile_route = "route=\"/tiles/{layer}/{z}/{x}/{y}\"";
    assert!(
        sample(
            &text,
            "http_requests_total",
            &[tile_route, "status=\"200\""]
        ) >= 3.0
    );
    assert!(
        sample(
            &text,
            "http_requests_total",
            &[tile_route, "status=\"400\""]
        ) >= 1.0
    );
    let this_layer = format!("layer=\"{layer}\"");
    assert_eq!(
        sample(
            &text,
            "tile_cache_requests_total",
            &[&this_layer, "result=\"miss\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "tile_cache_requests_total",
            &[&this_layer, "result=\"hit\""]
        ),
        4.0
    );
    assert_eq!(
        sample(
            &text,
            "tiles_served_total",
            &[&this_layer, "zoom=\"7\"", "format=\"mvt\""]
        ),
        5.0
    );
    assert!(
        sample(
            &text,
            "http_requests_total",
            &["method=\"other\"", "status=\"405\""]
        ) >= 1.0
    );
    // GDAL work runs on a fixed set of threads, two per core by default; the queue
    // before them is shown too (idle here).
    let two_per_core = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    assert_eq!(sample(&text, "raster_threads", &[]), two_per_core as f64);
    assert!(
        text.lines().any(|l| l.starts_with("raster_queue_depth ")),
        "no raster_queue_depth gauge"
    );
    assert!(
        !text.contains("PROPFIND"),
        "a client's method became a label"
    );
    assert!(sample(&text, "tile_render_seconds_count", &[&this_layer]) >= 1.0);
    assert!(
        sample(
            &text,
            "http_request_duration_seconds_bucket",
            &[tile_route, "le=\"+Inf\""]
        ) >= 4.0
    );
    assert!(sample(&text, "tile_cache_bytes", &[]) > 0.0);
    assert!(sample(&text, "db_pool_max_connections", &[]) >= 1.0);
    server.stop().await;
    scratch.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_refuses_new_ones() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let s = &scratch.schema;
    // Every row takes 25 ms: a tile with the whole state takes over a second.
    scratch.create_slow_view("slow", 0.025).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = ConfigFile::new(&format!(
        "listen = \"127.0.0.1:{port}\"\nshutdown_grace_s = 20\n[cache]\nsize_mb = 0\n\
         [layers.slow]\ntype = \"vector\"\ntable = \"{s}.slow\"\nproperties = [\"name\", \"slow\"]\n"
    ));
    let mut child = planscape_config(&config, &["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Ready, not only alive: /health answers while the server is still starting.
    while !common::client()
        .get(format!("{base}/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let slow = tokio::spawn({
        let url = format!("{base}/tiles/slow/4/2/6.mvt");
        async move {
            let started = Instant::now();
            let response = common::client()
                .get(url)
                .send()
                .await
                .expect("in-flight request answered");
            (
                response.status(),
                response.bytes().await.map(|b| b.len()).unwrap_or(0),
                started.elapsed(),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "new connections are refused once shutting down"
    );
    let (code, bytes, took) = slow.await.expect("request task");
    assert_eq!(code, 200, "the in-flight request completed");
    assert!(bytes > 0);
    assert!(
        took > Duration::from_millis(600),
        "the request really was in flight ({took:?})"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "exit status {exit:?}");
    scratch.cleanup().await;
}
