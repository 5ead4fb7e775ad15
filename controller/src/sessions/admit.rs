//! A session's life: the request (a packet towards a service, or a SIP
//! INVITE), the decision (CRM lookup and policy), the admission (meters
//! allocated, tier flows on every switch of the path, the first packet
//! released after the barriers), re-installation (flows idled out while
//! the session lived on, a switch reconnected), parking (its path broke;
//! Redis remembered it), and its end.

use super::program;
use super::record::{
    Call, Decision, HoldTrack, Inputs, Record, SdpSaid, SessionId, SipRequestKind, Source,
    StateReason,
};
use super::table::Table;
use super::writer::Stored;
use super::{Sessions, detect};
use crate::crm::Lookup;
use crate::frame::Frame;
use crate::messages::{self, SessionKey, cookie};
use crate::plan::{Execute, Plan, Release};
use crate::policy;
use crate::topology::{Change, PortRef, Route};
use bytes::Bytes;
use chrono::Utc;
use openflow::PortNo;
use std::net::IpAddr;
use tierflow_api::model::{ClientData, Reason, ServiceKind, SessionState};
use tracing::{debug, info, warn};

/// Hops a record from Redis may name for its session to be adopted (a
/// longer path is a corrupt record).
const MAX_ADOPTED_HOPS: usize = 64;

/// A packet-in the pipeline found to be about sessions, with what the
/// topology said about it.
#[derive(Debug, Clone)]
pub struct SessionPacket<'a> {
    pub dpid: u64,
    pub in_port: u32,
    /// It arrived over an inter-switch link (a packet in transit).
    pub on_link: bool,
    pub frame: &'a Frame<'a>,
    /// The whole frame, owned (zero-copy from the PACKET_IN).
    pub data: Bytes,
    /// The frame as its destination's port gets it (what the controller
    /// relays there): `data` itself, unless VLANs retag it or the router
    /// rewrites it on the way.
    pub delivered: Bytes,
    /// Where the destination attaches, if known.
    pub dst_at: Option<PortRef>,
    /// The route from the packet's port to `dst_at`, when both are known
    /// and the packet is at its edge.
    pub route: Option<Route>,
    /// How the route carries the packet's frames where VLANs are
    /// configured (`None` where none are).
    pub carry: Option<Box<crate::vlan::Carry>>,
    /// When the packet-in arrived.
    pub now: std::time::Instant,
}

/// What became of a session packet.
#[derive(Debug)]
pub enum Admission {
    /// Not session traffic: plain forwarding handles it.
    NotSession,
    /// Handled (admitted, re-installed, relayed, or dropped while its
    /// admission is in flight).
    Done,
    /// The decision needs Redis (remote mode): look the client up off the
    /// switch's task, then [`Sessions::admit`]. Boxed: it crosses a
    /// channel to the lookup worker anyway, and keeps this enum small on
    /// the packet-in path.
    Lookup(Box<Pending>),
    /// Deliver it to every edge port: its destination is not known yet.
    Flood,
}

/// A session request as detection saw it.
#[derive(Debug)]
pub(super) struct Ask<'a> {
    pub key: SessionKey,
    pub svc: &'a detect::Svc,
    pub inputs: Inputs,
    /// A SIP INVITE: delivered to the server's port rather than along the
    /// path.
    pub relay_to: Option<PortRef>,
    /// The INVITE's Call-ID.
    pub call_id: Option<&'a str>,
}

/// An admission waiting for its CRM lookup.
pub struct Pending {
    key: SessionKey,
    service: super::record::Name,
    route: Route,
    carry: Option<Box<crate::vlan::Carry>>,
    pub inputs: Inputs,
    release: Option<Release>,
    /// Told whether every switch of the path confirmed (a session an
    /// application server requested, which waits for it).
    confirmed: Option<crate::plan::Confirmed>,
    requested: Option<Box<super::record::Requested>>,
    /// The Call-ID of the INVITE that asked for a call.
    call_id: Option<Box<str>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("key", &self.key)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// The client as the lookup needs it.
    pub fn client(&self) -> ClientData {
        self.inputs.to_client()
    }
}

