//! The REST API under `/planscape-backend`: requests with an optional bearer token and
//! JSON body, and signing a fresh user up.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{TestServer, client, unique};

/// Where the REST API lives.
pub const API: &str = "/planscape-backend";

/// A request to `path` (from the server's root, e.g. a plan's tile), with a bearer
/// token and a JSON body when given.
pub async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut req = client().request(method, format!("{}{path}", server.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.expect("request")
}

/// A request to the REST API (`path` under [`API`]); returns status, headers and the
/// JSON body (Null when there is none).
pub async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let resp = send(
        server,
        method,
        &format!("{API}{path}"),
        token,
        body.as_ref(),
    )
    .await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, value)
}

/// An email address no other test uses.
pub fn email(name: &str) -> String {
    format!("{}@example.org", unique(name).to_lowercase())
}

/// Signs a new user up (asserting 201); returns (token, user id, email).
pub async fn signup(server: &TestServer, name: &str) -> (String, i64, String) {
    let mail = email(name);
    let (status, _, body) = call(
        server,
        Method::POST,
        "/auth/signup",
        None,
        Some(json!({"email": mail, "password": "a good long password", "name": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["token"].as_str().expect("token").to_owned(),
        body["user"]["id"].as_i64().expect("id"),
        mail,
    )
}

/// Invites `email` to plan `plan_id` with `role` as `owner` (asserting 201); returns the
/// invitation as sent.
pub async fn invite(
    server: &TestServer,
    owner: &str,
    plan_id: i64,
    email: &str,
    role: &str,
) -> Value {
    let (status, _, body) = call(
        server,
        Method::POST,
        &format!("/plans/{plan_id}/members"),
        Some(owner),
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// The id of the pending invitation to plan `plan_id` that the user of `token` sees.
pub async fn invitation_to(server: &TestServer, token: &str, plan_id: i64) -> Option<i64> {
    let (status, _, list) = call(server, Method::GET, "/invitations", Some(token), None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .expect("list")
        .iter()
        .find(|i| i["plan_id"] == plan_id)
        .and_then(|i| i["id"].as_i64())
}

/// Shares a plan the way people do: `owner` invites `email` with `role`, and the invitee
/// (`invitee`, the session of the account with that email) accepts (asserting 200).
pub async fn share(
    server: &TestServer,
    owner: &str,
    plan_id: i64,
    email: &str,
    role: &str,
    invitee: &str,
) {
    invite(server, owner, plan_id, email, role).await;
    let id = invitation_to(server, invitee, plan_id)
        .await
        .expect("the invitee sees the invitation");
    let (status, _, body) = call(
        server,
        Method::POST,
        &format!("/invitations/{id}/accept"),
        Some(invitee),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
