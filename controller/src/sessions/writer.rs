//! Sessions in Redis: the stored record (the API's view, plus what
//! re-admission needs that the view does not say: the flows' match, who
//! put the call on hold, the decision's parts), and the writer that keeps
//! Redis current. The writer remembers only *which* sessions changed;
//! their records are built when written, so a backlog costs a few bytes
//! per session, and a dead Redis loses nothing while the controller runs
//! (failed writes are retried each second). A record is encoded straight
//! from the session's `Record` ([`StoredOf`]), and a chunk of records goes
//! in one transaction.

use super::Sessions;
use super::record::{
    Decision, HoldCause, HoldTrack, Inputs, Name, Names, Record, Requested, SessionId, StateReason,
};
use crate::crm::{MatchedBy, Snapshot};
use crate::messages::SessionKey;
use crate::policy::{Basis, PromoNote};
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt::Display;
use std::net::IpAddr;
use std::time::Duration;
use tierflow_api::model::{
    Measured, Reason, ServiceKind, Session, SessionMeters, SessionState, Terms, Tier, Weights,
};
use tierflow_api::views::RequestKind;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Records built and written per round trip group.
const CHUNK: usize = 256;

/// A session as Redis keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// What the API shows (readers of the API's `Session` ignore the
    /// rest).
    #[serde(flatten)]
    pub view: Session,
    #[serde(default, rename = "_tierflow")]
    pub internal: Internal,
}

/// What re-admitting a session needs beyond its view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Internal {
    /// The service's protocol and port its flows match (`None`: a call,
    /// matched on its address pair).
    pub l4: Option<(u8, u16)>,
    pub held_by: Option<HoldCause>,
    pub hold_before: Option<Reason>,
    pub state_reason: StateReason,
    pub basis: Option<Basis>,
    pub note: Option<PromoNote>,
    #[serde(default)]
    pub manual: bool,
    /// The client's port its flows match (a requested session's).
    #[serde(default)]
    pub client_port: Option<u16>,
    /// Requested by an application server: what it asked for.
    #[serde(default)]
    pub requested: Option<RequestKind>,
    /// Where its flows and meters are, switch by switch: (datapath id,
    /// in port, out port, forward meter, reverse meter). Another instance
    /// of the cluster that takes the switches over adopts the session
    /// from them without touching its flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<(u64, u32, u32, u32, u32)>,
    /// How its flows retag or route its frames, where VLANs or routing
    /// are in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry: Option<crate::vlan::Carry>,
}

impl Internal {
    fn of(rec: &Record) -> Internal {
        Internal {
            l4: rec.key.l4,
            held_by: rec.hold.by,
            hold_before: rec.hold.before,
            state_reason: rec.state_reason,
            basis: Some(rec.decision.basis),
            note: Some(rec.decision.note),
            manual: rec.decision.manual,
            client_port: rec.key.client_port,
            requested: rec.requested.as_ref().map(|r| r.kind),
            hops: rec
                .hops
                .iter()
                .map(|h| (h.dpid, h.in_port, h.out_port, h.meter_fwd, h.meter_rev))
                .collect(),
            carry: rec.carry.as_deref().cloned(),
        }
    }
}

/// The stored record of a live or parked session serialized straight
/// from its [`Record`]: the same JSON as `Stored::of(rec, view)` with the
/// view `Sessions::view_of(rec, false)` (the test `direct_json_is_the_
/// views_json` holds them equal), without building the view's strings
/// or going through `serde(flatten)`'s map, which cost the writer about
/// as much again as the JSON itself.
#[derive(Debug)]
pub struct StoredOf<'a> {
    pub rec: &'a Record,
    pub names: &'a Names,
    /// The definition of the session's tier (`None`: deleted meanwhile).
    pub tier: Option<&'a Tier>,
}

/// A value written as a JSON string through its `Display`.
struct Disp<T>(T);

impl<T: Display> Serialize for Disp<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The path's datapath ids, as the view writes them.
struct PathOf<'a>(&'a Record);

