//! What a seed or a purge covers: a bounding box or polygons (GeoJSON, a named region),
//! and the tiles of a zoom level that it touches.
//!
//! Polygons are projected vertex by vertex to EPSG:3857 with straight edges there, as
//! PostGIS does with `ST_Transform`; a tile is covered when its envelope intersects the
//! polygon (`ST_Intersects(geom, ST_TileEnvelope(z, x, y))`, touching included). Tiles are
//! found by descending the quadtree from the whole world: a quadrant wholly inside the
//! polygon contributes all its tiles without further tests, one wholly outside is
//! dropped, and only those crossing the outline are split.

use geo::{BoundingRect, Intersects};
use geo_types::{Coord, LineString, MultiPolygon, Point, Polygon, Rect};
use geozero::ToGeo;

use crate::tile::{Bounds, HALF_WORLD, MAX_LATITUDE, TileId, lonlat_to_mercator, tile_size_m};

/// Why a coverage cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    /// The bbox text is malformed or inverted.
    #[error("invalid bbox: {0}")]
    Bbox(String),
    /// The GeoJSON cannot be parsed.
    #[error("not GeoJSON: {0}")]
    GeoJson(String),
    /// The GeoJSON holds no polygon with an area.
    #[error("the GeoJSON holds no polygon")]
    Empty,
}

/// An area to cover.
#[derive(Debug, Clone)]
pub enum Coverage {
    /// A rectangle (EPSG:3857).
    Bbox(Bounds),
    /// Polygons (EPSG:3857) and their bounds.
    Area {
        /// The polygons.
        shape: MultiPolygon<f64>,
        /// Their bounds.
        bounds: Bounds,
    },
}

/// How a quadtree cell relates to the coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Outside,
    Inside,
    Crossing,
}

impl Coverage {
    /// The whole world.
    pub fn world() -> Self {
        Self::Bbox(Bounds {
            xmin: -HALF_WORLD,
            ymin: -HALF_WORLD,
            xmax: HALF_WORLD,
            ymax: HALF_WORLD,
        })
    }