impl Sessions {
    /// Session handling of a packet-in.
    pub fn packet(
        &self,
        exec: &dyn Execute,
        topo: &parking_lot::Mutex<crate::topology::Topology>,
        pkt: &SessionPacket<'_>,
        class: detect::Class,
    ) -> Admission {
        match class {
            detect::Class::Sip {
                svc,
                to_server,
                key,
            } => self.sip_packet(exec, topo, pkt, &svc, to_server, key),
            detect::Class::Request { svc, key } => {
                let inputs = Inputs {
                    ip: Some(IpAddr::V4(key.client)),
                    mac: Some(pkt.frame.src),
                    source: Some(match svc.kind {
                        ServiceKind::Sip => Source::Sip,
                        ServiceKind::Web => Source::Web,
                        ServiceKind::Other => Source::Other,
                    }),
                    ..Inputs::default()
                };
                self.request(
                    exec,
                    pkt,
                    Ask {
                        key,
                        svc: &svc,
                        inputs,
                        relay_to: None,
                        call_id: None,
                    },
                )
            }
            detect::Class::Maybe(keys) => {
                // The server's side of a live session whose reverse flow
                // idled out, or media of a SIP session (a parked call comes
                // back on its media: no new INVITE needed).
                for key in &keys {
                    if self.live_packet(exec, pkt, key) {
                        return Admission::Done;
                    }
                }
                for key in &keys {
                    if self.readmit_call(exec, topo, pkt, key) {
                        return Admission::Done;
                    }
                }
                Admission::NotSession
            }
        }
    }

    /// A packet of a live session reached the controller: forwards it
    /// along the session's path when it is in transit (the datapath's
    /// cache lagging behind a fresh flow), else puts the session's flows
    /// back (they idled out while the session lived on) and releases it.
    fn live_packet(&self, exec: &dyn Execute, pkt: &SessionPacket<'_>, key: &SessionKey) -> bool {
        let mut t = self.table.lock();
        if let Some(r) = t.by_key.get(key).copied().and_then(|id| t.live_mut(id))
            && let Some(req) = r.requested.as_mut()
        {
            // Its flows are put back: idle again from now.
            req.idle = 0;
        }
        let Some(rec) = t.by_key(key) else {
            return false;
        };
        let Some(hop) = rec.hops.iter().find(|h| h.dpid == pkt.dpid).copied() else {
            return false;
        };
        // Which direction: the forward one enters each switch at in_port.
        let fwd = pkt.in_port == hop.in_port || (!pkt.on_link && rec.hops.first() == Some(&hop));
        // A carried session's frames are retagged (or routed) by its
        // flows: released through the table once they are in again.
        let carried = rec.carry.is_some();
        let release = Release {
            dpid: pkt.dpid,
            in_port: pkt.in_port,
            out_port: if carried {
                PortNo::Table.value()
            } else if fwd {
                hop.out_port
            } else {
                hop.in_port
            },
            data: pkt.data.clone(),
        };
        if pkt.on_link && !carried {
            let mut plan = Plan::new();
            plan.packet_out(release);
            exec.execute(&mut plan);
            self.stats.transit_forwarded.inc();
        } else {
            self.reinstall_locked(exec, &t, rec, Some(release));
        }
        true
    }

    /// A parked call whose media shows up again: back on the network on
    /// its current path, with what it had (tier, override, hold, calls),
    /// and the packet released along it.
    fn readmit_call(
        &self,
        exec: &dyn Execute,
        topo: &parking_lot::Mutex<crate::topology::Topology>,
        pkt: &SessionPacket<'_>,
        key: &SessionKey,
    ) -> bool {
        if pkt.on_link
            || !self
                .table
                .lock()
                .parked
                .get(key)
                .is_some_and(|r| r.is_voice() && r.requested.is_none())
        {
            return false;
        }
        // The topology before the table (the lock order).
        let Some((route, carry)) = super::request::locate(topo, &self.net(), key) else {
            return false;
        };
        let snap = self.snapshot();
        let mut t = self.table.lock();
        let Some(mut rec) = t.unpark(key) else {
            return false;
        };
        let Some(tier) = snap.tier(&self.names.get(rec.tier)).cloned() else {
            t.park(rec);
            return false;
        };
        let Some(hops) = self.hops_with_meters(&route) else {
            self.stats.sessions_refused_meters.inc();
            t.park(rec);
            return false;
        };
        rec.hops = hops;
        rec.updated_at = Utc::now();
        let release = rec.hops.iter().find(|h| h.dpid == pkt.dpid).map(|h| {
            let fwd = pkt.in_port == h.in_port;
            Release {
                dpid: pkt.dpid,
                in_port: pkt.in_port,
                out_port: if carry.is_some() {
                    PortNo::Table.value()
                } else if fwd {
                    h.out_port
                } else {
                    h.in_port
                },
                data: pkt.data.clone(),
            }
        });
        rec.carry = carry;
        let mut plan = program::install(&rec, &tier, self.idle_timeout, release.is_some());
        if let Some(r) = release {
            plan.release(r);
        }
        info!("session {} back on its media, tier {}", rec.id, tier.name);
        exec.execute(&mut plan);
        self.stats.sessions_reinstalled.inc();
        self.persist(rec.id);
        t.insert(rec);
        true
    }

