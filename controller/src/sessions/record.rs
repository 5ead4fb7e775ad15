//! A session as the control plane keeps it: typed and compact. Names
//! (tier, service, customer, promotion) are small indexes into a
//! [`Names`] table, the hold cause and the state's reason are enums, the
//! decision keeps its parts and not its sentence. The API's
//! [`Session`](tierflow_api::model::Session) view is built from a record
//! when someone asks ([`Record::view`]); it is never stored as the
//! session.
//!
//! Knows nothing of switches, locks or Redis.

use crate::codec;
use crate::crm::MatchedBy;
use crate::messages::SessionKey;
use crate::policy::{self, Basis, PromoNote};
use crate::qos::{self, Keeps};
use crate::sip;
use ahash::AHashMap as HashMap;
use chrono::{DateTime, Utc};
use openflow::MacAddr;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::net::{IpAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;
use tierflow_api::model::{
    ClientData, Explanation, MeterSetting, Reason, Session, SessionMeters, SessionState, Terms,
    Tier, Weights,
};
use tierflow_api::views::RequestKind;

/// Session ids are 40 bits (they live in the cookie's id field).
const ID_MASK: u64 = 0xff_ffff_ffff;

/// A session's id: a hash of what its flows match, so the same session
/// keeps its id, its cookie and its Redis record across a controller
/// restart and across controllers. Shown as `s-` and ten hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// The id for a key (before collisions are resolved: see the table).
    pub fn for_key(key: &SessionKey) -> SessionId {
        // FNV-1a: stable across processes and machines (ahash is seeded).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let (proto, port) = key.l4.unwrap_or((0, 0));
        // The client's port only when there is one, so that the ids of
        // the sessions the network starts stay what they always were.
        let cport = key.client_port.map(u16::to_be_bytes);
        for b in key
            .client
            .octets()
            .into_iter()
            .chain(key.server.octets())
            .chain([proto])
            .chain(port.to_be_bytes())
            .chain(cport.into_iter().flatten())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        SessionId((h & ID_MASK).max(1))
    }

    /// The next id, for a collision.
    pub fn next(self) -> SessionId {
        SessionId(((self.0 + 1) & ID_MASK).max(1))
    }

    pub fn parse(s: &str) -> Option<SessionId> {
        let hex = s.strip_prefix("s-")?;
        if hex.is_empty() || hex.len() > 10 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SessionId)
    }
}

/// `s-` and at least ten hex digits (`s-{:010x}`), written by hand: an
/// admission writes its id three times (log line, Redis key, record), and
/// the formatter's padded hex costs several times more.
impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 18];
        buf[0] = b's';
        buf[1] = b'-';
        // Digits of the value, most significant first, at least ten.
        let digits = (16 - (self.0.leading_zeros() / 4) as usize).max(10);
        for (i, b) in buf[2..2 + digits].iter_mut().enumerate() {
            let shift = 4 * (digits - 1 - i);
            *b = HEX[((self.0 >> shift) & 0xf) as usize];
        }
        // ASCII by construction.
        f.write_str(std::str::from_utf8(&buf[..2 + digits]).map_err(|_| std::fmt::Error)?)
    }
}

/// A name from the CRM, as an index into [`Names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name(u32);

/// The names sessions refer to, each stored once. Grows with the distinct
/// tier, service, customer and promotion names seen (all from the CRM,
/// which operators write); never shrinks.
#[derive(Debug, Default)]
pub struct Names {
    inner: RwLock<NamesInner>,
}

#[derive(Debug, Default)]
struct NamesInner {
    ids: HashMap<Arc<str>, u32>,
    list: Vec<Arc<str>>,
}

impl Names {
    pub fn intern(&self, s: &str) -> Name {
        if let Some(&i) = self.inner.read().ids.get(s) {
            return Name(i);
        }
        let mut w = self.inner.write();
        if let Some(&i) = w.ids.get(s) {
            return Name(i);
        }
        let i = u32::try_from(w.list.len()).unwrap_or(u32::MAX);
        let a: Arc<str> = Arc::from(s);
        w.list.push(a.clone());
        w.ids.insert(a, i);
        Name(i)
    }

