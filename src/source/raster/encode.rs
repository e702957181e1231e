//! Image encoding of styled tiles: PNG (indexed, with only the colours a tile uses, for
//! class styles and ramps; RGBA otherwise) and lossless WebP.

use crate::style::Rgba;
use crate::tile::TileFormat;

/// Encoding failed.
#[derive(Debug, thiserror::Error)]
#[error("image encoding failed: {0}")]
pub struct ImageError(String);

/// Pixels of one tile: either palette indices or RGBA.
pub enum Pixels {
    /// Indices into `palette` (index 0 is the transparent nodata colour).
    Indexed {
        /// One index per pixel.
        indices: Vec<u8>,
        /// The colours.
        palette: Vec<Rgba>,
    },
    /// Four bytes per pixel.
    Rgba(Vec<u8>),
}

impl Pixels {
    /// Whether no pixel is visible.
    pub fn is_transparent(&self) -> bool {
        match self {
            Self::Indexed { indices, palette } => indices
                .iter()
                .all(|&i| palette.get(usize::from(i)).is_none_or(|c| c[3] == 0)),
            Self::Rgba(rgba) => rgba.chunks_exact(4).all(|p| p[3] == 0),
        }
    }

    fn to_rgba(&self) -> Vec<u8> {
        match self {
            Self::Rgba(rgba) => rgba.clone(),
            Self::Indexed { indices, palette } => indices
                .iter()
                .flat_map(|&i| palette.get(usize::from(i)).copied().unwrap_or([0, 0, 0, 0]))
                .collect(),
        }
    }
}

/// Encodes a `width` x `height` image.
pub fn encode(
    pixels: &Pixels,
    width: u32,
    height: u32,
    format: TileFormat,
) -> Result<Vec<u8>, ImageError> {
    match format {
        TileFormat::Png => png(pixels, width, height),
        TileFormat::Webp => webp(pixels, width, height),
        TileFormat::Mvt => Err(ImageError("MVT is not an image format".into())),
    }
}

fn png(pixels: &Pixels, width: u32, height: u32) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::with_capacity(16 * 1024);
    {
        let mut encoder = ::png::Encoder::new(&mut out, width, height);
        encoder.set_compression(::png::Compression::Fast);
        let data: std::borrow::Cow<'_, [u8]> = match pixels {
            Pixels::Indexed { indices, palette } => {
                let (indices, palette) = compact(indices, palette);
                // Measured on 2,000 tiles of the 30 m demo raster (examples/png_settings.rs):
                // unfiltered zlib level 3 gives 5.5 KB per tile for 0.6 ms, against 8.1 KB
                // for fdeflate with adaptive filters (0.17 ms) and 5.1 KB at level 6 (1.3 ms).
                encoder.set_filter(::png::Filter::NoFilter);
                encoder.set_deflate_compression(::png::DeflateCompression::Level(3));
                encoder.set_color(::png::ColorType::Indexed);
                encoder.set_depth(::png::BitDepth::Eight);
                encoder.set_palette(
                    palette
                        .iter()
                        .flat_map(|c| [c[0], c[1], c[2]])
                        .collect::<Vec<u8>>(),
                );
                // Translucent entries come first: tRNS ends at the last of them.
                let translucent = palette.iter().take_while(|c| c[3] < 255).count();
                if translucent > 0 {
                    encoder.set_trns(
                        palette[..translucent]
                            .iter()
                            .map(|c| c[3])
                            .collect::<Vec<u8>>(),
                    );
                }
                std::borrow::Cow::Owned(indices)
            }
            Pixels::Rgba(rgba) => {
                encoder.set_color(::png::ColorType::Rgba);
                encoder.set_depth(::png::BitDepth::Eight);
                std::borrow::Cow::Borrowed(rgba)
            }
        };
        let mut writer = encoder
            .write_header()
            .map_err(|e| ImageError(e.to_string()))?;
        writer
            .write_image_data(&data)
            .map_err(|e| ImageError(e.to_string()))?;
        writer.finish().map_err(|e| ImageError(e.to_string()))?;
    }
    Ok(out)
}

