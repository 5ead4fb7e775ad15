//! `/services`: the contact-center endpoints whose traffic is a session
//! request.

use super::{AppState, BASE, created, same_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::Service;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "services";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
}

/// Every service.
#[utoipa::path(get, path = "/services", tag = TAG,
    responses(
        (status = 200, description = "Every service", body = Vec<Service>),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_services(State(s): State<AppState>) -> Result<Json<Vec<Service>>, ApiError> {
    Ok(Json(s.backend.list_services().await?))
}

/// One service.
#[utoipa::path(get, path = "/services/{name}", tag = TAG,
    params(("name" = String, Path, description = "Service name")),
    responses(
        (status = 200, description = "The service", body = Service),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_service(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Service>, ApiError> {
    Ok(Json(s.backend.get_service(&name).await?))
}

/// Create a service.
#[utoipa::path(post, path = "/services", tag = TAG, request_body = Service,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Service),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A service with this name exists", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn create_service(
    State(s): State<AppState>,
    ApiJson(v): ApiJson<Service>,
) -> Result<Response, ApiError> {
    v.validate()?;
    let v = s.backend.create_service(v).await?;
    Ok(created(format!("{BASE}/services/{}", v.name), v))
}

/// Replace a service.
#[utoipa::path(put, path = "/services/{name}", tag = TAG, request_body = Service,
    params(("name" = String, Path, description = "Service name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Service),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `name` differs from the path", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn update_service(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(v): ApiJson<Service>,
) -> Result<Json<Service>, ApiError> {
    v.validate()?;
    same_key("name", &name, &v.name)?;
    Ok(Json(s.backend.update_service(&name, v).await?))
}

/// Delete a service.
#[utoipa::path(delete, path = "/services/{name}", tag = TAG,
    params(("name" = String, Path, description = "Service name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such service", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_service(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_service(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
