//! The deployment's nginx in front of a real server: the project's own nginx config
//! (`docker/nginx/`), run by real nginx (apt) as an unprivileged user on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use common::{Scratch, TestServer, unique};

/// A running nginx, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Stop nginx itself (its master's pid file): killing `runuser` would orphan it.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("nginx.pid")) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Renders the deployment template as the nginx image's envsubst does, inside a minimal
/// main config, and starts nginx (as `www-data` when the tests run as root).
fn start_nginx(upstream: &str) -> Nginx {
    start_nginx_trusting(upstream, false)
}

/// As [`start_nginx`]; with `loopback_is_balancer`, loopback counts as the load
/// balancer's network (the template trusts the private ranges, where the ALB is).
fn start_nginx_trusting(upstream: &str, loopback_is_balancer: bool) -> Nginx {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(unique("nginx"));
    let web = dir.join("web");
    std::fs::create_dir_all(&web).expect("dirs");
    // The web root: the app itself is tested end to end by scripts/e2e-stack.sh.
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Planscape server</title>",
    )
    .expect("web root");
    // The API reference as web/build.mjs writes it.
    std::fs::create_dir_all(web.join("docs")).expect("docs dir");
    std::fs::write(
        web.join("docs/index.html"),
        "<!doctype html><title>Planscape API reference</title>\
         <script src=\"/planscape-backend/docs/docs-AB12CD34.js\"></script>",
    )
    .expect("docs index");
    std::fs::write(web.join("docs/docs-AB12CD34.js"), "SwaggerUIBundle();").expect("docs js");
    let port = free_port();
    let proxy = dir.join("planscape-proxy.conf");
    std::fs::copy(root.join("docker/nginx/planscape-proxy.conf"), &proxy).expect("copy proxy conf");
    let site = std::fs::read_to_string(root.join("docker/nginx/planscape.conf.template"))
        .expect("template")
        .replace("${NGINX_PORT}", &format!("127.0.0.1:{port}"))
        .replace("${PLANSCAPE_UPSTREAM}", upstream)
        .replace("${WEB_ROOT}", &web.to_string_lossy())
        .replace("/etc/nginx/planscape-proxy.conf", &proxy.to_string_lossy());
    let site = if loopback_is_balancer {
        assert!(
            site.contains("    10.0.0.0/8 1;\n"),
            "the balancer's ranges"
        );
        site.replace(
            "    10.0.0.0/8 1;\n",
            "    10.0.0.0/8 1;\n    127.0.0.0/8 1;\n",
        )
    } else {
        site
    };
    assert!(
        !site.contains("${"),
        "every template variable is substituted"
    );
    let d = dir.display();
    let conf = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\ndaemon off;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  include /etc/nginx/mime.types;\n\
         client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("write conf");
    let running_as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let mut cmd = if running_as_root {
        // The unprivileged user must own its working folder.
        let status = Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success());
        let mut c = Command::new("runuser");
        c.args(["-u", "www-data", "--", "/usr/sbin/nginx"]);
        c
    } else {
        Command::new("/usr/sbin/nginx")
    };
    let child = cmd
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx starts (apt install nginx)");
    let nginx = Nginx { child, port, dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start: {log}");
}