/// Keeps only the palette entries a tile uses, translucent ones first (so the tRNS chunk
/// stays short), and renumbers the indices: a tile of a 256-colour ramp usually needs a
/// few dozen colours, and PLTE + tRNS of the full palette would cost a kilobyte.
fn compact(indices: &[u8], palette: &[Rgba]) -> (Vec<u8>, Vec<Rgba>) {
    let mut used = [false; 256];
    for &i in indices {
        used[usize::from(i)] = true;
    }
    let color = |i: usize| palette.get(i).copied().unwrap_or([0, 0, 0, 0]);
    let order = (0..256)
        .filter(|&i| used[i] && color(i)[3] < 255)
        .chain((0..256).filter(|&i| used[i] && color(i)[3] == 255));
    let mut renumber = [0u8; 256];
    let mut kept = Vec::new();
    for (new, old) in order.enumerate() {
        // At most 256 entries are used, so `new` fits a byte.
        renumber[old] = new as u8;
        kept.push(color(old));
    }
    let indices = indices.iter().map(|&i| renumber[usize::from(i)]).collect();
    (indices, kept)
}

fn webp(pixels: &Pixels, width: u32, height: u32) -> Result<Vec<u8>, ImageError> {
    let rgba = pixels.to_rgba();
    let mut out = Vec::with_capacity(16 * 1024);
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(&rgba, width, height, image::ExtendedColorType::Rgba8)
        .map_err(|e| ImageError(e.to_string()))?;
    Ok(out)
}

/// A fully transparent tile (served for tiles wholly outside the data): encoded once
/// per size and format, a 1-bit PNG of about a hundred bytes.
pub fn transparent(size: u32, format: TileFormat) -> Result<Vec<u8>, ImageError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Made = Mutex<HashMap<(u32, TileFormat), Vec<u8>>>;
    static MADE: OnceLock<Made> = OnceLock::new();
    let made = MADE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(bytes) = made
        .lock()
        .ok()
        .and_then(|m| m.get(&(size, format)).cloned())
    {
        return Ok(bytes);
    }
    let bytes = match format {
        TileFormat::Png => {
            let mut out = Vec::new();
            {
                let mut encoder = ::png::Encoder::new(&mut out, size, size);
                encoder.set_color(::png::ColorType::Indexed);
                encoder.set_depth(::png::BitDepth::One);
                encoder.set_palette(vec![0u8, 0, 0]);
                encoder.set_trns(vec![0u8]);
                encoder.set_compression(::png::Compression::High);
                let mut writer = encoder
                    .write_header()
                    .map_err(|e| ImageError(e.to_string()))?;
                let row_bytes = (size as usize).div_ceil(8);
                writer
                    .write_image_data(&vec![0u8; row_bytes * size as usize])
                    .map_err(|e| ImageError(e.to_string()))?;
                writer.finish().map_err(|e| ImageError(e.to_string()))?;
            }
            out
        }
        _ => {
            let pixels = Pixels::Indexed {
                indices: vec![0; (size * size) as usize],
                palette: vec![[0, 0, 0, 0]],
            };
            encode(&pixels, size, size, format)?
        }
    };
    if let Ok(mut m) = made.lock() {
        m.insert((size, format), bytes.clone());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_and_rgba_pngs_decode_to_the_same_pixels() {
        let palette = vec![[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]];
        let indices: Vec<u8> = (0..256 * 256).map(|i| (i % 3) as u8).collect();
        let indexed = Pixels::Indexed { indices, palette };
        let rgba = Pixels::Rgba(indexed.to_rgba());
        for pixels in [&indexed, &rgba] {
            let bytes = encode(pixels, 256, 256, TileFormat::Png).unwrap();
            let decoded = image::load_from_memory(&bytes).unwrap().to_rgba8();
            assert_eq!(decoded.as_raw(), &indexed.to_rgba());
        }
        let webp = encode(&indexed, 256, 256, TileFormat::Webp).unwrap();
        let decoded = image::load_from_memory(&webp).unwrap().to_rgba8();
        assert_eq!(decoded.as_raw(), &indexed.to_rgba(), "WebP is lossless");
    }

    #[test]
    fn transparent_tiles_are_tiny() {
        let png = transparent(256, TileFormat::Png).unwrap();
        assert!(png.len() < 200, "{}", png.len());
        let decoded = image::load_from_memory(&png).unwrap().to_rgba8();
        assert!(decoded.pixels().all(|p| p.0[3] == 0));
        assert_eq!(decoded.dimensions(), (256, 256));
    }
}