    /// Ends the sessions parked longer than `max_age` (no packet brought
    /// them back): their Redis records expire like any ended session's.
    pub fn expire_parked(&self, max_age: std::time::Duration) -> usize {
        let old: Vec<SessionId> = {
            let t = self.table.lock();
            t.parked_since
                .iter()
                .filter(|(_, since)| since.elapsed() > max_age)
                .filter_map(|(k, _)| t.parked.get(k).map(|r| r.id))
                .collect()
        };
        let mut n = 0;
        for id in old {
            let rec = {
                let mut t = self.table.lock();
                let Some(key) = t.parked_ids.get(&id).copied() else {
                    continue;
                };
                let Some(rec) = t.unpark(&key) else {
                    continue;
                };
                t.forget_external(&rec);
                rec
            };
            let why = format!(
                "parked for more than {} s: no packet brought it back",
                max_age.as_secs()
            );
            // A parked session has no flows and no meters.
            self.finish(rec, &why);
            n += 1;
        }
        n
    }

    /// A session request: admits it, unless it is live already (its flows
    /// are missing: put them back) or being admitted. `relay_to`: a SIP
    /// INVITE, delivered to the server's port rather than along the path.
    pub(super) fn request(
        &self,
        exec: &dyn Execute,
        pkt: &SessionPacket<'_>,
        ask: Ask<'_>,
    ) -> Admission {
        let Ask {
            key,
            svc,
            mut inputs,
            relay_to,
            call_id,
        } = ask;
        if self.live_packet(exec, pkt, &key) {
            return Admission::Done;
        }
        // Requests seen in transit, or towards a server not located yet,
        // are plain traffic until the ingress switch reports them.
        if pkt.on_link || pkt.dst_at.is_none() {
            return Admission::NotSession;
        }
        let Some(route) = pkt.route.clone() else {
            return Admission::NotSession;
        };
        {
            let mut t = self.table.lock();
            // A parked session (its path broke, or the controller
            // restarted) comes back whatever the limits: it was admitted
            // within them, and a link's failure re-admits hundreds at once.
            let parked = t.parked.contains_key(&key);
            let (of_client, at_port) = t.load(key.client, (pkt.dpid, pkt.in_port));
            if !parked
                && (of_client as usize >= self.limits.per_client
                    || at_port as usize >= self.limits.per_port)
            {
                // As many live sessions as one client or one port may
                // have: plain traffic (a flood of requests from one port
                // costs that port, not the controller).
                self.stats.sessions_refused_limit.inc();
                return Admission::NotSession;
            }
            // New sessions from one port come at a bounded rate: each
            // costs flows and meters on every switch of its path, and a
            // host inventing requests must not keep the switches busy
            // installing them.
            if !parked
                && !t.admit_at(
                    (pkt.dpid, pkt.in_port),
                    self.limits.admissions_per_port,
                    pkt.now,
                )
            {
                self.stats.sessions_refused_rate.inc();
                return Admission::NotSession;
            }
            if !t.pending.insert(key) {
                self.stats.admissions_busy.inc();
                return Admission::Done;
            }
            // A session parked by a path change comes back with the client
            // data it had gathered (a code an IVR posted, an account id);
            // what this packet says wins.
            if let Some(p) = t.parked.get(&key) {
                inputs.keep_gathered(&p.inputs);
            }
        }
        let release = match relay_to {
            Some((dpid, port)) => Release {
                // A frame the controller retagged or rewrote did not come
                // in on any port as it is.
                in_port: if dpid == pkt.dpid && pkt.carry.is_none() {
                    pkt.in_port
                } else {
                    PortNo::Controller.value()
                },
                dpid,
                out_port: port,
                data: pkt.delivered.clone(),
            },
            None => Release {
                dpid: pkt.dpid,
                in_port: pkt.in_port,
                out_port: if pkt.carry.is_some() {
                    PortNo::Table.value()
                } else {
                    route.first().map_or(0, |h| h.out_port)
                },
                data: pkt.data.clone(),
            },
        };
        let pending = Pending {
            key,
            service: svc.name,
            route,
            carry: pkt.carry.clone(),
            inputs,
            release: Some(release),
            confirmed: None,
            requested: None,
            call_id: call_id.map(Box::from),
        };
        match self.crm.mode {
            crate::config::CrmMode::Replica => {
                let snap = self.snapshot();
                let lookup = snap.lookup(
                    pending.inputs.phone.as_deref(),
                    pending.inputs.ip,
                    pending.inputs.promo_code.as_deref(),
                );
                self.admit(exec, pending, &lookup);
                Admission::Done
            }
            crate::config::CrmMode::Remote => Admission::Lookup(Box::new(pending)),
        }
    }

