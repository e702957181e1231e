//! Raster tiles end to end, checked against `gdalwarp`: for the real Planscape rasters,
//! each served tile must match gdalwarp's output for the same bounds and size (nearest),
//! styled with the same colormap, in at least 99 % of pixels, with every nodata pixel
//! transparent.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, shared_data, unique};
use planscape::style::{Colormap, Style};
use planscape::tile::{TileId, lonlat_to_mercator, mercator_to_lonlat};

const TEST_RASTER_RANGE: (f64, f64) = (25.0, 752.0);
const BIOMASS_RANGE: (f64, f64) = (0.0, 225.0);

fn styles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("styles")
}

fn config(extra: &str) -> String {
    format!(
        "styles_dir = \"{styles}\"\n\
         [layers.test_raster]\ntype = \"raster\"\npath = \"{test}\"\nstyle = \"viridis\"\nrange = [25, 752]\nunits = \"tons/acre\"\n\
         [layers.biomass]\ntype = \"raster\"\npath = \"{biomass}\"\nstyle = \"turbo\"\nrange = [0, 225]\n\
         [layers.bands]\ntype = \"raster\"\npath = \"{test}\"\nstyle = \"condition_bands\"\n{extra}",
        styles = styles().display(),
        test = shared_data("planscape/test_raster.tif").display(),
        biomass = shared_data("planscape/Baseline_2026_aboveground_total_live.tif").display(),
    )
}

/// Centre of a raster in longitude/latitude (via GDAL).
fn center_of(path: &Path) -> (f64, f64) {
    let ds = gdal::Dataset::open(path).expect("open raster");
    let gt = ds.geo_transform().expect("geotransform");
    let (w, h) = ds.raster_size();
    mercator_to_lonlat(
        gt[0] + gt[1] * w as f64 / 2.0,
        gt[3] + gt[5] * h as f64 / 2.0,
    )
}

/// `gdalwarp` of `src` to the tile grid: the values, with NaN for nodata.
fn gdalwarp(src: &Path, tile: TileId, size: usize, dir: &Path) -> Vec<f64> {
    let b = tile.bounds();
    let out = dir.join(format!("{}.tif", unique("warp")));
    let status = Command::new("gdalwarp")
        .args([
            "-q",
            "-overwrite",
            "-t_srs",
            "EPSG:3857",
            "-r",
            "near",
            "-ot",
            "Float64",
            "-te",
        ])
        .args([b.xmin, b.ymin, b.xmax, b.ymax].map(|v| format!("{v:.9}")))
        .args(["-ts", &size.to_string(), &size.to_string()])
        .arg(src)
        .arg(&out)
        .status()
        .expect("gdalwarp runs");
    assert!(status.success(), "gdalwarp failed");
    let ds = gdal::Dataset::open(&out).expect("open warped");
    let band = ds.rasterband(1).expect("band");
    let nodata = band.no_data_value();
    let values = band
        .read_as::<f64>((0, 0), (size, size), (size, size), None)
        .expect("read")
        .into_shape_and_vec()
        .1;
    let _ = std::fs::remove_file(&out);
    values
        .into_iter()
        .map(|v| {
            if Some(v) == nodata || v.is_nan() {
                f64::NAN
            } else {
                v
            }
        })
        .collect()
}

fn decode(body: &[u8]) -> Vec<u8> {
    image::load_from_memory(body)
        .expect("a decodable image")
        .to_rgba8()
        .into_raw()
}

/// The colour tiles draw `v` with: ramps are drawn from their 256-colour palette (the
/// palette's own distance from the exact ramp is checked in `style`'s unit tests).
fn drawn(map: &Colormap, v: f64) -> [u8; 4] {
    match map.ramp_palette() {
        Some(ramp) => ramp.colors()[usize::from(ramp.index(v))],
        None => map.color(v),
    }
}