impl Serialize for PathOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.hops.iter().map(|h| Disp(Dpid(h.dpid))))
    }
}

/// A datapath id as 16 hex digits.
struct Dpid(u64);

impl Display for Dpid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

// The borrowed twins of `tierflow_api::model::{Session, Explanation,
// ClientData}`: same field names, order and skipping rules.

#[derive(Serialize)]
struct SessionOut<'a> {
    id: Disp<SessionId>,
    service: &'a str,
    client_ip: IpAddr,
    server_ip: IpAddr,
    state: SessionState,
    tier: &'a str,
    override_tier: Option<&'a str>,
    customer_id: Option<&'a str>,
    explanation: ExplanationOut<'a>,
    path: PathOf<'a>,
    state_reason: &'a str,
    external_id: Option<&'a str>,
    measured_kbps: Option<Measured>,
    meters: Option<SessionMeters>,
    created_at: &'a DateTime<Utc>,
    updated_at: &'a DateTime<Utc>,
    #[serde(rename = "_tierflow")]
    internal: Internal,
}

#[derive(Serialize)]
struct ExplanationOut<'a> {
    inputs: InputsOut<'a>,
    customer_id: Option<&'a str>,
    matched_by: Option<&'a str>,
    promotion: Option<&'a str>,
    weights: &'a Weights,
    terms: &'a Terms,
    benefit: f64,
    tier: &'a str,
    reason: Reason,
    detail: &'a str,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct InputsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<Disp<openflow::MacAddr>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promo_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
}

impl Serialize for StoredOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (r, names) = (self.rec, self.names);
        let d = &r.decision;
        // The names, each looked up once and held for the borrows below.
        let service = names.get(r.service);
        let tier = names.get(r.tier);
        let override_tier = r.override_tier.map(|n| names.get(n));
        let customer = d.customer.map(|(n, by)| (names.get(n), by));
        let promotion = d.promotion.map(|n| names.get(n));
        let decided = names.get(d.tier);
        let detail = r.detail(names);
        let warnings = self.tier.map(|t| r.warnings(t)).unwrap_or_default();
        let i = &r.inputs;
        let customer_id = customer.as_ref().map(|(c, _)| &**c);
        SessionOut {
            id: Disp(r.id),
            service: &service,
            client_ip: IpAddr::V4(r.key.client),
            server_ip: IpAddr::V4(r.key.server),
            state: r.state,
            tier: &tier,
            override_tier: override_tier.as_deref(),
            customer_id,
            explanation: ExplanationOut {
                inputs: InputsOut {
                    ip: i.ip,
                    mac: i.mac.map(Disp),
                    phone: i.phone.as_deref(),
                    promo_code: i.promo_code.as_deref(),
                    account_id: i.account_id.as_deref(),
                    source: i.source.as_ref().map(|s| s.as_str()),
                },
                customer_id,
                matched_by: customer.as_ref().map(|(_, by)| by.as_str()),
                promotion: promotion.as_deref(),
                weights: &d.weights,
                terms: &d.terms,
                benefit: crate::policy::benefit(&d.terms),
                tier: &decided,
                reason: d.reason,
                detail: &detail,
                warnings: &warnings,
            },
            path: PathOf(r),
            state_reason: r.state_reason.text(),
            external_id: r.requested.as_ref().map(|q| &*q.external_id),
            measured_kbps: None,
            meters: self.tier.map(|t| r.session_meters(t)),
            created_at: &r.created_at,
            updated_at: &r.updated_at,
            internal: Internal::of(r),
        }
        .serialize(s)
    }
}

impl Stored {
    pub fn of(rec: &Record, view: Session) -> Stored {
        Stored {
            view,
            internal: Internal::of(rec),
        }
    }