    /// An admission that will not happen (its lookup was shed).
    pub fn abandon(&self, pending: &Pending) {
        self.table.lock().pending.remove(&pending.key);
    }

    /// Decides a pending session with what the CRM said, installs it and
    /// releases its first packet once every switch of the path confirmed.
    pub fn admit(&self, exec: &dyn Execute, p: Pending, lookup: &Lookup) {
        let snap = self.snapshot();
        self.stats.decisions.inc();
        let matched = lookup.customer.as_deref().map(|c| {
            (
                c,
                lookup
                    .matched_by
                    .unwrap_or(crate::crm::MatchedBy::Ip)
                    .as_str(),
            )
        });
        let choice = policy::choose(
            p.inputs.promo_code.is_some(),
            matched,
            lookup.promotion.as_deref(),
            &snap.policy,
            &snap.tiers,
            Utc::now(),
        );
        let mut t = self.table.lock();
        t.pending.remove(&p.key);
        let Some(choice) = choice else {
            return;
        };
        let mut decision = Decision::from_choice(&choice, &self.names);
        let parked = t.unpark(&p.key);
        let id = t.id_for(&p.key);
        if let Some(old) = t.remove(id) {
            // Re-admitted while still live (a path change raced it): its
            // old flows and meters go.
            exec.execute(&mut program::remove(&old));
            self.free_meters(&old);
        }
        let Some(hops) = self.hops_with_meters(&p.route) else {
            // A tier's flows never go out without their meter: this one
            // is forwarded plainly until it idles out, and counted.
            self.stats.sessions_refused_meters.inc();
            warn!(
                "session {} -> {}: no meter left on its path, forwarded without a tier",
                p.key.client, p.key.server
            );
            let hops: super::record::Hops = p
                .route
                .iter()
                .map(|h| super::record::SessionHop {
                    dpid: h.dpid,
                    in_port: h.in_port,
                    out_port: h.out_port,
                    meter_fwd: 0,
                    meter_rev: 0,
                })
                .collect();
            let mut plan =
                program::untiered(id.0, &p.key, &hops, p.carry.as_deref(), self.idle_timeout);
            if let Some(r) = p.release {
                for h in hops.iter().rev() {
                    plan.gate(h.dpid);
                }
                plan.release(r);
            }
            exec.execute(&mut plan);
            if let Some(parked) = parked {
                t.park(parked);
            }
            return;
        };
        let now = Utc::now();
        let mut tier = decision.tier;
        let override_tier = parked
            .as_ref()
            .and_then(|r| r.override_tier)
            .filter(|o| snap.tier(&self.names.get(*o)).is_some());
        if let Some(o) = override_tier {
            decision.reason = Reason::ManualOverride;
            decision.tier = o;
            tier = o;
        }
        // A session that was on hold when its path broke (or when the
        // controller restarted) comes back on hold. Not a SIP call: what
        // re-admits one is an INVITE, most likely a new call, and its own
        // SDP says whether it is held.
        let offer = t.offers.remove(&p.key);
        let held = match parked
            .as_ref()
            .filter(|r| r.state == SessionState::Hold && p.key.l4.is_some())
        {
            Some(r) => Some((r.hold.by.unwrap_or(super::HoldCause::Cti), r.state_reason)),
            // A re-INVITE putting a call on hold can be what (re-)admits
            // it (the controller restarted meanwhile).
            None => offer.as_ref().and_then(|o| o.1.hold_cause()).map(|c| {
                (
                    super::HoldCause::Sip,
                    StateReason::Sip(SipRequestKind::Invite, SdpSaid::from_hold(c)),
                )
            }),
        };
        // An INVITE comes from the caller: its sendonly plays to the server.
        let keeps = match offer.as_ref().and_then(|o| o.1.hold_cause()) {
            Some(c) if held.is_some() => super::call::keeps_on_hold(c, true),
            _ => crate::qos::Keeps::Neither,
        };
        let need = offer
            .as_ref()
            .and_then(|o| crate::codec::need(&o.1))
            .or_else(|| {
                parked
                    .as_ref()
                    .and_then(|r| r.call.as_ref())
                    .and_then(|c| c.need)
            });
        let mut hold = HoldTrack::new();
        let (state, state_reason) = match held {
            Some((by, why)) => {
                hold.by = Some(by);
                hold.before = Some(decision.reason);
                if decision.reason != Reason::ManualOverride {
                    decision.reason = Reason::Hold;
                }
                (SessionState::Hold, why)
            }
            None => (SessionState::Active, StateReason::None),
        };
        let call = p.key.l4.is_none().then(|| {
            // The calls it carried before it was parked, and this one.
            let mut call_ids: smallvec::SmallVec<[Box<str>; 1]> = parked
                .as_ref()
                .and_then(|r| r.call.as_ref())
                .map(|c| c.call_ids.clone())
                .unwrap_or_default();
            if let Some(c) = p.call_id
                && !call_ids.contains(&c)
                && call_ids.len() < super::record::MAX_CALLS
            {
                call_ids.push(c);
            }
            Box::new(Call {
                call_ids,
                media: offer
                    .as_ref()
                    .map(|o| super::record::endpoints_v4(&o.1))
                    .unwrap_or_default(),
                offer,
                legs: Default::default(),
                need,
                keeps,
            })
        });
        let rec = Box::new(Record {
            id,
            key: p.key,
            hops,
            carry: p.carry,
            service: p.service,
            tier,
            override_tier,
            state,
            state_reason,
            hold,
            inputs: p.inputs,
            decision,
            created_at: parked.as_ref().map_or(now, |r| r.created_at),
            updated_at: now,
            call,
            requested: p.requested,
        });
        let tier_name = self.names.get(rec.tier);
        let Some(tier) = snap.tier(&tier_name) else {
            self.free_meters(&rec);
            return;
        };
        info!(
            "session {} admitted: {} -> {} {} tier {} ({}): {}",
            rec.id,
            p.key.client,
            p.key.server,
            self.names.get(rec.service),
            tier.name,
            reason_name(rec.decision.reason),
            rec.detail(&self.names)
        );
        self.stats.sessions_admitted.inc();
        let gated = p.release.is_some() || p.confirmed.is_some();
        let mut plan = program::install(&rec, tier, self.idle_timeout, gated);
        if let Some(r) = p.release {
            plan.release(r);
        }
        if let Some(c) = p.confirmed {
            plan.on_confirmed(c);
        }
        exec.execute(&mut plan);
        self.persist(id);
        t.insert(rec);
    }

