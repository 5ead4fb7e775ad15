//! Counters the controller keeps about itself (exported as Prometheus
//! metrics on `/metrics`, logged as one JSON line at shutdown) and the
//! packet-in handling latency histogram.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    /// Increments and returns the value before.
    pub fn inc_get(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

/// Upper bounds of the packet-in latency buckets, in microseconds.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 100_000,
];

/// A latency histogram of fixed buckets: atomics only, so observing is
/// allocation-free and lock-free on the switch tasks' hot path.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Counts per bucket (not cumulative; the last bound is infinity),
    /// the total count and the sum in seconds.
    pub fn buckets(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut out = Vec::with_capacity(self.counts.len());
        let mut total = 0;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            total += n;
            let bound = LATENCY_BUCKETS_US
                .get(i)
                .map_or(f64::INFINITY, |b| *b as f64 / 1e6);
            out.push((bound, n));
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (out, total, sum)
    }

    /// Cumulative counts per bucket bound (seconds), then the `+Inf` count
    /// and the sum in seconds, as Prometheus wants them.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0u64;
        let mut out = Vec::with_capacity(LATENCY_BUCKETS_US.len());
        for (b, c) in LATENCY_BUCKETS_US.iter().zip(self.counts.iter()) {
            acc += c.load(Ordering::Relaxed);
            out.push((*b as f64 / 1e6, acc));
        }
        let total = acc + self.counts.last().map_or(0, |c| c.load(Ordering::Relaxed));
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (out, total, sum)
    }
}

impl Stats {
    /// Every counter, by its field name.
    pub fn counters(&self) -> Vec<(String, u64)> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// How long handling one PACKET_IN took (metrics only).
    #[serde(skip)]
    pub packet_in_latency: Histogram,
    pub switches_connected: Counter,
    /// Connections refused because a live connection holds their datapath
    /// id (an impostor, or a duplicate).
    pub switches_refused: Counter,
    /// TLS connections refused: no certificate, or one the switch CA did
    /// not sign.
    pub tls_unverified: Counter,
    /// TLS connections whose handshake failed otherwise (not TLS, no
    /// common protocol, deadline).
    pub tls_handshake_failures: Counter,
    pub packet_ins: Counter,
    /// Packet-ins dropped: their switch port sent more than
    /// `limits.packet_ins_per_port` a second.
    pub packet_ins_dropped: Counter,
    /// Frames dropped because their source could not be learnt: its port
    /// (or the controller) holds as many hosts as the limits allow.
    pub hosts_refused: Counter,
    /// Session requests handled as plain traffic: their client address
    /// or port has as many live sessions as the limits allow.
    pub sessions_refused_limit: Counter,
    /// Session requests handled as plain traffic: their port asked for
    /// new sessions faster than `limits.admissions_per_port`.
    pub sessions_refused_rate: Counter,
    /// Plain paths not installed: the path table is full (the packet was
    /// forwarded all the same).
    pub paths_refused: Counter,
    /// Path setups confirmed by barrier on every switch and released.
    pub setups_completed: Counter,
    /// Setups abandoned (a switch never confirmed, or went away).
    pub setups_abandoned: Counter,
    /// Plans not sent: this instance is not the cluster's leader (a
    /// follower never writes to a switch).
    pub plans_not_leader: Counter,
    /// Times this instance became the cluster's leader (taking over from
    /// another instance, or starting).
    pub cluster_takeovers: Counter,
    pub flow_mods_sent: Counter,
    /// Packets that missed at a transit switch of an installed path (the
    /// datapath's flow cache lagging) and were sent along it.
    pub transit_forwarded: Counter,
    pub floods: Counter,
    /// Flood copies suppressed because the same frame was just flooded.
    pub floods_suppressed: Counter,
    /// OFPT_ERROR messages received from switches.
    pub switch_errors: Counter,
    /// Messages from switches that could not be decoded.
    pub decode_errors: Counter,
    /// Session requests admitted with a tier.
    pub sessions_admitted: Counter,
    /// Sessions ended (idle, deleted, BYE).
    pub sessions_ended: Counter,
    /// Live sessions whose flows were put back (a switch reconnected, a
    /// flow idled out while the session lived on).
    pub sessions_reinstalled: Counter,
    /// Live sessions moved to another tier in place.
    pub sessions_retiered: Counter,
    /// Tier decisions made.
    pub decisions: Counter,
    /// Decisions that fell back to the default tier because the CRM could
    /// not be read.
    pub decisions_fallback: Counter,
    /// Failed Redis operations (lookups, session writes).
    pub redis_errors: Counter,
    pub meter_mods_sent: Counter,
    /// Failed OVSDB transactions (tier queues).
    pub ovsdb_errors: Counter,
    /// SIP messages relayed by the controller.
    pub sip_relayed: Counter,
    /// SIP datagrams that did not parse.
    pub sip_unparsed: Counter,
    /// BYE or CANCEL naming a call its session does not carry (ignored).
    pub sip_bye_ignored: Counter,
    /// Calls whose codec (from their SDP) needs more than their tier's
    /// `rate_kbps` on the wire: their voice is clipped.
    pub calls_codec_above_rate: Counter,
    /// Calls whose codec needs more than their tier's `hold_rate_kbps`:
    /// media held both ways is clipped (music on hold keeps its rate).
    pub calls_codec_above_hold_rate: Counter,
    /// Packets of a session request dropped while its admission was in flight.
    pub admissions_busy: Counter,
    /// Session requests dropped because the remote-lookup queue was full
    /// (their next packet asks again).
    pub admissions_shed: Counter,
    /// Barrier replies that named a setup their switch was not part of,
    /// or answered twice: ignored.
    pub barriers_unexpected: Counter,
    /// Session records in Redis that could not be read at start (skipped).
    pub sessions_unreadable: Counter,
    /// Sessions refused their tier because a switch of the path had no
    /// meter left (forwarded plainly instead).
    pub sessions_refused_meters: Counter,
    /// LLDP frames that made no link: not ours, not signed by us, too
    /// old, or arriving on (or claiming to come from) a port where hosts
    /// live.
    pub lldp_ignored: Counter,
    pub links_added: Counter,
    pub links_removed: Counter,
    /// Frames dropped at their ingress port: untagged where the port has
    /// no native VLAN, or tagged with a VLAN the port does not carry.
    pub vlan_dropped: Counter,
    /// ARP requests for a gateway and ICMP echo requests to one that the
    /// router answered.
    pub router_answered: Counter,
    /// ARP requests the router sent to resolve a next hop.
    pub router_arp_sent: Counter,
    /// Packets that waited for their next hop's ARP answer.
    pub routed_waited: Counter,
    /// Packets sent to the router that it did not forward: no routed
    /// subnet holds the destination, the source's VLAN is not routed, the
    /// next hop never answered, or too many wait already.
    pub routed_dropped: Counter,
    /// Routed paths set up (each direction counts).
    pub routed_paths: Counter,
}
