//! The one mapping from errors to HTTP responses: `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::source::SourceError;
use crate::tile::TileIdError;
use crate::tiles::TileError;

/// An error as the client sees it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The request field at fault, when one is.
    pub field: Option<String>,
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
            field: None,
            code,
            message: message.into(),
        }
    }

    /// 422 for a field that does not fit (named in `field` and in the message).
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: Some(field.to_owned()),
            code: "invalid_field",
            message: format!("{field}: {message}"),
        }
    }

    /// 500, logged in full, reported generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// A request body that could not be read: 413 past the body limit, else 400.
    pub fn body_rejection(status: StatusCode, detail: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than allowed",
            )
        } else {
            Self::new(StatusCode::BAD_REQUEST, "invalid_body", detail)
        }
    }

    /// 408 for a request body that did not arrive within `seconds` (the connection is
    /// closed after the answer: the rest of the body is never read).
    pub fn body_timeout(seconds: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {seconds} s"),
        )
    }

    /// 404 for a path that names nothing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

/// The answer for a path that exists without the request's method: 405 with the JSON
/// error body every other error has (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not accept that method",
    )
}

/// The body of every error response, as documented (`ErrorResponse` in the OpenAPI
/// document) and as sent: one type for both, so they cannot drift apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse<'a> {
    /// What went wrong.
    pub error: ErrorDetail<'a>,
}

/// The error inside an [`ErrorResponse`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable machine-readable code, e.g. `invalid_field`, `not_found`, `rate_limited`.
    pub code: &'a str,
    /// Human-readable explanation.
    pub message: &'a str,
    /// The request field at fault, when one is (a JSON path such as `priorities[0].weight`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorResponse {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::REQUEST_TIMEOUT {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
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

impl From<DbError> for ApiError {
    /// The one mapping of database errors: the database away or slow is 503 (retry
    /// later), a write that conflicts with what is stored is 409, a value the database
    /// refuses is 422, anything else a logged 500.
    fn from(e: DbError) -> Self {
        let (status, code, message) = match &e {
            DbError::Unavailable(_)
            | DbError::Connect(_)
            | DbError::Tls(_)
            | DbError::EncryptionRequired(_) => {
                if !e.is_transient() {
                    // TLS set up wrong on one side: no retry mends it; tell the operator.
                    tracing::error!(error = %e, "cannot connect to the database");
                }
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; try again shortly",
                )
            }
            DbError::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "database_timeout",
                "the database took too long; try again shortly",
            ),
            DbError::Unique(_) | DbError::ForeignKey(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "the change conflicts with stored data (changed meanwhile?); reload and try again",
            ),
            DbError::Check(_) | DbError::InvalidValue(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                "a value was refused by the database",
            ),
            DbError::Url(_)
            | DbError::RootCert(_)
            | DbError::Pool(_)
            | DbError::Migration(_)
            | DbError::Server(_) => {
                return Self::internal(e);
            }
        };
        if status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(error = %e, "the database refused a change");
        }
        Self::new(status, code, message)
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

impl From<TileError> for ApiError {
    fn from(e: TileError) -> Self {
        match e {
            TileError::UnknownLayer(_)
            | TileError::UnsupportedForm { .. }
            | TileError::ZoomOutOfRange { .. }
            | TileError::NoStore => Self::not_found(e.to_string()),
            TileError::LayerUnavailable { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "layer_unavailable",
                e.to_string(),
            ),
            TileError::Render(e) => Self::from(e.as_ref()),
            TileError::Store(e) => Self::from(e),
        }
    }
}

impl From<crate::coverage::CoverageError> for ApiError {
    fn from(e: crate::coverage::CoverageError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_coverage", e.to_string())
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> Self {
        match e {
            crate::accounts::AccountError::EmailTaken => Self {
                field: Some("email".to_owned()),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "email_taken",
                    "an account with this email exists",
                )
            },
            crate::accounts::AccountError::Invalid(field, message) => {
                Self::invalid_field(field, message)
            }
            crate::accounts::AccountError::Database(e) => Self::from(e),
            crate::accounts::AccountError::Internal(e) => Self::internal(e),
        }
    }
}

impl From<crate::planning::plans::PlanError> for ApiError {
    fn from(e: crate::planning::plans::PlanError) -> Self {
        use crate::planning::plans::PlanError;
        match e {
            PlanError::Invalid { field, message } => Self::invalid_field(field, message),
            PlanError::NotFound => Self::not_found("no such plan"),
            PlanError::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "your role on this plan does not allow this",
            ),
            PlanError::NoMember => Self::not_found("no such member"),
            PlanError::NoInvitation => Self::not_found("no such invitation"),
            PlanError::TooManyInvitations { message, .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            }
            PlanError::Database(e) => Self::from(e),
        }
    }
}

impl From<crate::planning::scenarios::ScenarioError> for ApiError {
    fn from(e: crate::planning::scenarios::ScenarioError) -> Self {
        use crate::planning::scenarios::ScenarioError;
        match e {
            ScenarioError::Invalid { field, message } => Self::invalid_field(&field, message),
            ScenarioError::NotFound => Self::not_found("no such scenario"),
            ScenarioError::Plan(e) => Self::from(e),
            ScenarioError::Database(e) => Self::from(e),
            ScenarioError::Geometry(_) | ScenarioError::Json(_) => Self::internal(e),
        }
    }
}

impl From<crate::planning::scores::ScoreError> for ApiError {
    fn from(e: crate::planning::scores::ScoreError) -> Self {
        use crate::planning::scores::ScoreError;
        match e {
            ScoreError::Invalid { field, message } => Self::invalid_field(&field, message),
            ScoreError::Raster { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "condition_unavailable",
                e.to_string(),
            ),
            ScoreError::NotFound => Self::not_found("no such plan"),
            ScoreError::Database(e) => Self::from(e),
            ScoreError::Geometry(_) | ScoreError::Json(_) | ScoreError::Task(_) => {
                Self::internal(e)
            }
        }
    }
}

impl From<crate::accounts::reset::ResetError> for ApiError {
    fn from(e: crate::accounts::reset::ResetError) -> Self {
        use crate::accounts::reset::ResetError;
        match e {
            ResetError::InvalidToken => Self {
                field: Some("token".to_owned()),
                ..Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_reset_token",
                    "this reset link is unknown, used or expired: ask for a new one",
                )
            },
            ResetError::Account(e) => Self::from(e),
        }
    }
}
