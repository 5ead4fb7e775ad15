//! Sessions: the packet-ins that are session requests (traffic towards a
//! configured service), their admission (client data, CRM lookup, policy
//! decision, a meter per direction and tier flows on every switch of the
//! path, the packet released once every switch confirmed by barrier),
//! tier changes in place, hold, their end (idle timeout reported by
//! FLOW_REMOVED, BYE, the API), putting them back after a switch
//! reconnects, and writing them to Redis. For SIP calls: hold and resume
//! from re-INVITE/UPDATE SDP (and CTI, idle media through `set_hold`),
//! and media legs for media that bypasses the call's address pair.
//!
//! Owns the session table and the per-switch meter id pools. The session
//! id is derived from what the session's flows match (client, server,
//! protocol, port), so the same session keeps its id, its cookie and its
//! Redis record across a controller restart and across controllers.
//!
//! Lock order: the session table, then the meter pools, then a switch's
//! output buffer; the topology lock is never held with either.

use crate::control::ControlPlane;
use crate::cookie::{self, Kind};
use crate::crm::{Lookup, MatchedBy, Replica, Snapshot, Store};
use crate::forwarding::slice_of;
use crate::policy;
use crate::qos::{self, Dir, FlowSpec, MeterPool, SessionHop, SessionKey};
use crate::sip::{self, SipMessage};
use crate::switch::Switch;
use crate::topology::{Change, PortRef};
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use bytes::Bytes;
use chrono::Utc;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use ipnet::Ipv4Net;
use openflow::{FlowModCommand, MacAddr, Message, MeterModCommand, PortNo};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use smallvec::SmallVec;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use tierflow_api::model::{
    ClientData, Explanation, Reason, Service, ServiceKind, Session, SessionState, Tier,
};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// Where customer data is read at decision time (PRODUCT.md's "CRM at the
/// communication center" versus "CRM at the control node").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmMode {
    /// Read Redis per decision (pipelined, off the switch's task).
    #[default]
    Remote,
    /// Decide from the in-memory replica; never wait on the network.
    Replica,
}

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

/// A service, compiled for matching packets.
#[derive(Debug, Clone)]
struct Svc {
    name: Arc<str>,
    net: Ipv4Net,
    proto: u8,
    port: u16,
    kind: ServiceKind,
}

impl Svc {
    fn compile(s: &Service) -> Option<Svc> {
        let net = match s.net()? {
            ipnet::IpNet::V4(n) => n,
            // Sessions are IPv4 (the match fields the tier flows use).
            ipnet::IpNet::V6(_) => return None,
        };
        Some(Svc {
            name: s.name.as_str().into(),
            net,
            proto: s.proto.ip_proto(),
            port: s.port,
            kind: s.kind,
        })
    }
}

/// The compiled services and the snapshot they were compiled from.
type ServiceCache = (Option<Arc<Snapshot>>, Arc<[Svc]>);

/// A live session.
#[derive(Debug)]
struct Live {
    key: SessionKey,
    hops: SmallVec<[SessionHop; 4]>,
    view: Session,
    hold: HoldTrack,
    /// RTP endpoints of a call, learnt from its SDP offers and answers.
    media: SmallVec<[SocketAddrV4; 4]>,
    /// The call's latest SDP offer, paired with the answer of the same
    /// Call-ID when it comes.
    offer: Option<Offer>,
    /// Media streams between addresses the call's IP-pair flows do not
    /// cover, with their own flows and meters.
    legs: SmallVec<[MediaLeg; 1]>,
}

/// A call's media between two endpoints that are not the caller and the
/// SIP server (a media gateway, an agent's phone behind a PBX): flows
/// matching the streams' UDP ports and a meter per direction on every
/// switch between the endpoints, at the call's tier and state, removed
/// with the call.
#[derive(Debug, Clone)]
struct MediaLeg {
    /// `(caller's side, far side)` of each stream: RTP, and RTCP when it
    /// has ports of its own.
    streams: SmallVec<[(SocketAddrV4, SocketAddrV4); 2]>,
    /// From the caller's side's switch to the far side's.
    hops: SmallVec<[SessionHop; 4]>,
}

/// What put a session on hold or resumed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCause {
    /// A re-INVITE or UPDATE whose SDP says hold or resume.
    Sip,
    /// `PUT /sessions/{id}/state` from a telephony system.
    Cti,
    /// The call's media stopped, or came back (flow statistics).
    IdleMedia,
}

impl HoldCause {
    pub const ALL: [HoldCause; 3] = [HoldCause::Sip, HoldCause::Cti, HoldCause::IdleMedia];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldCause::Sip => "sip",
            HoldCause::Cti => "cti",
            HoldCause::IdleMedia => "idle_media",
        }
    }

    /// The cause a held session's `state_reason` names (a session
    /// remembered from Redis keeps its hold, and who may end it).
    fn from_reason(why: &str) -> HoldCause {
        if why.starts_with("sip") {
            HoldCause::Sip
        } else if why == "idle media" {
            HoldCause::IdleMedia
        } else {
            HoldCause::Cti
        }
    }
}

/// A session's hold bookkeeping (in memory: after a restart a call is
/// re-admitted active).
#[derive(Debug, Clone, Copy)]
struct HoldTrack {
    /// Who put it on hold; `None` while active.
    by: Option<HoldCause>,
    /// Why it had its tier before the hold (the explanation says `hold`
    /// meanwhile); restored on resume.
    before: Option<Reason>,
    /// When the state last changed (or the session was admitted).
    since: std::time::Instant,
}

impl HoldTrack {
    fn new() -> Self {
        HoldTrack {
            by: None,
            before: None,
            since: std::time::Instant::now(),
        }
    }
}

/// A voice session as the idle-media monitor sees it.
#[derive(Debug, Clone, Copy)]
pub struct VoiceProbe {
    pub id: u64,
    /// The client-side switch, whose two session flows carry every media
    /// packet of the call in both directions.
    pub dpid: u64,
    pub state: SessionState,
    pub held_by: Option<HoldCause>,
    /// When the state last changed.
    pub since: std::time::Instant,
    /// The caller-side switch of the call's first media leg, when its
    /// media bypasses the IP pair (the media flows are read there too).
    pub media_dpid: Option<u64>,
}

#[derive(Debug, Default)]
struct Table {
    /// Boxed: a `Live` is ~900 bytes, and the table keeps up to twice as
    /// many buckets as entries, so inline values would double the
    /// memory of every session.
    by_id: HashMap<u64, Box<Live>>,
    by_key: HashMap<SessionKey, u64>,
    /// Admissions in flight: further packets of the flow are dropped
    /// (their first packet is released when the tier is in place).
    pending: HashSet<SessionKey>,
    /// Sessions whose path broke (or that Redis remembered from before a
    /// restart): re-admitted by their next packet, keeping id, creation
    /// time and manual override.
    parked: HashMap<SessionKey, Session>,
    /// Media endpoints of an INVITE's SDP offer whose session is being
    /// admitted; taken by the admission.
    offers: HashMap<SessionKey, Offer>,
}

/// An SDP offer waiting for its answer: the Call-ID it came with and the
/// description.
type Offer = (Option<Box<str>>, Box<sip::Sdp>);

/// Bound on `Table::offers` (offers of admissions that never completed).
const OFFERS_KEPT: usize = 4096;

/// Where a parked packet is released once its tier is in place.
#[derive(Debug)]
struct Release {
    sw: Arc<Switch>,
    data: Bytes,
    in_port: u32,
    out_port: u32,
}

/// The packet fields session detection reads.
#[derive(Debug, Clone, Copy)]
struct Ip4<'a> {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
    payload: &'a [u8],
}

fn parse_ip4(data: &[u8]) -> Option<Ip4<'_>> {
    let p = SlicedPacket::from_ethernet(data).ok()?;
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        return None;
    };
    let h = ip.header();
    let (sport, dport, payload) = match p.transport? {
        TransportSlice::Tcp(t) => (t.source_port(), t.destination_port(), t.payload()),
        TransportSlice::Udp(u) => (u.source_port(), u.destination_port(), u.payload()),
        _ => return None,
    };
    Some(Ip4 {
        src: h.source_addr(),
        dst: h.destination_addr(),
        proto: h.protocol().0,
        sport,
        dport,
        payload,
    })
}

/// Session ids are 40 bits (they live in the cookie's id field).
const ID_MASK: u64 = 0xff_ffff_ffff;

fn id_for(key: &SessionKey) -> u64 {
    // FNV-1a: stable across processes and machines (ahash is seeded).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let (proto, port) = key.l4.unwrap_or((0, 0));
    for b in key
        .client
        .octets()
        .into_iter()
        .chain(key.server.octets())
        .chain([proto])
        .chain(port.to_be_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & ID_MASK).max(1)
}

pub fn format_id(id: u64) -> String {
    format!("s-{id:010x}")
}

