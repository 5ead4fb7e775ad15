//! Sessions: the packet-ins that are session requests (traffic towards a
//! configured service), their admission (client data, CRM lookup, policy
//! decision, a meter per direction and tier flows on every switch of the
//! path, the packet released once every switch confirmed by barrier),
//! tier changes in place, hold, their end (idle timeout reported by
//! FLOW_REMOVED, BYE, the API), putting them back after a switch
//! reconnects, and writing them to Redis.
//!
//! One file per concern:
//!
//! - [`record`]: the typed session record and the API view built from it;
//! - [`table`]: the table, the ended ring, and the controller's lock order;
//! - [`detect`]: services and packet classification;
//! - [`admit`]: requests, decisions, admission, re-installation, the end;
//! - [`program`]: a record's meters and flows, as plans;
//! - [`change`]: re-tiering live sessions (tier edits, overrides,
//!   re-scoring, hold);
//! - [`call`]: SIP signalling, hold from SDP, media legs;
//! - [`idle`]: idle-media hold detection;
//! - [`writer`]: the Redis writer and the stored record;
//! - [`meters`]: meter id pools.
//!
//! Decides and hands plans to an [`Execute`](crate::plan::Execute); knows
//! nothing of connections (a switch is a datapath id) or of HTTP. The
//! session id is derived from what the session's flows match, so the same
//! session keeps its id, its cookie and its Redis record across a
//! controller restart.

pub mod admit;
pub mod call;
pub mod change;
pub mod detect;
pub mod idle;
pub mod measure;
pub mod meters;
pub mod program;
pub mod record;
pub mod request;
pub mod table;
pub mod writer;

pub use admit::{Admission, Pending, SessionPacket};
pub use idle::{Monitor, Verdict, VoiceProbe};
pub use record::{HoldCause, SessionId};

use crate::config::CrmMode;
use crate::crm::{Replica, Snapshot, Store};
use crate::stats::{Counter, Stats};
use detect::Svc;
use meters::Pools;
use parking_lot::{Mutex, RwLock};
use record::{Names, Record};
use std::sync::Arc;
use table::{Ended, Table};
use tierflow_api::model::{Session, SessionState, Tier};

/// The CRM as the session table uses it.
#[derive(Debug, Clone)]
pub struct Crm {
    pub mode: CrmMode,
    /// Always holds tiers, policy and services (session detection needs
    /// them on every packet-in); in replica mode customers and promotions
    /// too.
    pub replica: Arc<Replica>,
    pub store: Store,
}

/// The compiled services and the snapshot they were compiled from.
type ServiceCache = (Option<Arc<Snapshot>>, Arc<[Svc]>);

/// Why a session operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no such session")]
    NotFound,
    #[error("no tier named {0:?}")]
    UnknownTier(String),
    /// The CRM cannot be read now; nothing was changed.
    #[error("the CRM cannot be read now: {0}")]
    Unavailable(String),
}

/// Bounds on the sessions one client or one port can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub per_client: usize,
    pub per_port: usize,
    /// New sessions a second from one client-side port (twice as many at
    /// once); 0: no limit.
    pub admissions_per_port: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            per_client: usize::MAX,
            per_port: usize::MAX,
            admissions_per_port: 0,
        }
    }
}

/// The session table and everything admission needs.
#[derive(Debug)]
pub struct Sessions {
    crm: Crm,
    names: Names,
    table: Mutex<Table>,
    meters: Mutex<Pools>,
    /// Compiled services of the current snapshot (rebuilt when the replica
    /// publishes a new one). Holding the snapshot (not its address) makes
    /// the check exact: an address alone could be reused by a later one.
    services: RwLock<ServiceCache>,
    writer: writer::Writer,
    ended: Mutex<Ended>,
    default_country: String,
    idle_timeout: u16,
    /// Hold transitions by cause (`HoldCause::index`), to hold and to
    /// active.
    transitions: [[Counter; 2]; 3],
    /// Requested sessions may be parked, waiting for their hosts.
    waiting: std::sync::atomic::AtomicBool,
    /// The rates last measured on live sessions' meters.
    measured: Mutex<ahash::AHashMap<SessionId, tierflow_api::model::Measured>>,
    limits: SessionLimits,
    stats: Arc<Stats>,
}

