//! Plans: what a deciding module (forwarding, sessions) wants sent, to
//! which switch, in which order, and which packet to release once which
//! switches have confirmed. Deciding modules build plans from the
//! builders in `messages` and hand them to an [`Execute`] (the installer
//! in production, a [`Recorder`] in tests); nothing else sends to a
//! switch.
//!
//! A plan holds encoded messages (xid 0; the installer gives each a fresh
//! xid as it queues it), either in the plan's own buffer or as shared
//! slices of bytes encoded once and kept elsewhere (a path's flows), so
//! building the plan of a plain path setup touches no heap.
//!
//! Knows nothing of connections, tasks or locks.

use bytes::{Bytes, BytesMut};
use openflow::Body;
use smallvec::SmallVec;

/// Messages for one switch, maybe followed by a barrier the release
/// waits for.
#[derive(Debug, Clone)]
pub struct Send {
    pub dpid: u64,
    body: Part,
    /// A barrier follows; the plan's release waits for its reply.
    pub gate: bool,
}

#[derive(Debug, Clone)]
enum Part {
    /// A range of the plan's own buffer.
    Own(usize, usize),
    /// Bytes encoded once and kept by the decider (a path's flows).
    Shared(Bytes),
}

/// A packet to send out of a switch's port once its flows are in (or
/// right away).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub dpid: u64,
    /// Where it came in on that switch (`PortNo::Controller` when it was
    /// received elsewhere).
    pub in_port: u32,
    pub out_port: u32,
    pub data: Bytes,
}

/// Told once whether every gated switch of a plan confirmed (`true`), or
/// the plan was given up (`false`: a switch never answered in time).
pub type Confirmed = Box<dyn FnOnce(bool) + std::marker::Send>;

/// What to send, in order.
#[derive(Default)]
pub struct Plan {
    buf: BytesMut,
    sends: SmallVec<[Send; 4]>,
    release: Option<Release>,
    confirmed: Option<Confirmed>,
    /// Packet-outs sent right after the messages, not gated.
    now: SmallVec<[Release; 1]>,
    /// When it was decided, if the decider knew (its clock already
    /// read): a gated plan's wait for barriers counts from here.
    made: Option<std::time::Instant>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("sends", &self.sends.len())
            .field("release", &self.release)
            .field("confirmed", &self.confirmed.is_some())
            .finish_non_exhaustive()
    }
}

impl Plan {
    pub fn new() -> Self {
        Plan::default()
    }

    /// A plan whose own buffer holds `bytes` of messages before it grows
    /// (one allocation for a session's meters and flows, not a series of
    /// reallocations).
    pub fn with_capacity(bytes: usize) -> Self {
        Plan {
            buf: BytesMut::with_capacity(bytes),
            ..Plan::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
            && self.release.is_none()
            && self.now.is_empty()
            && self.confirmed.is_none()
    }

    /// Appends one message for `dpid`. Returns false (and adds nothing)
    /// if it cannot be encoded, which only an over-long message causes.
    pub fn push<M: Body + ?Sized>(&mut self, dpid: u64, msg: &M) -> bool {
        let start = self.buf.len();
        if openflow::encode(0, msg, &mut self.buf).is_err() {
            self.buf.truncate(start);
            return false;
        }
        let end = self.buf.len();
        // Consecutive messages for one switch share one send.
        if let Some(last) = self.sends.last_mut()
            && last.dpid == dpid
            && !last.gate
            && let Part::Own(_, e) = &mut last.body
            && *e == start
        {
            *e = end;
            return true;
        }
        self.sends.push(Send {
            dpid,
            body: Part::Own(start, end),
            gate: false,
        });
        true
    }

    /// Appends messages encoded elsewhere (whole messages, any xid).
    pub fn push_shared(&mut self, dpid: u64, encoded: Bytes) {
        self.sends.push(Send {
            dpid,
            body: Part::Shared(encoded),
            gate: false,
        });
    }

    /// What was queued for `dpid` so far is followed by a barrier, and
    /// the release waits for its reply.
    pub fn gate(&mut self, dpid: u64) {
        match self.sends.iter_mut().rev().find(|s| s.dpid == dpid) {
            Some(s) => s.gate = true,
            None => self.sends.push(Send {
                dpid,
                body: Part::Own(self.buf.len(), self.buf.len()),
                gate: true,
            }),
        }
    }

    /// The plan was decided at `at`.
    pub fn made_at(&mut self, at: std::time::Instant) {
        self.made = Some(at);
    }

    pub fn made(&self) -> Option<std::time::Instant> {
        self.made
    }

    /// The packet to release once every gated switch confirmed.
    pub fn release(&mut self, r: Release) {
        self.release = Some(r);
    }

    /// A packet-out to send right after the messages.
    pub fn packet_out(&mut self, r: Release) {
        self.now.push(r);
    }

    /// `c` learns whether every gated switch confirmed (at once, `true`,
    /// when none is gated).
    pub fn on_confirmed(&mut self, c: Confirmed) {
        self.confirmed = Some(c);
    }

    pub fn take_confirmed(&mut self) -> Option<Confirmed> {
        self.confirmed.take()
    }

    /// Appends another plan's sends and packet-outs (its release, if any,
    /// replaces this one's).
    pub fn append(&mut self, other: Plan) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&other.buf);
        for mut s in other.sends {
            if let Part::Own(a, b) = &mut s.body {
                *a += base;
                *b += base;
            }
            self.sends.push(s);
        }
        if other.release.is_some() {
            self.release = other.release;
        }
        if other.confirmed.is_some() {
            self.confirmed = other.confirmed;
        }
        self.now.extend(other.now);
    }

    pub fn sends(&self) -> impl Iterator<Item = (&Send, &[u8])> {
        self.sends.iter().map(|s| (s, self.bytes(s)))
    }

    /// The sends in order; `bytes` gives each one's messages.
    pub fn send_list(&self) -> &[Send] {
        &self.sends
    }

    pub fn bytes<'a>(&'a self, s: &'a Send) -> &'a [u8] {
        match &s.body {
            Part::Own(a, b) => self.buf.get(*a..*b).unwrap_or_default(),
            Part::Shared(b) => b,
        }
    }

    pub fn take_release(&mut self) -> Option<Release> {
        self.release.take()
    }

    pub fn release_ref(&self) -> Option<&Release> {
        self.release.as_ref()
    }

    pub fn packet_outs(&self) -> &[Release] {
        &self.now
    }

    /// The switches the release waits for, in sending order.
    pub fn gated(&self) -> impl Iterator<Item = u64> + '_ {
        self.sends.iter().filter(|s| s.gate).map(|s| s.dpid)
    }

    /// One line per message, `dpid TYPE {json}` with the message's JSON
    /// as `tierflow decode` prints it, a line `dpid BARRIER` per gate,
    /// then `release`/`packet_out` lines: what tests compare.
    pub fn dump(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (s, mut b) in self.sends() {
            while let Some(h) = openflow::Header::peek(b) {
                let len = usize::from(h.length).max(openflow::HEADER_LEN);
                let (one, rest) = b.split_at(len.min(b.len()));
                let text = match openflow::decode(one) {
                    Ok((h, m)) => openflow::to_json(&h, &m).to_string(),
                    Err(e) => format!("undecodable: {e}"),
                };
                out.push(format!("{:016x} {text}", s.dpid));
                b = rest;
            }
            if s.gate {
                out.push(format!("{:016x} BARRIER", s.dpid));
            }
        }
        for (what, r) in self
            .release
            .iter()
            .map(|r| ("release", r))
            .chain(self.now.iter().map(|r| ("packet_out", r)))
        {
            out.push(format!(
                "{:016x} {what} in_port={} out_port={} len={}",
                r.dpid,
                r.in_port,
                r.out_port,
                r.data.len()
            ));
        }
        out
    }
}

