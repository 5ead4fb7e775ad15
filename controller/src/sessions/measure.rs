//! The rate each session gets, measured from its meters: what a meter let
//! through is the bytes that came in minus the bytes its band dropped.
//! Each direction is read at the switch where it leaves the network (the
//! forward one at the session's last switch, the reverse at its first):
//! what passed every meter of the path, which is what the receiver gets
//! (read where it enters, a frame passed there and dropped by a later
//! meter would count, and its retransmission again). One meter
//! statistics request per switch per poll, whatever the number of
//! sessions (the control plane does the reading); this module keeps the
//! counters between polls and turns them into rates. Pure: the clock is
//! passed in.

use super::Sessions;
use super::record::SessionId;
use ahash::AHashMap as HashMap;
use chrono::{DateTime, Utc};
use std::time::Instant;
use tierflow_api::model::Measured;

/// Which meters to read on one switch: `(meter id, session, to_server)`.
pub type Targets = Vec<(u64, Vec<(u32, SessionId, bool)>)>;

/// What one meter let through so far, by `(switch, meter id)`.
pub type Passed = HashMap<(u64, u32), u64>;

/// Adds what each meter of one meter-statistics reply let through (bytes
/// in, less what its bands dropped).
pub fn add_passed(
    dpid: u64,
    reply: &openflow::multipart::MultipartReplyBody<'_>,
    passed: &mut Passed,
) {
    if let openflow::multipart::MultipartReplyBody::Meter(v) = reply {
        for m in v {
            let dropped: u64 = m.band_stats.iter().map(|b| b.byte_band_count).sum();
            passed.insert((dpid, m.meter_id), m.byte_in_count.saturating_sub(dropped));
        }
    }
}

/// A meter's counter at the previous poll.
#[derive(Debug, Clone, Copy)]
struct Seen {
    id: SessionId,
    bytes: u64,
    at: Instant,
}

/// The measurer's memory between polls.
#[derive(Debug, Default)]
pub struct Rates {
    seen: HashMap<(u64, u32), Seen>,
}

impl Rates {
    /// Each session's rate each way (kbit/s on the wire) since the
    /// previous poll; a direction not measurable yet (first sight, a
    /// meter reused or reset) is `None`.
    pub fn poll(
        &mut self,
        targets: &Targets,
        passed: &Passed,
        now: Instant,
    ) -> Vec<(SessionId, Option<f64>, Option<f64>)> {
        let mut out: HashMap<SessionId, (Option<f64>, Option<f64>)> = HashMap::default();
        let mut keep: HashMap<(u64, u32), Seen> = HashMap::default();
        for (dpid, meters) in targets {
            for &(meter, id, to_server) in meters {
                let Some(&bytes) = passed.get(&(*dpid, meter)) else {
                    continue;
                };
                let fresh = Seen { id, bytes, at: now };
                let rate = match self.seen.get(&(*dpid, meter)) {
                    Some(prev) if prev.id == id && bytes >= prev.bytes && now > prev.at => {
                        let dt = now.duration_since(prev.at).as_secs_f64();
                        Some((bytes - prev.bytes) as f64 * 8.0 / 1000.0 / dt)
                    }
                    _ => None,
                };
                keep.insert((*dpid, meter), fresh);
                let e = out.entry(id).or_default();
                if to_server {
                    e.0 = rate.or(e.0);
                } else {
                    e.1 = rate.or(e.1);
                }
            }
        }
        self.seen = keep;
        out.into_iter().map(|(id, (a, b))| (id, a, b)).collect()
    }
}

impl Sessions {
    /// The meters to read for every live session: its forward meter on
    /// its last switch, its reverse meter on its first; grouped by switch.
    pub fn meter_targets(&self) -> Targets {
        // Under the table's lock (which every admission takes) only a
        // copy into one vector sized beforehand; the grouping by switch
        // happens after the lock is let go.
        let mut flat: Vec<(u64, u32, SessionId, bool)> = Vec::new();
        {
            let t = self.table.lock();
            flat.reserve_exact(2 * t.by_id.len());
            for r in t.by_id.values() {
                if let Some(h) = r.hops.last().filter(|h| h.meter_fwd != 0) {
                    flat.push((h.dpid, h.meter_fwd, r.id, true));
                }
                if let Some(h) = r.hops.first().filter(|h| h.meter_rev != 0) {
                    flat.push((h.dpid, h.meter_rev, r.id, false));
                }
            }
        }
        flat.sort_unstable_by_key(|(d, ..)| *d);
        let mut v: Targets = Vec::new();
        for group in flat.chunk_by(|a, b| a.0 == b.0) {
            if let Some(&(dpid, ..)) = group.first() {
                v.push((
                    dpid,
                    group.iter().map(|&(_, m, id, to)| (m, id, to)).collect(),
                ));
            }
        }
        v
    }

    /// Records the rates of a poll made at `at`; a direction measured
    /// before and not this time keeps its last figure.
    pub fn set_measured(&self, rates: &[(SessionId, Option<f64>, Option<f64>)], at: DateTime<Utc>) {
        // The table before the rates (the lock order).
        let t = self.table.lock();
        let mut m = self.measured.lock();
        m.retain(|id, _| t.by_id.contains_key(id));
        drop(t);
        for &(id, to_server, to_client) in rates {
            let prev = m.get(&id).copied();
            let s = to_server.or(prev.map(|p| p.to_server));
            let c = to_client.or(prev.map(|p| p.to_client));
            if s.is_none() && c.is_none() {
                continue;
            }
            m.insert(
                id,
                Measured {
                    to_server: s.unwrap_or(0.0),
                    to_client: c.unwrap_or(0.0),
                    at,
                },
            );
        }
    }

    pub(super) fn measured_of(&self, id: SessionId) -> Option<Measured> {
        self.measured.lock().get(&id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_come_from_what_the_meters_let_through_between_polls() {
        let t0 = Instant::now();
        let (a, b) = (SessionId(1), SessionId(2));
        let targets: Targets = vec![(7, vec![(1, a, true), (2, a, false), (3, b, true)])];
        let mut r = Rates::default();
        let mut passed = Passed::default();
        passed.insert((7, 1), 0);
        passed.insert((7, 2), 0);
        passed.insert((7, 3), 0);
        assert!(
            r.poll(&targets, &passed, t0)
                .iter()
                .all(|(_, s, c)| s.is_none() && c.is_none()),
            "first sight: nothing to compare with"
        );
        // One second later: 125 kB forward (1,000 kbit/s), 12.5 kB back.
        passed.insert((7, 1), 125_000);
        passed.insert((7, 2), 12_500);
        passed.insert((7, 3), 250_000);
        let mut got = r.poll(&targets, &passed, t0 + Duration::from_secs(1));
        got.sort_by_key(|x| x.0);
        assert_eq!(got[0], (a, Some(1000.0), Some(100.0)));
        assert_eq!(got[1], (b, Some(2000.0), None));
        // The meter now belongs to another session: start over.
        let reused: Targets = vec![(7, vec![(1, SessionId(9), true)])];
        passed.insert((7, 1), 130_000);
        let got = r.poll(&reused, &passed, t0 + Duration::from_secs(2));
        assert_eq!(got, vec![(SessionId(9), None, None)]);
    }
}
