//! Migrations from an empty database, run again, and over the history that earlier
//! versions kept in `public` (where the role named `planscape` split it in two: the bug
//! that re-applied V2 on every start). Each test migrates a database of its own.

mod common;

use common::{database_url, db_config, unique};
use planscape::config::DatabaseConfig;

/// How many migrations the crate ships (the files of `migrations/`).
fn shipped() -> i64 {
    shipped_versions().len() as i64
}

/// The versions the crate ships, in order (`V{n}__name.sql`; not necessarily contiguous,
/// as branches number theirs apart).
fn shipped_versions() -> Vec<i32> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut versions: Vec<i32> = std::fs::read_dir(dir)
        .expect("migrations folder")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql")?
                .strip_prefix('V')?
                .split_once("__")?
                .0
                .parse()
                .ok()
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// A new empty database beside the test database, dropped on [`Fresh::drop_now`].
struct Fresh {
    name: String,
    config: DatabaseConfig,
}

impl Fresh {
    async fn new() -> Self {
        let name = unique("t_migrate");
        let admin = planscape::db::connect(&db_config())
            .await
            .expect("test database reachable");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("the test role may create databases (the embedded cluster's may)");
        let url = database_url();
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b.to_owned(), format!("?{q}")),
            None => (url.clone(), String::new()),
        };
        let (server, _db) = base.rsplit_once('/').expect("URL names a database");
        let config = DatabaseConfig {
            url: format!("{server}/{name}{query}"),
            ..db_config()
        };
        Self { name, config }
    }

    async fn client(&self) -> tokio_postgres::Client {
        planscape::db::connect(&self.config)
            .await
            .expect("fresh database reachable")
    }

    async fn drop_now(self) {
        let admin = planscape::db::connect(&db_config())
            .await
            .expect("test database reachable");
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .expect("drop the fresh database");
    }
}

/// The versions recorded in `table`, in order.
async fn versions(client: &tokio_postgres::Client, table: &str) -> Vec<i32> {
    client
        .query(
            &format!("SELECT version FROM {table} ORDER BY version"),
            &[],
        )
        .await
        .expect("history readable")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn exists(client: &tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .expect("to_regclass")
        .get(0)
}

#[tokio::test]
async fn an_empty_database_migrates_once_and_then_has_nothing_to_do() {
    let db = Fresh::new().await;
    let all = shipped();
    assert_eq!(
        planscape::db::migrate(&db.config).await.expect("first run") as i64,
        all
    );
    // A second server (a new connection: the search path now finds `planscape`).
    assert_eq!(
        planscape::db::migrate(&db.config)
            .await
            .expect("second run"),
        0
    );
    let client = db.client().await;
    let recorded = versions(&client, "planscape.refinery_schema_history").await;
    assert_eq!(recorded, shipped_versions());
    assert!(!exists(&client, "public.refinery_schema_history").await);
    assert!(exists(&client, "planscape.users").await);
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn servers_starting_together_apply_each_migration_once() {
    let db = Fresh::new().await;
    let runs = migrate_together(&db.config).await;
    assert_eq!(runs.iter().sum::<i64>(), shipped(), "runs: {runs:?}");
    db.drop_now().await;
}

/// Four migrations at once, as four servers starting together would.
async fn migrate_together(config: &DatabaseConfig) -> Vec<i64> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = config.clone();
            tokio::spawn(async move { planscape::db::migrate(&c).await })
        })
        .collect();
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.expect("task").expect("migration run") as i64);
    }
    runs
}

#[tokio::test]
async fn a_history_split_by_earlier_versions_is_merged_and_nothing_re_runs() {
    let db = Fresh::new().await;
    planscape::db::migrate(&db.config).await.expect("first run");
    // Rebuild the broken state: the full history in `public`, and in `planscape` a second
    // one that holds only V1 (re-applied by a later start before V2 failed).
    let client = db.client().await;
    client
        .batch_execute(
            "ALTER TABLE planscape.refinery_schema_history SET SCHEMA public;
             CREATE TABLE planscape.refinery_schema_history (LIKE public.refinery_schema_history);
             INSERT INTO planscape.refinery_schema_history
                 SELECT * FROM public.refinery_schema_history WHERE version = 1;",
        )
        .await
        .expect("split the history");
    assert_eq!(
        planscape::db::migrate(&db.config)
            .await
            .expect("run over the split history"),
        0
    );
    assert_eq!(
        versions(&client, "planscape.refinery_schema_history").await,
        shipped_versions()
    );
    assert!(!exists(&client, "public.refinery_schema_history").await);

    // Only the history in `public` (no split): moved, not re-run.
    client
        .batch_execute("ALTER TABLE planscape.refinery_schema_history SET SCHEMA public")
        .await
        .expect("move the history");
    assert_eq!(
        planscape::db::migrate(&db.config)
            .await
            .expect("run over the old place"),
        0
    );
    assert_eq!(
        versions(&client, "planscape.refinery_schema_history").await,
        shipped_versions()
    );
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn another_applications_history_in_public_is_left_alone() {
    let db = Fresh::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE public.refinery_schema_history (version int4 PRIMARY KEY, name varchar(255), applied_on varchar(255), checksum varchar(255));
             INSERT INTO public.refinery_schema_history VALUES (1, 'their_schema', 'x', '1');",
        )
        .await
        .expect("a foreign history");
    assert_eq!(
        planscape::db::migrate(&db.config).await.expect("migrate") as i64,
        shipped()
    );
    assert_eq!(
        versions(&client, "public.refinery_schema_history").await,
        vec![1]
    );
    drop(client);
    db.drop_now().await;
}

#[tokio::test]
async fn a_failing_migration_names_what_postgres_said() {
    let db = Fresh::new().await;
    // A table where V2 wants to create one: V2 fails, and the error says why.
    let client = db.client().await;
    client
        .batch_execute("CREATE SCHEMA planscape; CREATE TABLE planscape.users (id int)")
        .await
        .expect("block V2");
    let err = planscape::db::migrate(&db.config)
        .await
        .expect_err("V2 cannot run");
    let text = err.to_string();
    assert!(
        text.contains("V2") && text.contains("already exists"),
        "error names the migration and the cause: {text}"
    );
    drop(client);
    db.drop_now().await;
}