/// Compares a served image with the styled gdalwarp reference.
fn compare(served: &[u8], reference: &[f64], map: &Colormap, what: &str) -> (usize, usize) {
    assert_eq!(served.len(), reference.len() * 4, "{what}: size");
    let mut same = 0;
    let mut nodata = 0;
    for (px, &v) in served.chunks_exact(4).zip(reference) {
        if v.is_nan() {
            nodata += 1;
            assert_eq!(px[3], 0, "{what}: a nodata pixel must be transparent");
        }
        if px == drawn(map, v) || (v.is_nan() && px[3] == 0) {
            same += 1;
        }
    }
    let share = same as f64 / reference.len() as f64;
    assert!(
        share >= 0.99,
        "{what}: only {:.2} % of pixels match gdalwarp",
        share * 100.0
    );
    (same, nodata)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_match_gdalwarp_for_the_planscape_rasters() {
    let server = TestServer::start(&config("")).await;
    let dir = std::env::temp_dir().join(unique("gdalwarp"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let cases = [
        (
            "test_raster",
            "planscape/test_raster.tif",
            "viridis",
            TEST_RASTER_RANGE,
        ),
        (
            "biomass",
            "planscape/Baseline_2026_aboveground_total_live.tif",
            "turbo",
            BIOMASS_RANGE,
        ),
    ];
    let mut nodata_seen = 0;
    for (layer, file, style, range) in cases {
        let src = shared_data(file);
        let map = Style::load(&styles(), style)
            .expect("style")
            .resolve(Some(range))
            .expect("colormap");
        let (lon, lat) = center_of(&src);
        // Several zooms, the centre tile and one on the data's edge (half outside).
        let ds = gdal::Dataset::open(&src).expect("open");
        let gt = ds.geo_transform().expect("gt");
        let corner = mercator_to_lonlat(gt[0] + 10.0, gt[3] - 10.0);
        let mut tiles = vec![];
        for z in [9u8, 11, 12, 13, 14, 15] {
            tiles.push(TileId::containing(lon, lat, z));
        }
        tiles.push(TileId::containing(corner.0, corner.1, 14));
        for tile in tiles {
            for (scale, suffix, ext) in [(1usize, "", "png"), (2, "@2x", "png"), (1, "", "webp")] {
                let path = format!(
                    "/tiles/{layer}/{}/{}/{}{suffix}.{ext}",
                    tile.z, tile.x, tile.y
                );
                let response = server.get(&path, &[]).await;
                assert_eq!(response.status(), 200, "{path}");
                assert_eq!(
                    response.headers()["content-type"],
                    format!("image/{ext}").as_str()
                );
                let served = decode(&response.bytes().await.expect("body"));
                let reference = gdalwarp(&src, tile, 256 * scale, &dir);
                let (_, nodata) = compare(&served, &reference, &map, &path);
                nodata_seen += nodata;
            }
        }
    }
    assert!(nodata_seen > 10_000, "the comparison covered nodata pixels");

    // Far from the data: a small, fully transparent image.
    let far = server.get("/tiles/test_raster/12/100/100.png", &[]).await;
    assert_eq!(far.status(), 200);
    let body = far.bytes().await.expect("body");
    assert!(body.len() < 200);
    assert!(decode(&body).chunks_exact(4).all(|p| p[3] == 0));
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_in_california_albers_renders_like_its_mercator_twin() {
    let dir = std::env::temp_dir().join(unique("albers"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let albers = dir.join("test_raster_3310.tif");
    let status = Command::new("gdalwarp")
        .args(["-q", "-t_srs", "EPSG:3310", "-r", "near"])
        .arg(shared_data("planscape/test_raster.tif"))
        .arg(&albers)
        .status()
        .expect("gdalwarp runs");
    assert!(status.success());
    let extra = format!(
        "[layers.albers]\ntype = \"raster\"\npath = \"{}\"\nstyle = \"viridis\"\nrange = [25, 752]\n",
        albers.display()
    );
    let server = TestServer::start(&config(&extra)).await;
    let (lon, lat) = center_of(&shared_data("planscape/test_raster.tif"));
    for z in [11u8, 13, 15] {
        let tile = TileId::containing(lon, lat, z);
        let twin = decode(
            &server
                .get(&format!("/tiles/test_raster/{tile}.png"), &[])
                .await
                .bytes()
                .await
                .expect("body"),
        );
        let warped = decode(
            &server
                .get(&format!("/tiles/albers/{tile}.png"), &[])
                .await
                .bytes()
                .await
                .expect("body"),
        );
        let n = twin.len() / 4;
        let coverage_diff = twin
            .chunks_exact(4)
            .zip(warped.chunks_exact(4))
            .filter(|(a, b)| (a[3] == 0) != (b[3] == 0))
            .count();
        let channel_diff: f64 = twin
            .chunks_exact(4)
            .zip(warped.chunks_exact(4))
            .filter(|(a, b)| a[3] != 0 && b[3] != 0)
            .map(|(a, b)| {
                (0..3)
                    .map(|k| (f64::from(a[k]) - f64::from(b[k])).abs())
                    .sum::<f64>()
                    / 3.0
            })
            .sum::<f64>()
            / n as f64;
        eprintln!(
            "z{z}: coverage differs in {:.2} %, mean channel difference {channel_diff:.2}",
            coverage_diff as f64 * 100.0 / n as f64
        );
        // Two nearest-neighbour resamplings (to 3310, back to 3857) move values, and the
        // edges of the many nodata holes, by up to a source pixel (measured: 3.8 % of
        // pixels at z11, fewer when zoomed in).
        assert!(
            (coverage_diff as f64) < 0.06 * n as f64,
            "z{z}: coverage differs in {coverage_diff} pixels"
        );
        assert!(
            channel_diff < 12.0,
            "z{z}: mean channel difference {channel_diff}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legends_list_the_stops_and_classes() {
    let server = TestServer::start(&config("")).await;
    let legend: serde_json::Value = server
        .get("/tiles/test_raster/legend", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(legend["type"], "ramp");
    let entries = legend["entries"].as_array().expect("entries");
    let values: Vec<f64> = entries.iter().filter_map(|e| e["value"].as_f64()).collect();
    assert_eq!(values, [25.0, 206.75, 388.5, 570.25, 752.0]);
    assert_eq!(entries[0]["color"], "#fde725");
    assert_eq!(entries[0]["units"], "tons/acre");
    assert_eq!(entries[4]["label"], "Excellent");

    let bands: serde_json::Value = server
        .get("/tiles/bands/legend.json", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bands["type"], "classes");
    let labels: Vec<&str> = bands["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["label"].as_str())
        .collect();
    assert_eq!(labels, ["Poor", "Fair", "Ok", "Good", "Excellent"]);

    let png = server.get("/tiles/test_raster/legend.png", &[]).await;
    assert_eq!(png.headers()["content-type"], "image/png");
    let image = image::load_from_memory(&png.bytes().await.expect("body"))
        .expect("png")
        .to_rgba8();
    assert_eq!(image.dimensions(), (32, 256));
    // Top is the highest stop's colour, bottom the lowest.
    let top = image.get_pixel(0, 0).0;
    assert!(
        (i32::from(top[0]) - 0x44).abs() <= 3 && (i32::from(top[2]) - 0x54).abs() <= 3,
        "{top:?}"
    );
    let bottom = image.get_pixel(0, 255).0;
    assert!((i32::from(bottom[0]) - 0xfd).abs() <= 3 && (i32::from(bottom[1]) - 0xe7).abs() <= 3);
    let negotiated = server
        .get("/tiles/test_raster/legend", &[("accept", "image/png")])
        .await;
    assert_eq!(negotiated.headers()["content-type"], "image/png");

    let tj: serde_json::Value = server
        .get("/tiles/test_raster", &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(tj["format"], "png");
    assert_eq!(
        tj["tiles"][0],
        format!("{}/tiles/test_raster/{{z}}/{{x}}/{{y}}.png", server.base)
    );
    assert_eq!(
        tj["legend"],
        format!("{}/tiles/test_raster/legend", server.base)
    );
    let b = tj["bounds"].as_array().expect("bounds");
    let (x, y) = lonlat_to_mercator(b[0].as_f64().unwrap_or(0.0), b[3].as_f64().unwrap_or(0.0));
    assert!(
        (x - -13_403_379.015).abs() < 1.0 && (y - 4_653_214.269).abs() < 1.0,
        "bounds are the raster's"
    );
    assert_eq!(
        server
            .get("/tiles/test_raster/legend.gif", &[])
            .await
            .status(),
        404
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_rasters_are_reported_and_the_rest_serve() {
    let dir = std::env::temp_dir().join(unique("broken"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let corrupt = dir.join("corrupt.tif");
    std::fs::write(&corrupt, b"II*\0this is not really a TIFF").expect("write");
    let test = shared_data("planscape/test_raster.tif");
    let extra = format!(
        "[layers.missing]\ntype = \"raster\"\npath = \"{missing}\"\nstyle = \"viridis\"\n\
         [layers.corrupt]\ntype = \"raster\"\npath = \"{corrupt}\"\nstyle = \"viridis\"\n\
         [layers.no_band]\ntype = \"raster\"\npath = \"{test}\"\nband = 2\nstyle = \"viridis\"\n\
         [layers.no_style]\ntype = \"raster\"\npath = \"{test}\"\nstyle = \"plaid\"\n",
        missing = dir.join("missing.tif").display(),
        corrupt = corrupt.display(),
        test = test.display(),
    );
    let server = TestServer::start(&config(&extra)).await;
    let ready = server.get("/ready", &[]).await;
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.expect("json");
    let broken = ready["broken_layers"].as_array().expect("list");
    let error = |layer: &str| {
        broken
            .iter()
            .find(|b| b["layer"] == layer)
            .and_then(|b| b["error"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(broken.len(), 4, "{broken:?}");
    assert!(error("missing").contains("missing.tif"));
    assert!(error("corrupt").contains("corrupt.tif"));
    assert!(error("no_band").contains("band 2"));
    assert!(error("no_style").contains("plaid"));
    for layer in ["missing", "corrupt", "no_band", "no_style"] {
        let r = server
            .get(&format!("/tiles/{layer}/12/679/1573.png"), &[])
            .await;
        assert_eq!(r.status(), 503, "{layer}");
    }
    assert_eq!(
        server
            .get("/tiles/test_raster/12/679/1573.png", &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        server
            .get("/tiles/test_raster/12/679/1573.mvt", &[])
            .await
            .status(),
        404
    );
    assert_eq!(
        server
            .get("/tiles/test_raster/12/679/1573@3x.png", &[])
            .await
            .status(),
        400
    );
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}

/// `gdallocationinfo -valonly -wgs84`: the value GDAL reads at a point, `None` off the
/// file.
fn gdallocationinfo(src: &Path, lon: f64, lat: f64) -> Option<f64> {
    let out = Command::new("gdallocationinfo")
        .args(["-valonly", "-wgs84"])
        .arg(src)
        .args([lon.to_string(), lat.to_string()])
        .output()
        .expect("gdallocationinfo runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_values_match_gdallocationinfo_and_the_tiles() {
    let server = TestServer::start(&config("")).await;
    let src = shared_data("planscape/test_raster.tif");
    let ds = gdal::Dataset::open(&src).expect("open");
    let gt = ds.geo_transform().expect("gt");
    let (w, h) = ds.raster_size();
    let nodata = ds.rasterband(1).expect("band").no_data_value();
    let map = Style::load(&styles(), "viridis")
        .expect("style")
        .resolve(Some(TEST_RASTER_RANGE))
        .expect("colormap");
    let point = |layer: &str, lon: f64, lat: f64| {
        let server = &server;
        let path = format!("/tiles/{layer}/point?lon={lon}&lat={lat}");
        async move {
            let r = server.get(&path, &[]).await;
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.expect("json"))
        }
    };
    // A grid over the raster and a margin around it, off the pixel grid.
    let (mut valued, mut empty) = (0, 0);
    for i in 0..9 {
        for j in 0..9 {
            let x = gt[0] + gt[1] * w as f64 * (-0.05 + 1.1 * f64::from(i) / 8.0) + 7.3;
            let y = gt[3] + gt[5] * h as f64 * (-0.05 + 1.1 * f64::from(j) / 8.0) - 3.1;
            let (lon, lat) = mercator_to_lonlat(x, y);
            let reference = gdallocationinfo(&src, lon, lat).filter(|v| Some(*v) != nodata);
            let (status, body) = point("test_raster", lon, lat).await;
            match reference {
                Some(v) => {
                    assert_eq!(status, 200, "{lon},{lat}: {body}");
                    assert_eq!(body["value"].as_f64(), Some(v), "{lon},{lat}");
                    assert_eq!(body["units"], "tons/acre");
                    assert!(body["band"].is_null() && body["condition"].is_null());
                    valued += 1;
                }
                None => {
                    assert_eq!(status, 422, "{lon},{lat}: {body}");
                    assert_eq!(body["error"]["code"], "no_data");
                    empty += 1;
                }
            }
        }
    }
    assert!(valued > 40 && empty > 10, "{valued} valued, {empty} empty");

    // The deepest tiles show that value: at a few pixel centres, the tile pixel under
    // the point has the value's colour.
    let tilejson: serde_json::Value = server
        .get("/tiles/test_raster", &[])
        .await
        .json()
        .await
        .expect("tilejson");
    let deepest = u8::try_from(tilejson["maxzoom"].as_u64().expect("maxzoom")).expect("zoom");
    // Three pixels with data, read from the file: the first, the middle and the last.
    let data: Vec<(usize, usize)> = {
        let band = ds.rasterband(1).expect("band");
        let values = band
            .read_as::<f64>((0, 0), (w, h), (w, h), None)
            .expect("read")
            .into_shape_and_vec()
            .1;
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan() && Some(**v) != nodata)
            .map(|(i, _)| (i % w, i / w))
            .collect()
    };
    assert!(data.len() > 1000, "the raster has data");
    for (col, row) in [data[0], data[data.len() / 2], data[data.len() - 1]] {
        let x = gt[0] + gt[1] * (col as f64 + 0.5);
        let y = gt[3] + gt[5] * (row as f64 + 0.5);
        let (lon, lat) = mercator_to_lonlat(x, y);
        let (status, body) = point("test_raster", lon, lat).await;
        assert_eq!(status, 200, "a pixel with data at {col},{row}: {body}");
        let value = body["value"].as_f64().expect("value");
        let tile = TileId::containing(lon, lat, deepest);
        let b = tile.bounds();
        let px = ((x - b.xmin) / (b.xmax - b.xmin) * 256.0).floor() as usize;
        let py = ((b.ymax - y) / (b.ymax - b.ymin) * 256.0).floor() as usize;
        let path = format!("/tiles/test_raster/{}/{}/{}.png", tile.z, tile.x, tile.y);
        let image = decode(&server.get(&path, &[]).await.bytes().await.expect("tile"));
        let i = (py * 256 + px) * 4;
        assert_eq!(image[i..i + 4], drawn(&map, value), "{path} at {px},{py}");
    }

    // A class style labels the value.
    let (x, y) = (gt[0] + gt[1] * 358.5, gt[3] + gt[5] * 331.5);
    let (lon, lat) = mercator_to_lonlat(x, y);
    let (status, body) = point("bands", lon, lat).await;
    assert_eq!(status, 200, "{body}");
    {
        let classes = Style::load(&styles(), "condition_bands")
            .expect("style")
            .resolve(None)
            .expect("colormap");
        let value = body["value"].as_f64().expect("value");
        assert_eq!(body["label"].as_str(), classes.class_label(value), "{body}");
    }

    // Bad input: 400 with a JSON error; unknown layer: 404.
    for query in [
        "lon=-120",
        "lon=abc&lat=37",
        "lon=-120&lat=91",
        "lon=181&lat=37",
        "lon=NaN&lat=37",
        "lon=-120&lat=37&band=2",
    ] {
        let r = server
            .get(&format!("/tiles/test_raster/point?{query}"), &[])
            .await;
        assert_eq!(r.status(), 400, "{query}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
    }
    let r = server.get("/tiles/nope/point?lon=-120&lat=37", &[]).await;
    assert_eq!(r.status(), 404);
    // Documented in the OpenAPI document, served from the root.
    let doc: serde_json::Value = server
        .get("/planscape-backend/openapi.json", &[])
        .await
        .json()
        .await
        .expect("json");
    let item = &doc["paths"]["/tiles/{layer}/point"];
    assert_eq!(item["servers"][0]["url"], "/", "{item}");
    assert!(item["get"]["responses"]["422"].is_object());
    server.stop().await;
}
