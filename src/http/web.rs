//! The planner web app: the built files of `web/` (`config.web_dir`, default `web/dist`)
//! at `/`, served with gzip twins when the client accepts them. Content-hashed files
//! (`main-3HX2K7QA.js`) never change under their name and are cached for a year;
//! everything else, `index.html` first, is revalidated on every use, so a deploy is
//! seen at the next load. Paths that are neither a file of the app nor a route answer
//! the JSON 404 of the API.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;

use super::error::ApiError;

/// `Cache-Control` of content-hashed files.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else (`index.html`, images): always revalidated.
const REVALIDATE: &str = "no-cache";

/// The router serving the app from `dir`, for the main router's fallback.
pub fn router(dir: &Path) -> Router {
    let files = ServeDir::new(dir)
        .precompressed_gzip()
        .append_index_html_on_directories(true)
        .fallback(axum::routing::any(missing));
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(cache_control))
}

/// No such file: the app is not built (at `/`), or the path is unknown.
async fn missing(request: Request) -> Response {
    if request.uri().path() == "/" {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CACHE_CONTROL, REVALIDATE)],
            axum::response::Html(
                "<!doctype html><title>Planscape</title><p>The web app is not built: run \
                 <code>scripts/web-build.sh</code> (the demo and test commands do), or set \
                 <code>web_dir</code>.</p>",
            ),
        )
            .into_response();
    }
    ApiError::not_found("no such endpoint").into_response()
}

/// Sets `Cache-Control` on the app's files by whether their name carries a hash.
async fn cache_control(request: Request, next: Next) -> Response {
    let immutable = is_hashed(request.uri().path());
    let mut response = next.run(request).await;
    let ok = response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED;
    if ok && !response.headers().contains_key(header::CACHE_CONTROL) {
        let value = if immutable { IMMUTABLE } else { REVALIDATE };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}

/// Whether a file name carries esbuild's content hash: `NAME-HASH.EXT`, with HASH eight
/// or more upper-case letters and digits.
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() >= 8
            && hash
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::is_hashed;

    #[test]
    fn hashed_names() {
        assert!(is_hashed("/main-OC3LODUO.js"));
        assert!(is_hashed("/main-XU6XBJ5Q.css"));
        assert!(is_hashed("/img/marker-icon-2V3QKKVC.png"));
        assert!(!is_hashed("/"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/build-report.json"));
        assert!(!is_hashed("/img/logo-small.png"));
    }
}
