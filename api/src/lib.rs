//! `tierflow-api`: the REST API of Tierflow (axum) and its OpenAPI
//! document (utoipa), and the resource types it shares with the control
//! plane. Knows nothing of the OpenFlow wire format.

pub mod model;
