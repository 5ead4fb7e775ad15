//! The resources of PRODUCT.md as plain Rust types: tiers, customers,
//! promotions, services, policy, sessions and the explanation of a
//! decision. They are what the CRM stores in Redis (as JSON), what
//! `tierflow crm load` reads, and what the REST API exchanges, so the
//! control plane and the API meet on them without either knowing the
//! other's transport. Validation lives here too, so the API and the
//! loader reject the same things with the same field names.

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// A QoS tier. Rates are per session: every session of the tier gets them.
///
/// The promise, measured rather than configured: a TCP session alone on
/// its path gets 90–110 % of `rate_kbps` as goodput over a 10 s transfer.
/// Each session has a meter per direction on every switch of its path, a
/// token bucket that drops what exceeds the rate. Tierflow sizes the
/// bucket so that TCP reaches the rate (a fifth of a second of the rate,
/// TCP's least retransmission timeout; never less than `burst_kbits`;
/// half a second of the hold rate on hold) and shows the bucket it used wherever it shows
/// a meter (a session's `meters`, `/switches/{dpid}/meters`). On hold the
/// session flows at about `hold_rate_kbps` and is back at its rate within
/// seconds of the resume; a held call's music on hold keeps the rate its
/// codec needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Unique name: letters, digits, `_`, `-`, `.`; 1..=64 characters.
    #[schema(example = "gold", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// The least expected benefit that earns this tier.
    #[schema(example = 5000.0)]
    pub min_benefit: f64,
    /// Per-session meter rate, kbit/s, > 0.
    #[schema(example = 50000, minimum = 1)]
    pub rate_kbps: u32,
    /// The least bucket a session's meter gets, kbit: the burst above the
    /// rate the operator allows at the least. 0 or absent: Tierflow sizes
    /// the bucket alone (a fifth of a second of `rate_kbps`, which TCP
    /// needs to reach the rate); a larger value gives a larger bucket (and lets a
    /// transfer's first second run above the rate).
    #[serde(default)]
    #[schema(example = 5000, minimum = 0)]
    pub burst_kbits: u32,
    /// DSCP marked at the ingress edge, 0..=63.
    #[schema(example = 46, maximum = 63)]
    pub dscp: u8,
    /// The OVS queue the tier's traffic is put in (`set_queue`).
    #[schema(example = 1, maximum = 4294967294_u32)]
    pub queue_id: u32,
    /// Guaranteed rate of the tier's queue, kbit/s, <= `rate_kbps`.
    #[serde(default)]
    #[schema(example = 20000)]
    pub queue_min_kbps: u32,
    /// Per-session rate while a call is on hold, kbit/s, > 0.
    #[serde(default = "default_hold_rate")]
    #[schema(example = 64, minimum = 1)]
    pub hold_rate_kbps: u32,
}

fn default_hold_rate() -> u32 {
    64
}

/// A CRM record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[schema(example = "c-1001", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub id: String,
    #[serde(default)]
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// E.164 numbers (`+` and 8..=15 digits).
    #[serde(default)]
    #[schema(example = json!(["+14155550100"]))]
    pub phones: Vec<String>,
    /// Addresses or prefixes the customer's clients come from.
    #[serde(default)]
    #[schema(example = json!(["10.0.0.1"]))]
    pub ips: Vec<String>,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub lifetime_value: f64,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub annual_revenue: f64,
    /// 0..=100.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub margin_pct: f64,
    #[serde(default)]
    #[schema(minimum = 0)]
    pub open_opportunity_value: f64,
    /// 0..=1.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub win_probability: f64,
    /// 0..=1.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    pub churn_risk: f64,
    #[serde(default)]
    #[schema(example = "enterprise")]
    pub segment: String,
}

/// A promotional code (or password) a client can give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    #[schema(example = "SPRING", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub code: String,
    #[serde(default)]
    #[schema(example = 2500.0)]
    pub benefit_boost: f64,
    /// When set, the least tier the code grants.
    #[serde(default)]
    pub tier: Option<String>,
    /// After this instant the code no longer counts.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2027-03-31T00:00:00Z")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Promotion {
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub fn ip_proto(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Sip,
    Web,
    Other,
}

/// A contact-center endpoint: traffic to it is a session request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[schema(example = "sip", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub name: String,
    /// An address or a prefix (`10.0.1.0/24`).
    #[schema(example = "10.0.0.100")]
    pub ip: String,
    pub proto: Proto,
    #[schema(example = 5060)]
    pub port: u16,
    pub kind: ServiceKind,
}

