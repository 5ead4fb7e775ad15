//! A session record on its switches, as plans: its meters and tier flows
//! on every switch of its path (and of its media legs), installed egress
//! first, modified in place, or removed. Pure: the table decides when.

use super::record::{MediaLeg, Record};
use crate::messages::{self, Dir, FlowSpec};
use crate::plan::Plan;
use openflow::{FlowModCommand, Message, MeterModCommand};
use tierflow_api::model::Tier;

/// How a record's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Installation: meters replaced (a DELETE of a meter the switch lacks
    /// is harmless, an ADD of one it has is an error), flows added.
    Fresh,
    /// A tier change or hold: meters and flows modified in place, never
    /// removed, so no packet of the session goes untiered.
    InPlace,
}

/// About what one hop of a session takes in a plan: two METER_MODs and
/// two FLOW_MODs (a call's RTCP adds two more); a guess for the plan's
/// buffer, which grows if it is short.
const HOP_BYTES: usize = 640;

/// One switch's part of a session: its two meters and its two flows (four
/// for a requested call: RTP and RTCP).
pub fn push_hop(plan: &mut Plan, rec: &Record, i: usize, tier: &Tier, mode: Mode, idle: u16) {
    let Some(hop) = rec.hops.get(i) else {
        return;
    };
    let last = rec.hops.len() - 1;
    push_meters(
        plan,
        hop.dpid,
        [hop.meter_fwd, hop.meter_rev],
        rec,
        tier,
        mode,
    );
    // A call an application server requested: its RTCP, on the next
    // ports of both ends, rides on the RTP's meters (it never reports:
    // the RTP's flows say when the call idled out).
    let rtcp = rec.rtcp_key();
    for (dir, meter, out_port, ingress, notify) in [
        (Dir::Fwd, hop.meter_fwd, hop.out_port, i == 0, i == 0),
        (Dir::Rev, hop.meter_rev, hop.in_port, i == last, false),
    ] {
        let carried = rec.carry.as_deref().and_then(|c| carried(c, i, hop, dir));
        let keys = std::iter::once((&rec.key, notify)).chain(rtcp.as_ref().map(|k| (k, false)));
        for (key, notify) in keys {
            let f = messages::session_flow(&FlowSpec {
                session: rec.id.0,
                key,
                tier,
                dir,
                meter: (meter != 0).then_some(meter),
                out_port,
                ingress,
                // The client side's forward flow reports: its idle timeout
                // is the session's (for a call whose media runs on a leg,
                // the leg's flow is the one that counts: see
                // `admit::flow_removed`).
                notify,
                idle_timeout: idle,
                command: command(mode),
            });
            plan.push(hop.dpid, &with_carry(f, carried));
        }
    }
}

/// How direction `dir` goes through hop `i` of a carried path.
fn carried(
    c: &crate::vlan::Carry,
    i: usize,
    hop: &super::record::SessionHop,
    dir: Dir,
) -> Option<crate::vlan::HopCarry> {
    match dir {
        Dir::Fwd => c.fwd(i, hop.in_port),
        Dir::Rev => c.rev(i, hop.out_port),
    }
}

fn with_carry(
    f: openflow::FlowMod<'static>,
    c: Option<crate::vlan::HopCarry>,
) -> openflow::FlowMod<'static> {
    match c {
        Some(c) => messages::carry(f, &c),
        None => f,
    }
}

/// One switch's part of a media leg: its two meters and a flow per
/// stream and direction.
pub fn push_leg_hop(
    plan: &mut Plan,
    rec: &Record,
    leg: &MediaLeg,
    i: usize,
    tier: &Tier,
    mode: Mode,
    idle: u16,
) {
    let Some(hop) = leg.hops.get(i) else {
        return;
    };
    let last = leg.hops.len() - 1;
    push_meters(
        plan,
        hop.dpid,
        [hop.meter_fwd, hop.meter_rev],
        rec,
        tier,
        mode,
    );
    for (n, (a, z)) in leg.streams.iter().enumerate() {
        for (dir, meter, out_port, ingress, src, dst) in [
            (Dir::Fwd, hop.meter_fwd, hop.out_port, i == 0, a, z),
            (Dir::Rev, hop.meter_rev, hop.in_port, i == last, z, a),
        ] {
            let c = leg.carry.as_deref().and_then(|c| carried(c, i, hop, dir));
            let f = messages::media_flow(
                &FlowSpec {
                    session: rec.id.0,
                    key: &rec.key,
                    tier,
                    dir,
                    meter: (meter != 0).then_some(meter),
                    out_port,
                    ingress,
                    // The caller side's RTP flow carries the leg's idle
                    // timeout, which ends the call.
                    notify: i == 0 && n == 0 && dir == Dir::Fwd,
                    idle_timeout: idle,
                    command: command(mode),
                },
                *src,
                *dst,
            );
            plan.push(hop.dpid, &with_carry(f, c));
        }
    }
}

fn command(mode: Mode) -> FlowModCommand {
    match mode {
        Mode::Fresh => FlowModCommand::Add,
        Mode::InPlace => FlowModCommand::ModifyStrict,
    }
}

