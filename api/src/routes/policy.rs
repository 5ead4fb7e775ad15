//! `/policy`: the expected-benefit weights and the default tier.

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::model::Policy;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "policy";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy))
}

/// The policy in force.
#[utoipa::path(get, path = "/policy", tag = TAG,
    responses(
        (status = 200, description = "The policy", body = Policy),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_policy(State(s): State<AppState>) -> Result<Json<Policy>, ApiError> {
    Ok(Json(s.backend.get_policy().await?))
}

/// Replace the policy. New sessions are scored with it.
#[utoipa::path(put, path = "/policy", tag = TAG, request_body = Policy,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Policy),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `default_tier` names no tier", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn put_policy(
    State(s): State<AppState>,
    ApiJson(p): ApiJson<Policy>,
) -> Result<Json<Policy>, ApiError> {
    p.validate()?;
    Ok(Json(s.backend.put_policy(p).await?))
}
