//! `GET /tiles/{layer}/{z}/{x}/{y}.{ext}`: validate, look up the cache, render, and
//! answer with the HTTP conventions clients expect (ETag/304, gzip negotiation, 204).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::cache::{EncodedTile, TileKey};
use crate::config::Fallback;
use crate::source::{Layer, Source, SourceError};
use crate::store::{StoredTile, decode_stored, tile_key};
use crate::tile::{TileFormat, TileId, parse_y_segment};

/// The tile endpoint.
pub async fn get_tile(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((layer_name, z, x, y_segment)) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let segment = parse_y_segment(&y_segment)?;
    let tile = TileId::parse(&z, &x, segment.y)?;
    let (index, layer, source) = state.layer_source(&layer_name)?;
    if !source.supports(segment.format, segment.scale) {
        return Err(ApiError::not_found(format!(
            "layer `{layer_name}` is not available as {}{}",
            if segment.scale == 2 { "@2x " } else { "" },
            segment.format.extension()
        )));
    }
    if tile.z < source.minzoom() || tile.z > source.maxzoom() {
        return Err(ApiError::not_found(format!(
            "zoom {} is outside layer `{layer_name}`'s range {}..={}",
            tile.z,
            source.minzoom(),
            source.maxzoom()
        )));
    }
    let key = TileKey {
        layer: index,
        version: layer.version(),
        tile,
        format: segment.format,
        scale: segment.scale,
    };
    let format = segment.format;
    let rendered_here = std::sync::atomic::AtomicBool::new(false);
    let span = tracing::debug_span!("render", layer = %layer.name, %tile);
    let result = state
        .cache
        .get_or_render(
            key,
            tracing::Instrument::instrument(
                async {
                    rendered_here.store(true, std::sync::atomic::Ordering::Relaxed);
                    produce(&state, layer, source, tile, format, segment.scale).await
                },
                span,
            ),
        )
        .await;
    let outcome = if rendered_here.load(std::sync::atomic::Ordering::Relaxed) {
        "miss"
    } else {
        "hit"
    };
    metrics::counter!("tile_cache_requests_total", "layer" => layer.name.clone(), "result" => outcome).increment(1);
    let encoded = result.map_err(|e| {
        let kind = match e.as_ref() {
            crate::source::SourceError::Unavailable(_) => "unavailable",
            crate::source::SourceError::Timeout => "timeout",
            crate::source::SourceError::Store(_) => "store",
            crate::source::SourceError::Internal(_) => "internal",
        };
        metrics::counter!("tile_render_errors_total", "layer" => layer.name.clone(), "kind" => kind).increment(1);
        ApiError::from(e.as_ref())
    })?;
    metrics::counter!(
        "tiles_served_total",
        "layer" => layer.name.clone(),
        "zoom" => tile.z.to_string(),
        "format" => format.extension()
    )
    .increment(1);
    Ok(respond(
        &state.cache_control,
        &encoded,
        format.content_type(),
        format.compressible(),
        &headers,
    ))
}

