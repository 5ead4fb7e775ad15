//! The REST API's behaviour suite, written against any `Backend`.
//!
//! Every test drives the full router (`tierflow_api::router`) with
//! `tower::ServiceExt::oneshot` and checks status codes, JSON bodies and
//! that rejected requests changed nothing. It runs here against the
//! in-memory reference backend (`memory.rs`) and, `#[path]`-included
//! from `controller/tests/`, against the real control plane with real
//! Redis:
//!
//! ```ignore
//! #[path = "../../api/tests/support/suite.rs"]
//! mod suite;
//! tierflow_api_suite!(suite, my_fixture()); // my_fixture(): async fn -> Box<dyn suite::Fixture>
//! ```
//!
//! The including crate needs the dev-dependencies `tokio`, `tower`,
//! `axum`, `http-body-util`, `serde_json` and `async-trait`.

#![allow(dead_code)]

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use tierflow_api::{ApiConfig, Backend};
use tower::ServiceExt;

/// The token the suite configures.
pub const TOKEN: &str = "suite-token-0123456789";
/// The read token `read_token_guards_customer_data` configures.
pub const READ_TOKEN: &str = "suite-read-token-9876543210";

/// What a backend under test provides besides itself. Each test builds a
/// fresh fixture, which must start empty: no tiers, customers,
/// promotions, services or sessions, no switches; Redis up and every
/// configured OVSDB endpoint connected (or none configured), so that
/// `/health` says `ok`.
#[async_trait]
pub trait Fixture: Send + Sync {
    fn backend(&self) -> Arc<dyn Backend>;
    /// Start a session of `client_ip` to the service named `service` (which
    /// the test has created through the API), as a packet-in from that
    /// client would, and return its id once it is scored and visible.
    async fn start_session(&self, client_ip: IpAddr, service: &str) -> String;
    /// Connect a switch with at least one port and return its datapath
    /// id, once `GET /switches` shows it.
    async fn connect_switch(&self) -> u64;
    /// Make the store (Redis) unreachable for the rest of the test.
    async fn break_store(&self);
}

/// Generates one `#[tokio::test]` per suite test for a fixture.
/// `$suite` is this module's name in scope where the macro is called
/// (`use support::suite;`), `$make` an expression whose `.await` gives a
/// `Box<dyn Fixture>`.
#[macro_export]
macro_rules! tierflow_api_suite {
    ($suite:ident, $make:expr) => {
        $crate::tierflow_api_suite!(@tests $suite ($make);
            health_metrics_and_docs,
            switches_and_topology,
            tiers_crud,
            tier_validation_changes_nothing,
            tier_delete_conflicts,
            customers_crud_validation_and_filters,
            promotions_crud,
            services_crud,
            policy_get_put,
            sessions_scored_and_filtered,
            session_actions,
            session_errors,
            session_requests,
            vlans_crud,
            vlan_validation_changes_nothing,
            ports_crud_validation_and_conflicts,
            auth_guards_every_mutation,
            read_token_guards_customer_data,
            no_token_configured_allows_mutations,
            store_outage_is_503,
        );
    };
    (@tests $suite:ident ($make:expr); $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fx = $make.await;
                $suite::$name(&*fx).await;
            }
        )*
    };
}

/// One answer, with what was asked for failure messages.
#[derive(Debug)]
pub struct Reply {
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: StatusCode) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text()
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an error answer: the status, a JSON `error` text and the
    /// `field` (absent when `None`).
    pub fn expect_error(&self, status: StatusCode, field: Option<&str>) -> String {
        let v = self.expect(status);
        let ct = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "{}: content-type {ct:?}",
            self.what
        );
        let error = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error text in {v}", self.what));
        assert!(!error.is_empty(), "{}: empty error text", self.what);
        assert!(
            !error.contains("panicked") && !error.contains("stack backtrace"),
            "{}: {error}",
            self.what
        );
        assert_eq!(
            v.get("field").and_then(Value::as_str),
            field,
            "{}: field of {v}",
            self.what
        );
        error.to_string()
    }
}

/// The router under test and a way to call it.
#[derive(Clone)]
pub struct Client {
    pub router: Router,
    /// Sent with mutations by `post`, `put` and `delete`.
    pub token: Option<String>,
}

impl Client {
    pub fn new(backend: Arc<dyn Backend>, token: Option<&str>) -> Self {
        Client::with_config(
            backend,
            ApiConfig {
                token: token.map(str::to_string),
                ..ApiConfig::default()
            },
        )
    }

    /// A router with `cfg`; mutations are sent with its write token.
    pub fn with_config(backend: Arc<dyn Backend>, cfg: ApiConfig) -> Self {
        let token = cfg.token.clone();
        Client {
            router: tierflow_api::router(backend, cfg),
            token,
        }
    }

    pub async fn request(&self, req: Request<Body>) -> Reply {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
            .to_bytes();
        Reply {
            what,
            status,
            headers,
            body,
        }
    }

    /// `body` is sent as JSON; `auth` is the whole Authorization value.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        auth: Option<&str>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.request(req).await
    }

    /// A raw body with a given content type, with the token.
    pub async fn raw(&self, method: Method, path: &str, content_type: &str, body: &str) -> Reply {
        let mut b = Request::builder().method(method).uri(path);
        if !content_type.is_empty() {
            b = b.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(t) = &self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.request(b.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    fn bearer(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body), self.bearer().as_deref())
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body), self.bearer().as_deref())
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None, self.bearer().as_deref())
            .await
    }
}

pub fn client(fx: &dyn Fixture) -> Client {
    Client::new(fx.backend(), Some(TOKEN))
}

const V1: &str = "/api/v1";

fn url(path: &str) -> String {
    format!("{V1}{path}")
}

pub fn tier(name: &str, min_benefit: f64, rate: u32) -> Value {
    json!({"name": name, "min_benefit": min_benefit, "rate_kbps": rate, "burst_kbits": rate / 10 + 1,
           "dscp": 10, "queue_id": 1, "queue_min_kbps": rate / 2, "hold_rate_kbps": 64})
}

/// PRODUCT.md's customer: benefit with unit weights is
/// 80000*22.5/100 + 40000*0.35 + 250000*0.1 = 18000 + 14000 + 25000 = 57000.
pub fn acme() -> Value {
    json!({"id": "c-1001", "name": "Acme Corp", "phones": ["+14155550100"], "ips": ["10.0.0.1"],
           "lifetime_value": 250000.0, "annual_revenue": 80000.0, "margin_pct": 22.5,
           "open_opportunity_value": 40000.0, "win_probability": 0.35, "churn_risk": 0.1,
           "segment": "enterprise"})
}

/// Benefit 10000*10/100 = 1000.
pub fn small() -> Value {
    json!({"id": "c-2002", "name": "Small Shop", "phones": ["+14155550199"], "ips": ["10.0.2.0/24"],
           "annual_revenue": 10000.0, "margin_pct": 10.0, "segment": "smb"})
}

pub fn sip() -> Value {
    json!({"name": "sip", "ip": "10.0.0.100", "proto": "udp", "port": 5060, "kind": "sip"})
}

/// Tiers best-effort (0), silver (1000), gold (5000), platinum (100000);
/// the policy's default best-effort; the sip service; acme and small.
pub async fn seed(c: &Client) {
    for t in [
        tier("best-effort", 0.0, 1000),
        tier("silver", 1000.0, 10_000),
        tier("gold", 5000.0, 50_000),
        tier("platinum", 100_000.0, 100_000),
    ] {
        c.post(&url("/tiers"), &t).await.expect(StatusCode::CREATED);
    }
    c.put(
        &url("/policy"),
        &json!({"weights": {"margin": 1.0, "opportunity": 1.0, "retention": 1.0}, "default_tier": "best-effort"}),
    )
    .await
    .expect(StatusCode::OK);
    c.post(&url("/services"), &sip())
        .await
        .expect(StatusCode::CREATED);
    c.post(&url("/customers"), &acme())
        .await
        .expect(StatusCode::CREATED);
    c.post(&url("/customers"), &small())
        .await
        .expect(StatusCode::CREATED);
}