    /// Puts a live session's flows back on its whole path.
    fn reinstall_locked(
        &self,
        exec: &dyn Execute,
        _t: &Table,
        rec: &Record,
        release: Option<Release>,
    ) {
        let snap = self.snapshot();
        let Some(tier) = snap.tier(&self.names.get(rec.tier)) else {
            return;
        };
        self.stats.sessions_reinstalled.inc();
        let mut plan = program::install(rec, tier, self.idle_timeout, release.is_some());
        if let Some(r) = release {
            plan.release(r);
        }
        exec.execute(&mut plan);
    }

    /// A route with a meter pair on every switch; None (nothing taken)
    /// when a switch has none left.
    pub(super) fn hops_with_meters(&self, route: &Route) -> Option<super::record::Hops> {
        let pairs = self
            .meters
            .lock()
            .alloc_path(route.iter().map(|h| h.dpid))?;
        Some(
            route
                .iter()
                .zip(pairs)
                .map(|(h, (meter_fwd, meter_rev))| super::record::SessionHop {
                    dpid: h.dpid,
                    in_port: h.in_port,
                    out_port: h.out_port,
                    meter_fwd,
                    meter_rev,
                })
                .collect(),
        )
    }

    pub(super) fn free_meters(&self, rec: &Record) {
        let mut pools = self.meters.lock();
        for h in rec
            .hops
            .iter()
            .chain(rec.legs().iter().flat_map(|l| l.hops.iter()))
        {
            pools.release(h.dpid, h.meter_fwd);
            pools.release(h.dpid, h.meter_rev);
        }
    }