/// The users running nginx's master (from its pid file in `dir`) and its workers.
fn nginx_users(dir: &Path) -> Vec<String> {
    let pid = std::fs::read_to_string(dir.join("nginx.pid"))
        .expect("pid file")
        .trim()
        .to_owned();
    let ps = |args: &[&str]| {
        let out = Command::new("ps").args(args).output().expect("ps");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut users = ps(&["-o", "user=", "-p", &pid]);
    users.extend(ps(&["-o", "user=", "--ppid", &pid]));
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_forwards_api_and_tiles_with_the_public_prefix() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let server = TestServer::start(&scratch.counties_layer()).await;
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let nginx = start_nginx(&upstream);
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let client = common::client();

    // Not root: master and worker run as the unprivileged user.
    let users = nginx_users(&nginx.dir);
    assert!(users.len() >= 2, "master and worker found: {users:?}");
    assert!(users.iter().all(|u| u != "root"), "nginx runs as {users:?}");

    // Tiles pass through with their headers; gzip stays the server's.
    let tile = client
        .get(format!("{base}/tiles/counties/7/20/49.mvt"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("tile via nginx");
    assert_eq!(tile.status(), 200);
    assert_eq!(
        tile.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert_eq!(tile.headers()["content-encoding"], "gzip");
    assert_eq!(tile.headers()["vary"], "Accept-Encoding");
    assert!(tile.headers().contains_key("etag"));
    assert!(
        tile.headers().contains_key("x-request-id"),
        "nginx's request id reaches the server and returns"
    );
    let direct = server
        .get(
            "/tiles/counties/7/20/49.mvt",
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(direct.headers()["etag"], tile.headers()["etag"]);
    assert_eq!(
        tile.bytes().await.expect("body"),
        direct.bytes().await.expect("body")
    );

    // TileJSON fetched through nginx points back through nginx, with the prefix used.
    let tj: serde_json::Value = client
        .get(format!("{base}/planscape-backend/tiles/counties"))
        .send()
        .await
        .expect("tilejson")
        .json()
        .await
        .expect("json");
    assert_eq!(
        tj["tiles"][0],
        format!("{base}/planscape-backend/tiles/counties/{{z}}/{{x}}/{{y}}.mvt")
    );
    let tj: serde_json::Value = client
        .get(format!("{base}/tiles/counties"))
        .send()
        .await
        .expect("tilejson")
        .json()
        .await
        .expect("json");
    assert_eq!(
        tj["tiles"][0],
        format!("{base}/tiles/counties/{{z}}/{{x}}/{{y}}.mvt")
    );
    let prefixed = client
        .get(format!(
            "{base}/planscape-backend/tiles/counties/7/20/49.mvt"
        ))
        .send()
        .await
        .expect("prefixed tile");
    assert_eq!(prefixed.status(), 200);

    // The API prefix reaches the server unchanged (its JSON 404 comes back).
    let api = client
        .get(format!("{base}/planscape-backend/nothing"))
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), 404);
    let body: serde_json::Value = api.json().await.expect("JSON error from the server");
    assert_eq!(body["error"]["code"], "not_found");

    // The static app is nginx's own.
    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("Planscape server"), "{html}");
    // So is the API reference, under the API's prefix, before the API's forwarding.
    for path in ["/planscape-backend/docs", "/planscape-backend/docs/"] {
        let docs = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("docs");
        assert_eq!(docs.status(), 200, "{path}");
        assert_eq!(docs.headers()["cache-control"], "no-cache", "{path}");
        assert!(docs.text().await.expect("html").contains("API reference"));
    }
    let script = client
        .get(format!("{base}/planscape-backend/docs/docs-AB12CD34.js"))
        .send()
        .await
        .expect("docs script");
    assert_eq!(script.status(), 200);
    assert_eq!(
        script.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );

    drop(nginx);
    server.stop().await;
    scratch.cleanup().await;
}

/// `X-Forwarded-Proto` of the load balancer (TLS ends there) reaches the server, so
/// TileJSON names https URLs; from a peer that is not the balancer the header is not
/// believed and nginx's own scheme is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_forwards_the_balancers_scheme_only_from_the_balancer() {
    let scratch = Scratch::new().await;
    scratch.load_counties("counties").await;
    let server = TestServer::start(&scratch.counties_layer()).await;
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let client = common::client();
    let tile_url = |nginx: &Nginx, headers: &[(&'static str, &'static str)]| {
        let mut req = client.get(format!("http://127.0.0.1:{}/tiles/counties", nginx.port));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move {
            let tj: serde_json::Value = req
                .send()
                .await
                .expect("tilejson")
                .json()
                .await
                .expect("json");
            tj["tiles"][0].as_str().expect("tile URL").to_owned()
        }
    };

    let behind_balancer = start_nginx_trusting(&upstream, true);
    let https = tile_url(&behind_balancer, &[("x-forwarded-proto", "https")]).await;
    assert!(https.starts_with("https://"), "{https}");
    let plain = tile_url(&behind_balancer, &[]).await;
    assert!(plain.starts_with("http://"), "{plain}");
    let junk = tile_url(&behind_balancer, &[("x-forwarded-proto", "gopher")]).await;
    assert!(junk.starts_with("http://"), "{junk}");

    let direct = start_nginx(&upstream);
    let spoofed = tile_url(&direct, &[("x-forwarded-proto", "https")]).await;
    assert!(spoofed.starts_with("http://"), "{spoofed}");
    drop(behind_balancer);
    drop(direct);
    server.stop().await;
    scratch.cleanup().await;
}
