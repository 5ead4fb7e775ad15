//! `/tiers`: the QoS tiers. A change takes effect on every live session of the
//! tier, on every switch.

use super::{AppState, BASE, created, same_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::Tier;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "tiers";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tiers, create_tier))
        .routes(routes!(get_tier, update_tier, delete_tier))
}

/// Every tier.
#[utoipa::path(get, path = "/tiers", tag = TAG,
    responses(
        (status = 200, description = "Every tier", body = Vec<Tier>),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_tiers(State(s): State<AppState>) -> Result<Json<Vec<Tier>>, ApiError> {
    Ok(Json(s.backend.list_tiers().await?))
}

/// One tier.
#[utoipa::path(get, path = "/tiers/{name}", tag = TAG,
    params(("name" = String, Path, description = "Tier name")),
    responses(
        (status = 200, description = "The tier", body = Tier),
        (status = 404, description = "No such tier", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_tier(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Tier>, ApiError> {
    Ok(Json(s.backend.get_tier(&name).await?))
}

/// Create a tier.
#[utoipa::path(post, path = "/tiers", tag = TAG, request_body = Tier,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Tier),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A tier with this name exists", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn create_tier(
    State(s): State<AppState>,
    ApiJson(v): ApiJson<Tier>,
) -> Result<Response, ApiError> {
    v.validate()?;
    let v = s.backend.create_tier(v).await?;
    Ok(created(format!("{BASE}/tiers/{}", v.name), v))
}

/// Replace a tier.
///
/// Takes effect at once on every live session of the tier, on every switch.
#[utoipa::path(put, path = "/tiers/{name}", tag = TAG, request_body = Tier,
    params(("name" = String, Path, description = "Tier name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Tier),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such tier", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `name` differs from the path", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn update_tier(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(v): ApiJson<Tier>,
) -> Result<Json<Tier>, ApiError> {
    v.validate()?;
    same_key("name", &name, &v.name)?;
    Ok(Json(s.backend.update_tier(&name, v).await?))
}

/// Delete a tier.
///
/// Refused (409) while a live session, a promotion or the policy's default uses it.
#[utoipa::path(delete, path = "/tiers/{name}", tag = TAG,
    params(("name" = String, Path, description = "Tier name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such tier", body = ErrorBody),
        (status = 409, description = "A live session, a promotion or the policy uses the tier", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_tier(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_tier(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
