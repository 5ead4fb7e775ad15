//! `/switches`: connected switches, and the flows, meters and queues read
//! live from one of them.

use super::{AppState, dpid};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::views::{FlowView, MeterView, QueueView, SwitchView, format_dpid};
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "switches";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_switches))
        .routes(routes!(get_switch))
        .routes(routes!(switch_flows))
        .routes(routes!(switch_meters))
        .routes(routes!(switch_queues))
}

/// Connected switches with their ports, features and meter features.
#[utoipa::path(get, path = "/switches", tag = TAG,
    responses((status = 200, description = "Connected switches", body = Vec<SwitchView>)))]
async fn list_switches(State(s): State<AppState>) -> Json<Vec<SwitchView>> {
    Json(s.backend.switches().await)
}

/// One connected switch.
#[utoipa::path(get, path = "/switches/{dpid}", tag = TAG,
    params(("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal")),
    responses(
        (status = 200, description = "The switch", body = SwitchView),
        (status = 400, description = "Not a datapath id", body = ErrorBody),
        (status = 404, description = "No such switch connected", body = ErrorBody)))]
async fn get_switch(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SwitchView>, ApiError> {
    let d = dpid(&id)?;
    s.backend
        .switch(d)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::NotFound {
            kind: "switch",
            id: format_dpid(d),
        })
}

/// Flow entries read live from the switch (flow stats).
#[utoipa::path(get, path = "/switches/{dpid}/flows", tag = TAG,
    params(("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal")),
    responses(
        (status = 200, description = "Every flow entry of every table", body = Vec<FlowView>),
        (status = 400, description = "Not a datapath id", body = ErrorBody),
        (status = 404, description = "No such switch connected", body = ErrorBody),
        (status = 503, description = "The switch did not answer", body = ErrorBody)))]
async fn switch_flows(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<FlowView>>, ApiError> {
    Ok(Json(s.backend.switch_flows(dpid(&id)?).await?))
}

/// Meters read live from the switch (meter stats and configuration).
#[utoipa::path(get, path = "/switches/{dpid}/meters", tag = TAG,
    params(("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal")),
    responses(
        (status = 200, description = "Every meter", body = Vec<MeterView>),
        (status = 400, description = "Not a datapath id", body = ErrorBody),
        (status = 404, description = "No such switch connected", body = ErrorBody),
        (status = 503, description = "The switch did not answer", body = ErrorBody)))]
async fn switch_meters(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<MeterView>>, ApiError> {
    Ok(Json(s.backend.switch_meters(dpid(&id)?).await?))
}

/// Queues read live from the switch (queue stats), with their configured rates.
#[utoipa::path(get, path = "/switches/{dpid}/queues", tag = TAG,
    params(("dpid" = String, Path, description = "Datapath id: 16 hex digits, 0x then hex, or decimal")),
    responses(
        (status = 200, description = "Every queue of every port", body = Vec<QueueView>),
        (status = 400, description = "Not a datapath id", body = ErrorBody),
        (status = 404, description = "No such switch connected", body = ErrorBody),
        (status = 503, description = "The switch did not answer", body = ErrorBody)))]
async fn switch_queues(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<QueueView>>, ApiError> {
    Ok(Json(s.backend.switch_queues(dpid(&id)?).await?))
}
