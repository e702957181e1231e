//! The ranking itself: a run lays hexagonal stands over the planning area (EPSG:5070),
//! computes each stand's mean of every priority's normalized raster in one pass per
//! raster, scores stands by the weighted mean, then grows project areas: the best
//! unassigned stand seeds an area, which takes its best-scoring neighbours until it holds
//! its share of the treatment budget; areas never exceed the budget in total nor the
//! maximum count, and are ranked by mean score. Blocking (rasters and geometry).

use std::collections::{BinaryHeap, HashMap, HashSet};

use serde::Serialize;

use super::{RunError, ScenarioConfig};
use crate::planning::conditions::Conditions;
use crate::planning::scan;
use crate::planning::stands::{self, Stand};
use crate::planning::units::M2_PER_ACRE;

/// A project area found by a run.
#[derive(Debug, Clone)]
pub struct ProjectArea {
    /// 1 = best.
    pub rank: i32,
    /// Mean score of its stands.
    pub score: f64,
    /// Its outline (the stands' hexagons dissolved), EPSG:5070, as WKT.
    pub outline: String,
    /// Stands in it.
    pub stand_count: usize,
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
) -> Result<Outcome, RunError> {
    let t0 = std::time::Instant::now();
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
                .ok_or_else(|| RunError::UnknownCondition(p.condition.clone()))
        })
        .collect::<Result<_, _>>()?;
    let t_grid = t0.elapsed();
    // Project the stands once per raster grid, then sweep every raster (in parallel).
    let datasets: Vec<gdal::Dataset> = nodes
        .iter()
        .map(|(p, _)| scan::open(p))
        .collect::<Result<_, _>>()?;
    let mut grids: Vec<(Option<String>, stands::PixelStands)> = Vec::new();
    let mut grid_of = Vec::with_capacity(datasets.len());
    for d in &datasets {
        let wkt = d.spatial_ref().ok().and_then(|s| s.to_wkt().ok());
        match grids.iter().position(|(w, g)| *w == wkt && g.fits(d)) {
            Some(i) => grid_of.push(i),
            None => {
                grids.push((wkt, stands::PixelStands::new(d, &stands)?));
                grid_of.push(grids.len() - 1);
            }
        }
    }
    let grids: Vec<stands::PixelStands> = grids.into_iter().map(|(_, g)| g).collect();
    drop(datasets);
    let paths: Vec<std::path::PathBuf> = nodes.iter().map(|(p, _)| p.clone()).collect();
    let means: Vec<Result<Vec<Option<f64>>, RunError>> = std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(paths.len().max(1));
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (paths, grids, grid_of) = (&paths, &grids, &grid_of);
                scope.spawn(move || {
                    (0..paths.len())
                        .filter(|i| i % workers == w)
                        .map(|i| {
                            let result = scan::open(&paths[i])
                                .and_then(|d| stands::sweep(&d, &grids[grid_of[i]]));
                            (i, result.map_err(RunError::from))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out: Vec<Option<Result<Vec<Option<f64>>, RunError>>> =
            (0..paths.len()).map(|_| None).collect();
        for h in handles {
            if let Ok(results) = h.join() {
                for (i, r) in results {
                    out[i] = Some(r);
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(RunError::Worker)))
            .collect()
    });
    let means: Vec<Vec<Option<f64>>> = means.into_iter().collect::<Result<_, _>>()?;
    let t_means = t0.elapsed();
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
    // Whole hexagons reach past the plan's edge and into excluded areas: outlines are
    // clipped to what may be treated, and their acres are the clipped area's.
    let allowed = match &exclude {
        Some(e) => geo::BooleanOps::difference(&area, e),
        None => area.clone(),
    };
    let mut areas: Vec<ProjectArea> = groups
        .into_iter()
        .map(|g| {
            let score = g.iter().filter_map(|&s| scores[s]).sum::<f64>() / g.len() as f64;
            let members: Vec<&Stand> = g.iter().map(|&s| &stands[s]).collect();
            let outline = geo::BooleanOps::intersection(&stands::dissolve(&members), &allowed);
            ProjectArea {
                rank: 0,
                score,
                acres: geo::Area::unsigned_area(&outline) / M2_PER_ACRE,
                outline: wkt(&outline),
                stand_count: g.len(),
            }
        })
        .collect();
    areas.sort_by(|a, b| b.score.total_cmp(&a.score));
    tracing::debug!(grid = ?t_grid, means = ?(t_means - t_grid), grouping = ?(t0.elapsed() - t_means), "scenario run");
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

/// WKT of a MultiPolygon.
fn wkt(shape: &geo_types::MultiPolygon<f64>) -> String {
    let ring = |r: &geo_types::LineString<f64>| {
        let points: Vec<String> = r.0.iter().map(|c| format!("{} {}", c.x, c.y)).collect();
        format!("({})", points.join(","))
    };
    let polygons: Vec<String> = shape
        .0
        .iter()
        .map(|p| {
            let rings: Vec<String> = std::iter::once(p.exterior())
                .chain(p.interiors())
                .map(ring)
                .collect();
            format!("({})", rings.join(","))
        })
        .collect();
    if polygons.is_empty() {
        "MULTIPOLYGON EMPTY".into()
    } else {
        format!("MULTIPOLYGON({})", polygons.join(","))
    }
}
