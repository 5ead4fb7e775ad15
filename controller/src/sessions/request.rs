//! Sessions an application server requests (`POST /sessions`): a session
//! border controller, SIP proxy, web server or IVR that knows a session
//! before its first packet, or whose signalling the switches cannot read.
//! Scored like any session; its tier goes on every switch of the path
//! between the two hosts, both directions, and whoever asked is told once
//! every switch confirmed. Hosts no switch has seen yet: the session
//! waits (parked, no path) and goes on the network as soon as both are
//! located ([`Sessions::retry_requested`]), as does one whose path broke.
//! The same `external_id` again answers the same session.

use super::Sessions;
use super::program;
use super::record::{Decision, HoldTrack, Hops, Inputs, Record, Requested, SessionId, StateReason};
use crate::crm::Lookup;
use crate::messages::SessionKey;
use crate::plan::{Confirmed, Execute};
use crate::policy;
use crate::topology::{Route, Topology};
use crate::vlan::{self, Carry};
use chrono::Utc;
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr};
use tierflow_api::model::{Session, SessionState};
use tierflow_api::views::RequestKind;
use tracing::info;

/// Waiting requested sessions at most: beyond it, requests for hosts not
/// located yet are refused.
pub const MAX_WAITING: usize = 10_000;

/// A session an application server asks for.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub key: SessionKey,
    pub external_id: String,
    pub kind: RequestKind,
    pub inputs: Inputs,
}

/// What became of a request.
#[derive(Debug)]
pub enum Outcome {
    /// The `external_id` names this session already: nothing new.
    Existing(Session),
    /// Created: its flows are on their way (the `Confirmed` given will be
    /// told), or were there already (a session the network started, now
    /// also known by the `external_id`; told at once).
    Admitted(SessionId, Session),
    /// Created, waiting for its hosts to be located.
    Waiting(Session),
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("external_id {0:?} names session {1} between other endpoints")]
    Conflict(String, SessionId),
    #[error("no tier to give the session")]
    NoTier,
    #[error("too many requested sessions wait for their hosts ({MAX_WAITING})")]
    TooManyWaiting,
    #[error("a switch of the path has no meter left for the session's tier")]
    NoMeters,
}

fn kind_name(k: RequestKind) -> &'static str {
    match k {
        RequestKind::Voice => "voice",
        RequestKind::Web => "web",
        RequestKind::Other => "other",
    }
}

/// The route between a session's two hosts' attachment points, if both
/// are located (and, where VLANs are configured, can reach each other:
/// in one VLAN, or in two routed subnets), with how it carries them.
pub(super) fn locate(
    topo: &Mutex<Topology>,
    net: &crate::vlan::Plan,
    key: &SessionKey,
) -> Option<(Route, Option<Box<Carry>>)> {
    locate_ips(topo, net, key.client, key.server)
}

/// The route from the host at address `a` to the one at `z`; see
/// `locate`.
pub(super) fn locate_ips(
    topo: &Mutex<Topology>,
    net: &crate::vlan::Plan,
    a: Ipv4Addr,
    z: Ipv4Addr,
) -> Option<(Route, Option<Box<Carry>>)> {
    let mut t = topo.lock();
    let ha = t.host_by_ip(IpAddr::V4(a))?;
    let ha = (ha.at, ha.vlan, ha.mac);
    let hz = t.host_by_ip(IpAddr::V4(z))?;
    let hz = (hz.at, hz.vlan, hz.mac);
    let route = t.route(ha.0, hz.0)?;
    if !net.is_active() {
        return Some((route, None));
    }
    let routed = vlan::reach(net, (ha.1, a), (hz.1, z))?;
    let carry = vlan::carry(
        net,
        &crate::routing::triples(&route),
        (
            vlan::End {
                vlan: ha.1,
                mac: ha.2,
            },
            vlan::End {
                vlan: hz.1,
                mac: hz.2,
            },
        ),
        routed,
        |p| t.is_link_port(p),
    )?;
    Some((route, Some(Box::new(carry))))
}

impl Sessions {
    /// The session `external_id` names: `Ok(None)` if none, `Err` if it
    /// names one between other endpoints than `key`'s.
    pub fn by_external(
        &self,
        external_id: &str,
        key: &SessionKey,
    ) -> Result<Option<Session>, Refused> {
        let t = self.table.lock();
        let Some(id) = t.by_external.get(external_id).copied() else {
            return Ok(None);
        };
        let (rec, parked) = match t.live(id) {
            Some(r) => (r, false),
            None => match t.parked(id) {
                Some(r) => (r, true),
                None => return Ok(None),
            },
        };
        if rec.key != *key {
            return Err(Refused::Conflict(external_id.to_string(), id));
        }
        Ok(Some(self.view_of(rec, parked)))
    }

