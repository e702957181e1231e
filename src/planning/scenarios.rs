//! Scenarios: rank where to treat inside a plan.
//!
//! A run lays hexagonal stands over the planning area (EPSG:5070), computes each stand's
//! mean of every priority's normalized raster in one pass per raster, scores stands by the
//! weighted mean, then grows project areas: the best unassigned stand seeds an area, which
//! takes its best-scoring neighbours until it holds its share of the treatment budget;
//! areas never exceed the budget in total nor the maximum count, and are ranked by mean
//! score. Runs happen in the background; the result is written in one transaction.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::conditions::Conditions;
use super::stands::{self, Stand};

/// Stand sizes offered, acres.
pub const STAND_SIZES: [u32; 3] = [10, 100, 500];

/// A weighted condition.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Priority {
    /// A condition of the plan's region (metric, element or pillar).
    pub condition: String,
    /// Its weight (>= 0; not all zero).
    pub weight: f64,
}

/// What a scenario asks for.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    /// Name.
    pub name: String,
    /// Weighted conditions.
    pub priorities: Vec<Priority>,
    /// Stand size in acres: 10, 100 or 500.
    pub stand_size_acres: u32,
    /// Largest share of the planning area to treat, in (0, 1].
    pub max_treatment_share: f64,
    /// Most project areas.
    pub max_project_areas: u32,
    /// Areas to leave out (GeoJSON Polygon/MultiPolygon, longitude/latitude).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub exclude: Option<Value>,
}

/// A project area found by a run.
#[derive(Debug, Clone)]
pub struct ProjectArea {
    /// 1 = best.
    pub rank: i32,
    /// Mean score of its stands.
    pub score: f64,
    /// Its stands' hexagons (EPSG:5070) as WKT.
    pub hexagons: Vec<String>,
    /// Acres.
    pub acres: f64,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Stands laid over the area.
    pub stands: usize,
    /// Stands with a score (data for every priority).
    pub scored_stands: usize,
    /// Treatment budget, acres.
    pub budget_acres: f64,
    /// Acres in project areas.
    pub treated_acres: f64,
    /// Project areas.
    #[serde(skip)]
    pub areas: Vec<ProjectArea>,
}

