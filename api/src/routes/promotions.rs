//! `/promotions`: promotional codes and passwords.

use super::{AppState, BASE, created, same_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::Promotion;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "promotions";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_promotions, create_promotion))
        .routes(routes!(get_promotion, update_promotion, delete_promotion))
}

/// Every promotion.
#[utoipa::path(get, path = "/promotions", tag = TAG,
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every promotion", body = Vec<Promotion>),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_promotions(State(s): State<AppState>) -> Result<Json<Vec<Promotion>>, ApiError> {
    Ok(Json(s.backend.list_promotions().await?))
}

/// One promotion.
#[utoipa::path(get, path = "/promotions/{code}", tag = TAG,
    params(("code" = String, Path, description = "Promotion code")),
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The promotion", body = Promotion),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such promotion", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_promotion(
    State(s): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Promotion>, ApiError> {
    Ok(Json(s.backend.get_promotion(&code).await?))
}

/// Create a promotion.
#[utoipa::path(post, path = "/promotions", tag = TAG, request_body = Promotion,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Promotion),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A promotion with this code exists", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `tier` names no tier", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn create_promotion(
    State(s): State<AppState>,
    ApiJson(v): ApiJson<Promotion>,
) -> Result<Response, ApiError> {
    v.validate()?;
    let v = s.backend.create_promotion(v).await?;
    Ok(created(format!("{BASE}/promotions/{}", v.code), v))
}

/// Replace a promotion.
#[utoipa::path(put, path = "/promotions/{code}", tag = TAG, request_body = Promotion,
    params(("code" = String, Path, description = "Promotion code")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Promotion),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such promotion", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `code` differs from the path", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn update_promotion(
    State(s): State<AppState>,
    ApiPath(code): ApiPath<String>,
    ApiJson(v): ApiJson<Promotion>,
) -> Result<Json<Promotion>, ApiError> {
    v.validate()?;
    same_key("code", &code, &v.code)?;
    Ok(Json(s.backend.update_promotion(&code, v).await?))
}

/// Delete a promotion.
#[utoipa::path(delete, path = "/promotions/{code}", tag = TAG,
    params(("code" = String, Path, description = "Promotion code")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such promotion", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_promotion(
    State(s): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_promotion(&code).await?;
    Ok(StatusCode::NO_CONTENT)
}
