//! The one mapping from errors to HTTP responses: `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::source::SourceError;
use crate::tile::TileIdError;

/// An error as the client sees it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 for a path that names nothing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}

impl From<TileIdError> for ApiError {
    fn from(e: TileIdError) -> Self {
        let code = match e {
            TileIdError::UnknownFormat(_) => "unknown_format",
            _ => "invalid_tile",
        };
        Self::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

impl From<&SourceError> for ApiError {
    fn from(e: &SourceError) -> Self {
        match e {
            SourceError::Unavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; try again shortly",
            ),
            SourceError::Store(detail) => {
                tracing::warn!(error = %detail, "tile store read failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the tile store is unavailable; try again shortly",
                )
            }
            SourceError::Timeout => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "render_timeout",
                "rendering the tile took too long",
            ),
            SourceError::Internal(detail) => {
                tracing::error!(error = %detail, "tile rendering failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error while rendering the tile",
                )
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::warn!(error = %e, "tile store operation failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the tile store is unavailable; try again shortly",
        )
    }
}

impl From<crate::coverage::CoverageError> for ApiError {
    fn from(e: crate::coverage::CoverageError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_coverage", e.to_string())
    }
}
