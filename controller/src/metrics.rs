//! The control plane's Prometheus metrics, encoded by the Prometheus
//! project's Rust client (`prometheus-client`): a collector reads the
//! counters, the session table and the switches on each scrape (nothing
//! is kept twice), and the text goes after the API's own on `/metrics`.
//!
//! Names: every counter of [`Stats`](crate::stats::Stats) as
//! `tierflow_<field>_total`; `tierflow_crm_events_applied_total`,
//! `tierflow_crm_resyncs_total`, `tierflow_crm_replica_up`,
//! `tierflow_switches_connected`, `tierflow_sessions{tier,state}`,
//! `tierflow_hold_transitions_total{cause,to}`,
//! `tierflow_meters_in_use{dpid}`, `tierflow_session_writer_backlog`,
//! `tierflow_limit{name}` (every `[limits]` value),
//! `tierflow_packet_in_duration_seconds` (histogram).

use crate::control::ControlPlane;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use tierflow_api::model::SessionState;
use tierflow_api::views::format_dpid;

/// Reads the control plane on each scrape.
#[derive(Debug)]
struct Collect(Arc<ControlPlane>);

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = ConstCounter::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> fmt::Result {
    let m = ConstGauge::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

fn state_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Active => "active",
        SessionState::Hold => "hold",
        SessionState::Ended => "ended",
    }
}

impl Collector for Collect {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let ctl = &self.0;
        for (name, v) in ctl.stats().counters() {
            counter(
                &mut enc,
                &format!("tierflow_{name}"),
                &format!("Tierflow counter {name}."),
                v,
            )?;
        }
        let replica = &ctl.sessions().crm().replica;
        counter(
            &mut enc,
            "tierflow_crm_events_applied",
            "CRM change events the replica applied.",
            replica.events_applied(),
        )?;
        counter(
            &mut enc,
            "tierflow_crm_resyncs",
            "Full resyncs of the CRM replica.",
            replica.resyncs(),
        )?;
        gauge(
            &mut enc,
            "tierflow_crm_replica_up",
            "Whether the replica follows Redis now.",
            i64::from(replica.healthy()),
        )?;
        let switches = ctl.switches();
        gauge(
            &mut enc,
            "tierflow_switches_connected",
            "Switches connected now.",
            switches.len() as i64,
        )?;
        gauge(
            &mut enc,
            "tierflow_session_writer_backlog",
            "Sessions changed and not written to Redis yet.",
            ctl.sessions().writer_backlog() as i64,
        )?;
        {
            let mut e = enc.encode_descriptor(
                "tierflow_sessions",
                "Live sessions by tier and state.",
                None,
                MetricType::Gauge,
            )?;
            for (tier, state, n) in ctl.sessions().by_tier_and_state() {
                let labels = [("tier", tier.as_str()), ("state", state_name(state))];
                ConstGauge::new(n as i64).encode(e.encode_family(&labels)?)?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "tierflow_hold_transitions",
                "Calls put on hold (to=hold) or resumed (to=active), by cause.",
                None,
                MetricType::Counter,
            )?;
            for (cause, to, n) in ctl.sessions().hold_transitions() {
                let labels = [("cause", cause), ("to", to)];
                ConstCounter::new(n).encode(e.encode_family(&labels)?)?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "tierflow_meters_in_use",
                "Session meters allocated per switch.",
                None,
                MetricType::Gauge,
            )?;
            for sw in &switches {
                let dpid = format_dpid(sw.dpid);
                let labels = [("dpid", dpid.as_str())];
                ConstGauge::new(ctl.sessions().meters_in_use(sw.dpid) as i64)
                    .encode(e.encode_family(&labels)?)?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "tierflow_table_entries",
                "Entries in the controller's bounded tables (hosts, paths, sessions, parked sessions, frames waiting for ARP).",
                None,
                MetricType::Gauge,
            )?;
            for (name, n) in ctl.table_sizes() {
                let labels = [("table", name)];
                ConstGauge::new(n as i64).encode(e.encode_family(&labels)?)?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "tierflow_limit",
                "The limits in force ([limits] in the configuration).",
                None,
                MetricType::Gauge,
            )?;
            for (name, v) in ctl.limits().named() {
                let labels = [("name", name)];
                ConstGauge::new(v).encode(e.encode_family(&labels)?)?;
            }
        }
        let (buckets, count, sum) = ctl.stats().packet_in_latency.buckets();
        enc.encode_descriptor(
            "tierflow_packet_in_duration_seconds",
            "Time to handle one PACKET_IN (one in 16 is timed).",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// The control plane's metrics, ready to render on each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(ctl: Arc<ControlPlane>) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Collect(ctl)));
        Metrics { registry }
    }

    /// Prometheus text format (version 0.0.4), as the API's own part.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}