    /// A lon/lat box `west,south,east,north`.
    pub fn parse_bbox(text: &str) -> Result<Self, CoverageError> {
        let values: Vec<f64> = text
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| CoverageError::Bbox(format!("`{text}` is not west,south,east,north")))?;
        let [w, s, e, n] = values[..] else {
            return Err(CoverageError::Bbox(format!(
                "`{text}` has {} numbers, not 4 (west,south,east,north)",
                values.len()
            )));
        };
        Self::from_bbox(w, s, e, n)
    }

    /// A lon/lat box.
    pub fn from_bbox(w: f64, s: f64, e: f64, n: f64) -> Result<Self, CoverageError> {
        if ![w, s, e, n].iter().all(|v| v.is_finite()) {
            return Err(CoverageError::Bbox("values must be finite".into()));
        }
        if !(-180.0..=180.0).contains(&w) || !(-180.0..=180.0).contains(&e) {
            return Err(CoverageError::Bbox(
                "longitudes must be within -180..180".into(),
            ));
        }
        if !(-90.0..=90.0).contains(&s) || !(-90.0..=90.0).contains(&n) {
            return Err(CoverageError::Bbox(
                "latitudes must be within -90..90".into(),
            ));
        }
        if w >= e || s >= n {
            return Err(CoverageError::Bbox(
                "west must be below east and south below north".into(),
            ));
        }
        let (xmin, ymin) = project(w, s);
        let (xmax, ymax) = project(e, n);
        Ok(Self::Bbox(Bounds {
            xmin,
            ymin,
            xmax,
            ymax,
        }))
    }

    /// The polygons of a GeoJSON text in lon/lat (a geometry, a Feature or a
    /// FeatureCollection; other geometry types are ignored).
    pub fn from_geojson(text: &str) -> Result<Self, CoverageError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CoverageError::GeoJson(e.to_string()))?;
        match value.get("type").and_then(serde_json::Value::as_str) {
            None => return Err(CoverageError::GeoJson("no GeoJSON `type` member".into())),
            Some("FeatureCollection")
                if value
                    .get("features")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(Vec::is_empty) =>
            {
                return Err(CoverageError::Empty);
            }
            Some(_) => {}
        }
        let geometry = geozero::geojson::GeoJson(text)
            .to_geo()
            .map_err(|e| CoverageError::GeoJson(e.to_string()))?;
        let mut polygons = Vec::new();
        collect_polygons(geometry, &mut polygons);
        Self::from_lonlat(MultiPolygon(polygons))
    }

    /// Polygons in lon/lat.
    pub fn from_lonlat(shape: MultiPolygon<f64>) -> Result<Self, CoverageError> {
        let projected: Vec<Polygon<f64>> = shape
            .0
            .into_iter()
            .filter(|p| p.exterior().0.len() >= 4)
            .map(|p| {
                let (exterior, interiors) = p.into_inner();
                Polygon::new(
                    project_ring(&exterior),
                    interiors.iter().map(project_ring).collect(),
                )
            })
            .collect();
        let shape = MultiPolygon(projected);
        let rect = shape.bounding_rect().ok_or(CoverageError::Empty)?;
        if rect.width() <= 0.0 || rect.height() <= 0.0 {
            return Err(CoverageError::Empty);
        }
        Ok(Self::Area {
            bounds: Bounds {
                xmin: rect.min().x,
                ymin: rect.min().y,
                xmax: rect.max().x,
                ymax: rect.max().y,
            },
            shape,
        })
    }

    /// Bounds in EPSG:3857.
    pub fn bounds(&self) -> Bounds {
        match self {
            Self::Bbox(b) | Self::Area { bounds: b, .. } => *b,
        }
    }

    /// How many tiles of zoom `z` the coverage's bounds span: an upper bound of
    /// [`Coverage::tiles`]' length, known without enumerating them.
    pub fn max_tiles(&self, z: u8) -> u64 {
        let (x0, y0, x1, y1) = tile_range(&self.bounds(), z);
        (u64::from(x1) - u64::from(x0) + 1) * (u64::from(y1) - u64::from(y0) + 1)
    }

    /// The tiles of zoom `z` the coverage touches, row by row.
    pub fn tiles(&self, z: u8) -> Vec<TileId> {
        let mut out = Vec::new();
        match self {
            Self::Bbox(b) => {
                let (x0, y0, x1, y1) = tile_range(b, z);
                for y in y0..=y1 {
                    out.extend((x0..=x1).map(|x| TileId { z, x, y }));
                }
            }
            Self::Area { shape, bounds } => {
                self.descend(shape, bounds, TileId { z: 0, x: 0, y: 0 }, z, &mut out);
                out.sort_by_key(|t| (t.y, t.x));
            }
        }
        out
    }

    /// Whether the coverage touches `tile`.
    pub fn touches(&self, tile: TileId) -> bool {
        match self {
            Self::Bbox(b) => {
                let (x0, y0, x1, y1) = tile_range(b, tile.z);
                (x0..=x1).contains(&tile.x) && (y0..=y1).contains(&tile.y)
            }
            Self::Area { shape, bounds } => relation(shape, bounds, tile) != Relation::Outside,
        }
    }

    fn descend(
        &self,
        shape: &MultiPolygon<f64>,
        bounds: &Bounds,
        tile: TileId,
        z: u8,
        out: &mut Vec<TileId>,
    ) {
        match relation(shape, bounds, tile) {
            Relation::Outside => {}
            Relation::Inside => {
                let shift = z - tile.z;
                let (x0, y0) = (tile.x << shift, tile.y << shift);
                let n = 1u32 << shift;
                for y in y0..y0 + n {
                    out.extend((x0..x0 + n).map(|x| TileId { z, x, y }));
                }
            }
            Relation::Crossing if tile.z == z => out.push(tile),
            Relation::Crossing => {
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let child = TileId {
                        z: tile.z + 1,
                        x: tile.x * 2 + dx,
                        y: tile.y * 2 + dy,
                    };
                    self.descend(shape, bounds, child, z, out);
                }
            }
        }
    }
}

fn project(lon: f64, lat: f64) -> (f64, f64) {
    lonlat_to_mercator(
        lon.clamp(-180.0, 180.0),
        lat.clamp(-MAX_LATITUDE, MAX_LATITUDE),
    )
}

fn project_ring(ring: &LineString<f64>) -> LineString<f64> {
    ring.0
        .iter()
        .map(|c| {
            let (x, y) = project(c.x, c.y);
            Coord { x, y }
        })
        .collect()
}

fn collect_polygons(geometry: geo_types::Geometry<f64>, out: &mut Vec<Polygon<f64>>) {
    use geo_types::Geometry as G;
    match geometry {
        G::Polygon(p) => out.push(p),
        G::MultiPolygon(mp) => out.extend(mp.0),
        G::GeometryCollection(gc) => {
            for g in gc.0 {
                collect_polygons(g, out);
            }
        }
        _ => {}
    }
}

