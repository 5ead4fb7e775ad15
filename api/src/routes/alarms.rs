//! `GET /alarms`: the conditions an operator should look at now (switch
//! errors, Redis unreachable, a switch's meter pool running out). Read
//! only and open like `/health`: monitoring needs no secret.

use super::AppState;
use crate::views::Alarm;
use axum::Json;
use axum::extract::State;
use std::cmp::Reverse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "alarms";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(alarms))
}

/// The alarms active now, critical first, then the oldest first.
///
/// Kinds: `switch_error` (OFPT_ERRORs received from a switch),
/// `redis_down` (the CRM store is unreachable), `meter_pool` (a switch's
/// meter pool is more than 80 % used; critical when full). An empty list
/// means nothing needs looking at.
#[utoipa::path(get, path = "/alarms", tag = TAG,
    responses((status = 200, description = "The active alarms", body = Vec<Alarm>)))]
async fn alarms(State(s): State<AppState>) -> Json<Vec<Alarm>> {
    let mut list = s.backend.alarms().await;
    list.sort_by(|a, b| {
        (Reverse(a.severity), a.since, a.kind, &a.dpid).cmp(&(
            Reverse(b.severity),
            b.since,
            b.kind,
            &b.dpid,
        ))
    });
    Json(list)
}
