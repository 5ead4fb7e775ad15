//! The API's own Prometheus metrics, kept with the Prometheus project's
//! Rust client (`prometheus-client`): requests by route template, method
//! and status, and a latency histogram by route and method. Labelled by
//! the matched route template (`/api/v1/tiers/{name}`), never the raw
//! path, so a scan of random URLs cannot blow up the series count.
//!
//! Rendered in the Prometheus text format 0.0.4, the format of the
//! control plane's text (`Backend::metrics`) appended after it on
//! `/metrics`: an OpenMetrics document would have to end with `# EOF`,
//! which leaves no room for the appended part.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Upper bounds of the latency buckets, seconds (Prometheus' defaults).
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

type Durations = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Durations = Family::new_with_constructor(latency_histogram);
        let mut registry = Registry::default();
        // Counters get `_total` appended and help texts a final period.
        registry.register(
            "tierflow_api_requests",
            "REST API requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "tierflow_api_request_duration_seconds",
            "REST API request latency by route template and method",
            durations.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
        }
    }
}

impl Metrics {
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(seconds);
    }

    /// Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: times every request and counts it under its route template.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    metrics.record(
        &route,
        &method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("/api/v1/tiers/{name}", "GET", 200, 0.002);
        m.record("/api/v1/tiers/{name}", "GET", 200, 0.3);
        m.record("/api/v1/tiers/{name}", "GET", 404, 20.0);
        m.record("/a\"b\\c\nd", "GET", 200, 0.0);
        let text = m.render();
        assert!(text.contains(
            "# HELP tierflow_api_requests_total REST API requests by route template, method and status.\n\
             # TYPE tierflow_api_requests_total counter\n"
        ), "{text}");
        assert!(text.contains(
            "tierflow_api_requests_total{route=\"/api/v1/tiers/{name}\",method=\"GET\",status=\"200\"} 2\n"
        ));
        assert!(text.contains("status=\"404\"} 1\n"));
        assert!(text.contains("# TYPE tierflow_api_request_duration_seconds histogram\n"));
        let l = "route=\"/api/v1/tiers/{name}\",method=\"GET\"";
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"0.005\"}} 1\n")),
            "{text}"
        );
        assert!(text.contains(&format!("_bucket{{{l},le=\"0.25\"}} 1\n")));
        assert!(text.contains(&format!("_bucket{{{l},le=\"0.5\"}} 2\n")));
        assert!(
            text.contains(&format!("_bucket{{{l},le=\"10\"}} 2\n")),
            "{text}"
        );
        assert!(text.contains(&format!("_bucket{{{l},le=\"+Inf\"}} 3\n")));
        assert!(text.contains(&format!("_count{{{l}}} 3\n")));
        assert!(text.contains(&format!("_sum{{{l}}} 20.302\n")), "{text}");
        // Label values are escaped.
        assert!(text.contains("route=\"/a\\\"b\\\\c\\nd\""), "{text}");
        assert!(!text.contains("# EOF"));
    }
}
