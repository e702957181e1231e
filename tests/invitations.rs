//! Sharing by invitation: a pending invitation gives no access anywhere (plan, list,
//! members, plan tiles, scores, scenarios); accepting gives the offered role, declining
//! nothing; the answer to an invitation is the same whether or not the email has an
//! account, and an invitation to an email without one waits for its sign-up; owners see
//! and revoke pending invitations; nobody answers another's invitation; each inviter is
//! limited (pending and per hour, 429). Real PostGIS, real HTTP.

mod common;

use common::api::{call, email, invitation_to, invite, send, signup};
use common::{TestServer, client};
use reqwest::Method;
use serde_json::{Value, json};

/// A plan of about 250 acres in the Sierra Nevada, owned by `token`; its id.
async fn new_plan(server: &TestServer, token: &str, name: &str) -> i64 {
    let (status, _, plan) = call(
        server,
        Method::POST,
        "/plans",
        Some(token),
        Some(json!({"name": name, "region": "sierra_nevada", "geometry":
            {"type": "Polygon", "coordinates": [[[-119.62, 37.78], [-119.61, 37.78], [-119.61, 37.79], [-119.62, 37.79], [-119.62, 37.78]]]}})),
    )
    .await;
    assert_eq!(status, 201, "{plan}");
    plan["id"].as_i64().expect("id")
}

/// The statuses `token` gets for the plan: GET, members, scores, scenarios, a tile.
async fn access(server: &TestServer, token: &str, id: i64) -> [u16; 5] {
    let tile = planscape::tile::TileId::containing(-119.615, 37.785, 12);
    let tile_path = format!("/tiles/plans/{id}/{}/{}/{}.mvt", tile.z, tile.x, tile.y);
    [
        call(
            server,
            Method::GET,
            &format!("/plans/{id}"),
            Some(token),
            None,
        )
        .await
        .0,
        call(
            server,
            Method::GET,
            &format!("/plans/{id}/members"),
            Some(token),
            None,
        )
        .await
        .0,
        call(
            server,
            Method::GET,
            &format!("/plans/{id}/scores"),
            Some(token),
            None,
        )
        .await
        .0,
        call(
            server,
            Method::GET,
            &format!("/plans/{id}/scenarios"),
            Some(token),
            None,
        )
        .await
        .0,
        send(server, Method::GET, &tile_path, Some(token), None)
            .await
            .status()
            .as_u16(),
    ]
}

/// Whether the plan is in the user's list (and with which role).
async fn listed(server: &TestServer, token: &str, id: i64) -> Option<String> {
    let (_, _, list) = call(server, Method::GET, "/plans", Some(token), None).await;
    list.as_array()
        .expect("list")
        .iter()
        .find(|p| p["id"] == id)
        .map(|p| p["role"].as_str().unwrap_or("").to_owned())
}

