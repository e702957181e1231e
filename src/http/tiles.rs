//! `GET /tiles/{layer}/{z}/{x}/{y}.{ext}`: parse the path, ask the tile service, and
//! answer with the HTTP conventions clients expect (ETag/304, gzip negotiation, 204).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::tile::{EncodedTile, TileId, parse_y_segment};

/// The tile endpoint: parse the path, ask the tile service, answer.
pub async fn get_tile(
    State(state): State<Arc<AppState>>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    // Borrowed from the router's decoded parameters: no `String` per segment.
    let params = params
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    let (mut layer, mut z, mut x, mut y_segment) = ("", "", "", "");
    for (name, value) in &params {
        match name {
            "layer" => layer = value,
            "z" => z = value,
            "x" => x = value,
            "y" => y_segment = value,
            _ => {}
        }
    }
    let segment = parse_y_segment(y_segment)?;
    let tile = TileId::parse(z, x, segment.y)?;
    let format = segment.format;
    let tile_bytes = state.tiles.tile(layer, tile, format, segment.scale).await?;
    state.analytics.count_tile(layer, tile.z);
    // The request itself, not a clone of its headers (`HeaderMap` as an extractor copies).
    Ok(respond(
        &state.cache_control,
        &tile_bytes,
        format.content_type(),
        format.compressible(),
        request.headers(),
    ))
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
        &tile.etag_gzip
    } else {
        &tile.etag
    };
    // Room for these, the CORS headers and the request id: no growing on the way out.
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    if compressible {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    headers.insert(header::ETAG, etag.clone());
    if if_none_match(request, etag.to_str().unwrap_or_default()) {
        return response(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }
    if tile.is_empty() {
        return response(StatusCode::NO_CONTENT, headers, Body::empty());
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let body = match gzip {
        Some(gz) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz
        }
        None => tile.raw.clone(),
    };
    response(StatusCode::OK, headers, Body::from(body))
}

/// A response of `status` with `headers` as its header map (moved in, not copied into an
/// empty one header by header, as `(status, headers, body).into_response()` does).
fn response(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
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