impl Service {
    /// `ip` as a prefix (an address is a /32 or /128).
    pub fn net(&self) -> Option<IpNet> {
        parse_net(&self.ip)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    #[serde(default = "one")]
    pub margin: f64,
    #[serde(default = "one")]
    pub opportunity: f64,
    #[serde(default = "one")]
    pub retention: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            margin: 1.0,
            opportunity: 1.0,
            retention: 1.0,
        }
    }
}

/// The expected-benefit weights and the tier of unknown clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub weights: Weights,
    #[schema(example = "best-effort", pattern = r"^[A-Za-z0-9_.-]{1,64}$")]
    pub default_tier: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            weights: Weights::default(),
            default_tier: "best-effort".into(),
        }
    }
}

/// The VLAN every port carries untagged unless `/ports` says otherwise:
/// it always exists, with or without a record.
pub const DEFAULT_VLAN: u16 = 1;

/// The largest VLAN id (802.1Q: 4095 is reserved).
pub const MAX_VID: u16 = 4094;

/// A VLAN and the router's addresses in it. A VLAN with gateways is
/// routed: Tierflow answers ARP and ICMP echo for the gateway addresses
/// and forwards between the subnets of routed VLANs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Vlan {
    /// 802.1Q VLAN id, 1..=4094.
    #[schema(example = 20, minimum = 1, maximum = 4094)]
    pub vid: u16,
    /// Letters, digits, `_`, `-`, `.`; up to 64 characters (may be empty).
    #[serde(default)]
    #[schema(example = "voice", pattern = r"^[A-Za-z0-9_.-]{0,64}$")]
    pub name: String,
    /// The router's IPv4 address in each subnet of the VLAN, with the
    /// subnet's prefix length (`10.20.0.1/24`); the address is a host of
    /// its prefix. Subnets never overlap, within a VLAN or between VLANs.
    /// Empty: the VLAN is bridged, never routed.
    #[serde(default)]
    #[schema(example = json!(["10.20.0.1/24"]))]
    pub gateways: Vec<String>,
}

/// A gateway: the router's address and the subnet it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gateway {
    pub addr: std::net::Ipv4Addr,
    pub net: ipnet::Ipv4Net,
}

impl Gateway {
    /// `10.20.0.1/24`: an IPv4 host address of a /1 to /30 prefix.
    pub fn parse(v: &str) -> Result<Gateway, &'static str> {
        let net: ipnet::Ipv4Net = v
            .parse()
            .map_err(|_| "must be an IPv4 address with its prefix length, such as 10.20.0.1/24")?;
        if !(1..=30).contains(&net.prefix_len()) {
            return Err("the prefix length must be between 1 and 30");
        }
        let addr = net.addr();
        if addr == net.network() || addr == net.broadcast() {
            return Err(
                "must be a host address of its subnet, not its network or broadcast address",
            );
        }
        Ok(Gateway {
            addr,
            net: net.trunc(),
        })
    }

    /// The first and last address of the subnet, as numbers.
    pub fn range(&self) -> (u32, u32) {
        (
            u32::from(self.net.network()),
            u32::from(self.net.broadcast()),
        )
    }

    pub fn overlaps(&self, other: &Gateway) -> bool {
        let (a, b) = (self.range(), other.range());
        a.0 <= b.1 && b.0 <= a.1
    }
}

impl Vlan {
    /// The gateways, parsed (invalid ones skipped: validation rejects
    /// them before a VLAN is stored).
    pub fn gateways(&self) -> Vec<Gateway> {
        self.gateways
            .iter()
            .filter_map(|g| Gateway::parse(g).ok())
            .collect()
    }

    /// Routed: it has at least one gateway.
    pub fn is_routed(&self) -> bool {
        !self.gateways.is_empty()
    }

    pub fn validate(&self) -> Check {
        check_vid("vid", self.vid)?;
        if !self.name.is_empty() {
            check_name("name", &self.name)?;
        }
        let mut seen: Vec<Gateway> = Vec::with_capacity(self.gateways.len());
        for (i, g) in self.gateways.iter().enumerate() {
            let field = format!("gateways[{i}]");
            let gw = Gateway::parse(g).map_err(|r| FieldError::new(&field, r))?;
            if let Some((j, _)) = seen.iter().enumerate().find(|(_, o)| o.overlaps(&gw)) {
                return Err(FieldError::new(
                    field,
                    format!("subnet {} overlaps gateways[{j}]", gw.net),
                ));
            }
            seen.push(gw);
        }
        Ok(())
    }

    /// A subnet of this VLAN overlapping one of `other` (another VLAN):
    /// the error names this VLAN's gateway.
    pub fn check_overlap(&self, other: &Vlan) -> Check {
        let theirs = other.gateways();
        for (i, gw) in self.gateways.iter().enumerate() {
            let Ok(gw) = Gateway::parse(gw) else {
                continue;
            };
            if let Some(o) = theirs.iter().find(|o| o.overlaps(&gw)) {
                return Err(FieldError::new(
                    format!("gateways[{i}]"),
                    format!("subnet {} overlaps {} of VLAN {}", gw.net, o.net, other.vid),
                ));
            }
        }
        Ok(())
    }
}

