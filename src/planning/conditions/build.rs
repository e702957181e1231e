//! `planscape conditions build`: the normalized rasters of elements and pillars, each
//! the mean or minimum of its children's.

use std::path::{Path, PathBuf};

use super::{Catalog, CatalogError, Operation};
use crate::import::raster::Codec;

/// Builds the normalized raster of every element (from its metrics) and pillar (from its
/// elements) into `built_dir/{region}/{name}.tif`: tiled, compressed as its inputs, with
/// overviews, on the children's common grid (children on different grids are refused).
/// Blocking.
pub fn build(catalog: &Catalog, built_dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let nodes = catalog.nodes(built_dir);
    let normalized = |region: &str, name: &str| {
        nodes[&(region.to_owned(), name.to_owned())]
            .normalized
            .clone()
    };
    // (node name, inputs, operation, output): elements first, then pillars, which read
    // the elements' rasters.
    type Task = (String, Vec<PathBuf>, Operation, PathBuf);
    let (mut elements, mut pillars): (Vec<Task>, Vec<Task>) = (Vec::new(), Vec::new());
    for region in &catalog.regions {
        std::fs::create_dir_all(built_dir.join(&region.name))
            .map_err(|e| CatalogError::Invalid(format!("{}: {e}", built_dir.display())))?;
        for pillar in &region.pillars {
            for element in &pillar.elements {
                let inputs = element
                    .metrics
                    .iter()
                    .map(|m| m.normalized.clone())
                    .collect();
                elements.push((
                    format!("element `{}`", element.name),
                    inputs,
                    element.operation,
                    normalized(&region.name, &element.name),
                ));
            }
            let inputs = pillar
                .elements
                .iter()
                .map(|e| normalized(&region.name, &e.name))
                .collect();
            pillars.push((
                format!("pillar `{}`", pillar.name),
                inputs,
                pillar.operation,
                normalized(&region.name, &pillar.name),
            ));
        }
    }
    // One node after the other, each compressed on every core by GDAL: nodes written
    // side by side, each with GDAL's compression threads, deadlocked GDAL 3.6.2 (its
    // block cache flushing one thread's dirty blocks from the other).
    let mut written = Vec::new();
    for (what, inputs, op, out) in elements.into_iter().chain(pillars) {
        combine(&inputs, op, &out).map_err(|e| CatalogError::Invalid(format!("{what}: {e}")))?;
        written.push(out);
    }
    written.sort();
    Ok(written)
}

/// The block side of a built raster: the first input's, when its blocks are squares
/// GeoTIFF can write (a multiple of 16 pixels up to 1,024), so a built condition is read
/// as its metrics are; else [`crate::import::COG_BLOCK_SIZE`].
fn block_side(first: &gdal::Dataset) -> usize {
    match first.rasterband(1).map(|b| b.block_size()) {
        Ok((w, h)) if w == h && w % 16 == 0 && (16..=1024).contains(&w) => w,
        _ => crate::import::COG_BLOCK_SIZE,
    }
}

/// Output nodata of built rasters.
pub const BUILT_NODATA: f64 = -9999.0;

