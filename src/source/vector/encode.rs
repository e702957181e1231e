//! From EPSG:3857 features to one MVT layer (spec 2.1): tile coordinates, clipping to
//! the buffered tile, integer snapping, ring orientation, tiny-polygon reduction, and
//! protobuf encoding through the `mvt` crate.

use geo_types::{Coord, Geometry, LineString, Polygon};
use mvt::{GeomEncoder, GeomType};

use super::clip::{ClipRect, Pt};
use crate::tile::Bounds;

/// Tile extent in MVT units.
pub const EXTENT: u32 = 4096;
/// Buffer around the tile, in MVT units.
pub const BUFFER: u32 = 64;
/// One screen pixel of a 256 px tile, in MVT units.
pub const PIXEL: f64 = EXTENT as f64 / 256.0;
/// Douglas–Peucker tolerance below the layer's maximum zoom, in MVT units: an eighth of
/// a pixel, invisible even on a 2x display. At the maximum zoom (which clients
/// overzoom) the tolerance is one unit, the grid itself.
pub const SIMPLIFY_UNITS: f64 = 2.0;

/// A property value.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// Text.
    Str(String),
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Boolean.
    Bool(bool),
}

/// The geometry of one feature as the database returned it (EPSG:3857 metres).
#[derive(Debug, Clone)]
pub enum FeatureGeom {
    /// A full (simplified) geometry.
    Full(Geometry<f64>),
    /// A feature smaller than a pixel at this zoom: only its bounding box was fetched.
    Tiny(Bounds),
}

/// One feature ready to encode.
#[derive(Debug, Clone)]
pub struct Feature {
    /// MVT feature id.
    pub id: Option<u64>,
    /// `(property index, value)`; `None` values are simply absent.
    pub props: Vec<(usize, PropValue)>,
    /// Geometry.
    pub geom: FeatureGeom,
}

/// Encoding failed (only on values the `mvt` crate cannot represent).
#[derive(Debug, thiserror::Error)]
#[error("MVT encoding failed: {0}")]
pub struct EncodeError(String);

impl From<mvt::Error> for EncodeError {
    fn from(e: mvt::Error) -> Self {
        Self(e.to_string())
    }
}

/// Maps EPSG:3857 metres into tile units (y down).
#[derive(Clone, Copy)]
struct ToTile {
    xmin: f64,
    ymax: f64,
    scale: f64,
}

impl ToTile {
    fn new(bounds: &Bounds) -> Self {
        Self {
            xmin: bounds.xmin,
            ymax: bounds.ymax,
            scale: f64::from(EXTENT) / (bounds.xmax - bounds.xmin),
        }
    }
    fn pt(&self, c: Coord<f64>) -> Pt {
        (
            (c.x - self.xmin) * self.scale,
            (self.ymax - c.y) * self.scale,
        )
    }
}

