//! The demo's conditions at another resolution (`tiles/demo-30m.toml`): the catalog's
//! metric rasters go to the folder of `[conditions] rasters` at `demo_resolution_m`, the
//! built ones to that configuration's `dir`, and the default catalog's files are left as
//! they were; a folder never mixes resolutions. Coarse pixels keep it quick: what is
//! tested is where the files go, not the pixel size.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::Scratch;
use common::cli::{assert_success, run, stderr};
use planscape::config::Config;
use planscape::planning::conditions::Conditions;

/// A catalog of one pillar, one element and two metrics whose rasters are named in
/// `default_dir`.
fn catalog(default_dir: &Path) -> String {
    let metric = |name: &str| {
        format!(
            "[[regions.pillars.elements.metrics]]\nname = \"{name}\"\ndisplay_name = \"{name}\"\n\
             raw = \"{d}/{name}.tif\"\nnormalized = \"{d}/{name}_normalized.tif\"\n\
             min_value = 0\nmax_value = 100\n\n",
            d = default_dir.display()
        )
    };
    format!(
        "[[regions]]\nname = \"sierra_nevada\"\ndisplay_name = \"Sierra Nevada\"\n\n\
         [[regions.pillars]]\nname = \"forest\"\ndisplay_name = \"Forest\"\n\n\
         [[regions.pillars.elements]]\nname = \"structure\"\ndisplay_name = \"Structure\"\n\n{}{}",
        metric("tree_mortality"),
        metric("canopy_cover")
    )
}

/// Every file under `dir` with its bytes' hash and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(snapshot(&path));
        } else {
            let bytes = std::fs::read(&path).expect("read file");
            let modified = entry.metadata().and_then(|m| m.modified()).expect("mtime");
            out.insert(path, (xxhash_rust::xxh3::xxh3_64(&bytes), modified));
        }
    }
    out
}

/// `planscape demo` with `config`: ten watersheds into `schema`, the raster layers' files
/// under `root/layers`, and `extra` arguments.
fn demo(config: &Path, schema: &str, root: &Path, extra: &[&str]) -> std::process::Output {
    let layers = root.join("layers");
    let layers = layers.to_str().expect("utf-8 path");
    let mut args = vec![
        "demo",
        "--schema",
        schema,
        "--watersheds",
        "10",
        "--rasters",
        layers,
    ];
    args.extend_from_slice(extra);
    run(config, &args)
}

