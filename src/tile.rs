//! Tile addressing: XYZ tile ids, Web Mercator bounds and tile formats.
//!
//! Everything here is pure arithmetic on the EPSG:3857 grid (XYZ scheme, y down,
//! 256 px tiles), shared by the HTTP layer, the renderers and the seeder.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderValue;
use bytes::Bytes;

/// Half the width of the Web Mercator square, in metres.
pub const HALF_WORLD: f64 = 20_037_508.342_789_244;

pub use crate::config::MAX_ZOOM;

/// The latitude limit of the Web Mercator square, in degrees (its north and south edges).
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// One tile of the XYZ grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Zoom level.
    pub z: u8,
    /// Column, from the west edge.
    pub x: u32,
    /// Row, from the north edge (XYZ, not TMS).
    pub y: u32,
}

/// Why a tile address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileIdError {
    /// z, x or y is not a number.
    #[error("{0} is not a valid non-negative integer")]
    NotANumber(&'static str),
    /// z is above [`MAX_ZOOM`].
    #[error("zoom {0} is above the maximum zoom {MAX_ZOOM}")]
    ZoomTooHigh(u64),
    /// x or y is not below 2^z.
    #[error("{axis}={value} is outside the grid at zoom {z} (must be below {limit})")]
    OutOfRange {
        /// `x` or `y`.
        axis: &'static str,
        /// The rejected value.
        value: u64,
        /// The zoom.
        z: u8,
        /// 2^z.
        limit: u64,
    },
    /// The file extension names no known format.
    #[error("unknown tile format `{0}`")]
    UnknownFormat(String),
}

impl TileId {
    /// Validates and builds a tile id from untrusted strings.
    pub fn parse(z: &str, x: &str, y: &str) -> Result<Self, TileIdError> {
        let z = parse_u64(z, "z")?;
        if z > u64::from(MAX_ZOOM) {
            return Err(TileIdError::ZoomTooHigh(z));
        }
        let z = z as u8;
        let limit = 1u64 << z;
        let check = |axis, value: &str| {
            let value = parse_u64(value, axis)?;
            if value >= limit {
                return Err(TileIdError::OutOfRange {
                    axis,
                    value,
                    z,
                    limit,
                });
            }
            Ok(value as u32)
        };
        Ok(Self {
            z,
            x: check("x", x)?,
            y: check("y", y)?,
        })
    }

    /// The tile at zoom `z` holding the point (`lon`, `lat`).
    pub fn containing(lon: f64, lat: f64, z: u8) -> Self {
        let (x, y) = lonlat_to_mercator(lon, lat);
        let size = tile_size_m(z);
        let max = (1u32 << z) - 1;
        let col = ((x + HALF_WORLD) / size).floor().clamp(0.0, f64::from(max)) as u32;
        let row = ((HALF_WORLD - y) / size).floor().clamp(0.0, f64::from(max)) as u32;
        Self { z, x: col, y: row }
    }

    /// Tile bounds in EPSG:3857 metres.
    pub fn bounds(&self) -> Bounds {
        let size = tile_size_m(self.z);
        let xmin = -HALF_WORLD + f64::from(self.x) * size;
        let ymax = HALF_WORLD - f64::from(self.y) * size;
        Bounds {
            xmin,
            ymin: ymax - size,
            xmax: xmin + size,
            ymax,
        }
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.z, self.x, self.y)
    }
}

fn parse_u64(s: &str, name: &'static str) -> Result<u64, TileIdError> {
    // `u64::from_str` accepts a leading `+`; tile addresses are plain digits.
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TileIdError::NotANumber(name));
    }
    s.parse().map_err(|_| TileIdError::NotANumber(name))
}

/// Width of one tile at zoom `z`, in metres.
pub fn tile_size_m(z: u8) -> f64 {
    2.0 * HALF_WORLD / f64::from(1u32 << z)
}

/// An axis-aligned rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// West.
    pub xmin: f64,
    /// South.
    pub ymin: f64,
    /// East.
    pub xmax: f64,
    /// North.
    pub ymax: f64,
}

impl Bounds {
    /// The rectangle grown by `margin` on every side.
    pub fn buffered(&self, margin: f64) -> Self {
        Self {
            xmin: self.xmin - margin,
            ymin: self.ymin - margin,
            xmax: self.xmax + margin,
            ymax: self.ymax + margin,
        }
    }
}

/// Longitude/latitude (EPSG:4326) of a Web Mercator point.
pub fn mercator_to_lonlat(x: f64, y: f64) -> (f64, f64) {
    let lon = x / HALF_WORLD * 180.0;
    let lat = (2.0 * (y / HALF_WORLD * std::f64::consts::PI).exp().atan()
        - std::f64::consts::FRAC_PI_2)
        .to_degrees();
    (lon, lat)
}

