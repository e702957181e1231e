//! Liveness of scenario runs. A run lives in the server that started it (a background
//! task): while it is queued or running, that server touches its heartbeat every
//! [`HEARTBEAT`]; every server sweeps runs whose heartbeat is older than [`STALE_AFTER`]
//! into `failed`, at start and every [`SWEEP_EVERY`]. So a run whose server stopped (a
//! deploy, a crash) ends as failed within a few minutes, whichever server is left, and
//! the runs of live servers are never touched.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::GenericClient;

use crate::db::DbError;

/// How often a live run's heartbeat is touched.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A run whose heartbeat is older than this has lost its server.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often each server sweeps stale runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Closes the runs whose server stopped; returns how many.
pub async fn close_stale(client: &impl GenericClient) -> Result<u64, DbError> {
    let stale = format!("{} seconds", STALE_AFTER.as_secs());
    Ok(client
        .execute(
            "UPDATE planscape.scenarios SET status = 'failed', finished_at = now(), \
             reason = 'interrupted: the server running it stopped; run it again' \
             WHERE status IN ('pending', 'running') AND heartbeat_at < now() - $1::text::interval",
            &[&stale],
        )
        .await?)
}

/// Touches run `id`'s heartbeat every [`HEARTBEAT`], forever: race it against the run.
pub async fn keep_alive(pool: &Pool, id: i64) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        // A missed beat is retried at the next tick; several in a row and the run is
        // swept, which is right: its results could not be written either.
        if let Ok(client) = pool.get().await
            && let Err(e) = client
                .execute(
                    "UPDATE planscape.scenarios SET heartbeat_at = now() WHERE id = $1",
                    &[&id],
                )
                .await
        {
            tracing::debug!(scenario = id, error = %e, "heartbeat missed");
        }
    }
}

/// [`close_stale`], with what it did logged (a failure too: the next sweep retries).
pub async fn sweep(client: &impl GenericClient) {
    match close_stale(client).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(runs = n, "closed scenario runs whose server stopped"),
        Err(e) => tracing::warn!(error = %e, "could not close interrupted scenario runs"),
    }
}

/// Sweeps stale runs every [`SWEEP_EVERY`] until aborted; the first sweep is one period
/// after start (the start-up itself sweeps once).
pub fn spawn_sweeper(pool: Pool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
        loop {
            tick.tick().await;
            if let Ok(client) = pool.get().await {
                sweep(&**client).await;
            }
        }
    })
}
