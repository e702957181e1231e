//! Colormap styles (`styles/*.json`): continuous ramps and discrete classes, resolved
//! against a layer's value range into a [`Colormap`] that colours pixels and lists
//! legend entries.
//!
//! A ramp's stops are placed by `value`, or by `fraction` of the layer's range. Values
//! between stops are interpolated linearly in RGBA; a value at a stop gets exactly the
//! stop's colour; values beyond the ends take the end colours. A class covers
//! `[min, max)` unless `min_inclusive`/`max_inclusive` say otherwise; values in no class
//! are transparent. Appending `_r` to a style name reverses it.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// An RGBA colour.
pub type Rgba = [u8; 4];

/// A problem with a style file or its use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StyleError {
    /// No such style file.
    #[error("unknown style `{0}` (no styles/{0}.json)")]
    Unknown(String),
    /// The file is not a valid style.
    #[error("invalid style `{name}`: {message}")]
    Invalid {
        /// Style name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// A style as written in `styles/NAME.json`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Style {
    /// Name (the file stem).
    #[serde(default)]
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Ramp or classes.
    #[serde(flatten)]
    pub kind: StyleKind,
    /// Colour of nodata pixels (default fully transparent).
    #[serde(default = "transparent_hex")]
    pub nodata_color: String,
}

/// The two kinds of style.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StyleKind {
    /// A continuous colour ramp.
    Ramp {
        /// Stops in increasing order.
        stops: Vec<Stop>,
    },
    /// Discrete classes.
    Classes {
        /// The classes.
        classes: Vec<Class>,
    },
}

/// One stop of a ramp.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// Absolute value of the stop.
    #[serde(default)]
    pub value: Option<f64>,
    /// Position as a fraction of the layer's range, 0 to 1.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// `#rrggbb` or `#rrggbbaa`.
    pub color: String,
    /// Legend label.
    #[serde(default)]
    pub label: Option<String>,
}

/// One class.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    /// Lower bound.
    pub min: f64,
    /// Upper bound.
    pub max: f64,
    /// Whether `min` belongs to the class (default true).
    #[serde(default = "yes")]
    pub min_inclusive: bool,
    /// Whether `max` belongs to the class (default false).
    #[serde(default)]
    pub max_inclusive: bool,
    /// `#rrggbb` or `#rrggbbaa`.
    pub color: String,
    /// Legend label.
    #[serde(default)]
    pub label: Option<String>,
}

fn yes() -> bool {
    true
}
fn transparent_hex() -> String {
    "#00000000".to_owned()
}

/// Parses `#rrggbb` or `#rrggbbaa`.
pub fn parse_color(s: &str) -> Option<Rgba> {
    let hex = s.strip_prefix('#')?;
    if !(hex.len() == 6 || hex.len() == 8) || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([
        byte(0)?,
        byte(2)?,
        byte(4)?,
        if hex.len() == 8 { byte(6)? } else { 255 },
    ])
}

/// Formats a colour as `#rrggbb` (or `#rrggbbaa` when not opaque).
pub fn format_color(c: Rgba) -> String {
    if c[3] == 255 {
        format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
    } else {
        format!("#{:02x}{:02x}{:02x}{:02x}", c[0], c[1], c[2], c[3])
    }
}