/// Web Mercator (EPSG:3857) metres of a longitude/latitude point; latitude is clamped
/// to the Web Mercator limit.
pub fn lonlat_to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-85.051_128_779_806_59, 85.051_128_779_806_59);
    let x = lon * HALF_WORLD / 180.0;
    let y = (std::f64::consts::FRAC_PI_4 + lat.to_radians() / 2.0)
        .tan()
        .ln()
        * HALF_WORLD
        / std::f64::consts::PI;
    (x, y)
}

/// Encodings a tile can be requested in, named by their file extensions (also on the
/// command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum TileFormat {
    /// Mapbox Vector Tile (`.mvt` or `.pbf`).
    #[value(alias = "pbf")]
    Mvt,
    /// PNG image.
    Png,
    /// WebP image (lossless).
    Webp,
}

impl TileFormat {
    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mvt => "application/vnd.mapbox-vector-tile",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// The canonical file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mvt => "mvt",
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    /// Whether HTTP gzip helps this format (images are already compressed).
    pub fn compressible(self) -> bool {
        matches!(self, Self::Mvt)
    }
}

impl FromStr for TileFormat {
    type Err = TileIdError;
    /// The names `clap` knows ([`clap::ValueEnum`]), matched here directly: this runs on
    /// every tile request, and clap's lookup walks every name and alias.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mvt" | "pbf" => Ok(Self::Mvt),
            "png" => Ok(Self::Png),
            "webp" => Ok(Self::Webp),
            _ => Err(TileIdError::UnknownFormat(s.chars().take(16).collect())),
        }
    }
}

/// A parsed `{y}[@2x].{ext}` path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YSegment<'a> {
    /// The row digits.
    pub y: &'a str,
    /// Pixel ratio (1 or 2).
    pub scale: u8,
    /// The requested format.
    pub format: TileFormat,
}

/// Splits the last path segment of a tile URL, e.g. `1234.mvt` or `88@2x.png`.
pub fn parse_y_segment(segment: &str) -> Result<YSegment<'_>, TileIdError> {
    let (stem, ext) = segment
        .rsplit_once('.')
        .ok_or_else(|| TileIdError::UnknownFormat(String::new()))?;
    let format = ext.parse()?;
    let (y, scale) = match stem.strip_suffix("@2x") {
        Some(y) => (y, 2),
        None => (stem, 1),
    };
    Ok(YSegment { y, scale, format })
}

/// Parses `MIN-MAX` (or a single zoom) into an inclusive range of zoom levels.
pub fn parse_zooms(text: &str) -> Result<std::ops::RangeInclusive<u8>, String> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let parse = |s: &str| {
        s.trim()
            .parse::<u8>()
            .ok()
            .filter(|z| *z <= MAX_ZOOM)
            .ok_or_else(|| format!("`{s}` is not a zoom level (0..={MAX_ZOOM})"))
    };
    let (lo, hi) = (parse(a)?, parse(b)?);
    if lo > hi {
        return Err(format!("the range {lo}-{hi} is inverted (use {hi}-{lo})"));
    }
    Ok(lo..=hi)
}

/// A rendered tile, ready to send.
#[derive(Debug)]
pub struct EncodedTile {
    /// The tile bytes; empty for an empty tile.
    pub raw: Bytes,
    /// gzip of `raw`, for compressible non-empty formats.
    pub gzip: Option<Bytes>,
    /// The strong ETag of `raw` (`"{hash}"`, its content hash in hex), made once: a cache
    /// hit only clones it.
    pub etag: HeaderValue,
    /// The ETag of `gzip` (`"{hash}-gz"`).
    pub etag_gzip: HeaderValue,
}

impl EncodedTile {
    /// Wraps rendered bytes, compressing them when the format benefits (CPU: call off
    /// the async runtime for large tiles).
    pub fn new(raw: Vec<u8>, format: TileFormat) -> Self {
        let gzip = (format.compressible() && !raw.is_empty()).then(|| exact(gzip(&raw)));
        Self::from_parts(exact(raw), gzip)
    }

    /// Wraps rendered bytes whose gzip is already at hand (read back from the store).
    pub fn with_gzip(raw: Vec<u8>, gzip: Bytes) -> Self {
        Self::from_parts(exact(raw), Some(gzip))
    }

