//! The generated OpenAPI document: a snapshot (so any change to the
//! published API shows up in review), every PRODUCT.md route present with
//! its methods, and the bearer scheme on exactly the mutations.
//!
//! `UPDATE_SNAPSHOTS=1 cargo test -p tierflow-api --test openapi`
//! rewrites `tests/snapshots/openapi.json`.

use serde_json::Value;
use std::path::PathBuf;

/// PRODUCT.md's REST table, under `/api/v1`, plus the documented extras.
const PRODUCT_ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/health", &["get"]),
    ("/api/v1/cluster", &["get"]),
    ("/api/v1/alarms", &["get"]),
    ("/api/v1/switches", &["get"]),
    ("/api/v1/switches/{dpid}", &["get"]),
    ("/api/v1/switches/{dpid}/flows", &["get"]),
    ("/api/v1/switches/{dpid}/meters", &["get"]),
    ("/api/v1/switches/{dpid}/queues", &["get"]),
    ("/api/v1/topology", &["get"]),
    ("/api/v1/tiers", &["get", "post"]),
    ("/api/v1/tiers/{name}", &["get", "put", "delete"]),
    ("/api/v1/customers", &["get", "post"]),
    ("/api/v1/customers/{id}", &["get", "put", "delete"]),
    ("/api/v1/promotions", &["get", "post"]),
    ("/api/v1/promotions/{code}", &["get", "put", "delete"]),
    ("/api/v1/services", &["get", "post"]),
    ("/api/v1/services/{name}", &["get", "put", "delete"]),
    ("/api/v1/policy", &["get", "put"]),
    ("/api/v1/sessions", &["get", "post"]),
    ("/api/v1/sessions/{id}", &["get", "delete"]),
    ("/api/v1/sessions/{id}/tier", &["put", "delete"]),
    ("/api/v1/sessions/{id}/client-data", &["post"]),
    ("/api/v1/sessions/{id}/state", &["put"]),
    ("/api/v1/vlans", &["get", "post"]),
    ("/api/v1/vlans/{vid}", &["get", "put", "delete"]),
    ("/api/v1/ports", &["get"]),
    ("/api/v1/ports/{dpid}/{port}", &["get", "put", "delete"]),
    ("/metrics", &["get"]),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    serde_json::to_value(tierflow_api::openapi()).expect("the document serialises")
}

#[test]
fn every_product_route_is_documented_with_exactly_its_methods() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in PRODUCT_ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"));
        let mut have: Vec<&str> = METHODS
            .iter()
            .copied()
            .filter(|m| item.get(*m).is_some())
            .collect();
        have.sort_unstable();
        let mut want = methods.to_vec();
        want.sort_unstable();
        assert_eq!(have, want, "methods of {path}");
    }
    assert_eq!(
        paths.len(),
        PRODUCT_ROUTES.len(),
        "documented paths beyond PRODUCT.md's: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

/// Whether `path` is customer data: `/customers`, `/promotions`,
/// `/sessions` and everything under them.
fn customer_data(path: &str) -> bool {
    [
        "/api/v1/customers",
        "/api/v1/promotions",
        "/api/v1/sessions",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

#[test]
fn mutations_need_the_bearer_token_and_customer_data_reads_either_token() {
    let doc = document();
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["bearer", "read_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
        assert!(schemes[name]["description"].is_string(), "{name}");
    }
    let mut guarded_reads = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            let security = op["security"].clone();
            let want = if *m != "get" {
                serde_json::json!([{"bearer": []}])
            } else if customer_data(path) {
                guarded_reads += 1;
                // Either token: two alternative requirements.
                serde_json::json!([{"read_token": []}, {"bearer": []}])
            } else {
                serde_json::Value::Null
            };
            assert_eq!(security, want, "{m} {path}");
            if !want.is_null() {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{m} {path} documents no 401"
                );
            } else {
                assert!(op["responses"]["401"].is_null(), "{m} {path}: a 401?");
            }
            assert!(
                op["operationId"].is_string() && op["tags"].is_array(),
                "{m} {path}"
            );
        }
    }
    // /customers, /customers/{id}, /promotions, /promotions/{code},
    // /sessions, /sessions/{id}.
    assert_eq!(guarded_reads, 6);
}

#[test]
fn bodies_and_errors_reference_their_schemas() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Tier",
        "Customer",
        "Promotion",
        "Service",
        "Policy",
        "Session",
        "Explanation",
        "ErrorBody",
        "SwitchView",
        "FlowView",
        "MeterView",
        "QueueView",
        "TopologyView",
        "Health",
        "Alarm",
        "Measured",
        "ClientDataIn",
        "TierChoice",
        "StateChange",
        "Vlan",
        "PortConfig",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let put_tier = &doc["paths"]["/api/v1/tiers/{name}"]["put"];
    assert_eq!(
        put_tier["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Tier"
    );
    assert_eq!(
        put_tier["responses"]["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert_eq!(
        schemas["Session"]["properties"]["measured_kbps"]["oneOf"][0]["$ref"],
        "#/components/schemas/Measured",
        "{}",
        schemas["Session"]
    );
    assert!(
        doc["paths"]["/api/v1/alarms"]["get"]["security"].is_null(),
        "alarms are open like /health"
    );
    let flow = &schemas["FlowView"]["properties"];
    assert!(flow.get("match").is_some() && flow.get("match_").is_none());
    let list = &doc["paths"]["/api/v1/sessions"]["get"]["parameters"];
    let names: Vec<&str> = list
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["tier", "customer", "state", "offset", "limit"]);
}

#[test]
fn snapshot() {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "snapshots",
        "openapi.json",
    ]
    .iter()
    .collect();
    let mut now = serde_json::to_string_pretty(&document()).expect("pretty");
    now.push('\n');
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &now).expect("write the snapshot");
        return;
    }
    let before = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_SNAPSHOTS=1 cargo test -p tierflow-api --test openapi",
            path.display()
        )
    });
    if before != now {
        let (line, old, new) = before
            .lines()
            .zip(now.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i + 1, a.to_string(), b.to_string()))
            .unwrap_or_else(|| {
                let n = before.lines().count().min(now.lines().count());
                (n + 1, "<end>".into(), "<end>".into())
            });
        panic!(
            "the OpenAPI document changed (first at line {line}):\n  snapshot: {old}\n  now:      {new}\n\
             ({} lines before, {} now). If the change is intended, review it and run\n  \
             UPDATE_SNAPSHOTS=1 cargo test -p tierflow-api --test openapi",
            before.lines().count(),
            now.lines().count()
        );
    }
}