/// Encodes `features` as the single layer `layer` of a tile with `bounds`; returns the
/// protobuf bytes, or an empty vector when no feature is left after clipping.
pub fn encode_layer(
    layer: &str,
    bounds: &Bounds,
    prop_names: &[String],
    features: &[Feature],
) -> Result<Vec<u8>, EncodeError> {
    let to_tile = ToTile::new(bounds);
    let clip = ClipRect {
        min: -f64::from(BUFFER),
        max: f64::from(EXTENT + BUFFER),
    };
    let tile = mvt::Tile::new(EXTENT);
    let mut mvt_layer = tile.create_layer(layer);
    let mut tiny = TinyState::default();
    let mut count = 0usize;
    for feature in features {
        let encoded = match &feature.geom {
            FeatureGeom::Full(geom) => encode_geometry(geom, to_tile, clip)?,
            FeatureGeom::Tiny(b) => tiny_polygon(b, to_tile, clip, &mut tiny)?,
        };
        let Some(data) = encoded else { continue };
        let mut f = mvt_layer.into_feature(data);
        if let Some(id) = feature.id {
            f.set_id(id);
        }
        for (index, value) in &feature.props {
            let Some(key) = prop_names.get(*index) else {
                continue;
            };
            match value {
                PropValue::Str(s) => f.add_tag_string(key, s),
                PropValue::Int(i) => f.add_tag_sint(key, *i),
                PropValue::Float(v) => f.add_tag_double(key, *v),
                PropValue::Bool(b) => f.add_tag_bool(key, *b),
            }
        }
        mvt_layer = f.into_layer();
        count += 1;
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut tile = tile;
    tile.add_layer(mvt_layer)?;
    Ok(tile.to_bytes()?)
}

/// Accumulated area and occupied pixels of the tiny-polygon reduction.
#[derive(Default)]
struct TinyState {
    area: f64,
    occupied: std::collections::HashSet<(i32, i32)>,
}

/// Tippecanoe-style tiny polygon reduction: polygons under a pixel are not drawn one by
/// one; their areas accumulate, and each time a pixel's worth has built up, one
/// pixel-sized square stands for them at the current feature's place (unless that
/// pixel already has one). A dense layer thus keeps its look at low zoom while the
/// tile stays small.
fn tiny_polygon(
    b: &Bounds,
    to_tile: ToTile,
    clip: ClipRect,
    state: &mut TinyState,
) -> Result<Option<mvt::GeomData>, EncodeError> {
    let (x0, y0) = to_tile.pt(Coord {
        x: b.xmin,
        y: b.ymax,
    });
    let (x1, y1) = to_tile.pt(Coord {
        x: b.xmax,
        y: b.ymin,
    });
    let center = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    if !clip.contains(center) {
        return Ok(None);
    }
    // An ellipse inscribed in the box: a fair stand-in for a compact blob's area.
    state.area += (x1 - x0).abs() * (y1 - y0).abs() * std::f64::consts::FRAC_PI_4;
    if state.area < PIXEL * PIXEL {
        return Ok(None);
    }
    let cell = (
        (center.0 / PIXEL).floor() as i32,
        (center.1 / PIXEL).floor() as i32,
    );
    if !state.occupied.insert(cell) {
        return Ok(None);
    }
    state.area -= PIXEL * PIXEL;
    let (cx, cy) = (f64::from(cell.0) * PIXEL, f64::from(cell.1) * PIXEL);
    let square = [
        (cx, cy),
        (cx + PIXEL, cy),
        (cx + PIXEL, cy + PIXEL),
        (cx, cy + PIXEL),
    ];
    let mut enc = GeomEncoder::new(GeomType::Polygon);
    let ring: Vec<(i32, i32)> = square.iter().map(|&(x, y)| (x as i32, y as i32)).collect();
    push_ring(&mut enc, &ring)?;
    Ok(Some(enc.encode()?))
}

fn encode_geometry(
    geom: &Geometry<f64>,
    to_tile: ToTile,
    clip: ClipRect,
) -> Result<Option<mvt::GeomData>, EncodeError> {
    match geom {
        Geometry::Point(p) => points(std::iter::once(p.0), to_tile, clip),
        Geometry::MultiPoint(mp) => points(mp.iter().map(|p| p.0), to_tile, clip),
        Geometry::LineString(l) => lines(std::iter::once(l), to_tile, clip),
        Geometry::MultiLineString(ml) => lines(ml.iter(), to_tile, clip),
        Geometry::Polygon(p) => polygons(std::iter::once(p), to_tile, clip),
        Geometry::MultiPolygon(mp) => polygons(mp.iter(), to_tile, clip),
        Geometry::GeometryCollection(gc) => {
            // MVT has no collections: keep the first kind that encodes.
            for g in gc.iter() {
                if let Some(data) = encode_geometry(g, to_tile, clip)? {
                    return Ok(Some(data));
                }
            }
            Ok(None)
        }
        Geometry::Rect(r) => polygons(std::iter::once(&r.to_polygon()), to_tile, clip),
        Geometry::Triangle(t) => polygons(std::iter::once(&t.to_polygon()), to_tile, clip),
        Geometry::Line(l) => lines(
            std::iter::once(&LineString::from(vec![l.start, l.end])),
            to_tile,
            clip,
        ),
    }
}

fn snap(p: Pt) -> (i32, i32) {
    (p.0.round() as i32, p.1.round() as i32)
}

fn points(
    coords: impl Iterator<Item = Coord<f64>>,
    to_tile: ToTile,
    clip: ClipRect,
) -> Result<Option<mvt::GeomData>, EncodeError> {
    let mut enc = GeomEncoder::new(GeomType::Point);
    let mut any = false;
    for c in coords {
        let p = to_tile.pt(c);
        if clip.contains(p) {
            let (x, y) = snap(p);
            enc.add_point(f64::from(x), f64::from(y))?;
            any = true;
        }
    }
    Ok(if any { Some(enc.encode()?) } else { None })
}

fn lines<'a>(
    lines: impl Iterator<Item = &'a LineString<f64>>,
    to_tile: ToTile,
    clip: ClipRect,
) -> Result<Option<mvt::GeomData>, EncodeError> {
    let mut enc = GeomEncoder::new(GeomType::Linestring);
    let mut any = false;
    for line in lines {
        let pts: Vec<Pt> = line.0.iter().map(|&c| to_tile.pt(c)).collect();
        for part in clip.line(&pts) {
            let mut snapped: Vec<(i32, i32)> = part.into_iter().map(snap).collect();
            snapped.dedup();
            if snapped.len() < 2 {
                continue;
            }
            for &(x, y) in &snapped {
                enc.add_point(f64::from(x), f64::from(y))?;
            }
            enc.complete_geom()?;
            any = true;
        }
    }
    Ok(if any { Some(enc.encode()?) } else { None })
}

/// Twice the signed area of a ring in tile coordinates (y down): positive means
/// clockwise on screen, which MVT 2.1 requires of exterior rings.
fn signed_area2(ring: &[(i32, i32)]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1)
        })
        .sum()
}

