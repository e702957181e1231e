//! PostGIS access: the connection pool and the SQL migrations in `migrations/`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use crate::config::DatabaseConfig;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be parsed (the message never echoes the URL: it may hold a password).
    #[error("invalid database URL")]
    Url,
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    /// Connecting failed.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

/// Parses the configured URL, adding the statement timeout and an application name.
pub fn pg_config(
    db: &DatabaseConfig,
    statement_timeout: bool,
) -> Result<tokio_postgres::Config, DbError> {
    let mut pg: tokio_postgres::Config = db.url.parse().map_err(|_| DbError::Url)?;
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
    Ok(pg)
}

/// Builds the pool used for tile queries. Connections are made lazily, so the pool
/// survives the database going away and reconnects when it returns.
pub fn create_pool(db: &DatabaseConfig) -> Result<Pool, DbError> {
    let manager = Manager::from_config(
        pg_config(db, true)?,
        NoTls,
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

/// Opens one dedicated connection (for migrations, loading and LISTEN).
pub async fn connect(db: &DatabaseConfig) -> Result<tokio_postgres::Client, DbError> {
    let (client, connection) = pg_config(db, false)?
        .connect(NoTls)
        .await
        .map_err(DbError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// Applies the pending migrations of `migrations/`; returns how many ran. Servers
/// starting together take turns (a session advisory lock), so each migration runs once.
pub async fn migrate(db: &DatabaseConfig) -> Result<usize, DbError> {
    /// Advisory lock key: "planscape migrate".
    const LOCK: i64 = 0x706c_616e_6d69_6772;
    let mut client = connect(db).await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK])
        .await
        .map_err(|e| DbError::Migration(e.to_string()))?;
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|e| DbError::Migration(e.to_string()));
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK])
        .await;
    Ok(report?.applied_migrations().len())
}

/// Quotes a validated identifier for SQL (`schema.table` is quoted part by part).
pub fn quote_ident(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}