    pub fn get(&self, n: Name) -> Arc<str> {
        self.inner
            .read()
            .list
            .get(n.0 as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from("?"))
    }

    /// Whether `n` names `s` (no allocation).
    pub fn is(&self, n: Name, s: &str) -> bool {
        self.inner
            .read()
            .list
            .get(n.0 as usize)
            .is_some_and(|x| &**x == s)
    }

    /// The index of `s`, if it was ever interned.
    pub fn find(&self, s: &str) -> Option<Name> {
        self.inner.read().ids.get(s).copied().map(Name)
    }
}

/// A switch of a session's path: where the forward direction enters and
/// leaves it (the reverse direction goes the other way), and its meters
/// (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionHop {
    pub dpid: u64,
    pub in_port: u32,
    pub out_port: u32,
    pub meter_fwd: u32,
    pub meter_rev: u32,
}

pub type Hops = SmallVec<[SessionHop; 4]>;

/// What put a session on hold or resumed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    pub fn index(self) -> usize {
        match self {
            HoldCause::Sip => 0,
            HoldCause::Cti => 1,
            HoldCause::IdleMedia => 2,
        }
    }
}

/// The SIP request that changed a call's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SipRequestKind {
    /// An initial INVITE (a call admitted already on hold).
    Invite,
    ReInvite,
    Update,
}

/// What an SDP said about the call's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SdpSaid {
    SendOnly,
    RecvOnly,
    Inactive,
    /// `c=0.0.0.0`, the old way of saying hold.
    NullAddress,
    SendRecv,
}

impl SdpSaid {
    pub fn from_hold(s: sip::HoldSaid) -> SdpSaid {
        match s {
            sip::HoldSaid::SendOnly => SdpSaid::SendOnly,
            sip::HoldSaid::RecvOnly => SdpSaid::RecvOnly,
            sip::HoldSaid::Inactive => SdpSaid::Inactive,
            sip::HoldSaid::NullAddress => SdpSaid::NullAddress,
        }
    }
}

/// Why a live session's state is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateReason {
    #[default]
    None,
    Sip(SipRequestKind, SdpSaid),
    Cti,
    /// Idle media put it on hold.
    IdleMedia,
    /// Media came back after an idle-media hold.
    MediaResumed,
}

impl StateReason {
    /// The text `state_reason` shows.
    pub fn text(self) -> &'static str {
        use SdpSaid as D;
        use SipRequestKind as K;
        match self {
            StateReason::None => "",
            StateReason::Cti => "cti",
            StateReason::IdleMedia => "idle media",
            StateReason::MediaResumed => "media resumed",
            StateReason::Sip(k, d) => match (k, d) {
                (K::Invite, D::SendOnly) => "sip INVITE sendonly",
                (K::Invite, D::RecvOnly) => "sip INVITE recvonly",
                (K::Invite, D::Inactive) => "sip INVITE inactive",
                (K::Invite, D::NullAddress) => "sip INVITE c=0.0.0.0",
                (K::Invite, D::SendRecv) => "sip INVITE sendrecv",
                (K::ReInvite, D::SendOnly) => "sip re-INVITE sendonly",
                (K::ReInvite, D::RecvOnly) => "sip re-INVITE recvonly",
                (K::ReInvite, D::Inactive) => "sip re-INVITE inactive",
                (K::ReInvite, D::NullAddress) => "sip re-INVITE c=0.0.0.0",
                (K::ReInvite, D::SendRecv) => "sip re-INVITE sendrecv",
                (K::Update, D::SendOnly) => "sip UPDATE sendonly",
                (K::Update, D::RecvOnly) => "sip UPDATE recvonly",
                (K::Update, D::Inactive) => "sip UPDATE inactive",
                (K::Update, D::NullAddress) => "sip UPDATE c=0.0.0.0",
                (K::Update, D::SendRecv) => "sip UPDATE sendrecv",
            },
        }
    }
}

