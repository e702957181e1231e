//! A plan's geometry as users send it: GeoJSON Polygon or MultiPolygon in longitude,
//! latitude (EPSG:4326), bare or in a Feature or a FeatureCollection of one feature;
//! checked here for shape and size, then by PostGIS for validity, place and area.

use serde_json::Value;

/// Why a geometry is refused (always about the `geometry` field).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GeometryError(pub String);

fn err(message: impl Into<String>) -> GeometryError {
    GeometryError(message.into())
}

/// The bare Polygon/MultiPolygon geometry of the input and its vertex count.
pub fn extract(input: &Value, max_vertices: usize) -> Result<(Value, usize), GeometryError> {
    let geometry = match input.get("type").and_then(Value::as_str) {
        Some("Feature") => input
            .get("geometry")
            .filter(|g| !g.is_null())
            .ok_or_else(|| err("the Feature has no geometry"))?,
        Some("FeatureCollection") => {
            let features = input
                .get("features")
                .and_then(Value::as_array)
                .ok_or_else(|| err("the FeatureCollection has no `features` array"))?;
            match features.as_slice() {
                [one] => one
                    .get("geometry")
                    .filter(|g| !g.is_null())
                    .ok_or_else(|| err("the feature has no geometry"))?,
                other => {
                    return Err(err(format!(
                        "a FeatureCollection must hold exactly one feature, not {}",
                        other.len()
                    )));
                }
            }
        }
        Some("Polygon" | "MultiPolygon") => input,
        Some(other) => {
            return Err(err(format!(
                "must be a Polygon or MultiPolygon (or a Feature of one), not {other}"
            )));
        }
        None => return Err(err("must be a GeoJSON object with a `type`")),
    };
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    let coordinates = geometry
        .get("coordinates")
        .and_then(Value::as_array)
        .ok_or_else(|| err("has no `coordinates` array"))?;
    let polygons: Vec<&Value> = match kind {
        "Polygon" => vec![geometry.get("coordinates").unwrap_or(&Value::Null)],
        "MultiPolygon" => coordinates.iter().collect(),
        other => {
            return Err(err(format!(
                "must be a Polygon or MultiPolygon, not {other}"
            )));
        }
    };
    if polygons.is_empty() {
        return Err(err("is empty"));
    }
    let mut vertices = 0usize;
    for polygon in polygons {
        let rings = polygon
            .as_array()
            .ok_or_else(|| err("a polygon must be an array of rings"))?;
        if rings.is_empty() {
            return Err(err("has a polygon without rings"));
        }
        for ring in rings {
            let points = ring
                .as_array()
                .ok_or_else(|| err("a ring must be an array of positions"))?;
            if points.len() < 4 {
                return Err(err("a ring needs at least 4 positions (closed)"));
            }
            for p in points {
                let xy = p.as_array().filter(|a| (2..=3).contains(&a.len()));
                let (x, y) = match xy.map(|a| (a[0].as_f64(), a[1].as_f64())) {
                    Some((Some(x), Some(y))) => (x, y),
                    _ => return Err(err("positions must be [longitude, latitude]")),
                };
                if !(-180.0..=180.0).contains(&x) || !(-90.0..=90.0).contains(&y) {
                    return Err(err(
                        "positions must be longitude, latitude in degrees (EPSG:4326)",
                    ));
                }
            }
            if points.first() != points.last() {
                return Err(err("rings must be closed (first position = last)"));
            }
            vertices += points.len();
            if vertices > max_vertices {
                return Err(err(format!("has more than {max_vertices} vertices")));
            }
        }
    }
    Ok((geometry.clone(), vertices))
}

/// A bare GeoJSON geometry (from [`extract`]) as a `geo` MultiPolygon. It does not
/// validate: validity is checked by PostGIS (`plans::check_geometry`,
/// `plans::check_shape`), whose GEOS check is indexed, where `geo`'s compares every
/// pair of segments (minutes for a 100,000-vertex ring); and a stored shape, once
/// checked, is not re-validated (rounding on export may make a valid shape look
/// invalid).
pub fn to_multipolygon(geometry: &Value) -> Result<geo_types::MultiPolygon<f64>, GeometryError> {
    use geozero::ToGeo;
    match geozero::geojson::GeoJson(&geometry.to_string())
        .to_geo()
        .map_err(|e| err(e.to_string()))?
    {
        geo_types::Geometry::Polygon(p) => Ok(geo_types::MultiPolygon(vec![p])),
        geo_types::Geometry::MultiPolygon(mp) => Ok(mp),
        _ => Err(err("must be a Polygon or MultiPolygon")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn square() -> Value {
        json!({"type":"Polygon","coordinates":[[[-117,33],[-116.9,33],[-116.9,33.1],[-117,33.1],[-117,33]]]})
    }

    #[test]
    fn accepts_the_four_shapes() {
        let polygon = square();
        let multi = json!({"type":"MultiPolygon","coordinates":[polygon["coordinates"].clone()]});
        let feature = json!({"type":"Feature","properties":{},"geometry":polygon.clone()});
        let collection = json!({"type":"FeatureCollection","features":[feature.clone()]});
        for input in [&polygon, &multi, &feature, &collection] {
            let (g, n) = extract(input, 100).expect("accepted");
            assert_eq!(n, 5);
            assert!(g["type"] == "Polygon" || g["type"] == "MultiPolygon");
        }
    }

    #[test]
    fn refuses_bad_shapes() {
        let cases = [
            json!({"type":"Point","coordinates":[1,2]}),
            json!({"type":"FeatureCollection","features":[]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[0,0]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[1,0],[1,"a"],[0,0]]]}),
            json!({"type":"Polygon","coordinates":[[[0,0],[1000,0],[1,1],[0,0]]]}),
            json!({"type":"MultiPolygon","coordinates":[]}),
            json!({"coordinates":[]}),
            json!([1, 2]),
        ];
        for c in cases {
            assert!(extract(&c, 100).is_err(), "{c}");
        }
        assert!(extract(&square(), 4).is_err(), "vertex limit");
    }
}