pub fn parse_id(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("s-")?;
    if hex.is_empty() || hex.len() > 10 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Session writes waiting for Redis, newest per session. A dead Redis
/// leaves them here, retried each second; nothing is lost while the
/// controller runs.
#[derive(Debug, Default)]
struct Writer {
    /// The latest view of each session not written yet (an ended one
    /// included: its record says why and expires).
    dirty: Mutex<HashMap<String, Session>>,
    wake: Notify,
}

/// The session table and everything admission needs.
#[derive(Debug)]
pub struct Sessions {
    crm: Crm,
    table: Mutex<Table>,
    meters: Mutex<HashMap<u64, MeterPool>>,
    /// Compiled services of the current snapshot (rebuilt when the replica
    /// publishes a new one).
    /// Holding the snapshot (not its address) makes the check exact: an
    /// address alone could be reused by a later snapshot.
    services: RwLock<ServiceCache>,
    writer: Writer,
    /// Recently ended sessions, newest last, for the API's reads (Redis
    /// keeps each ended record for an hour too).
    ended: Mutex<Ended>,
    default_country: String,
    idle_timeout: u16,
    /// Hold transitions by cause (`HoldCause::ALL` order), to hold and to
    /// active.
    transitions: [[crate::stats::Counter; 2]; 3],
}

/// How many ended sessions the table remembers.
const ENDED_KEPT: usize = 10_000;

#[derive(Debug, Default)]
struct Ended {
    by_id: HashMap<String, Session>,
    order: std::collections::VecDeque<String>,
}

impl Ended {
    fn push(&mut self, s: Session) {
        if self.by_id.insert(s.id.clone(), s.clone()).is_none() {
            self.order.push_back(s.id);
        }
        while self.order.len() > ENDED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

impl Sessions {
    pub fn new(crm: Crm, default_country: String, idle_timeout: u16) -> Self {
        Sessions {
            crm,
            table: Mutex::new(Table::default()),
            meters: Mutex::new(HashMap::default()),
            services: RwLock::new((None, Arc::from([]))),
            writer: Writer::default(),
            ended: Mutex::default(),
            default_country,
            idle_timeout,
            transitions: Default::default(),
        }
    }

    pub fn crm(&self) -> &Crm {
        &self.crm
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.crm.replica.snapshot()
    }

    fn services(&self, snap: &Arc<Snapshot>) -> Arc<[Svc]> {
        {
            let s = self.services.read();
            if s.0.as_ref().is_some_and(|cached| Arc::ptr_eq(cached, snap)) {
                return s.1.clone();
            }
        }
        let list: Arc<[Svc]> = snap.services.iter().filter_map(Svc::compile).collect();
        *self.services.write() = (Some(snap.clone()), list.clone());
        list
    }

    /// Live sessions and parked ones (waiting for their next packet after
    /// their path broke or the controller restarted) that `keep` accepts,
    /// by id: an operator still sees a session whose flows are momentarily
    /// gone. Only the accepted ones are cloned.
    pub fn list_where(&self, keep: impl Fn(&Session) -> bool) -> Vec<Session> {
        let t = self.table.lock();
        let mut v: Vec<Session> = t
            .by_id
            .values()
            .map(|l| &l.view)
            .filter(|s| keep(s))
            .cloned()
            .chain(t.parked.values().filter(|s| keep(s)).map(parked_view))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Recently ended sessions (idle, BYE, the API) that `keep` accepts,
    /// except those live or parked again under the same id (re-admitted
    /// after they ended): the current one hides them, whether or not it
    /// is accepted.
    pub fn ended_where(&self, keep: impl Fn(&Session) -> bool) -> Vec<Session> {
        // The one place both locks are held: table first, then ended.
        let t = self.table.lock();
        let parked: HashSet<&str> = t.parked.values().map(|s| s.id.as_str()).collect();
        let back = |id: &str| {
            parse_id(id).is_some_and(|n| t.by_id.contains_key(&n)) || parked.contains(id)
        };
        self.ended
            .lock()
            .by_id
            .values()
            .filter(|s| keep(s) && !back(&s.id))
            .cloned()
            .collect()
    }

    /// A recently ended session.
    pub fn find_ended(&self, id: &str) -> Option<Session> {
        self.ended.lock().by_id.get(id).cloned()
    }

    /// A live session.
    pub fn get(&self, id: &str) -> Option<Session> {
        let id = parse_id(id)?;
        self.table.lock().by_id.get(&id).map(|l| l.view.clone())
    }

    /// A live or a parked session, for reading.
    pub fn find(&self, id: &str) -> Option<Session> {
        let n = parse_id(id)?;
        let t = self.table.lock();
        match t.by_id.get(&n) {
            Some(l) => Some(l.view.clone()),
            None => t.parked.values().find(|s| s.id == id).map(parked_view),
        }
    }

    /// Sessions counted by (tier, state), for metrics.
    pub fn by_tier_and_state(&self) -> Vec<(String, SessionState, usize)> {
        let t = self.table.lock();
        let mut m: std::collections::BTreeMap<(String, &'static str), (SessionState, usize)> =
            Default::default();
        for l in t.by_id.values() {
            let s = match l.view.state {
                SessionState::Active => "active",
                SessionState::Hold => "hold",
                SessionState::Ended => "ended",
            };
            m.entry((l.view.tier.clone(), s))
                .or_insert((l.view.state, 0))
                .1 += 1;
        }
        m.into_iter().map(|((t, _), (s, n))| (t, s, n)).collect()
    }

    /// Hold transitions so far: `(cause, "hold" or "active", count)`.
    pub fn hold_transitions(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::with_capacity(6);
        for (cause, counts) in HoldCause::ALL.iter().zip(&self.transitions) {
            for (to, c) in ["hold", "active"].into_iter().zip(counts) {
                v.push((cause.as_str(), to, c.get()));
            }
        }
        v
    }

    /// Live voice (SIP) sessions, for the idle-media monitor.
    pub fn voice_probes(&self) -> Vec<VoiceProbe> {
        let t = self.table.lock();
        t.by_id
            .iter()
            .filter(|(_, l)| l.key.l4.is_none())
            .filter_map(|(id, l)| {
                Some(VoiceProbe {
                    id: *id,
                    dpid: l.hops.first()?.dpid,
                    state: l.view.state,
                    held_by: l.hold.by,
                    since: l.hold.since,
                    media_dpid: l.legs.first().and_then(|g| g.hops.first()).map(|h| h.dpid),
                })
            })
            .collect()
    }

    /// Meters in use on a switch.
    pub fn meters_in_use(&self, dpid: u64) -> usize {
        self.meters.lock().get(&dpid).map_or(0, MeterPool::in_use)
    }
}

impl ControlPlane {
    /// Whether the CRM has tiers and services, without which no packet is
    /// session traffic (the packet-in path asks before anything else).
    pub(crate) fn sessions_wanted(&self) -> bool {
        let snap = self.sessions.snapshot();
        !snap.tiers.is_empty() && !snap.services.is_empty()
    }

    /// Session handling of a packet-in. Returns false when the packet is
    /// not session traffic (plain forwarding handles it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn session_packet_in(
        self: &Arc<Self>,
        sw: &Arc<Switch>,
        frame: &Bytes,
        data: &[u8],
        in_port: u32,
        macs: (MacAddr, MacAddr),
        on_link: bool,
        dst_at: Option<PortRef>,
    ) -> bool {
        let sessions = &self.sessions;
        let snap = sessions.snapshot();
        if snap.tiers.is_empty() {
            return false;
        }
        let services = sessions.services(&snap);
        if services.is_empty() {
            return false;
        }
        let Some(p) = parse_ip4(data) else {
            return false;
        };
        if p.proto == 17
            && let Some(svc) = services.iter().find(|s| {
                s.kind == ServiceKind::Sip
                    && s.proto == 17
                    && ((s.port == p.dport && s.net.contains(&p.dst))
                        || (s.port == p.sport && s.net.contains(&p.src)))
            })
        {
            self.sip_packet(sw, frame, data, in_port, macs, on_link, dst_at, &p, svc);
            return true;
        }
        let request = services
            .iter()
            .find(|s| s.proto == p.proto && s.port == p.dport && s.net.contains(&p.dst));
        if let Some(svc) = request {
            let key = SessionKey {
                client: p.src,
                server: p.dst,
                l4: Some((p.proto, p.dport)),
            };
            let client = ClientData {
                ip: Some(IpAddr::V4(p.src)),
                mac: Some(macs.0.to_string()),
                source: Some(kind_name(svc.kind).into()),
                ..ClientData::default()
            };
            return self.session_request(
                sw, frame, data, in_port, on_link, dst_at, key, svc, client, None,
            );
        }
        // The server's side of a live session whose reverse flow idled out,
        // or media of a SIP session.
        let candidates = [
            services
                .iter()
                .find(|s| s.proto == p.proto && s.port == p.sport && s.net.contains(&p.src))
                .map(|_| SessionKey {
                    client: p.dst,
                    server: p.src,
                    l4: Some((p.proto, p.sport)),
                }),
            Some(SessionKey {
                client: p.src,
                server: p.dst,
                l4: None,
            }),
            Some(SessionKey {
                client: p.dst,
                server: p.src,
                l4: None,
            }),
        ];
        for key in candidates.into_iter().flatten() {
            if self.live_packet(sw, frame, data, in_port, on_link, &key) {
                return true;
            }
        }
        false
    }

    /// A packet of a live session reached the controller: forwards it along
    /// the session's path when it is in transit (the datapath's cache
    /// lagging behind a fresh flow), else puts the session's flows back
    /// (they idled out while the session lived on) and releases it.
    fn live_packet(
        self: &Arc<Self>,
        sw: &Arc<Switch>,
        frame: &Bytes,
        data: &[u8],
        in_port: u32,
        on_link: bool,
        key: &SessionKey,
    ) -> bool {
        let (fwd, hop) = {
            let t = self.sessions.table.lock();
            let Some(l) = t.by_key.get(key).and_then(|id| t.by_id.get(id)) else {
                return false;
            };
            let Some(hop) = l.hops.iter().find(|h| h.dpid == sw.dpid).copied() else {
                return false;
            };
            // Which direction: the forward one enters each switch at in_port.
            (
                in_port == hop.in_port || (!on_link && l.hops.first() == Some(&hop)),
                hop,
            )
        };
        let out_port = if fwd { hop.out_port } else { hop.in_port };
        let owned = slice_of(frame, data);
        if on_link {
            self.packet_out(sw, in_port, out_port, &owned);
            self.stats.transit_forwarded.inc();
        } else {
            self.reinstall_session(
                key,
                Some(Release {
                    sw: sw.clone(),
                    data: owned,
                    in_port,
                    out_port,
                }),
            );
        }
        true
    }

    /// A session request: admits it, unless it is live already (its flows
    /// are missing: put them back) or being admitted.
    #[allow(clippy::too_many_arguments)]
    fn session_request(
        self: &Arc<Self>,
        sw: &Arc<Switch>,
        frame: &Bytes,
        data: &[u8],
        in_port: u32,
        on_link: bool,
        dst_at: Option<PortRef>,
        key: SessionKey,
        svc: &Svc,
        client: ClientData,
        relay_to: Option<PortRef>,
    ) -> bool {
        if self.live_packet(sw, frame, data, in_port, on_link, &key) {
            return true;
        }
        // Requests seen in transit, or towards a server not located yet,
        // are plain traffic until the ingress switch reports them.
        let Some(server_at) = dst_at else {
            return false;
        };
        if on_link {
            return false;
        }
        let Some(hops) = self.session_hops((sw.dpid, in_port), server_at) else {
            return false;
        };
        let mut client = client;
        {
            let mut t = self.sessions.table.lock();
            if !t.pending.insert(key) {
                self.stats.admissions_busy.inc();
                return true;
            }
            // A session parked by a path change comes back with the client
            // data it had gathered (a code an IVR posted, an account id);
            // what this packet says wins.
            if let Some(p) = t.parked.get(&key) {
                keep_gathered(&mut client, &p.explanation.inputs);
            }
        }
        let owned = slice_of(frame, data);
        let release = match relay_to {
            // SIP: the INVITE is delivered to the server's port directly.
            Some((dpid, port)) => match self.switch(dpid) {
                Some(ssw) => Release {
                    in_port: if dpid == sw.dpid {
                        in_port
                    } else {
                        PortNo::Controller.value()
                    },
                    sw: ssw,
                    data: owned,
                    out_port: port,
                },
                None => {
                    self.sessions.table.lock().pending.remove(&key);
                    return false;
                }
            },
            None => Release {
                sw: sw.clone(),
                data: owned,
                in_port,
                out_port: hops.first().map_or(0, |h| h.out_port),
            },
        };
        let service = svc.name.clone();
        match self.sessions.crm.mode {
            CrmMode::Replica => {
                let snap = self.sessions.snapshot();
                let lookup = snap.lookup(
                    client.phone.as_deref(),
                    client.ip,
                    client.promo_code.as_deref(),
                );
                let e = self.decide(&snap, &client, &lookup);
                self.admit(key, &service, hops, e, release);
            }
            CrmMode::Remote => {
                // Never on the switch's task: the lookup waits on Redis.
                // One task per admission (an allocation): admissions are
                // far rarer than plain path setups.
                let ctl = self.clone();
                tokio::spawn(async move {
                    let lookup = ctl.remote_lookup(&client).await;
                    let snap = ctl.sessions.snapshot();
                    let e = ctl.decide(&snap, &client, &lookup);
                    ctl.admit(key, &service, hops, e, release);
                });
            }
        }
        true
    }

    async fn remote_lookup(&self, client: &ClientData) -> Lookup {
        match self
            .sessions
            .crm
            .store
            .lookup(
                client.phone.as_deref(),
                client.ip,
                client.promo_code.as_deref(),
            )
            .await
        {
            Ok(l) => l,
            Err(e) => {
                self.stats.redis_errors.inc();
                self.stats.decisions_fallback.inc();
                warn!("CRM lookup failed, default tier: {e}");
                Lookup::default()
            }
        }
    }

    /// Looks up the client with the CRM mode in force.
    pub async fn lookup(&self, client: &ClientData) -> Lookup {
        match self.sessions.crm.mode {
            CrmMode::Replica => self.sessions.snapshot().lookup(
                client.phone.as_deref(),
                client.ip,
                client.promo_code.as_deref(),
            ),
            CrmMode::Remote => self.remote_lookup(client).await,
        }
    }

    fn decide(&self, snap: &Snapshot, client: &ClientData, l: &Lookup) -> Option<Explanation> {
        self.stats.decisions.inc();
        let matched = l
            .customer
            .as_deref()
            .map(|c| (c, l.matched_by.unwrap_or(MatchedBy::Ip).as_str()));
        policy::decide(
            client,
            matched,
            l.promotion.as_deref(),
            &snap.policy,
            &snap.tiers,
            Utc::now(),
        )
    }

    /// The path of a session from the client's port to the server's:
    /// the switches the forward direction crosses, with the port it enters
    /// and leaves each by (the reverse direction takes the same switches
    /// backwards, so both directions share each switch's meters' fate).
    fn session_hops(
        &self,
        client_at: PortRef,
        server_at: PortRef,
    ) -> Option<SmallVec<[SessionHop; 4]>> {
        let mut topo = self.topology.lock();
        let path = topo.path(client_at.0, server_at.0)?;
        let mut hops = SmallVec::new();
        let mut in_port = client_at.1;
        for &(dpid, out_port) in path.iter() {
            hops.push(SessionHop {
                dpid,
                in_port,
                out_port,
                meter_fwd: 0,
                meter_rev: 0,
            });
            in_port = topo.peer((dpid, out_port))?.1;
        }
        hops.push(SessionHop {
            dpid: server_at.0,
            in_port,
            out_port: server_at.1,
            meter_fwd: 0,
            meter_rev: 0,
        });
        Some(hops)
    }

    /// Installs a decided session and releases its first packet once every
    /// switch of the path has confirmed.
    fn admit(
        &self,
        key: SessionKey,
        service: &str,
        mut hops: SmallVec<[SessionHop; 4]>,
        e: Option<Explanation>,
        release: Release,
    ) {
        let sessions = &self.sessions;
        let snap = sessions.snapshot();
        let Some(mut e) = e else {
            sessions.table.lock().pending.remove(&key);
            return;
        };
        let mut t = sessions.table.lock();
        t.pending.remove(&key);
        let parked = t.parked.remove(&key);
        let mut id = id_for(&key);
        while t.by_id.get(&id).is_some_and(|l| l.key != key) {
            id = (id + 1) & ID_MASK;
        }
        if let Some(old) = t.by_id.remove(&id) {
            // Re-admitted while still live (a path change raced it): its
            // old meters go back to the pools.
            t.by_key.remove(&old.key);
            self.free_meters(&old.hops);
            self.remove_legs(id, &old.legs);
        }
        {
            let mut pools = sessions.meters.lock();
            for h in hops.iter_mut() {
                let pool = pools.entry(h.dpid).or_insert_with(|| {
                    MeterPool::new(self.switch(h.dpid).map_or(0, |s| max_meter(&s)))
                });
                h.meter_fwd = pool.alloc().unwrap_or(0);
                h.meter_rev = pool.alloc().unwrap_or(0);
            }
        }
        let now = Utc::now();
        let (override_tier, created_at) = parked
            .as_ref()
            .map_or((None, now), |p| (p.override_tier.clone(), p.created_at));
        if let Some(o) = override_tier.as_deref().filter(|o| snap.tier(o).is_some()) {
            e.reason = Reason::ManualOverride;
            e.tier = o.to_string();
        }
        // A session that was on hold when its path broke (or when the
        // controller restarted) comes back on hold. Not a SIP call: what
        // re-admits one is an INVITE, most likely a new call, and its own
        // SDP says whether it is held.
        let offer = t.offers.remove(&key);
        let held = match parked
            .as_ref()
            .filter(|p| p.state == SessionState::Hold && key.l4.is_some())
        {
            Some(p) => Some((
                HoldCause::from_reason(&p.state_reason),
                p.state_reason.clone(),
            )),
            // A re-INVITE putting a call on hold can be what (re-)admits
            // it (the controller restarted meanwhile).
            None => offer
                .as_ref()
                .and_then(|o| o.1.hold_cause())
                .map(|c| (HoldCause::Sip, format!("sip INVITE {c}"))),
        };
        let mut hold = HoldTrack::new();
        let (state, state_reason) = match held {
            Some((by, why)) => {
                hold.by = Some(by);
                hold.before = Some(e.reason);
                if e.reason != Reason::ManualOverride {
                    e.reason = Reason::Hold;
                }
                (SessionState::Hold, why)
            }
            None => (SessionState::Active, String::new()),
        };
        let view = Session {
            id: format_id(id),
            service: service.to_string(),
            client_ip: IpAddr::V4(key.client),
            server_ip: IpAddr::V4(key.server),
            state,
            tier: e.tier.clone(),
            override_tier,
            customer_id: e.customer_id.clone(),
            explanation: e,
            path: hops.iter().map(|h| format!("{:016x}", h.dpid)).collect(),
            state_reason,
            measured_kbps: None,
            created_at,
            updated_at: now,
        };
        let live = Live {
            key,
            hops,
            view,
            hold,
            media: offer
                .as_ref()
                .map(|o| endpoints_v4(&o.1))
                .unwrap_or_default(),
            offer,
            legs: SmallVec::new(),
        };
        let Some(tier) = snap.tier(&live.view.tier).cloned() else {
            self.free_meters(&live.hops);
            return;
        };
        info!(
            "session {} admitted: {} -> {} {} tier {} ({}): {}",
            live.view.id,
            key.client,
            key.server,
            service,
            tier.name,
            reason_name(live.view.explanation.reason),
            live.view.explanation.detail
        );
        self.stats.sessions_admitted.inc();
        self.sessions.persist(&live.view);
        let installed = self.install(&live, &tier, Some(release));
        t.by_key.insert(key, id);
        t.by_id.insert(id, Box::new(live));
        drop(t);
        if !installed {
            debug!("session admitted without every switch of its path connected");
        }
    }

    /// Sends a session's meters and flows to every switch of its path,
    /// egress first, each switch's batch closed by a barrier; `release` is
    /// sent when every barrier is back. False if a switch was missing.
    fn install(&self, live: &Live, tier: &Tier, release: Option<Release>) -> bool {
        let setup = release.and_then(|r| {
            self.forwarding
                .begin_setup(self, r.sw, r.data, r.in_port, r.out_port)
        });
        let mut sent = 0u32;
        let mut all = true;
        for i in (0..live.hops.len()).rev() {
            let Some(sw) = live.hops.get(i).and_then(|h| self.switch(h.dpid)) else {
                all = false;
                continue;
            };
            let queued = sw.batch(|b| {
                self.push_session(b, &sw, live, i, tier, true);
                match setup {
                    Some((_, xid)) => b.push(xid, &Message::BarrierRequest),
                    None => true,
                }
            });
            if setup.is_some() {
                sent += u32::from(queued);
            }
        }
        if let Some((slot, _)) = setup {
            self.forwarding.arm_setup(self, slot, sent);
        }
        for leg in &live.legs {
            self.push_leg_all(live, leg, tier, true);
        }
        all
    }

    /// One media leg on every switch of its path (`fresh`: ADD, else
    /// MODIFY in place).
    fn push_leg_all(&self, live: &Live, leg: &MediaLeg, tier: &Tier, fresh: bool) {
        for i in 0..leg.hops.len() {
            let Some(sw) = leg.hops.get(i).and_then(|h| self.switch(h.dpid)) else {
                continue;
            };
            sw.batch(|b| self.push_leg(b, &sw, live, leg, i, tier, fresh));
        }
    }

    /// One switch's part of a media leg: its two meters and a flow per
    /// stream and direction.
    #[allow(clippy::too_many_arguments)]
    fn push_leg(
        &self,
        b: &mut crate::switch::Batch<'_>,
        sw: &Switch,
        live: &Live,
        leg: &MediaLeg,
        i: usize,
        tier: &Tier,
        fresh: bool,
    ) {
        let Some(hop) = leg.hops.get(i) else {
            return;
        };
        let last = leg.hops.len() - 1;
        let (rate, burst) = rate_of(tier, live.view.state);
        for m in [hop.meter_fwd, hop.meter_rev] {
            if m == 0 {
                continue;
            }
            if fresh {
                b.push(sw.next_xid(), &Message::MeterMod(qos::delete_meter(m)));
            }
            let cmd = if fresh {
                MeterModCommand::Add
            } else {
                MeterModCommand::Modify
            };
            b.push(
                sw.next_xid(),
                &Message::MeterMod(qos::meter(cmd, m, rate, burst)),
            );
        }
        let command = if fresh {
            FlowModCommand::Add
        } else {
            FlowModCommand::ModifyStrict
        };
        let id = parse_id(&live.view.id).unwrap_or(0);
        for (n, (a, z)) in leg.streams.iter().enumerate() {
            for (dir, meter, out_port, ingress, src, dst) in [
                (Dir::Fwd, hop.meter_fwd, hop.out_port, i == 0, a, z),
                (Dir::Rev, hop.meter_rev, hop.in_port, i == last, z, a),
            ] {
                let f = qos::media_flow(
                    &FlowSpec {
                        session: id,
                        key: &live.key,
                        tier,
                        dir,
                        meter: (meter != 0).then_some(meter),
                        out_port,
                        ingress,
                        // The caller side's RTP flow carries the leg's idle
                        // timeout, which ends the call (see
                        // `session_flow_removed`).
                        notify: i == 0 && n == 0 && dir == Dir::Fwd,
                        idle_timeout: self.sessions.idle_timeout,
                        command,
                    },
                    *src,
                    *dst,
                );
                b.push(sw.next_xid(), &f);
                self.stats.flow_mods_sent.inc();
            }
        }
    }

    /// Removes a call's media legs from their switches and frees their
    /// meters.
    fn remove_legs(&self, id: u64, legs: &[MediaLeg]) {
        for leg in legs {
            for h in &leg.hops {
                let Some(sw) = self.switch(h.dpid) else {
                    continue;
                };
                sw.batch(|b| {
                    b.push(
                        sw.next_xid(),
                        &cookie::delete(cookie::cookie(Kind::Media, id), cookie::EXACT),
                    );
                    for m in [h.meter_fwd, h.meter_rev] {
                        if m != 0 {
                            b.push(sw.next_xid(), &Message::MeterMod(qos::delete_meter(m)));
                        }
                    }
                });
            }
            self.free_meters(&leg.hops);
        }
    }

    /// One switch's part of a session: its two meters (replaced: a
    /// DELETE of a meter the switch lacks is harmless, an ADD of one it
    /// has is an error) and its two flows. `fresh` installs (ADD); else
    /// modifies in place (tier change, hold).
    fn push_session(
        &self,
        b: &mut crate::switch::Batch<'_>,
        sw: &Switch,
        live: &Live,
        i: usize,
        tier: &Tier,
        fresh: bool,
    ) {
        let Some(hop) = live.hops.get(i) else {
            return;
        };
        let last = live.hops.len() - 1;
        let (rate, burst) = rate_of(tier, live.view.state);
        let mut meter_mods = 0;
        for m in [hop.meter_fwd, hop.meter_rev] {
            if m == 0 {
                continue;
            }
            if fresh {
                b.push(sw.next_xid(), &Message::MeterMod(qos::delete_meter(m)));
                b.push(
                    sw.next_xid(),
                    &Message::MeterMod(qos::meter(MeterModCommand::Add, m, rate, burst)),
                );
                meter_mods += 2;
            } else {
                b.push(
                    sw.next_xid(),
                    &Message::MeterMod(qos::meter(MeterModCommand::Modify, m, rate, burst)),
                );
                meter_mods += 1;
            }
        }
        let command = if fresh {
            FlowModCommand::Add
        } else {
            FlowModCommand::ModifyStrict
        };
        let id = parse_id(&live.view.id).unwrap_or(0);
        for (dir, meter, out_port, ingress, notify) in [
            (Dir::Fwd, hop.meter_fwd, hop.out_port, i == 0, i == 0),
            (Dir::Rev, hop.meter_rev, hop.in_port, i == last, false),
        ] {
            let f = qos::session_flow(&FlowSpec {
                session: id,
                key: &live.key,
                tier,
                dir,
                meter: (meter != 0).then_some(meter),
                out_port,
                ingress,
                notify,
                idle_timeout: self.sessions.idle_timeout,
                command,
            });
            b.push(sw.next_xid(), &f);
        }
        self.stats.meter_mods_sent.add(meter_mods);
        self.stats.flow_mods_sent.add(2);
    }

    fn free_meters(&self, hops: &[SessionHop]) {
        let mut pools = self.sessions.meters.lock();
        for h in hops {
            if let Some(p) = pools.get_mut(&h.dpid) {
                p.release(h.meter_fwd);
                p.release(h.meter_rev);
            }
        }
    }

    /// Puts a live session's flows back on its whole path.
    fn reinstall_session(&self, key: &SessionKey, release: Option<Release>) {
        let snap = self.sessions.snapshot();
        let t = self.sessions.table.lock();
        let Some(l) = t.by_key.get(key).and_then(|id| t.by_id.get(id)) else {
            return;
        };
        let Some(tier) = snap.tier(&l.view.tier) else {
            return;
        };
        self.stats.sessions_reinstalled.inc();
        self.install(l, tier, release);
    }

    /// Ends a session: its flows and meters leave every switch, its meter
    /// ids return to the pools, Redis keeps its record for a while.
    pub fn end_session(&self, id: &str, why: &str) -> bool {
        let Some(n) = parse_id(id) else {
            return false;
        };
        let live = {
            let mut t = self.sessions.table.lock();
            let Some(l) = t.by_id.remove(&n) else {
                return false;
            };
            t.by_key.remove(&l.key);
            l
        };
        self.remove_from_switches(n, &live.hops);
        self.free_meters(&live.hops);
        self.remove_legs(n, &live.legs);
        self.stats.sessions_ended.inc();
        info!("session {} ended: {why}", live.view.id);
        let mut view = live.view;
        view.state = SessionState::Ended;
        view.state_reason = why.to_owned();
        view.updated_at = Utc::now();
        self.sessions.persist(&view);
        self.sessions.ended.lock().push(view);
        true
    }

    fn remove_from_switches(&self, id: u64, hops: &[SessionHop]) {
        for h in hops {
            let Some(sw) = self.switch(h.dpid) else {
                continue;
            };
            sw.batch(|b| {
                b.push(
                    sw.next_xid(),
                    &cookie::delete(cookie::cookie(Kind::Session, id), cookie::EXACT),
                );
                for m in [h.meter_fwd, h.meter_rev] {
                    if m != 0 {
                        b.push(sw.next_xid(), &Message::MeterMod(qos::delete_meter(m)));
                    }
                }
            });
        }
    }

    /// A session's flow (`media`: a media leg's) left a switch on timeout.
    /// One flow per session reports: the client side's flow of the IP
    /// pair, or, for a call whose media goes elsewhere (its IP pair then
    /// carries nothing, the signalling comes to the controller), the
    /// caller side's RTP flow of its first leg. Its idle timeout ends the
    /// session.
    pub(crate) fn session_flow_removed(
        &self,
        dpid: u64,
        id: u64,
        media: bool,
        reason: openflow::FlowRemovedReason,
    ) {
        use openflow::FlowRemovedReason as R;
        if !matches!(reason, R::IdleTimeout | R::HardTimeout) {
            return;
        }
        let ours = {
            let t = self.sessions.table.lock();
            t.by_id.get(&id).is_some_and(|l| {
                let reporter = match l.legs.first() {
                    Some(g) => media.then(|| g.hops.first()).flatten(),
                    None => (!media).then(|| l.hops.first()).flatten(),
                };
                reporter.is_some_and(|h| h.dpid == dpid)
            })
        };
        if ours {
            let why = if media { "idle media leg" } else { "idle" };
            self.end_session(&format_id(id), why);
        }
    }

    /// Moves a live session to `tier` (upgrade, downgrade, the tier was
    /// edited, hold/resume): meters modified and flows rewritten in place,
    /// never removed, so no packet of the session goes untiered.
    fn retier(&self, l: &mut Live, tier: &Tier) {
        l.view.tier = tier.name.clone();
        l.view.updated_at = Utc::now();
        for i in 0..l.hops.len() {
            let Some(sw) = l.hops.get(i).and_then(|h| self.switch(h.dpid)) else {
                continue;
            };
            sw.batch(|b| self.push_session(b, &sw, l, i, tier, false));
        }
        for leg in &l.legs {
            self.push_leg_all(l, leg, tier, false);
        }
        self.stats.sessions_retiered.inc();
        self.sessions.persist(&l.view);
    }

    /// Applies `f` to a live session's view and re-tiers it to the tier
    /// the view then names. NotFound when there is no such session.
    pub fn update_session(
        &self,
        id: &str,
        f: impl FnOnce(&mut Session),
    ) -> Result<Session, SessionError> {
        self.update_live(id, |s, _| f(s))
    }

    /// `update_session` with the hold bookkeeping at hand too.
    fn update_live(
        &self,
        id: &str,
        f: impl FnOnce(&mut Session, &mut HoldTrack),
    ) -> Result<Session, SessionError> {
        let n = parse_id(id).ok_or(SessionError::NotFound)?;
        let snap = self.sessions.snapshot();
        let mut t = self.sessions.table.lock();
        let l = t.by_id.get_mut(&n).ok_or(SessionError::NotFound)?;
        let mut view = l.view.clone();
        let mut hold = l.hold;
        f(&mut view, &mut hold);
        let tier = snap
            .tier(&view.tier)
            .cloned()
            .ok_or_else(|| SessionError::UnknownTier(view.tier.clone()))?;
        if view.tier != l.view.tier {
            info!(
                "session {} re-tiered: {} -> {} ({}): {}",
                view.id,
                l.view.tier,
                view.tier,
                reason_name(view.explanation.reason),
                view.explanation.detail
            );
        }
        l.view = view;
        l.hold = hold;
        self.retier(l, &tier);
        Ok(l.view.clone())
    }

    /// Puts a live session on hold (`hold`) or resumes it: its meters on
    /// every switch of its path move to the tier's hold rate or back, in
    /// place. `why` becomes the session's `state_reason`. On hold the
    /// explanation's reason says `hold` (unless a manual override is in
    /// force); resuming restores the reason it had before.
    pub fn set_hold(
        &self,
        id: &str,
        hold: bool,
        cause: HoldCause,
        why: &str,
    ) -> Result<Session, SessionError> {
        let n = parse_id(id).ok_or(SessionError::NotFound)?;
        let snap = self.sessions.snapshot();
        let mut t = self.sessions.table.lock();
        let l = t.by_id.get_mut(&n).ok_or(SessionError::NotFound)?;
        let tier = snap
            .tier(&l.view.tier)
            .cloned()
            .ok_or_else(|| SessionError::UnknownTier(l.view.tier.clone()))?;
        let was = l.view.state == SessionState::Hold;
        let v = &mut l.view;
        if hold {
            if !was {
                l.hold.before = Some(v.explanation.reason);
            }
            if v.override_tier.is_none() {
                v.explanation.reason = Reason::Hold;
            }
            v.state = SessionState::Hold;
            l.hold.by = Some(cause);
        } else {
            if v.explanation.reason == Reason::Hold {
                v.explanation.reason = l.hold.before.unwrap_or(if v.customer_id.is_some() {
                    Reason::Automatic
                } else {
                    Reason::Default
                });
            }
            l.hold.before = None;
            v.state = SessionState::Active;
            l.hold.by = None;
        }
        v.state_reason = why.to_string();
        v.updated_at = Utc::now();
        if was == hold {
            self.sessions.persist(&l.view);
            return Ok(l.view.clone());
        }
        l.hold.since = std::time::Instant::now();
        let ci = HoldCause::ALL.iter().position(|c| *c == cause).unwrap_or(0);
        if let Some(c) = self
            .sessions
            .transitions
            .get(ci)
            .and_then(|c| c.get(usize::from(!hold)))
        {
            c.inc();
        }
        info!(
            "session {} {}: {why} (meters at {} kb/s)",
            l.view.id,
            if hold { "on hold" } else { "resumed" },
            rate_of(&tier, l.view.state).0
        );
        self.retier(l, &tier);
        Ok(l.view.clone())
    }

    /// Re-scores a live session from its (possibly enriched) client data;
    /// a manual override still wins.
    pub async fn rescore(
        &self,
        id: &str,
        more: Option<ClientData>,
    ) -> Result<Session, SessionError> {
        let mut inputs = self
            .sessions
            .get(id)
            .ok_or(SessionError::NotFound)?
            .explanation
            .inputs;
        if let Some(mut m) = more {
            // Where the client is stays what the network saw.
            m.ip = inputs.ip;
            m.mac = inputs.mac.take();
            keep_gathered(&mut m, &inputs);
            inputs = m;
        }
        let lookup = self.lookup(&inputs).await;
        let snap = self.sessions.snapshot();
        let e = self
            .decide(&snap, &inputs, &lookup)
            .ok_or_else(|| SessionError::UnknownTier(snap.policy.default_tier.clone()))?;
        self.update_live(id, move |s, hold| {
            s.customer_id = e.customer_id.clone();
            s.tier = s.override_tier.clone().unwrap_or_else(|| e.tier.clone());
            let mut e = e;
            if s.override_tier.is_some() {
                e.reason = Reason::ManualOverride;
            }
            // A held call stays held: the new reason is what resuming
            // restores.
            if s.state == SessionState::Hold {
                hold.before = Some(e.reason);
                if s.override_tier.is_none() {
                    e.reason = Reason::Hold;
                }
            }
            s.explanation = e;
        })
    }

    /// Re-tiers every live session whose tier is `name` (the tier was
    /// edited: new rate, DSCP or queue).
    pub fn tier_changed(&self, name: &str) {
        let snap = self.sessions.snapshot();
        let Some(tier) = snap.tier(name).cloned() else {
            return;
        };
        let mut t = self.sessions.table.lock();
        for l in t.by_id.values_mut().filter(|l| l.view.tier == name) {
            self.retier(l, &tier);
        }
    }

    /// Live session ids, for re-scoring after a customer or policy change.
    pub fn session_ids(&self) -> Vec<String> {
        self.sessions
            .table
            .lock()
            .by_id
            .values()
            .map(|l| l.view.id.clone())
            .collect()
    }

    /// A switch finished connecting (meter features known): its meter pool
    /// learns the ceiling, the service flows go in, and every live session
    /// crossing it gets its meters and flows back (OVS drops meters when
    /// its controller changes; our flows were wiped on connect).
    pub fn sessions_switch_ready(self: &Arc<Self>, sw: &Arc<Switch>) {
        self.sync_queues(Some(sw.dpid));
        let max = max_meter(sw);
        self.sessions
            .meters
            .lock()
            .entry(sw.dpid)
            .or_insert_with(|| MeterPool::new(max))
            .set_max(max);
        self.install_service_flows(sw);
        let snap = self.sessions.snapshot();
        let t = self.sessions.table.lock();
        let mut n = 0;
        for l in t.by_id.values() {
            let Some(tier) = snap.tier(&l.view.tier) else {
                continue;
            };
            for leg in &l.legs {
                if let Some(i) = leg.hops.iter().position(|h| h.dpid == sw.dpid) {
                    sw.batch(|b| self.push_leg(b, sw, l, leg, i, tier, true));
                }
            }
            let Some(i) = l.hops.iter().position(|h| h.dpid == sw.dpid) else {
                continue;
            };
            sw.batch(|b| self.push_session(b, sw, l, i, tier, true));
            n += 1;
        }
        drop(t);
        if n > 0 {
            self.stats.sessions_reinstalled.add(n);
            info!(
                dpid = format_args!("{:016x}", sw.dpid),
                "put back {n} sessions"
            );
        }
    }

    /// The service catch flows (first packet towards a service goes to the
    /// controller) and the SIP signalling flows, replacing earlier ones.
    pub fn install_service_flows(&self, sw: &Switch) {
        let snap = self.sessions.snapshot();
        let services = self.sessions.services(&snap);
        sw.batch(|b| {
            b.push(
                sw.next_xid(),
                &cookie::delete(cookie::cookie(Kind::Service, 0), cookie::KIND_MASK),
            );
            for (i, s) in services.iter().enumerate() {
                for f in crate::control::service_flows(
                    i as u64,
                    s.net,
                    s.proto,
                    s.port,
                    s.kind == ServiceKind::Sip,
                ) {
                    b.push(sw.next_xid(), &f);
                }
            }
        });
    }

    /// Services changed: every switch gets the new catch flows.
    pub fn services_changed(&self) {
        for sw in self.switches() {
            self.install_service_flows(&sw);
        }
    }

    /// Sessions whose path crossed a link that went away (both ends still
    /// connected: a real link failure, not a switch reconnecting) leave
    /// their switches and are parked; their next packet re-admits them on
    /// a new path with the same id.
    pub(crate) fn sessions_topology_changed(&self, change: &Change) {
        if change.links_removed.is_empty() {
            return;
        }
        let broken: SmallVec<[PortRef; 8]> = change
            .links_removed
            .iter()
            .filter(|(a, b)| self.switch(a.0).is_some() && self.switch(b.0).is_some())
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        if broken.is_empty() {
            return;
        }
        let moved: Vec<(u64, Box<Live>)> = {
            let mut t = self.sessions.table.lock();
            let ids: Vec<u64> = t
                .by_id
                .iter()
                .filter(|(_, l)| {
                    l.hops.iter().any(|h| {
                        broken.contains(&(h.dpid, h.out_port))
                            || broken.contains(&(h.dpid, h.in_port))
                    })
                })
                .map(|(id, _)| *id)
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(l) = t.by_id.remove(&id) {
                    t.by_key.remove(&l.key);
                    t.parked.insert(l.key, l.view.clone());
                    out.push((id, l));
                }
            }
            out
        };
        for (id, l) in &moved {
            self.remove_from_switches(*id, &l.hops);
            self.free_meters(&l.hops);
            self.remove_legs(*id, &l.legs);
        }
        if !moved.is_empty() {
            info!(
                "{} sessions lost their path; re-admitted on their next packet",
                moved.len()
            );
        }
        // Media legs whose path broke (their call's own path did not):
        // the call's legs are taken down (one cookie covers them all on a
        // switch) and set up again on the current shortest paths.
        let crosses = |hops: &[SessionHop]| {
            hops.iter().any(|h| {
                broken.contains(&(h.dpid, h.out_port)) || broken.contains(&(h.dpid, h.in_port))
            })
        };
        let rerouted: Vec<(u64, SessionKey, Vec<MediaLeg>)> = {
            let mut t = self.sessions.table.lock();
            t.by_id
                .iter_mut()
                .filter(|(_, l)| l.legs.iter().any(|g| crosses(&g.hops)))
                .map(|(id, l)| (*id, l.key, l.legs.drain(..).collect()))
                .collect()
        };
        for (id, key, gone) in rerouted {
            self.remove_legs(id, &gone);
            for g in gone {
                self.add_leg(id, &key, g.streams);
            }
        }
    }

    /// Sessions Redis remembers from before a restart: parked, so their
    /// next packet re-admits them with the same id and override.
    pub fn park_remembered(&self, sessions: Vec<Session>) {
        let snap = self.sessions.snapshot();
        let mut t = self.sessions.table.lock();
        for s in sessions {
            let (IpAddr::V4(client), IpAddr::V4(server)) = (s.client_ip, s.server_ip) else {
                continue;
            };
            let l4 = snap
                .services
                .iter()
                .find(|x| x.name == s.service)
                .and_then(|x| (x.kind != ServiceKind::Sip).then_some((x.proto.ip_proto(), x.port)));
            t.parked.insert(SessionKey { client, server, l4 }, s);
        }
    }

    /// SIP signalling: relayed by the controller to where its destination
    /// attaches (the signalling flows send it here, above the tier flows);
    /// an INVITE from a caller without a session is a session request,
    /// scored on the caller's number and promotion code; BYE and CANCEL
    /// end the call's session.
    #[allow(clippy::too_many_arguments)]
    fn sip_packet(
        self: &Arc<Self>,
        sw: &Arc<Switch>,
        frame: &Bytes,
        data: &[u8],
        in_port: u32,
        macs: (MacAddr, MacAddr),
        on_link: bool,
        dst_at: Option<PortRef>,
        p: &Ip4<'_>,
        svc: &Svc,
    ) {
        let to_server = svc.net.contains(&p.dst) && p.dport == svc.port;
        let msg = match sip::parse(p.payload, &self.sessions.default_country) {
            Ok(m) => Some(m),
            Err(e) => {
                self.stats.sip_unparsed.inc();
                debug!(
                    "SIP datagram {}:{} -> {}:{} not parsed: {e}",
                    p.src, p.sport, p.dst, p.dport
                );
                None
            }
        };
        let (client, server) = if to_server {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        let key = SessionKey {
            client,
            server,
            l4: None,
        };
        if let Some(SipMessage::Response(resp)) = &msg
            && !on_link
            && (200..300).contains(&resp.status)
            && let Some(sdp) = &resp.sdp
        {
            // The answer to an INVITE or UPDATE: the other side's media.
            self.learn_media(&key, sdp, resp.call_id.as_deref(), true);
        }
        if let Some(SipMessage::Request(r)) = &msg {
            match r.method.as_str() {
                // A re-INVITE or UPDATE on a live call, from either side
                // (an agent holds as often as a caller does).
                "INVITE" | "UPDATE" if !on_link && self.sip_live(&key).is_some() => {
                    self.sip_offer(&key, r, to_server);
                }
                "INVITE" if to_server && !on_link => {
                    if let Some(sdp) = &r.sdp {
                        let mut t = self.sessions.table.lock();
                        if t.offers.len() >= OFFERS_KEPT {
                            t.offers.clear();
                        }
                        t.offers.insert(
                            key,
                            (r.call_id.as_deref().map(Box::from), Box::new(sdp.clone())),
                        );
                    }
                    let live = self.sessions.table.lock().by_key.contains_key(&key);
                    if !live {
                        let client_data = ClientData {
                            ip: Some(IpAddr::V4(p.src)),
                            mac: Some(macs.0.to_string()),
                            phone: r.caller.clone(),
                            promo_code: r.promo_code.clone().filter(|c| !c.is_empty()),
                            account_id: None,
                            source: Some("sip".into()),
                        };
                        if let Some(at) = dst_at
                            && self.session_request(
                                sw,
                                frame,
                                data,
                                in_port,
                                on_link,
                                dst_at,
                                key,
                                svc,
                                client_data,
                                Some(at),
                            )
                        {
                            self.stats.sip_relayed.inc();
                            return;
                        }
                    }
                }
                "BYE" | "CANCEL" => {
                    let id = self.sessions.table.lock().by_key.get(&key).copied();
                    if let Some(id) = id {
                        self.end_session(&format_id(id), &format!("SIP {}", r.method));
                    }
                }
                _ => {}
            }
        }
        self.relay(sw, in_port, data, dst_at);
    }

    fn sip_live(&self, key: &SessionKey) -> Option<u64> {
        self.sessions.table.lock().by_key.get(key).copied()
    }

    /// An SDP offer in a re-INVITE or UPDATE on a live call: `sendonly`,
    /// `inactive` or `c=0.0.0.0` puts it on hold; `sendrecv` (or no
    /// direction) resumes a hold that SIP or idle media set. A hold set
    /// through CTI is left to CTI to end: a session-refresh re-INVITE
    /// repeats the call's `sendrecv` SDP and must not undo it. An offer
    /// whose SDP cannot be read changes nothing.
    fn sip_offer(&self, key: &SessionKey, r: &sip::SipRequest, to_server: bool) {
        let Some(id) = self.sip_live(key) else {
            return;
        };
        let sid = format_id(id);
        let side = if to_server { "caller" } else { "callee" };
        let what = if r.method == "INVITE" {
            "re-INVITE"
        } else {
            "UPDATE"
        };
        if let Some(e) = &r.sdp_error {
            warn!(
                "session {sid}: SIP {what} from the {side} with unreadable SDP, hold state unchanged: {e}"
            );
            return;
        }
        let Some(sdp) = &r.sdp else {
            // No offer (a refresh, or an offer to come in the ACK).
            return;
        };
        self.learn_media(key, sdp, r.call_id.as_deref(), false);
        let (state, by) = {
            let t = self.sessions.table.lock();
            match t.by_id.get(&id) {
                Some(l) => (l.view.state, l.hold.by),
                None => return,
            }
        };
        let r = match sdp.hold_cause() {
            Some(c) => self.set_hold(&sid, true, HoldCause::Sip, &format!("sip {what} {c}")),
            None if state == SessionState::Hold && by != Some(HoldCause::Cti) => {
                self.set_hold(&sid, false, HoldCause::Sip, &format!("sip {what} sendrecv"))
            }
            None => return,
        };
        if let Err(e) = r {
            warn!("session {sid}: SIP {what} not applied: {e}");
        }
    }

    /// Records a call's media endpoints from an SDP offer or answer, and
    /// once an answer pairs with its offer, gives the media streams that
    /// run between other addresses than the call's own their flows.
    ///
    /// Media between the caller's and the server's own addresses (the
    /// usual case: the phone and the agent's endpoint send RTP from the
    /// addresses they signal from) is carried by the call's IP-pair tier
    /// flows already, whatever the ports, so nothing more is installed for
    /// it. Media to a third address (a media gateway, an agent's phone
    /// behind the SIP server) gets a media leg: flows for its RTP and RTCP
    /// ports and a meter per direction on every switch between the two
    /// endpoints, at the call's tier and state.
    fn learn_media(&self, key: &SessionKey, sdp: &sip::Sdp, call_id: Option<&str>, answer: bool) {
        let eps = endpoints_v4(sdp);
        let (id, offer) = {
            let mut t = self.sessions.table.lock();
            let Some(id) = t.by_key.get(key).copied() else {
                return;
            };
            let Some(l) = t.by_id.get_mut(&id) else {
                return;
            };
            for ep in eps {
                // 0.0.0.0 is the old way of saying hold, not an endpoint.
                if l.media.contains(&ep) || ep.ip().is_unspecified() {
                    continue;
                }
                debug!("session {}: media endpoint {ep}", l.view.id);
                if l.media.len() < 8 {
                    l.media.push(ep);
                }
            }
            if !answer {
                l.offer = Some((call_id.map(Box::from), Box::new(sdp.clone())));
                return;
            }
            // The answer to this call's offer (the caller and the server
            // may have other calls between them).
            if l.offer.as_ref().is_none_or(|o| o.0.as_deref() != call_id) {
                return;
            }
            let Some((_, offer)) = l.offer.take() else {
                return;
            };
            (id, offer)
        };
        for streams in uncovered_streams(key, &offer, sdp) {
            self.add_leg(id, key, streams);
        }
    }

    /// Gives a call a media leg for `streams` on the current shortest path
    /// between their endpoints (unless it has it already).
    fn add_leg(&self, id: u64, key: &SessionKey, streams: Streams) {
        let Some(&(a, z)) = streams.first() else {
            return;
        };
        let ends = {
            let topo = self.topology.lock();
            let at = |ip: Ipv4Addr| {
                topo.hosts()
                    .find(|h| h.ips.contains(&IpAddr::V4(ip)))
                    .map(|h| h.at)
            };
            (at(*a.ip()), at(*z.ip()))
        };
        let (Some(a_at), Some(z_at)) = ends else {
            info!(
                "{}: media {a} <-> {z} not tiered: where {} attaches is not known yet",
                format_id(id),
                if ends.0.is_none() { a.ip() } else { z.ip() }
            );
            return;
        };
        let Some(mut hops) = self.session_hops(a_at, z_at) else {
            info!("{}: media {a} <-> {z} not tiered: no path", format_id(id));
            return;
        };
        let snap = self.sessions.snapshot();
        let mut t = self.sessions.table.lock();
        let Some(l) = t.by_id.get_mut(&id).filter(|l| l.key == *key) else {
            return;
        };
        if l.legs.len() >= MAX_LEGS || l.legs.iter().any(|g| g.streams == streams) {
            return;
        }
        let Some(tier) = snap.tier(&l.view.tier) else {
            return;
        };
        {
            let mut pools = self.sessions.meters.lock();
            for h in hops.iter_mut() {
                let pool = pools.entry(h.dpid).or_insert_with(|| {
                    MeterPool::new(self.switch(h.dpid).map_or(0, |s| max_meter(&s)))
                });
                h.meter_fwd = pool.alloc().unwrap_or(0);
                h.meter_rev = pool.alloc().unwrap_or(0);
            }
        }
        let leg = MediaLeg { streams, hops };
        self.push_leg_all(l, &leg, tier, true);
        info!(
            "session {}: media leg {a} <-> {z} on {} switches, tier {}",
            l.view.id,
            leg.hops.len(),
            tier.name
        );
        l.legs.push(leg);
    }

    /// RTP endpoints learnt from a live call's SDP offers and answers.
    pub fn session_media(&self, id: &str) -> Vec<SocketAddrV4> {
        let Some(n) = parse_id(id) else {
            return Vec::new();
        };
        let t = self.sessions.table.lock();
        t.by_id.get(&n).map_or_else(Vec::new, |l| l.media.to_vec())
    }

    /// Delivers a frame to the edge port its destination attaches to, or
    /// floods it to every edge port when the destination is not known yet.
    fn relay(&self, sw: &Switch, in_port: u32, data: &[u8], dst_at: Option<PortRef>) {
        self.stats.sip_relayed.inc();
        match dst_at.and_then(|at| self.switch(at.0).map(|s| (s, at.1))) {
            Some((dsw, port)) => {
                let in_port = if dsw.dpid == sw.dpid {
                    in_port
                } else {
                    PortNo::Controller.value()
                };
                self.packet_out(&dsw, in_port, port, data);
            }
            None => {
                self.flood(sw.dpid, in_port, data, std::time::Instant::now());
            }
        }
    }
}

/// Why a session operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no such session")]
    NotFound,
    #[error("no tier named {0:?}")]
    UnknownTier(String),
}

/// Fills what `client` lacks of the data gathered about it before
/// (`was`): newer data wins, nothing gathered is forgotten.
fn keep_gathered(client: &mut ClientData, was: &ClientData) {
    let keep = |now: &mut Option<String>, then: &Option<String>| {
        if now.is_none() {
            now.clone_from(then);
        }
    };
    keep(&mut client.phone, &was.phone);
    keep(&mut client.promo_code, &was.promo_code);
    keep(&mut client.account_id, &was.account_id);
    keep(&mut client.source, &was.source);
}

/// A parked session as the API shows it: its last view, with why it has
/// no flows right now.
fn parked_view(s: &Session) -> Session {
    let mut s = s.clone();
    s.path.clear();
    s.state_reason = if s.state_reason.is_empty() {
        "parked: no path now; its next packet re-admits it".into()
    } else {
        format!(
            "{}; parked: no path now, its next packet re-admits it",
            s.state_reason
        )
    };
    s
}

fn reason_name(r: Reason) -> &'static str {
    match r {
        Reason::Automatic => "automatic",
        Reason::Promotion => "promotion",
        Reason::Default => "default",
        Reason::ManualOverride => "manual_override",
        Reason::Hold => "hold",
    }
}

fn kind_name(k: ServiceKind) -> &'static str {
    match k {
        ServiceKind::Sip => "sip",
        ServiceKind::Web => "web",
        ServiceKind::Other => "other",
    }
}

/// The meter rate and burst a session's state calls for. On hold the
/// burst shrinks with the rate, so a held call's bandwidth falls to the
/// hold rate within a second rather than after a tier-sized burst.
fn rate_of(tier: &Tier, state: SessionState) -> (u32, u32) {
    match state {
        SessionState::Hold => (
            tier.hold_rate_kbps,
            tier.burst_kbits.min(tier.hold_rate_kbps.max(16)),
        ),
        _ => (tier.rate_kbps, tier.burst_kbits),
    }
}

/// Most media legs one call gets (re-INVITEs may move its media).
const MAX_LEGS: usize = 4;

/// Streams a caller and the other side stream between: `(caller's side,
/// far side)`.
type Streams = SmallVec<[(SocketAddrV4, SocketAddrV4); 2]>;

/// The media streams an SDP offer and its answer set up (m= lines pair up
/// in order, RFC 3264 §6) that the call's IP-pair flows do not carry:
/// one entry per m= line pair, RTP first, then RTCP when it has ports of
/// its own; the caller's side first in each stream.
fn uncovered_streams(key: &SessionKey, offer: &sip::Sdp, answer: &sip::Sdp) -> Vec<Streams> {
    let mut out = Vec::new();
    for (o, a) in offer.media.iter().zip(&answer.media) {
        if o.port == 0 || a.port == 0 {
            continue;
        }
        let (Some(IpAddr::V4(oi)), Some(IpAddr::V4(ai))) = (
            o.connection.or(offer.connection),
            a.connection.or(answer.connection),
        ) else {
            continue;
        };
        if oi.is_unspecified() || ai.is_unspecified() || oi == ai {
            continue;
        }
        if (oi == key.client && ai == key.server) || (oi == key.server && ai == key.client) {
            continue;
        }
        let (x, y) = if ai == key.client { (a, o) } else { (o, a) };
        let (xi, yi) = if ai == key.client { (ai, oi) } else { (oi, ai) };
        let mut streams = Streams::new();
        streams.push((SocketAddrV4::new(xi, x.port), SocketAddrV4::new(yi, y.port)));
        if let (Some(xr), Some(yr)) = (x.effective_rtcp_port(), y.effective_rtcp_port())
            && (xr, yr) != (x.port, y.port)
        {
            streams.push((SocketAddrV4::new(xi, xr), SocketAddrV4::new(yi, yr)));
        }
        out.push(streams);
    }
    out
}

/// The IPv4 RTP endpoints of an SDP description (RTCP is each port + 1,
/// or as `a=rtcp` says; the IP-pair flows carry both).
fn endpoints_v4(sdp: &sip::Sdp) -> SmallVec<[SocketAddrV4; 4]> {
    sdp.media_endpoints()
        .into_iter()
        .filter_map(|(ip, port)| match ip {
            IpAddr::V4(v4) => Some(SocketAddrV4::new(v4, port)),
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn max_meter(sw: &Switch) -> u32 {
    sw.info.read().meter_features.as_ref().map_or(0, |m| {
        // DROP bands are what tiers use; a switch without them gets the
        // tier's DSCP and queue but no meter.
        if m.band_types & (1 << openflow::MeterBandType::Drop.value()) != 0 {
            m.max_meter
        } else {
            0
        }
    })
}

impl Sessions {
    fn persist(&self, s: &Session) {
        self.writer.dirty.lock().insert(s.id.clone(), s.clone());
        self.writer.wake.notify_one();
    }

    /// Writes dirty sessions to Redis until `shutdown`; failed writes stay
    /// dirty and are retried every second (a newer write of the same
    /// session supersedes them).
    pub async fn run_writer(
        &self,
        stats: &crate::stats::Stats,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = self.writer.wake.notified() => false,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            };
            // Taken, not drained: a drained map keeps the capacity of its
            // largest backlog (a burst of 100k admissions left ~78 MB of
            // empty buckets behind for good).
            let batch = std::mem::take(&mut *self.writer.dirty.lock());
            let mut failed = Vec::new();
            for (id, s) in batch {
                // After one failure the rest wait for the next round rather
                // than each waiting out the store's timeout.
                if !failed.is_empty() {
                    failed.push((id, s));
                    continue;
                }
                if let Err(e) = self.crm.store.put_session(&s).await {
                    stats.redis_errors.inc();
                    debug!("session {id} not written to Redis yet: {e}");
                    failed.push((id, s));
                }
            }
            if !failed.is_empty() {
                let mut d = self.writer.dirty.lock();
                for (id, s) in failed {
                    d.entry(id).or_insert(s);
                }
            }
            if stop {
                break;
            }
        }
    }
}

impl ControlPlane {
    /// Writes sessions to Redis until shutdown (see `Sessions::run_writer`).
    pub async fn sessions_writer(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        self.sessions.run_writer(&self.stats, shutdown).await;
    }

    /// The CRM changed (through the API, `crm load`, or another
    /// controller): the live network follows.
    pub async fn crm_changed(self: &Arc<Self>, kind: crate::crm::ChangeKind, name: &str) {
        use crate::crm::ChangeKind as K;
        match kind {
            K::Tier => {
                self.tier_changed(name);
                self.sync_queues(None);
            }
            K::Service => self.services_changed(),
            // A promotion change counts for new decisions only.
            K::Promotion => {}
            K::Customer | K::Policy => self.rescore_all().await,
            K::Everything => {
                let snap = self.sessions.snapshot();
                for t in &snap.tiers {
                    self.tier_changed(&t.name);
                }
                self.sync_queues(None);
                self.services_changed();
                self.rescore_all().await;
            }
        }
    }

    async fn rescore_all(&self) {
        for id in self.session_ids() {
            if let Err(e) = self.rescore(&id, None).await {
                debug!("session {id} not re-scored: {e}");
            }
        }
    }

    /// Puts the tiers' queues on the ports of `dpid` (or of every connected
    /// switch) through OVSDB, off the caller's task.
    pub fn sync_queues(self: &Arc<Self>, dpid: Option<u64>) {
        let snap = self.sessions.snapshot();
        let mut specs: Vec<crate::ovsdb::QueueSpec> = Vec::new();
        // Queue 0 is every port's default queue: traffic outside the tiers
        // uses it, and so does all traffic on the userspace datapath, which
        // ignores set_queue. Shaping it would cap everything at one tier's
        // rate, so a tier on queue 0 (best effort) leaves it unshaped.
        for t in snap.tiers.iter().filter(|t| t.queue_id != 0) {
            // Tiers sharing a queue share its row: the largest rates win.
            match specs.iter_mut().find(|q| q.queue_id == t.queue_id) {
                Some(q) => {
                    q.min_kbps = q.min_kbps.max(t.queue_min_kbps);
                    q.max_kbps = q.max_kbps.max(t.rate_kbps);
                }
                None => specs.push(crate::ovsdb::QueueSpec {
                    queue_id: t.queue_id,
                    min_kbps: t.queue_min_kbps,
                    max_kbps: t.rate_kbps,
                    dscp: None,
                }),
            }
        }
        // A switch connecting to a CRM without shaped tiers needs nothing;
        // after a tier change, no shaped tier left means clear our QoS
        // (apply_queues with nothing does).
        if specs.is_empty() && dpid.is_some() {
            return;
        }
        let dpids: Vec<u64> = match dpid {
            Some(d) => vec![d],
            None => self.switches().iter().map(|s| s.dpid).collect(),
        };
        let ctl = self.clone();
        tokio::spawn(async move {
            for dpid in dpids {
                match ctl.ovsdb.apply_queues(dpid, &specs).await {
                    Ok(n) => debug!(
                        dpid = format_args!("{dpid:016x}"),
                        "tier queues on {n} ports"
                    ),
                    Err(e) => {
                        ctl.stats.ovsdb_errors.inc();
                        warn!(
                            dpid = format_args!("{dpid:016x}"),
                            "tier queues not configured: {e}"
                        );
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(addr: &str, ports: &[(u16, &str)]) -> sip::Sdp {
        let mut text =
            format!("v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n");
        for (port, extra) in ports {
            text.push_str(&format!("m=audio {port} RTP/AVP 0\r\n{extra}"));
        }
        sip::Sdp::parse(text.as_bytes()).expect("test SDP parses")
    }

    fn ep(s: &str) -> SocketAddrV4 {
        s.parse().expect("endpoint")
    }

    const KEY: SessionKey = SessionKey {
        client: Ipv4Addr::new(10, 0, 0, 1),
        server: Ipv4Addr::new(10, 0, 0, 100),
        l4: None,
    };

    #[test]
    fn gathered_client_data_is_kept_and_newer_data_wins() {
        let was = ClientData {
            phone: Some("+14155550100".into()),
            promo_code: Some("UPGRADE".into()),
            account_id: Some("A-1".into()),
            source: Some("ivr".into()),
            ..ClientData::default()
        };
        let mut now = ClientData {
            ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            promo_code: Some("SPRING".into()),
            ..ClientData::default()
        };
        keep_gathered(&mut now, &was);
        assert_eq!(now.promo_code.as_deref(), Some("SPRING"));
        assert_eq!(now.phone.as_deref(), Some("+14155550100"));
        assert_eq!(now.account_id.as_deref(), Some("A-1"));
        assert_eq!(now.source.as_deref(), Some("ivr"));
        assert_eq!(now.ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
    }

    #[test]
    fn media_between_caller_and_server_needs_no_leg() {
        let offer = sdp("10.0.0.1", &[(6000, "")]);
        let answer = sdp("10.0.0.100", &[(7000, "")]);
        assert!(uncovered_streams(&KEY, &offer, &answer).is_empty());
        // Offered by the server side (an agent's re-INVITE): still covered.
        assert!(uncovered_streams(&KEY, &answer, &offer).is_empty());
    }

    #[test]
    fn media_to_a_third_address_gets_rtp_and_rtcp_streams_caller_first() {
        let offer = sdp("10.0.0.1", &[(6000, "")]);
        let answer = sdp("10.0.0.200", &[(7000, "")]);
        let want: Vec<Streams> = vec![
            [
                (ep("10.0.0.1:6000"), ep("10.0.0.200:7000")),
                (ep("10.0.0.1:6001"), ep("10.0.0.200:7001")),
            ]
            .into_iter()
            .collect(),
        ];
        assert_eq!(uncovered_streams(&KEY, &offer, &answer), want);
        // The far side offered (a re-INVITE from the agent's phone): the
        // caller's endpoint still comes first.
        assert_eq!(uncovered_streams(&KEY, &answer, &offer), want);
        // rtcp-mux: one stream; a=rtcp gives the RTCP port.
        let mux = sdp("10.0.0.200", &[(7000, "a=rtcp-mux\r\n")]);
        let offer_mux = sdp("10.0.0.1", &[(6000, "a=rtcp-mux\r\n")]);
        assert_eq!(uncovered_streams(&KEY, &offer_mux, &mux)[0].len(), 1);
        let rtcp = sdp("10.0.0.200", &[(7000, "a=rtcp:7100\r\n")]);
        assert_eq!(
            uncovered_streams(&KEY, &offer, &rtcp)[0].get(1),
            Some(&(ep("10.0.0.1:6001"), ep("10.0.0.200:7100")))
        );
    }

    #[test]
    fn several_m_lines_pair_in_order_and_rejected_or_held_streams_are_skipped() {
        let offer = sdp("10.0.0.1", &[(6000, ""), (6002, ""), (6004, "")]);
        // Second stream rejected (port 0) in the answer.
        let answer = sdp("10.0.0.200", &[(7000, ""), (0, ""), (7004, "")]);
        let got = uncovered_streams(&KEY, &offer, &answer);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1][0], (ep("10.0.0.1:6004"), ep("10.0.0.200:7004")));
        // A hold offer with c=0.0.0.0 sets up no stream.
        let held = sdp("0.0.0.0", &[(6000, "")]);
        assert!(uncovered_streams(&KEY, &held, &answer).is_empty());
        // More m= lines in the offer than in the answer: only the pairs.
        let short = sdp("10.0.0.200", &[(7000, "")]);
        assert_eq!(uncovered_streams(&KEY, &offer, &short).len(), 1);
    }
}