/// A session's hold bookkeeping.
#[derive(Debug, Clone, Copy)]
pub struct HoldTrack {
    /// Who put it on hold; `None` while active.
    pub by: Option<HoldCause>,
    /// Why it had its tier before the hold (the explanation says `hold`
    /// meanwhile); restored on resume.
    pub before: Option<Reason>,
    /// When the state last changed (or the session was admitted).
    pub since: Instant,
}

impl HoldTrack {
    pub fn new() -> Self {
        HoldTrack {
            by: None,
            before: None,
            since: Instant::now(),
        }
    }
}

impl Default for HoldTrack {
    fn default() -> Self {
        HoldTrack::new()
    }
}

/// Where the client data came from, without a string per session for the
/// usual sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Sip,
    Web,
    Other,
    Named(Box<str>),
}

impl Source {
    pub fn from_text(s: &str) -> Source {
        match s {
            "sip" => Source::Sip,
            "web" => Source::Web,
            "other" => Source::Other,
            s => Source::Named(s.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Source::Sip => "sip",
            Source::Web => "web",
            Source::Other => "other",
            Source::Named(s) => s,
        }
    }
}

/// The client data a decision saw (PRODUCT.md's `client_data`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    pub ip: Option<IpAddr>,
    pub mac: Option<MacAddr>,
    pub phone: Option<Box<str>>,
    pub promo_code: Option<Box<str>>,
    pub account_id: Option<Box<str>>,
    pub source: Option<Source>,
}

impl Inputs {
    pub fn from_client(c: &ClientData) -> Inputs {
        Inputs {
            ip: c.ip,
            mac: c.mac.as_deref().and_then(|m| m.parse().ok()),
            phone: c.phone.as_deref().map(Box::from),
            promo_code: c.promo_code.as_deref().map(Box::from),
            account_id: c.account_id.as_deref().map(Box::from),
            source: c.source.as_deref().map(Source::from_text),
        }
    }

    pub fn to_client(&self) -> ClientData {
        ClientData {
            ip: self.ip,
            mac: self.mac.map(|m| m.to_string()),
            phone: self.phone.as_deref().map(String::from),
            promo_code: self.promo_code.as_deref().map(String::from),
            account_id: self.account_id.as_deref().map(String::from),
            source: self.source.as_ref().map(|s| s.as_str().to_string()),
        }
    }

    /// Fills what this lacks of the data gathered about the client before
    /// (`was`): newer data wins, nothing gathered is forgotten.
    pub fn keep_gathered(&mut self, was: &Inputs) {
        fn keep<T: Clone>(now: &mut Option<T>, then: &Option<T>) {
            if now.is_none() {
                now.clone_from(then);
            }
        }
        keep(&mut self.phone, &was.phone);
        keep(&mut self.promo_code, &was.promo_code);
        keep(&mut self.account_id, &was.account_id);
        keep(&mut self.source, &was.source);
    }
}

/// A decision's parts: enough to build its explanation, not the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub customer: Option<(Name, MatchedBy)>,
    /// The valid promotion that counted.
    pub promotion: Option<Name>,
    pub note: PromoNote,
    pub basis: Basis,
    pub weights: Weights,
    pub terms: Terms,
    /// The tier the decision chose (the session's may differ: override).
    pub tier: Name,
    pub reason: Reason,
    /// The sentence is "manual override to ..." (an operator just chose
    /// the tier) rather than the policy's.
    pub manual: bool,
}

impl Decision {
    /// The compact form of a policy decision.
    pub fn from_choice(c: &policy::Choice<'_>, names: &Names) -> Decision {
        Decision {
            customer: c.customer.map(|(cu, by)| {
                (
                    names.intern(&cu.id),
                    if by == "phone" {
                        MatchedBy::Phone
                    } else {
                        MatchedBy::Ip
                    },
                )
            }),
            promotion: c.promotion.map(|p| names.intern(&p.code)),
            note: c.note,
            basis: c.basis,
            weights: c.weights,
            terms: c.terms,
            tier: names.intern(&c.tier.name),
            reason: c.reason,
            manual: false,
        }
    }
}