/// Whoever sends plans.
pub trait Execute {
    /// Queues the plan's messages on its switches in order (a switch not
    /// connected is skipped), then releases its packet when every gated
    /// switch has confirmed, or at once if none is gated. The plan is
    /// borrowed, not moved (a plan is a few hundred bytes, copied on every
    /// move, and a plain setup makes one), and left spent: its release and
    /// confirmation taken out.
    fn execute(&self, plan: &mut Plan);

    /// Whether plans can reach switch `dpid` now.
    fn connected(&self, dpid: u64) -> bool;
}

/// An [`Execute`] that keeps the plans, for tests of deciding modules.
#[derive(Debug, Default)]
pub struct Recorder {
    pub plans: parking_lot::Mutex<Vec<Plan>>,
}

impl Execute for Recorder {
    fn execute(&self, plan: &mut Plan) {
        if !plan.is_empty() {
            self.plans.lock().push(std::mem::take(plan));
        }
    }

    fn connected(&self, _dpid: u64) -> bool {
        true
    }
}

impl Recorder {
    /// Every recorded plan's dump, in order, and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.plans.lock())
            .iter()
            .flat_map(Plan::dump)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::Message;

    #[test]
    fn messages_for_one_switch_share_a_send_and_gates_split_them() {
        let mut p = Plan::new();
        assert!(p.is_empty());
        p.push(2, &Message::BarrierRequest);
        p.push(
            2,
            &Message::EchoRequest {
                data: b"x"[..].into(),
            },
        );
        p.gate(2);
        p.push(2, &Message::BarrierRequest);
        p.push(1, &Message::BarrierRequest);
        p.gate(1);
        p.push_shared(3, Bytes::from_static(&[4, 20, 0, 8, 0, 0, 0, 0]));
        p.release(Release {
            dpid: 1,
            in_port: 1,
            out_port: 2,
            data: Bytes::from_static(b"frame"),
        });
        let sends: Vec<(u64, bool, usize)> =
            p.sends().map(|(s, b)| (s.dpid, s.gate, b.len())).collect();
        assert_eq!(
            sends,
            vec![(2, true, 17), (2, false, 8), (1, true, 8), (3, false, 8)]
        );
        assert_eq!(p.gated().collect::<Vec<_>>(), vec![2, 1]);
        let dump = p.dump();
        assert_eq!(dump.len(), 8, "{dump:#?}");
        assert!(
            dump[0].starts_with("0000000000000002 {\"version\":4,\"type\":\"BARRIER_REQUEST\"")
        );
        assert_eq!(dump[2], "0000000000000002 BARRIER");
        assert_eq!(
            dump[7],
            "0000000000000001 release in_port=1 out_port=2 len=5"
        );
    }

    #[test]
    fn appended_plans_keep_their_messages() {
        let mut a = Plan::new();
        a.push(1, &Message::BarrierRequest);
        let mut b = Plan::new();
        b.push(
            2,
            &Message::EchoRequest {
                data: b"yz"[..].into(),
            },
        );
        b.gate(2);
        a.append(b);
        let sends: Vec<(u64, bool, usize)> =
            a.sends().map(|(s, b)| (s.dpid, s.gate, b.len())).collect();
        assert_eq!(sends, vec![(1, false, 8), (2, true, 10)]);
    }
}
