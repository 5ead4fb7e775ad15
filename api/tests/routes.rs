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

/// Every local URL an asset names: `src`/`href` attributes of the page
/// and the modules' `import ... from '...'`, resolved against `/console/`.
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["src=\"", "href=\"", "from '", "import '"] {
        let quote = if key.ends_with('"') { '"' } else { '\'' };
        for (i, _) in text.match_indices(key) {
            let rest = &text[i + key.len()..];
            let Some(end) = rest.find(quote) else {
                continue;
            };
            let url = &rest[..end];
            if url.starts_with("data:") {
                continue;
            }
            assert!(
                url.starts_with('/') && !url.starts_with("//") || url.starts_with("./"),
                "{url:?} is not a path on this server"
            );
            out.push(match url.strip_prefix("./") {
                Some(rel) => format!("/console/{rel}"),
                None => url.to_string(),
            });
        }
    }
    out
}

#[tokio::test]
async fn console_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let (_, c) = memory_client();
    let page = c.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let header = |r: &support::suite::Reply, h: &str| {
        r.headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text();
    for id in [
        "topology",
        "sessions",
        "tiers",
        "alarms",
        "token",
        "errors",
        "poll-error",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "no #{id} in the page"
        );
    }
    let mut todo = references(&html);
    assert!(todo.iter().any(|u| u == "/console/app.js"), "{todo:?}");
    assert!(todo.iter().any(|u| u == "/console/console.css"), "{todo:?}");
    let mut seen = std::collections::BTreeSet::new();
    let mut texts = vec![("/".to_string(), html)];
    while let Some(url) = todo.pop() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let r = c.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        let ct = header(&r, "content-type");
        let want = match url.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            other => panic!("{url}: unexpected asset type {other:?}"),
        };
        assert!(ct.starts_with(want), "{url}: {ct}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        let text = r.text();
        assert!(!text.is_empty(), "{url} is empty");
        todo.extend(references(&text));
        texts.push((url, text));
    }
    assert!(
        seen.contains("/console/api.js") && seen.contains("/console/topology.js"),
        "{seen:?}"
    );
    for (url, text) in &texts {
        for bad in [
            "http://", "https://", "url(", "@import", "//cdn", "wss://", "ws://",
        ] {
            assert!(!text.contains(bad), "{url} contains {bad:?}");
        }
    }
    // The page finds its data where the API serves it.
    let app = &texts
        .iter()
        .find(|(u, _)| u == "/console/api.js")
        .expect("api.js")
        .1;
    assert!(app.contains("'/api/v1'"), "api.js does not use /api/v1");

    c.get("/console/nosuch.js")
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.get("/console/../Cargo.toml")
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
}

#[tokio::test]
async fn alarms_list_what_needs_looking_at_critical_first() {
    let (m, c) = memory_client();
    assert_eq!(
        c.get("/api/v1/alarms").await.expect(StatusCode::OK),
        json!([])
    );
    m.connect_switch(1);
    m.connect_switch(2);
    m.switch_error(2, "METER_MOD_FAILED/OUT_OF_METERS");
    m.switch_error(2, "METER_MOD_FAILED/OUT_OF_METERS");
    suite::seed(&c).await;
    m.set_max_meter(1, 2);
    for client in ["10.0.0.1", "10.0.0.9"] {
        m.start_session(client.parse().expect("ip"), "sip")
            .expect("session");
    }
    m.break_store();
    // Open like /health: no token needed, and a dead Redis does not hide them.
    let list = c.get("/api/v1/alarms").await.expect(StatusCode::OK);
    let kinds: Vec<(&str, &str)> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or(""),
                a["severity"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("redis_down", "critical"),
            ("meter_pool", "critical"),
            ("switch_error", "warning")
        ],
        "{list}"
    );
    let pool = &list[1];
    assert_eq!(pool["dpid"], "0000000000000001");
    assert!(
        pool["message"]
            .as_str()
            .is_some_and(|t| t.contains("2 of 2")),
        "{pool}"
    );
    let err = &list[2];
    assert_eq!(err["count"], 2);
    assert_eq!(err["dpid"], "0000000000000002");
    assert!(
        chrono::DateTime::parse_from_rfc3339(err["since"].as_str().expect("since")).is_ok(),
        "{err}"
    );
    assert!(list[0]["dpid"].is_null());
}

#[tokio::test]
async fn sessions_carry_their_measured_rates() {
    let (m, c) = memory_client();
    suite::seed(&c).await;
    let id = m
        .start_session("10.0.0.1".parse().expect("ip"), "sip")
        .expect("session");
    let s = c
        .get(&format!("/api/v1/sessions/{id}"))
        .await
        .expect(StatusCode::OK);
    assert!(s["measured_kbps"].is_null(), "{s}");
    m.measure(&id, 48_210.5, 87.0);
    let s = c
        .get(&format!("/api/v1/sessions/{id}"))
        .await
        .expect(StatusCode::OK);
    let mk = &s["measured_kbps"];
    assert_eq!(mk["to_server"], 48_210.5);
    assert_eq!(mk["to_client"], 87.0);
    assert!(
        chrono::DateTime::parse_from_rfc3339(mk["at"].as_str().expect("at")).is_ok(),
        "{s}"
    );
}

#[tokio::test]
async fn the_grafana_dashboard_charts_the_apis_own_metrics() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("docs/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() > 10, "{exprs:?}");
    let (_, c) = memory_client();
    c.get("/api/v1/health").await;
    let metrics = c.get("/metrics").await.text();
    for e in &exprs {
        for (i, _) in e.match_indices("tierflow_api_") {
            let name: String = e[i..]
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            assert!(
                metrics.contains(&format!("\n{name}{{")),
                "{name} (in {e}) is not on /metrics:\n{metrics}"
            );
        }
    }
}