/// The tile columns and rows a box spans at `z` (touching edges included, as
/// `ST_Intersects` counts them).
fn tile_range(b: &Bounds, z: u8) -> (u32, u32, u32, u32) {
    let size = tile_size_m(z);
    let max = f64::from((1u32 << z) - 1);
    let col = |x: f64| ((x + HALF_WORLD) / size).floor().clamp(0.0, max) as u32;
    let row = |y: f64| ((HALF_WORLD - y) / size).floor().clamp(0.0, max) as u32;
    (col(b.xmin), row(b.ymax), col(b.xmax), row(b.ymin))
}

fn relation(shape: &MultiPolygon<f64>, bounds: &Bounds, tile: TileId) -> Relation {
    let b = tile.bounds();
    if b.xmin > bounds.xmax || b.xmax < bounds.xmin || b.ymin > bounds.ymax || b.ymax < bounds.ymin
    {
        return Relation::Outside;
    }
    let rect = Rect::new(
        Coord {
            x: b.xmin,
            y: b.ymin,
        },
        Coord {
            x: b.xmax,
            y: b.ymax,
        },
    );
    let crosses = shape.0.iter().any(|p| {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .any(|ring| ring.intersects(&rect))
    });
    if crosses {
        return Relation::Crossing;
    }
    // No outline inside or across the cell: it is wholly in or wholly out.
    let centre = Point::new((b.xmin + b.xmax) / 2.0, (b.ymin + b.ymax) / 2.0);
    if shape.intersects(&centre) {
        Relation::Inside
    } else {
        Relation::Outside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbox_parsing_and_errors() {
        assert!(Coverage::parse_bbox("-121,37,-119,39").is_ok());
        for bad in [
            "-121,37,-119",
            "a,b,c,d",
            "-119,37,-121,39",
            "-121,39,-119,37",
            "0,0,200,1",
        ] {
            assert!(Coverage::parse_bbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bbox_tiles_match_the_range() {
        let c = Coverage::parse_bbox("-122.0,37.0,-118.0,40.0").expect("bbox");
        let tiles = c.tiles(7);
        let nw = TileId::containing(-122.0, 40.0, 7);
        let se = TileId::containing(-118.0, 37.0, 7);
        assert_eq!(tiles.len() as u32, (se.x - nw.x + 1) * (se.y - nw.y + 1));
        assert!(tiles.iter().all(|t| c.touches(*t)));
        assert_eq!(Coverage::world().tiles(2).len(), 16);
    }

    #[test]
    fn polygon_tiles_are_a_subset_of_its_bbox_tiles() {
        let triangle =
            r#"{"type":"Polygon","coordinates":[[[-122,37],[-118,37],[-122,40],[-122,37]]]}"#;
        let c = Coverage::from_geojson(triangle).expect("polygon");
        let bbox = Coverage::parse_bbox("-122,37,-118,40").expect("bbox");
        for z in [8, 10, 12] {
            let inside = c.tiles(z);
            let all = bbox.tiles(z);
            // Half the box, plus the tiles along the diagonal.
            assert!(
                inside.len() * 10 < all.len() * 7,
                "z{z}: {} of {}",
                inside.len(),
                all.len()
            );
            assert!(
                inside.len() * 10 > all.len() * 4,
                "z{z}: {} of {}",
                inside.len(),
                all.len()
            );
            assert!(inside.iter().all(|t| all.contains(t)));
            // The south-west corner tile is in, the north-east one is not.
            assert!(inside.contains(&TileId::containing(-121.99, 37.01, z)));
            assert!(!inside.contains(&TileId::containing(-118.01, 39.99, z)));
        }
    }

    #[test]
    fn geojson_errors() {
        assert!(matches!(
            Coverage::from_geojson("not json"),
            Err(CoverageError::GeoJson(_))
        ));
        assert!(matches!(
            Coverage::from_geojson(r#"{"type":"FeatureCollection","features":[]}"#),
            Err(CoverageError::Empty)
        ));
        assert!(matches!(
            Coverage::from_geojson(r#"{"type":"Point","coordinates":[1,2]}"#),
            Err(CoverageError::Empty)
        ));
        let feature = r#"{"type":"Feature","properties":{},"geometry":{"type":"MultiPolygon","coordinates":[[[[-120,38],[-119,38],[-119,39],[-120,38]]]]}}"#;
        assert!(Coverage::from_geojson(feature).is_ok());
    }
}
