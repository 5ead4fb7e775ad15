//! Router tests: the shared behaviour suite (`support/suite.rs`) against
//! the in-memory reference backend, and what only this crate can check
//! (the backend's metrics appended, raw-path labels, oversized and
//! non-UTF-8 input, serving over TCP with graceful shutdown).

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use support::memory::{Memory, fixture};
use support::suite;
use support::suite::{Client, TOKEN, tier};
use tierflow_api::{ApiConfig, Backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

tierflow_api_suite!(suite, fixture());

fn memory_client() -> (Arc<Memory>, Client) {
    let m = Arc::new(Memory::default());
    let c = Client::new(m.clone(), Some(TOKEN));
    (m, c)
}

#[tokio::test]
async fn metrics_end_with_the_backends() {
    let (m, c) = memory_client();
    c.get("/api/v1/tiers/%FF").await;
    c.get("/api/v1/no/such/thing").await;
    let text = c.get("/metrics").await.text();
    assert!(text.ends_with(&m.metrics()), "{text}");
    assert!(text.contains("tierflow_memory_sessions 0\n"));
    assert!(
        text.contains("route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/tiers/{name}\",method=\"GET\",status=\"400\"} 1\n"));
    assert!(!text.contains("no/such"));
    let own = text
        .find("tierflow_api_requests_total")
        .expect("own counters");
    let theirs = text.find("tierflow_memory_sessions").expect("backend's");
    assert!(own < theirs);
}

#[tokio::test]
async fn odd_input_is_a_client_error() {
    let (_, c) = memory_client();
    c.get("/api/v1/tiers/%FF")
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("name"));
    c.get("/api/v1/switches/%FF")
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("dpid"));
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20));
    c.raw(Method::POST, "/api/v1/tiers", "application/json", &huge)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, None);
    c.raw(
        Method::POST,
        "/api/v1/tiers",
        "application/json",
        "\u{0}\u{1}",
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(
        Method::POST,
        "/api/v1/tiers",
        "application/json",
        "{\"name\": \"\\ud800\"}",
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(Method::POST, "/api/v1/tiers", "application/json", "1e999")
        .await
        .expect_error(StatusCode::BAD_REQUEST, None);
    // A vendor JSON type is JSON.
    c.raw(
        Method::POST,
        "/api/v1/tiers",
        "application/vnd.tierflow+json",
        &tier("gold", 1.0, 10).to_string(),
    )
    .await
    .expect(StatusCode::CREATED);
    // HEAD of a read is open like GET.
    let r = c.call(Method::HEAD, "/api/v1/tiers", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn serves_over_tcp_and_stops_gracefully() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = tierflow_api::router(Arc::new(Memory::default()), ApiConfig::default());
    let stop = CancellationToken::new();
    let server = tokio::spawn(tierflow_api::serve(listener, router, stop.clone()));

    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");

    stop.cancel();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("serve stops within 5 s of the cancel")
        .expect("serve task");
    assert!(done.is_ok(), "{done:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}

#[tokio::test]
async fn mutation_with_a_body_and_the_token_is_applied_once() {
    let (m, c) = memory_client();
    c.post(
        "/api/v1/tiers",
        &json!({"name": "gold", "min_benefit": 1.0, "rate_kbps": 10,
        "burst_kbits": 1, "dscp": 0, "queue_id": 0}),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(m.list_tiers().await.expect("tiers").len(), 1);
}