    /// The record of a remembered session, parked (no hops). None for an
    /// ended one, or one that is not IPv4.
    pub fn into_record(self, snap: &Snapshot, names: &Names) -> Option<Record> {
        let v = self.view;
        let i = self.internal;
        if v.state == SessionState::Ended {
            return None;
        }
        let (IpAddr::V4(client), IpAddr::V4(server)) = (v.client_ip, v.server_ip) else {
            return None;
        };
        // Records written before the internal part existed: the service's
        // current definition says what its flows match.
        let l4 = i.l4.or_else(|| {
            snap.services
                .iter()
                .find(|x| x.name == v.service)
                .and_then(|x| (x.kind != ServiceKind::Sip).then_some((x.proto.ip_proto(), x.port)))
        });
        let key = SessionKey {
            client,
            server,
            l4,
            client_port: i.client_port,
        };
        let e = &v.explanation;
        let customer: Option<(Name, MatchedBy)> = e.customer_id.as_deref().map(|c| {
            (
                names.intern(c),
                if e.matched_by.as_deref() == Some("phone") {
                    MatchedBy::Phone
                } else {
                    MatchedBy::Ip
                },
            )
        });
        let basis = i.basis.unwrap_or(match (&customer, e.reason) {
            (None, _) => Basis::NoCustomer,
            (Some(_), Reason::Default) => Basis::BelowEveryTier,
            _ => Basis::Scored,
        });
        let note = i
            .note
            .unwrap_or(if e.promotion.is_some() && e.reason == Reason::Promotion {
                PromoNote::Lifted
            } else if e.inputs.promo_code.is_some() && e.promotion.is_none() {
                if e.detail.contains("is expired") {
                    PromoNote::Expired
                } else {
                    PromoNote::Unknown
                }
            } else {
                PromoNote::None
            });
        let mut hold = HoldTrack::new();
        if v.state == SessionState::Hold {
            // A record without the internal part held by CTI: the one
            // cause nothing but its own kind ends.
            hold.by = Some(i.held_by.unwrap_or(HoldCause::Cti));
            hold.before = i.hold_before;
        }
        Some(Record {
            id: SessionId::parse(&v.id)?,
            key,
            hops: Default::default(),
            carry: None,
            service: names.intern(&v.service),
            tier: names.intern(&v.tier),
            override_tier: v.override_tier.as_deref().map(|o| names.intern(o)),
            state: v.state,
            state_reason: i.state_reason,
            hold,
            inputs: Inputs::from_client(&e.inputs),
            decision: Decision {
                customer,
                promotion: e.promotion.as_deref().map(|p| names.intern(p)),
                note,
                basis,
                weights: e.weights,
                terms: e.terms,
                tier: names.intern(&e.tier),
                reason: e.reason,
                manual: i.manual,
            },
            created_at: v.created_at,
            updated_at: v.updated_at,
            call: None,
            requested: match (i.requested, v.external_id) {
                (Some(kind), Some(ext)) => Some(Box::new(Requested {
                    external_id: ext.into(),
                    kind,
                    idle: 0,
                })),
                _ => None,
            },
        })
    }
}

/// Which sessions Redis does not have as they are now.
#[derive(Debug, Default)]
pub struct Writer {
    dirty: Mutex<HashSet<SessionId>>,
    /// Ended sessions' last records (no longer in the table).
    ended: Mutex<HashMap<SessionId, Stored>>,
    wake: Notify,
}

impl Sessions {
    /// The session changed: Redis gets its record on the next round.
    pub(super) fn persist(&self, id: SessionId) {
        self.writer.dirty.lock().insert(id);
        self.writer.wake.notify_one();
    }

    pub(super) fn persist_ended(&self, id: SessionId, s: Stored) {
        self.writer.dirty.lock().remove(&id);
        self.writer.ended.lock().insert(id, s);
        self.writer.wake.notify_one();
    }

    /// Sessions changed and not written yet.
    pub fn writer_backlog(&self) -> usize {
        self.writer.dirty.lock().len() + self.writer.ended.lock().len()
    }