/// Combines same-grid single-band rasters pixel by pixel into a new GeoTIFF.
fn combine(inputs: &[PathBuf], op: Operation, out: &Path) -> Result<(), String> {
    use gdal::Dataset;
    use gdal::raster::{Buffer, RasterCreationOptions};
    let datasets: Vec<Dataset> = inputs
        .iter()
        .map(|p| Dataset::open(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<_, _>>()?;
    let first = datasets.first().ok_or("no inputs")?;
    let gt = first.geo_transform().map_err(|e| e.to_string())?;
    let size = first.raster_size();
    let srs = first.spatial_ref().map_err(|e| e.to_string())?;
    for (d, p) in datasets.iter().zip(inputs) {
        let same = d.raster_size() == size
            && d.geo_transform().map_err(|e| e.to_string())? == gt
            && d.spatial_ref().map_err(|e| e.to_string())? == srs;
        if !same {
            return Err(format!(
                "{} is not on the grid of {} (warp the children to one grid first)",
                p.display(),
                inputs[0].display()
            ));
        }
    }
    let nodatas: Vec<Option<f64>> = datasets
        .iter()
        .map(|d| d.rasterband(1).ok().and_then(|b| b.no_data_value()))
        .collect();
    let temp = out.with_extension("tif.tmp");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").map_err(|e| e.to_string())?;
    // Compressed as the first input is: ZSTD without a predictor for rasters read by
    // the million pixels (30 m: statistics of 500,000 acres decode a raster in 12.7 ms,
    // against 38.8 ms with the floating-point predictor), DEFLATE with it for coarse ones,
    // where decoding is cheap either way and an open ZSTD handle holds its ~0.9 MiB
    // decompression context for its whole life (docs/loadtest.md).
    let [compress, predictor] = Codec::of(first).gtiff_float_options();
    let block = block_side(first);
    let options = RasterCreationOptions::from_iter([
        "TILED=YES",
        compress,
        predictor,
        &format!("BLOCKXSIZE={block}"),
        &format!("BLOCKYSIZE={block}"),
        // No NUM_THREADS: GDAL 3.6's threaded GTiff compression deadlocks when the block
        // cache fills while it writes (a compression worker flushes a dirty block and
        // waits on its own queue); with `[memory] gdal_cache_mb = 16` every build hung.
        "BIGTIFF=IF_SAFER",
    ]);
    let (width, height) = size;
    {
        let mut target = driver
            .create_with_band_type_with_options::<f32, _>(&temp, width, height, 1, &options)
            .map_err(|e| e.to_string())?;
        target.set_geo_transform(&gt).map_err(|e| e.to_string())?;
        target.set_spatial_ref(&srs).map_err(|e| e.to_string())?;
        let mut band = target.rasterband(1).map_err(|e| e.to_string())?;
        band.set_no_data_value(Some(BUILT_NODATA))
            .map_err(|e| e.to_string())?;
        const ROWS: usize = 256;
        let mut row = 0;
        while row < height {
            let rows = ROWS.min(height - row);
            let strips: Vec<Vec<f64>> = datasets
                .iter()
                .map(|d| {
                    d.rasterband(1)
                        .and_then(|b| {
                            b.read_as::<f64>((0, row as isize), (width, rows), (width, rows), None)
                        })
                        .map(|b| b.data().to_vec())
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?;
            let mut values = vec![BUILT_NODATA as f32; width * rows];
            for (i, value) in values.iter_mut().enumerate() {
                let mut acc: Option<f64> = None;
                let mut n = 0usize;
                let mut complete = true;
                for (strip, nd) in strips.iter().zip(&nodatas) {
                    let v = strip[i];
                    if v.is_nan() || nd.is_some_and(|nd| v == nd) {
                        complete = false;
                        break;
                    }
                    n += 1;
                    acc = Some(match (acc, op) {
                        (None, _) => v,
                        (Some(a), Operation::Mean) => a + v,
                        (Some(a), Operation::Min) => a.min(v),
                    });
                }
                if let (true, Some(a)) = (complete, acc) {
                    *value = match op {
                        Operation::Mean => (a / n as f64) as f32,
                        Operation::Min => a as f32,
                    };
                }
            }
            let mut buffer = Buffer::new((width, rows), values);
            band.write((0, row as isize), (width, rows), &mut buffer)
                .map_err(|e| e.to_string())?;
            row += rows;
        }
        target
            .build_overviews("AVERAGE", &[2, 4, 8, 16, 32], &[])
            .map_err(|e| e.to_string())?;
    }
    std::fs::rename(&temp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gdal::Metadata;
    use gdal::raster::{Buffer, RasterCreationOptions};

    /// A 300 x 300 Float32 GeoTIFF of `value` compressed with `compress`, in blocks of
    /// `block` px.
    fn raster(path: &Path, compress: &str, block: usize, value: f32) {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").expect("GTiff");
        let options = RasterCreationOptions::from_iter([
            "TILED=YES".to_owned(),
            format!("COMPRESS={compress}"),
            format!("BLOCKXSIZE={block}"),
            format!("BLOCKYSIZE={block}"),
        ]);
        let mut ds = driver
            .create_with_band_type_with_options::<f32, _>(path, 300, 300, 1, &options)
            .expect("create");
        ds.set_geo_transform(&[-2.0e6, 30.0, 0.0, 2.0e6, 0.0, -30.0])
            .expect("transform");
        ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(5070).expect("srs"))
            .expect("srs");
        let mut band = ds.rasterband(1).expect("band");
        let mut buffer = Buffer::new((300, 300), vec![value; 300 * 300]);
        band.write((0, 0), (300, 300), &mut buffer).expect("write");
    }

    #[test]
    fn built_rasters_are_compressed_and_blocked_as_their_inputs() {
        let dir = std::env::temp_dir().join(format!("planscape-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (compress, expected, block) in [
            ("ZSTD", "ZSTD", 128),
            ("DEFLATE", "DEFLATE", 256),
            ("NONE", "DEFLATE", 64),
        ] {
            let inputs = [
                dir.join(format!("{compress}-a.tif")),
                dir.join(format!("{compress}-b.tif")),
            ];
            raster(&inputs[0], compress, block, 0.25);
            raster(&inputs[1], compress, block, 0.75);
            let out = dir.join(format!("{compress}-mean.tif"));
            combine(&inputs, Operation::Mean, &out).expect("combine");
            let built = gdal::Dataset::open(&out).expect("open");
            assert_eq!(
                built
                    .metadata_item("COMPRESSION", "IMAGE_STRUCTURE")
                    .as_deref(),
                Some(expected),
                "inputs {compress}"
            );
            let built_block = built.rasterband(1).expect("band").block_size();
            assert_eq!(built_block, (block, block), "blocks as the inputs'");
            let values = built
                .rasterband(1)
                .and_then(|b| b.read_as::<f32>((0, 0), (300, 300), (300, 300), None))
                .expect("read");
            assert!(values.data().iter().all(|v| (v - 0.5).abs() < 1e-6));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