/// An SDP offer waiting for its answer: the Call-ID it came with and the
/// description.
pub type Offer = (Option<Box<str>>, Box<sip::Sdp>);

/// `(caller's side, far side)` of each stream of a media leg: RTP, and
/// RTCP when it has ports of its own.
pub type Streams = SmallVec<[(SocketAddrV4, SocketAddrV4); 2]>;

/// A call's media between two endpoints that are not the caller and the
/// SIP server (a media gateway, an agent's phone behind a PBX): flows
/// matching the streams' UDP ports and a meter per direction on every
/// switch between the endpoints, at the call's tier and state.
#[derive(Debug, Clone)]
pub struct MediaLeg {
    pub streams: Streams,
    /// From the caller's side's switch to the far side's.
    pub hops: Hops,
    /// How its frames are carried (VLANs configured), caller's side as
    /// the client.
    pub carry: Option<Box<crate::vlan::Carry>>,
}

/// Calls one voice session carries at most (the caller and the server may
/// have several calls between them; they share the address pair's flows).
pub const MAX_CALLS: usize = 8;

/// What only a voice (SIP) session has.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The Call-IDs of the calls between the caller and the server: a BYE
    /// ends its own call, and the session with its last one. Empty for a
    /// session remembered from before a restart (any BYE ends it).
    pub call_ids: SmallVec<[Box<str>; 1]>,
    /// RTP endpoints of the call, learnt from its SDP offers and answers.
    pub media: SmallVec<[SocketAddrV4; 4]>,
    /// The latest SDP offer, paired with the answer of the same Call-ID.
    pub offer: Option<Offer>,
    pub legs: SmallVec<[MediaLeg; 1]>,
    /// What the call's codec needs on the wire per direction, from its
    /// latest SDP that said (the answer's codec is the one in use).
    pub need: Option<codec::Need>,
    /// Which way the media still runs while the call is on hold.
    pub keeps: Keeps,
}

/// What only a session an application server requested has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub external_id: Box<str>,
    pub kind: RequestKind,
    /// The reporting flows (bit 0 forward, bit 1 reverse) that idled out:
    /// the session ends when both have.
    pub idle: u8,
}

/// A live (or parked) session.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: SessionId,
    pub key: SessionKey,
    /// Empty while parked.
    pub hops: Hops,
    /// How its frames are carried on `hops` where VLANs are configured
    /// (the tags per switch, and the routing rewrite of a session across
    /// subnets); `None` where none are, and while parked.
    pub carry: Option<Box<crate::vlan::Carry>>,
    pub service: Name,
    /// The tier in force (the override's when there is one).
    pub tier: Name,
    pub override_tier: Option<Name>,
    pub state: SessionState,
    pub state_reason: StateReason,
    pub hold: HoldTrack,
    pub inputs: Inputs,
    pub decision: Decision,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Boxed: only calls have it, and it is larger than the rest.
    pub call: Option<Box<Call>>,
    /// Boxed: only requested sessions have it.
    pub requested: Option<Box<Requested>>,
}

impl Record {
    pub fn is_voice(&self) -> bool {
        self.key.l4.is_none()
    }

    pub fn legs(&self) -> &[MediaLeg] {
        self.call.as_ref().map_or(&[], |c| c.legs.as_slice())
    }

    /// The flows a call requested by an application server has beside its
    /// RTP: its RTCP, on the next ports of both ends.
    pub fn rtcp_key(&self) -> Option<SessionKey> {
        self.requested
            .as_ref()
            .filter(|r| r.kind == RequestKind::Voice)
            .and_then(|_| self.key.ports_plus(1))
    }

    /// How the call's media is held, and what it needs (nothing for other
    /// sessions).
    pub fn media_shape(&self) -> (Keeps, Option<u32>) {
        self.call.as_ref().map_or((Keeps::Neither, None), |c| {
            (c.keeps, c.need.map(|n| n.kbps))
        })
    }