/// Clips, snaps and de-duplicates a ring; `None` when it collapses.
fn prepare_ring(
    ring: &LineString<f64>,
    to_tile: ToTile,
    clip: ClipRect,
    exterior: bool,
) -> Option<Vec<(i32, i32)>> {
    let mut pts: Vec<Pt> = ring.0.iter().map(|&c| to_tile.pt(c)).collect();
    if pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    let clipped = clip.ring(&pts);
    let mut snapped: Vec<(i32, i32)> = clipped.into_iter().map(snap).collect();
    snapped.dedup();
    while snapped.len() > 1 && snapped.first() == snapped.last() {
        snapped.pop();
    }
    if snapped.len() < 3 {
        return None;
    }
    let area = signed_area2(&snapped);
    if area == 0 {
        return None;
    }
    if (area > 0) != exterior {
        snapped.reverse();
    }
    Some(snapped)
}

fn polygons<'a>(
    polys: impl Iterator<Item = &'a Polygon<f64>>,
    to_tile: ToTile,
    clip: ClipRect,
) -> Result<Option<mvt::GeomData>, EncodeError> {
    let mut enc = GeomEncoder::new(GeomType::Polygon);
    let mut any = false;
    let mut last_point = None;
    for poly in polys {
        let Some(exterior) = prepare_ring(poly.exterior(), to_tile, clip, true) else {
            continue;
        };
        last_point = push_ring_after(&mut enc, exterior, last_point)?;
        for hole in poly.interiors() {
            if let Some(ring) = prepare_ring(hole, to_tile, clip, false) {
                last_point = push_ring_after(&mut enc, ring, last_point)?;
            }
        }
        any = true;
    }
    Ok(if any { Some(enc.encode()?) } else { None })
}

/// Pushes a ring, rotating its start when it would begin on the previous ring's last
/// point (the encoder would then merge the two and drop the ring's MoveTo).
fn push_ring_after(
    enc: &mut GeomEncoder<f64>,
    mut ring: Vec<(i32, i32)>,
    last_point: Option<(i32, i32)>,
) -> Result<Option<(i32, i32)>, EncodeError> {
    if last_point == ring.first().copied() {
        ring.rotate_left(1);
    }
    push_ring(enc, &ring)?;
    Ok(ring.last().copied())
}

fn push_ring(enc: &mut GeomEncoder<f64>, ring: &[(i32, i32)]) -> Result<(), EncodeError> {
    for &(x, y) in ring {
        enc.add_point(f64::from(x), f64::from(y))?;
    }
    enc.complete_geom()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::polygon;

    fn bounds() -> Bounds {
        // A 4096 m tile so that one metre is one tile unit.
        Bounds {
            xmin: 0.0,
            ymin: 0.0,
            xmax: 4096.0,
            ymax: 4096.0,
        }
    }

    #[test]
    fn exterior_rings_are_clockwise_in_tile_space() {
        // Counter-clockwise in map space (OGC exterior).
        let poly = polygon![(x: 100.0, y: 100.0), (x: 1000.0, y: 100.0), (x: 1000.0, y: 1000.0), (x: 100.0, y: 1000.0)];
        let to_tile = ToTile::new(&bounds());
        let ring = prepare_ring(
            poly.exterior(),
            to_tile,
            ClipRect {
                min: -64.0,
                max: 4160.0,
            },
            true,
        )
        .unwrap();
        assert!(signed_area2(&ring) > 0);
        let hole = prepare_ring(
            poly.exterior(),
            to_tile,
            ClipRect {
                min: -64.0,
                max: 4160.0,
            },
            false,
        )
        .unwrap();
        assert!(signed_area2(&hole) < 0);
    }

    #[test]
    fn collapsed_and_outside_features_are_dropped() {
        let tiny = polygon![(x: 10.0, y: 10.0), (x: 10.2, y: 10.0), (x: 10.2, y: 10.2)];
        let far = polygon![(x: 9000.0, y: 9000.0), (x: 9100.0, y: 9000.0), (x: 9100.0, y: 9100.0)];
        let features: Vec<Feature> = [tiny, far]
            .into_iter()
            .map(|p| Feature {
                id: None,
                props: vec![],
                geom: FeatureGeom::Full(p.into()),
            })
            .collect();
        assert!(
            encode_layer("l", &bounds(), &[], &features)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn tiny_polygons_accumulate_into_pixels() {
        let tiny = |i: usize| Feature {
            id: Some(i as u64),
            props: vec![],
            geom: FeatureGeom::Tiny(Bounds {
                xmin: 100.0,
                ymin: 100.0,
                xmax: 105.0,
                ymax: 105.0,
            }),
        };
        // Each is 25 * pi/4 ~ 19.6 units^2; a pixel is 256: 13 of them make one square.
        let few: Vec<Feature> = (0..12).map(tiny).collect();
        assert!(encode_layer("l", &bounds(), &[], &few).unwrap().is_empty());
        let enough: Vec<Feature> = (0..14).map(tiny).collect();
        assert!(
            !encode_layer("l", &bounds(), &[], &enough)
                .unwrap()
                .is_empty()
        );
    }
}
