//! Raster import: any GeoTIFF (or other GDAL raster) in any CRS becomes a
//! Cloud-Optimized GeoTIFF in EPSG:3857 ([`COG_BLOCK_SIZE`] px internal tiles, overviews,
//! DEFLATE or ZSTD: [`Codec`]),
//! the original is kept beside it for statistics in its own CRS, and the layer is
//! registered in the configuration file.
//!
//! Nothing half-written is left behind: outputs are written under temporary names and
//! renamed only when complete; on any error they are removed and the config is untouched.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use gdal::cpl::CslStringList;
use gdal::{Dataset, Metadata};
use indicatif::{ProgressBar, ProgressStyle};

use super::{ImportError, register};
use crate::config::Resampling;

/// The side of a written COG's internal tiles (blocks), in pixels. A read decodes whole
/// blocks, so smaller blocks decode fewer pixels outside what is asked for. Measured on
/// the 30 m demo rasters rewritten from 256 to 128 px blocks (docs/benchmarks.md): all
/// 55 conditions over a new 100,000-acre area in 137 against 171 ms, 500,000 acres in
/// 511 against 645 ms, from a cold disk 177 against 222 ms; raster tiles z7-z13 rendered
/// 25 % faster; files no larger.
pub const COG_BLOCK_SIZE: usize = 128;

/// How a COG's tiles are compressed: bytes on disk against the time to decode them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    /// DEFLATE with a predictor (the floating-point one for float data): the smallest
    /// files. For layers drawn as tiles.
    #[default]
    Compact,
    /// ZSTD level 1 without a predictor: for rasters read by the million pixels
    /// (statistics of large areas). A 30 m Float32 raster over 500,000 acres decoded in
    /// 12.7 ms against 44.5 ms for `compact`, from a file 1.7x larger (docs/benchmarks.md).
    FastDecode,
}

impl Codec {
    /// The codec a GeoTIFF was written with: ZSTD is [`Codec::FastDecode`], anything else
    /// (DEFLATE, none) [`Codec::Compact`].
    pub fn of(dataset: &Dataset) -> Self {
        match dataset
            .metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
            .as_deref()
        {
            Some("ZSTD") => Self::FastDecode,
            _ => Self::Compact,
        }
    }

    /// GDAL's GTiff creation options for it, for Float32 data (the floating-point
    /// predictor for `compact`).
    pub fn gtiff_float_options(self) -> [&'static str; 2] {
        match self {
            Self::Compact => ["COMPRESS=DEFLATE", "PREDICTOR=3"],
            Self::FastDecode => ["COMPRESS=ZSTD", "ZSTD_LEVEL=1"],
        }
    }

