//! Counters the controller keeps about itself (exported as metrics later,
//! logged as one JSON line at shutdown).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
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

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub switches_connected: Counter,
    pub packet_ins: Counter,
    /// Path setups confirmed by barrier on every switch and released.
    pub setups_completed: Counter,
    /// Setups abandoned (a switch never confirmed, or went away).
    pub setups_abandoned: Counter,
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
    /// Packets of a session request dropped while its admission was in flight.
    pub admissions_busy: Counter,
    pub links_added: Counter,
    pub links_removed: Counter,
}
