//! The OpenAPI document's promises held against the server's answers: every error has
//! the one documented error body, every operation documents the errors its kind may
//! answer (and the server answers those), and the schemas state what the server
//! refuses (lengths, patterns, enums) and no more. Real PostGIS, real HTTP.

mod common;

use common::api::{API, call, email, signup};
use common::{TestServer, client};
use reqwest::Method;
use serde_json::{Value, json};

async fn document(server: &TestServer) -> Value {
    let resp = server.get(&format!("{API}/openapi.json"), &[]).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

/// Each operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if method != "servers" {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn documented(op: &Value, status: u16) -> bool {
    op["responses"].get(status.to_string()).is_some()
}

/// An error body as documented: `{"error": {"code", "message", "field"?}}`, nothing else.
fn assert_error_body(body: &Value, what: &str) {
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: {body}"));
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{what}: {body}");
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: {body}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(
        error
            .keys()
            .all(|k| ["code", "message", "field"].contains(&k.as_str())),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_documented_with_the_error_body() {
    let server = TestServer::start("").await;
    let doc = document(&server).await;
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["ErrorResponse"]["required"], json!(["error"]));
    let detail = &schemas["ErrorDetail"];
    assert_eq!(detail["required"], json!(["code", "message"]));
    assert!(detail["properties"]["field"].is_object());

    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        for (status, response) in op["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorResponse",
                    "{what} {status}"
                );
            }
        }
        let json_body = op["requestBody"]["content"]["application/json"].is_object();
        // Request bodies refuse unknown fields, and say so.
        for content in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let reference = content.1["schema"]["$ref"]
                .as_str()
                .expect("a named schema");
            let name = reference.rsplit('/').next().unwrap_or_default();
            assert_eq!(
                schemas[name]["additionalProperties"], false,
                "{what}: {name}"
            );
        }
        for status in [400, 413, 415, 422] {
            assert!(!json_body || documented(&op, status), "{what}: {status}");
        }
        let secured = op.get("security").is_some();
        assert!(!secured || documented(&op, 401), "{what}: 401");
        assert!(
            !secured || method == "get" || documented(&op, 403),
            "{what}: 403"
        );
        assert!(!path.contains('{') || documented(&op, 404), "{what}: 404");
    }
    // What the issue found undocumented.
    let ops = operations(&doc);
    let op = |m: &str, p: &str| {
        ops.iter()
            .find(|(method, path, _)| method == m && path == p)
            .map(|(_, _, op)| op.clone())
            .unwrap_or_else(|| panic!("{m} {p}"))
    };
    assert!(documented(&op("post", "/auth/login"), 422));
    assert!(documented(
        &op("patch", "/plans/{id}/members/{user_id}"),
        422
    ));
    assert!(documented(&op("post", "/auth/signup"), 429));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_operations_answer_their_documented_body_errors() {
    let server = TestServer::start("").await;
    let doc = document(&server).await;
    let (token, _, _) = signup(&server, "contract").await;
    let mut checked = 0;
    for (method, path, op) in operations(&doc) {
        if !op["requestBody"]["content"]["application/json"].is_object() {
            continue;
        }
        let url = format!(
            "{}{API}{}",
            server.base,
            path.replace("{id}", "1").replace("{user_id}", "1")
        );
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        // Not JSON (415), broken JSON (400), a field that does not fit (422), too large
        // (413): each documented, each with the error body.
        let cases: [(&str, Vec<u8>, u16); 6] = [
            ("text/plain", b"{}".to_vec(), 415),
            ("application/json", b"{".to_vec(), 400),
            ("application/json", b"[".to_vec(), 400),
            // JSON, but an array where an object belongs (serde would read a struct
            // from the array of its fields).
            ("application/json", b"[null, null]".to_vec(), 422),
            ("application/json", b"{\"no_such_field\": 1}".to_vec(), 422),
            ("application/json", vec![b' '; 3 * 1024 * 1024], 413),
        ];
        for (content_type, body, status) in cases {
            let resp = client()
                .request(method.clone(), &url)
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("send");
            let what = format!("{method} {path} ({content_type}, {status})");
            assert_eq!(resp.status().as_u16(), status, "{what}");
            assert!(documented(&op, status), "{what}");
            let body: Value = resp.json().await.expect("JSON error");
            assert_error_body(&body, &what);
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked} JSON operations");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schemas_state_what_the_server_refuses() {
    let server = TestServer::start("").await;
    let doc = document(&server).await;
    let schemas = &doc["components"]["schemas"];
    let signup_form = &schemas["SignupRequest"]["properties"];
    assert_eq!(signup_form["password"]["minLength"], 10);
    assert_eq!(signup_form["password"]["maxLength"], 256);
    assert_eq!(signup_form["name"]["minLength"], 1);
    assert_eq!(signup_form["name"]["maxLength"], 200);
    assert!(signup_form["name"]["pattern"].is_string());
    assert_eq!(signup_form["email"]["maxLength"], 254);
    assert!(signup_form["email"]["pattern"].is_string());
    assert_eq!(
        schemas["PasswordRequest"]["properties"]["new_password"]["minLength"],
        10
    );
    for schema in ["NewPlan", "PlanChange", "ScenarioConfig"] {
        assert_eq!(
            schemas[schema]["properties"]["name"]["maxLength"], 200,
            "{schema}"
        );
    }
    assert!(schemas["NewMember"]["properties"]["email"]["pattern"].is_string());
    let scenario = &schemas["ScenarioConfig"]["properties"];
    assert_eq!(scenario["stand_size_acres"]["enum"], json!([10, 100, 500]));
    assert_eq!(scenario["max_project_areas"]["minimum"], 1);
    assert_eq!(scenario["max_project_areas"]["maximum"], 1000);
    assert_eq!(scenario["max_treatment_share"]["exclusiveMinimum"], 0);
    assert_eq!(scenario["priorities"]["minItems"], 1);

    // The plan regions listed are the regions served.
    let (status, _, regions) = call(&server, Method::GET, "/regions", None, None).await;
    assert_eq!(status, 200);
    let mut served: Vec<&str> = regions
        .as_array()
        .expect("regions")
        .iter()
        .map(|r| r["slug"].as_str().expect("slug"))
        .collect();
    served.sort_unstable();
    assert_eq!(
        schemas["NewPlan"]["properties"]["region"]["enum"],
        json!(served)
    );

    // What the document calls invalid, the server refuses, with the error body ...
    let refused = [
        json!({"email": email("blank"), "password": "a good long password", "name": "   "}),
        json!({"email": email("short"), "password": "too short", "name": "Short"}),
        json!({"email": "no-at-sign.example.org", "password": "a good long password", "name": "N"}),
        json!({"email": "dot@example", "password": "a good long password", "name": "N"}),
        json!({"email": email("long"), "password": "é".repeat(257), "name": "Long"}),
    ];
    for form in refused {
        let (status, _, body) = call(
            &server,
            Method::POST,
            "/auth/signup",
            None,
            Some(form.clone()),
        )
        .await;
        assert_eq!(status, 422, "{form}: {body}");
        assert_error_body(&body, &form.to_string());
    }
    // ... and what it calls valid, the server takes: lengths count characters, as JSON
    // Schema's do (a 256-character password of 2-byte characters, a 212-character email
    // of 412 bytes, which then logs in).
    let long_email = format!("{}@example.org", "é".repeat(200));
    let password = "é".repeat(256);
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/auth/signup",
        None,
        Some(json!({"email": long_email, "password": password, "name": "Accents"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = call(
        &server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": long_email, "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}
