//! `tierflow-api`: the REST API of Tierflow (axum) and its OpenAPI
//! document (utoipa), and the resource types it shares with the control
//! plane. Knows nothing of the OpenFlow wire format: the control plane
//! plugs in through the `Backend` trait.
//!
//! Layout: `/api/v1/...` (routes/), `/api-docs/openapi.json`, `/docs`
//! (Swagger UI compiled into the binary), `/metrics`, and the operator
//! console at `/` (console.rs, its assets under `/console/`).

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware;
use tokio_util::sync::CancellationToken;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

mod auth;
pub mod backend;
mod console;
pub mod error;
pub mod extract;
mod forward;
mod metrics;
pub mod model;
pub mod routes;
pub mod views;

pub use backend::{Backend, BackendError};
pub use error::{ApiError, ErrorBody};

use routes::{AppState, BASE};

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";
/// Where the interactive documentation is served.
pub const DOCS_PATH: &str = "/docs";

/// How the API is run.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// When set, every POST, PUT and DELETE needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// When set, reads of customer data (`/customers`, `/promotions`,
    /// `/sessions` and everything under them) need `Authorization: Bearer
    /// <read_token>` or the write token. `/health`, `/metrics`, the
    /// console and the docs stay open.
    pub read_token: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tierflow",
        description = "OpenFlow 1.3 QoS controller: tiers, CRM, policy and live sessions. \
            Mutations need `Authorization: Bearer <token>` when a token is configured. \
            When a read token is configured, reads of customer data (`/customers`, \
            `/promotions`, `/sessions` and everything under them) need it or the \
            write token; `/health` and `/metrics` stay open. \
            Errors are `{\"error\": \"...\", \"field\": \"...\"}`."
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "Status and metrics"),
        (name = "cluster", description = "The controller instances sharing this Redis"),
        (name = "alarms", description = "Conditions an operator should look at"),
        (name = "switches", description = "Connected switches and their live state"),
        (name = "topology", description = "Switches, links and hosts"),
        (name = "tiers", description = "QoS tiers"),
        (name = "customers", description = "CRM records"),
        (name = "promotions", description = "Promotional codes"),
        (name = "services", description = "Contact-center endpoints"),
        (name = "policy", description = "Expected-benefit weights and default tier"),
        (name = "sessions", description = "Live sessions and actions on them"),
        (name = "vlans", description = "VLANs and their gateways (routed VLANs)"),
        (name = "ports", description = "Which VLANs a switch port carries"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` scheme the mutations' `security` refers to, and
/// the `read_token` scheme that reads of customer data accept as well.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The write token (`TIERFLOW_API_TOKEN`): every mutation needs it \
                         when it is configured; it also reads customer data.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "read_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The read token (`TIERFLOW_API_READ_TOKEN`): when it is configured, \
                         reads of `/customers`, `/promotions` and `/sessions` need it or \
                         the write token.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(BASE, routes::api())
        .merge(routes::health::root_router())
}

/// The OpenAPI document of every route (what `/api-docs/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The whole HTTP surface: `/api/v1`, the OpenAPI document, `/docs`,
/// `/metrics` and the console at `/`, with bearer auth on mutations and
/// request metrics.
pub fn router(backend: Arc<dyn Backend>, cfg: ApiConfig) -> Router {
    let state = AppState {
        backend,
        metrics: Arc::default(),
    };
    let (api, doc) = api_router().split_for_parts();
    let tokens = auth::Tokens {
        write: cfg.token.map(Arc::from),
        read: cfg.read_token.map(Arc::from),
    };
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, doc))
        .merge(console::router())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(tokens, auth::require_token))
        // Before the token check: the leader checks a forwarded call's.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            forward::forward,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(req.uri().path().to_string())
}

async fn method_not_allowed(method: Method, req: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} {}", req.uri().path()))
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then
/// lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
