//! Forwarding to the cluster's leader: while another instance masters the
//! switches, an API call to this one is sent to the leader as it came
//! (method, path, query, headers, body) and its answer returned as it
//! is, so a call to any instance acts on the whole cluster. `/health`,
//! `/cluster`, `/metrics`, the docs and the console's files answer here.
//! A forwarded call carries `X-Tierflow-Forwarded`, and is never
//! forwarded again (two instances that each think the other leads answer
//! 503 rather than loop).

use crate::error::ApiError;
use crate::routes::{AppState, BASE};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::time::Duration;

/// Marks a call one instance forwarded to another.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-tierflow-forwarded");

/// How long the leader has to answer a forwarded call.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls answered by the instance asked, whoever leads.
fn local(path: &str) -> bool {
    let Some(rest) = path.strip_prefix(BASE) else {
        return true;
    };
    matches!(rest, "/health" | "/cluster") || !rest.starts_with('/')
}

pub async fn forward(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if local(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(leader) = s.backend.forward_to() else {
        return next.run(req).await;
    };
    if req.headers().contains_key(&FORWARDED) {
        return ApiError::Unavailable(
            "this instance is not the cluster's leader either; try again once the \
             cluster has one"
                .into(),
        )
        .into_response();
    }
    match tokio::time::timeout(FORWARD_TIMEOUT, send(&leader, req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => ApiError::Unavailable(format!(
            "the cluster's leader ({leader}) did not answer: {e}"
        ))
        .into_response(),
        Err(_) => ApiError::Unavailable(format!(
            "the cluster's leader ({leader}) did not answer within {FORWARD_TIMEOUT:?}"
        ))
        .into_response(),
    }
}

/// One call over its own connection (calls are few: operators and
/// application servers, not packets).
async fn send(leader: &str, req: Request) -> Result<Response, String> {
    let stream = tokio::net::TcpStream::connect(leader)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let (mut parts, body) = req.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| e.to_string())?;
    if let Ok(host) = HeaderValue::from_str(leader) {
        parts.headers.insert(header::HOST, host);
    }
    parts
        .headers
        .insert(FORWARDED, HeaderValue::from_static("1"));
    let call = async {
        let resp = sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        // The connection ends once the sender is gone and the answer read.
        drop(sender);
        Ok::<_, String>(Response::from_parts(parts, Body::from(bytes)))
    };
    let (resp, _) = tokio::join!(call, conn);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_cluster_and_everything_outside_the_api_answer_here() {
        for p in [
            "/api/v1/health",
            "/api/v1/cluster",
            "/metrics",
            "/",
            "/docs/",
            "/api/v1x",
        ] {
            assert!(local(p), "{p}");
        }
        for p in ["/api/v1/sessions", "/api/v1/tiers/gold", "/api/v1/topology"] {
            assert!(!local(p), "{p}");
        }
    }
}
