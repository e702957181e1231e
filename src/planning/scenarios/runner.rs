//! Running scenarios in the background: at most one run per core at a time (each run
//! sweeps rasters on every core; others wait as `pending`), a heartbeat while queued or
//! running (see [`crate::planning::runs`]), the results written in one transaction, and
//! a failure recorded with its reason.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::Semaphore;

use super::{Job, RunError, rank, store};
use crate::db::{DbError, error_chain};
use crate::planning::conditions::Conditions;
use crate::planning::runs;

/// How a run ended, for whoever started it (usage analytics).
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    /// Whether it finished with results (else it failed).
    pub done: bool,
    /// From its start (queued time included) to its end.
    pub duration: Duration,
}

/// Called once when a run ends.
pub type OnEnd = Box<dyn FnOnce(RunEnd) + Send>;

/// Runs scenario `id` in the background; its state and results land in the database,
/// and `on_end` hears how it ended.
pub fn spawn(pool: Pool, conditions: Option<Arc<Conditions>>, id: i64, job: Job, on_end: OnEnd) {
    tokio::spawn(async move {
        let started = Instant::now();
        // The heartbeat goes while the run is queued or running, and stops with it.
        let outcome = tokio::select! {
            outcome = execute(&pool, conditions, id, job) => outcome,
            () = runs::keep_alive(&pool, id) => Ok(()),
        };
        on_end(RunEnd {
            done: outcome.is_ok(),
            duration: started.elapsed(),
        });
        if let Err(e) = outcome {
            let reason = error_chain(&e);
            tracing::warn!(scenario = id, %reason, "scenario failed");
            record_failure(&pool, id, &reason).await;
        }
    });
}

/// Marks a scenario failed with its reason, retrying while the database is away (up to
/// about a minute; after that its stopped heartbeat gets it swept, see `planning::runs`).
async fn record_failure(pool: &Pool, id: i64, reason: &str) {
    for attempt in 0..8u32 {
        let written = match pool.get().await {
            Ok(client) => store::mark_failed(&**client, id, reason).await,
            Err(e) => Err(DbError::from(e)),
        };
        match written {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(scenario = id, error = %e, attempt, "cannot record the failure yet");
                tokio::time::sleep(Duration::from_millis(500 << attempt.min(4))).await;
            }
        }
    }
    tracing::error!(scenario = id, "the failure could not be recorded");
}

/// Runs a scenario and writes its results in one transaction.
async fn execute(
    pool: &Pool,
    conditions: Option<Arc<Conditions>>,
    id: i64,
    job: Job,
) -> Result<(), RunError> {
    static RUNS: LazyLock<Semaphore> = LazyLock::new(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _permit = RUNS
        .acquire()
        .await
        .map_err(|e| RunError::Task(e.to_string()))?;
    let started = Instant::now();
    // No connection held during the run.
    store::mark_running(&**pool.get().await.map_err(DbError::from)?, id).await?;
    let conditions = conditions.ok_or(RunError::NoCatalog)?;
    let Job {
        config,
        plan,
        shape,
        exclude,
    } = job;
    let outcome = crate::raster_threads::run(move || {
        rank::run(
            &config,
            &conditions,
            &plan.region,
            &shape,
            plan.area_acres,
            exclude.as_ref(),
        )
    })
    .await
    .map_err(|e| RunError::Task(e.to_string()))??;
    let computed = started.elapsed().as_secs_f64();
    let mut client = pool.get().await.map_err(DbError::from)?;
    let summary = store::summary(&outcome, started.elapsed().as_secs_f64(), computed);
    store::write_results(&mut client, id, &outcome, &summary).await?;
    tracing::info!(
        scenario = id,
        seconds = started.elapsed().as_secs_f64(),
        "scenario done"
    );
    Ok(())
}
