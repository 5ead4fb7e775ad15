//! `/ports`: which VLANs a switch port carries. A port without a record
//! carries VLAN 1 untagged. A change takes effect on the live network:
//! the port's hosts are learnt again in their new VLAN, and the paths and
//! sessions of the old one are removed.

use super::{AppState, dpid};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::model::PortConfig;
use crate::views::format_dpid;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "ports";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_ports))
        .routes(routes!(get_port, put_port, delete_port))
}

/// Every port with a record, by datapath id and port.
#[utoipa::path(get, path = "/ports", tag = TAG,
    responses(
        (status = 200, description = "Every configured port", body = Vec<PortConfig>),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_ports(State(s): State<AppState>) -> Result<Json<Vec<PortConfig>>, ApiError> {
    Ok(Json(s.backend.list_ports().await?))
}

/// One port's VLANs.
#[utoipa::path(get, path = "/ports/{dpid}/{port}", tag = TAG,
    params(
        ("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal"),
        ("port" = u32, Path, description = "OpenFlow port number")),
    responses(
        (status = 200, description = "The port's VLANs", body = PortConfig),
        (status = 400, description = "Not a datapath id or port number", body = ErrorBody),
        (status = 404, description = "No record for the port (it carries VLAN 1 untagged)", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_port(
    State(s): State<AppState>,
    ApiPath((id, port)): ApiPath<(String, u32)>,
) -> Result<Json<PortConfig>, ApiError> {
    Ok(Json(s.backend.get_port(dpid(&id)?, port).await?))
}

/// Set a port's VLANs (created or replaced).
///
/// Every VLAN it names must exist (422 naming the field); the native VLAN
/// may not also be tagged. Takes effect at once: the port's hosts lose
/// what their old VLANs gave them.
#[utoipa::path(put, path = "/ports/{dpid}/{port}", tag = TAG, request_body = PortConfig,
    params(
        ("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal"),
        ("port" = u32, Path, description = "OpenFlow port number")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = PortConfig),
        (status = 201, description = "Created", body = PortConfig),
        (status = 400, description = "Unreadable body, unknown field, or not a datapath id or port number", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, names a VLAN that does not exist, or differs from the path", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn put_port(
    State(s): State<AppState>,
    ApiPath((id, port)): ApiPath<(String, u32)>,
    ApiJson(p): ApiJson<PortConfig>,
) -> Result<Response, ApiError> {
    let d = dpid(&id)?;
    p.validate()?;
    if p.dpid_value() != Some(d) {
        return Err(ApiError::invalid(
            "dpid",
            format!("is {:?} but the path names {}", p.dpid, format_dpid(d)),
        ));
    }
    if p.port != port {
        return Err(ApiError::invalid(
            "port",
            format!("is {} but the path names {port}", p.port),
        ));
    }
    let (p, made) = s.backend.put_port(p.canonical()).await?;
    let status = if made {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(p)).into_response())
}

/// Forget a port's VLANs: it carries VLAN 1 untagged again.
#[utoipa::path(delete, path = "/ports/{dpid}/{port}", tag = TAG,
    params(
        ("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal"),
        ("port" = u32, Path, description = "OpenFlow port number")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a datapath id or port number", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No record for the port", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn delete_port(
    State(s): State<AppState>,
    ApiPath((id, port)): ApiPath<(String, u32)>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_port(dpid(&id)?, port).await?;
    Ok(StatusCode::NO_CONTENT)
}
