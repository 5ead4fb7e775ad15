//! `tierflow-api`: the REST API (axum) and its OpenAPI document.
//!
//! Knows nothing of the OpenFlow wire format; it talks to the control plane
//! through plain Rust types and traits. Built in the REST API issue.
