//! The one error type of the API and its JSON form
//! `{"error": "...", "field": "..."}`. Every failure a handler, an
//! extractor or a middleware can meet becomes an `ApiError`, so no
//! response is ever plain text, a stack trace or a 500 for bad input.

use crate::backend::BackendError;
use crate::model::FieldError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    #[schema(example = "dscp: must be between 0 and 63")]
    pub error: String,
    /// The field the error is about (`dscp`, `phones[1]`, `weights.margin`),
    /// absent when it is not about one field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "dscp")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, unknown or
    /// mistyped field, bad path or query parameter).
    #[error("{message}")]
    BadRequest {
        message: String,
        field: Option<String>,
    },
    /// 401.
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// 404 for a resource.
    #[error("no {kind} {id:?}")]
    NotFound { kind: &'static str, id: String },
    /// 404 for a path no route serves.
    #[error("no route for {0}")]
    NoRoute(String),
    /// 405.
    #[error("method not allowed on {0}")]
    MethodNotAllowed(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: readable, but a value breaks a rule.
    #[error("{0}")]
    Invalid(FieldError),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, field: Option<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            field,
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Invalid(FieldError::new(field, reason))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let field = match self {
            ApiError::BadRequest { field, .. } => field.clone(),
            ApiError::Invalid(e) => Some(e.field.clone()),
            _ => None,
        };
        ErrorBody {
            error: self.to_string(),
            field,
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NotFound { kind, id } => ApiError::NotFound { kind, id },
            BackendError::Conflict(m) => ApiError::Conflict(m),
            BackendError::Invalid(f) => ApiError::Invalid(f),
            BackendError::Unavailable(m) => ApiError::Unavailable(m),
            BackendError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(%status, error = %self, "api request failed");
        }
        let mut resp = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_map_to_their_status_and_body() {
        let cases = [
            (BackendError::not_found("tier", "gold"), 404, None),
            (BackendError::Conflict("in use".into()), 409, None),
            (
                BackendError::invalid("default_tier", "no tier named \"x\""),
                422,
                Some("default_tier"),
            ),
            (BackendError::Unavailable("redis down".into()), 503, None),
            (BackendError::Internal("bug".into()), 500, None),
        ];
        for (e, status, field) in cases {
            let text = e.to_string();
            let a = ApiError::from(e);
            assert_eq!(a.status().as_u16(), status, "{a:?}");
            let body = a.body();
            assert_eq!(body.field.as_deref(), field);
            assert_eq!(body.error, text);
        }
        let json = serde_json::to_value(ApiError::Unauthorized.body()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"error": "missing or wrong bearer token"})
        );
    }
}
