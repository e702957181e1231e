//! `planscape import raster`: COG in EPSG:3857 with tiles and overviews, original kept,
//! layer registered and served; bad inputs leave nothing behind.

mod common;

use std::path::Path;
use std::process::Command;

use common::cli::{assert_success, planscape, stderr};
use common::{TestServer, shared_data, unique};
use gdal::Metadata;
use planscape::tile::{TileId, mercator_to_lonlat};

/// `planscape --config CONFIG import raster INPUT --layer LAYER --dir OUT [extra...]`.
fn import(
    config: &Path,
    input: &Path,
    layer: &str,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let (config, input, out) = (
        config.to_string_lossy(),
        input.to_string_lossy(),
        out.to_string_lossy(),
    );
    let mut args = vec![
        "--config", &config, "import", "raster", &input, "--layer", layer, "--dir", &out,
    ];
    args.extend_from_slice(extra);
    planscape(&args).output().expect("run planscape")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_makes_a_servable_cog_and_registers_it() {
    let dir = std::env::temp_dir().join(unique("import"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // An input in California Albers, as the original Planscape rasters came.
    let albers = dir.join("albers.tif");
    let status = Command::new("gdalwarp")
        .args(["-q", "-t_srs", "EPSG:3310"])
        .arg(shared_data("planscape/test_raster.tif"))
        .arg(&albers)
        .status()
        .expect("gdalwarp");
    assert!(status.success());
    let config = dir.join("planscape.toml");
    let out = dir.join("rasters");
    let output = import(
        &config,
        &albers,
        "imported",
        &out,
        &["--range", "25,752", "--units", "tons/acre"],
    );
    assert_success(&output);
    assert_eq!(files_in(&out), ["imported.source.tif", "imported.tif"]);

    let cog = gdal::Dataset::open(out.join("imported.tif")).expect("open COG");
    let mercator = gdal::spatial_ref::SpatialRef::from_epsg(3857).expect("srs");
    assert!(
        cog.spatial_ref().expect("srs") == mercator,
        "COG is in EPSG:3857"
    );
    let layout = cog.metadata_item("LAYOUT", "IMAGE_STRUCTURE");
    assert_eq!(layout.as_deref(), Some("COG"));
    let band = cog.rasterband(1).expect("band");
    let side = planscape::import::COG_BLOCK_SIZE;
    assert_eq!(band.block_size(), (side, side));
    assert!(band.overview_count().expect("overviews") >= 1);
    assert_eq!(band.no_data_value(), Some(-999.0));
    let original = gdal::Dataset::open(out.join("imported.source.tif")).expect("open original");
    let albers_srs = gdal::spatial_ref::SpatialRef::from_epsg(3310).expect("srs");
    assert!(
        original.spatial_ref().expect("srs") == albers_srs,
        "the original keeps its CRS"
    );

    // Registered: the config now serves it, with the given range and units.
    let text = std::fs::read_to_string(&config).expect("config written");
    let styles = concat!(env!("CARGO_MANIFEST_DIR"), "/styles");
    let server = TestServer::start(&format!("styles_dir = \"{styles}\"\n{text}")).await;
    let legend: serde_json::Value = server
        .get("/tiles/imported/legend", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(legend["entries"][0]["value"], 25.0);
    assert_eq!(legend["units"], "tons/acre");
    let gt = cog.geo_transform().expect("gt");
    let (w, h) = cog.raster_size();
    let (lon, lat) = mercator_to_lonlat(
        gt[0] + gt[1] * w as f64 / 2.0,
        gt[3] + gt[5] * h as f64 / 2.0,
    );
    for z in [10u8, 12, 14] {
        let tile = TileId::containing(lon, lat, z);
        let response = server
            .get(&format!("/tiles/imported/{tile}.png"), &[])
            .await;
        assert_eq!(response.status(), 200);
        let image = image::load_from_memory(&response.bytes().await.expect("body"))
            .expect("png")
            .to_rgba8();
        let visible = image.pixels().filter(|p| p.0[3] > 0).count();
        assert!(
            visible > 1000,
            "z{z}: the imported raster shows ({visible} pixels)"
        );
    }
    server.stop().await;

    // Importing the same layer again into the same config is refused, changing nothing.
    let again = import(&config, &albers, "imported", &out, &[]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every full-resolution value of band 1.
fn values(path: &Path) -> Vec<f32> {
    let ds = gdal::Dataset::open(path).expect("open");
    let size = ds.raster_size();
    let band = ds.rasterband(1).expect("band");
    band.read_as::<f32>((0, 0), size, size, None)
        .expect("read")
        .into_shape_and_vec()
        .1
}

#[test]
fn the_fast_decode_codec_keeps_every_value_in_zstd_without_a_predictor() {
    let dir = std::env::temp_dir().join(unique("import_codec"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // Float32 values, which the compact codec stores with the floating-point predictor.
    let input = dir.join("float.tif");
    let status = Command::new("gdal_translate")
        .args(["-q", "-ot", "Float32", "-scale", "25", "752", "0", "1"])
        .arg(shared_data("planscape/test_raster.tif"))
        .arg(&input)
        .status()
        .expect("gdal_translate");
    assert!(status.success());
    let config = dir.join("planscape.toml");
    let mut imported = Vec::new();
    for (layer, codec, compression, predictor) in [
        ("compact", "compact", "DEFLATE", Some("3")),
        ("fast", "fast-decode", "ZSTD", None),
    ] {
        let out = dir.join(layer);
        let output = import(
            &config,
            &input,
            layer,
            &out,
            &["--codec", codec, "--no-register"],
        );
        assert_success(&output);
        let cog = out.join(format!("{layer}.tif"));
        let ds = gdal::Dataset::open(&cog).expect("open COG");
        assert_eq!(
            ds.metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                .as_deref(),
            Some(compression),
            "{codec}"
        );
        assert_eq!(
            ds.metadata_item("PREDICTOR", "IMAGE_STRUCTURE").as_deref(),
            predictor,
            "{codec}"
        );
        assert_eq!(
            ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        imported.push(values(&cog));
    }
    // The same values to the bit, nodata included.
    assert!(imported[0].iter().any(|v| *v > 0.0 && *v < 1.0));
    assert_eq!(imported[0].len(), imported[1].len());
    assert!(
        imported[0]
            .iter()
            .zip(&imported[1])
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_inputs_leave_nothing_behind() {
    let dir = std::env::temp_dir().join(unique("import_bad"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // A raster without a coordinate reference system.
    let no_crs = dir.join("no_crs.tif");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff");
        let ds = driver
            .create_with_band_type::<u8, _>(&no_crs, 16, 16, 1)
            .expect("create");
        drop(ds);
    }
    let config = dir.join("planscape.toml");
    let out = dir.join("rasters");
    let cases = [
        (
            shared_data("planscape/sandiego.geojson"),
            "is not a readable raster",
        ),
        (dir.join("missing.tif"), "is not a readable raster"),
        (no_crs.clone(), "no coordinate reference system"),
    ];
    for (input, message) in cases {
        let output = import(&config, &input, "x", &out, &[]);
        assert!(!output.status.success(), "{}", input.display());
        let said = stderr(&output);
        assert!(said.contains(message), "{said}");
        assert!(
            files_in(&out).is_empty(),
            "nothing written for {}",
            input.display()
        );
        assert!(!config.exists(), "config untouched");
    }
    let unknown_style = import(
        &config,
        &shared_data("planscape/test_raster.tif"),
        "x",
        &out,
        &["--style", "plaid"],
    );
    assert!(!unknown_style.status.success());
    assert!(stderr(&unknown_style).contains("plaid"));
    assert!(files_in(&out).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
