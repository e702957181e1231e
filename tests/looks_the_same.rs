//! Smaller tiles must still look the same: a served tile and the source table are both
//! rasterized by GDAL (`gdal_rasterize`, the tile after GDAL's MVT driver decodes it,
//! the table straight from PostGIS) into the tile's 256 x 256 pixel grid, burning the
//! `fire_risk` attribute as a choropleth map would colour it, and the two images are
//! compared pixel by pixel. This covers simplification, clipping, snapping and the
//! tiny-polygon reduction of low zooms.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Scratch, TestServer, db_config, gdal_decode, unique};
use planscape::demo::{self, DemoOptions};
use planscape::tile::TileId;

/// A libpq key/value connection string for GDAL's PostgreSQL driver.
fn gdal_pg_connection() -> String {
    let config: tokio_postgres::Config = common::database_url().parse().expect("DATABASE_URL");
    let mut parts = vec![];
    if let Some(tokio_postgres::config::Host::Tcp(h)) = config.get_hosts().first() {
        parts.push(format!("host={h}"));
    }
    if let Some(p) = config.get_ports().first() {
        parts.push(format!("port={p}"));
    }
    if let Some(d) = config.get_dbname() {
        parts.push(format!("dbname={d}"));
    }
    if let Some(u) = config.get_user() {
        parts.push(format!("user={u}"));
    }
    if let Some(pw) = config.get_password() {
        parts.push(format!("password={}", String::from_utf8_lossy(pw)));
    }
    format!("PG:{}", parts.join(" "))
}

/// Rasterizes `source` (any OGR datasource, optionally with SQL) over the tile into a
/// 256 x 256 float grid; -1 where nothing is drawn.
fn rasterize(source: &str, sql: Option<&str>, tile: TileId, out: &Path) -> Vec<f32> {
    let b = tile.bounds();
    let mut cmd = Command::new("gdal_rasterize");
    cmd.args([
        "-q",
        "-of",
        "ENVI",
        "-ot",
        "Float32",
        "-a",
        "fire_risk",
        "-init",
        "-1",
        "-ts",
        "256",
        "256",
    ])
    .args(["-a_srs", "EPSG:3857", "-te"])
    .args([b.xmin, b.ymin, b.xmax, b.ymax].map(|v| format!("{v:.6}")));
    if let Some(sql) = sql {
        cmd.args(["-sql", sql]);
    }
    let status = cmd
        .arg(source)
        .arg(out)
        .status()
        .expect("gdal_rasterize runs");
    assert!(status.success(), "gdal_rasterize failed for {source}");
    let bytes = std::fs::read(out).expect("raster written");
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_tiles_rasterize_like_the_source_table() {
    let scratch = Scratch::new().await;
    let s = scratch.schema.clone();
    demo::run(
        &db_config(),
        &DemoOptions {
            schema: s.clone(),
            watersheds: 5_000,
            force: true,
        },
    )
    .await
    .expect("demo data");
    let catalog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tiles/demo.toml"))
        .expect("tiles/demo.toml")
        .replace("demo.", &format!("{s}."));
    let server = TestServer::start(&catalog).await;
    let dir = std::env::temp_dir().join(unique("raster"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let source = gdal_pg_connection();
    let sql = format!("SELECT fire_risk, ST_Transform(geom, 3857) AS geom FROM {s}.watersheds");

    // z5: cells are under a pixel (tiny-polygon reduction); z6+: simplified polygons.
    for z in [5u8, 6, 8, 10] {
        let tile = TileId::containing(-119.6, 37.8, z);
        let body = server
            .get(&format!("/tiles/watersheds/{tile}.mvt"), &[])
            .await
            .bytes()
            .await
            .expect("tile");
        let decoded = gdal_decode(&body, tile.z, tile.x, tile.y);
        let geojson = dir.join(format!("{z}.geojson"));
        std::fs::write(&geojson, decoded.to_string()).expect("write decoded tile");
        let served = rasterize(
            &geojson.to_string_lossy(),
            None,
            tile,
            &dir.join(format!("served{z}.bin")),
        );
        let reference = rasterize(&source, Some(&sql), tile, &dir.join(format!("ref{z}.bin")));
        assert_eq!(served.len(), 256 * 256);

        let covered = |v: &f32| *v >= 0.0;
        let mismatched = served
            .iter()
            .zip(&reference)
            .filter(|(a, b)| covered(a) != covered(b))
            .count();
        let both: Vec<(f32, f32)> = served
            .iter()
            .zip(&reference)
            .filter(|(a, b)| covered(a) && covered(b))
            .map(|(a, b)| (*a, *b))
            .collect();
        let reference_covered = reference.iter().filter(|v| covered(v)).count();
        assert!(
            reference_covered > 1000,
            "z{z}: the tile should show the region"
        );
        let mismatch = mismatched as f64 / (256.0 * 256.0);
        let mean_diff = both
            .iter()
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum::<f64>()
            / both.len() as f64;
        eprintln!(
            "z{z}: {} bytes, coverage mismatch {:.3} %, mean |fire_risk diff| {mean_diff:.4}",
            body.len(),
            mismatch * 100.0
        );
        assert!(
            mismatch < 0.01,
            "z{z}: {:.2} % of pixels differ in coverage",
            mismatch * 100.0
        );
        assert!(
            mean_diff < 0.01,
            "z{z}: mean fire_risk difference {mean_diff}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
    scratch.cleanup().await;
}
