//! `GET /tiles/{layer}/legend` (JSON, or PNG with `Accept: image/png`) and
//! `/tiles/{layer}/legend.png`, `/tiles/{layer}/legend.json`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::source::Source;
use crate::source::raster::encode::{Pixels, encode};
use crate::style::Colormap;
use crate::tile::TileFormat;

/// The legend endpoint; `file` is `legend`, `legend.json` or `legend.png`.
pub async fn legend(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((name, file)) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let wants_png = match file.as_str() {
        "legend.png" => true,
        "legend.json" => false,
        "legend" => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("image/png") && !a.contains("application/json")),
        _ => return Err(ApiError::not_found("no such endpoint")),
    };
    let source = state.tiles.catalog().find(&name)?.1.source()?;
    let Source::Raster(raster) = source else {
        return Err(ApiError::not_found(format!(
            "layer `{name}` is a vector layer: it has no legend"
        )));
    };
    if wants_png {
        let png = legend_png(&raster.colormap).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?;
        let mut response = (StatusCode::OK, png).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, state.cache_control.clone());
        return Ok(response);
    }
    let entries: Vec<_> = raster
        .colormap
        .legend()
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e).unwrap_or_default();
            v["units"] = json!(raster.units);
            v
        })
        .collect();
    Ok(Json(json!({
        "layer": name,
        "style": raster.style,
        "type": if raster.colormap.is_ramp() { "ramp" } else { "classes" },
        "units": raster.units,
        "entries": entries,
    }))
    .into_response())
}

/// A 32 x 256 colour bar, highest values at the top (equal swatches for classes).
fn legend_png(map: &Colormap) -> Result<Vec<u8>, crate::source::raster::encode::ImageError> {
    const W: usize = 32;
    const H: usize = 256;
    let entries = map.legend();
    let (lo, hi) = map.span();
    let mut rgba = Vec::with_capacity(W * H * 4);
    for row in 0..H {
        let t = 1.0 - (row as f64 + 0.5) / H as f64;
        let color = if map.is_ramp() {
            map.color(lo + t * (hi - lo))
        } else {
            // Equal-height swatches, first class at the bottom.
            let i = ((t * entries.len() as f64) as usize).min(entries.len().saturating_sub(1));
            entries
                .get(i)
                .and_then(|e| crate::style::parse_color(&e.color))
                .unwrap_or(map.nodata)
        };
        for _ in 0..W {
            rgba.extend_from_slice(&color);
        }
    }
    encode(&Pixels::Rgba(rgba), W as u32, H as u32, TileFormat::Png)
}
