//! Password reset by email against a real SMTP server on loopback (Python's `aiosmtpd`,
//! Debian's `python3-aiosmtpd`, writing every message it receives into a maildir that
//! the tests read): the mail and its link, single use, expiry, sessions ended, the
//! password policy, the same answer for unknown emails (and no mail), the limits, and a
//! server without SMTP. Real PostGIS, real HTTP.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{API, call, email, signup};
use common::{TestServer, client, unique};
use reqwest::Method;
use serde_json::{Value, json};

/// Where the links in mail point.
const APP_URL: &str = "https://planscape.example.org/app";

/// An `aiosmtpd` server on a free loopback port, storing messages in a maildir;
/// killed on drop.
struct SmtpSink {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl SmtpSink {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(unique("maildir"));
        // Debian's python3-aiosmtpd (scripts/setup-debian.sh) lives in the system Python.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd starts (apt install python3-aiosmtpd: scripts/setup-debian.sh)");
        let mut sink = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                sink.child.try_wait().expect("child status").is_none(),
                "aiosmtpd exited"
            );
            assert!(Instant::now() < deadline, "aiosmtpd never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// The environment that points a server at this sink.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PLANSCAPE_SMTP_HOST", "127.0.0.1".to_owned()),
            ("PLANSCAPE_SMTP_PORT", self.port.to_string()),
            ("PLANSCAPE_SMTP_TLS", "none".to_owned()),
            (
                "PLANSCAPE_MAIL_FROM",
                "Planscape <no-reply@planscape.example.org>".to_owned(),
            ),
            ("PLANSCAPE_APP_URL", APP_URL.to_owned()),
        ]
    }

    /// The messages received so far, oldest first.
    fn mails(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.filter_map(Result::ok).collect())
            .unwrap_or_default();
        files.sort_by_key(|f| f.metadata().and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|f| std::fs::read_to_string(f.path()).expect("mail file"))
            .collect()
    }

    /// Waits until `n` messages have arrived; returns them.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < deadline, "{n} mails never arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A header's value in a raw message.
fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    mail.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

