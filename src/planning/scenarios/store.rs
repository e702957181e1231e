//! Scenarios and their project areas in PostGIS: the records the API shows, who may see
//! them, and a run's state changes (its results written in one transaction).

use serde::Serialize;
use serde_json::{Value, json};
use tokio_postgres::GenericClient;

use super::rank::Outcome;
use super::{ScenarioConfig, ScenarioError};
use crate::accounts::access::Action;
use crate::db::DbError;
use crate::planning::plans::{self, Plan, PlanError};

/// A scenario and, when done, its ranked project areas.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Scenario {
    /// Id.
    pub id: i64,
    /// The plan.
    pub plan_id: i64,
    /// Name.
    pub name: String,
    /// pending, running, done or failed.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// What was asked.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Stand counts and acres (when done).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Value>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Project areas as a GeoJSON FeatureCollection, best first (when done).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub project_areas: Option<Value>,
}

const SCENARIO_SQL: &str = "SELECT id, plan_id, name, status, reason, config::text, summary::text, \
    to_json(created_at)#>>'{}', to_json(finished_at)#>>'{}' FROM planscape.scenarios";

fn scenario_from(row: &tokio_postgres::Row) -> Scenario {
    let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    Scenario {
        id: row.get(0),
        plan_id: row.get(1),
        name: row.get(2),
        status: row.get(3),
        reason: row.get(4),
        config: parse(row.get(5)).unwrap_or(Value::Null),
        summary: parse(row.get(6)),
        created_at: row.get(7),
        finished_at: row.get(8),
        project_areas: None,
    }
}

/// The plan `plan_id` if `user` may do `action` on it, a hidden plan answered as a
/// missing scenario.
async fn authorize_plan(
    client: &impl GenericClient,
    plan_id: i64,
    user: i64,
    action: Action,
) -> Result<Plan, ScenarioError> {
    match plans::authorize(client, plan_id, user, action).await {
        Ok(plan) => Ok(plan),
        Err(PlanError::NotFound) => Err(ScenarioError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Scenario `id` if `user` may do `action` on its plan (`NotFound` when the scenario
/// does not exist or its plan is hidden from the user).
pub async fn authorize(
    client: &impl GenericClient,
    id: i64,
    user: i64,
    action: Action,
) -> Result<Scenario, ScenarioError> {
    let row = client
        .query_opt(&format!("{SCENARIO_SQL} WHERE id = $1"), &[&id])
        .await?
        .ok_or(ScenarioError::NotFound)?;
    let scenario = scenario_from(&row);
    authorize_plan(client, scenario.plan_id, user, action).await?;
    Ok(scenario)
}

/// The plan of scenario `id` if `user` may do `action` on it (as [`authorize`], without
/// reading the scenario).
pub async fn authorize_plan_of(
    client: &impl GenericClient,
    id: i64,
    user: i64,
    action: Action,
) -> Result<Plan, ScenarioError> {
    let plan_id: i64 = client
        .query_opt(
            "SELECT plan_id FROM planscape.scenarios WHERE id = $1",
            &[&id],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or(ScenarioError::NotFound)?;
    authorize_plan(client, plan_id, user, action).await
}

/// Stores a new scenario of `plan_id` by `user` as `pending`.
pub async fn insert(
    client: &impl GenericClient,
    plan_id: i64,
    user: i64,
    config: &ScenarioConfig,
) -> Result<Scenario, ScenarioError> {
    let stored = serde_json::to_string(config)?;
    let row = client
        .query_one(
            &format!(
                "WITH s AS (INSERT INTO planscape.scenarios (plan_id, created_by, name, config) \
                 VALUES ($1, $2, $3, $4::text::jsonb) RETURNING *) {} ",
                SCENARIO_SQL.replace("planscape.scenarios", "s")
            ),
            &[&plan_id, &user, &config.name.trim(), &stored],
        )
        .await?;
    Ok(scenario_from(&row))
}

/// The scenarios of a plan, newest first.
pub async fn list(
    client: &impl GenericClient,
    plan_id: i64,
) -> Result<Vec<Scenario>, ScenarioError> {
    let rows = client
        .query(
            &format!("{SCENARIO_SQL} WHERE plan_id = $1 ORDER BY id DESC"),
            &[&plan_id],
        )
        .await?;
    Ok(rows.iter().map(scenario_from).collect())
}

/// The project areas of scenario `id` as a GeoJSON FeatureCollection, best first.
pub async fn project_areas(
    client: &impl GenericClient,
    id: i64,
) -> Result<Option<Value>, ScenarioError> {
    let row = client
        .query_one(
            "SELECT coalesce(json_build_object('type', 'FeatureCollection', 'features', \
               coalesce(json_agg(json_build_object('type', 'Feature', 'id', id, \
                 'properties', json_build_object('rank', rank, 'score', score, 'area_acres', area_acres, 'stand_count', stand_count), \
                 'geometry', ST_AsGeoJSON(geom, 7)::json) ORDER BY rank), '[]'::json))::text, '') \
             FROM planscape.project_areas WHERE scenario_id = $1",
            &[&id],
        )
        .await?;
    let text: String = row.get(0);
    Ok(serde_json::from_str(&text).ok())
}

/// Deletes a scenario (its project areas go with it).
pub async fn delete(client: &impl GenericClient, id: i64) -> Result<(), ScenarioError> {
    client
        .execute("DELETE FROM planscape.scenarios WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

/// Marks a run as started.
pub async fn mark_running(client: &impl GenericClient, id: i64) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE planscape.scenarios SET status = 'running' WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(())
}

/// Marks a run as failed, with its reason.
pub async fn mark_failed(
    client: &impl GenericClient,
    id: i64,
    reason: &str,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE planscape.scenarios SET status = 'failed', reason = $2, finished_at = now() WHERE id = $1",
            &[&id, &reason],
        )
        .await?;
    Ok(())
}

/// Writes a run's project areas and marks it done with `summary`, in one transaction:
/// a failure leaves none of them.
pub async fn write_results(
    client: &mut deadpool_postgres::Client,
    id: i64,
    outcome: &Outcome,
    summary: &Value,
) -> Result<(), DbError> {
    let tx = client.transaction().await?;
    for area in &outcome.areas {
        tx.execute(
            "INSERT INTO planscape.project_areas (scenario_id, rank, score, area_acres, stand_count, geom) \
             VALUES ($1, $2, $3, $4, $5, ST_Multi(ST_Transform(ST_GeomFromText($6, 5070), 4326)))",
            &[&id, &area.rank, &area.score, &area.acres, &(area.stand_count as i32), &area.outline],
        )
        .await?;
    }
    tx.execute(
        "UPDATE planscape.scenarios SET status = 'done', summary = $2::text::jsonb, finished_at = now() WHERE id = $1",
        &[&id, &summary.to_string()],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The summary stored with a done run: the outcome's counts with its timings.
pub fn summary(outcome: &Outcome, seconds: f64, compute_seconds: f64) -> Value {
    let mut summary = serde_json::to_value(outcome).unwrap_or_else(|_| json!({}));
    summary["seconds"] = json!(seconds);
    summary["compute_seconds"] = json!(compute_seconds);
    summary["project_areas"] = json!(outcome.areas.len());
    summary
}