/// Property tests of the GeoJSON reader: any JSON value gives a geometry or a clear
/// error, never a panic; valid polygons are accepted and read back unchanged.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Any JSON value, GeoJSON-flavoured: keys and strings are often GeoJSON's own.
    fn any_json() -> impl Strategy<Value = Value> {
        let word = prop_oneof![
            Just("type".to_owned()),
            Just("coordinates".to_owned()),
            Just("geometry".to_owned()),
            Just("features".to_owned()),
            Just("Polygon".to_owned()),
            Just("MultiPolygon".to_owned()),
            Just("Feature".to_owned()),
            Just("FeatureCollection".to_owned()),
            "\\PC{0,8}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-200.0..200.0f64).prop_map(Value::from),
            word.clone().prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                prop::collection::btree_map(word.clone(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A position: mostly plausible numbers, sometimes out of range or not numbers.
    fn position() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => (-180.0..=180.0f64, -90.0..=90.0f64).prop_map(|(x, y)| json!([x, y])),
            1 => (any::<f64>(), any::<f64>(), any::<f64>()).prop_map(|(x, y, z)| json!([x, y, z])),
            1 => prop::collection::vec(any::<f64>(), 0..5).prop_map(Value::from),
        ]
    }

    /// Polygon-shaped input with random positions (closed or not, any ring sizes).
    fn polygonish() -> impl Strategy<Value = Value> {
        let ring = (prop::collection::vec(position(), 0..8), any::<bool>()).prop_map(
            |(mut ring, close)| {
                if let (true, Some(first)) = (close, ring.first().cloned()) {
                    ring.push(first);
                }
                Value::from(ring)
            },
        );
        let polygon = prop::collection::vec(ring, 0..3)
            .prop_map(Value::from)
            .boxed();
        prop_oneof![
            polygon
                .clone()
                .prop_map(|c| json!({"type": "Polygon", "coordinates": c})),
            prop::collection::vec(polygon, 0..3)
                .prop_map(|c| json!({"type": "MultiPolygon", "coordinates": c})),
        ]
    }

    /// A valid polygon: a convex ring of 3 to 40 corners (counter-clockwise, closed)
    /// around a centre, small enough to stay inside the longitude/latitude ranges.
    fn convex_polygon() -> impl Strategy<Value = (Vec<[f64; 2]>, Value)> {
        (-170.0..170.0f64, -80.0..80.0f64, 1e-3..5.0f64, 3..40usize).prop_map(
            |(cx, cy, radius, n)| {
                let mut ring: Vec<[f64; 2]> = (0..n)
                    .map(|i| {
                        let a = std::f64::consts::TAU * i as f64 / n as f64;
                        [cx + radius * a.cos(), cy + radius * a.sin()]
                    })
                    .collect();
                ring.push(ring[0]);
                let geometry = json!({"type": "Polygon", "coordinates": [ring.clone()]});
                (ring, geometry)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_json_is_a_geometry_or_an_error(input in any_json()) {
            match extract(&input, 1000) {
                Ok((geometry, _)) => {
                    let _ = to_multipolygon(&geometry);
                }
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
        }

        #[test]
        fn random_positions_never_panic(input in polygonish(), max in 0..50usize) {
            match extract(&input, max) {
                Ok((geometry, vertices)) => {
                    prop_assert!(vertices <= max);
                    // Whatever passed the shape checks reads as polygons (or a clear
                    // error for positions geozero refuses); validity is PostGIS's.
                    let _ = to_multipolygon(&geometry);
                }
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
        }

        #[test]
        fn valid_polygons_are_accepted_and_round_trip((ring, polygon) in convex_polygon(), wrap in 0..4usize) {
            let input = match wrap {
                0 => polygon.clone(),
                1 => json!({"type": "MultiPolygon", "coordinates": [polygon["coordinates"].clone()]}),
                2 => json!({"type": "Feature", "properties": {}, "geometry": polygon.clone()}),
                _ => json!({"type": "FeatureCollection", "features": [
                    {"type": "Feature", "properties": null, "geometry": polygon.clone()}]}),
            };
            let (geometry, vertices) =
                extract(&input, ring.len()).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(vertices, ring.len());
            let multi = to_multipolygon(&geometry).map_err(|e| TestCaseError::fail(e.0))?;
            prop_assert_eq!(multi.0.len(), 1);
            prop_assert!(multi.0[0].interiors().is_empty());
            let read: Vec<[f64; 2]> = multi.0[0].exterior().coords().map(|c| [c.x, c.y]).collect();
            // One vertex fewer allowed: refused.
            prop_assert!(extract(&input, ring.len() - 1).is_err());
            prop_assert_eq!(read, ring);
        }
    }
}