fn vlan_one() -> Option<u16> {
    Some(DEFAULT_VLAN)
}

/// Which VLANs a switch port carries. A port without a record carries
/// VLAN 1 untagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// The switch's datapath id (16 hex digits, `0x` then hex, or decimal;
    /// always answered as 16 hex digits).
    #[schema(example = "0000000000000101")]
    pub dpid: String,
    /// The OpenFlow port number.
    #[schema(example = 3, minimum = 1, maximum = 4294967040_u32)]
    pub port: u32,
    /// The VLAN of the port's untagged frames (they leave it untagged);
    /// null: untagged frames are dropped. Absent: VLAN 1.
    #[serde(default = "vlan_one")]
    #[schema(example = 20, minimum = 1, maximum = 4094)]
    pub native_vlan: Option<u16>,
    /// VLANs the port carries with their 802.1Q tag.
    #[serde(default)]
    #[schema(example = json!([30]))]
    pub tagged_vlans: Vec<u16>,
}

/// The highest OpenFlow port number a physical port can have (`OFPP_MAX`).
pub const MAX_PORT_NO: u32 = 0xffff_ff00;

impl PortConfig {
    /// The datapath id, parsed.
    pub fn dpid_value(&self) -> Option<u64> {
        crate::views::parse_dpid(&self.dpid)
    }

    pub fn validate(&self) -> Check {
        if self.dpid_value().is_none() {
            return Err(FieldError::new(
                "dpid",
                "must be a datapath id: 16 hex digits, 0x then hex, or decimal",
            ));
        }
        if !(1..=MAX_PORT_NO).contains(&self.port) {
            return Err(FieldError::new(
                "port",
                format!("must be between 1 and {MAX_PORT_NO}"),
            ));
        }
        if let Some(v) = self.native_vlan {
            check_vid("native_vlan", v)?;
        }
        for (i, &v) in self.tagged_vlans.iter().enumerate() {
            let field = format!("tagged_vlans[{i}]");
            check_vid(&field, v)?;
            if self.tagged_vlans.get(..i).is_some_and(|b| b.contains(&v)) {
                return Err(FieldError::new(field, format!("VLAN {v} is listed twice")));
            }
        }
        if let Some(v) = self.native_vlan
            && self.tagged_vlans.contains(&v)
        {
            return Err(FieldError::new(
                "native_vlan",
                format!("VLAN {v} is also in tagged_vlans: a VLAN is native or tagged on a port"),
            ));
        }
        Ok(())
    }

    /// The VLANs the port names, with the field naming each.
    pub fn vlan_refs(&self) -> Vec<(String, u16)> {
        self.native_vlan
            .map(|v| ("native_vlan".to_string(), v))
            .into_iter()
            .chain(
                self.tagged_vlans
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("tagged_vlans[{i}]"), *v)),
            )
            .collect()
    }

    /// Every VLAN the port names exists (`exists` is asked for each but
    /// VLAN 1, which always does).
    pub fn check_refs(&self, exists: impl Fn(u16) -> bool) -> Check {
        for (field, v) in self.vlan_refs() {
            if v != DEFAULT_VLAN && !exists(v) {
                return Err(FieldError::new(field, format!("no VLAN {v}")));
            }
        }
        Ok(())
    }

    /// The same record with its datapath id in the canonical form.
    pub fn canonical(mut self) -> PortConfig {
        if let Some(d) = self.dpid_value() {
            self.dpid = crate::views::format_dpid(d);
        }
        self
    }

    /// Whether the port carries `vid` (tagged or not).
    pub fn carries(&self, vid: u16) -> bool {
        self.native_vlan == Some(vid) || self.tagged_vlans.contains(&vid)
    }
}

/// A VLAN id: 1..=4094.
pub fn check_vid(field: &str, v: u16) -> Check {
    if (1..=MAX_VID).contains(&v) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "must be a VLAN id between 1 and 4094",
        ))
    }
}

/// Everything `tierflow crm load` takes (the API's shapes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrmFile {
    #[serde(default)]
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub customers: Vec<Customer>,
    #[serde(default)]
    pub promotions: Vec<Promotion>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub policy: Option<Policy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<Vlan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
}