/// Checks a scenario against the catalog; the error names the field.
pub fn check(
    config: &ScenarioConfig,
    conditions: Option<&Conditions>,
    region: &str,
) -> Result<(), (String, String)> {
    let field = |f: &str, m: String| Err((f.to_owned(), m));
    let name = config.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return field("name", "must be 1 to 200 characters".into());
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
        if !(p.weight.is_finite() && p.weight >= 0.0) {
            return field(
                &format!("priorities[{i}].weight"),
                "must be a number >= 0".into(),
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

#[derive(PartialEq)]
struct Candidate(f64, usize);
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// Runs a scenario over a plan (blocking: raster reads and geometry).
pub fn run(
    config: &ScenarioConfig,
    conditions: &Conditions,
    region: &str,
    plan: &geo_types::MultiPolygon<f64>,
    plan_acres: f64,
    exclude: Option<&geo_types::MultiPolygon<f64>>,
) -> Result<Outcome, String> {
    let area = stands::to_albers(plan)?;
    let exclude = exclude.map(stands::to_albers).transpose()?;
    let acres = f64::from(config.stand_size_acres);
    let stands: Vec<Stand> = stands::hex_grid(&area, acres, exclude.as_ref());
    // Every priority's means, one pass per raster, rasters in parallel.
    let nodes: Vec<_> = config
        .priorities
        .iter()
        .map(|p| {
            conditions
                .node(region, &p.condition)
                .map(|n| (n.normalized.clone(), p.weight))
                .ok_or_else(|| format!("unknown condition `{}`", p.condition))
        })
        .collect::<Result<_, _>>()?;
    let shared = Arc::new(stands);
    let means: Vec<Result<Vec<Option<f64>>, String>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunks: Vec<Vec<(usize, std::path::PathBuf)>> = (0..workers)
            .map(|w| {
                nodes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % workers == w)
                    .map(|(i, (p, _))| (i, p.clone()))
                    .collect()
            })
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let stands = Arc::clone(&shared);
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, path)| (i, stands::stand_means(&path, &stands)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out: Vec<Option<Result<Vec<Option<f64>>, String>>> =
            (0..nodes.len()).map(|_| None).collect();
        for h in handles {
            if let Ok(results) = h.join() {
                for (i, r) in results {
                    out[i] = Some(r);
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err("a worker failed".into())))
            .collect()
    });
    let means: Vec<Vec<Option<f64>>> = means.into_iter().collect::<Result<_, _>>()?;
    let stands = shared;
    let total_weight: f64 = nodes.iter().map(|(_, w)| w).sum();
    let scores: Vec<Option<f64>> = (0..stands.len())
        .map(|s| {
            let mut sum = 0.0;
            for (k, (_, w)) in nodes.iter().enumerate() {
                sum += w * means[k][s]?;
            }
            Some(sum / total_weight)
        })
        .collect();
    let budget_acres = config.max_treatment_share * plan_acres;
    let max_stands = (budget_acres / acres).floor() as usize;
    let per_area = max_stands
        .div_ceil(config.max_project_areas as usize)
        .max(1);
    let index: HashMap<(i64, i64), usize> = stands
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.q, s.r), i))
        .collect();
    let mut order: Vec<usize> = (0..stands.len()).filter(|&i| scores[i].is_some()).collect();
    order.sort_by(|&a, &b| {
        scores[b]
            .unwrap_or(f64::MIN)
            .total_cmp(&scores[a].unwrap_or(f64::MIN))
            .then(a.cmp(&b))
    });
    let mut assigned = vec![false; stands.len()];
    let mut total = 0usize;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &seed in &order {
        if groups.len() >= config.max_project_areas as usize || total >= max_stands {
            break;
        }
        if assigned[seed] {
            continue;
        }
        let mut group = Vec::new();
        let mut frontier = BinaryHeap::new();
        frontier.push(Candidate(scores[seed].unwrap_or(f64::MIN), seed));
        let mut queued = HashSet::from([seed]);
        while let Some(Candidate(_, s)) = frontier.pop() {
            if group.len() >= per_area || total >= max_stands {
                break;
            }
            if assigned[s] {
                continue;
            }
            assigned[s] = true;
            group.push(s);
            total += 1;
            for n in stands[s].neighbours() {
                if let Some(&j) = index.get(&n)
                    && !assigned[j]
                    && queued.insert(j)
                    && let Some(score) = scores[j]
                {
                    frontier.push(Candidate(score, j));
                }
            }
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    let mut areas: Vec<ProjectArea> = groups
        .into_iter()
        .map(|g| {
            let score = g.iter().filter_map(|&s| scores[s]).sum::<f64>() / g.len() as f64;
            let hexagons = g
                .iter()
                .map(|&s| {
                    let c = &stands[s].corners;
                    let pts: Vec<String> = c
                        .iter()
                        .chain(std::iter::once(&c[0]))
                        .map(|(x, y)| format!("{x} {y}"))
                        .collect();
                    format!("POLYGON(({}))", pts.join(","))
                })
                .collect();
            ProjectArea {
                rank: 0,
                score,
                acres: g.len() as f64 * acres,
                hexagons,
            }
        })
        .collect();
    areas.sort_by(|a, b| b.score.total_cmp(&a.score));
    for (i, a) in areas.iter_mut().enumerate() {
        a.rank = i as i32 + 1;
    }
    Ok(Outcome {
        stands: stands.len(),
        scored_stands: order.len(),
        budget_acres,
        treated_acres: areas.iter().map(|a| a.acres).sum(),
        areas,
    })
}
