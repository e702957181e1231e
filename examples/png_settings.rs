//! Compares PNG filter and deflate settings on real raster tiles: renders each tile of a
//! list (`z/x/y` lines) from a raster layer with the server's own pipeline, then re-encodes
//! the same palette image with each setting and prints bytes and encode time.
//!
//!   cargo run --release --example png_settings -- RASTER STYLE MIN MAX TILE_LIST
use std::io::BufRead;
use std::time::Instant;

use planscape::tile::{TileFormat, TileId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, raster, style, min, max, list] = &args[..] else {
        return Err("usage: png_settings RASTER STYLE MIN MAX TILE_LIST".into());
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config: planscape::config::RasterLayerConfig = toml::from_str(&format!(
        "path = \"{raster}\"\nstyle = \"{style}\"\nrange = [{min}, {max}]\nresampling = \"nearest\""
    ))?;
    let source =
        planscape::source::raster::RasterSource::inspect("bench", &config, &root.join("styles"))?;
    let mut images = Vec::new();
    let mut served = 0usize;
    let mut webp = 0usize;
    let started = Instant::now();
    for line in std::io::BufReader::new(std::fs::File::open(list)?).lines() {
        let line = line?;
        let parts: Vec<&str> = line.trim().split('/').collect();
        let [z, x, y] = parts[..] else { continue };
        let Ok(tile) = TileId::parse(z, x, y) else {
            continue;
        };
        let png = source.render_blocking(&tile.bounds(), 256, TileFormat::Png)?;
        served += png.len();
        webp += source
            .render_blocking(&tile.bounds(), 256, TileFormat::Webp)?
            .len();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info()?;
        let info = reader.info().clone();
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        reader.next_frame(&mut buf)?;
        if info.color_type == png::ColorType::Indexed && info.bit_depth == png::BitDepth::Eight {
            images.push((
                buf,
                info.palette.map(|p| p.to_vec()).unwrap_or_default(),
                info.trns.map(|t| t.to_vec()),
            ));
        }
    }
    let tiles = images.len().max(1) as f64;
    println!(
        "{} tiles: PNG mean {:.0} bytes, WebP mean {:.0} bytes, rendering both {:.2?}",
        images.len(),
        served as f64 / tiles,
        webp as f64 / tiles,
        started.elapsed()
    );
    let filters = [
        ("none", png::Filter::NoFilter),
        ("sub", png::Filter::Sub),
        ("up", png::Filter::Up),
        ("paeth", png::Filter::Paeth),
        ("adaptive", png::Filter::Adaptive),
    ];
    let levels = [
        ("fdeflate", png::DeflateCompression::FdeflateUltraFast),
        ("zlib1", png::DeflateCompression::Level(1)),
        ("zlib3", png::DeflateCompression::Level(3)),
        ("zlib6", png::DeflateCompression::Level(6)),
        ("zlib9", png::DeflateCompression::Level(9)),
    ];
    for (fname, filter) in filters {
        for (lname, level) in &levels {
            let started = Instant::now();
            let mut total = 0usize;
            for (indices, palette, trns) in &images {
                let mut out = Vec::new();
                let mut enc = png::Encoder::new(&mut out, 256, 256);
                enc.set_color(png::ColorType::Indexed);
                enc.set_depth(png::BitDepth::Eight);
                enc.set_palette(palette.clone());
                if let Some(t) = trns {
                    enc.set_trns(t.clone());
                }
                enc.set_filter(filter);
                enc.set_deflate_compression(*level);
                let mut w = enc.write_header()?;
                w.write_image_data(indices)?;
                w.finish()?;
                total += out.len();
            }
            let per = started.elapsed() / images.len().max(1) as u32;
            println!(
                "{fname:>8} {lname:>8}: mean {:>6.0} bytes, {:>8.2?} per tile",
                total as f64 / images.len().max(1) as f64,
                per
            );
        }
    }
    Ok(())
}
