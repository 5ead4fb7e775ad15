//! Extractors that reject with `ApiError` instead of axum's plain-text
//! rejections, and that name the offending field: bodies and query
//! strings are deserialised through `serde_path_to_error`, so a mistyped
//! `weights.margin` or an unknown `colour` comes back as that field.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises a JSON document, naming the field that does not fit.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() {
            data_error(&path, &inner.to_string())
        } else {
            ApiError::bad_request(format!("malformed JSON: {inner}"), None)
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}"), None))?;
    Ok(value)
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request(e.body_text(), None)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(v) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A serde data error at `path` (`.` for the top level): names the field.
/// serde_path_to_error's path already ends at an unknown key, but stops
/// at the parent of a missing one, whose name is in serde's message.
fn data_error(path: &str, message: &str) -> ApiError {
    let root = path == "." || path.is_empty();
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .filter(|n| !n.is_empty());
    let field = match missing {
        Some(name) if root => Some(name.to_string()),
        Some(name) => Some(format!("{path}.{name}")),
        None if root => None,
        None => Some(path.to_string()),
    };
    match field {
        Some(f) => ApiError::bad_request(format!("{f}: {message}"), Some(f)),
        None => ApiError::bad_request(message, None),
    }
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_query(parts.uri.query().unwrap_or("")).map(ApiQuery)
    }
}

/// Deserialises a query string, naming the parameter that does not fit.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        match data_error(&path, &message) {
            ApiError::BadRequest { message, field } => {
                ApiError::bad_request(format!("query: {message}"), field)
            }
            other => other,
        }
    })
}

/// Path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    let field = match &e {
        PathRejection::FailedToDeserializePathParams(d) => match d.kind() {
            ErrorKind::ParseErrorAtKey { key, .. }
            | ErrorKind::InvalidUtf8InPathParam { key }
            | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
            _ => None,
        },
        _ => None,
    };
    if e.status().is_server_error() {
        // A route/extractor mismatch: our bug, not the client's.
        return ApiError::Internal(e.body_text());
    }
    ApiError::bad_request(e.body_text(), field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Policy, Tier};
    use crate::views::SessionFilter;

    fn field(e: ApiError) -> (StatusCode, Option<String>) {
        (e.status(), e.body().field)
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Tier>(br#"{"name":"g","colour":1}"#).expect_err("unknown");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, Some("colour".into())));
        let e = parse_json::<Policy>(br#"{"default_tier":"x","weights":{"margin":"a"}}"#)
            .expect_err("mistyped");
        assert_eq!(
            field(e),
            (StatusCode::BAD_REQUEST, Some("weights.margin".into()))
        );
        let e = parse_json::<Policy>(br#"{"default_tier":"x","weights":{"mass":1}}"#)
            .expect_err("nested unknown");
        assert_eq!(
            field(e),
            (StatusCode::BAD_REQUEST, Some("weights.mass".into()))
        );
        let e = parse_json::<Policy>(br#"{"weights":{}}"#).expect_err("missing");
        assert_eq!(
            field(e),
            (StatusCode::BAD_REQUEST, Some("default_tier".into()))
        );
        let e = parse_json::<Policy>(br#"{"default_tier":"x"} trailing"#).expect_err("trailing");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, None));
        let e = parse_json::<Policy>(br#"{"default_tier":"#).expect_err("truncated");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, None));
    }

    #[test]
    fn query_errors_name_the_parameter() {
        let f: SessionFilter = parse_query("tier=gold&state=hold&limit=5").expect("filter");
        assert_eq!(f.tier.as_deref(), Some("gold"));
        assert_eq!(f.limit, 5);
        let e = parse_query::<SessionFilter>("limit=many").expect_err("mistyped");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, Some("limit".into())));
        let e = parse_query::<SessionFilter>("tierr=gold").expect_err("unknown");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, Some("tierr".into())));
        let e = parse_query::<SessionFilter>("state=asleep").expect_err("bad enum");
        assert_eq!(field(e), (StatusCode::BAD_REQUEST, Some("state".into())));
    }
}