impl Style {
    /// Loads `dir/NAME.json`; `NAME_r` loads `NAME` reversed.
    pub fn load(dir: &Path, name: &str) -> Result<Self, StyleError> {
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(StyleError::Unknown(name.to_owned()));
        }
        let (base, reversed) = match name.strip_suffix("_r") {
            Some(base) if !dir.join(format!("{name}.json")).exists() => (base, true),
            _ => (name, false),
        };
        let text = std::fs::read_to_string(dir.join(format!("{base}.json")))
            .map_err(|_| StyleError::Unknown(name.to_owned()))?;
        let mut style: Style = serde_json::from_str(&text).map_err(|e| StyleError::Invalid {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
        style.name = name.to_owned();
        if reversed {
            style.reverse();
        }
        // Validate once, against a unit range, so errors surface at load time.
        style.resolve(Some((0.0, 1.0)))?;
        Ok(style)
    }

    /// Reverses the colours (stops keep their positions; classes keep their bounds).
    pub fn reverse(&mut self) {
        match &mut self.kind {
            StyleKind::Ramp { stops } => {
                let colors: Vec<String> = stops.iter().rev().map(|s| s.color.clone()).collect();
                for (stop, color) in stops.iter_mut().zip(colors) {
                    stop.color = color;
                }
            }
            StyleKind::Classes { classes } => {
                let colors: Vec<String> = classes.iter().rev().map(|c| c.color.clone()).collect();
                for (class, color) in classes.iter_mut().zip(colors) {
                    class.color = color;
                }
            }
        }
    }

    /// Whether stops are placed by fraction (and so need a value range).
    pub fn needs_range(&self) -> bool {
        matches!(&self.kind, StyleKind::Ramp { stops } if stops.iter().any(|s| s.fraction.is_some()))
    }

    /// Resolves the style for a layer whose values span `range`.
    pub fn resolve(&self, range: Option<(f64, f64)>) -> Result<Colormap, StyleError> {
        let invalid = |message: String| StyleError::Invalid {
            name: self.name.clone(),
            message,
        };
        let color = |s: &str| {
            parse_color(s).ok_or_else(|| invalid(format!("`{s}` is not #rrggbb or #rrggbbaa")))
        };
        let nodata = color(&self.nodata_color)?;
        let kind = match &self.kind {
            StyleKind::Ramp { stops } => {
                if stops.len() < 2 {
                    return Err(invalid("a ramp needs at least two stops".into()));
                }
                let mut resolved = Vec::with_capacity(stops.len());
                for stop in stops {
                    let value = match (stop.value, stop.fraction) {
                        (Some(v), None) => v,
                        (None, Some(f)) => {
                            let (lo, hi) = range.ok_or_else(|| {
                                invalid(
                                    "stops are placed by fraction: the layer needs a `range`"
                                        .into(),
                                )
                            })?;
                            lo + f * (hi - lo)
                        }
                        _ => {
                            return Err(invalid(
                                "each stop needs exactly one of `value` and `fraction`".into(),
                            ));
                        }
                    };
                    if !value.is_finite() {
                        return Err(invalid("stop values must be finite".into()));
                    }
                    resolved.push(ResolvedStop {
                        value,
                        color: color(&stop.color)?,
                        label: stop.label.clone(),
                    });
                }
                if resolved.windows(2).any(|w| w[1].value < w[0].value) {
                    return Err(invalid("stops must be in increasing order".into()));
                }
                MapKind::Ramp(resolved)
            }
            StyleKind::Classes { classes } => {
                if classes.is_empty() {
                    return Err(invalid("no classes".into()));
                }
                let mut resolved = Vec::with_capacity(classes.len());
                for c in classes {
                    if c.min.is_nan() || c.max.is_nan() || c.min > c.max {
                        return Err(invalid(format!(
                            "class min {} is above max {}",
                            c.min, c.max
                        )));
                    }
                    resolved.push(ResolvedClass {
                        class: c.clone(),
                        color: color(&c.color)?,
                    });
                }
                MapKind::Classes(resolved)
            }
        };
        Ok(Colormap { kind, nodata })
    }
}

#[derive(Debug, Clone)]
struct ResolvedStop {
    value: f64,
    color: Rgba,
    label: Option<String>,
}

#[derive(Debug, Clone)]
struct ResolvedClass {
    class: Class,
    color: Rgba,
}

#[derive(Debug, Clone)]
enum MapKind {
    Ramp(Vec<ResolvedStop>),
    Classes(Vec<ResolvedClass>),
}

/// A style resolved for one layer: colours values.
#[derive(Debug, Clone)]
pub struct Colormap {
    kind: MapKind,
    /// Colour of nodata pixels.
    pub nodata: Rgba,
}

/// One legend entry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LegendEntry {
    /// `#rrggbb`.
    pub color: String,
    /// The stop's value, or the class's lower bound.
    pub value: f64,
    /// The class's upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Colormap {
    /// The colour of `v` (`None` for NaN is the caller's nodata).
    pub fn color(&self, v: f64) -> Rgba {
        if v.is_nan() {
            return self.nodata;
        }
        match &self.kind {
            MapKind::Ramp(stops) => {
                // At least two stops (checked when resolving).
                let i = stops.partition_point(|s| s.value <= v);
                if i == 0 {
                    return stops[0].color;
                }
                if i == stops.len() {
                    return stops[stops.len() - 1].color;
                }
                let (a, b) = (&stops[i - 1], &stops[i]);
                if v == a.value || b.value == a.value {
                    return a.color;
                }
                let t = (v - a.value) / (b.value - a.value);
                let mix = |k: usize| {
                    (f64::from(a.color[k]) + t * (f64::from(b.color[k]) - f64::from(a.color[k])))
                        .round() as u8
                };
                [mix(0), mix(1), mix(2), mix(3)]
            }
            MapKind::Classes(_) => self.class_of(v).map_or(self.nodata, |c| c.color),
        }
    }

    /// The class holding `v` (class styles).
    fn class_of(&self, v: f64) -> Option<&ResolvedClass> {
        let MapKind::Classes(classes) = &self.kind else {
            return None;
        };
        classes.iter().find(|c| {
            let k = &c.class;
            (v > k.min || (k.min_inclusive && v == k.min))
                && (v < k.max || (k.max_inclusive && v == k.max))
        })
    }