/// A VLAN with one gateway (none when `gateway` is empty).
pub fn vlan(vid: u16, gateway: &str) -> Value {
    let gateways: Vec<&str> = [gateway].into_iter().filter(|g| !g.is_empty()).collect();
    json!({"vid": vid, "name": format!("v{vid}"), "gateways": gateways})
}

pub fn port(dpid: u64, port: u32, native: Option<u16>, tagged: &[u16]) -> Value {
    json!({"dpid": format!("{dpid:016x}"), "port": port, "native_vlan": native, "tagged_vlans": tagged})
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_string())
        .collect()
}

// ---------------------------------------------------------------- tests

pub async fn health_metrics_and_docs(fx: &dyn Fixture) {
    let c = client(fx);
    let h = c.get(&url("/health")).await.expect(StatusCode::OK);
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["redis"], true, "{h}");
    assert!(h["ovsdb"].is_array(), "{h}");
    assert!(h["switches"].is_u64(), "{h}");

    // A templated route is counted under its template, not its raw path.
    c.get(&url("/tiers/nosuch"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    let m = c.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    let ct = m.headers[header::CONTENT_TYPE].to_str().expect("ascii");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = m.text();
    assert!(
        text.contains(
            "tierflow_api_requests_total{route=\"/api/v1/health\",method=\"GET\",status=\"200\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "tierflow_api_requests_total{route=\"/api/v1/tiers/{name}\",method=\"GET\",status=\"404\"} 1\n"
        ),
        "{text}"
    );
    assert!(!text.contains("nosuch"), "{text}");
    assert!(text.contains("# TYPE tierflow_api_request_duration_seconds histogram"));
    assert!(text.contains(
        "tierflow_api_request_duration_seconds_count{route=\"/api/v1/health\",method=\"GET\"} 1\n"
    ));

    // Alarms are open like /health; a healthy fixture has none.
    let alarms = c.get(&url("/alarms")).await.expect(StatusCode::OK);
    assert_eq!(alarms, json!([]), "{alarms}");
    // The operator console.
    let console = c.get("/").await;
    assert_eq!(console.status, StatusCode::OK);
    assert!(console.text().contains("/console/app.js"));

    let doc = c.get("/api-docs/openapi.json").await.expect(StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(doc["paths"]["/api/v1/sessions/{id}/state"]["put"].is_object());

    let page = c.get("/docs/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.text().contains("<html") || page.text().contains("<!DOCTYPE html"));
    assert!(page.text().contains("swagger-ui-bundle.js"));
    let js = c.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.len() > 100_000, "bundle of {} bytes", js.body.len());
    let init = c.get("/docs/swagger-initializer.js").await;
    assert_eq!(init.status, StatusCode::OK);
    assert!(
        init.text().contains("/api-docs/openapi.json"),
        "{}",
        init.text()
    );

    c.get("/nowhere")
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.call(
        Method::PATCH,
        &url("/tiers"),
        None,
        Some(&format!("Bearer {TOKEN}")),
    )
    .await
    .expect_error(StatusCode::METHOD_NOT_ALLOWED, None);
}

pub async fn switches_and_topology(fx: &dyn Fixture) {
    let c = client(fx);
    let dpid = fx.connect_switch().await;
    let hex = format!("{dpid:016x}");
    let list = c.get(&url("/switches")).await.expect(StatusCode::OK);
    assert!(ids(&list, "dpid").contains(&hex), "{list}");
    for form in [hex.clone(), dpid.to_string(), format!("0x{dpid:x}")] {
        let s = c
            .get(&url(&format!("/switches/{form}")))
            .await
            .expect(StatusCode::OK);
        assert_eq!(s["dpid"], hex.as_str());
        assert!(s["ports"].as_array().is_some_and(|p| !p.is_empty()), "{s}");
        assert!(s["n_tables"].is_u64());
        assert!(s["connected_at"].is_string());
    }
    for what in ["flows", "meters", "queues"] {
        let v = c
            .get(&url(&format!("/switches/{hex}/{what}")))
            .await
            .expect(StatusCode::OK);
        assert!(v.is_array(), "{what}: {v}");
        c.get(&url(&format!("/switches/s1/{what}")))
            .await
            .expect_error(StatusCode::BAD_REQUEST, Some("dpid"));
        c.get(&url(&format!(
            "/switches/{:016x}/{what}",
            dpid ^ 0xdead_0000
        )))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    }
    let flows = c
        .get(&url(&format!("/switches/{hex}/flows")))
        .await
        .expect(StatusCode::OK);
    if let Some(f) = flows.as_array().and_then(|a| a.first()) {
        assert!(f.get("match").is_some() && f.get("match_").is_none(), "{f}");
        assert!(f["cookie"].is_string());
    }
    c.get(&url("/switches/0x"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("dpid"));
    c.get(&url("/switches/99999999999999999999"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("dpid"));
    c.get(&url(&format!("/switches/{:016x}", dpid ^ 0xdead_0000)))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);

    let topo = c.get(&url("/topology")).await.expect(StatusCode::OK);
    assert!(
        topo["switches"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == hex.as_str())),
        "{topo}"
    );
    assert!(topo["links"].is_array() && topo["hosts"].is_array());
    let h = c.get(&url("/health")).await.expect(StatusCode::OK);
    assert!(h["switches"].as_u64().is_some_and(|n| n >= 1), "{h}");
}

pub async fn tiers_crud(fx: &dyn Fixture) {
    let c = client(fx);
    assert_eq!(
        c.get(&url("/tiers")).await.expect(StatusCode::OK),
        json!([])
    );
    let gold = tier("gold", 5000.0, 50_000);
    let r = c.post(&url("/tiers"), &gold).await;
    assert_eq!(r.expect(StatusCode::CREATED), gold);
    assert_eq!(r.headers[header::LOCATION], "/api/v1/tiers/gold");
    assert_eq!(
        c.get(&url("/tiers/gold")).await.expect(StatusCode::OK),
        gold
    );
    // Defaults fill what a client may leave out.
    let lean = json!({"name": "lean", "min_benefit": 1.0, "rate_kbps": 100,
                      "dscp": 0, "queue_id": 0});
    let got = c
        .post(&url("/tiers"), &lean)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(got["hold_rate_kbps"], 64);
    assert_eq!(got["queue_min_kbps"], 0);
    assert_eq!(
        got["burst_kbits"], 0,
        "no burst given: Tierflow sizes the bucket"
    );
    assert_eq!(
        ids(&c.get(&url("/tiers")).await.expect(StatusCode::OK), "name").len(),
        2
    );

    c.post(&url("/tiers"), &tier("gold", 1.0, 1))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    assert_eq!(
        c.get(&url("/tiers/gold")).await.expect(StatusCode::OK),
        gold
    );

    let gold2 = tier("gold", 6000.0, 60_000);
    assert_eq!(
        c.put(&url("/tiers/gold"), &gold2)
            .await
            .expect(StatusCode::OK),
        gold2
    );
    assert_eq!(
        c.get(&url("/tiers/gold")).await.expect(StatusCode::OK),
        gold2
    );
    c.put(&url("/tiers/tin"), &tier("tin", 0.0, 10))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.put(&url("/tiers/gold"), &tier("silver", 0.0, 10))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    assert_eq!(
        c.get(&url("/tiers/gold")).await.expect(StatusCode::OK),
        gold2
    );
    c.get(&url("/tiers/silver"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);

    assert_eq!(
        c.delete(&url("/tiers/gold"))
            .await
            .expect(StatusCode::NO_CONTENT),
        Value::Null
    );
    c.get(&url("/tiers/gold"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&url("/tiers/gold"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
}

pub async fn tier_validation_changes_nothing(fx: &dyn Fixture) {
    let c = client(fx);
    let with = |k: &str, v: Value| {
        let mut t = tier("gold", 5000.0, 50_000);
        t[k] = v;
        t
    };
    for (body, field) in [
        (with("dscp", json!(64)), "dscp"),
        (with("rate_kbps", json!(0)), "rate_kbps"),
        (with("queue_min_kbps", json!(50_001)), "queue_min_kbps"),
        (with("hold_rate_kbps", json!(0)), "hold_rate_kbps"),
        (with("name", json!("no spaces")), "name"),
        (with("name", json!("")), "name"),
    ] {
        c.post(&url("/tiers"), &body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // Unreadable bodies: 400, naming the field where there is one.
    c.post(&url("/tiers"), &with("colour", json!("red")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("colour"));
    c.post(&url("/tiers"), &with("dscp", json!(300)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("dscp"));
    c.post(&url("/tiers"), &with("burst_kbits", json!(-1)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("burst_kbits"));
    c.post(&url("/tiers"), &with("rate_kbps", json!("fast")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("rate_kbps"));
    c.post(&url("/tiers"), &with("rate_kbps", json!(-1)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("rate_kbps"));
    c.post(&url("/tiers"), &json!({"name": "gold"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("min_benefit"));
    c.post(&url("/tiers"), &json!("gold"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(
        Method::POST,
        &url("/tiers"),
        "application/json",
        "{\"name\": ",
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(Method::POST, &url("/tiers"), "application/json", "")
        .await
        .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(
        Method::POST,
        &url("/tiers"),
        "application/json",
        &format!("{} {{}}", tier("gold", 1.0, 1)),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, None);
    c.raw(
        Method::POST,
        &url("/tiers"),
        "text/plain",
        &tier("gold", 1.0, 1).to_string(),
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    c.raw(
        Method::POST,
        &url("/tiers"),
        "",
        &tier("gold", 1.0, 1).to_string(),
    )
    .await
    .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    // A charset parameter is fine.
    c.raw(
        Method::POST,
        &url("/tiers"),
        "application/json; charset=utf-8",
        &tier("ok", 1.0, 1).to_string(),
    )
    .await
    .expect(StatusCode::CREATED);

    // The same checks on PUT, against an existing tier that must not move.
    let ok = c.get(&url("/tiers/ok")).await.expect(StatusCode::OK);
    let mut bad = ok.clone();
    bad["dscp"] = json!(64);
    c.put(&url("/tiers/ok"), &bad)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("dscp"));
    bad["dscp"] = json!(1);
    bad["extra"] = json!(true);
    c.put(&url("/tiers/ok"), &bad)
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("extra"));
    assert_eq!(
        c.get(&url("/tiers")).await.expect(StatusCode::OK),
        json!([ok])
    );
}

pub async fn tier_delete_conflicts(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    // The policy's default tier.
    c.delete(&url("/tiers/best-effort"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    // A promotion's tier.
    c.post(
        &url("/promotions"),
        &json!({"code": "PLAT", "benefit_boost": 0.0, "tier": "platinum"}),
    )
    .await
    .expect(StatusCode::CREATED);
    c.delete(&url("/tiers/platinum"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.delete(&url("/promotions/PLAT"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/tiers/platinum"))
        .await
        .expect(StatusCode::NO_CONTENT);
    // A live session's tier (acme scores gold).
    let id = fx.start_session(ip("10.0.0.1"), "sip").await;
    let s = c
        .get(&url(&format!("/sessions/{id}")))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "gold", "{s}");
    c.delete(&url("/tiers/gold"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    assert!(c.get(&url("/tiers/gold")).await.status.is_success());
    // A live session's override.
    c.put(
        &url(&format!("/sessions/{id}/tier")),
        &json!({"tier": "silver"}),
    )
    .await
    .expect(StatusCode::OK);
    c.delete(&url("/tiers/silver"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    // Ended sessions hold nothing.
    c.delete(&url(&format!("/sessions/{id}")))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/tiers/silver"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/tiers/gold"))
        .await
        .expect(StatusCode::NO_CONTENT);
    // The default tier stays guarded after other tiers go.
    c.delete(&url("/tiers/best-effort"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    assert_eq!(
        ids(&c.get(&url("/tiers")).await.expect(StatusCode::OK), "name"),
        vec!["best-effort"]
    );
}

pub async fn customers_crud_validation_and_filters(fx: &dyn Fixture) {
    let c = client(fx);
    let r = c.post(&url("/customers"), &acme()).await;
    assert_eq!(r.expect(StatusCode::CREATED), acme());
    assert_eq!(r.headers[header::LOCATION], "/api/v1/customers/c-1001");
    c.post(&url("/customers"), &small())
        .await
        .expect(StatusCode::CREATED);
    let minimal = c
        .post(&url("/customers"), &json!({"id": "c-3003"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(minimal["phones"], json!([]));
    assert_eq!(minimal["win_probability"], 0.0);

    let with = |k: &str, v: Value| {
        let mut x = acme();
        x["id"] = json!("c-9");
        x[k] = v;
        x
    };
    for (body, field) in [
        (with("win_probability", json!(1.5)), "win_probability"),
        (with("churn_risk", json!(-0.1)), "churn_risk"),
        (with("margin_pct", json!(101)), "margin_pct"),
        (with("lifetime_value", json!(-1)), "lifetime_value"),
        (
            with("phones", json!(["+14155550100", "555-0100"])),
            "phones[1]",
        ),
        (with("phones", json!(["14155550100"])), "phones[0]"),
        (with("ips", json!(["10.0.0.0/33"])), "ips[0]"),
        (with("ips", json!(["10.0.0.1", "not-an-ip"])), "ips[1]"),
        (with("id", json!("c 9")), "id"),
    ] {
        c.post(&url("/customers"), &body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    c.post(&url("/customers"), &with("vip", json!(true)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("vip"));
    c.post(&url("/customers"), &with("phones", json!("+14155550100")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("phones"));
    c.get(&url("/customers/c-9"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.post(&url("/customers"), &acme())
        .await
        .expect_error(StatusCode::CONFLICT, None);

    // Filters.
    let page = |q: &'static str| {
        let c = c.clone();
        async move {
            c.get(&url(&format!("/customers{q}")))
                .await
                .expect(StatusCode::OK)
        }
    };
    let all = page("").await;
    assert_eq!(all["total"], 3);
    assert_eq!(all["offset"], 0);
    assert_eq!(all["limit"], 100);
    assert_eq!(ids(&all["items"], "id"), vec!["c-1001", "c-2002", "c-3003"]);
    assert_eq!(
        ids(&page("?segment=smb").await["items"], "id"),
        vec!["c-2002"]
    );
    assert_eq!(
        ids(&page("?phone=%2B14155550100").await["items"], "id"),
        vec!["c-1001"]
    );
    assert_eq!(
        ids(&page("?ip=10.0.2.77").await["items"], "id"),
        vec!["c-2002"]
    );
    assert_eq!(
        ids(&page("?ip=10.0.0.1").await["items"], "id"),
        vec!["c-1001"]
    );
    assert_eq!(page("?ip=192.168.1.1").await["total"], 0);
    assert_eq!(
        page("?segment=enterprise&ip=10.0.2.1").await["total"],
        0,
        "filters combine"
    );
    let p = page("?offset=1&limit=1").await;
    assert_eq!(p["total"], 3);
    assert_eq!(ids(&p["items"], "id"), vec!["c-2002"]);
    assert_eq!(p["offset"], 1);
    assert_eq!(p["limit"], 1);
    assert_eq!(page("?offset=10").await["items"], json!([]));
    c.get(&url("/customers?limit=1001"))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("limit"));
    c.get(&url("/customers?limit=-1"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("limit"));
    c.get(&url("/customers?ip=10.0.0.300"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("ip"));
    c.get(&url("/customers?colour=red"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("colour"));

    // Update and delete.
    let mut a2 = acme();
    a2["segment"] = json!("strategic");
    assert_eq!(
        c.put(&url("/customers/c-1001"), &a2)
            .await
            .expect(StatusCode::OK),
        a2
    );
    assert_eq!(
        c.get(&url("/customers/c-1001"))
            .await
            .expect(StatusCode::OK),
        a2
    );
    c.put(&url("/customers/c-1001"), &small())
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("id"));
    let mut bad = a2.clone();
    bad["win_probability"] = json!(1.5);
    c.put(&url("/customers/c-1001"), &bad)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("win_probability"));
    assert_eq!(
        c.get(&url("/customers/c-1001"))
            .await
            .expect(StatusCode::OK),
        a2
    );
    c.put(&url("/customers/c-404"), &json!({"id": "c-404"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&url("/customers/c-1001"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/customers/c-1001"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(page("").await["total"], 2);
}

pub async fn promotions_crud(fx: &dyn Fixture) {
    let c = client(fx);
    c.post(&url("/tiers"), &tier("gold", 5000.0, 50_000))
        .await
        .expect(StatusCode::CREATED);
    let spring = json!({"code": "SPRING", "benefit_boost": 2500.0, "tier": null, "expires_at": "2027-03-31T00:00:00Z"});
    let r = c.post(&url("/promotions"), &spring).await;
    assert_eq!(r.expect(StatusCode::CREATED), spring);
    assert_eq!(r.headers[header::LOCATION], "/api/v1/promotions/SPRING");
    assert_eq!(
        c.get(&url("/promotions/SPRING"))
            .await
            .expect(StatusCode::OK),
        spring
    );
    c.post(&url("/promotions"), &spring)
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.post(
        &url("/promotions"),
        &json!({"code": "X", "benefit_boost": 1.0, "tier": "diamond"}),
    )
    .await
    .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("tier"));
    c.post(&url("/promotions"), &json!({"code": "bad code"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("code"));
    c.post(
        &url("/promotions"),
        &json!({"code": "X", "expires_at": "next tuesday"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, Some("expires_at"));
    c.post(&url("/promotions"), &json!({"code": "X", "discount": 5}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("discount"));
    assert_eq!(
        ids(
            &c.get(&url("/promotions")).await.expect(StatusCode::OK),
            "code"
        ),
        vec!["SPRING"]
    );

    let mut s2 = spring.clone();
    s2["tier"] = json!("gold");
    assert_eq!(
        c.put(&url("/promotions/SPRING"), &s2)
            .await
            .expect(StatusCode::OK),
        s2
    );
    let mut s3 = s2.clone();
    s3["tier"] = json!("diamond");
    c.put(&url("/promotions/SPRING"), &s3)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("tier"));
    let mut s4 = s2.clone();
    s4["code"] = json!("AUTUMN");
    c.put(&url("/promotions/SPRING"), &s4)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("code"));
    c.put(&url("/promotions/AUTUMN"), &s4)
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(
        c.get(&url("/promotions/SPRING"))
            .await
            .expect(StatusCode::OK),
        s2
    );
    c.delete(&url("/promotions/SPRING"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.get(&url("/promotions/SPRING"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&url("/promotions/SPRING"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
}

pub async fn services_crud(fx: &dyn Fixture) {
    let c = client(fx);
    let r = c.post(&url("/services"), &sip()).await;
    assert_eq!(r.expect(StatusCode::CREATED), sip());
    assert_eq!(r.headers[header::LOCATION], "/api/v1/services/sip");
    let web =
        json!({"name": "web", "ip": "10.0.1.0/24", "proto": "tcp", "port": 443, "kind": "web"});
    assert_eq!(
        c.post(&url("/services"), &web)
            .await
            .expect(StatusCode::CREATED),
        web
    );
    assert_eq!(
        ids(
            &c.get(&url("/services")).await.expect(StatusCode::OK),
            "name"
        ),
        vec!["sip", "web"]
    );
    c.post(&url("/services"), &sip())
        .await
        .expect_error(StatusCode::CONFLICT, None);
    let with = |k: &str, v: Value| {
        let mut x = sip();
        x["name"] = json!("other");
        x[k] = v;
        x
    };
    c.post(&url("/services"), &with("ip", json!("10.0.0.0/40")))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("ip"));
    c.post(&url("/services"), &with("port", json!(0)))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("port"));
    c.post(&url("/services"), &with("port", json!(70000)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("port"));
    c.post(&url("/services"), &with("kind", json!("ftp")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("kind"));
    c.post(&url("/services"), &with("proto", json!("sctp")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("proto"));
    c.get(&url("/services/other"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);

    let mut sip2 = sip();
    sip2["port"] = json!(5080);
    assert_eq!(
        c.put(&url("/services/sip"), &sip2)
            .await
            .expect(StatusCode::OK),
        sip2
    );
    c.put(&url("/services/sip"), &web)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("name"));
    c.put(&url("/services/ftp"), &with("name", json!("ftp")))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(
        c.get(&url("/services/sip")).await.expect(StatusCode::OK),
        sip2
    );
    c.delete(&url("/services/web"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/services/web"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(
        ids(
            &c.get(&url("/services")).await.expect(StatusCode::OK),
            "name"
        ),
        vec!["sip"]
    );
}

pub async fn policy_get_put(fx: &dyn Fixture) {
    let c = client(fx);
    let p = c.get(&url("/policy")).await.expect(StatusCode::OK);
    assert!(
        p["weights"]["margin"].is_number() && p["default_tier"].is_string(),
        "{p}"
    );
    let wanted = json!({"weights": {"margin": 2.0, "opportunity": 0.5, "retention": 1.0}, "default_tier": "bronze"});
    c.put(&url("/policy"), &wanted)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("default_tier"));
    assert_eq!(c.get(&url("/policy")).await.expect(StatusCode::OK), p);
    c.post(&url("/tiers"), &tier("bronze", 0.0, 100))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(
        c.put(&url("/policy"), &wanted).await.expect(StatusCode::OK),
        wanted
    );
    assert_eq!(c.get(&url("/policy")).await.expect(StatusCode::OK), wanted);
    // Weights left out default to 1.
    let got = c
        .put(&url("/policy"), &json!({"default_tier": "bronze"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        got["weights"],
        json!({"margin": 1.0, "opportunity": 1.0, "retention": 1.0})
    );
    c.put(
        &url("/policy"),
        &json!({"weights": {"mass": 1.0}, "default_tier": "bronze"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, Some("weights.mass"));
    c.put(
        &url("/policy"),
        &json!({"weights": {"margin": "high"}, "default_tier": "bronze"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, Some("weights.margin"));
    c.put(&url("/policy"), &json!({"default_tier": "no such"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("default_tier"));
    c.put(&url("/policy"), &json!({"weights": {}}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("default_tier"));
    assert_eq!(
        c.get(&url("/policy")).await.expect(StatusCode::OK)["default_tier"],
        "bronze"
    );
}

pub async fn sessions_scored_and_filtered(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    let a = fx.start_session(ip("10.0.0.1"), "sip").await;
    let s = c
        .get(&url(&format!("/sessions/{a}")))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["id"], a.as_str());
    assert_eq!(s["service"], "sip");
    assert_eq!(s["client_ip"], "10.0.0.1");
    assert_eq!(s["state"], "active");
    assert_eq!(s["tier"], "gold", "{s}");
    assert_eq!(s["override_tier"], Value::Null);
    assert_eq!(s["customer_id"], "c-1001");
    let e = &s["explanation"];
    assert_eq!(e["customer_id"], "c-1001");
    assert_eq!(e["matched_by"], "ip");
    assert_eq!(e["reason"], "automatic");
    assert_eq!(e["tier"], "gold");
    assert_eq!(e["terms"]["margin"], 18000.0);
    assert_eq!(e["terms"]["opportunity"], 14000.0);
    assert_eq!(e["terms"]["retention"], 25000.0);
    assert_eq!(e["terms"]["promotion"], 0.0);
    assert_eq!(e["benefit"], 57000.0);

    // Inside the small customer's prefix: benefit 1000 is exactly silver.
    let b = fx.start_session(ip("10.0.2.5"), "sip").await;
    let s = c
        .get(&url(&format!("/sessions/{b}")))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "silver", "{s}");
    assert_eq!(s["explanation"]["benefit"], 1000.0);

    // No customer: the default tier.
    let u = fx.start_session(ip("10.0.9.9"), "sip").await;
    let s = c
        .get(&url(&format!("/sessions/{u}")))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "best-effort", "{s}");
    assert_eq!(s["customer_id"], Value::Null);
    assert_eq!(s["explanation"]["reason"], "default");

    let list = |q: String| {
        let c = c.clone();
        async move {
            c.get(&url(&format!("/sessions{q}")))
                .await
                .expect(StatusCode::OK)
        }
    };
    let all = list(String::new()).await;
    assert_eq!(all["total"], 3);
    let mut want = vec![a.clone(), b.clone(), u.clone()];
    want.sort();
    assert_eq!(ids(&all["items"], "id"), want, "ordered by id");
    assert_eq!(
        ids(&list("?tier=gold".into()).await["items"], "id"),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&list("?customer=c-2002".into()).await["items"], "id"),
        vec![b.clone()]
    );
    assert_eq!(list("?state=active".into()).await["total"], 3);
    assert_eq!(list("?state=hold".into()).await["total"], 0);
    assert_eq!(list("?tier=gold&customer=c-2002".into()).await["total"], 0);
    let p = list("?limit=1&offset=1".into()).await;
    assert_eq!(p["total"], 3);
    assert_eq!(ids(&p["items"], "id"), vec![want[1].clone()]);
    c.get(&url("/sessions?state=asleep"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("state"));
    c.get(&url("/sessions?tierr=gold"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("tierr"));
    c.get(&url("/sessions?limit=5000"))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("limit"));
    c.get(&url("/sessions/s-nosuch"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
}

pub async fn session_actions(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    let a = fx.start_session(ip("10.0.0.1"), "sip").await;
    let at = |p: &str| url(&format!("/sessions/{a}{p}"));

    // Manual override and back.
    let s = c
        .put(&at("/tier"), &json!({"tier": "silver"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "silver", "{s}");
    assert_eq!(s["override_tier"], "silver");
    assert_eq!(s["explanation"]["reason"], "manual_override");
    assert_eq!(
        c.get(&at("")).await.expect(StatusCode::OK)["tier"],
        "silver"
    );
    assert_eq!(
        c.get(&url("/sessions?tier=silver"))
            .await
            .expect(StatusCode::OK)["total"],
        1
    );
    c.put(&at("/tier"), &json!({"tier": "diamond"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("tier"));
    c.put(&at("/tier"), &json!({"tier": "bad name"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("tier"));
    c.put(&at("/tier"), &json!({"tier": "gold", "until": 5}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("until"));
    c.put(&at("/tier"), &json!({}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("tier"));
    assert_eq!(
        c.get(&at("")).await.expect(StatusCode::OK)["tier"],
        "silver"
    );
    let s = c.delete(&at("/tier")).await.expect(StatusCode::OK);
    assert_eq!(s["tier"], "gold", "{s}");
    assert_eq!(s["override_tier"], Value::Null);
    assert_eq!(s["explanation"]["reason"], "automatic");

    // Hold and resume keep the tier.
    let s = c
        .put(&at("/state"), &json!({"state": "hold"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["state"], "hold", "{s}");
    assert_eq!(s["tier"], "gold");
    assert_eq!(
        c.get(&url("/sessions?state=hold"))
            .await
            .expect(StatusCode::OK)["total"],
        1
    );
    let s = c
        .put(&at("/state"), &json!({"state": "active"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["state"], "active");
    assert_eq!(s["tier"], "gold");
    c.put(&at("/state"), &json!({"state": "ended"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("state"));
    c.put(&at("/state"), &json!({"state": "asleep"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("state"));
    assert_eq!(
        c.get(&at("")).await.expect(StatusCode::OK)["state"],
        "active"
    );

    // Client data learnt later re-scores: an unknown client gives the
    // small customer's phone, then a promotion whose floor is platinum.
    let u = fx.start_session(ip("10.0.9.9"), "sip").await;
    let ut = |p: &str| url(&format!("/sessions/{u}{p}"));
    assert_eq!(
        c.get(&ut("")).await.expect(StatusCode::OK)["tier"],
        "best-effort"
    );
    let s = c
        .post(
            &ut("/client-data"),
            &json!({"phone": "+14155550199", "source": "ivr"}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "silver", "{s}");
    assert_eq!(s["customer_id"], "c-2002");
    assert_eq!(s["explanation"]["matched_by"], "phone");
    assert_eq!(s["explanation"]["inputs"]["phone"], "+14155550199");
    assert_eq!(s["explanation"]["inputs"]["ip"], "10.0.9.9");
    c.post(
        &url("/promotions"),
        &json!({"code": "VIP", "benefit_boost": 500.0, "tier": "platinum"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let s = c
        .post(&ut("/client-data"), &json!({"promo_code": "VIP"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(s["tier"], "platinum", "{s}");
    assert_eq!(s["explanation"]["reason"], "promotion");
    assert_eq!(s["explanation"]["promotion"], "VIP");
    assert_eq!(s["explanation"]["terms"]["promotion"], 500.0);
    assert_eq!(s["explanation"]["benefit"], 1500.0);
    assert_eq!(
        s["explanation"]["inputs"]["phone"], "+14155550199",
        "earlier client data is kept"
    );
    c.post(&ut("/client-data"), &json!({"phone": "555-0199"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("phone"));
    c.post(&ut("/client-data"), &json!({"promo_code": "bad code!"}))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("promo_code"));
    c.post(&ut("/client-data"), &json!({"ip": "10.0.0.1"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("ip"));
    c.post(&ut("/client-data"), &json!({"phone": 14155550199u64}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("phone"));
    assert_eq!(
        c.get(&ut("")).await.expect(StatusCode::OK)["tier"],
        "platinum"
    );

    // A tier change reaches the live session's tier without re-creating it.
    let mut plat = c.get(&url("/tiers/platinum")).await.expect(StatusCode::OK);
    plat["rate_kbps"] = json!(200_000);
    c.put(&url("/tiers/platinum"), &plat)
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        c.get(&ut("")).await.expect(StatusCode::OK)["tier"],
        "platinum"
    );

    // Ending.
    c.delete(&at("")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&at("")).await.expect(StatusCode::OK)["state"],
        "ended"
    );
    c.delete(&at("")).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&url("/sessions?state=ended"))
            .await
            .expect(StatusCode::OK)["total"],
        1
    );
    c.put(&at("/tier"), &json!({"tier": "silver"}))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.delete(&at("/tier"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.put(&at("/state"), &json!({"state": "hold"}))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.post(&at("/client-data"), &json!({"phone": "+14155550100"}))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    let s = c.get(&at("")).await.expect(StatusCode::OK);
    assert_eq!(s["state"], "ended");
    assert_eq!(s["tier"], "gold");
}

pub async fn session_errors(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    let at = |p: &str| url(&format!("/sessions/s-nosuch{p}"));
    c.get(&at(""))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&at(""))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.put(&at("/tier"), &json!({"tier": "gold"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&at("/tier"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.post(&at("/client-data"), &json!({"phone": "+14155550100"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.put(&at("/state"), &json!({"state": "hold"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(
        c.get(&url("/sessions")).await.expect(StatusCode::OK)["total"],
        0
    );
}

/// A request as an application server sends it.
pub fn request(external_id: &str, client: &str, server: &str) -> Value {
    json!({
        "external_id": external_id, "proto": "udp",
        "client": {"ip": client, "port": 40000}, "server": {"ip": server, "port": 20000},
        "kind": "voice", "client_data": {"phone": "+14155550100", "promo_code": "SPRING"}
    })
}

/// `POST /sessions`: scored and explained like any session, idempotent by
/// `external_id`, conflicts and bad fields refused without a trace.
pub async fn session_requests(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    let r = request("a84b4c76e66710@pc33", "10.0.0.1", "10.0.0.100");
    let s = c
        .post(&url("/sessions"), &r)
        .await
        .expect(StatusCode::CREATED);
    let id = s["id"].as_str().expect("id").to_string();
    assert_eq!(s["external_id"], "a84b4c76e66710@pc33");
    assert_eq!(s["client_ip"], "10.0.0.1");
    assert_eq!(s["server_ip"], "10.0.0.100");
    // Scored on what the application said: the phone is Acme's.
    assert_eq!(s["customer_id"], "c-1001", "{s}");
    assert_eq!(s["explanation"]["inputs"]["phone"], "+14155550100");
    assert!(
        s["explanation"]["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    // The same external_id again: the same session, not a second one.
    let again = c.post(&url("/sessions"), &r).await.expect(StatusCode::OK);
    assert_eq!(again["id"], id.as_str());
    let listed = c.get(&url("/sessions")).await.expect(StatusCode::OK);
    assert_eq!(
        ids(&listed["items"], "id")
            .iter()
            .filter(|i| **i == id)
            .count(),
        1
    );
    // The same external_id between other endpoints: a conflict.
    c.post(
        &url("/sessions"),
        &request("a84b4c76e66710@pc33", "10.0.0.2", "10.0.0.100"),
    )
    .await
    .expect_error(StatusCode::CONFLICT, None);
    // Bad fields: 422 naming the field, nothing created.
    let before = snapshot(&c).await;
    for (field, patch) in [
        ("client.ip", json!({"client": {"ip": "0.0.0.0", "port": 1}})),
        (
            "server.ip",
            json!({"server": {"ip": "224.0.0.5", "port": 1}}),
        ),
        (
            "server.ip",
            json!({"server": {"ip": "10.0.0.3", "port": 1}}),
        ),
        ("client.ip", json!({"client": {"ip": "fe80::1", "port": 1}})),
        (
            "client.port",
            json!({"client": {"ip": "10.0.0.1", "port": 0}}),
        ),
        ("external_id", json!({"external_id": ""})),
        (
            "client_data.phone",
            json!({"client_data": {"phone": "call me"}}),
        ),
        (
            "client_data.promo_code",
            json!({"client_data": {"promo_code": "no spaces"}}),
        ),
    ] {
        let mut body = request("other-call", "10.0.0.3", "10.0.0.100");
        for (k, v) in patch.as_object().expect("patch") {
            body[k] = v.clone();
        }
        c.post(&url("/sessions"), &body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // Unknown fields and unreadable kinds are 400.
    let mut body = request("other-call", "10.0.0.3", "10.0.0.100");
    body["kind"] = json!("fax");
    c.post(&url("/sessions"), &body)
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("kind"));
    assert_eq!(snapshot(&c).await, before);
    // A port may be null (any port); the session's own routes work on it.
    let mut any = request("web-1", "10.0.0.3", "10.0.0.101");
    any["proto"] = json!("tcp");
    any["kind"] = json!("web");
    any["client"]["port"] = Value::Null;
    any["client_data"] = json!({});
    let w = c
        .post(&url("/sessions"), &any)
        .await
        .expect(StatusCode::CREATED);
    let wid = w["id"].as_str().expect("id").to_string();
    c.put(
        &url(&format!("/sessions/{wid}/state")),
        &json!({"state": "hold"}),
    )
    .await
    .expect(StatusCode::OK);
    c.delete(&url(&format!("/sessions/{wid}")))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.put(
        &url(&format!("/sessions/{wid}/state")),
        &json!({"state": "active"}),
    )
    .await
    .expect_error(StatusCode::CONFLICT, None);
}

/// Every mutation of PRODUCT.md, with a body that would succeed.
fn mutations(session: &str) -> Vec<(Method, String, Option<Value>)> {
    let mut gold2 = tier("gold", 7000.0, 70_000);
    gold2["dscp"] = json!(46);
    let mut acme2 = acme();
    acme2["segment"] = json!("changed");
    vec![
        (Method::POST, url("/tiers"), Some(tier("tin", 0.0, 10))),
        (Method::PUT, url("/tiers/gold"), Some(gold2)),
        (Method::DELETE, url("/tiers/platinum"), None),
        (
            Method::POST,
            url("/customers"),
            Some(json!({"id": "c-new"})),
        ),
        (Method::PUT, url("/customers/c-1001"), Some(acme2)),
        (Method::DELETE, url("/customers/c-2002"), None),
        (
            Method::POST,
            url("/promotions"),
            Some(json!({"code": "NEW", "benefit_boost": 1.0})),
        ),
        (
            Method::PUT,
            url("/promotions/OLD"),
            Some(json!({"code": "OLD", "benefit_boost": 99.0})),
        ),
        (Method::DELETE, url("/promotions/OLD"), None),
        (
            Method::POST,
            url("/services"),
            Some(
                json!({"name": "web", "ip": "10.0.1.0/24", "proto": "tcp", "port": 443, "kind": "web"}),
            ),
        ),
        (
            Method::PUT,
            url("/services/web"),
            Some(
                json!({"name": "web", "ip": "10.0.1.0/24", "proto": "tcp", "port": 8443, "kind": "web"}),
            ),
        ),
        (Method::DELETE, url("/services/web"), None),
        (
            Method::PUT,
            url("/policy"),
            Some(json!({"weights": {"margin": 3.0}, "default_tier": "silver"})),
        ),
        (
            Method::PUT,
            url(&format!("/sessions/{session}/tier")),
            Some(json!({"tier": "silver"})),
        ),
        (
            Method::DELETE,
            url(&format!("/sessions/{session}/tier")),
            None,
        ),
        (
            Method::POST,
            url(&format!("/sessions/{session}/client-data")),
            Some(json!({"phone": "+14155550199"})),
        ),
        (
            Method::PUT,
            url(&format!("/sessions/{session}/state")),
            Some(json!({"state": "hold"})),
        ),
        (Method::DELETE, url(&format!("/sessions/{session}")), None),
        (
            Method::POST,
            url("/sessions"),
            Some(request("auth-call", "10.0.0.7", "10.0.0.100")),
        ),
        (Method::POST, url("/vlans"), Some(vlan(30, "10.30.0.1/24"))),
        (
            Method::PUT,
            url("/vlans/20"),
            Some(vlan(20, "10.21.0.1/24")),
        ),
        (
            Method::PUT,
            url("/ports/0000000000000101/3"),
            Some(port(0x101, 3, Some(20), &[])),
        ),
        (Method::DELETE, url("/ports/0000000000000101/4"), None),
        (Method::DELETE, url("/vlans/40"), None),
    ]
}

/// Everything the API shows, to compare before and after.
async fn snapshot(c: &Client) -> Value {
    let mut out = serde_json::Map::new();
    for p in [
        "/tiers",
        "/customers",
        "/promotions",
        "/services",
        "/policy",
        "/sessions",
        "/vlans",
        "/ports",
    ] {
        let mut v = c.get(&url(p)).await.expect(StatusCode::OK);
        if p == "/sessions" {
            v = v["items"].clone();
            // The control plane may touch `updated_at` on its own (stats,
            // keepalives); everything else must stay as it was.
            for s in v.as_array_mut().into_iter().flatten() {
                if let Some(o) = s.as_object_mut() {
                    o.remove("updated_at");
                }
            }
        }
        out.insert(p.to_string(), v);
    }
    Value::Object(out)
}

pub async fn vlans_crud(fx: &dyn Fixture) {
    let c = client(fx);
    assert_eq!(
        c.get(&url("/vlans")).await.expect(StatusCode::OK),
        json!([])
    );
    let voice = json!({"vid": 20, "name": "voice", "gateways": ["10.20.0.1/24"]});
    let r = c.post(&url("/vlans"), &voice).await;
    assert_eq!(r.expect(StatusCode::CREATED), voice);
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/api/v1/vlans/20")
    );
    // Name and gateways may be left out: a bridged VLAN.
    let bridged = c
        .post(&url("/vlans"), &json!({"vid": 10}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(bridged, json!({"vid": 10, "name": "", "gateways": []}));
    c.post(&url("/vlans"), &voice)
        .await
        .expect_error(StatusCode::CONFLICT, None);
    assert_eq!(c.get(&url("/vlans/20")).await.expect(StatusCode::OK), voice);
    let list = c.get(&url("/vlans")).await.expect(StatusCode::OK);
    let vids: Vec<u64> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v["vid"].as_u64())
        .collect();
    assert_eq!(vids, vec![10, 20]);
    // Replace: a second subnet.
    let two = json!({"vid": 20, "name": "voice", "gateways": ["10.20.0.1/24", "10.22.0.254/23"]});
    assert_eq!(
        c.put(&url("/vlans/20"), &two).await.expect(StatusCode::OK),
        two
    );
    assert_eq!(c.get(&url("/vlans/20")).await.expect(StatusCode::OK), two);
    // VLAN 1 may get a record (and gateways) too.
    c.post(&url("/vlans"), &vlan(1, "192.168.1.1/24"))
        .await
        .expect(StatusCode::CREATED);
    c.delete(&url("/vlans/1"))
        .await
        .expect(StatusCode::NO_CONTENT);
    // Unknown ones.
    for path in ["/vlans/30", "/vlans/0", "/vlans/5000"] {
        c.get(&url(path))
            .await
            .expect_error(StatusCode::NOT_FOUND, None);
    }
    c.put(&url("/vlans/30"), &vlan(30, ""))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&url("/vlans/30"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.get(&url("/vlans/voice"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, None);
    c.delete(&url("/vlans/10"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/vlans/10"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    assert_eq!(
        c.get(&url("/vlans")).await.expect(StatusCode::OK),
        json!([two])
    );
}

pub async fn vlan_validation_changes_nothing(fx: &dyn Fixture) {
    let c = client(fx);
    c.post(&url("/vlans"), &vlan(20, "10.20.0.1/24"))
        .await
        .expect(StatusCode::CREATED);
    let before = c.get(&url("/vlans")).await.expect(StatusCode::OK);
    let with = |k: &str, v: Value| {
        let mut x = vlan(30, "10.30.0.1/24");
        x[k] = v;
        x
    };
    for (body, field) in [
        (with("vid", json!(0)), "vid"),
        (with("vid", json!(4095)), "vid"),
        (with("name", json!("no spaces")), "name"),
        (with("gateways", json!(["10.30.0.0/24"])), "gateways[0]"),
        (with("gateways", json!(["10.30.0.255/24"])), "gateways[0]"),
        (with("gateways", json!(["10.30.0.1"])), "gateways[0]"),
        (with("gateways", json!(["10.30.0.1/32"])), "gateways[0]"),
        (with("gateways", json!(["2001:db8::1/64"])), "gateways[0]"),
        (
            with("gateways", json!(["10.30.0.1/24", "10.30.0.129/25"])),
            "gateways[1]",
        ),
        // Overlapping another VLAN's subnet.
        (with("gateways", json!(["10.20.0.2/16"])), "gateways[0]"),
        (
            with("gateways", json!(["10.31.0.1/24", "10.20.0.9/24"])),
            "gateways[1]",
        ),
    ] {
        c.post(&url("/vlans"), &body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    c.post(&url("/vlans"), &with("colour", json!("red")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("colour"));
    c.post(&url("/vlans"), &with("vid", json!(70000)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("vid"));
    c.post(&url("/vlans"), &with("gateways", json!("10.30.0.1/24")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("gateways"));
    // PUT: the same rules, and the body names the path's VLAN.
    c.post(&url("/vlans"), &vlan(30, "10.30.0.1/24"))
        .await
        .expect(StatusCode::CREATED);
    let before = {
        let mut b = before.as_array().cloned().unwrap_or_default();
        b.push(vlan(30, "10.30.0.1/24"));
        Value::Array(b)
    };
    c.put(&url("/vlans/30"), &vlan(20, "10.30.0.1/24"))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("vid"));
    c.put(&url("/vlans/30"), &vlan(30, "10.20.0.77/24"))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("gateways[0]"));
    c.put(&url("/vlans/30"), &vlan(30, "10.30.0.0/24"))
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("gateways[0]"));
    assert_eq!(c.get(&url("/vlans")).await.expect(StatusCode::OK), before);
    // Its own old subnet does not count against it.
    c.put(&url("/vlans/30"), &vlan(30, "10.30.0.254/24"))
        .await
        .expect(StatusCode::OK);
}

pub async fn ports_crud_validation_and_conflicts(fx: &dyn Fixture) {
    let c = client(fx);
    assert_eq!(
        c.get(&url("/ports")).await.expect(StatusCode::OK),
        json!([])
    );
    let p3 = port(0x101, 3, Some(20), &[30]);
    // Its VLANs do not exist yet.
    c.put(&url("/ports/0000000000000101/3"), &p3)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("native_vlan"));
    c.post(&url("/vlans"), &vlan(20, "10.20.0.1/24"))
        .await
        .expect(StatusCode::CREATED);
    c.put(&url("/ports/0000000000000101/3"), &p3)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("tagged_vlans[0]"));
    assert_eq!(
        c.get(&url("/ports")).await.expect(StatusCode::OK),
        json!([])
    );
    c.post(&url("/vlans"), &vlan(30, ""))
        .await
        .expect(StatusCode::CREATED);
    // Created, then replaced; the path's dpid may be written any way.
    assert_eq!(
        c.put(&url("/ports/0x101/3"), &p3)
            .await
            .expect(StatusCode::CREATED),
        p3
    );
    let trunk = port(0x101, 3, None, &[20, 30]);
    assert_eq!(
        c.put(&url("/ports/0000000000000101/3"), &trunk)
            .await
            .expect(StatusCode::OK),
        trunk
    );
    // A body's dpid in another form is answered canonical.
    let mut short = port(0x101, 4, Some(1), &[20]);
    short["dpid"] = json!("257");
    assert_eq!(
        c.put(&url("/ports/257/4"), &short)
            .await
            .expect(StatusCode::CREATED),
        port(0x101, 4, Some(1), &[20])
    );
    assert_eq!(
        c.get(&url("/ports/257/3")).await.expect(StatusCode::OK),
        trunk
    );
    // native_vlan left out: VLAN 1.
    let defaulted = c
        .put(
            &url("/ports/0000000000000102/1"),
            &json!({"dpid": "0000000000000102", "port": 1, "tagged_vlans": [30]}),
        )
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(defaulted["native_vlan"], 1, "{defaulted}");
    let list = c.get(&url("/ports")).await.expect(StatusCode::OK);
    let keys: Vec<(String, u64)> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["dpid"].as_str().unwrap_or_default().to_string(),
                p["port"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("0000000000000101".to_string(), 3),
            ("0000000000000101".to_string(), 4),
            ("0000000000000102".to_string(), 1),
        ]
    );
    let before = list;
    // Validation: each rule names its field; nothing changes.
    let with = |k: &str, v: Value| {
        let mut x = port(0x101, 3, Some(20), &[30]);
        x[k] = v;
        x
    };
    for (body, field) in [
        (with("native_vlan", json!(0)), "native_vlan"),
        (with("native_vlan", json!(4095)), "native_vlan"),
        (with("native_vlan", json!(30)), "native_vlan"),
        (with("tagged_vlans", json!([30, 4095])), "tagged_vlans[1]"),
        (with("tagged_vlans", json!([30, 30])), "tagged_vlans[1]"),
        (with("tagged_vlans", json!([30, 99])), "tagged_vlans[1]"),
        (with("native_vlan", json!(99)), "native_vlan"),
        (with("dpid", json!("0000000000000102")), "dpid"),
        (with("dpid", json!("switch-1")), "dpid"),
        (with("port", json!(4)), "port"),
    ] {
        c.put(&url("/ports/0000000000000101/3"), &body)
            .await
            .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    c.put(&url("/ports/0000000000000101/3"), &with("colour", json!(1)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("colour"));
    c.put(&url("/ports/0000000000000101/3"), &with("port", json!(-1)))
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("port"));
    c.put(&url("/ports/nodpid/3"), &p3)
        .await
        .expect_error(StatusCode::BAD_REQUEST, Some("dpid"));
    c.get(&url("/ports/0000000000000101/x"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, None);
    assert_eq!(c.get(&url("/ports")).await.expect(StatusCode::OK), before);
    // A VLAN a port carries cannot go; once no port does, it can.
    let e = c
        .delete(&url("/vlans/30"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    assert!(e.contains("30"), "{e}");
    c.get(&url("/vlans/30")).await.expect(StatusCode::OK);
    c.put(
        &url("/ports/0000000000000101/3"),
        &port(0x101, 3, Some(20), &[]),
    )
    .await
    .expect(StatusCode::OK);
    c.delete(&url("/vlans/30"))
        .await
        .expect_error(StatusCode::CONFLICT, None);
    c.delete(&url("/ports/0000000000000102/1"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.delete(&url("/vlans/30"))
        .await
        .expect(StatusCode::NO_CONTENT);
    c.get(&url("/ports/0000000000000102/1"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    c.delete(&url("/ports/0000000000000102/1"))
        .await
        .expect_error(StatusCode::NOT_FOUND, None);
    // VLAN 1 exists without a record: a port may carry it.
    c.put(
        &url("/ports/0000000000000102/2"),
        &port(0x102, 2, Some(1), &[20]),
    )
    .await
    .expect(StatusCode::CREATED);
}

pub async fn auth_guards_every_mutation(fx: &dyn Fixture) {
    let c = client(fx);
    seed(&c).await;
    c.post(
        &url("/promotions"),
        &json!({"code": "OLD", "benefit_boost": 1.0}),
    )
    .await
    .expect(StatusCode::CREATED);
    let session = fx.start_session(ip("10.0.0.1"), "sip").await;
    for v in [vlan(20, "10.20.0.1/24"), vlan(40, "10.40.0.1/24")] {
        c.post(&url("/vlans"), &v).await.expect(StatusCode::CREATED);
    }
    c.put(
        &url("/ports/0000000000000101/4"),
        &port(0x101, 4, Some(20), &[]),
    )
    .await
    .expect(StatusCode::CREATED);
    let before = snapshot(&c).await;
    let wrong = format!("Bearer {TOKEN}x");
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let basic = format!("Basic {TOKEN}");
    for (method, path, body) in mutations(&session) {
        for auth in [
            None,
            Some(wrong.as_str()),
            Some(short.as_str()),
            Some(basic.as_str()),
            Some("Bearer "),
        ] {
            let r = c.call(method.clone(), &path, body.as_ref(), auth).await;
            r.expect_error(StatusCode::UNAUTHORIZED, None);
            assert!(
                r.headers.contains_key(header::WWW_AUTHENTICATE),
                "{}: no WWW-Authenticate",
                r.what
            );
        }
        // Even an unreadable body is refused as unauthorised first.
        c.call(method.clone(), &path, Some(&json!({"colour": "red"})), None)
            .await
            .expect_error(StatusCode::UNAUTHORIZED, None);
    }
    assert_eq!(
        snapshot(&c).await,
        before,
        "a refused mutation changed something"
    );
    // Reads stay open.
    for p in [
        "/health",
        "/tiers",
        "/customers",
        "/sessions",
        "/policy",
        "/topology",
        "/switches",
        "/vlans",
        "/ports",
    ] {
        c.get(&url(p)).await.expect(StatusCode::OK);
    }
    assert_eq!(c.get("/metrics").await.status, StatusCode::OK);
    // With the token every one of them goes through.
    let bearer = format!("Bearer {TOKEN}");
    for (method, path, body) in mutations(&session) {
        let r = c.call(method, &path, body.as_ref(), Some(&bearer)).await;
        assert!(
            r.status.is_success(),
            "{}: {} {}",
            r.what,
            r.status,
            r.text()
        );
    }
    assert_ne!(snapshot(&c).await, before);
}

/// With a read token configured, every read of customer data (the
/// collections, one record, a session's sub-resources) needs the read
/// token or the write token: 401 otherwise, before the id is even looked
/// up. The read token writes nothing. Everything else stays open.
pub async fn read_token_guards_customer_data(fx: &dyn Fixture) {
    let open = client(fx);
    seed(&open).await;
    open.post(
        &url("/promotions"),
        &json!({"code": "SPRING", "benefit_boost": 1.0}),
    )
    .await
    .expect(StatusCode::CREATED);
    let session = fx.start_session(ip("10.0.0.1"), "sip").await;
    let c = Client::with_config(
        fx.backend(),
        ApiConfig {
            token: Some(TOKEN.into()),
            read_token: Some(READ_TOKEN.into()),
        },
    );
    let read = format!("Bearer {READ_TOKEN}");
    let write = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {READ_TOKEN}x");
    let basic = format!("Basic {READ_TOKEN}");
    let protected = [
        url("/customers"),
        url("/customers?segment=enterprise"),
        url("/customers/c-1001"),
        url("/customers/no-such-customer"),
        url("/promotions"),
        url("/promotions/SPRING"),
        url("/sessions"),
        url("/sessions?tier=gold"),
        url(&format!("/sessions/{session}")),
        url("/sessions/s-0000000000"),
    ];
    for path in &protected {
        for auth in [
            None,
            Some(wrong.as_str()),
            Some(basic.as_str()),
            Some("Bearer "),
        ] {
            for method in [Method::GET, Method::HEAD] {
                let r = c.call(method.clone(), path, None, auth).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{} with {auth:?}",
                    r.what
                );
                if method == Method::GET {
                    r.expect_error(StatusCode::UNAUTHORIZED, None);
                    assert!(
                        r.headers.contains_key(header::WWW_AUTHENTICATE),
                        "{}: no WWW-Authenticate",
                        r.what
                    );
                }
            }
        }
        for auth in [&read, &write] {
            let r = c.call(Method::GET, path, None, Some(auth)).await;
            let want = open.get(path).await;
            assert_eq!(r.status, want.status, "{} with the token", r.what);
            assert!(
                r.status == StatusCode::OK || r.status == StatusCode::NOT_FOUND,
                "{}: {}",
                r.what,
                r.status
            );
        }
    }
    // A sub-resource of a session, reached with a read method: the route
    // is customer data; it answers 405 to the token-holder, 401 to others.
    let tier_path = url(&format!("/sessions/{session}/tier"));
    c.call(Method::GET, &tier_path, None, None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, None);
    assert_eq!(
        c.call(Method::GET, &tier_path, None, Some(&read))
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // The read token is not a write token.
    let before = snapshot(&open).await;
    for (method, path, body) in mutations(&session) {
        c.call(method, &path, body.as_ref(), Some(&read))
            .await
            .expect_error(StatusCode::UNAUTHORIZED, None);
    }
    assert_eq!(
        snapshot(&open).await,
        before,
        "the read token changed something"
    );
    // Everything else stays open.
    for p in [
        url("/health"),
        url("/tiers"),
        url("/tiers/gold"),
        url("/services"),
        url("/policy"),
        url("/topology"),
        url("/switches"),
        url("/alarms"),
        "/metrics".to_string(),
        "/".to_string(),
        "/api-docs/openapi.json".to_string(),
        "/docs/".to_string(),
    ] {
        let r = c.get(&p).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{} without a token: {}",
            r.what,
            r.text()
        );
    }
    // A read token without a write token: mutations open, customer data not.
    let only_read = Client::with_config(
        fx.backend(),
        ApiConfig {
            token: None,
            read_token: Some(READ_TOKEN.into()),
        },
    );
    only_read
        .get(&url("/customers"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, None);
    only_read
        .call(Method::GET, &url("/customers"), None, Some(&read))
        .await
        .expect(StatusCode::OK);
    only_read.get(&url("/tiers")).await.expect(StatusCode::OK);
    only_read
        .post(&url("/tiers"), &tier("bronze", 10.0, 500))
        .await
        .expect(StatusCode::CREATED);
}

pub async fn no_token_configured_allows_mutations(fx: &dyn Fixture) {
    let c = Client::new(fx.backend(), None);
    c.post(&url("/tiers"), &tier("gold", 1.0, 100))
        .await
        .expect(StatusCode::CREATED);
    c.call(
        Method::DELETE,
        &url("/tiers/gold"),
        None,
        Some("Bearer anything"),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}

pub async fn store_outage_is_503(fx: &dyn Fixture) {
    let c = client(fx);
    c.post(&url("/tiers"), &tier("gold", 1.0, 100))
        .await
        .expect(StatusCode::CREATED);
    fx.break_store().await;
    for p in [
        "/tiers",
        "/tiers/gold",
        "/customers",
        "/promotions",
        "/services",
        "/policy",
        "/sessions",
        "/vlans",
        "/ports",
    ] {
        // Reads may be served from the control plane's cache, or refused
        // with 503; never anything else.
        let r = c.get(&url(p)).await;
        if r.status != StatusCode::OK {
            r.expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
        }
    }
    // A write that cannot be stored is refused.
    c.post(&url("/tiers"), &tier("silver", 1.0, 100))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    c.post(&url("/customers"), &acme())
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    c.put(&url("/tiers/gold"), &tier("gold", 2.0, 200))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    c.post(&url("/vlans"), &vlan(20, "10.20.0.1/24"))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    c.put(&url("/ports/1/1"), &port(1, 1, Some(1), &[]))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    c.delete(&url("/tiers/gold"))
        .await
        .expect_error(StatusCode::SERVICE_UNAVAILABLE, None);
    // Validation still answers first: bad input is never a 503.
    let mut bad = tier("silver", 1.0, 100);
    bad["dscp"] = json!(64);
    c.post(&url("/tiers"), &bad)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, Some("dscp"));
    let h = c.get(&url("/health")).await.expect(StatusCode::OK);
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["redis"], false, "{h}");
}
