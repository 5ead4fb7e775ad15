//! `GET /topology`: switches, inter-switch links and where hosts attach.

use super::AppState;
use crate::views::TopologyView;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "topology";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(topology))
}

/// The network as the controller sees it.
#[utoipa::path(get, path = "/topology", tag = TAG,
    responses((status = 200, description = "Switches, links and hosts", body = TopologyView)))]
async fn topology(State(s): State<AppState>) -> Json<TopologyView> {
    Json(s.backend.topology().await)
}