/// Makes the tile on a cache miss: from the store for a pregenerated layer (falling back
/// as configured), else rendered live.
async fn produce(
    state: &Arc<AppState>,
    layer: &Layer,
    source: &Source,
    tile: TileId,
    format: TileFormat,
    scale: u8,
) -> Result<EncodedTile, SourceError> {
    let pregenerated = state
        .config
        .layers
        .get(&layer.name)
        .and_then(|l| l.pregenerated());
    let (Some(pre), Some(store)) = (pregenerated, state.store.as_ref()) else {
        return render(state, layer, source, tile, format, scale).await;
    };
    let key = tile_key(&layer.name, tile, format, scale);
    let stored = store.get(&key).await.map_err(|e| {
        metrics::counter!("store_reads_total", "layer" => layer.name.clone(), "result" => "error")
            .increment(1);
        SourceError::Store(e.to_string())
    })?;
    let result = if stored.is_some() { "hit" } else { "miss" };
    metrics::counter!("store_reads_total", "layer" => layer.name.clone(), "result" => result)
        .increment(1);
    if let Some(body) = stored {
        return if body.len() < 2048 {
            decode_stored(body, format)
        } else {
            tokio::task::spawn_blocking(move || decode_stored(body, format))
                .await
                .map_err(|e| SourceError::Internal(e.to_string()))?
        }
        .map_err(|e| SourceError::Internal(e.to_string()));
    }
    if pre.fallback == Fallback::Empty {
        return Ok(EncodedTile::new(source.empty_tile(format, scale)?, format));
    }
    let encoded = render(state, layer, source, tile, format, scale).await?;
    if pre.write_back && !encoded.is_empty() && *encoded.raw != *source.empty_tile(format, scale)? {
        let stored = StoredTile::from_encoded(&encoded, format, &state.config.http.cache_control);
        let (store, name) = (Arc::clone(store), layer.name.clone());
        tokio::spawn(async move {
            let outcome = match store.put(&key, &stored).await {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::warn!(layer = %name, key, error = %e, "write-back failed");
                    "error"
                }
            };
            metrics::counter!("store_writes_total", "layer" => name, "result" => outcome)
                .increment(1);
        });
    }
    Ok(encoded)
}

/// Renders a tile live and prepares it for the wire.
async fn render(
    state: &AppState,
    layer: &Layer,
    source: &Source,
    tile: TileId,
    format: TileFormat,
    scale: u8,
) -> Result<EncodedTile, SourceError> {
    let started = std::time::Instant::now();
    let raw = source.render(&state.pool, tile, format, scale).await?;
    let encoded = if raw.len() < 2048 {
        EncodedTile::new(raw, format)
    } else {
        tokio::task::spawn_blocking(move || EncodedTile::new(raw, format))
            .await
            .map_err(|e| SourceError::Internal(e.to_string()))?
    };
    metrics::histogram!("tile_render_seconds", "layer" => layer.name.clone())
        .record(started.elapsed().as_secs_f64());
    Ok(encoded)
}

/// Builds the response for a rendered tile.
pub fn respond(
    cache_control: &HeaderValue,
    tile: &EncodedTile,
    content_type: &'static str,
    compressible: bool,
    request: &HeaderMap,
) -> Response {
    let gzip = match &tile.gzip {
        Some(gz) if accepts_gzip(request) => Some(gz.clone()),
        _ => None,
    };
    let etag = if gzip.is_some() {
        format!("\"{}-gz\"", tile.hash)
    } else {
        format!("\"{}\"", tile.hash)
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    if compressible {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if if_none_match(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if tile.is_empty() {
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let body = match gzip {
        Some(gz) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz
        }
        None => tile.raw.clone(),
    };
    (StatusCode::OK, headers, Body::from(body)).into_response()
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a non-zero q).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            value.split(',').any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let q_zero = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
            })
        })
}

/// Whether `If-None-Match` lists `etag` (or `*`); weak comparison, as RFC 9110 asks.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|value| {
            value
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )));
        assert!(accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "br;q=1.0, GZIP;q=0.5"
        )));
        assert!(accepts_gzip(&headers(header::ACCEPT_ENCODING, "*")));
        assert!(!accepts_gzip(&headers(header::ACCEPT_ENCODING, "gzip;q=0")));
        assert!(!accepts_gzip(&headers(
            header::ACCEPT_ENCODING,
            "br, identity"
        )));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn etag_matching() {
        assert!(if_none_match(
            &headers(header::IF_NONE_MATCH, "\"a\", \"b\""),
            "\"b\""
        ));
        assert!(if_none_match(
            &headers(header::IF_NONE_MATCH, "W/\"b\""),
            "\"b\""
        ));
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, "*"), "\"b\""));
        assert!(!if_none_match(
            &headers(header::IF_NONE_MATCH, "\"a\""),
            "\"b\""
        ));
    }
}