/// What is known about the client behind a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "10.0.0.1")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "00:00:00:00:00:01")]
    pub mac: Option<String>,
    /// E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "+14155550100")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Where the data came from (`sip`, `ivr`, `web-form`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a session has its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The benefit reached the tier's `min_benefit`.
    Automatic,
    /// A promotion's tier floor lifted it.
    Promotion,
    /// No customer matched: the policy's default tier.
    Default,
    /// An operator chose the tier.
    ManualOverride,
    /// The call is on hold (the tier's hold rate applies).
    Hold,
}

/// The terms of the expected-benefit sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Terms {
    pub margin: f64,
    pub opportunity: f64,
    pub retention: f64,
    pub promotion: f64,
}

/// A decision and everything it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// The client data the decision saw.
    pub inputs: ClientData,
    /// The customer matched, and by what (`phone` or `ip`).
    pub customer_id: Option<String>,
    pub matched_by: Option<String>,
    pub promotion: Option<String>,
    pub weights: Weights,
    pub terms: Terms,
    pub benefit: f64,
    pub tier: String,
    pub reason: Reason,
    /// One sentence for people.
    pub detail: String,
    /// What in the tier does not fit the session (a call whose codec needs
    /// more than the tier's `rate_kbps` or `hold_rate_kbps`), one
    /// sentence each; empty when nothing.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Admitted, tier flows installed.
    Active,
    /// A call on hold: the tier's hold rate applies.
    Hold,
    /// Ended (idle, deleted, BYE); kept for a while for inspection.
    Ended,
}

/// A live session as the control plane keeps it (and Redis stores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    #[schema(example = "s-00000001")]
    pub id: String,
    pub service: String,
    #[schema(value_type = String, example = "10.0.0.1")]
    pub client_ip: IpAddr,
    #[schema(value_type = String, example = "10.0.0.100")]
    pub server_ip: IpAddr,
    pub state: SessionState,
    /// The tier in force (the override's when there is one).
    pub tier: String,
    /// A tier set by hand, winning over the automatic choice.
    pub override_tier: Option<String>,
    pub customer_id: Option<String>,
    pub explanation: Explanation,
    /// Datapath ids the session's traffic crosses, client side first.
    pub path: Vec<String>,
    /// Why the state is what it is (`sip re-INVITE sendonly`, `cti`, ...).
    #[serde(default)]
    pub state_reason: String,
    /// The id an application server gave the session when it requested it
    /// (`POST /sessions`); null for sessions the network started.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The rate measured on the session's path in each direction, from
    /// the switches' counters; at most 2 s old while the session lives,
    /// null until first measured.
    #[serde(default)]
    pub measured_kbps: Option<Measured>,
    /// The meters the session's flows go through on every switch of its
    /// path now (the hold rate on hold); null while it has no path.
    #[serde(default)]
    pub meters: Option<SessionMeters>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A session's meters, one per direction, as installed on every switch
/// of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionMeters {
    pub to_server: MeterSetting,
    pub to_client: MeterSetting,
    /// For a call: kbit/s its codec needs on the wire per direction (from
    /// the SDP: codec, ptime, b=TIAS or b=AS, with RTP, UDP, IP and
    /// Ethernet headers); a direction that keeps running on hold (music
    /// on hold after `a=sendonly`) keeps this rate.
    #[schema(example = 88)]
    pub need_kbps: Option<u32>,
}

/// One meter: a drop band at `rate_kbps` whose token bucket holds
/// `bucket_kbits` (a fifth of a second of the rate, never less than the
/// tier's `burst_kbits`; on hold half a second of the hold rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeterSetting {
    #[schema(example = 50000)]
    pub rate_kbps: u32,
    #[schema(example = 25000)]
    pub bucket_kbits: u32,
}

/// A session's rate as the switches counted it: kbit/s on the wire
/// (whole frames, as the meters count them), averaged since the previous
/// reading of the counters of the session's flows on its path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Measured {
    /// Client to server, kbit/s.
    #[schema(example = 48210.5)]
    pub to_server: f64,
    /// Server to client, kbit/s.
    #[schema(example = 1204.0)]
    pub to_client: f64,
    /// When the counters were read.
    pub at: DateTime<Utc>,
}

/// A rejected field: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

pub type Check = Result<(), FieldError>;

