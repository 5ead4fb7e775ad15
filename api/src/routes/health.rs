//! `GET /health` and the Prometheus endpoint `/metrics` (outside the
//! versioned base, where scrapers expect it).

use super::AppState;
use crate::views::Health;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "health";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Routes served at the root rather than under `/api/v1`.
pub fn root_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Status of Redis, the OVSDB endpoints and the switch connections.
///
/// Always 200 while the API runs; `status` says `degraded` when Redis or
/// an OVSDB endpoint is unreachable.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, description = "Status of the controller's dependencies", body = Health)))]
async fn health(State(s): State<AppState>) -> Json<Health> {
    Json(s.backend.health().await)
}

/// Prometheus metrics: the API's request counters and latencies, then
/// the control plane's.
#[utoipa::path(get, path = "/metrics", tag = TAG,
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut text = s.metrics.render();
    let backend = s.backend.metrics();
    text.push_str(&backend);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