    /// The label of the class holding `v` (class styles with labels only).
    pub fn class_label(&self, v: f64) -> Option<&str> {
        self.class_of(v).and_then(|c| c.class.label.as_deref())
    }

    /// The distinct colours when there are few enough for a PNG palette (classes).
    pub fn palette(&self) -> Option<Vec<Rgba>> {
        match &self.kind {
            MapKind::Ramp(_) => None,
            MapKind::Classes(classes) => {
                let mut colors = vec![self.nodata];
                for c in classes {
                    if !colors.contains(&c.color) {
                        colors.push(c.color);
                    }
                }
                (colors.len() <= 256).then_some(colors)
            }
        }
    }

    /// A continuous ramp sampled into a palette (`None` for class styles and for ramps
    /// whose stops all share one value). Tiles of ramps are drawn with these colours:
    /// TiTiler and rio-tiler bin values into 256 colours the same way, and an indexed PNG
    /// is a fraction of the bytes of an RGBA one.
    pub fn ramp_palette(&self) -> Option<RampPalette> {
        let MapKind::Ramp(stops) = &self.kind else {
            return None;
        };
        let (min, max) = (stops[0].value, stops[stops.len() - 1].value);
        let width = max - min;
        if !(width > 0.0 && width.is_finite()) {
            return None;
        }
        let steps = f64::from(RampPalette::LEVELS - 1);
        let mut colors = Vec::with_capacity(usize::from(RampPalette::LEVELS) + 1);
        colors.push(self.nodata);
        colors.extend(
            (0..RampPalette::LEVELS).map(|k| self.color(min + width * f64::from(k) / steps)),
        );
        Some(RampPalette {
            colors,
            min,
            scale: steps / width,
        })
    }

    /// Legend entries, lowest value first.
    pub fn legend(&self) -> Vec<LegendEntry> {
        match &self.kind {
            MapKind::Ramp(stops) => stops
                .iter()
                .map(|s| LegendEntry {
                    color: format_color(s.color),
                    value: s.value,
                    max: None,
                    label: s.label.clone(),
                })
                .collect(),
            MapKind::Classes(classes) => classes
                .iter()
                .map(|c| LegendEntry {
                    color: format_color(c.color),
                    value: c.class.min,
                    max: Some(c.class.max),
                    label: c.class.label.clone(),
                })
                .collect(),
        }
    }

    /// Whether this is a continuous ramp.
    pub fn is_ramp(&self) -> bool {
        matches!(self.kind, MapKind::Ramp(_))
    }

    /// The value span covered by the legend.
    pub fn span(&self) -> (f64, f64) {
        match &self.kind {
            MapKind::Ramp(stops) => (stops[0].value, stops[stops.len() - 1].value),
            MapKind::Classes(classes) => (
                classes
                    .iter()
                    .map(|c| c.class.min)
                    .fold(f64::INFINITY, f64::min),
                classes
                    .iter()
                    .map(|c| c.class.max)
                    .fold(f64::NEG_INFINITY, f64::max),
            ),
        }
    }
}

/// A ramp sampled at [`RampPalette::LEVELS`] evenly spaced values of its span; index 0
/// is the nodata colour. A value is drawn with the sample nearest to it, so a pixel's
/// colour differs from the exact ramp colour by at most half the colour change between
/// two neighbouring samples.
#[derive(Debug, Clone)]
pub struct RampPalette {
    colors: Vec<Rgba>,
    min: f64,
    scale: f64,
}

impl RampPalette {
    /// Colours sampled from the ramp (at most 255: one index is nodata). 253 samples make
    /// 252 = 2^2 * 3^2 * 7 intervals, so stops placed at halves, thirds, quarters, sixths
    /// or sevenths of the span fall on a sample and are drawn in exactly their colour.
    pub const LEVELS: u16 = 253;

    /// The palette: nodata first, then the samples, lowest value first.
    pub fn colors(&self) -> &[Rgba] {
        &self.colors
    }

    /// The palette index drawing `v` (values beyond the span take the end colours, as
    /// the ramp does; NaN is nodata).
    pub fn index(&self, v: f64) -> u8 {
        if v.is_nan() {
            return 0;
        }
        let k = ((v - self.min) * self.scale)
            .round()
            .clamp(0.0, f64::from(Self::LEVELS - 1));
        // In 0..=254 after the clamp.
        k as u8 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styles_dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("styles")
    }