/// A hop's meters, `[forward, reverse]`: forward runs from the client
/// (or the caller's side of a media leg) to the server.
fn push_meters(plan: &mut Plan, dpid: u64, ids: [u32; 2], rec: &Record, tier: &Tier, mode: Mode) {
    for (m, q) in ids
        .into_iter()
        .zip(rec.meters(tier))
        .filter(|(m, _)| *m != 0)
    {
        let (rate, bucket) = (q.rate_kbps, q.bucket_kbits);
        match mode {
            Mode::Fresh => {
                plan.push(dpid, &Message::MeterMod(messages::delete_meter(m)));
                plan.push(
                    dpid,
                    &Message::MeterMod(messages::meter(MeterModCommand::Add, m, rate, bucket)),
                );
            }
            Mode::InPlace => {
                plan.push(
                    dpid,
                    &Message::MeterMod(messages::meter(MeterModCommand::Modify, m, rate, bucket)),
                );
            }
        }
    }
}

/// A record's meters and flows on every switch of its path, egress
/// first, and its media legs; `gated`: each switch of the path confirms
/// by barrier (the caller adds what waits for it: a packet, a caller).
pub fn install(rec: &Record, tier: &Tier, idle: u16, gated: bool) -> Plan {
    let mut plan = Plan::with_capacity(rec.hops.len() * HOP_BYTES);
    for i in (0..rec.hops.len()).rev() {
        push_hop(&mut plan, rec, i, tier, Mode::Fresh, idle);
        if gated && let Some(h) = rec.hops.get(i) {
            plan.gate(h.dpid);
        }
    }
    for leg in rec.legs() {
        for i in 0..leg.hops.len() {
            push_leg_hop(&mut plan, rec, leg, i, tier, Mode::Fresh, idle);
        }
    }
    plan
}

/// A record's part on one switch (the switch reconnected).
pub fn install_on(rec: &Record, dpid: u64, tier: &Tier, idle: u16) -> Plan {
    let mut plan = Plan::new();
    for leg in rec.legs() {
        if let Some(i) = leg.hops.iter().position(|h| h.dpid == dpid) {
            push_leg_hop(&mut plan, rec, leg, i, tier, Mode::Fresh, idle);
        }
    }
    if let Some(i) = rec.hops.iter().position(|h| h.dpid == dpid) {
        push_hop(&mut plan, rec, i, tier, Mode::Fresh, idle);
    }
    plan
}

/// A record moved to `tier` (or to its hold rate) in place.
pub fn retier(rec: &Record, tier: &Tier, idle: u16) -> Plan {
    let mut plan = Plan::new();
    for i in 0..rec.hops.len() {
        push_hop(&mut plan, rec, i, tier, Mode::InPlace, idle);
    }
    for leg in rec.legs() {
        for i in 0..leg.hops.len() {
            push_leg_hop(&mut plan, rec, leg, i, tier, Mode::InPlace, idle);
        }
    }
    plan
}

/// One media leg on every switch of its path.
pub fn install_leg(rec: &Record, leg: &MediaLeg, tier: &Tier, idle: u16) -> Plan {
    let mut plan = Plan::new();
    for i in 0..leg.hops.len() {
        push_leg_hop(&mut plan, rec, leg, i, tier, Mode::Fresh, idle);
    }
    plan
}

/// A session's flows and meters leave its switches (legs included).
pub fn remove(rec: &Record) -> Plan {
    let mut plan = Plan::new();
    let del = messages::delete_session(rec.id.0);
    for h in &rec.hops {
        plan.push(h.dpid, &del);
        for m in [h.meter_fwd, h.meter_rev].into_iter().filter(|m| *m != 0) {
            plan.push(h.dpid, &Message::MeterMod(messages::delete_meter(m)));
        }
    }
    plan.append(remove_legs(rec.id.0, rec.legs()));
    plan
}

/// Media legs leave their switches (one cookie covers a call's legs on a
/// switch).
pub fn remove_legs(id: u64, legs: &[MediaLeg]) -> Plan {
    let mut plan = Plan::new();
    let del = messages::delete_media(id);
    for leg in legs {
        for h in &leg.hops {
            plan.push(h.dpid, &del);
            for m in [h.meter_fwd, h.meter_rev].into_iter().filter(|m| *m != 0) {
                plan.push(h.dpid, &Message::MeterMod(messages::delete_meter(m)));
            }
        }
    }
    plan
}

/// A session refused its tier: plain forwarding flows for its traffic
/// along `hops`, both directions, egress first, idling out after `idle`.
pub fn untiered(
    id: u64,
    key: &crate::messages::SessionKey,
    hops: &[super::record::SessionHop],
    carry: Option<&crate::vlan::Carry>,
    idle: u16,
) -> Plan {
    let mut plan = Plan::new();
    for (i, h) in hops.iter().enumerate().rev() {
        for (dir, out) in [(Dir::Fwd, h.out_port), (Dir::Rev, h.in_port)] {
            let f = messages::untiered_flow(id, key, dir, out, idle);
            let c = carry.and_then(|c| carried(c, i, h, dir));
            plan.push(h.dpid, &with_carry(f, c));
        }
    }
    plan
}
