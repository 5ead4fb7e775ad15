//! The `/api/v1` routes, one module per resource of PRODUCT.md's table,
//! each an `OpenApiRouter` whose handlers carry their OpenAPI operation.
//! Handlers only translate: read the request (extract.rs), validate the
//! body with the model's rules, call the `Backend`, shape the answer.

use crate::backend::Backend;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::views::{MAX_LIMIT, parse_dpid};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;

pub mod alarms;
pub mod cluster;
pub mod customers;
pub mod health;
pub mod policy;
pub mod ports;
pub mod promotions;
pub mod services;
pub mod sessions;
pub mod switches;
pub mod tiers;
pub mod topology;
pub mod vlans;

/// The base path of the resources.
pub const BASE: &str = "/api/v1";

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// Every resource route, relative to `BASE`.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(cluster::router())
        .merge(alarms::router())
        .merge(switches::router())
        .merge(topology::router())
        .merge(tiers::router())
        .merge(customers::router())
        .merge(promotions::router())
        .merge(services::router())
        .merge(policy::router())
        .merge(sessions::router())
        .merge(vlans::router())
        .merge(ports::router())
}

/// A `{dpid}` path parameter.
pub(crate) fn dpid(v: &str) -> Result<u64, ApiError> {
    parse_dpid(v).ok_or_else(|| {
        ApiError::bad_request(
            format!("dpid: {v:?} is not a datapath id (16 hex digits, 0x then hex, or decimal)"),
            Some("dpid".into()),
        )
    })
}

/// A PUT's body must name the resource of its path: a rename through
/// PUT would silently leave the old record behind.
pub(crate) fn same_key(field: &str, in_path: &str, in_body: &str) -> Result<(), ApiError> {
    if in_path == in_body {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("is {in_body:?} but the path names {in_path:?}"),
        ))
    }
}

pub(crate) fn check_limit(limit: usize) -> Result<(), ApiError> {
    if limit > MAX_LIMIT {
        return Err(ApiError::invalid(
            "limit",
            format!("must be at most {MAX_LIMIT}"),
        ));
    }
    Ok(())
}

/// 201 with the created resource and where it lives.
pub(crate) fn created<T: Serialize>(location: String, body: T) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::try_from(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