    /// GDAL's COG creation options for it.
    fn options(self) -> [(&'static str, &'static str); 2] {
        match self {
            Self::Compact => [("COMPRESS", "DEFLATE"), ("PREDICTOR", "YES")],
            Self::FastDecode => [("COMPRESS", "ZSTD"), ("LEVEL", "1")],
        }
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The input raster.
    pub input: PathBuf,
    /// Layer name (and output file stem).
    pub layer: String,
    /// Output folder.
    pub dir: PathBuf,
    /// Style of the registered layer.
    pub style: String,
    /// Value range of the registered layer.
    pub range: Option<[f64; 2]>,
    /// Resampling when reprojecting and for the layer.
    pub resampling: Resampling,
    /// Compression of the COG.
    pub codec: Codec,
    /// Units of the values.
    pub units: Option<String>,
    /// Config file to register the layer in (`None`: do not register).
    pub register: Option<PathBuf>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The COG.
    pub cog: PathBuf,
    /// The kept original.
    pub original: PathBuf,
}

/// Runs the import (blocking: GDAL does the work).
pub fn import_raster(opts: &ImportOptions) -> Result<Imported, ImportError> {
    register::check_new_layer(opts.register.as_deref(), &opts.layer)?;
    let src = Dataset::open(&opts.input).map_err(|_| ImportError::NotRaster(opts.input.clone()))?;
    if src.raster_count() == 0 {
        return Err(ImportError::NotRaster(opts.input.clone()));
    }
    if src.spatial_ref().is_err() {
        return Err(ImportError::NoCrs(opts.input.clone()));
    }
    std::fs::create_dir_all(&opts.dir).map_err(|e| ImportError::Io(opts.dir.clone(), e))?;
    let cog = opts.dir.join(format!("{}.tif", opts.layer));
    let original = opts.dir.join(format!("{}.source.tif", opts.layer));
    let partial = |p: &Path| p.with_extension("tif.partial");
    let outputs = [
        (partial(&cog), cog.clone()),
        (partial(&original), original.clone()),
    ];
    let result = (|| {
        write_cog(
            &src,
            &outputs[0].0,
            opts.resampling,
            opts.codec,
            opts.progress,
        )?;
        let keep_options = [
            ("TILED", "YES"),
            ("COMPRESS", "DEFLATE"),
            ("BIGTIFF", "IF_SAFER"),
        ];
        create_copy(
            &src,
            "GTiff",
            &outputs[1].0,
            &keep_options,
            opts.progress,
            "original",
        )?;
        for (from, to) in &outputs {
            std::fs::rename(from, to).map_err(|e| ImportError::Io(to.clone(), e))?;
        }
        if let Some(config) = &opts.register {
            register::append_layer(config, &opts.layer, layer_table(opts, &cog)?)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for (from, to) in &outputs {
            let _ = std::fs::remove_file(from);
            let _ = std::fs::remove_file(to);
        }
        return Err(e);
    }
    Ok(Imported { cog, original })
}

/// Writes `src` as a COG in EPSG:3857 at `dest` ([`COG_BLOCK_SIZE`] px blocks, overviews, compressed by
/// `codec` on every core), as an import does. Blocking (GDAL).
pub fn write_cog(
    src: &Dataset,
    dest: &Path,
    resampling: Resampling,
    codec: Codec,
    progress: bool,
) -> Result<(), ImportError> {
    let [compress, predictor] = codec.options();
    let resampling = match resampling {
        Resampling::Nearest => "NEAREST",
        Resampling::Bilinear => "BILINEAR",
        Resampling::Average => "AVERAGE",
    };
    let block_size = COG_BLOCK_SIZE.to_string();
    let cog_options = [
        ("TARGET_SRS", "EPSG:3857"),
        ("RESAMPLING", resampling),
        (
            "OVERVIEW_RESAMPLING",
            if resampling == "NEAREST" {
                "NEAREST"
            } else {
                "AVERAGE"
            },
        ),
        ("BLOCKSIZE", block_size.as_str()),
        compress,
        predictor,
        ("BIGTIFF", "IF_SAFER"),
        ("NUM_THREADS", "ALL_CPUS"),
    ];
    create_copy(src, "COG", dest, &cog_options, progress, "COG (EPSG:3857)")
}

/// GDALCreateCopy with options and a progress bar.
fn create_copy(
    src: &Dataset,
    driver: &str,
    dest: &Path,
    options: &[(&str, &str)],
    progress: bool,
    what: &str,
) -> Result<(), ImportError> {
    let driver_name = CString::new(driver).map_err(|e| ImportError::Gdal(e.to_string()))?;
    // SAFETY: a static driver handle, or null (checked).
    let handle = unsafe { gdal_sys::GDALGetDriverByName(driver_name.as_ptr()) };
    if handle.is_null() {
        return Err(ImportError::Gdal(format!("the {driver} driver is missing")));
    }
    let mut list = CslStringList::new();
    for (k, v) in options {
        list.set_name_value(k, v)
            .map_err(|e| ImportError::Gdal(e.to_string()))?;
    }
    let dest_c = CString::new(dest.to_string_lossy().as_bytes())
        .map_err(|e| ImportError::Gdal(e.to_string()))?;
    let bar = if progress {
        ProgressBar::new(1000)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>18} [{bar:40}] {percent:>3}% {elapsed_precise} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    unsafe extern "C" fn on_progress(
        complete: f64,
        _msg: *const c_char,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: `data` is the `ProgressBar` below, alive for the whole call.
        let bar = unsafe { &*(data as *const ProgressBar) };
        bar.set_position((complete.clamp(0.0, 1.0) * 1000.0) as u64);
        1
    }
    // SAFETY: every pointer is valid for the duration of the call; the returned handle is
    // closed right away (flushing the file).
    let out = unsafe {
        gdal_sys::GDALCreateCopy(
            handle,
            dest_c.as_ptr(),
            src.c_dataset(),
            0,
            list.as_ptr(),
            Some(on_progress),
            &bar as *const ProgressBar as *mut c_void,
        )
    };
    bar.finish_and_clear();
    if out.is_null() {
        let message = gdal_last_error();
        let _ = std::fs::remove_file(dest);
        return Err(ImportError::Gdal(message));
    }
    // SAFETY: a handle GDAL just returned.
    unsafe { gdal_sys::GDALClose(out) };
    Ok(())
}

fn gdal_last_error() -> String {
    // SAFETY: GDAL returns a pointer to a thread-local message, or null.
    let ptr = unsafe { gdal_sys::CPLGetLastErrorMsg() };
    if ptr.is_null() {
        return "unknown error".into();
    }
    // SAFETY: a NUL-terminated string owned by GDAL, copied at once.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The `[layers.NAME]` table of the imported raster.
fn layer_table(opts: &ImportOptions, cog: &Path) -> Result<toml_edit::Table, ImportError> {
    // The resampling as the configuration spells it.
    let resampling =
        toml::Value::try_from(opts.resampling).map_err(|e| ImportError::Invalid(e.to_string()))?;
    let mut table = toml_edit::Table::new();
    table["type"] = toml_edit::value("raster");
    table["path"] = toml_edit::value(cog.to_string_lossy().as_ref());
    table["style"] = toml_edit::value(&opts.style);
    table["resampling"] = toml_edit::value(resampling.as_str().unwrap_or_default());
    if let Some([lo, hi]) = opts.range {
        table["range"] = toml_edit::value(toml_edit::Array::from_iter([lo, hi]));
    }
    if let Some(units) = &opts.units {
        table["units"] = toml_edit::value(units);
    }
    Ok(table)
}