    /// Appends the JSON of the record Redis should hold for a live or
    /// parked session to `out`; false when it is neither (ended or gone).
    /// Encoded under the table's lock, straight from the record (cloning
    /// it to encode outside would cost about as much as the encoding).
    fn encode(&self, id: SessionId, snap: &Snapshot, out: &mut Vec<u8>) -> bool {
        let t = self.table.lock();
        let Some(rec) = t.live(id).or_else(|| t.parked(id)) else {
            return false;
        };
        let tier = snap.tier(&self.names.get(rec.tier));
        let at = out.len();
        let s = StoredOf {
            rec,
            names: &self.names,
            tier,
        };
        match serde_json::to_writer(&mut *out, &s) {
            Ok(()) => true,
            Err(e) => {
                // Cannot happen with these types (no map keys, floats
                // written as null); retrying would fail the same way.
                out.truncate(at);
                debug!("session {id} cannot be encoded: {e}");
                false
            }
        }
    }

    /// Writes changed sessions to Redis until `shutdown`; failed writes
    /// are retried every second (a newer change of the same session
    /// supersedes them).
    /// While `may_write` says no (another instance of the cluster may
    /// lead), changes are kept, not written: this instance's records must
    /// not overwrite the leader's.
    pub async fn run_writer(
        &self,
        shutdown: CancellationToken,
        may_write: &(dyn Fn() -> bool + Sync),
    ) {
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = self.writer.wake.notified() => false,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            };
            if !may_write() {
                if stop {
                    break;
                }
                continue;
            }
            // Taken, not drained: a drained set keeps the capacity of its
            // largest backlog.
            let dirty: Vec<SessionId> = std::mem::take(&mut *self.writer.dirty.lock())
                .into_iter()
                .collect();
            let ended: Vec<(SessionId, Stored)> = std::mem::take(&mut *self.writer.ended.lock())
                .into_iter()
                .collect();
            let mut failed = false;
            for chunk in dirty.chunks(CHUNK) {
                if failed {
                    self.writer.dirty.lock().extend(chunk.iter().copied());
                    continue;
                }
                let snap = self.snapshot();
                let mut batch = Batch::default();
                for id in chunk {
                    let at = batch.json.len();
                    if self.encode(*id, &snap, &mut batch.json) {
                        batch.push(*id, at);
                    }
                }
                let retry = self.write(&batch, false).await;
                if !retry.is_empty() {
                    failed = true;
                    self.writer.dirty.lock().extend(retry);
                }
            }
            for chunk in ended.chunks(CHUNK) {
                let retry = if failed {
                    chunk.iter().map(|(id, _)| *id).collect()
                } else {
                    let mut batch = Batch::default();
                    for (id, s) in chunk {
                        let at = batch.json.len();
                        match serde_json::to_writer(&mut batch.json, s) {
                            Ok(()) => batch.push(*id, at),
                            Err(e) => {
                                batch.json.truncate(at);
                                debug!("session {id} cannot be encoded: {e}");
                            }
                        }
                    }
                    self.write(&batch, true).await
                };
                if !retry.is_empty() {
                    failed = true;
                    let mut e = self.writer.ended.lock();
                    for (id, s) in chunk.iter().filter(|(id, _)| retry.contains(id)) {
                        // A newer end of the same session wins.
                        e.entry(*id).or_insert_with(|| s.clone());
                    }
                }
            }
            if stop {
                break;
            }
        }
    }

    /// Writes a chunk's records in one transaction; returns the ids to
    /// write again (all of them when it failed).
    async fn write(&self, batch: &Batch, ended: bool) -> Vec<SessionId> {
        if batch.ids.is_empty() {
            return Vec::new();
        }
        let r = self
            .crm
            .store
            .put_session_records(batch.records(), ended)
            .await;
        match r {
            Ok(()) => Vec::new(),
            Err(e) => {
                self.stats.redis_errors.inc();
                debug!("{} sessions not written to Redis yet: {e}", batch.ids.len());
                batch.ids.iter().map(|(id, ..)| *id).collect()
            }
        }
    }
}

/// A chunk's records, encoded: ids' text in one buffer, JSON in another.
#[derive(Default)]
struct Batch {
    /// Each id, the end of its text in `text`, the end of its JSON in
    /// `json`.
    ids: Vec<(SessionId, usize, usize)>,
    text: String,
    json: Vec<u8>,
}

