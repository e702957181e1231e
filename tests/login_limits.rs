//! Login throttling that an outsider cannot turn into a lockout (device cookies), over a
//! real server and HTTP: the account's shared allowance for untrusted clients, a
//! signed-in browser's own allowance, forged cookies, and the password change of a
//! signed-in user while the account is under attack.

mod common;

use common::api::{API, email, signup};
use common::{TestServer, client};
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

const PASSWORD: &str = "a good long password";
const CONFIG: &str = "[accounts]\nlogin_max_failures = 3\nlogin_window_s = 600\n\
                      [http]\ntrusted_proxies = [\"127.0.0.1/32\"]\n";
const SIGNING_KEY: &str = "a signing key of the login tests, 32+ characters";

/// `POST /auth/login` from `ip` (through the trusted loopback proxy) with an optional
/// `Cookie` header; returns status, headers and the JSON body.
async fn login(
    server: &TestServer,
    ip: &str,
    cookie: Option<&str>,
    mail: &str,
    password: &str,
) -> (u16, HeaderMap, Value) {
    let mut req = client()
        .post(format!("{}{API}/auth/login", server.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": mail, "password": password}));
    if let Some(cookie) = cookie {
        req = req.header(COOKIE, cookie);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// The `planscape_device` cookie a response sets, as `name=value` for a `Cookie` header,
/// and the whole `Set-Cookie` line.
fn device_cookie(headers: &HeaderMap) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("planscape_device="))
        .map(|v| {
            let pair = v.split(';').next().unwrap_or("").to_owned();
            (pair, v.to_owned())
        })
}

async fn change_password(server: &TestServer, token: &str, current: &str, new: &str) -> u16 {
    client()
        .post(format!("{}{API}/auth/password", server.base))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_lock_a_signed_in_browser_out() {
    let server =
        TestServer::start_with_env(CONFIG, &[("PLANSCAPE_SIGNING_KEY", SIGNING_KEY)]).await;
    let (_, _, victim) = signup(&server, "victim").await;
    let (_, _, attacker) = signup(&server, "attacker").await;

    // The victim's browser signs in: it gets a signed, long-lived, HttpOnly device cookie
    // sent back to the auth endpoints only.
    let (status, headers, _) = login(&server, "198.51.100.1", None, &victim, PASSWORD).await;
    assert_eq!(status, 200);
    let (browser, line) = device_cookie(&headers).expect("device cookie set");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/planscape-backend/auth",
        "Max-Age=31536000",
    ] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    // The attacker's own device cookie (their account) is worth nothing for the victim's.
    let (_, headers, _) = login(&server, "203.0.113.66", None, &attacker, PASSWORD).await;
    let (attackers_cookie, _) = device_cookie(&headers).expect("attacker's cookie");

    // Wrong passwords for the victim's email from many addresses, with and without the
    // attacker's cookie: the account's allowance for untrusted clients runs out.
    for (i, cookie) in [None, Some(attackers_cookie.as_str()), None]
        .into_iter()
        .enumerate()
    {
        let ip = format!("203.0.113.{}", 10 + i);
        let (status, _, body) = login(&server, &ip, cookie, &victim, "wrong password!").await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, headers, body) = login(&server, "203.0.113.20", None, &victim, PASSWORD).await;
    assert_eq!(
        status, 429,
        "a client without a device cookie is refused: {body}"
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(body["error"]["code"], "rate_limited");
    // The victim on a new browser (no cookie) is refused like the attacker.
    let (status, _, _) = login(&server, "198.51.100.2", None, &victim, PASSWORD).await;
    assert_eq!(status, 429);

    // The victim's browser, presenting its device cookie, still signs in.
    let (status, headers, body) =
        login(&server, "198.51.100.1", Some(&browser), &victim, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let session = body["token"].as_str().expect("token").to_owned();
    assert!(
        device_cookie(&headers).is_none(),
        "a known device keeps its cookie"
    );
    // Among other cookies too.
    let cookies = format!("theme=dark; {browser}; other=1");
    let (status, _, _) = login(&server, "198.51.100.1", Some(&cookies), &victim, PASSWORD).await;
    assert_eq!(status, 200);

    // A tampered or forged device cookie counts as none.
    let (name_nonce, mac) = browser.rsplit_once('.').expect("NONCE.MAC");
    let flipped = if mac.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{name_nonce}.{flipped}{}", &mac[1..]);
    let forged = format!("planscape_device=AAAAAAAAAAAAAAAAAAAAAA.{}", "A".repeat(43));
    for cookie in [tampered, forged, attackers_cookie.clone()] {
        let (status, _, _) = login(&server, "198.51.100.1", Some(&cookie), &victim, PASSWORD).await;
        assert_eq!(status, 429, "{cookie}");
    }

    // The signed-in victim changes the password while the account is under attack (the
    // attacker's failed logins do not spend the change's allowance).
    let new_password = "a new good long password";
    assert_eq!(
        change_password(&server, &session, PASSWORD, new_password).await,
        200
    );

    // A device that fails too often is locked itself, on its own allowance, even for
    // the right password...
    for _ in 0..3 {
        let (status, _, _) = login(
            &server,
            "198.51.100.1",
            Some(&browser),
            &victim,
            "wrong password!",
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, headers, body) = login(
        &server,
        "198.51.100.1",
        Some(&browser),
        &victim,
        new_password,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("browser")),
        "{body}"
    );
    // ...which spends nothing of anyone else's: another account's untrusted login from
    // the same address still works.
    let (_, _, bystander) = signup(&server, "bystander").await;
    let (status, _, _) = login(&server, "198.51.100.1", None, &bystander, PASSWORD).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_change_is_limited_per_session_not_by_logins() {
    // Without a signing key device cookies use a key of the process: they work the same.
    let server = TestServer::start(CONFIG).await;
    let (_, _, mail) = signup(&server, "changer").await;
    let (status, headers, body) = login(&server, "198.51.100.7", None, &mail, PASSWORD).await;
    assert_eq!(status, 200);
    let (browser, _) = device_cookie(&headers).expect("device cookie");
    let first = body["token"].as_str().expect("token").to_owned();
    let (_, _, body) = login(&server, "198.51.100.7", Some(&browser), &mail, PASSWORD).await;
    let second = body["token"].as_str().expect("token").to_owned();

    // Outsiders lock the account for untrusted clients.
    for i in 0..4 {
        let ip = format!("203.0.113.{}", 30 + i);
        login(&server, &ip, None, &mail, "wrong password!").await;
    }
    let (status, _, _) = login(&server, "203.0.113.40", None, &mail, PASSWORD).await;
    assert_eq!(status, 429);

    // Wrong current passwords spend the session's own allowance (a stolen session
    // cannot guess on): 422 three times, then 429 even for the right one.
    let new_password = "another good long password";
    for _ in 0..3 {
        assert_eq!(
            change_password(&server, &first, "wrong password!", new_password).await,
            422
        );
    }
    assert_eq!(
        change_password(&server, &first, PASSWORD, new_password).await,
        429
    );
    // The owner's other session is not affected by either.
    assert_eq!(
        change_password(&server, &second, PASSWORD, new_password).await,
        200
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_are_limited_per_address_and_say_so() {
    let server = TestServer::start(CONFIG).await;
    let signup_from = |ip: &'static str| {
        client()
            .post(format!("{}{API}/auth/signup", server.base))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email("office"), "password": PASSWORD, "name": "staff"}))
            .send()
    };
    for _ in 0..3 {
        let resp = signup_from("192.0.2.5").await.expect("request");
        assert_eq!(resp.status(), 201);
        assert!(
            device_cookie(resp.headers()).is_some(),
            "a sign-up signs the browser in"
        );
    }
    let resp = signup_from("192.0.2.5").await.expect("request");
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("sign-ups") && !message.contains("login"),
        "{message}"
    );
    // Another address (as the trusted proxy forwards it) still signs up.
    assert_eq!(
        signup_from("192.0.2.6").await.expect("request").status(),
        201
    );
    server.stop().await;
}
