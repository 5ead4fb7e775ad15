//! The operator console served at `/`: one HTML page, a style sheet and
//! three ES modules, compiled into the binary (`include_str!`), so the
//! console works offline and nothing it loads comes from anywhere but
//! this API. The page polls the REST API every second (`/topology`,
//! `/sessions`, `/tiers`, `/alarms`, `/health`) and acts through the same
//! API with the bearer token the operator types in (kept in the tab's
//! `sessionStorage`).
//!
//! Plain ES modules and SVG, no framework: the page is small (a picture
//! of the network and three tables), so a framework would be most of its
//! code; without one there is no build step, nothing to vendor or keep
//! patched, and what the binary serves is exactly the source in
//! `api/src/console/`. The browser is told so too: a Content-Security-
//! Policy allows scripts, styles and requests from this origin only.
//!
//! Assets live under `/console/` (`GET /console/app.js`, ...); they are
//! not part of the OpenAPI document, which describes the JSON API only.

use crate::error::ApiError;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the console's assets are served.
pub const ASSETS: &str = "/console";

/// Every asset: name under `/console/`, content type, text.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("console/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("console/api.js"),
    ),
    (
        "topology.js",
        "text/javascript; charset=utf-8",
        include_str!("console/topology.js"),
    ),
];

/// Only this origin, for everything; no inline script or style sheet.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// `/` and `/console/{file}`, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route(&format!("{ASSETS}/{{file}}"), get(asset))
}

async fn index() -> Response {
    serve("index.html").unwrap_or_else(|e| e.into_response())
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&file).unwrap_or_else(|e| e.into_response())
}

fn serve(name: &str) -> Result<Response, ApiError> {
    let (_, content_type, text) = FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NoRoute(format!("{ASSETS}/{name}")))?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        // Always revalidated: a new binary serves a new console at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ),
    ];
    Ok((headers, *text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_local() {
        for (name, _, text) in FILES {
            for bad in ["http://", "https://", "//cdn", "@import"] {
                assert!(!text.contains(bad), "{name} contains {bad:?}");
            }
        }
    }
}