    /// Admits a requested session with what the CRM said of its client
    /// (`lookup`); `confirmed` learns whether every switch of its path
    /// confirmed (not called for `Existing` and `Waiting`).
    pub fn request_app(
        &self,
        exec: &dyn Execute,
        topo: &Mutex<Topology>,
        req: AppRequest,
        lookup: &Lookup,
        confirmed: Confirmed,
    ) -> Result<Outcome, Refused> {
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
            req.inputs.promo_code.is_some(),
            matched,
            lookup.promotion.as_deref(),
            &snap.policy,
            &snap.tiers,
            Utc::now(),
        )
        .ok_or(Refused::NoTier)?;
        let decision = Decision::from_choice(&choice, &self.names);
        // The topology before the table (the lock order).
        let located = locate(topo, &self.net(), &req.key);
        let (route, carry) = match located {
            Some((r, c)) => (Some(r), c),
            None => (None, None),
        };
        let mut t = self.table.lock();
        if let Some(id) = t.by_external.get(req.external_id.as_str()).copied()
            && let Some(r) = t.live(id).or_else(|| t.parked(id))
        {
            if r.key != req.key {
                return Err(Refused::Conflict(req.external_id, id));
            }
            let parked = !t.by_id.contains_key(&id);
            return Ok(Outcome::Existing(self.view_of(r, parked)));
        }
        let requested = Box::new(Requested {
            external_id: req.external_id.as_str().into(),
            kind: req.kind,
            idle: 0,
        });
        // The network started this very session already: the application
        // now knows it by its id too.
        if let Some(id) = t.by_key.get(&req.key).copied()
            && let Some(r) = t.live_mut(id)
        {
            r.requested = Some(requested);
            let view = self.view_of(r, false);
            t.by_external.insert(req.external_id.into(), id);
            drop(t);
            self.persist(id);
            confirmed(true);
            return Ok(Outcome::Admitted(id, view));
        }
        if route.is_none() && t.parked.len() >= MAX_WAITING {
            return Err(Refused::TooManyWaiting);
        }
        let id = t.id_for(&req.key);
        let now = Utc::now();
        let mut rec = Box::new(Record {
            id,
            key: req.key,
            hops: Hops::new(),
            carry: None,
            service: self.names.intern(kind_name(req.kind)),
            tier: decision.tier,
            override_tier: None,
            state: SessionState::Active,
            state_reason: StateReason::None,
            hold: HoldTrack::new(),
            inputs: req.inputs,
            decision,
            created_at: now,
            updated_at: now,
            call: None,
            requested: Some(requested),
        });
        t.by_external.insert(req.external_id.into(), id);
        let Some(route) = route else {
            info!(
                "session {id} requested: {} -> {} waits for its hosts to be located",
                req.key.client, req.key.server
            );
            let view = self.view_of(&rec, true);
            self.persist(id);
            t.park(rec);
            self.waiting
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Ok(Outcome::Waiting(view));
        };
        let Some(tier) = snap.tier(&self.names.get(rec.tier)).cloned() else {
            t.by_external
                .remove(rec.requested.as_ref().map_or("", |r| &*r.external_id));
            return Err(Refused::NoTier);
        };
        let Some(hops) = self.hops_with_meters(&route) else {
            t.forget_external(&rec);
            self.stats.sessions_refused_meters.inc();
            return Err(Refused::NoMeters);
        };
        rec.hops = hops;
        rec.carry = carry;
        info!(
            "session {id} requested: {} -> {} {} tier {}: {}",
            rec.key.client,
            rec.key.server,
            kind_name(req.kind),
            tier.name,
            self.view_of(&rec, false).explanation.detail
        );
        self.stats.sessions_admitted.inc();
        let mut plan = program::install(&rec, &tier, self.idle_timeout, true);
        plan.on_confirmed(confirmed);
        exec.execute(&mut plan);
        let view = self.view_of(&rec, false);
        self.persist(id);
        t.insert(rec);
        Ok(Outcome::Admitted(id, view))
    }

    /// Puts on the network the requested sessions waiting for their hosts
    /// (or whose path broke), where both hosts are located now. Cheap when
    /// none waits.
    pub fn retry_requested(&self, exec: &dyn Execute, topo: &Mutex<Topology>) -> usize {
        if !self.waiting.load(std::sync::atomic::Ordering::Relaxed) {
            return 0;
        }
        let waiting: Vec<(SessionId, SessionKey)> = {
            let t = self.table.lock();
            t.parked
                .values()
                .filter(|r| r.requested.is_some())
                .map(|r| (r.id, r.key))
                .collect()
        };
        if waiting.is_empty() {
            self.waiting
                .store(false, std::sync::atomic::Ordering::Relaxed);
            return 0;
        }
        let net = self.net();
        let routes: Vec<(SessionId, SessionKey, Route, Option<Box<Carry>>)> = waiting
            .into_iter()
            .filter_map(|(id, key)| locate(topo, &net, &key).map(|(r, c)| (id, key, r, c)))
            .collect();
        let snap = self.snapshot();
        let mut n = 0;
        let mut t = self.table.lock();
        for (id, key, route, carry) in routes {
            if t.by_key.contains_key(&key) || t.parked(id).is_none() {
                continue;
            }
            let Some(mut rec) = t.unpark(&key) else {
                continue;
            };
            let Some(tier) = snap.tier(&self.names.get(rec.tier)).cloned() else {
                t.park(rec);
                continue;
            };
            let Some(hops) = self.hops_with_meters(&route) else {
                self.stats.sessions_refused_meters.inc();
                t.park(rec);
                continue;
            };
            rec.hops = hops;
            rec.carry = carry;
            rec.updated_at = Utc::now();
            info!(
                "session {id} on the network: both hosts located, tier {}",
                tier.name
            );
            exec.execute(&mut program::install(&rec, &tier, self.idle_timeout, false));
            self.persist(id);
            t.insert(rec);
            n += 1;
        }
        n
    }
}
