//! `/customers`: the CRM records held in Redis.

use super::{AppState, BASE, check_limit, created, same_key};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::Customer;
use crate::views::{CustomerFilter, Page};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "customers";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers, create_customer))
        .routes(routes!(get_customer, update_customer, delete_customer))
}

/// CRM records matching every given filter, ordered by id.
#[utoipa::path(get, path = "/customers", tag = TAG, params(CustomerFilter),
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of customers", body = Page<Customer>),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 400, description = "Unknown or unreadable parameter", body = ErrorBody),
        (status = 422, description = "`limit` above 1000", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_customers(
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<CustomerFilter>,
) -> Result<Json<Page<Customer>>, ApiError> {
    check_limit(f.limit)?;
    Ok(Json(s.backend.list_customers(f).await?))
}

/// One customer.
#[utoipa::path(get, path = "/customers/{id}", tag = TAG,
    params(("id" = String, Path, description = "Customer id")),
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The customer", body = Customer),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_customer(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Customer>, ApiError> {
    Ok(Json(s.backend.get_customer(&id).await?))
}

/// Create a customer.
#[utoipa::path(post, path = "/customers", tag = TAG, request_body = Customer,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Customer),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A customer with this id exists", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn create_customer(
    State(s): State<AppState>,
    ApiJson(v): ApiJson<Customer>,
) -> Result<Response, ApiError> {
    v.validate()?;
    let v = s.backend.create_customer(v).await?;
    Ok(created(format!("{BASE}/customers/{}", v.id), v))
}

/// Replace a customer.
#[utoipa::path(put, path = "/customers/{id}", tag = TAG, request_body = Customer,
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Customer),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or `id` differs from the path", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn update_customer(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(v): ApiJson<Customer>,
) -> Result<Json<Customer>, ApiError> {
    v.validate()?;
    same_key("id", &id, &v.id)?;
    Ok(Json(s.backend.update_customer(&id, v).await?))
}

/// Delete a customer.
#[utoipa::path(delete, path = "/customers/{id}", tag = TAG,
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such customer", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_customer(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_customer(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