impl Sessions {
    pub fn new(crm: Crm, default_country: String, idle_timeout: u16, stats: Arc<Stats>) -> Self {
        Sessions {
            crm,
            names: Names::default(),
            table: Mutex::new(Table::default()),
            meters: Mutex::new(Pools::default()),
            services: RwLock::new((None, Arc::from([]))),
            writer: writer::Writer::default(),
            ended: Mutex::default(),
            default_country,
            idle_timeout,
            transitions: Default::default(),
            waiting: std::sync::atomic::AtomicBool::new(false),
            measured: Mutex::default(),
            limits: SessionLimits::default(),
            stats,
        }
    }

    /// The same, with bounds on what one client or port can make.
    pub fn with_limits(mut self, limits: SessionLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn crm(&self) -> &Crm {
        &self.crm
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.crm.replica.snapshot()
    }

    /// The API's view of a record, with the meters its tier gives it now.
    pub(crate) fn view_of(&self, rec: &Record, parked: bool) -> Session {
        let snap = self.snapshot();
        rec.view(&self.names, parked, snap.tier(&self.names.get(rec.tier)))
    }

    /// Whether VLANs or ports are configured (one atomic load: the
    /// packet-in path of a network without them checks only this).
    pub fn vlans_active(&self) -> bool {
        self.crm.replica.vlans_active()
    }

    /// The VLAN plan in force.
    pub fn net(&self) -> Arc<crate::vlan::Plan> {
        self.crm.replica.net()
    }

    /// The compiled services of `snap`.
    pub fn services(&self, snap: &Arc<Snapshot>) -> Arc<[Svc]> {
        {
            let s = self.services.read();
            if s.0.as_ref().is_some_and(|cached| Arc::ptr_eq(cached, snap)) {
                return s.1.clone();
            }
        }
        let list: Arc<[Svc]> = snap
            .services
            .iter()
            .filter_map(|s| Svc::compile(s, &self.names))
            .collect();
        *self.services.write() = (Some(snap.clone()), list.clone());
        list
    }

    /// What a TCP or UDP packet is to the sessions; None when the CRM has
    /// no tiers or no services (then no packet is session traffic).
    pub fn classify(&self, ip: &crate::frame::Ip4<'_>) -> Option<detect::Class> {
        let snap = self.snapshot();
        if snap.tiers.is_empty() || snap.services.is_empty() {
            return None;
        }
        let services = self.services(&snap);
        Some(detect::classify(&services, ip))
    }

    /// Live sessions and parked ones (waiting for their next packet after
    /// their path broke or the controller restarted), by id, filtered
    /// before any view is built.
    pub fn list(
        &self,
        tier: Option<&str>,
        customer: Option<&str>,
        state: Option<SessionState>,
    ) -> Vec<Session> {
        let names = &self.names;
        let (tier, customer) = (tier.map(|t| names.find(t)), customer.map(|c| names.find(c)));
        // A name never interned matches no session.
        if matches!(tier, Some(None)) || matches!(customer, Some(None)) {
            return Vec::new();
        }
        let keep = |r: &record::Record| {
            tier.is_none_or(|t| Some(r.tier) == t)
                && customer.is_none_or(|c| r.decision.customer.map(|(n, _)| n) == c)
                && state.is_none_or(|s| r.state == s)
        };
        let snap = self.snapshot();
        let tier_of = |r: &record::Record| snap.tier(&names.get(r.tier));
        let t = self.table.lock();
        let measured = self.measured.lock();
        let mut v: Vec<Session> = t
            .by_id
            .values()
            .filter(|r| keep(r))
            .map(|r| {
                let mut s = r.view(names, false, tier_of(r));
                s.measured_kbps = measured.get(&r.id).copied();
                s
            })
            .chain(
                t.parked
                    .values()
                    .filter(|r| keep(r))
                    .map(|r| r.view(names, true, tier_of(r))),
            )
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Whether a live session has `tier` in force or as its override.
    pub fn tier_in_use(&self, tier: &str) -> Option<String> {
        let n = self.names.find(tier)?;
        let t = self.table.lock();
        t.by_id
            .values()
            .find(|r| r.tier == n || r.override_tier == Some(n))
            .map(|r| r.id.to_string())
    }

    /// Recently ended sessions that `keep` accepts, except those live or
    /// parked again under the same id (re-admitted after they ended): the
    /// current one hides them, whether or not it is accepted.
    pub fn ended_where(&self, keep: impl Fn(&Session) -> bool) -> Vec<Session> {
        let t = self.table.lock();
        let back = |id: &SessionId| t.by_id.contains_key(id) || t.parked_ids.contains_key(id);
        self.ended
            .lock()
            .iter()
            .filter(|(id, s)| keep(s) && !back(id))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// A recently ended session.
    pub fn find_ended(&self, id: &str) -> Option<Session> {
        let id = SessionId::parse(id)?;
        self.ended.lock().get(id).cloned()
    }

    /// A live session.
    pub fn get(&self, id: &str) -> Option<Session> {
        let id = SessionId::parse(id)?;
        let mut s = self.table.lock().live(id).map(|r| self.view_of(r, false))?;
        s.measured_kbps = self.measured_of(id);
        Some(s)
    }

    /// Whether a session is current: live, or parked (no path right now,
    /// keeping its state for when it is back).
    pub fn is_current(&self, id: &str) -> bool {
        SessionId::parse(id).is_some_and(|id| {
            let t = self.table.lock();
            t.by_id.contains_key(&id) || t.parked_ids.contains_key(&id)
        })
    }

    /// A live or a parked session, for reading.
    pub fn find(&self, id: &str) -> Option<Session> {
        let id = SessionId::parse(id)?;
        let t = self.table.lock();
        match t.live(id) {
            Some(r) => {
                let mut s = self.view_of(r, false);
                s.measured_kbps = self.measured_of(id);
                Some(s)
            }
            None => t.parked(id).map(|r| self.view_of(r, true)),
        }
    }

    /// Parked sessions (no path now).
    pub fn parked_count(&self) -> usize {
        self.table.lock().parked.len()
    }

    /// Live sessions.
    pub fn live_count(&self) -> usize {
        self.table.lock().by_id.len()
    }

    /// Live session ids.
    pub fn ids(&self) -> Vec<SessionId> {
        self.table.lock().by_id.keys().copied().collect()
    }

    /// Sessions counted by (tier, state), for metrics.
    pub fn by_tier_and_state(&self) -> Vec<(String, SessionState, usize)> {
        let mut m: std::collections::BTreeMap<(String, u8), (SessionState, usize)> =
            Default::default();
        let counts: Vec<(record::Name, SessionState)> = {
            let t = self.table.lock();
            t.by_id.values().map(|r| (r.tier, r.state)).collect()
        };
        for (tier, state) in counts {
            m.entry((self.names.get(tier).to_string(), state as u8))
                .or_insert((state, 0))
                .1 += 1;
        }
        m.into_iter().map(|((t, _), (s, n))| (t, s, n)).collect()
    }

    /// Hold transitions so far: `(cause, "hold" or "active", count)`.
    pub fn hold_transitions(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::with_capacity(6);
        for cause in HoldCause::ALL {
            if let Some(counts) = self.transitions.get(cause.index()) {
                for (to, c) in ["hold", "active"].into_iter().zip(counts) {
                    v.push((cause.as_str(), to, c.get()));
                }
            }
        }
        v
    }

    /// Meters in use on a switch.
    pub fn meters_in_use(&self, dpid: u64) -> usize {
        self.meters.lock().in_use(dpid)
    }

    /// A switch's meters: in use, and its ceiling.
    pub fn meter_pool(&self, dpid: u64) -> (usize, u32) {
        let p = self.meters.lock();
        (p.in_use(dpid), p.max(dpid))
    }

    /// RTP endpoints learnt from a live call's SDP offers and answers.
    pub fn session_media(&self, id: &str) -> Vec<std::net::SocketAddrV4> {
        let Some(id) = SessionId::parse(id) else {
            return Vec::new();
        };
        let t = self.table.lock();
        t.live(id)
            .and_then(|r| r.call.as_ref())
            .map_or_else(Vec::new, |c| c.media.to_vec())
    }

    /// Counts (and logs) a call whose codec needs more than its tier gives.
    fn count_codec_warnings(&self, id: record::SessionId, tier: &Tier, need: crate::codec::Need) {
        if tier.rate_kbps < need.kbps {
            self.stats.calls_codec_above_rate.inc();
            tracing::warn!(
                "session {id}: tier {} rate_kbps {} is below the {need} its codec needs",
                tier.name,
                tier.rate_kbps
            );
        }
        if tier.hold_rate_kbps < need.kbps {
            self.stats.calls_codec_above_hold_rate.inc();
        }
    }

    fn count_transition(&self, cause: HoldCause, hold: bool) {
        if let Some(c) = self
            .transitions
            .get(cause.index())
            .and_then(|c| c.get(usize::from(!hold)))
        {
            c.inc();
        }
    }
}
