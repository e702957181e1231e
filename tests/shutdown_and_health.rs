//! The real `planscape serve` process: SIGTERM stops accepting, lets requests under way
//! finish for at most `shutdown_grace_s` and exits 0 within grace + 1 s; and a database
//! that is away at start keeps the process alive and answering (503 `starting`) until
//! it comes, then the server serves without a restart.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::cli::{ConfigFile, planscape_config};
use common::{client, database_url, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Child;

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    socket.local_addr().expect("addr").port()
}

/// `planscape serve` on `port` with the given environment, its log in `log`.
fn spawn_server(config: &ConfigFile, port: u16, env: &[(&str, &str)], log: &PathBuf) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut cmd = planscape_config(config, &["serve"]);
    cmd.env("PLANSCAPE_LISTEN", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(file);
    tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn planscape serve")
}

/// GETs `path` until it answers `status` (the process must stay alive meanwhile).
async fn wait_for(child: &mut Child, base: &str, path: &str, status: u16) {
    loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            panic!("the server exited ({exit}) before {path} answered {status}");
        }
        if let Ok(r) = client().get(format!("{base}{path}")).send().await
            && r.status() == status
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sigterm(child: &Child) {
    let pid = child.id().expect("running") as libc::pid_t;
    // SAFETY: kill(2) with a pid this test spawned and still holds.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM sent");
}

/// Starts `POST /planscape-backend/auth/login` with a body of `length` bytes, waits
/// until the handler reads the body (`Expect: 100-continue` is answered when it does, so
/// the request is under way in the server) and sends `first` of the bytes.
async fn start_upload(port: u16, length: usize, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST /planscape-backend/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = stream.read(&mut byte).await.expect("read 100 Continue");
        assert_eq!(n, 1, "connection closed before 100 Continue");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(first).await.expect("first bytes");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_within_the_grace_then_exits_zero() {
    sigterm_case("0").await;
}

/// The same with connections served by two I/O threads of their own (`[http]
/// io_threads`): they stop accepting together, and the grace holds for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_io_threads_finishes_requests_within_the_grace_then_exits_zero() {
    sigterm_case("2").await;
}

async fn sigterm_case(io_threads: &str) {
    const GRACE_S: u64 = 2;
    let config = ConfigFile::new("");
    let log = std::env::temp_dir().join(format!("{}.log", unique("shutdown")));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_server(
        &config,
        port,
        &[
            ("PLANSCAPE_SHUTDOWN_GRACE_S", &GRACE_S.to_string()),
            ("PLANSCAPE_IO_THREADS", io_threads),
        ],
        &log,
    );
    wait_for(&mut child, &base, "/ready", 200).await;

    // Two uploads under way: one that ends within the grace, one slower than it.
    let body = br#"{"email": "nobody@example.org", "password": "not the password"}"#;
    let mut quick = start_upload(port, body.len(), &body[..10]).await;
    let slow_length = 100_000;
    let mut slow = start_upload(port, slow_length, b"{").await;

    sigterm(&child);
    let signalled = tokio::time::Instant::now();
    let slow_sender = tokio::spawn(async move {
        // One byte every 100 ms: 100 000 bytes would take hours.
        for _ in 1..slow_length {
            if slow.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // New connections are refused once the server stopped accepting. A connect that races
    // the listener's close is reset instead of refused (the kernel had queued its SYN on
    // the listening socket): that, too, is a connection the server did not take.
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                    ),
                    "{e}"
                );
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }

    // The quick request, under way at the signal, is finished and answered.
    quick.write_all(&body[10..]).await.expect("rest of body");
    let mut answer = Vec::new();
    quick
        .read_to_end(&mut answer)
        .await
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "a request under way at SIGTERM is answered: {answer}"
    );

    // The slow one outlasts the grace: the process exits anyway, within grace + 1 s, with 0.
    let exit = tokio::time::timeout_at(signalled + Duration::from_secs(GRACE_S + 1), child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no exit within grace + 1 s; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
        .expect("wait");
    assert_eq!(
        exit.code(),
        Some(0),
        "log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    slow_sender.abort();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("shutdown grace over"),
        "the log says requests were dropped: {text}"
    );
    let _ = std::fs::remove_file(&log);
}

/// `DATABASE_URL` of the test database with its host and port replaced by `addr`.
fn url_via(addr: &str) -> String {
    let url = database_url();
    let scheme_end = url.find("://").expect("URL scheme") + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    format!(
        "{}{}{addr}{}",
        &url[..scheme_end],
        &authority[..host_start],
        &rest[authority_end..]
    )
}

/// The test database's `host:port`.
fn database_addr() -> String {
    let config: tokio_postgres::Config = database_url().parse().expect("DATABASE_URL");
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => panic!("the test database must be on TCP"),
    };
    format!(
        "{host}:{}",
        config.get_ports().first().copied().unwrap_or(5432)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_away_at_start_keeps_the_process_alive_until_it_comes() {
    let config = ConfigFile::new("");
    let log = std::env::temp_dir().join(format!("{}.log", unique("dbwait")));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The database is reached through a forwarder on a port where nothing listens yet.
    let proxy_port = free_port();
    let mut child = spawn_server(
        &config,
        port,
        &[("DATABASE_URL", &url_via(&format!("127.0.0.1:{proxy_port}")))],
        &log,
    );

    // Alive (it answers) but not serving yet: /health and /ready say `starting`, every
    // other request is a JSON 503.
    wait_for(&mut child, &base, "/health", 503).await;
    for path in ["/health", "/ready"] {
        let answer = client()
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 503);
        let body: serde_json::Value = answer.json().await.expect("JSON");
        assert_eq!(body["status"], "starting", "{path}");
    }
    let other = client()
        .get(format!("{base}/tiles"))
        .send()
        .await
        .expect("tiles");
    assert_eq!(other.status(), 503);
    assert!(other.headers().contains_key("retry-after"));
    let body: serde_json::Value = other.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "starting");

    // Several attempts failed, and the process is still there.
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches("database not reachable yet").count() >= 3 {
            break;
        }
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the server exited while waiting: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(child.try_wait().expect("try_wait").is_none());

    // The database arrives: the same process becomes ready and serves the API.
    let forwarder = TcpListener::bind(("127.0.0.1", proxy_port))
        .await
        .expect("bind the forwarder");
    let target = database_addr();
    let proxy = tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = forwarder.accept().await else {
                return;
            };
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    wait_for(&mut child, &base, "/ready", 200).await;
    wait_for(&mut child, &base, "/health", 200).await;
    let tiles = client()
        .get(format!("{base}/tiles"))
        .send()
        .await
        .expect("tiles");
    assert_eq!(tiles.status(), 200);

    sigterm(&child);
    let exit = child.wait().await.expect("wait");
    assert_eq!(exit.code(), Some(0));
    proxy.abort();
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_the_database_exits_zero() {
    let config = ConfigFile::new("");
    let log = std::env::temp_dir().join(format!("{}.log", unique("dbwait-term")));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn_server(
        &config,
        port,
        &[(
            "DATABASE_URL",
            &url_via(&format!("127.0.0.1:{}", free_port())),
        )],
        &log,
    );
    wait_for(&mut child, &base, "/health", 503).await;
    sigterm(&child);
    let exit = child.wait().await.expect("wait");
    assert_eq!(
        exit.code(),
        Some(0),
        "log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let _ = std::fs::remove_file(&log);
}