/// Names and ids: `[A-Za-z0-9_.-]`, 1..=64 characters.
pub fn check_name(field: &str, v: &str) -> Check {
    if v.is_empty() || v.len() > 64 {
        return Err(FieldError::new(field, "must be 1 to 64 characters"));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(FieldError::new(
            field,
            "may hold only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(())
}

/// `+` then 8..=15 digits, the first not 0.
pub fn is_e164(v: &str) -> bool {
    v.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// An address (`10.0.0.1`) or a prefix (`10.0.1.0/24`).
pub fn parse_net(v: &str) -> Option<IpNet> {
    v.parse::<IpNet>()
        .ok()
        .map(|n| n.trunc())
        .or_else(|| v.parse::<IpAddr>().ok().map(IpNet::from))
}

fn finite(field: &str, v: f64) -> Check {
    if v.is_finite() {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be a finite number"))
    }
}

/// The largest money value a record may hold: far above any customer's,
/// and small enough that every benefit computed from such values stays
/// finite (and so storable and readable as JSON).
pub const MAX_VALUE: f64 = 1e15;

/// Finite and at most `max` in magnitude.
fn bounded(field: &str, v: f64, max: f64) -> Check {
    finite(field, v)?;
    if v.abs() > max {
        return Err(FieldError::new(
            field,
            format!("must be between -{max:e} and {max:e}"),
        ));
    }
    Ok(())
}

fn non_negative(field: &str, v: f64) -> Check {
    finite(field, v)?;
    if v < 0.0 {
        return Err(FieldError::new(field, "must not be negative"));
    }
    if v > MAX_VALUE {
        return Err(FieldError::new(field, "must be at most 1e15"));
    }
    Ok(())
}

fn unit(field: &str, v: f64) -> Check {
    finite(field, v)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(FieldError::new(field, "must be between 0 and 1"));
    }
    Ok(())
}

impl Tier {
    pub fn validate(&self) -> Check {
        check_name("name", &self.name)?;
        bounded("min_benefit", self.min_benefit, 1e21)?;
        if self.rate_kbps == 0 {
            return Err(FieldError::new("rate_kbps", "must be greater than 0"));
        }
        if self.dscp > 63 {
            return Err(FieldError::new("dscp", "must be between 0 and 63"));
        }
        if self.queue_min_kbps > self.rate_kbps {
            return Err(FieldError::new(
                "queue_min_kbps",
                "must not exceed rate_kbps",
            ));
        }
        if self.hold_rate_kbps == 0 {
            return Err(FieldError::new("hold_rate_kbps", "must be greater than 0"));
        }
        if self.queue_id > 0xffff_fffe {
            return Err(FieldError::new("queue_id", "must be below 4294967295"));
        }
        Ok(())
    }
}

impl Customer {
    pub fn validate(&self) -> Check {
        check_name("id", &self.id)?;
        for (i, p) in self.phones.iter().enumerate() {
            if !is_e164(p) {
                return Err(FieldError::new(
                    format!("phones[{i}]"),
                    "must be an E.164 number such as +14155550100",
                ));
            }
        }
        for (i, ip) in self.ips.iter().enumerate() {
            if parse_net(ip).is_none() {
                return Err(FieldError::new(
                    format!("ips[{i}]"),
                    "must be an IP address or prefix",
                ));
            }
        }
        non_negative("lifetime_value", self.lifetime_value)?;
        non_negative("annual_revenue", self.annual_revenue)?;
        non_negative("open_opportunity_value", self.open_opportunity_value)?;
        non_negative("margin_pct", self.margin_pct)?;
        if self.margin_pct > 100.0 {
            return Err(FieldError::new("margin_pct", "must be between 0 and 100"));
        }
        unit("win_probability", self.win_probability)?;
        unit("churn_risk", self.churn_risk)?;
        Ok(())
    }
}

impl Promotion {
    pub fn validate(&self) -> Check {
        check_name("code", &self.code)?;
        bounded("benefit_boost", self.benefit_boost, MAX_VALUE)?;
        if let Some(t) = &self.tier {
            check_name("tier", t)?;
        }
        Ok(())
    }
}

impl Service {
    pub fn validate(&self) -> Check {
        check_name("name", &self.name)?;
        if self.net().is_none() {
            return Err(FieldError::new("ip", "must be an IP address or prefix"));
        }
        if self.port == 0 {
            return Err(FieldError::new("port", "must be between 1 and 65535"));
        }
        Ok(())
    }
}

impl Policy {
    pub fn validate(&self) -> Check {
        bounded("weights.margin", self.weights.margin, 1e6)?;
        bounded("weights.opportunity", self.weights.opportunity, 1e6)?;
        bounded("weights.retention", self.weights.retention, 1e6)?;
        check_name("default_tier", &self.default_tier)
    }
}

impl ClientData {
    pub fn validate(&self) -> Check {
        if let Some(p) = &self.phone
            && !is_e164(p)
        {
            return Err(FieldError::new(
                "phone",
                "must be an E.164 number such as +14155550100",
            ));
        }
        if let Some(c) = &self.promo_code {
            check_name("promo_code", c)?;
        }
        if let Some(a) = &self.account_id {
            check_name("account_id", a)?;
        }
        Ok(())
    }
}

impl CrmFile {
    /// Every record valid, and every tier a record names exists here or
    /// is listed in `known_tiers`.
    pub fn validate(&self, known_tiers: &[String]) -> Check {
        let has_tier =
            |t: &str| self.tiers.iter().any(|x| x.name == t) || known_tiers.iter().any(|k| k == t);
        for (i, t) in self.tiers.iter().enumerate() {
            t.validate()
                .map_err(|e| prefix(&format!("tiers[{i}]"), e))?;
        }
        for (i, c) in self.customers.iter().enumerate() {
            c.validate()
                .map_err(|e| prefix(&format!("customers[{i}]"), e))?;
        }
        for (i, p) in self.promotions.iter().enumerate() {
            p.validate()
                .map_err(|e| prefix(&format!("promotions[{i}]"), e))?;
            if let Some(t) = &p.tier
                && !has_tier(t)
            {
                return Err(FieldError::new(
                    format!("promotions[{i}].tier"),
                    format!("no tier named {t:?}"),
                ));
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            s.validate()
                .map_err(|e| prefix(&format!("services[{i}]"), e))?;
        }
        if let Some(p) = &self.policy {
            p.validate().map_err(|e| prefix("policy", e))?;
            if !has_tier(&p.default_tier) {
                return Err(FieldError::new(
                    "policy.default_tier",
                    format!("no tier named {:?}", p.default_tier),
                ));
            }
        }
        for (i, v) in self.vlans.iter().enumerate() {
            let at = format!("vlans[{i}]");
            v.validate().map_err(|e| prefix(&at, e))?;
            for w in self.vlans.get(..i).into_iter().flatten() {
                if w.vid != v.vid {
                    v.check_overlap(w).map_err(|e| prefix(&at, e))?;
                }
            }
        }
        for (i, p) in self.ports.iter().enumerate() {
            p.validate()
                .map_err(|e| prefix(&format!("ports[{i}]"), e))?;
        }
        Ok(())
    }
}

fn prefix(p: &str, e: FieldError) -> FieldError {
    FieldError::new(format!("{p}.{}", e.field), e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gold() -> Tier {
        Tier {
            name: "gold".into(),
            min_benefit: 5000.0,
            rate_kbps: 50_000,
            burst_kbits: 5000,
            dscp: 46,
            queue_id: 1,
            queue_min_kbps: 20_000,
            hold_rate_kbps: 64,
        }
    }

    #[test]
    fn values_are_bounded_so_every_benefit_stays_finite() {
        let c: Customer = serde_json::from_str(
            r#"{"id": "c-1", "name": "Big", "phones": [], "ips": [],
 "lifetime_value": 1e300, "annual_revenue": 0.0, "margin_pct": 0.0,
 "open_opportunity_value": 0.0, "win_probability": 0.0, "churn_risk": 1.0}"#,
        )
        .expect("customer");
        assert_eq!(
            c.validate().map_err(|e| e.field),
            Err("lifetime_value".to_string())
        );
        let ok = Customer {
            lifetime_value: MAX_VALUE,
            ..c
        };
        assert_eq!(ok.validate(), Ok(()));
        let p = Policy {
            weights: Weights {
                margin: 1e300,
                ..Weights::default()
            },
            ..Policy::default()
        };
        assert_eq!(
            p.validate().map_err(|e| e.field),
            Err("weights.margin".to_string())
        );
        // The largest values and weights still give a finite benefit.
        let worst = 1e6 * MAX_VALUE * 100.0 / 100.0 * 3.0 + MAX_VALUE;
        assert!(worst.is_finite());
    }

    #[test]
    fn product_md_shapes_parse() {
        let t: Tier = serde_json::from_str(
            r#"{"name": "gold", "min_benefit": 5000.0, "rate_kbps": 50000, "burst_kbits": 5000,
 "dscp": 46, "queue_id": 1, "queue_min_kbps": 20000, "hold_rate_kbps": 64}"#,
        )
        .expect("tier");
        assert_eq!(t, gold());
        let c: Customer = serde_json::from_str(
            r#"{"id": "c-1001", "name": "Acme Corp", "phones": ["+14155550100"], "ips": ["10.0.0.1"],
 "lifetime_value": 250000.0, "annual_revenue": 80000.0, "margin_pct": 22.5,
 "open_opportunity_value": 40000.0, "win_probability": 0.35, "churn_risk": 0.1,
 "segment": "enterprise"}"#,
        )
        .expect("customer");
        assert_eq!(c.validate(), Ok(()));
        let p: Promotion = serde_json::from_str(
            r#"{"code": "SPRING", "benefit_boost": 2500.0, "tier": null, "expires_at": "2027-03-31T00:00:00Z"}"#,
        )
        .expect("promotion");
        assert!(p.valid_at("2027-03-30T23:59:59Z".parse().expect("time")));
        assert!(!p.valid_at("2027-03-31T00:00:00Z".parse().expect("time")));
        let s: Service = serde_json::from_str(
            r#"{"name": "sip", "ip": "10.0.0.100", "proto": "udp", "port": 5060, "kind": "sip"}"#,
        )
        .expect("service");
        assert_eq!(s.net().map(|n| n.prefix_len()), Some(32));
        let pol: Policy = serde_json::from_str(
            r#"{"weights": {"margin": 1.0, "opportunity": 1.0, "retention": 1.0}, "default_tier": "best-effort"}"#,
        )
        .expect("policy");
        assert_eq!(pol, Policy::default());
    }

    #[test]
    fn sessions_stored_before_measurements_still_read() {
        let old = r#"{"id": "s-1", "service": "sip", "client_ip": "10.0.0.1",
            "server_ip": "10.0.0.100", "state": "active", "tier": "gold",
            "override_tier": null, "customer_id": null, "path": [],
            "explanation": {"inputs": {}, "customer_id": null, "matched_by": null,
              "promotion": null, "weights": {"margin": 1.0, "opportunity": 1.0, "retention": 1.0},
              "terms": {"margin": 0.0, "opportunity": 0.0, "retention": 0.0, "promotion": 0.0},
              "benefit": 0.0, "tier": "gold", "reason": "default", "detail": ""},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}"#;
        let s: Session = serde_json::from_str(old).expect("an old record");
        assert_eq!(s.measured_kbps, None);
        let v = serde_json::to_value(&s).expect("json");
        assert!(v["measured_kbps"].is_null(), "{v}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_str::<Tier>(
            r#"{"name":"g","min_benefit":0,"rate_kbps":1,"burst_kbits":1,"dscp":0,"queue_id":0,"colour":"red"}"#,
        )
        .expect_err("unknown field");
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn tier_ranges_name_the_field() {
        let field = |t: Tier| t.validate().expect_err("invalid").field;
        assert_eq!(gold().validate(), Ok(()));
        assert_eq!(field(Tier { dscp: 64, ..gold() }), "dscp");
        assert_eq!(
            field(Tier {
                rate_kbps: 0,
                ..gold()
            }),
            "rate_kbps"
        );
        assert!(
            Tier {
                burst_kbits: 0,
                ..gold()
            }
            .validate()
            .is_ok(),
            "no burst: Tierflow sizes the bucket"
        );
        assert_eq!(
            field(Tier {
                queue_min_kbps: 50_001,
                ..gold()
            }),
            "queue_min_kbps"
        );
        assert_eq!(
            field(Tier {
                name: "no spaces".into(),
                ..gold()
            }),
            "name"
        );
        assert_eq!(
            field(Tier {
                min_benefit: f64::NAN,
                ..gold()
            }),
            "min_benefit"
        );
        assert_eq!(
            Tier {
                dscp: 63,
                queue_min_kbps: 50_000,
                ..gold()
            }
            .validate(),
            Ok(())
        );
    }

    #[test]
    fn e164_and_prefixes() {
        assert!(is_e164("+14155550100"));
        assert!(is_e164("+4930123456"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1415555010012345"));
        assert!(!is_e164("+1415-555"));
        assert_eq!(
            parse_net("10.0.1.7/24").map(|n| n.to_string()),
            Some("10.0.1.0/24".into())
        );
        assert!(parse_net("fe80::1").is_some());
        assert!(parse_net("10.0.0.300").is_none());
    }

    #[test]
    fn customer_ranges_name_the_field() {
        let base: Customer = serde_json::from_str(r#"{"id":"c-1"}"#).expect("minimal customer");
        assert_eq!(base.validate(), Ok(()));
        let field = |c: Customer| c.validate().expect_err("invalid").field;
        assert_eq!(
            field(Customer {
                win_probability: 1.5,
                ..base.clone()
            }),
            "win_probability"
        );
        assert_eq!(
            field(Customer {
                churn_risk: -0.1,
                ..base.clone()
            }),
            "churn_risk"
        );
        assert_eq!(
            field(Customer {
                phones: vec!["+14155550100".into(), "555-0100".into()],
                ..base.clone()
            }),
            "phones[1]"
        );
        assert_eq!(
            field(Customer {
                ips: vec!["10.0.0.0/33".into()],
                ..base.clone()
            }),
            "ips[0]"
        );
    }

    #[test]
    fn vlans_name_the_field_that_breaks_a_rule() {
        let v: Vlan =
            serde_json::from_str(r#"{"vid": 20, "name": "voice", "gateways": ["10.20.0.1/24"]}"#)
                .expect("PRODUCT.md's VLAN");
        assert_eq!(v.validate(), Ok(()));
        assert!(v.is_routed());
        assert_eq!(
            v.gateways(),
            vec![Gateway {
                addr: "10.20.0.1".parse().expect("ip"),
                net: "10.20.0.0/24".parse().expect("net"),
            }]
        );
        let field = |v: Vlan| v.validate().expect_err("invalid").field;
        assert_eq!(
            field(Vlan {
                vid: 0,
                ..v.clone()
            }),
            "vid"
        );
        assert_eq!(
            field(Vlan {
                vid: 4095,
                ..v.clone()
            }),
            "vid"
        );
        assert_eq!(
            field(Vlan {
                name: "no spaces".into(),
                ..v.clone()
            }),
            "name"
        );
        for bad in [
            "10.20.0.0/24",
            "10.20.0.255/24",
            "10.20.0.1",
            "10.20.0.1/32",
            "10.20.0.1/31",
            "fe80::1/64",
            "10.20.0.300/24",
        ] {
            assert_eq!(
                field(Vlan {
                    gateways: vec!["10.30.0.1/24".into(), bad.into()],
                    ..v.clone()
                }),
                "gateways[1]",
                "{bad}"
            );
        }
        // Two subnets of one VLAN may not overlap either.
        assert_eq!(
            field(Vlan {
                gateways: vec!["10.20.0.1/16".into(), "10.20.5.1/24".into()],
                ..v.clone()
            }),
            "gateways[1]"
        );
        let other = Vlan {
            vid: 30,
            name: String::new(),
            gateways: vec!["10.30.0.1/24".into(), "10.20.0.129/17".into()],
        };
        let e = v.check_overlap(&other).expect_err("overlap");
        assert_eq!(e.field, "gateways[0]");
        assert!(e.reason.contains("VLAN 30"), "{e}");
        let apart = Vlan {
            gateways: vec!["10.21.0.1/24".into()],
            ..other
        };
        assert_eq!(v.check_overlap(&apart), Ok(()));
    }

    #[test]
    fn ports_name_the_field_that_breaks_a_rule() {
        let p: PortConfig = serde_json::from_str(
            r#"{"dpid": "0000000000000101", "port": 3, "native_vlan": 20, "tagged_vlans": [30]}"#,
        )
        .expect("PRODUCT.md's port");
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.dpid_value(), Some(0x101));
        let defaults: PortConfig =
            serde_json::from_str(r#"{"dpid": "0x101", "port": 1}"#).expect("minimal");
        assert_eq!(defaults.native_vlan, Some(1));
        assert_eq!(defaults.clone().canonical().dpid, "0000000000000101");
        let trunk: PortConfig = serde_json::from_str(
            r#"{"dpid": "1", "port": 1, "native_vlan": null, "tagged_vlans": [10, 20]}"#,
        )
        .expect("trunk without native");
        assert_eq!(trunk.validate(), Ok(()));
        assert!(trunk.carries(20) && !trunk.carries(1));
        let field = |p: PortConfig| p.validate().expect_err("invalid").field;
        assert_eq!(
            field(PortConfig {
                dpid: "s1".into(),
                ..p.clone()
            }),
            "dpid"
        );
        assert_eq!(
            field(PortConfig {
                port: 0,
                ..p.clone()
            }),
            "port"
        );
        assert_eq!(
            field(PortConfig {
                port: 0xffff_fff8,
                ..p.clone()
            }),
            "port"
        );
        assert_eq!(
            field(PortConfig {
                native_vlan: Some(4095),
                ..p.clone()
            }),
            "native_vlan"
        );
        assert_eq!(
            field(PortConfig {
                tagged_vlans: vec![30, 0],
                ..p.clone()
            }),
            "tagged_vlans[1]"
        );
        assert_eq!(
            field(PortConfig {
                tagged_vlans: vec![30, 30],
                ..p.clone()
            }),
            "tagged_vlans[1]"
        );
        assert_eq!(
            field(PortConfig {
                tagged_vlans: vec![30, 20],
                ..p.clone()
            }),
            "native_vlan"
        );
        let refs = p.check_refs(|v| v == 20).expect_err("no VLAN 30");
        assert_eq!(refs.field, "tagged_vlans[0]");
        assert_eq!(p.check_refs(|v| v == 20 || v == 30), Ok(()));
        assert_eq!(
            defaults.check_refs(|_| false),
            Ok(()),
            "VLAN 1 always exists"
        );
    }

    #[test]
    fn crm_file_checks_tier_references() {
        let f = CrmFile {
            tiers: vec![gold()],
            policy: Some(Policy {
                default_tier: "bronze".into(),
                ..Policy::default()
            }),
            ..CrmFile::default()
        };
        assert_eq!(
            f.validate(&[]).expect_err("missing tier").field,
            "policy.default_tier"
        );
        assert_eq!(f.validate(&["bronze".into()]), Ok(()));
    }
}
