//! Laying hexagonal stands over a detailed planning area: the row-crossing test of
//! `planning::stands::hex_grid` against a point-in-polygon test per candidate centre
//! (`geo::Contains`, what the grid did before), on a 500,000-acre area with a wavy
//! 20,000-vertex outline and 10-acre stands (about 50,000 stands).

use criterion::{Criterion, criterion_group, criterion_main};
use geo::{BoundingRect, Contains};
use geo_types::{LineString, MultiPolygon, Point, Polygon};
use planscape::planning::stands::hex_grid;
use planscape::planning::units::M2_PER_ACRE;

fn area(vertices: u32) -> MultiPolygon<f64> {
    let radius = (500_000.0 * M2_PER_ACRE / std::f64::consts::PI).sqrt();
    let ring: Vec<(f64, f64)> = (0..=vertices)
        .map(|i| {
            let t = std::f64::consts::TAU * f64::from(i % vertices) / f64::from(vertices);
            let r = radius * (1.0 + 0.02 * (97.0 * t).sin());
            (-2_000_000.0 + r * t.cos(), 2_000_000.0 + r * t.sin())
        })
        .collect();
    MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])])
}

/// Candidate centres tested one by one against the whole outline.
fn per_point(area: &MultiPolygon<f64>, acres: f64) -> usize {
    let Some(bbox) = area.bounding_rect() else {
        return 0;
    };
    let size = (2.0 * acres * M2_PER_ACRE / (3.0 * 3f64.sqrt())).sqrt();
    let (w, h) = (3f64.sqrt() * size, 1.5 * size);
    let mut n = 0;
    for r in (bbox.min().y / h).floor() as i64 - 1..=(bbox.max().y / h).ceil() as i64 + 1 {
        let shift = r as f64 / 2.0;
        let (q0, q1) = (
            (bbox.min().x / w - shift).floor() as i64 - 1,
            (bbox.max().x / w - shift).ceil() as i64 + 1,
        );
        for q in q0..=q1 {
            if area.contains(&Point::new(w * (q as f64 + shift), r as f64 * h)) {
                n += 1;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let shape = area(20_000);
    assert_eq!(hex_grid(&shape, 10.0, None).len(), per_point(&shape, 10.0));
    let mut group = c.benchmark_group("hex grid, 500k acres, 20k vertices, 10-acre stands");
    group.sample_size(10);
    group.bench_function("row crossings (planscape)", |b| {
        b.iter(|| hex_grid(&shape, 10.0, None).len())
    });
    group.bench_function("point in polygon per centre", |b| {
        b.iter(|| per_point(&shape, 10.0))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
