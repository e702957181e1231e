//! Daily roll-ups of the raw events, and pruning. A day's roll-up is made anew from its
//! raw events (so it equals them, and doing it twice changes nothing), under an
//! advisory lock so that servers rolling up together take turns. Raw events are pruned
//! only past the retention (at least two days), so every day is rolled up after it ends.

use deadpool_postgres::Pool;

use crate::db::DbError;

/// The lock key of roll-ups (any constant shared by every server).
const LOCK: i64 = 0x706c_616e_7363_6170;

/// The SQL of a day's bounds: `$1` is days since 1970-01-01.
const DAY: &str = "at >= (date '1970-01-01' + $1::int4)::timestamp AT TIME ZONE 'UTC' \
                   AND at < (date '1970-01-01' + $1::int4 + 1)::timestamp AT TIME ZONE 'UTC'";

/// Rolls up day `day` (days since 1970-01-01, UTC) from its raw events.
pub async fn roll_up(pool: &Pool, day: i64) -> Result<(), DbError> {
    let day = i32::try_from(day).unwrap_or(0);
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.execute(
        "DELETE FROM planscape.analytics_daily WHERE day = date '1970-01-01' + $1::int4",
        &[&day],
    )
    .await?;
    let statements = [
        // Events by kind and label.
        format!(
            "INSERT INTO planscape.analytics_daily (day, metric, key, value) \
             SELECT date '1970-01-01' + $1::int4, kind, coalesce(detail, ''), count(*) \
             FROM planscape.analytics_events WHERE {DAY} GROUP BY kind, coalesce(detail, '')"
        ),
        // Distinct users and visitors of the day.
        format!(
            "INSERT INTO planscape.analytics_daily (day, metric, key, value) \
             SELECT date '1970-01-01' + $1::int4, m.metric, '', m.value FROM ( \
               SELECT 'active_users' AS metric, count(DISTINCT user_id) AS value \
                 FROM planscape.analytics_events WHERE {DAY} AND user_id IS NOT NULL \
               UNION ALL \
               SELECT 'visitors', count(DISTINCT visitor) \
                 FROM planscape.analytics_events WHERE {DAY} AND visitor IS NOT NULL \
             ) m WHERE m.value > 0"
        ),
        // Scenario run time by outcome.
        format!(
            "INSERT INTO planscape.analytics_daily (day, metric, key, value) \
             SELECT date '1970-01-01' + $1::int4, 'scenario_ms', coalesce(detail, ''), sum(duration_ms) \
             FROM planscape.analytics_events \
             WHERE {DAY} AND kind = 'scenario_run' AND duration_ms IS NOT NULL \
             GROUP BY coalesce(detail, '')"
        ),
        "DELETE FROM planscape.analytics_plan_points WHERE day = date '1970-01-01' + $1::int4"
            .to_owned(),
        format!(
            "INSERT INTO planscape.analytics_plan_points (day, lon, lat, plans) \
             SELECT date '1970-01-01' + $1::int4, ST_X(location), ST_Y(location), count(*) \
             FROM planscape.analytics_events \
             WHERE {DAY} AND kind = 'plan_created' AND location IS NOT NULL \
             GROUP BY ST_X(location), ST_Y(location)"
        ),
    ];
    for sql in &statements {
        tx.execute(sql.as_str(), &[&day]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The days (since 1970-01-01, UTC) that have raw events.
pub async fn days_with_events(pool: &Pool) -> Result<Vec<i64>, DbError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT DISTINCT ((at AT TIME ZONE 'UTC')::date - date '1970-01-01') AS day \
             FROM planscape.analytics_events ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| i64::from(r.get::<_, i32>(0))).collect())
}

/// Deletes raw events of days before `first_kept` (days since 1970-01-01, UTC).
pub async fn prune(pool: &Pool, first_kept: i64) -> Result<u64, DbError> {
    let day = i32::try_from(first_kept).unwrap_or(0);
    let client = pool.get().await?;
    Ok(client
        .execute(
            "DELETE FROM planscape.analytics_events \
             WHERE at < (date '1970-01-01' + $1::int4)::timestamp AT TIME ZONE 'UTC'",
            &[&day],
        )
        .await?)
}