/// The pixel width of a raster (EPSG:3857 metres).
fn pixel_size(path: &Path) -> f64 {
    gdal::Dataset::open(path)
        .expect("open raster")
        .geo_transform()
        .expect("geotransform")[1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fine_catalog_has_folders_of_its_own_and_leaves_the_default_untouched() {
    let scratch = Scratch::new().await;
    let root = std::env::temp_dir().join(common::unique("demo30"));
    let (default_rasters, default_built) = (root.join("rasters"), root.join("conditions"));
    let (fine_rasters, fine_built) = (root.join("rasters-fine"), root.join("conditions-fine"));
    std::fs::create_dir_all(&root).expect("root");
    let catalog_path = root.join("catalog.toml");
    std::fs::write(&catalog_path, catalog(&default_rasters)).expect("catalog");
    let config = |extra: &str, dir: &Path| {
        let text = format!(
            "[conditions]\ncatalog = \"{}\"\ndir = \"{}\"\n{extra}",
            catalog_path.display(),
            dir.display()
        );
        let path = root.join(format!("{}.toml", common::unique("config")));
        std::fs::write(&path, text).expect("config");
        path
    };
    // Like tiles/demo.toml and tiles/demo-30m.toml, with coarse pixels.
    let default_config = config("demo_resolution_m = 8000\n", &default_built);
    let fine_config = config(
        &format!(
            "rasters = \"{}\"\ndemo_resolution_m = 5000\n",
            fine_rasters.display()
        ),
        &fine_built,
    );
    let demo = |config: &Path, extra: &[&str]| demo(config, &scratch.schema, &root, extra);

    assert_success(&demo(&default_config, &[]));
    assert_success(&run(&default_config, &["conditions", "build"]));
    let before = (snapshot(&default_rasters), snapshot(&default_built));
    assert_eq!(before.0.len(), 5, "4 rasters and the resolution stamp");
    assert_eq!(before.1.len(), 2, "the element and the pillar");

    // The fine catalog: its own rasters folder and built folder.
    assert_success(&demo(&fine_config, &[]));
    assert_success(&run(&fine_config, &["conditions", "build"]));
    for name in [
        "tree_mortality",
        "tree_mortality_normalized",
        "canopy_cover",
        "canopy_cover_normalized",
    ] {
        let fine = fine_rasters.join(format!("{name}.tif"));
        let coarse = default_rasters.join(format!("{name}.tif"));
        assert!(
            pixel_size(&fine) < pixel_size(&coarse),
            "{name}: {} m against {} m",
            pixel_size(&fine),
            pixel_size(&coarse)
        );
    }
    for name in ["structure", "forest"] {
        assert!(
            fine_built
                .join("sierra_nevada")
                .join(format!("{name}.tif"))
                .exists(),
            "{name} built into the fine catalog's folder"
        );
    }
    assert_eq!(
        (snapshot(&default_rasters), snapshot(&default_built)),
        before,
        "the default catalog's files are untouched"
    );

    // What the server reads: the fine configuration's nodes point into its folders.
    let loaded = Config::load(Some(&fine_config), |_| None).expect("config");
    let conditions =
        Conditions::from_config(loaded.conditions.as_ref().expect("[conditions]")).expect("load");
    for node in conditions.nodes.values() {
        assert!(
            node.normalized.starts_with(&fine_rasters) || node.normalized.starts_with(&fine_built),
            "{}: {}",
            node.name,
            node.normalized.display()
        );
    }

    // A folder holds one resolution: another into the default folder is refused, and
    // nothing there changes.
    std::fs::remove_file(default_rasters.join("canopy_cover.tif")).expect("remove one");
    let before = snapshot(&default_rasters);
    let refused = demo(&default_config, &["--raster-resolution", "6000"]);
    assert!(!refused.status.success(), "a second resolution is refused");
    assert!(
        stderr(&refused).contains("holds demo rasters of 8000 m"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(snapshot(&default_rasters), before);

    scratch.cleanup().await;
    let _ = std::fs::remove_dir_all(&root);
}

/// `conditions build` with GDAL's block cache at 1 MiB finishes, and writes the pixels a
/// build with the default cache writes: GDAL 3.6's threaded GTiff compression deadlocked
/// once the cache filled while it wrote (the demo's catalog at 250 m hung after 16 of its
/// 25 rasters), so the build compresses on its own thread. Bounded: a hung build is
/// killed and fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_finishes_with_a_small_gdal_cache() {
    let scratch = Scratch::new().await;
    let root = std::env::temp_dir().join(common::unique("smallcache"));
    std::fs::create_dir_all(&root).expect("root");
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("tiles/conditions.toml");
    let config_for = |built: &Path| {
        let path = root.join(format!("{}.toml", common::unique("config")));
        let text = format!(
            "[conditions]\ncatalog = \"{}\"\nrasters = \"{}\"\ndir = \"{}\"\ndemo_resolution_m = 250\n",
            catalog.display(),
            root.join("rasters").display(),
            built.display()
        );
        std::fs::write(&path, text).expect("config");
        path
    };
    let (default_built, small_built) = (root.join("default"), root.join("small"));
    let default_config = config_for(&default_built);
    assert_success(&demo(&default_config, &scratch.schema, &root, &[]));
    assert_success(&run(&default_config, &["conditions", "build"]));

    let mut build =
        common::cli::planscape_config(&config_for(&small_built), &["conditions", "build"])
            .env("PLANSCAPE_GDAL_CACHE_MB", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the build");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        if let Some(status) = build.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = build.kill();
            panic!("`conditions build` with a 1 MiB GDAL cache hung");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    let built = snapshot(&default_built.join("sierra_nevada"));
    assert_eq!(built.len(), 25, "the demo's elements and pillars");
    for path in built.keys() {
        let read = |path: &Path| {
            let ds = gdal::Dataset::open(path).expect("open");
            let size = ds.raster_size();
            let band = ds.rasterband(1).expect("band");
            band.read_as::<f32>((0, 0), size, size, None)
                .expect("read")
                .data()
                .to_vec()
        };
        let name = path.file_name().expect("file name");
        let small = small_built.join("sierra_nevada").join(name);
        assert!(
            read(path) == read(&small),
            "{}: the same pixels",
            path.display()
        );
    }
    scratch.cleanup().await;
    let _ = std::fs::remove_dir_all(&root);
}