impl Batch {
    /// Adds `id`, whose JSON was appended from `json[at..]`.
    fn push(&mut self, id: SessionId, at: usize) {
        use std::fmt::Write;
        debug_assert!(self.ids.last().is_none_or(|l| l.2 == at));
        let _ = write!(self.text, "{id}");
        self.ids.push((id, self.text.len(), self.json.len()));
    }

    fn records(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut from = (0, 0);
        self.ids.iter().map(move |&(_, t, j)| {
            let r = (&self.text[from.0..t], &self.json[from.1..j]);
            from = (t, j);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::qos::Keeps;
    use crate::sessions::record::{
        Call, MediaLeg, SdpSaid, SessionHop, SipRequestKind, Source, Streams,
    };
    use chrono::TimeZone;
    use smallvec::smallvec;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn tier() -> Tier {
        serde_json::from_value(serde_json::json!({
            "name": "gold", "min_benefit": 5000.5, "rate_kbps": 64,
            "burst_kbits": 0, "dscp": 46, "queue_id": 1, "hold_rate_kbps": 32
        }))
        .expect("a tier")
    }

    fn hop(dpid: u64) -> SessionHop {
        SessionHop {
            dpid,
            in_port: 1,
            out_port: 2,
            meter_fwd: 7,
            meter_rev: 8,
        }
    }

    /// A web session of a customer matched by phone, with a path.
    fn plain(names: &Names) -> Record {
        Record {
            id: SessionId(0x00d1_e75b_48b3),
            key: SessionKey {
                client: Ipv4Addr::new(10, 0, 0, 1),
                server: Ipv4Addr::new(10, 0, 0, 100),
                l4: Some((6, 443)),
                client_port: None,
            },
            hops: smallvec![hop(1), hop(0xabcd_0000_0000_0002)],
            carry: None,
            service: names.intern("web"),
            tier: names.intern("gold"),
            override_tier: None,
            state: SessionState::Active,
            state_reason: StateReason::None,
            hold: HoldTrack::new(),
            inputs: Inputs {
                ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
                mac: Some("00:00:00:00:00:01".parse().expect("a MAC")),
                phone: Some("+14155550100".into()),
                promo_code: Some("SPRING \"25\"".into()),
                account_id: None,
                source: Some(Source::Named("web-form".into())),
            },
            decision: Decision {
                customer: Some((names.intern("c-1"), MatchedBy::Phone)),
                promotion: Some(names.intern("spring")),
                note: PromoNote::Lifted,
                basis: Basis::Scored,
                weights: Weights::default(),
                terms: Terms {
                    margin: 1234.5678,
                    opportunity: 0.1,
                    retention: -3.0e-7,
                    promotion: 1e21,
                },
                tier: names.intern("gold"),
                reason: Reason::Promotion,
                manual: false,
            },
            created_at: Utc
                .with_ymd_and_hms(2026, 12, 3, 17, 0, 0)
                .single()
                .expect("a time"),
            updated_at: Utc.timestamp_nanos(1_764_781_234_567_891_234),
            call: None,
            requested: None,
        }
    }

    /// A call with a media leg and a codec that does not fit the tier.
    fn voice(names: &Names) -> Record {
        let mut r = plain(names);
        r.key.l4 = None;
        r.service = names.intern("voice");
        r.decision.customer = Some((names.intern("c-2"), MatchedBy::Ip));
        r.decision.promotion = None;
        r.decision.note = PromoNote::Unknown;
        r.decision.reason = Reason::Automatic;
        r.inputs.source = Some(Source::Sip);
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4000);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 9), 5000);
        let streams: Streams = smallvec![(a, b)];
        r.call = Some(Box::new(Call {
            call_ids: smallvec!["abc@host".into()],
            media: smallvec![a, b],
            offer: None,
            legs: smallvec![MediaLeg {
                streams,
                hops: smallvec![hop(3)],
                carry: None,
            }],
            need: Some(codec::Need {
                kbps: 88,
                from: codec::From::Codec(codec::Known::Pcmu),
            }),
            keeps: Keeps::ToServer,
        }));
        r
    }

