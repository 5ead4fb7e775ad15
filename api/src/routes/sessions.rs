//! `/sessions`: live sessions, their decision and the operator's and the
//! telephony system's actions on them (end, tier override, client data
//! learnt later, hold and resume).

use super::{AppState, check_limit};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{ClientData, Session, SessionState, check_name};
use crate::views::{ClientDataIn, Page, SessionFilter, SessionRequest, StateChange, TierChoice};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const TAG: &str = "sessions";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, request_session))
        .routes(routes!(get_session, delete_session))
        .routes(routes!(set_tier, clear_tier))
        .routes(routes!(client_data))
        .routes(routes!(set_state))
}

/// Sessions matching every given filter, ordered by id.
#[utoipa::path(get, path = "/sessions", tag = TAG, params(SessionFilter),
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of sessions", body = Page<Session>),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 400, description = "Unknown or unreadable parameter", body = ErrorBody),
        (status = 422, description = "`limit` above 1000", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn list_sessions(
    State(s): State<AppState>,
    ApiQuery(f): ApiQuery<SessionFilter>,
) -> Result<Json<Page<Session>>, ApiError> {
    check_limit(f.limit)?;
    Ok(Json(s.backend.list_sessions(f).await?))
}

/// A session requested by an application server (a session border
/// controller, a SIP proxy, a web server, an IVR) that knows it before
/// its first packet, or whose signalling the switches cannot read. It is
/// scored like any session, and its tier is on every switch of its path,
/// both directions, confirmed by each switch, before the answer. Hosts no
/// switch has seen yet: the session waits (`path` empty) and is put on
/// the network as soon as they appear. The same `external_id` again
/// answers the same session.
#[utoipa::path(post, path = "/sessions", tag = TAG, request_body = SessionRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The session, with the explanation of its tier", body = Session),
        (status = 200, description = "The session already requested with this `external_id`", body = Session),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 409, description = "`external_id` names a session between other endpoints", body = ErrorBody),
        (status = 422, description = "A field breaks a rule (the field is named)", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable; nothing was installed", body = ErrorBody)))]
async fn request_session(
    State(s): State<AppState>,
    ApiJson(r): ApiJson<SessionRequest>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    r.validate()?;
    let (session, created) = s.backend.request_session(r).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(session)))
}

/// One session with the explanation of its tier.
#[utoipa::path(get, path = "/sessions/{id}", tag = TAG,
    params(("id" = String, Path, description = "Session id")),
    security(("read_token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The session", body = Session),
        (status = 401, description = "A read token is configured and this one is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "Redis unreachable", body = ErrorBody)))]
async fn get_session(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(s.backend.get_session(&id).await?))
}

/// End a session: its tier flows are removed; it stays readable as `ended`.
#[utoipa::path(delete, path = "/sessions/{id}", tag = TAG,
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended (or already ended)"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable", body = ErrorBody)))]
async fn delete_session(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.backend.delete_session(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Override the automatic choice: the session gets this tier until the
/// override is deleted.
#[utoipa::path(put, path = "/sessions/{id}/tier", tag = TAG, request_body = TierChoice,
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session with its new tier", body = Session),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 422, description = "`tier` names no tier", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable", body = ErrorBody)))]
async fn set_tier(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(c): ApiJson<TierChoice>,
) -> Result<Json<Session>, ApiError> {
    check_name("tier", &c.tier)?;
    Ok(Json(s.backend.set_session_tier(&id, &c.tier).await?))
}

/// Drop the override: the session returns to the automatic choice.
#[utoipa::path(delete, path = "/sessions/{id}/tier", tag = TAG,
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session with its automatic tier", body = Session),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable", body = ErrorBody)))]
async fn clear_tier(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(s.backend.clear_session_tier(&id).await?))
}

/// Data solicited later (IVR, web form): merged into the session's
/// client data; the session is re-scored and re-tiered at once.
#[utoipa::path(post, path = "/sessions/{id}/client-data", tag = TAG, request_body = ClientDataIn,
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The re-scored session", body = Session),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 422, description = "A field breaks a rule", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable", body = ErrorBody)))]
async fn client_data(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(d): ApiJson<ClientDataIn>,
) -> Result<Json<Session>, ApiError> {
    let d = ClientData::from(d);
    d.validate()?;
    Ok(Json(s.backend.client_data(&id, d).await?))
}

/// A telephony (CTI) hold or resume: on hold the tier's hold rate applies.
#[utoipa::path(put, path = "/sessions/{id}/state", tag = TAG, request_body = StateChange,
    params(("id" = String, Path, description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The session in its new state", body = Session),
        (status = 400, description = "Unreadable body or unknown field", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such session", body = ErrorBody),
        (status = 409, description = "The session has ended", body = ErrorBody),
        (status = 422, description = "`state` is not `hold` or `active`", body = ErrorBody),
        (status = 503, description = "Redis or a switch unreachable", body = ErrorBody)))]
async fn set_state(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(c): ApiJson<StateChange>,
) -> Result<Json<Session>, ApiError> {
    if !matches!(c.state, SessionState::Active | SessionState::Hold) {
        return Err(ApiError::invalid(
            "state",
            "must be \"hold\" or \"active\" (end a session with DELETE)",
        ));
    }
    Ok(Json(s.backend.set_session_state(&id, c.state).await?))
}