    #[test]
    fn every_shipped_style_loads() {
        let mut count = 0;
        for entry in std::fs::read_dir(styles_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_stem().unwrap().to_string_lossy().to_string();
                let style = Style::load(&styles_dir(), &name).unwrap();
                style.resolve(Some((-1.0, 1.0))).unwrap();
                Style::load(&styles_dir(), &format!("{name}_r")).unwrap();
                count += 1;
            }
        }
        assert!(count >= 5);
    }

    #[test]
    fn values_at_stops_get_exactly_the_stop_color() {
        let style = Style::load(&styles_dir(), "viridis").unwrap();
        let map = style.resolve(Some((25.0, 752.0))).unwrap();
        let legend = map.legend();
        assert_eq!(legend.len(), 5);
        for entry in &legend {
            assert_eq!(format_color(map.color(entry.value)), entry.color);
        }
        // The original Planscape viridis: poor (0 %) yellow, excellent (100 %) purple.
        assert_eq!(legend[0].color, "#fde725");
        assert_eq!(legend[4].color, "#440154");
        assert_eq!(
            map.color(0.0),
            map.color(25.0),
            "below the range takes the first colour"
        );
        let mid = map.color((25.0 + 206.75) / 2.0);
        assert!(mid != map.color(25.0) && mid != map.color(206.75));
        let reversed = Style::load(&styles_dir(), "viridis_r")
            .unwrap()
            .resolve(Some((25.0, 752.0)))
            .unwrap();
        assert_eq!(format_color(reversed.color(25.0)), "#440154");
    }

    #[test]
    fn condition_bands_follow_the_design_intervals() {
        let map = Style::load(&styles_dir(), "condition_bands")
            .unwrap()
            .resolve(None)
            .unwrap();
        let band = |v: f64| {
            let c = format_color(map.color(v));
            map.legend()
                .into_iter()
                .find(|e| e.color == c)
                .and_then(|e| e.label)
                .unwrap_or_default()
        };
        assert_eq!(band(-1.0), "Poor");
        assert_eq!(band(-0.6), "Fair");
        assert_eq!(band(-0.2), "Ok");
        assert_eq!(band(0.2), "Ok");
        assert_eq!(band(0.2000001), "Good");
        assert_eq!(band(0.6), "Good");
        assert_eq!(band(0.61), "Excellent");
        assert_eq!(band(1.0), "Excellent");
        assert_eq!(map.color(1.5), map.nodata);
        assert!(map.palette().is_some_and(|p| p.len() == 6));
    }

    /// The largest change of one channel between neighbouring palette samples.
    fn largest_step(colors: &[Rgba]) -> u8 {
        colors[1..]
            .windows(2)
            .flat_map(|w| (0..4).map(move |k| w[0][k].abs_diff(w[1][k])))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn ramp_palettes_draw_within_half_a_step_of_the_exact_ramp() {
        for name in ["viridis", "turbo", "inferno", "wistia", "normalized"] {
            let style = Style::load(&styles_dir(), name).unwrap();
            let map = style.resolve(Some((-20.0, 300.0))).unwrap();
            let ramp = map.ramp_palette().expect("a ramp");
            let colors = ramp.colors();
            assert_eq!(colors.len(), 254, "{name}");
            assert_eq!(colors[0], map.nodata, "{name}");
            assert_eq!(ramp.index(f64::NAN), 0);
            let step = largest_step(colors);
            let (lo, hi) = map.span();
            let mut worst = 0u8;
            for i in 0..=20_000 {
                // Beyond both ends too: those take the end colours, as the ramp does.
                let v = lo - 10.0 + (hi - lo + 20.0) * f64::from(i) / 20_000.0;
                let drawn = colors[usize::from(ramp.index(v))];
                let exact = map.color(v);
                for k in 0..4 {
                    worst = worst.max(drawn[k].abs_diff(exact[k]));
                }
            }
            // A value lies within half a sample of its colour's sample; rounding adds one.
            assert!(
                worst <= step / 2 + 1,
                "{name}: off by {worst}, steps {step}"
            );
            assert!(worst <= 3, "{name}: off by {worst} levels");
            for entry in map.legend() {
                let v = entry.value;
                assert_eq!(
                    colors[usize::from(ramp.index(v))],
                    map.color(v),
                    "{name}: the stop at {v} is drawn in its colour"
                );
            }
        }
        let classes = Style::load(&styles_dir(), "condition_bands").unwrap();
        assert!(classes.resolve(None).unwrap().ramp_palette().is_none());
    }

    #[test]
    fn bad_styles_are_refused() {
        assert!(matches!(
            Style::load(&styles_dir(), "no_such_style"),
            Err(StyleError::Unknown(_))
        ));
        assert!(matches!(
            Style::load(&styles_dir(), "../etc/passwd"),
            Err(StyleError::Unknown(_))
        ));
        let fraction_style = Style::load(&styles_dir(), "turbo").unwrap();
        assert!(fraction_style.needs_range());
        assert!(fraction_style.resolve(None).is_err());
        assert_eq!(parse_color("#ff000080"), Some([255, 0, 0, 128]));
        assert_eq!(parse_color("red"), None);
    }
}