    fn held(names: &Names) -> Record {
        let mut r = voice(names);
        r.state = SessionState::Hold;
        r.state_reason = StateReason::Sip(SipRequestKind::ReInvite, SdpSaid::SendOnly);
        r.hold.by = Some(HoldCause::Sip);
        r.hold.before = Some(Reason::Automatic);
        r.decision.reason = Reason::Hold;
        r
    }

    fn overridden(names: &Names) -> Record {
        let mut r = plain(names);
        r.override_tier = Some(names.intern("silver"));
        r.tier = names.intern("silver");
        r.decision.manual = true;
        r.decision.reason = Reason::ManualOverride;
        r.requested = Some(Box::new(Requested {
            external_id: "ext-1".into(),
            kind: RequestKind::Web,
            idle: 1,
        }));
        r.key.client_port = Some(40000);
        r
    }

    /// Parked (no hops), no customer, no inputs, a deleted tier.
    fn parked(names: &Names) -> Record {
        let mut r = plain(names);
        r.hops.clear();
        r.decision.customer = None;
        r.decision.promotion = None;
        r.decision.note = PromoNote::None;
        r.decision.basis = Basis::NoCustomer;
        r.decision.reason = Reason::Default;
        r.inputs = Inputs::from_client(&Default::default());
        r.state_reason = StateReason::MediaResumed;
        r
    }

    #[test]
    fn direct_json_is_the_views_json() {
        let names = Names::default();
        let gold = tier();
        let routed = {
            use crate::vlan::{Carry, HopTags, Rewrite, Tag};
            let mut r = plain(&names);
            let tags = HopTags {
                fwd_in: Tag::Untagged,
                fwd_out: Tag::Tagged(300),
                rev_in: Tag::Tagged(300),
                rev_out: Tag::Untagged,
            };
            r.carry = Some(Box::new(Carry {
                hops: smallvec![tags, tags],
                fwd_l3: Some(Rewrite {
                    eth_src: "02:00:00:00:00:fe".parse().expect("a MAC"),
                    eth_dst: "00:00:00:00:00:64".parse().expect("a MAC"),
                }),
                rev_l3: None,
                vlans: (100, 300),
                routed: true,
            }));
            r
        };
        let cases: [(&str, Record, Option<&Tier>); 7] = [
            ("plain", plain(&names), Some(&gold)),
            ("routed", routed, Some(&gold)),
            ("voice", voice(&names), Some(&gold)),
            ("held", held(&names), Some(&gold)),
            ("overridden", overridden(&names), None),
            ("parked", parked(&names), None),
            ("parked, tier known", parked(&names), Some(&gold)),
        ];
        for (what, rec, tier) in cases {
            // The old path: the view (as `Sessions::view_of(rec, false)`
            // builds it), flattened into `Stored`.
            let old = Stored::of(&rec, rec.view(&names, false, tier));
            let old_json = serde_json::to_string(&old).expect("old JSON");
            let new_json = serde_json::to_string(&StoredOf {
                rec: &rec,
                names: &names,
                tier,
            })
            .expect("new JSON");
            assert_eq!(new_json, old_json, "{what}");
            // And it reads back as the reader reads it, and as the API's
            // `Session`.
            let back: Stored = serde_json::from_str(&new_json).expect("a Stored");
            assert_eq!(back, old, "{what}");
            let view: Session = serde_json::from_str(&new_json).expect("a Session");
            assert_eq!(view, old.view, "{what}");
            // What another instance adopts the session from: its hops,
            // meters and carriage, as they are.
            let hops: Vec<_> = rec
                .hops
                .iter()
                .map(|h| (h.dpid, h.in_port, h.out_port, h.meter_fwd, h.meter_rev))
                .collect();
            assert_eq!(back.internal.hops, hops, "{what}");
            assert_eq!(back.internal.carry.as_ref(), rec.carry.as_deref(), "{what}");
        }
    }
}