    /// Ends a session: its flows and meters leave every switch, its meter
    /// ids return to the pools, Redis keeps its record for a while.
    pub fn end(&self, exec: &dyn Execute, id: SessionId, why: &str) -> bool {
        let mut t = self.table.lock();
        let rec = match t.remove(id) {
            Some(rec) => rec,
            // A parked one (no path now, or waiting for its hosts).
            None => match t.parked_ids.get(&id).copied().and_then(|k| t.unpark(&k)) {
                Some(r) => r,
                None => return false,
            },
        };
        t.forget_external(&rec);
        // Under the table's lock: a re-admission of the same session must
        // not have its new flows deleted by this.
        exec.execute(&mut program::remove(&rec));
        self.free_meters(&rec);
        drop(t);
        self.finish(rec, why);
        true
    }

    /// A session out of the table and off its switches: Redis keeps its
    /// ended record for a while.
    fn finish(&self, rec: Box<Record>, why: &str) {
        self.stats.sessions_ended.inc();
        info!("session {} ended: {why}", rec.id);
        let mut view = self.view_of(&rec, false);
        view.state = SessionState::Ended;
        view.state_reason = why.to_owned();
        view.updated_at = Utc::now();
        self.persist_ended(rec.id, Stored::of(&rec, view.clone()));
        self.ended.lock().push(rec.id, view);
    }

    /// A session's flow (`media`: a media leg's) left a switch on timeout.
    /// One flow per session reports: the client side's flow of the IP
    /// pair, or, for a call whose media goes elsewhere (its IP pair then
    /// carries nothing, the signalling comes to the controller), the
    /// caller side's RTP flow of its first leg. Its idle timeout ends the
    /// session.
    pub fn flow_removed(
        &self,
        exec: &dyn Execute,
        dpid: u64,
        id: u64,
        media: bool,
        src: Option<std::net::Ipv4Addr>,
        reason: openflow::FlowRemovedReason,
    ) {
        use openflow::FlowRemovedReason as R;
        if !matches!(reason, R::IdleTimeout | R::HardTimeout) {
            return;
        }
        let id = SessionId(id);
        let ours = {
            let mut t = self.table.lock();
            t.live_mut(id).is_some_and(|r| {
                if let Some(req) = r.requested.as_mut() {
                    // Both directions must have idled out: each ingress
                    // flow reports its own.
                    let fwd = src == Some(r.key.client);
                    let at = if fwd { r.hops.first() } else { r.hops.last() };
                    if !media && at.is_some_and(|h| h.dpid == dpid) {
                        req.idle |= if fwd { 1 } else { 2 };
                    }
                    return req.idle == 3;
                }
                let reporter = match r.legs().first() {
                    Some(g) => media.then(|| g.hops.first()).flatten(),
                    None => (!media).then(|| r.hops.first()).flatten(),
                };
                reporter.is_some_and(|h| h.dpid == dpid)
            })
        };
        if ours {
            self.end(exec, id, if media { "idle media leg" } else { "idle" });
        }
    }