async fn answer(server: &TestServer, token: &str, invitation: i64, verb: &str) -> (u16, Value) {
    let (status, _, body) = call(
        server,
        Method::POST,
        &format!("/invitations/{invitation}/{verb}"),
        Some(token),
        None,
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_gives_nothing_accept_gives_the_role_decline_nothing() {
    let server = TestServer::start("").await;
    let (owner, _, _) = signup(&server, "Owner").await;
    let (ana, ana_id, ana_mail) = signup(&server, "Ana").await;
    let (ben, _, ben_mail) = signup(&server, "Ben").await;
    let (eve, _, _) = signup(&server, "Eve").await;
    let id = new_plan(&server, &owner, "Ridge").await;

    // Invitations: the answer names the email and role, nothing about the account.
    let sent = invite(
        &server,
        &owner,
        id,
        &ana_mail.to_uppercase(),
        "collaborator",
    )
    .await;
    assert_eq!(sent["status"], "pending");
    assert_eq!(sent["email"], ana_mail);
    assert!(
        sent.get("name").is_none() && sent.get("user_id").is_none(),
        "{sent}"
    );
    invite(&server, &owner, id, &ben_mail, "viewer").await;

    // Pending: no access anywhere, not in the list; exactly a stranger's answers.
    let stranger = access(&server, &eve, id).await;
    assert_eq!(stranger, [404; 5]);
    assert_eq!(access(&server, &ana, id).await, stranger);
    assert_eq!(listed(&server, &ana, id).await, None);

    // The invitee sees the plan's name and the inviter's name.
    let (status, _, received) = call(&server, Method::GET, "/invitations", Some(&ana), None).await;
    assert_eq!(status, 200);
    let received = received.as_array().expect("list").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["plan_name"], "Ridge");
    assert_eq!(received[0]["inviter_name"], "Owner");
    assert_eq!(received[0]["role"], "collaborator");
    let ana_invitation = received[0]["id"].as_i64().expect("id");
    let ben_invitation = invitation_to(&server, &ben, id).await.expect("Ben's");

    // The owner sees them pending, without names; other members will not.
    let (_, _, members) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}/members"),
        Some(&owner),
        None,
    )
    .await;
    let pending: Vec<&Value> = members
        .as_array()
        .expect("members")
        .iter()
        .filter(|m| m["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 2, "{members}");
    assert!(
        pending
            .iter()
            .all(|m| m["name"].is_null() && m["user_id"].is_null())
    );
    assert!(
        pending
            .iter()
            .any(|m| m["email"] == ana_mail && m["invitation_id"] == ana_invitation)
    );

    // Nobody answers another's invitation: 404 as if it did not exist, and it stays.
    for token in [&eve, &ben, &owner] {
        for verb in ["accept", "decline"] {
            let (status, body) = answer(&server, token, ana_invitation, verb).await;
            assert_eq!(status, 404, "{verb}: {body}");
            assert_eq!(body["error"]["message"], "no such invitation");
        }
    }
    assert_eq!(answer(&server, &ana, 999_999_999, "accept").await.0, 404);
    assert_eq!(invitation_to(&server, &ana, id).await, Some(ana_invitation));

    // Accept: the role, everywhere; the invitation is gone from both lists.
    let (status, plan) = answer(&server, &ana, ana_invitation, "accept").await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        (plan["id"].as_i64(), &plan["role"]),
        (Some(id), &json!("collaborator"))
    );
    assert_eq!(access(&server, &ana, id).await, [200; 5]);
    assert_eq!(
        listed(&server, &ana, id).await.as_deref(),
        Some("collaborator")
    );
    assert_eq!(invitation_to(&server, &ana, id).await, None);
    assert_eq!(
        answer(&server, &ana, ana_invitation, "accept").await.0,
        404,
        "once"
    );
    let (_, _, members) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}/members"),
        Some(&owner),
        None,
    )
    .await;
    let ana_row = members
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["email"] == ana_mail)
        .expect("Ana listed")
        .clone();
    assert_eq!(
        (&ana_row["status"], &ana_row["user_id"], &ana_row["name"]),
        (&json!("active"), &json!(ana_id), &json!("Ana"))
    );
    // A member sees the members, not the pending invitations.
    let (_, _, seen) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}/members"),
        Some(&ana),
        None,
    )
    .await;
    assert!(
        seen.as_array()
            .expect("members")
            .iter()
            .all(|m| m["status"] == "active"),
        "{seen}"
    );

    // Decline: nothing, and the owner no longer sees it pending.
    assert_eq!(
        answer(&server, &ben, ben_invitation, "decline").await.0,
        204
    );
    assert_eq!(access(&server, &ben, id).await, stranger);
    assert_eq!(listed(&server, &ben, id).await, None);
    assert_eq!(invitation_to(&server, &ben, id).await, None);
    assert_eq!(
        answer(&server, &ben, ben_invitation, "accept").await.0,
        404,
        "declined stays declined"
    );
    let (_, _, members) = call(
        &server,
        Method::GET,
        &format!("/plans/{id}/members"),
        Some(&owner),
        None,
    )
    .await;
    assert!(!members.to_string().contains(&ben_mail), "{members}");

    // Inviting a member again is refused (change their role instead); no one is demoted.
    let (status, _, err) = call(
        &server,
        Method::POST,
        &format!("/plans/{id}/members"),
        Some(&owner),
        Some(json!({"email": ana_mail, "role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, &err["error"]["field"]),
        (422, &json!("email")),
        "{err}"
    );
    assert_eq!(
        listed(&server, &ana, id).await.as_deref(),
        Some("collaborator")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_tells_nothing_about_accounts_and_unknown_emails_wait_for_sign_up() {
    let server = TestServer::start("").await;
    let (owner, _, _) = signup(&server, "Owner").await;
    let (_, _, known) = signup(&server, "Known").await;
    let unknown = email("later");
    let id = new_plan(&server, &owner, "Meadow").await;
    let mut answers = Vec::new();
    for mail in [&known, &unknown] {
        let resp = send(
            &server,
            Method::POST,
            &format!("/planscape-backend/plans/{id}/members"),
            Some(&owner),
            Some(&json!({"email": mail, "role": "viewer"})),
        )
        .await;
        let status = resp.status().as_u16();
        let mut headers: Vec<String> = resp
            .headers()
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "date" | "content-length" | "x-request-id"))
            .map(|(k, v)| format!("{k}: {v:?}"))
            .collect();
        headers.sort();
        let mut body: Value = resp.json().await.expect("json");
        // Only what differs by construction: the id, the time and the email itself.
        let keys: Vec<String> = body.as_object().expect("object").keys().cloned().collect();
        for k in ["id", "created_at", "email"] {
            body[k] = Value::Null;
        }
        answers.push((status, headers, keys, body));
    }
    assert_eq!(
        answers[0], answers[1],
        "same answer for an account and no account"
    );
    assert_eq!(answers[0].0, 201);

    // The unknown email signs up: the invitation is theirs to accept.
    let (status, _, signed) = call(
        &server,
        Method::POST,
        "/auth/signup",
        None,
        Some(json!({"email": unknown, "password": "a good long password", "name": "Later"})),
    )
    .await;
    assert_eq!(status, 201, "{signed}");
    let later = signed["token"].as_str().expect("token");
    assert_eq!(access(&server, later, id).await, [404; 5]);
    let invitation = invitation_to(&server, later, id).await.expect("waiting");
    assert_eq!(answer(&server, later, invitation, "accept").await.0, 200);
    assert_eq!(listed(&server, later, id).await.as_deref(), Some("viewer"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_revoke_and_inviters_are_limited() {
    let server =
        TestServer::start("[accounts]\ninvitations_max_pending = 3\ninvitations_per_hour = 6\n")
            .await;
    let (owner, _, _) = signup(&server, "Owner").await;
    let (guest, _, guest_mail) = signup(&server, "Guest").await;
    let (viewer, _, viewer_mail) = signup(&server, "Viewer").await;
    let id = new_plan(&server, &owner, "Limits").await;

    // A viewer cannot invite or revoke.
    invite(&server, &owner, id, &viewer_mail, "viewer").await;
    let viewer_invitation = invitation_to(&server, &viewer, id).await.expect("sent");
    assert_eq!(
        answer(&server, &viewer, viewer_invitation, "accept")
            .await
            .0,
        200
    );
    let sent = invite(&server, &owner, id, &guest_mail, "viewer").await;
    let guest_invitation = sent["id"].as_i64().expect("id");
    let revoke_path = format!("/plans/{id}/invitations/{guest_invitation}");
    let (status, _, _) = call(
        &server,
        Method::POST,
        &format!("/plans/{id}/members"),
        Some(&viewer),
        Some(json!({"email": email("x"), "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        call(&server, Method::DELETE, &revoke_path, Some(&viewer), None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(&server, Method::DELETE, &revoke_path, Some(&guest), None)
            .await
            .0,
        404
    );

    // Inviting the same email again changes the role, and is not a new invitation.
    let again = invite(&server, &owner, id, &guest_mail, "collaborator").await;
    assert_eq!(again["id"], sent["id"]);

    // The owner revokes: the guest no longer sees it, and cannot accept it.
    assert_eq!(
        call(&server, Method::DELETE, &revoke_path, Some(&owner), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&server, Method::DELETE, &revoke_path, Some(&owner), None)
            .await
            .0,
        404
    );
    assert_eq!(invitation_to(&server, &guest, id).await, None);
    assert_eq!(
        answer(&server, &guest, guest_invitation, "accept").await.0,
        404
    );
    assert_eq!(access(&server, &guest, id).await, [404; 5]);

    // Sent so far: 2 (of 6 an hour); pending: 0 (of 3). Three more pending reach the
    // pending limit; the fourth is refused with 429 and Retry-After.
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(invite(&server, &owner, id, &email("p"), "viewer").await);
    }
    let over = |mail: String| {
        let server = &server;
        let owner = owner.clone();
        async move {
            client()
                .post(format!(
                    "{}/planscape-backend/plans/{id}/members",
                    server.base
                ))
                .bearer_auth(owner)
                .json(&json!({"email": mail, "role": "viewer"}))
                .send()
                .await
                .expect("send")
        }
    };
    let refused = over(email("p")).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("waiting"),
        "{body}"
    );
    // Another plan of the same owner counts too: the limit is per inviter.
    let other = new_plan(&server, &owner, "Other").await;
    let (status, _, _) = call(
        &server,
        Method::POST,
        &format!("/plans/{other}/members"),
        Some(&owner),
        Some(json!({"email": email("q"), "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 429);
    // Revoking one frees a pending place; one more is sent, the sixth of the hour, and then the hourly limit is reached.
    let first = pending[0]["id"].as_i64().expect("id");
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}/invitations/{first}"),
            Some(&owner),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(over(email("p")).await.status().as_u16(), 201);
    assert_eq!(
        call(
            &server,
            Method::DELETE,
            &format!("/plans/{id}/invitations/{}", pending[1]["id"]),
            Some(&owner),
            None
        )
        .await
        .0,
        204
    );
    let refused = over(email("p")).await;
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: Value = refused.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("last hour"),
        "{body}"
    );
    // Another owner is not limited by this one.
    let (someone, _, _) = signup(&server, "Someone").await;
    let theirs = new_plan(&server, &someone, "Theirs").await;
    invite(&server, &someone, theirs, &email("r"), "viewer").await;
    server.stop().await;
}
