//! `/vlans`: VLANs and the router's addresses in them (a VLAN with
//! gateways is routed). A change takes effect on the live network: the
//! flows it made wrong are removed.

use super::{AppState, BASE, created};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::Vlan;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "vlans";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vlans, create_vlan))
        .routes(routes!(get_vlan, update_vlan, delete_vlan))
}

/// Every VLAN with a record, by vid. VLAN 1 (every port's untagged VLAN
/// unless `/ports` says otherwise) exists without one.
#[utoipa::path(get, path = "/vlans", tag = TAG,
    responses(
        (status = 200, description = "Every VLAN", body = Vec<Vlan>),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_vlans(State(s): State<AppState>) -> Result<Json<Vec<Vlan>>, ApiError> {
    Ok(Json(s.backend.list_vlans().await?))
}

/// One VLAN.
#[utoipa::path(get, path = "/vlans/{vid}", tag = TAG,
    params(("vid" = u16, Path, description = "VLAN id")),
    responses(
        (status = 200, description = "The VLAN", body = Vlan),
        (status = 400, description = "Not a VLAN id", body = ErrorBody),
        (status = 404, description = "No such VLAN", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_vlan(
    State(s): State<AppState>,
    ApiPath(vid): ApiPath<u16>,
) -> Result<Json<Vlan>, ApiError> {
    Ok(Json(s.backend.get_vlan(vid).await?))
}

/// Create a VLAN.
///
/// Its gateways' subnets must not overlap another VLAN's (422 naming the
/// gateway).
#[utoipa::path(post, path = "/vlans", tag = TAG, request_body = Vlan,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = Vlan),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "A VLAN with this vid exists", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or a gateway's subnet overlaps another VLAN's", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn create_vlan(
    State(s): State<AppState>,
    ApiJson(v): ApiJson<Vlan>,
) -> Result<Response, ApiError> {
    v.validate()?;
    let v = s.backend.create_vlan(v).await?;
    Ok(created(format!("{BASE}/vlans/{}", v.vid), v))
}

/// Replace a VLAN.
///
/// Takes effect at once: routed paths and sessions that its old gateways
/// made are removed (their next packet finds their way again).
#[utoipa::path(put, path = "/vlans/{vid}", tag = TAG, request_body = Vlan,
    params(("vid" = u16, Path, description = "VLAN id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Vlan),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such VLAN", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, `vid` differs from the path, or a gateway's subnet overlaps another VLAN's", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn update_vlan(
    State(s): State<AppState>,
    ApiPath(vid): ApiPath<u16>,
    ApiJson(v): ApiJson<Vlan>,
) -> Result<Json<Vlan>, ApiError> {
    v.validate()?;
    if v.vid != vid {
        return Err(ApiError::invalid(
            "vid",
            format!("is {} but the path names {vid}", v.vid),
        ));
    }
    Ok(Json(s.backend.update_vlan(vid, v).await?))
}

/// Delete a VLAN.
///
/// Refused (409) while a port carries it.
#[utoipa::path(delete, path = "/vlans/{vid}", tag = TAG,
    params(("vid" = u16, Path, description = "VLAN id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a VLAN id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such VLAN", body = ErrorBody),
        (status = 409, description = "A port carries the VLAN", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_vlan(
    State(s): State<AppState>,
    ApiPath(vid): ApiPath<u16>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_vlan(vid).await?;
    Ok(StatusCode::NO_CONTENT)
}