    /// A switch finished connecting (its meter features known): its meter
    /// pool learns the ceiling, and every live session crossing it gets
    /// its meters and flows back (OVS drops meters when its controller
    /// changes; our flows were wiped on connect).
    pub fn switch_ready(&self, exec: &dyn Execute, dpid: u64, max_meter: u32) -> u64 {
        self.set_meter_max(dpid, max_meter);
        let snap = self.snapshot();
        let t = self.table.lock();
        let mut n = 0;
        for rec in t.by_id.values() {
            let Some(tier) = snap.tier(&self.names.get(rec.tier)) else {
                continue;
            };
            let mut plan = program::install_on(rec, dpid, tier, self.idle_timeout);
            if !plan.is_empty() {
                exec.execute(&mut plan);
                n += 1;
            }
        }
        drop(t);
        if n > 0 {
            self.stats.sessions_reinstalled.add(n);
            info!(dpid = format_args!("{dpid:016x}"), "put back {n} sessions");
        }
        n
    }

    /// A switch's meter ceiling (its meter features).
    pub fn set_meter_max(&self, dpid: u64, max_meter: u32) {
        self.meters.lock().set_max(dpid, max_meter);
    }

    /// The service catch flows (first packet towards a service goes to the
    /// controller) and the SIP signalling flows for one switch, replacing
    /// earlier ones.
    pub fn service_flows(&self, dpid: u64) -> Plan {
        let snap = self.snapshot();
        let services = self.services(&snap);
        let mut plan = Plan::new();
        plan.push(
            dpid,
            &cookie::delete(cookie::cookie(cookie::Kind::Service, 0), cookie::KIND_MASK),
        );
        for (i, s) in services.iter().enumerate() {
            for f in messages::service_flows(
                i as u64,
                s.net,
                s.proto,
                s.port,
                s.kind == ServiceKind::Sip,
            ) {
                plan.push(dpid, &f);
            }
        }
        plan
    }

    /// Sessions whose path crossed a link that went away (a link failure,
    /// or the probes of a switch that left timing out) leave their switches
    /// and are parked; their next packet re-admits them on a new path with
    /// the same id (a requested session goes back on the network by
    /// itself). Media legs whose path broke (their call's own did not) are
    /// set up again on the current shortest paths.
    pub fn topology_changed(
        &self,
        exec: &dyn Execute,
        topo: &parking_lot::Mutex<crate::topology::Topology>,
        change: &Change,
    ) {
        if change.links_removed.is_empty() {
            return;
        }
        let broken: smallvec::SmallVec<[PortRef; 8]> = change
            .links_removed
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        if broken.is_empty() {
            return;
        }
        let crosses = |hops: &[super::record::SessionHop]| {
            hops.iter().any(|h| {
                broken.contains(&(h.dpid, h.out_port)) || broken.contains(&(h.dpid, h.in_port))
            })
        };
        let mut legs_to_redo = Vec::new();
        let moved = {
            let mut t = self.table.lock();
            let parked = self.park_locked(&mut t, exec, |r| crosses(&r.hops));
            for rec in t.by_id.values_mut() {
                let Some(call) = rec.call.as_mut() else {
                    continue;
                };
                if !call.legs.iter().any(|g| crosses(&g.hops)) {
                    continue;
                }
                let gone: Vec<super::record::MediaLeg> = call.legs.drain(..).collect();
                exec.execute(&mut program::remove_legs(rec.id.0, &gone));
                {
                    let mut pools = self.meters.lock();
                    for h in gone.iter().flat_map(|g| g.hops.iter()) {
                        pools.release(h.dpid, h.meter_fwd);
                        pools.release(h.dpid, h.meter_rev);
                    }
                }
                legs_to_redo.push((rec.id, rec.key, gone));
            }
            parked
        };
        if moved > 0 {
            info!("{moved} sessions lost their path; re-admitted on their next packet");
        }
        for (id, key, gone) in legs_to_redo {
            for g in gone {
                self.add_leg(exec, topo, id, &key, g.streams);
            }
        }
    }

    /// The live sessions `doomed` picks (a VLAN or port change made their
    /// flows wrong) leave their switches and are parked: their next
    /// packet re-admits them as the network is now (a requested session
    /// goes back by itself once its hosts are located again).
    pub fn park_where(&self, exec: &dyn Execute, doomed: impl Fn(&Record) -> bool) -> usize {
        let mut t = self.table.lock();
        let n = self.park_locked(&mut t, exec, doomed);
        if n > 0 {
            info!(
                "{n} sessions left their flows after a VLAN change; re-admitted on their next packet"
            );
        }
        n
    }