    /// Wraps tile bytes and their gzip as they are (hashes `raw` for the ETags).
    pub fn from_parts(raw: Bytes, gzip: Option<Bytes>) -> Self {
        let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&raw));
        // Hex digits and quotes: always a valid header value.
        let etag = HeaderValue::from_str(&format!("\"{hash}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        let etag_gzip = HeaderValue::from_str(&format!("\"{hash}-gz\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
        Self {
            raw,
            gzip,
            etag,
            etag_gzip,
        }
    }

    /// Whether the tile has no content (served as 204).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// The bytes of `buffer` in an allocation of their own size. Encoders grow their output
/// by doubling, so a buffer's capacity is up to twice its length (the gzip buffer starts
/// at half the input's length, often more than the result); the tile cache weighs a tile
/// by its length, and a cached tile must not hold more memory than it is weighed at.
fn exact(mut buffer: Vec<u8>) -> Bytes {
    buffer.shrink_to_fit();
    Bytes::from(buffer)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_as_clap_names_them() {
        use clap::ValueEnum;
        for format in TileFormat::value_variants() {
            let value = format.to_possible_value().expect("named");
            for name in value.get_name_and_aliases() {
                assert_eq!(name.parse::<TileFormat>(), Ok(*format), "{name}");
                assert_eq!(
                    <TileFormat as ValueEnum>::from_str(name, false),
                    Ok(*format),
                    "{name}"
                );
            }
        }
        for bad in ["MVT", "jpg", "", "png ", "webp2"] {
            assert!(bad.parse::<TileFormat>().is_err(), "{bad}");
            assert!(
                <TileFormat as ValueEnum>::from_str(bad, false).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_valid_ids_and_rejects_bad_ones() {
        assert_eq!(
            TileId::parse("7", "20", "48"),
            Ok(TileId { z: 7, x: 20, y: 48 })
        );
        assert_eq!(
            TileId::parse("a", "0", "0"),
            Err(TileIdError::NotANumber("z"))
        );
        assert_eq!(
            TileId::parse("1", "-1", "0"),
            Err(TileIdError::NotANumber("x"))
        );
        assert_eq!(
            TileId::parse("1", "+1", "0"),
            Err(TileIdError::NotANumber("x"))
        );
        assert_eq!(
            TileId::parse("25", "0", "0"),
            Err(TileIdError::ZoomTooHigh(25))
        );
        assert!(matches!(
            TileId::parse("2", "4", "0"),
            Err(TileIdError::OutOfRange { axis: "x", .. })
        ));
        assert!(matches!(
            TileId::parse("2", "0", "4"),
            Err(TileIdError::OutOfRange { axis: "y", .. })
        ));
        assert_eq!(
            TileId::parse("99999999999999999999", "0", "0"),
            Err(TileIdError::NotANumber("z"))
        );
    }

    #[test]
    fn bounds_match_postgis_tile_envelope() {
        // SELECT ST_AsText(ST_TileEnvelope(1, 0, 0)) -> POLYGON((-20037508.34 0, ...))
        let b = TileId { z: 1, x: 0, y: 0 }.bounds();
        assert_eq!(
            (b.xmin, b.ymin, b.xmax, b.ymax),
            (-HALF_WORLD, 0.0, 0.0, HALF_WORLD)
        );
        let b = TileId { z: 7, x: 20, y: 48 }.bounds();
        assert!((b.xmin - -13_775_786.985_667_605).abs() < 1e-6);
        assert!((b.ymax - 5_009_377.085_697_312).abs() < 1e-6);
    }

    #[test]
    fn containing_tile() {
        // Sacramento.
        assert_eq!(
            TileId::containing(-121.49, 38.58, 7),
            TileId { z: 7, x: 20, y: 49 }
        );
        assert_eq!(TileId::containing(0.0, 0.0, 0), TileId { z: 0, x: 0, y: 0 });
    }

    #[test]
    fn lonlat_roundtrip() {
        let (x, y) = lonlat_to_mercator(-121.49, 38.58);
        let (lon, lat) = mercator_to_lonlat(x, y);
        assert!((lon + 121.49).abs() < 1e-9 && (lat - 38.58).abs() < 1e-9);
    }

    #[test]
    fn y_segments() {
        assert_eq!(
            parse_y_segment("12.pbf"),
            Ok(YSegment {
                y: "12",
                scale: 1,
                format: TileFormat::Mvt
            })
        );
        assert_eq!(
            parse_y_segment("12@2x.png"),
            Ok(YSegment {
                y: "12",
                scale: 2,
                format: TileFormat::Png
            })
        );
        assert!(parse_y_segment("12").is_err());
        assert!(parse_y_segment("12.gif").is_err());
    }

    #[test]
    fn gzip_is_kept_beside_the_raw_tile() {
        let tile = EncodedTile::new(vec![42; 5000], TileFormat::Mvt);
        let gz = tile.gzip.as_ref().expect("compressed");
        assert!(gz.len() < 200);
        assert!(
            EncodedTile::new(vec![42; 5000], TileFormat::Png)
                .gzip
                .is_none()
        );
        assert!(EncodedTile::new(Vec::new(), TileFormat::Mvt).gzip.is_none());
    }

    #[test]
    fn zoom_ranges() {
        assert_eq!(parse_zooms("7-13"), Ok(7..=13));
        assert_eq!(parse_zooms("5"), Ok(5..=5));
        assert!(parse_zooms("13-7").unwrap_err().contains("inverted"));
        assert!(parse_zooms("0-99").is_err());
        assert!(parse_zooms("a-3").is_err());
    }
}

/// Property tests of the tile-path parser: whatever a client sends, an id or a clear
/// error, never a panic; ids in the grid round-trip through their formatting.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Parses a `{z}/{x}/{y}[@2x].{ext}` path as the tile route does (the router
    /// splits at `/`, then the last segment and the numbers are parsed).
    fn parse_path(path: &str) -> Result<(TileId, YSegment<'_>), TileIdError> {
        let mut parts = path.splitn(3, '/');
        let (z, x, last) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let segment = parse_y_segment(last)?;
        Ok((TileId::parse(z, x, segment.y)?, segment))
    }

    /// A tile in the grid: z up to the maximum zoom, x and y below 2^z.
    fn tile() -> impl Strategy<Value = TileId> {
        (0..=MAX_ZOOM).prop_flat_map(|z| {
            let n = 1u32 << z;
            (Just(z), 0..n, 0..n).prop_map(|(z, x, y)| TileId { z, x, y })
        })
    }

    fn format() -> impl Strategy<Value = (&'static str, TileFormat)> {
        prop_oneof![
            Just(("mvt", TileFormat::Mvt)),
            Just(("pbf", TileFormat::Mvt)),
            Just(("png", TileFormat::Png)),
            Just(("webp", TileFormat::Webp)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_string_is_an_id_or_an_error(path in "\\PC{0,40}") {
            if let Ok((id, segment)) = parse_path(&path) {
                prop_assert!(id.z <= MAX_ZOOM);
                prop_assert!(u64::from(id.x) < 1u64 << id.z && u64::from(id.y) < 1u64 << id.z);
                prop_assert!(segment.scale == 1 || segment.scale == 2);
            }
        }

        #[test]
        fn tile_like_strings_are_ids_or_errors(path in "[0-9]{0,14}/[-+0-9]{0,14}/[0-9a-z@.]{0,16}") {
            match parse_path(&path) {
                Ok((id, _)) => {
                    // The digits read are the digits sent, leading zeros aside.
                    let digits: Vec<&str> = path.split(['/', '@', '.']).take(3).collect();
                    let canonical: Vec<String> = digits
                        .iter()
                        .map(|d| d.trim_start_matches('0'))
                        .map(|d| if d.is_empty() { "0".to_owned() } else { d.to_owned() })
                        .collect();
                    prop_assert_eq!(id.to_string(), canonical.join("/"));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn ids_in_the_grid_round_trip(id in tile(), (ext, format) in format(), retina in any::<bool>()) {
            let scale = if retina { "@2x" } else { "" };
            let path = format!("{id}{scale}.{ext}");
            let (parsed, segment) = parse_path(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed, id);
            prop_assert_eq!(segment.format, format);
            prop_assert_eq!(segment.scale, if retina { 2 } else { 1 });
            prop_assert_eq!(format!("{parsed}"), format!("{}/{}/{}", id.z, id.x, id.y));
        }

        #[test]
        fn ids_outside_the_grid_are_refused(z in 0..=MAX_ZOOM, over in 0u64..1_000_000, axis in 0..2usize) {
            let bad = (1u64 << z) + over;
            let (x, y) = if axis == 0 { (bad, 0) } else { (0, bad) };
            let refused = TileId::parse(&z.to_string(), &x.to_string(), &y.to_string());
            let is_out_of_range = matches!(refused, Err(TileIdError::OutOfRange { value, .. }) if value == bad);
            prop_assert!(is_out_of_range, "{:?}", refused);
        }

        #[test]
        fn zooms_above_the_maximum_are_refused(z in u64::from(MAX_ZOOM) + 1..1_000_000_000_000) {
            prop_assert_eq!(TileId::parse(&z.to_string(), "0", "0"), Err(TileIdError::ZoomTooHigh(z)));
        }
    }
}
