//! Deleting an account (`DELETE /auth/account` with the password): its sessions end,
//! the plans it alone owns go with their scenarios and memberships, a co-owned plan
//! passes to the other owner, its memberships of other plans go, its scenarios on other
//! people's plans stay (maker unknown); every other row is untouched, checked row by row
//! in PostGIS before and after. Real PostGIS, real HTTP.

mod common;

use std::collections::BTreeSet;

use common::api::{call, share, signup};
use common::{TestServer, shared_data};
use reqwest::Method;
use serde_json::{Value, json};

fn geometry(file: &str) -> Value {
    let text = std::fs::read_to_string(shared_data(&format!("planscape/{file}"))).expect("file");
    serde_json::from_str(&text).expect("json")
}

async fn new_plan(server: &TestServer, token: &str, name: &str) -> i64 {
    let (status, _, body) = call(
        server,
        Method::POST,
        "/plans",
        Some(token),
        Some(json!({"name": name, "region": "southern_california", "geometry": geometry("sandiego.geojson")})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

/// A finished scenario on `plan` made by `user`, with one project area.
async fn scenario(db: &tokio_postgres::Client, plan: i64, user: i64, name: &str) -> i64 {
    let id: i64 = db
        .query_one(
            "INSERT INTO planscape.scenarios (plan_id, created_by, name, config, status, finished_at) \
             VALUES ($1, $2, $3, '{}', 'done', now()) RETURNING id",
            &[&plan, &user, &name],
        )
        .await
        .expect("scenario")
        .get(0);
    db.execute(
        "INSERT INTO planscape.project_areas (scenario_id, rank, score, area_acres, stand_count, geom) \
         SELECT $1, 1, 0.5, 10, 1, geom FROM planscape.plans WHERE id = $2",
        &[&id, &plan],
    )
    .await
    .expect("project area");
    id
}

/// Every row that belongs to the given users or plans, as JSON text, by table.
async fn rows(db: &tokio_postgres::Client, users: &[i64], plans: &[i64]) -> BTreeSet<String> {
    let queries = [
        (
            "users",
            "SELECT row_to_json(t)::text FROM planscape.users t WHERE id = ANY($1) AND $2::bigint[] IS NOT NULL",
        ),
        (
            "sessions",
            "SELECT row_to_json(t)::text FROM (SELECT encode(token_hash, 'hex') AS token_hash, user_id, created_at, expires_at, revoked_at FROM planscape.sessions WHERE user_id = ANY($1) AND $2::bigint[] IS NOT NULL) t",
        ),
        (
            "plans",
            "SELECT row_to_json(t)::text FROM (SELECT id, owner_id, name, region, area_acres, created_at, updated_at, ST_AsText(geom) AS geom FROM planscape.plans WHERE id = ANY($2) OR owner_id = ANY($1)) t",
        ),
        (
            "plan_members",
            "SELECT row_to_json(t)::text FROM planscape.plan_members t WHERE plan_id = ANY($2) OR user_id = ANY($1)",
        ),
        (
            "scenarios",
            "SELECT row_to_json(t)::text FROM planscape.scenarios t WHERE plan_id = ANY($2) OR created_by = ANY($1)",
        ),
        (
            "project_areas",
            "SELECT row_to_json(t)::text FROM (SELECT a.id, a.scenario_id, a.rank, a.score, ST_AsText(a.geom) AS geom FROM planscape.project_areas a JOIN planscape.scenarios s ON s.id = a.scenario_id WHERE s.plan_id = ANY($2) AND $1::bigint[] IS NOT NULL) t",
        ),
    ];
    let mut out = BTreeSet::new();
    for (table, sql) in queries {
        for row in db.query(sql, &[&users, &plans]).await.expect(table) {
            out.insert(format!("{table} {}", row.get::<_, String>(0)));
        }
    }
    out
}

async fn count(db: &tokio_postgres::Client, sql: &str, id: i64) -> i64 {
    db.query_one(sql, &[&id]).await.expect("count").get(0)
}

async fn delete_account(server: &TestServer, token: Option<&str>, password: &str) -> (u16, Value) {
    let (status, _, body) = call(
        server,
        Method::DELETE,
        "/auth/account",
        token,
        Some(json!({ "password": password })),
    )
    .await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_takes_its_own_plans_and_nothing_else() {
    let server = TestServer::start("").await;
    let db = planscape::db::connect(&common::db_config())
        .await
        .expect("database");
    let (ana, ana_id, ana_mail) = signup(&server, "ana").await;
    let (ben, ben_id, ben_mail) = signup(&server, "ben").await;
    let (cai, cai_id, cai_mail) = signup(&server, "cai").await;

    // Ana alone owns `solo` (shared with Ben, who made a scenario on it) and owns
    // `shared` with Cai as co-owner; Ben owns `bens` (Ana collaborates on it, and made a
    // scenario there) and `other` (Cai views it).
    let solo = new_plan(&server, &ana, "solo").await;
    share(&server, &ana, solo, &ben_mail, "collaborator", &ben).await;
    let solo_by_ana = scenario(&db, solo, ana_id, "solo by ana").await;
    let solo_by_ben = scenario(&db, solo, ben_id, "solo by ben").await;
    let shared = new_plan(&server, &ana, "shared").await;
    share(&server, &ana, shared, &cai_mail, "owner", &cai).await;
    share(&server, &ana, shared, &ben_mail, "viewer", &ben).await;
    let shared_by_ana = scenario(&db, shared, ana_id, "shared by ana").await;
    let bens = new_plan(&server, &ben, "bens").await;
    share(&server, &ben, bens, &ana_mail, "collaborator", &ana).await;
    let bens_by_ana = scenario(&db, bens, ana_id, "bens by ana").await;
    let bens_by_ben = scenario(&db, bens, ben_id, "bens by ben").await;
    let other = new_plan(&server, &ben, "other").await;
    share(&server, &ben, other, &cai_mail, "viewer", &cai).await;
    let other_by_ben = scenario(&db, other, ben_id, "other by ben").await;

    let users = [ana_id, ben_id, cai_id];
    let plans = [solo, shared, bens, other];
    let before = rows(&db, &users, &plans).await;

    // Not signed in: 401. A wrong password: 422, and nothing changes.
    assert_eq!(
        delete_account(&server, None, "a good long password")
            .await
            .0,
        401
    );
    let (status, body) = delete_account(&server, Some(&ana), "not the password").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "password");
    assert_eq!(rows(&db, &users, &plans).await, before);

    let (status, body) = delete_account(&server, Some(&ana), "a good long password").await;
    assert_eq!(status, 204, "{body}");
    let after = rows(&db, &users, &plans).await;

    // What went, and what changed.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM planscape.users WHERE id = $1",
            ana_id
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM planscape.sessions WHERE user_id = $1",
            ana_id
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM planscape.plans WHERE id = $1",
            solo
        )
        .await,
        0
    );
    for sid in [solo_by_ana, solo_by_ben] {
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM planscape.scenarios WHERE id = $1",
                sid
            )
            .await,
            0
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM planscape.project_areas WHERE scenario_id = $1",
                sid
            )
            .await,
            0
        );
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM planscape.plan_members WHERE plan_id = $1",
            solo
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM planscape.plan_members WHERE user_id = $1",
            ana_id
        )
        .await,
        0
    );
    let owner: i64 = db
        .query_one(
            "SELECT owner_id FROM planscape.plans WHERE id = $1",
            &[&shared],
        )
        .await
        .expect("shared plan kept")
        .get(0);
    assert_eq!(owner, cai_id, "the co-owner owns the shared plan now");
    for sid in [shared_by_ana, bens_by_ana] {
        let maker: Option<i64> = db
            .query_one(
                "SELECT created_by FROM planscape.scenarios WHERE id = $1",
                &[&sid],
            )
            .await
            .expect("scenario kept")
            .get(0);
        assert_eq!(maker, None, "kept, maker unknown");
    }

    // Everything else is as it was: the rows that differ are exactly those.
    let gone: Vec<&String> = before.difference(&after).collect();
    let new: Vec<&String> = after.difference(&before).collect();
    let mentions = |row: &str, table: &str, key: &str, id: i64| {
        row.starts_with(&format!("{table} ")) && row.contains(&format!("\"{key}\":{id},"))
    };
    for row in &gone {
        let expected = mentions(row, "users", "id", ana_id)
            || mentions(row, "sessions", "user_id", ana_id)
            || mentions(row, "plans", "id", solo)
            || mentions(row, "plans", "id", shared)
            || mentions(row, "plan_members", "plan_id", solo)
            || mentions(row, "plan_members", "user_id", ana_id)
            || (mentions(row, "plan_members", "plan_id", shared)
                && mentions(row, "plan_members", "user_id", cai_id))
            || mentions(row, "scenarios", "plan_id", solo)
            || mentions(row, "scenarios", "id", shared_by_ana)
            || mentions(row, "scenarios", "id", bens_by_ana)
            || mentions(row, "project_areas", "scenario_id", solo_by_ana)
            || mentions(row, "project_areas", "scenario_id", solo_by_ben);
        assert!(expected, "unexpectedly changed or deleted: {row}");
    }
    // New versions: the shared plan (new owner) and the two kept scenarios (no maker).
    assert_eq!(new.len(), 3, "{new:#?}");
    assert!(
        new.iter().any(|r| mentions(r, "plans", "id", shared)
            && r.contains(&format!("\"owner_id\":{cai_id},")))
    );
    for sid in [shared_by_ana, bens_by_ana] {
        assert!(
            new.iter()
                .any(|r| mentions(r, "scenarios", "id", sid) && r.contains("\"created_by\":null"))
        );
    }
    // Rows of Ben and Cai, their plans, memberships and scenarios: untouched.
    for sid in [bens_by_ben, other_by_ben] {
        assert!(after.iter().any(|r| mentions(r, "scenarios", "id", sid)));
    }
    assert_eq!(
        before
            .iter()
            .filter(|r| mentions(r, "plans", "id", other))
            .collect::<Vec<_>>(),
        after
            .iter()
            .filter(|r| mentions(r, "plans", "id", other))
            .collect::<Vec<_>>()
    );

    // The session is over, the email is free again, the others carry on.
    assert_eq!(
        call(&server, Method::GET, "/auth/me", Some(&ana), None)
            .await
            .0,
        401
    );
    let (status, _, _) = call(
        &server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"email": ana_mail, "password": "a good long password"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, list) = call(&server, Method::GET, "/plans", Some(&cai), None).await;
    assert_eq!(status, 200);
    assert!(
        list.as_array()
            .expect("plans")
            .iter()
            .any(|p| p["id"] == shared && p["role"] == "owner")
    );
    let (status, _, list) = call(&server, Method::GET, "/plans", Some(&ben), None).await;
    assert_eq!(status, 200);
    let ids: BTreeSet<i64> = list
        .as_array()
        .expect("plans")
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    assert!(
        ids.contains(&bens)
            && ids.contains(&other)
            && ids.contains(&shared)
            && !ids.contains(&solo)
    );
    let (status, _, _) = call(
        &server,
        Method::POST,
        "/auth/signup",
        None,
        Some(json!({"email": ana_mail, "password": "a good long password", "name": "Ana again"})),
    )
    .await;
    assert_eq!(status, 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_limited_like_password_changes() {
    let server =
        TestServer::start("[accounts]\nlogin_max_failures = 3\nlogin_window_s = 60\n").await;
    let (token, _, _) = signup(&server, "guessed").await;
    for _ in 0..3 {
        assert_eq!(
            delete_account(&server, Some(&token), "wrong password!")
                .await
                .0,
            422
        );
    }
    let (status, body) = delete_account(&server, Some(&token), "a good long password").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        call(&server, Method::GET, "/auth/me", Some(&token), None)
            .await
            .0,
        200
    );
    server.stop().await;
}