    /// Takes the live sessions `doomed` picks off their switches and parks
    /// them (the table held by the caller); how many.
    fn park_locked(
        &self,
        t: &mut Table,
        exec: &dyn Execute,
        doomed: impl Fn(&Record) -> bool,
    ) -> usize {
        let ids: Vec<SessionId> = t
            .by_id
            .values()
            .filter(|r| doomed(r))
            .map(|r| r.id)
            .collect();
        for id in &ids {
            if let Some(rec) = t.remove(*id) {
                exec.execute(&mut program::remove(&rec));
                self.free_meters(&rec);
                self.persist(*id);
                if rec.requested.is_some() {
                    self.waiting
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                t.park(rec);
            }
        }
        ids.len()
    }

    /// Sessions Redis remembers from before a restart: parked, so their
    /// next packet re-admits them with the same id, override and hold.
    pub fn park_remembered(&self, stored: Vec<Stored>) -> usize {
        let snap = self.snapshot();
        let mut t = self.table.lock();
        let mut n = 0;
        for s in stored {
            if let Some(rec) = s.into_record(&snap, &self.names) {
                // Admitted again meanwhile: what the network says now wins.
                if t.by_key.contains_key(&rec.key) || t.by_id.contains_key(&rec.id) {
                    continue;
                }
                if rec.requested.is_some() {
                    self.waiting
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                t.park(Box::new(rec));
                n += 1;
            }
        }
        n
    }

    /// Sessions another instance of the cluster put on the switches this
    /// one has just taken over: live again from their records, on the
    /// switches and with the meter ids the records name, without a
    /// message to any switch (their flows and meters are there and keep
    /// forwarding), VLAN carriage and routing included. A record without
    /// hops, or whose meter ids are taken, is parked, as after a restart.
    /// Returns (adopted, parked).
    pub fn adopt(&self, stored: Vec<Stored>) -> (usize, usize) {
        let snap = self.snapshot();
        let mut t = self.table.lock();
        let mut pools = self.meters.lock();
        let (mut adopted, mut parked) = (0, 0);
        for mut s in stored {
            let hops = std::mem::take(&mut s.internal.hops);
            let carry = s.internal.carry.take();
            let Some(mut rec) = s.into_record(&snap, &self.names) else {
                continue;
            };
            if t.by_key.contains_key(&rec.key) || t.by_id.contains_key(&rec.id) {
                continue;
            }
            let mut taken: Vec<(u64, u32)> = Vec::with_capacity(hops.len() * 2);
            let mut ok = !hops.is_empty()
                && hops.len() <= MAX_ADOPTED_HOPS
                && carry.as_ref().is_none_or(|c| c.hops.len() == hops.len());
            for &(dpid, _, _, f, r) in &hops {
                if !ok {
                    break;
                }
                for id in [f, r] {
                    if pools.reserve(dpid, id) {
                        taken.push((dpid, id));
                    } else {
                        ok = false;
                    }
                }
            }
            if !ok {
                for (dpid, id) in taken {
                    pools.release(dpid, id);
                }
                if rec.requested.is_some() {
                    self.waiting
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
                t.park(Box::new(rec));
                parked += 1;
                continue;
            }
            rec.hops = hops
                .iter()
                .map(
                    |&(dpid, in_port, out_port, meter_fwd, meter_rev)| super::record::SessionHop {
                        dpid,
                        in_port,
                        out_port,
                        meter_fwd,
                        meter_rev,
                    },
                )
                .collect();
            rec.carry = carry.map(Box::new);
            t.insert(Box::new(rec));
            adopted += 1;
        }
        (adopted, parked)
    }

    /// Ends a session by its id string (the API).
    pub fn end_by_name(&self, exec: &dyn Execute, id: &str, why: &str) -> bool {
        match SessionId::parse(id) {
            Some(id) => self.end(exec, id, why),
            None => {
                debug!("no session {id:?} to end");
                false
            }
        }
    }
}

pub(super) fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::Automatic => "automatic",
        Reason::Promotion => "promotion",
        Reason::Default => "default",
        Reason::ManualOverride => "manual_override",
        Reason::Hold => "hold",
    }
}
