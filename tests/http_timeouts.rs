//! Connection timeouts over real TCP sockets: an unfinished request head, a stalled
//! body and an idle kept-alive connection end; normal requests (HTTP/1.1 kept alive,
//! HTTP/2) still work. The server runs with one- and two-second timeouts; every wait
//! here is bounded by a generous guard so a regression fails instead of hanging.

mod common;

use std::time::Duration;

use common::TestServer;
use common::api::API;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str =
    "[http]\nheader_read_timeout_s = 1\nbody_read_timeout_s = 1\nidle_timeout_s = 2\n";

/// Far longer than any configured timeout: only a server that never closes hits it.
const GUARD: Duration = Duration::from_secs(30);

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection; returns what it sent. Panics when the
/// guard runs out first (the connection was held open).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(GUARD, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "connection still open after {GUARD:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: (status, head, body).
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            while received.len() < end + 4 + length {
                let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
                    .await
                    .expect("body in time")
                    .expect("read");
                assert!(n > 0, "closed inside the body");
                received.extend_from_slice(&buf[..n]);
            }
            return (status, head, received[end + 4..end + 4 + length].to_vec());
        }
        let n = tokio::time::timeout(GUARD, stream.read(&mut buf))
            .await
            .expect("response in time")
            .expect("read");
        assert!(n > 0, "closed before a response");
        received.extend_from_slice(&buf[..n]);
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";

/// Sends `GET /health` on `stream` and reads the response: its status.
async fn ask_health(stream: &mut TcpStream) -> u16 {
    stream.write_all(HEALTH).await.expect("write");
    read_response(stream).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_requests_work_and_an_idle_connection_is_closed() {
    let server = TestServer::start(CONFIG).await;
    let mut stream = connect(&server).await;
    for _ in 0..3 {
        assert_eq!(ask_health(&mut stream).await, 200);
    }
    // Then nothing: the server closes the idle connection, sending nothing more.
    let rest = read_until_closed(&mut stream).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    server.stop().await;
}

/// The server's timer is set no further ahead than the shorter timeout (the head's, one
/// second) and set again when it fires early: requests spaced wider than that, and a
/// head sent in two parts after a pause, keep the connection; once quiet, it is closed
/// after the idle timeout (two seconds), not at the first firing of the timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spaced_wider_than_the_head_timeout_keep_the_connection() {
    let server = TestServer::start(CONFIG).await;
    let mut stream = connect(&server).await;
    for _ in 0..3 {
        assert_eq!(ask_health(&mut stream).await, 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // A head in two parts, 600 ms apart: within the head's second from its first byte.
    let (first, second) = HEALTH.split_at(10);
    stream.write_all(first).await.expect("write");
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream.write_all(second).await.expect("write");
    assert_eq!(read_response(&mut stream).await.0, 200);
    let quiet = std::time::Instant::now();
    assert!(read_until_closed(&mut stream).await.is_empty());
    let held = quiet.elapsed();
    assert!(
        held >= Duration::from_millis(1900),
        "closed {held:?} after the last response, before the idle timeout"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_request_head_is_closed() {
    let server = TestServer::start(CONFIG).await;
    // A connection that never sends anything.
    let mut silent = connect(&server).await;
    assert!(read_until_closed(&mut silent).await.is_empty());
    // A head that trickles in a byte at a time and never ends: the bytes do not extend
    // the deadline.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        .await
        .expect("write");
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b"X").await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(GUARD, trickle)
        .await
        .expect("the server closed the connection");
    let rest = read_until_closed(&mut slow).await;
    assert!(
        !String::from_utf8_lossy(&rest).contains(" 200 "),
        "no response to an unfinished head"
    );
    // The server keeps serving.
    let mut fresh = connect(&server).await;
    assert_eq!(ask_health(&mut fresh).await, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_the_connection_ends() {
    let server = TestServer::start(CONFIG).await;
    let mut stream = connect(&server).await;
    // 9 of 100 announced bytes, then nothing.
    let head = format!(
        "POST {API}/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"email\":"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!(status, 408, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let body: Value = serde_json::from_slice(&body).expect("JSON error");
    assert_eq!(body["error"]["code"], "body_timeout");
    assert!(read_until_closed(&mut stream).await.is_empty());

    // A complete body is read as always (a wrong login: 401).
    let mut stream = connect(&server).await;
    let json = br#"{"email":"nobody@example.org","password":"not the password"}"#;
    let head = format!(
        "POST {API}/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        json.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(json).await.expect("write");
    assert_eq!(read_response(&mut stream).await.0, 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_still_works() {
    let server = TestServer::start(CONFIG).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    for _ in 0..2 {
        let resp = client
            .get(format!("{}/health", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
    }
    server.stop().await;
}
