//! PostGIS access: the connection pool, the SQL migrations in `migrations/`, and the one
//! database error every repository reports ([`DbError`]). Every connection (pooled,
//! dedicated, LISTEN) goes through here and so honours `sslmode` and `sslrootcert`
//! ([`tls`]).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::Socket;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DatabaseConfig, DatabaseUrl};

mod error;
pub mod tls;

pub use error::{DbError, ServerError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A dedicated connection's driver: poll it (or spawn it) for the client to work, and
/// for notifications.
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Parses the configured URL (with its TLS settings), adding the statement timeout and
/// an application name.
pub fn pg_config(db: &DatabaseConfig, statement_timeout: bool) -> Result<DatabaseUrl, DbError> {
    let mut url = DatabaseUrl::parse(&db.url).map_err(DbError::Url)?;
    let pg = &mut url.connection;
    pg.application_name("planscape");
    pg.connect_timeout(Duration::from_millis(db.connect_timeout_ms));
    if statement_timeout {
        // Tile queries are prepared once and run with very different envelopes: a
        // generic plan chosen after a few runs can be 10x slower at low zoom, so plan
        // every execution for its own parameters (planning costs well under 1 ms).
        pg.options(format!(
            "-c statement_timeout={} -c plan_cache_mode=force_custom_plan",
            db.statement_timeout_ms
        ));
    }
    Ok(url)
}

/// Builds the pool used for tile queries. Connections are made lazily, so the pool
/// survives the database going away and reconnects when it returns. The TLS root
/// certificates are read here, once (an unreadable `sslrootcert` is an error now).
pub async fn create_pool(db: &DatabaseConfig) -> Result<Pool, DbError> {
    let url = pg_config(db, true)?;
    let tls = tls::connector(url.cert_check()).await?;
    let manager = Manager::from_config(
        url.connection,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let wait = Duration::from_millis(db.connect_timeout_ms);
    Pool::builder(manager)
        .max_size(db.pool_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(wait),
            create: Some(wait),
            recycle: Some(wait),
        })
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

/// Opens one dedicated connection and returns its driver unspawned (for LISTEN, whose
/// caller polls it for notifications). A failure says what to fix when TLS is the cause.
pub async fn open(db: &DatabaseConfig) -> Result<(tokio_postgres::Client, Connection), DbError> {
    let url = pg_config(db, false)?;
    let check = url.cert_check();
    let tls = tls::connector(check.clone()).await?;
    url.connection
        .connect(tls)
        .await
        .map_err(|e| tls::explain(&e, Some(&check)).unwrap_or(DbError::Connect(e)))
}

/// Opens one dedicated connection (for migrations and loading).
pub async fn connect(db: &DatabaseConfig) -> Result<tokio_postgres::Client, DbError> {
    let (client, connection) = open(db).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// Where refinery records the applied migrations: in the server's own schema, named in
/// full. Unqualified, the table would land in the first schema of the search path, and
/// with the default path (`"$user", public`) that changes once V1 creates `planscape`
/// when the database role is itself called `planscape`: the history then splits across
/// two tables and later runs re-apply migrations that already ran.
const HISTORY_TABLE: &str = "planscape.refinery_schema_history";

/// Applies the pending migrations of `migrations/`; returns how many ran. Servers
/// starting together take turns (a session advisory lock), so each migration runs once.
pub async fn migrate(db: &DatabaseConfig) -> Result<usize, DbError> {
    /// Advisory lock key: "planscape migrate".
    const LOCK: i64 = 0x706c_616e_6d69_6772;
    let mut client = connect(db).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(|e| DbError::Migration(error_chain(&e)))?;
    let result = run_migrations(&mut client).await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    result
}

/// Runs refinery against [`HISTORY_TABLE`], adopting a history of ours (its V1 row names
/// `planscape_schema`) that earlier versions kept unqualified in `public`; when both
/// exist they are merged, as each row in either is a migration that ran.
async fn run_migrations(client: &mut tokio_postgres::Client) -> Result<usize, DbError> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS planscape;
             DO $$
             BEGIN
               -- Nested: a condition naming the table is planned only once it exists.
               IF to_regclass('public.refinery_schema_history') IS NOT NULL THEN
                 IF EXISTS (SELECT 1 FROM public.refinery_schema_history
                            WHERE version = 1 AND name = 'planscape_schema') THEN
                   IF to_regclass('planscape.refinery_schema_history') IS NULL THEN
                     ALTER TABLE public.refinery_schema_history SET SCHEMA planscape;
                   ELSE
                     INSERT INTO planscape.refinery_schema_history
                       SELECT * FROM public.refinery_schema_history p
                       WHERE NOT EXISTS (SELECT 1 FROM planscape.refinery_schema_history h
                                         WHERE h.version = p.version);
                     DROP TABLE public.refinery_schema_history;
                   END IF;
                 END IF;
               END IF;
             END $$;",
        )
        .await
        .map_err(|e| DbError::Migration(error_chain(&e)))?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    let report = runner
        .run_async(client)
        .await
        .map_err(|e| DbError::Migration(error_chain(&e)))?;
    Ok(report.applied_migrations().len())
}

/// An error with its causes (`db error` alone hides what PostgreSQL said), for logs
/// and recorded failure reasons.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Quotes a validated identifier for SQL (`schema.table` is quoted part by part).
pub fn quote_ident(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}
