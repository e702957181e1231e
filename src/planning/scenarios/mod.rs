//! Scenarios: rank where to treat inside a plan.
//!
//! A scenario is asked for ([`ScenarioConfig`]), checked and prepared ([`prepare`]),
//! stored as `pending` ([`store::insert`]) and run in the background
//! ([`runner::spawn`]): the ranking itself is [`rank::run`]; its results are written in
//! one transaction. The liveness of runs across servers is [`super::runs`].

pub mod export;
pub mod rank;
pub mod runner;
pub mod store;

use std::collections::HashSet;

use geo_types::MultiPolygon;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_postgres::GenericClient;

use super::conditions::Conditions;
use super::geometry;
use super::plans::{self, Plan, PlanError};
use super::scan::RasterError;
use crate::db::DbError;

/// A scenario failure, mapped to HTTP in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// A field is unacceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (`priorities[0].weight`).
        field: String,
        /// Why.
        message: String,
    },
    /// No such scenario (or its plan is not visible to this user).
    #[error("no such scenario")]
    NotFound,
    /// The plan refused (not visible, role, a geometry check).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The plan's stored geometry cannot be read.
    #[error("the plan's geometry cannot be read: {0}")]
    Geometry(#[from] geometry::GeometryError),
    /// The configuration cannot be stored.
    #[error("the configuration cannot be stored: {0}")]
    Json(#[from] serde_json::Error),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] DbError),
}

impl From<tokio_postgres::Error> for ScenarioError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Database(e.into())
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Why a run failed (recorded as the scenario's reason).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The server has no conditions catalog.
    #[error("no conditions catalog")]
    NoCatalog,
    /// A priority names no condition of the region.
    #[error("unknown condition `{0}`")]
    UnknownCondition(String),
    /// A raster cannot be read, or the area not placed on it.
    #[error(transparent)]
    Raster(#[from] RasterError),
    /// A worker thread ended without its results.
    #[error("a worker failed")]
    Worker,
    /// The blocking task or the run queue failed.
    #[error("{0}")]
    Task(String),
    /// Reading or writing the run's state failed.
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Stand sizes offered, acres.
pub const STAND_SIZES: [u32; 3] = [10, 100, 500];

/// A weighted condition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Priority {
    /// A condition of the plan's region (metric, element or pillar).
    pub condition: String,
    /// Its weight (0 to 1,000,000; not all zero).
    #[schema(minimum = 0, maximum = 1000000)]
    pub weight: f64,
}

/// What a scenario asks for.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Name.
    pub name: String,
    /// Weighted conditions (at least one; weights not all zero).
    #[schema(min_items = 1)]
    pub priorities: Vec<Priority>,
    /// Stand size in acres: 10, 100 or 500.
    pub stand_size_acres: u32,
    /// Largest share of the planning area to treat, in (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub max_treatment_share: f64,
    /// Most project areas (1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_project_areas: u32,
    /// Areas to leave out (GeoJSON Polygon/MultiPolygon, longitude/latitude).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub exclude: Option<Value>,
}

/// Checks a scenario against the catalog; the error names the field.
pub fn check(
    config: &ScenarioConfig,
    conditions: Option<&Conditions>,
    region: &str,
) -> Result<(), ScenarioError> {
    let field = |f: &str, m: String| Err(invalid(f, m));
    let name = config.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return field(
            "name",
            "must be 1 to 200 characters, without control characters".into(),
        );
    }
    if !STAND_SIZES.contains(&config.stand_size_acres) {
        return field(
            "stand_size_acres",
            format!("must be one of {STAND_SIZES:?}"),
        );
    }
    if !(config.max_treatment_share > 0.0 && config.max_treatment_share <= 1.0) {
        return field("max_treatment_share", "must be in (0, 1]".into());
    }
    if config.max_project_areas == 0 || config.max_project_areas > 1000 {
        return field("max_project_areas", "must be 1 to 1000".into());
    }
    if config.priorities.is_empty() {
        return field("priorities", "name at least one condition".into());
    }
    let Some(conditions) = conditions else {
        return field("priorities", "no conditions catalog is configured".into());
    };
    let mut seen = HashSet::new();
    for (i, p) in config.priorities.iter().enumerate() {
        if !(p.weight.is_finite() && (0.0..=1e6).contains(&p.weight)) {
            return field(
                &format!("priorities[{i}].weight"),
                "must be a number from 0 to 1,000,000".into(),
            );
        }
        if conditions.node(region, &p.condition).is_none() {
            return field(
                &format!("priorities[{i}].condition"),
                format!("`{}` is not a condition of region `{region}`", p.condition),
            );
        }
        if !seen.insert(&p.condition) {
            return field(
                &format!("priorities[{i}].condition"),
                "appears twice".into(),
            );
        }
    }
    if config.priorities.iter().all(|p| p.weight == 0.0) {
        return field("priorities", "the weights are all zero".into());
    }
    Ok(())
}

/// A checked scenario, ready to store and run.
#[derive(Debug)]
pub struct Job {
    /// What was asked (excluded areas as a bare geometry, as stored).
    pub config: ScenarioConfig,
    /// The plan.
    pub plan: Plan,
    /// The plan's area (EPSG:4326).
    pub shape: MultiPolygon<f64>,
    /// The areas to leave out (EPSG:4326).
    pub exclude: Option<MultiPolygon<f64>>,
}

/// Checks `config` for `plan` (the fields, the budget against the stand size, the
/// excluded areas with PostGIS) and prepares its run. `max_vertices` bounds the excluded
/// areas as it bounds plans.
pub async fn prepare(
    client: &impl GenericClient,
    conditions: Option<&Conditions>,
    plan: Plan,
    mut config: ScenarioConfig,
    max_vertices: usize,
) -> Result<Job, ScenarioError> {
    check(&config, conditions, &plan.region)?;
    let budget = config.max_treatment_share * plan.area_acres;
    if budget < f64::from(config.stand_size_acres) {
        return Err(invalid(
            "stand_size_acres",
            format!(
                "the budget ({budget:.0} acres: max_treatment_share of the plan's {:.0}) holds no stand of {} acres",
                plan.area_acres, config.stand_size_acres
            ),
        ));
    }
    let exclude = match &config.exclude {
        Some(value) => {
            let (bare, _) = geometry::extract(value, max_vertices)
                .map_err(|e| invalid("exclude", e.to_string()))?;
            plans::check_shape(client, &bare.to_string(), "exclude").await?;
            let shape =
                geometry::to_multipolygon(&bare).map_err(|e| invalid("exclude", e.to_string()))?;
            // Stored is the bare geometry, not a Feature's properties (free text,
            // possibly with characters PostgreSQL's jsonb refuses).
            config.exclude = Some(bare);
            Some(shape)
        }
        None => None,
    };
    let shape = geometry::to_multipolygon(plan.geometry.as_ref().unwrap_or(&Value::Null))?;
    Ok(Job {
        config,
        plan,
        shape,
        exclude,
    })
}
