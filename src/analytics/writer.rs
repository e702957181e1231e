//! The writer task: takes queued events in batches (at most [`BATCH`] per insert, or
//! whatever a flush interval gathered), adds the tile counters to their daily rows,
//! rolls the days up and prunes old raw events. A failed write keeps its batch (and
//! puts tile counts back) for the next attempt, up to the queue's size.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use super::tile_counts::{TileCounter, today};
use super::{Command, Event, rollup};
use crate::config::AnalyticsConfig;
use crate::db::DbError;

/// Most events per insert.
pub const BATCH: usize = 1_000;
/// How often yesterday and today are rolled up again and old raw events pruned.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(3_600);

/// Starts the task; it ends when every sender is gone (after a last write).
pub(crate) fn spawn(
    pool: Pool,
    mut receiver: mpsc::Receiver<Command>,
    tiles: Arc<TileCounter>,
    config: AnalyticsConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pending: Vec<Event> = Vec::new();
        // Days a stopped server left without roll-ups, and the raw events past keeping.
        maintain(&pool, config.raw_retention_days, true).await;
        let period = Duration::from_secs(config.flush_interval_s);
        let start = tokio::time::Instant::now();
        let mut flush = tokio::time::interval_at(start + period, period);
        let mut maintenance =
            tokio::time::interval_at(start + MAINTENANCE_EVERY, MAINTENANCE_EVERY);
        loop {
            tokio::select! {
                command = receiver.recv() => match command {
                    Some(Command::Event(event)) => {
                        pending.push(event);
                        if pending.len() >= BATCH {
                            write_events(&pool, &mut pending, config.queue_size).await;
                        }
                    }
                    Some(Command::Flush { roll_up, done }) => {
                        write_events(&pool, &mut pending, config.queue_size).await;
                        write_tiles(&pool, &tiles).await;
                        if roll_up {
                            roll_up_recent(&pool).await;
                        }
                        let _ = done.send(());
                    }
                    None => {
                        write_events(&pool, &mut pending, config.queue_size).await;
                        write_tiles(&pool, &tiles).await;
                        return;
                    }
                },
                _ = flush.tick() => {
                    write_events(&pool, &mut pending, config.queue_size).await;
                    write_tiles(&pool, &tiles).await;
                }
                _ = maintenance.tick() => maintain(&pool, config.raw_retention_days, false).await,
            }
        }
    })
}

/// Inserts the pending events in batches; on failure keeps them (the oldest dropped
/// beyond `cap`).
async fn write_events(pool: &Pool, pending: &mut Vec<Event>, cap: usize) {
    while !pending.is_empty() {
        let n = pending.len().min(BATCH);
        match insert(pool, &pending[..n]).await {
            Ok(()) => {
                metrics::counter!("analytics_events_written_total").increment(n as u64);
                pending.drain(..n);
            }
            Err(e) => {
                metrics::counter!("analytics_write_errors_total").increment(1);
                tracing::warn!(error = %e, events = pending.len(), "analytics: cannot write events yet");
                if pending.len() > cap {
                    let over = pending.len() - cap;
                    pending.drain(..over);
                    metrics::counter!("analytics_events_dropped_total").increment(over as u64);
                }
                return;
            }
        }
    }
}

/// One multi-row insert. A created plan's location is taken from the plan itself
/// (snapped to 0.01 degrees), so requests never compute it.
async fn insert(pool: &Pool, events: &[Event]) -> Result<(), DbError> {
    let mut at = Vec::with_capacity(events.len());
    let mut kind = Vec::with_capacity(events.len());
    let mut user = Vec::with_capacity(events.len());
    let mut visitor = Vec::with_capacity(events.len());
    let mut plan = Vec::with_capacity(events.len());
    let mut scenario = Vec::with_capacity(events.len());
    let mut detail = Vec::with_capacity(events.len());
    let mut duration = Vec::with_capacity(events.len());
    for e in events {
        at.push(e.at.max(UNIX_EPOCH));
        kind.push(e.kind.as_str());
        user.push(e.user_id);
        visitor.push(e.visitor);
        plan.push(e.plan_id);
        scenario.push(e.scenario_id);
        detail.push(e.detail);
        duration.push(
            e.duration
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        );
    }
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO planscape.analytics_events \
               (at, kind, user_id, visitor, plan_id, scenario_id, detail, duration_ms, location) \
             SELECT e.at, e.kind, e.user_id, e.visitor, e.plan_id, e.scenario_id, e.detail, e.duration_ms, \
               CASE WHEN e.kind = 'plan_created' THEN \
                 (SELECT ST_SnapToGrid(ST_PointOnSurface(p.geom), 0.01) FROM planscape.plans p WHERE p.id = e.plan_id) \
               END \
             FROM unnest($1::timestamptz[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], \
                         $7::text[], $8::int8[]) \
               AS e(at, kind, user_id, visitor, plan_id, scenario_id, detail, duration_ms)",
            &[
                &at, &kind, &user, &visitor, &plan, &scenario, &detail, &duration,
            ],
        )
        .await?;
    Ok(())
}

/// Adds the tile counters to their daily rows; on failure puts them back.
async fn write_tiles(pool: &Pool, tiles: &TileCounter) {
    let counts = tiles.take(today());
    if counts.is_empty() {
        return;
    }
    let result = async {
        let days: Vec<i32> = counts
            .iter()
            .map(|c| i32::try_from(c.day).unwrap_or(0))
            .collect();
        let layers: Vec<&str> = counts.iter().map(|c| c.layer.as_str()).collect();
        let zooms: Vec<i16> = counts.iter().map(|c| i16::from(c.zoom)).collect();
        let requests: Vec<i64> = counts
            .iter()
            .map(|c| i64::try_from(c.requests).unwrap_or(i64::MAX))
            .collect();
        let client = pool.get().await.map_err(DbError::from)?;
        client
            .execute(
                "INSERT INTO planscape.analytics_tiles (day, layer, zoom, requests) \
                 SELECT date '1970-01-01' + t.d, t.l, t.z, t.n \
                 FROM unnest($1::int4[], $2::text[], $3::int2[], $4::int8[]) AS t(d, l, z, n) \
                 ON CONFLICT (day, layer, zoom) \
                 DO UPDATE SET requests = planscape.analytics_tiles.requests + EXCLUDED.requests",
                &[&days, &layers, &zooms, &requests],
            )
            .await
            .map_err(DbError::from)?;
        Ok::<(), DbError>(())
    }
    .await;
    if let Err(e) = result {
        metrics::counter!("analytics_write_errors_total").increment(1);
        tracing::warn!(error = %e, "analytics: cannot write tile counts yet");
        tiles.restore(&counts);
    }
}

/// Rolls up yesterday and today.
async fn roll_up_recent(pool: &Pool) {
    let today = today();
    for day in [today - 1, today] {
        if let Err(e) = rollup::roll_up(pool, day).await {
            tracing::warn!(error = %e, "analytics: roll-up failed");
        }
    }
}

/// Rolls up (every day with raw events when `all`, else yesterday and today), then
/// prunes raw events older than the retention.
async fn maintain(pool: &Pool, retention_days: u32, all: bool) {
    let result = async {
        let days = if all {
            rollup::days_with_events(pool).await?
        } else {
            vec![today() - 1, today()]
        };
        for day in days {
            rollup::roll_up(pool, day).await?;
        }
        let pruned = rollup::prune(pool, today() - i64::from(retention_days) + 1).await?;
        if pruned > 0 {
            tracing::info!(pruned, "analytics: raw events past keeping deleted");
        }
        Ok::<(), DbError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "analytics: roll-up or pruning failed");
    }
}
