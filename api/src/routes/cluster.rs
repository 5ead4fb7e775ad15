//! `GET /cluster`: the controller instances sharing this Redis, their
//! leases and roles, and the switches each one is master of. Answered by
//! whichever instance is asked (never forwarded to the leader).

use super::AppState;
use crate::error::ApiError;
use crate::views::ClusterView;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "cluster";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cluster))
}

/// The instances sharing this Redis: which one leads (master of every
/// switch), the leader's term (its OpenFlow `generation_id`), and each
/// instance's lease, role and switches.
#[utoipa::path(get, path = "/cluster", tag = TAG,
    responses(
        (status = 200, description = "The cluster as Redis sees it", body = ClusterView),
        (status = 503, description = "Redis cannot be reached", body = crate::ErrorBody)))]
async fn cluster(State(s): State<AppState>) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(s.backend.cluster().await?))
}