/// The decoded text body of a raw single-part message (7bit or quoted-printable).
fn body(mail: &str) -> String {
    let mail = mail.replace("\r\n", "\n");
    let (_, body) = mail.split_once("\n\n").expect("headers and body");
    let qp = header(&mail, "content-transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("quoted-printable"));
    if !qp {
        return body.to_owned();
    }
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8 body")
}

/// The reset token of a mail's link (which must point at the web app).
fn token_of(mail: &str) -> String {
    let text = body(mail);
    let prefix = format!("{APP_URL}/#reset=");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link to {prefix} in {text}"));
    text[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn start_server(sink: &SmtpSink, toml: &str) -> TestServer {
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestServer::start_with_env(toml, &env).await
}

async fn ask(server: &TestServer, mail: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    call(
        server,
        Method::POST,
        "/auth/reset/request",
        None,
        Some(json!({ "email": mail })),
    )
    .await
}

async fn reset(server: &TestServer, token: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = call(
        server,
        Method::POST,
        "/auth/reset",
        None,
        Some(json!({ "token": token, "new_password": password })),
    )
    .await;
    (status, body)
}

async fn login(server: &TestServer, mail: &str, password: &str) -> u16 {
    call(
        server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({ "email": mail, "password": password })),
    )
    .await
    .0
}

async fn me(server: &TestServer, token: &str) -> u16 {
    call(server, Method::GET, "/auth/me", Some(token), None)
        .await
        .0
}

/// `password_reset_requests_total{outcome}` from `/metrics` (0 before the first).
async fn outcomes(server: &TestServer, outcome: &str) -> u64 {
    let text = server.metrics().await;
    let series = format!("password_reset_requests_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.trim().parse::<f64>().expect("number") as u64)
        .unwrap_or(0)
}

/// Waits until the count of `outcome` exceeds `before` (the mail task has finished).
async fn wait_outcome(server: &TestServer, outcome: &str, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while outcomes(server, outcome).await <= before {
        assert!(Instant::now() < deadline, "no `{outcome}` outcome");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_link_resets_the_password_once_and_ends_every_session() {
    let sink = SmtpSink::start();
    let server = start_server(&sink, "").await;
    let (first_session, user_id, mail) = signup(&server, "forgetful").await;
    let second_session = {
        let (status, _, body) = call(
            &server,
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"email": mail, "password": "a good long password"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    };

    // The request is accepted; the mail arrives, from the configured sender, to the
    // account, with a link into the web app.
    let (status, _, answer) = ask(&server, &mail.to_uppercase()).await;
    assert_eq!(status, 202, "{answer}");
    let mails = sink.wait_for(1).await;
    let first = &mails[0];
    assert_eq!(header(first, "to"), Some(mail.as_str()), "{first}");
    assert!(
        header(first, "from").is_some_and(|f| f.contains("no-reply@planscape.example.org")),
        "{first}"
    );
    assert!(header(first, "subject").is_some_and(|s| s.contains("password")));
    let old_token = token_of(first);
    assert_eq!(old_token.len(), 43, "{old_token}");

    // Only a hash of the token is stored.
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("database");
    let stored: Vec<Vec<u8>> = db
        .query(
            "SELECT token_hash FROM planscape.password_resets WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], old_token.as_bytes());

    // A second request replaces the first link.
    let (status, _, _) = ask(&server, &mail).await;
    assert_eq!(status, 202);
    let mails = sink.wait_for(2).await;
    let token = token_of(&mails[1]);
    assert_ne!(token, old_token);
    let (status, body) = reset(&server, &old_token, "a brand new password").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "token");
    assert_eq!(body["error"]["code"], "invalid_reset_token");

    // A weak password is refused and leaves the token usable.
    let (status, body) = reset(&server, &token, "short").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "new_password");
    assert_eq!(
        me(&server, &first_session).await,
        200,
        "nothing changed yet"
    );

    // The reset: the password changes, every session ends, no new one starts.
    let (status, body) = reset(&server, &token, "a brand new password").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], mail);
    assert!(body.get("token").is_none(), "a reset does not sign in");
    assert_eq!(me(&server, &first_session).await, 401);
    assert_eq!(me(&server, &second_session).await, 401);
    assert_eq!(login(&server, &mail, "a good long password").await, 401);
    assert_eq!(login(&server, &mail, "a brand new password").await, 200);

    // The token works once.
    let (status, body) = reset(&server, &token, "yet another password").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_reset_token");
    assert_eq!(login(&server, &mail, "a brand new password").await, 200);

    // An expired token is refused (expiry moved into the past in the database).
    let (status, _, _) = ask(&server, &mail).await;
    assert_eq!(status, 202);
    let mails = sink.wait_for(3).await;
    let expired = token_of(&mails[2]);
    db.execute(
        "UPDATE planscape.password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        &[&user_id],
    )
    .await
    .expect("expire");
    let (status, body) = reset(&server, &expired, "yet another password").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "token");
    assert_eq!(login(&server, &mail, "a brand new password").await, 200);

    // Malformed tokens get the same error, never a 500.
    for bad in ["", "x", &"é".repeat(43), &format!("{token}x")] {
        let (status, body) = reset(&server, bad, "yet another password").await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_reset_token");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_emails_get_the_same_answer_and_no_mail_and_requests_are_limited() {
    let sink = SmtpSink::start();
    let server = start_server(
        &sink,
        // The test's requests come through a "proxy" on loopback naming the client.
        "[accounts]\nlogin_max_failures = 3\nlogin_window_s = 60\n\
         [http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let (_, _, known) = signup(&server, "known").await;

    // The same status, headers (but the date) and body, whether or not the account exists.
    let from = |ip: &'static str, mail: String| {
        client()
            .post(format!("{}{API}/auth/reset/request", server.base))
            .header("x-real-ip", ip)
            .json(&json!({ "email": mail }))
            .send()
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date" && *k != "x-request-id")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        headers.sort();
        (status, headers, r.text().await.expect("body"))
    };
    let no_account_before = outcomes(&server, "no_account").await;
    let for_known = answer(from("10.0.1.1", known.clone()).await.expect("send")).await;
    let for_unknown = answer(from("10.0.1.2", email("nobody")).await.expect("send")).await;
    assert_eq!(for_known.0, 202);
    assert_eq!(for_known, for_unknown);
    // The known account's mail arrives; the unknown email's task ends with no mail.
    sink.wait_for(1).await;
    wait_outcome(&server, "no_account", no_account_before).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "one mail only");
    assert_eq!(header(&mails[0], "to"), Some(known.as_str()));

    // Not an email address: 422, naming the field.
    let (status, _, body) = ask(&server, "not an address").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "email");

    // Per email: requests from many addresses stop at the limit, with Retry-After.
    let (_, _, target) = signup(&server, "target").await;
    for ip in ["10.0.2.1", "10.0.2.2", "10.0.2.3"] {
        assert_eq!(from(ip, target.clone()).await.expect("send").status(), 202);
    }
    let limited = from("10.0.2.4", target.clone()).await.expect("send");
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // ... and an unknown email is limited just the same.
    let ghost = email("ghost");
    for ip in ["10.0.3.1", "10.0.3.2", "10.0.3.3"] {
        assert_eq!(from(ip, ghost.clone()).await.expect("send").status(), 202);
    }
    assert_eq!(from("10.0.3.4", ghost).await.expect("send").status(), 429);

    // Per client address: one address asking for many emails.
    for _ in 0..3 {
        assert_eq!(
            from("10.0.4.1", email("many"))
                .await
                .expect("send")
                .status(),
            202
        );
    }
    let limited = from("10.0.4.1", email("many")).await.expect("send");
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // Wrong tokens from an address spend its allowance too.
    let guess = |ip: &'static str| {
        client()
            .post(format!("{}{API}/auth/reset", server.base))
            .header("x-real-ip", ip)
            .json(&json!({ "token": "A".repeat(43), "new_password": "a brand new password" }))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(guess("10.0.5.1").await.expect("send").status(), 422);
    }
    assert_eq!(guess("10.0.5.1").await.expect("send").status(), 429);
    assert_eq!(guess("10.0.5.2").await.expect("send").status(), 422);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_answer_is_the_same_and_no_token_is_made() {
    let server = TestServer::start("").await;
    let (_, user_id, known) = signup(&server, "unmailed").await;
    let before = outcomes(&server, "no_mailer").await;
    let (status, _, body) = ask(&server, &known).await;
    assert_eq!(status, 202, "{body}");
    let (status_unknown, _, body_unknown) = ask(&server, &email("nobody")).await;
    assert_eq!((status, &body), (status_unknown, &body_unknown));
    wait_outcome(&server, "no_mailer", before + 1).await;
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("database");
    let tokens: i64 = db
        .query_one(
            "SELECT count(*) FROM planscape.password_resets WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(tokens, 0);
    server.stop().await;
}

#[test]
fn mail_settings_are_checked_at_start_up() {
    let load = |env: &[(&str, &str)]| {
        planscape::config::Config::parse("", "test", |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    };
    let base = [
        ("PLANSCAPE_SMTP_HOST", "smtp.example.org"),
        ("PLANSCAPE_MAIL_FROM", "Planscape <no-reply@example.org>"),
        ("PLANSCAPE_APP_URL", "https://planscape.example.org"),
    ];
    let ok = load(&base).expect("valid");
    assert_eq!(ok.mail.port(), 587, "STARTTLS by default");
    let tls = load(&[base[0], base[1], base[2], ("PLANSCAPE_SMTP_TLS", "tls")]).expect("tls");
    assert_eq!(tls.mail.port(), 465);
    for (env, key) in [
        (vec![base[0], base[2]], "mail.from"),
        (
            vec![base[0], ("PLANSCAPE_MAIL_FROM", "not a mailbox"), base[2]],
            "mail.from",
        ),
        (vec![base[0], base[1]], "mail.app_url"),
        (
            vec![
                base[0],
                base[1],
                ("PLANSCAPE_APP_URL", "planscape.example.org"),
            ],
            "mail.app_url",
        ),
        (
            vec![
                base[0],
                base[1],
                base[2],
                ("PLANSCAPE_SMTP_TLS", "sometimes"),
            ],
            "smtp_tls",
        ),
        (
            vec![base[0], base[1], base[2], ("PLANSCAPE_SMTP_USER", "u")],
            "mail.smtp_user",
        ),
        (
            vec![base[0], base[1], base[2], ("PLANSCAPE_SMTP_PORT", "0")],
            "mail.smtp_port",
        ),
    ] {
        let err = load(&env).expect_err(key).to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
    // public_url stands in for app_url.
    assert!(
        load(&[
            base[0],
            base[1],
            ("PLANSCAPE_PUBLIC_URL", "https://p.example.org")
        ])
        .is_ok()
    );
    // The SMTP password is a secret: the environment only.
    let err = planscape::config::Config::parse("[mail]\nsmtp_password = \"x\"\n", "t", |_| None)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("PLANSCAPE_SMTP_PASSWORD"), "{err}");
}