    /// The session's meters, `[to_server, to_client]`, under `tier`.
    pub fn meters(&self, tier: &Tier) -> [qos::Meter; 2] {
        let (keeps, need) = self.media_shape();
        qos::meters(tier, self.state, keeps, need)
    }

    /// What is wrong with `tier` for this call's codec, one sentence each.
    pub fn warnings(&self, tier: &Tier) -> Vec<String> {
        let Some(need) = self.call.as_ref().and_then(|c| c.need) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if tier.rate_kbps < need.kbps {
            out.push(format!(
                "tier {} rate_kbps {} is below the {need} the call's codec needs per direction: its voice is clipped",
                tier.name, tier.rate_kbps
            ));
        }
        if tier.hold_rate_kbps < need.kbps {
            out.push(format!(
                "tier {} hold_rate_kbps {} is below the {need} the call's codec needs per direction: media sent on hold in a direction held at the hold rate (CTI hold, a=inactive, idle media) is clipped; music on hold after a=sendonly keeps its rate",
                tier.name, tier.hold_rate_kbps
            ));
        }
        out
    }

    /// The explanation's sentence (`explanation.detail` of the view),
    /// alone: what the admission's log line says, without building the
    /// rest of the view.
    pub fn detail(&self, names: &Names) -> String {
        let d = &self.decision;
        if d.manual {
            return format!("manual override to {}", names.get(self.tier));
        }
        let customer = d.customer.map(|(n, by)| (names.get(n), by));
        let promotion = d.promotion.map(|n| names.get(n));
        policy::detail(&policy::Sentence {
            basis: d.basis,
            customer: customer.as_ref().map(|(c, by)| (&**c, by.as_str())),
            terms: &d.terms,
            note: d.note,
            promotion: promotion.as_deref(),
            code: self.inputs.promo_code.as_deref(),
            tier: &names.get(d.tier),
        })
    }

