//! Criterion benches of the tile path:
//! - `encode/*`: the Rust half of a vector render (clip, snap, orient, tiny-polygon
//!   reduction, MVT encoding) on dense demo watersheds, no database involved;
//! - `render_postgis/*`: a whole render (PostGIS query + encoding) against the demo
//!   data of the embedded database, when it is reachable (`planscape demo` loaded);
//! - `raster/*`: a whole raster tile render (GDAL read + resample + style + PNG) of the
//!   real `../shared/data/planscape/test_raster.tif`, at a low and a high zoom;
//! - `cache/hit`: a cache hit, the warm-path cost per request before HTTP;
//! - `analytics/count_tile`: the usage-analytics counter every tile request adds to (60
//!   layers known), to set against `cache/hit`.
//!
//! Run: `cargo bench --bench tiles`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use geo_types::{Coord, LineString, MultiPolygon, Polygon};
use planscape::cache::{TileCache, TileKey};
use planscape::demo::region::SIERRA_NEVADA;
use planscape::demo::watersheds;
use planscape::source::vector::encode::{Feature, FeatureGeom, PropValue, encode_layer};
use planscape::tile::{EncodedTile, TileFormat, TileId, lonlat_to_mercator};

/// Demo watersheds in EPSG:3857 that touch `tile`, as the database would return them.
fn features_for(all: &[watersheds::Watershed], tile: TileId) -> Vec<Feature> {
    let b = tile.bounds();
    all.iter()
        .filter_map(|w| {
            let ring: Vec<Coord<f64>> = w
                .ring
                .iter()
                .map(|&(lon, lat)| {
                    let (x, y) = lonlat_to_mercator(lon, lat);
                    Coord { x, y }
                })
                .collect();
            let (mut xmin, mut ymin, mut xmax, mut ymax) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for c in &ring {
                xmin = xmin.min(c.x);
                ymin = ymin.min(c.y);
                xmax = xmax.max(c.x);
                ymax = ymax.max(c.y);
            }
            if xmax < b.xmin || xmin > b.xmax || ymax < b.ymin || ymin > b.ymax {
                return None;
            }
            let props = vec![
                (0, PropValue::Str(w.huc12.clone())),
                (1, PropValue::Str(w.name.clone())),
                (2, PropValue::Float(w.area_acres)),
                (3, PropValue::Float(w.elevation_m)),
                (4, PropValue::Float(w.fire_risk)),
            ];
            let geom = MultiPolygon(vec![Polygon::new(LineString(ring), vec![])]);
            Some(Feature {
                id: Some(w.id as u64),
                props,
                geom: FeatureGeom::Full(geom.into()),
            })
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let all = watersheds::generate(SIERRA_NEVADA, 50_000);
    let names: Vec<String> = ["huc12", "name", "area_acres", "elevation_m", "fire_risk"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for z in [10u8, 12] {
        let tile = TileId::containing(-119.6, 37.8, z);
        let features = features_for(&all, tile);
        let bounds = tile.bounds();
        c.bench_function(&format!("encode/z{z}_{}_features", features.len()), |b| {
            b.iter(|| encode_layer("watersheds", &bounds, &names, black_box(&features)))
        });
    }
}

fn render_postgis(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return;
    };
    let config = planscape::config::DatabaseConfig {
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| planscape::config::EMBEDDED_DATABASE_URL.to_owned()),
        ..Default::default()
    };
    let layer: planscape::config::VectorLayerConfig = match toml::from_str(
        "table = \"demo.watersheds\"\nid = \"id\"\nproperties = [\"huc12\", \"name\", \"area_acres\", \"elevation_m\", \"fire_risk\"]",
    ) {
        Ok(l) => l,
        Err(_) => return,
    };
    let prepared = runtime.block_on(async {
        let client = planscape::db::connect(&config).await.ok()?;
        let source =
            planscape::source::vector::VectorSource::inspect(&client, "watersheds", &layer)
                .await
                .ok()?;
        let pool = planscape::db::create_pool(&config).await.ok()?;
        Some((Arc::new(source), pool))
    });
    let Some((source, pool)) = prepared else {
        eprintln!("render_postgis: skipped (no database with `planscape demo` data reachable)");
        return;
    };
    for z in [10u8, 12] {
        let tile = TileId::containing(-119.6, 37.8, z);
        c.bench_function(&format!("render_postgis/z{z}"), |b| {
            b.iter(|| runtime.block_on(source.render(&pool, black_box(tile))))
        });
    }
}

fn cache_hit(c: &mut Criterion) {
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return;
    };
    let cache = TileCache::new(64 << 20);
    let key = TileKey {
        layer: 0,
        version: 1,
        tile: TileId {
            z: 10,
            x: 171,
            y: 395,
        },
        format: TileFormat::Mvt,
        scale: 1,
    };
    let tile = vec![7u8; 120_000];
    runtime.block_on(async {
        let _ = cache
            .get_or_render(key, async {
                Ok::<_, planscape::source::SourceError>(EncodedTile::new(tile, TileFormat::Mvt))
            })
            .await;
    });
    c.bench_function("cache/hit", |b| {
        b.iter(|| {
            runtime.block_on(cache.get_or_render(black_box(key), async {
                Err(planscape::source::SourceError::Internal(
                    "a hit must not render".into(),
                ))
            }))
        })
    });
}

fn raster(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("../shared/data/planscape/test_raster.tif");
    let config: planscape::config::RasterLayerConfig = match toml::from_str(&format!(
        "path = \"{}\"\nstyle = \"viridis\"\nrange = [25, 752]",
        path.display()
    )) {
        Ok(c) => c,
        Err(_) => return,
    };
    let source = match planscape::source::raster::RasterSource::inspect(
        "bench",
        &config,
        &root.join("styles"),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("raster: skipped ({e})");
            return;
        }
    };
    let (lon, lat) = planscape::tile::mercator_to_lonlat(
        (source.extent.xmin + source.extent.xmax) / 2.0,
        (source.extent.ymin + source.extent.ymax) / 2.0,
    );
    for z in [11u8, 15] {
        let bounds = TileId::containing(lon, lat, z).bounds();
        c.bench_function(&format!("raster/z{z}_png"), |b| {
            b.iter(|| source.render_blocking(black_box(&bounds), 256, TileFormat::Png))
        });
    }
}

fn count_tile(c: &mut Criterion) {
    let counter = planscape::analytics::tile_counts::TileCounter::default();
    let layers: Vec<String> = (0..60)
        .map(|i| format!("sierra_nevada_condition_{i}"))
        .collect();
    for layer in &layers {
        counter.count(layer, 10);
    }
    let mut i = 0usize;
    c.bench_function("analytics/count_tile", |b| {
        b.iter(|| {
            i = (i + 1) % layers.len();
            counter.count(black_box(&layers[i]), black_box(10));
        })
    });
}

criterion_group!(
    benches,
    encode,
    render_postgis,
    raster,
    cache_hit,
    count_tile
);
criterion_main!(benches);
