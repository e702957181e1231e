//! TileJSON 3.0.0 per layer (`/tiles/{layer}`) and the catalog of layers (`/tiles`).
//!
//! Tile URLs are absolute: built from the configured `public_url`, or else from the
//! `X-Forwarded-Proto`/`-Host`/`-Prefix` and `Host` headers a reverse proxy sends.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tilejson::{TileJSON, VectorLayer, tilejson};

use super::AppState;
use super::error::ApiError;
use crate::source::Source;
use crate::tile::MAX_LATITUDE;
use crate::tiles::Layer;

/// The layer catalog.
pub async fn catalog(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&state, &headers);
    let layers: Vec<Value> = state
        .tiles
        .catalog()
        .iter()
        .map(|(_, layer)| {
            let mut entry =
                json!({ "id": layer.name, "tilejson": format!("{base}/tiles/{}", layer.name) });
            match &layer.source {
                Ok(source) => {
                    entry["type"] = json!(source.kind());
                    entry["format"] = json!(source.format().extension());
                    entry["minzoom"] = json!(source.minzoom());
                    entry["maxzoom"] = json!(source.maxzoom());
                    if let Some(d) = source.description() {
                        entry["description"] = json!(d);
                    }
                }
                Err(e) => entry["error"] = json!(e),
            }
            entry
        })
        .collect();
    Json(json!({ "layers": layers }))
}

/// How long clients and caches may keep a TileJSON document: short, since a restart
/// with a changed configuration changes it; it varies with the headers that make its
/// URLs.
const TILEJSON_CACHE_CONTROL: &str = "public, max-age=60";
const TILEJSON_VARY: &str = "Host, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Prefix";

/// TileJSON of one layer.
pub async fn tilejson(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let Path(name) = name.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_path",
            e.body_text(),
        )
    })?;
    let (_, layer) = state.tiles.catalog().find(&name)?;
    let source = layer.source()?;
    let mut doc = document(layer, source, &base_url(&state, &headers));
    // Pregenerated layers can send clients straight to the bucket.
    if let (Some(_), Some(public)) = (&layer.pregenerated, &state.config.store.public_url) {
        doc.tiles = vec![format!(
            "{}/{}/{{z}}/{{x}}/{{y}}.{}",
            public.trim_end_matches('/'),
            layer.name,
            source.format().extension()
        )];
    }
    Ok((
        [
            (axum::http::header::CACHE_CONTROL, TILEJSON_CACHE_CONTROL),
            (axum::http::header::VARY, TILEJSON_VARY),
        ],
        Json(doc),
    )
        .into_response())
}

const WORLD: [f64; 4] = [-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE];

fn document(layer: &Layer, source: &Source, base: &str) -> TileJSON {
    let (minzoom, maxzoom) = (source.minzoom(), source.maxzoom());
    let (bounds, attribution) = match source {
        Source::Vector(v) => (v.bounds.unwrap_or(WORLD), &v.attribution),
        Source::Raster(r) => (r.bounds, &r.attribution),
    };
    let center_zoom = minzoom.max(maxzoom.min(minzoom + 2));
    let mut doc = tilejson! {
        tiles: vec![format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.{}", layer.name, source.format().extension())],
        name: layer.name.clone(),
        scheme: "xyz".to_owned(),
        minzoom: minzoom,
        maxzoom: maxzoom,
        bounds: bounds.into(),
        center: ((bounds[0] + bounds[2]) / 2.0, (bounds[1] + bounds[3]) / 2.0, center_zoom).into(),
    };
    doc.description = source.description().map(str::to_owned);
    doc.attribution.clone_from(attribution);
    match source {
        Source::Vector(v) => {
            let fields: BTreeMap<String, String> = v
                .properties
                .iter()
                .map(|(name, kind)| (name.clone(), kind.tilejson_type().to_owned()))
                .collect();
            let mut vector_layer = VectorLayer::new(layer.name.clone(), fields);
            vector_layer.minzoom = Some(minzoom);
            vector_layer.maxzoom = Some(maxzoom);
            vector_layer
                .other
                .insert("geometry_type".into(), json!(v.geometry_type));
            doc.vector_layers = Some(vec![vector_layer]);
            doc.other.insert("format".into(), json!("pbf"));
        }
        Source::Raster(r) => {
            doc.legend = Some(format!("{base}/tiles/{}/legend", layer.name));
            doc.other.insert("format".into(), json!("png"));
            doc.other.insert("tileSize".into(), json!(256));
            doc.other.insert("style".into(), json!(r.style));
        }
    }
    doc
}

/// The public base URL (no trailing slash).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let proto = header("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".to_owned());
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or_else(|| state.config.listen.to_string());
    let prefix = header("x-forwarded-prefix")
        .filter(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
        })
        .map(|p| format!("/{}", p.trim_matches('/')))
        .filter(|p| p != "/")
        .unwrap_or_default();
    format!("{proto}://{host}{prefix}")
}