    /// The API's view. `parked`: the session has no flows now. `tier`:
    /// the definition of the tier in force, for the meters it gets (absent
    /// when the tier was deleted meanwhile).
    pub fn view(&self, names: &Names, parked: bool, tier: Option<&Tier>) -> Session {
        let d = &self.decision;
        let inputs = self.inputs.to_client();
        let customer = d.customer.map(|(n, by)| (names.get(n), by));
        let detail = self.detail(names);
        let explanation = Explanation {
            customer_id: customer.as_ref().map(|(c, _)| c.to_string()),
            matched_by: customer.as_ref().map(|(_, by)| by.as_str().to_string()),
            promotion: d.promotion.map(|n| names.get(n).to_string()),
            weights: d.weights,
            terms: d.terms,
            benefit: policy::benefit(&d.terms),
            tier: names.get(d.tier).to_string(),
            reason: d.reason,
            detail,
            inputs,
            warnings: tier.map(|t| self.warnings(t)).unwrap_or_default(),
        };
        let mut state_reason = self.state_reason.text().to_string();
        if parked {
            let why = if self.requested.is_some() {
                "waiting: no path now; on the network as soon as both hosts are located"
            } else {
                "parked: no path now; its next packet re-admits it"
            };
            state_reason = if state_reason.is_empty() {
                why.into()
            } else {
                format!("{state_reason}; {why}")
            };
        }
        Session {
            id: self.id.to_string(),
            service: names.get(self.service).to_string(),
            client_ip: IpAddr::V4(self.key.client),
            server_ip: IpAddr::V4(self.key.server),
            state: self.state,
            tier: names.get(self.tier).to_string(),
            override_tier: self.override_tier.map(|n| names.get(n).to_string()),
            customer_id: explanation.customer_id.clone(),
            explanation,
            path: if parked {
                Vec::new()
            } else {
                self.hops
                    .iter()
                    .map(|h| format!("{:016x}", h.dpid))
                    .collect()
            },
            state_reason,
            external_id: self.requested.as_ref().map(|r| r.external_id.to_string()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            measured_kbps: None,
            meters: tier.filter(|_| !parked).map(|t| self.session_meters(t)),
        }
    }

    /// The view's `meters` under `tier`.
    pub fn session_meters(&self, tier: &Tier) -> SessionMeters {
        let [up, down] = self.meters(tier);
        let setting = |m: qos::Meter| MeterSetting {
            rate_kbps: m.rate_kbps,
            bucket_kbits: m.bucket_kbits,
        };
        SessionMeters {
            to_server: setting(up),
            to_client: setting(down),
            need_kbps: self.media_shape().1,
        }
    }
}

/// The IPv4 RTP endpoints of an SDP description (RTCP is each port + 1,
/// or as `a=rtcp` says; the IP-pair flows carry both).
pub fn endpoints_v4(sdp: &sip::Sdp) -> SmallVec<[SocketAddrV4; 4]> {
    sdp.media_endpoints()
        .into_iter()
        .filter_map(|(ip, port)| match ip {
            IpAddr::V4(v4) => Some(SocketAddrV4::new(v4, port)),
            IpAddr::V6(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn session_ids_print_as_the_padded_hex_they_always_did() {
        for v in [
            0,
            1,
            0xab,
            0x00d1_e75b_48b3,
            0xff_ffff_ffff,
            1 << 40,
            u64::MAX,
        ] {
            assert_eq!(SessionId(v).to_string(), format!("s-{v:010x}"));
        }
    }

    #[test]
    fn ids_are_stable_and_print_as_s_and_ten_hex_digits() {
        let key = SessionKey {
            client: Ipv4Addr::new(10, 0, 0, 1),
            server: Ipv4Addr::new(10, 0, 0, 101),
            l4: Some((6, 5201)),
            client_port: None,
        };
        let id = SessionId::for_key(&key);
        assert_eq!(id, SessionId::for_key(&key));
        let text = id.to_string();
        assert_eq!(text.len(), 12);
        assert_eq!(SessionId::parse(&text), Some(id));
        assert_eq!(SessionId::parse("s-"), None);
        assert_eq!(SessionId::parse("s-12345678901"), None);
        assert_eq!(SessionId::parse("x-1"), None);
        assert_eq!(SessionId(ID_MASK).next(), SessionId(1));
    }

    #[test]
    fn names_are_stored_once() {
        let n = Names::default();
        let a = n.intern("gold");
        assert_eq!(n.intern("gold"), a);
        assert_ne!(n.intern("bronze"), a);
        assert_eq!(&*n.get(a), "gold");
        assert!(n.is(a, "gold") && !n.is(a, "bronze"));
        assert_eq!(n.find("silver"), None);
    }

    #[test]
    fn inputs_convert_both_ways_and_keep_what_was_gathered() {
        let c = ClientData {
            ip: "10.0.0.1".parse().ok(),
            mac: Some("00:00:00:00:00:01".into()),
            phone: Some("+14155550100".into()),
            promo_code: None,
            account_id: Some("A-1".into()),
            source: Some("ivr".into()),
        };
        let i = Inputs::from_client(&c);
        assert_eq!(i.to_client(), c);
        let mut now = Inputs {
            promo_code: Some("SPRING".into()),
            ..Inputs::default()
        };
        now.keep_gathered(&i);
        assert_eq!(now.promo_code.as_deref(), Some("SPRING"));
        assert_eq!(now.phone.as_deref(), Some("+14155550100"));
        assert_eq!(now.source, Some(Source::Named("ivr".into())));
        assert_eq!(
            now.ip, None,
            "where the client is stays what the network saw"
        );
    }

    #[test]
    fn state_reasons_read_as_before() {
        assert_eq!(
            StateReason::Sip(SipRequestKind::ReInvite, SdpSaid::SendOnly).text(),
            "sip re-INVITE sendonly"
        );
        assert_eq!(StateReason::IdleMedia.text(), "idle media");
        assert_eq!(StateReason::None.text(), "");
    }
}
