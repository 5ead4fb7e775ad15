//! Bearer tokens. Mutations (anything but GET, HEAD, OPTIONS) need the
//! write token when one is configured. Reads stay open so monitoring
//! needs no secret, except reads of customer data (`/customers`,
//! `/promotions`, `/sessions` and everything under them) when a read
//! token is configured: those need the read token or the write token.
//! `/health`, `/metrics`, the console and the docs stay open. Runs before
//! any extractor, so a refused request is never parsed, let alone
//! applied. Which reads are customer data is decided on the route the
//! request matched (its template), not on the raw path, so no spelling
//! of a path gets around it.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Middleware state: the tokens that are configured.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Needed by mutations.
    pub write: Option<Arc<str>>,
    /// Needed (or `write`) by reads of customer data.
    pub read: Option<Arc<str>>,
}

/// The resources whose reads are customer data, under `BASE`.
pub const CUSTOMER_DATA: [&str; 3] = ["/customers", "/promotions", "/sessions"];

/// Whether the route template `route` (e.g. `/api/v1/sessions/{id}/tier`)
/// is customer data.
pub fn is_customer_data(route: &str) -> bool {
    let Some(rest) = route.strip_prefix(crate::routes::BASE) else {
        return false;
    };
    CUSTOMER_DATA.iter().any(|r| {
        rest.strip_prefix(r)
            .is_some_and(|tail| tail.is_empty() || tail.starts_with('/'))
    })
}

pub async fn require_token(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    let allowed = match *req.method() {
        Method::OPTIONS => true,
        Method::GET | Method::HEAD => match &tokens.read {
            None => true,
            Some(read) => {
                let protected = req
                    .extensions()
                    .get::<MatchedPath>()
                    .is_some_and(|p| is_customer_data(p.as_str()));
                !protected
                    || bearer_matches(req.headers(), read)
                    || tokens
                        .write
                        .as_deref()
                        .is_some_and(|w| bearer_matches(req.headers(), w))
            }
        },
        _ => tokens
            .write
            .as_deref()
            .is_none_or(|w| bearer_matches(req.headers(), w)),
    };
    if allowed {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
    else {
        return false;
    };
    // Constant time over the contents: a wrong guess takes as long
    // whichever byte is wrong (only the length can be told).
    constant_time_eq::constant_time_eq(given.as_bytes(), expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn bearer_forms() {
        assert!(bearer_matches(&headers("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(&headers("bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer s3cretx"), "s3cret"));
        assert!(!bearer_matches(&headers("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&headers("Bearer"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }

    #[test]
    fn customer_data_routes() {
        for r in [
            "/api/v1/customers",
            "/api/v1/customers/{id}",
            "/api/v1/promotions/{code}",
            "/api/v1/sessions",
            "/api/v1/sessions/{id}/client-data",
        ] {
            assert!(is_customer_data(r), "{r}");
        }
        for r in [
            "/api/v1/health",
            "/api/v1/tiers",
            "/api/v1/sessionsx",
            "/metrics",
            "/",
            "/docs",
            "/customers",
        ] {
            assert!(!is_customer_data(r), "{r}");
        }
    }
}
