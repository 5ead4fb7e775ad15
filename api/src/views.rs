//! What the API shows of the control plane's live state (switches, flows,
//! meters, queues, topology, health), the list filters, the small request
//! bodies of the session actions, and the datapath id text form. The
//! control plane fills these views; the API only serialises them.

use crate::model::{ClientData, SessionState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};

/// A datapath id as the API prints it: 16 lower-case hex digits.
pub fn format_dpid(dpid: u64) -> String {
    format!("{dpid:016x}")
}

/// A datapath id as the API reads it: exactly 16 hex digits
/// (`0000000000000001`), `0x` then hex (`0x1`), or decimal (`1`).
pub fn parse_dpid(v: &str) -> Option<u64> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok();
    }
    if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u64::from_str_radix(v, 16).ok();
    }
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Redis, every OVSDB endpoint and the API are up.
    Ok,
    /// Something the controller depends on is unreachable.
    Degraded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointStatus {
    #[schema(example = "unix:/var/run/openvswitch/db.sock")]
    pub endpoint: String,
    pub connected: bool,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// Redis answers.
    pub redis: bool,
    pub ovsdb: Vec<EndpointStatus>,
    /// Switches connected over OpenFlow.
    pub switches: usize,
    /// The instance that answered (`/cluster` lists them all).
    #[serde(default)]
    #[schema(example = "ctl-a:6653")]
    pub instance: String,
    /// Its role in the cluster: `leader` (master of the switches),
    /// `follower`, or `alone` (Redis did not answer when it started).
    #[serde(default)]
    #[schema(example = "leader")]
    pub role: String,
}

/// The controller instances sharing this Redis (`GET /cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClusterView {
    /// The instance that answered.
    #[schema(example = "ctl-a:6653")]
    pub instance: String,
    /// The instance that is master of the switches (none while its lease
    /// is free).
    pub leader: Option<String>,
    /// The leader's term: grows with every new leader, and is the
    /// OpenFlow `generation_id` of its MASTER role requests.
    pub term: u64,
    pub instances: Vec<InstanceView>,
}

/// One instance of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InstanceView {
    #[schema(example = "ctl-a:6653")]
    pub id: String,
    /// `leader`, `follower`, `alone` or `starting`, as it last said.
    pub role: String,
    /// Where its REST API answers.
    #[schema(example = "127.0.0.1:8080")]
    pub api: String,
    #[schema(example = "0.0.0.0:6653")]
    pub openflow: String,
    /// When its lease ends unless it beats again (RFC 3339).
    pub lease_expires_at: String,
    pub started_at: String,
    /// Switches connected to it (16 hex digits).
    pub switches: Vec<String>,
    /// Switches it is master of (OpenFlow role MASTER).
    pub master_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortView {
    pub port_no: u32,
    #[schema(example = "s1-eth1")]
    pub name: String,
    #[schema(example = "00:00:00:00:00:01")]
    pub hw_addr: String,
    /// Link up and port not administratively down.
    pub up: bool,
    pub curr_speed_kbps: u32,
}

/// The switch's answer to a meter-features request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeterFeaturesView {
    #[schema(example = 262144)]
    pub max_meter: u32,
    #[schema(example = json!(["DROP"]))]
    pub band_types: Vec<String>,
    #[schema(example = json!(["KBPS", "BURST", "STATS"]))]
    pub capabilities: Vec<String>,
    pub max_bands: u8,
    pub max_color: u8,
}

/// A connected switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SwitchView {
    /// 16 hex digits.
    #[schema(example = "0000000000000001")]
    pub dpid: String,
    /// Where the switch connected from.
    #[schema(example = "127.0.0.1:40122")]
    pub address: String,
    pub n_tables: u8,
    #[schema(example = json!(["FLOW_STATS", "TABLE_STATS", "PORT_STATS", "QUEUE_STATS"]))]
    pub capabilities: Vec<String>,
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub ports: Vec<PortView>,
    /// Absent when the switch does not support meters.
    pub meter_features: Option<MeterFeaturesView>,
    pub connected_at: DateTime<Utc>,
}

/// One flow entry as the switch reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowView {
    pub table_id: u8,
    pub priority: u16,
    /// Hex, `0x` prefixed.
    #[schema(example = "0x7466000000000001")]
    pub cookie: String,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub duration_sec: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    /// OXM fields by their `decode` names (`in_port`, `ipv4_src`, ...).
    #[serde(rename = "match")]
    #[schema(value_type = Object)]
    pub match_: serde_json::Value,
    /// Instructions as `decode` prints them.
    #[schema(value_type = Object)]
    pub instructions: serde_json::Value,
}

/// One meter's statistics and configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeterView {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    /// The first band's rate, kbit/s, as the switch reports it (null when
    /// the meter has no band or counts packets).
    #[schema(example = 50000)]
    pub rate_kbps: Option<u32>,
    /// The first band's bucket (burst size), kbit, as the switch reports
    /// it: what a session's meter lets through above its rate at once.
    #[schema(example = 25000)]
    pub bucket_kbits: Option<u32>,
    /// Bands as `decode` prints them.
    #[schema(value_type = Object)]
    pub bands: serde_json::Value,
}

/// One queue of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueView {
    pub port_no: u32,
    pub port_name: String,
    pub queue_id: u32,
    /// Configured guaranteed rate, when OVSDB knows it.
    pub min_kbps: Option<u32>,
    /// Configured ceiling, when OVSDB knows it.
    pub max_kbps: Option<u32>,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub src_dpid: String,
    pub src_port: u32,
    pub dst_dpid: String,
    pub dst_port: u32,
}

/// Where a host attaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostView {
    #[schema(example = "00:00:00:00:00:01")]
    pub mac: String,
    #[schema(example = "10.0.0.1")]
    pub ip: Option<String>,
    pub dpid: String,
    pub port: u32,
    /// The VLAN the host was learnt in.
    #[serde(default = "default_vlan")]
    #[schema(example = 1)]
    pub vlan: u16,
}

fn default_vlan() -> u16 {
    crate::model::DEFAULT_VLAN
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopologyView {
    /// Datapath ids.
    pub switches: Vec<String>,
    pub links: Vec<LinkView>,
    pub hosts: Vec<HostView>,
}

/// What an alarm is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A switch answered with OFPT_ERROR messages.
    SwitchError,
    /// Redis cannot be reached: new sessions get the default tier and
    /// session writes wait.
    RedisDown,
    /// A switch's meter pool is more than 80 % used; when it is full, new
    /// sessions crossing it get no tier (plain forwarding).
    MeterPool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Degraded but working; look at it.
    Warning,
    /// Sessions are losing their tier or the controller its store.
    Critical,
}

/// A condition an operator should look at, active now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub severity: Severity,
    /// One sentence for people.
    #[schema(example = "switch 0000000000000001 sent OFPT_ERROR METER_MOD_FAILED/OUT_OF_METERS")]
    pub message: String,
    /// The switch it is about, when it is about one (16 hex digits).
    #[schema(example = "0000000000000001")]
    pub dpid: Option<String>,
    /// When the condition was first seen (it has held since).
    pub since: DateTime<Utc>,
    /// How many times it was seen since then (errors received, failed
    /// reconnects, ...); 1 for a state.
    #[schema(example = 3)]
    pub count: u64,
}

/// One page of a longer list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many match the filter, over all pages.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// The default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page a client may ask for.
pub const MAX_LIMIT: usize = 1000;

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

/// Filters of `GET /customers`; every given filter must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilter {
    /// Exact segment.
    pub segment: Option<String>,
    /// A number among the customer's phones (E.164).
    pub phone: Option<String>,
    /// An address inside one of the customer's addresses or prefixes.
    #[param(value_type = Option<String>, example = "10.0.0.1")]
    pub ip: Option<IpAddr>,
    /// Records to skip (the list is ordered by id).
    #[serde(default)]
    pub offset: usize,
    /// Page size, at most 1000.
    #[serde(default = "default_limit")]
    #[param(default = 100, maximum = 1000)]
    pub limit: usize,
}

impl Default for CustomerFilter {
    fn default() -> Self {
        CustomerFilter {
            segment: None,
            phone: None,
            ip: None,
            offset: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// Filters of `GET /sessions`; every given filter must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// The tier in force.
    pub tier: Option<String>,
    /// The matched customer's id.
    pub customer: Option<String>,
    /// `active`, `hold` or `ended`.
    pub state: Option<SessionState>,
    /// Sessions to skip (the list is ordered by id).
    #[serde(default)]
    pub offset: usize,
    /// Page size, at most 1000.
    #[serde(default = "default_limit")]
    #[param(default = 100, maximum = 1000)]
    pub limit: usize,
}

impl Default for SessionFilter {
    fn default() -> Self {
        SessionFilter {
            tier: None,
            customer: None,
            state: None,
            offset: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// `POST /sessions/{id}/client-data`: what an IVR or a web form learnt
/// about the client. Address fields are not accepted: they come from
/// the packets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientDataIn {
    /// E.164.
    #[serde(default)]
    #[schema(example = "+14155550100")]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(example = "SPRING")]
    pub promo_code: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    /// Where the data came from (`ivr`, `web-form`, ...).
    #[serde(default)]
    #[schema(example = "ivr")]
    pub source: Option<String>,
}

impl From<ClientDataIn> for ClientData {
    fn from(d: ClientDataIn) -> Self {
        ClientData {
            ip: None,
            mac: None,
            phone: d.phone,
            promo_code: d.promo_code,
            account_id: d.account_id,
            source: d.source,
        }
    }
}

/// What an application server asks a session for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A call's media (RTP; its RTCP rides along on the next ports).
    Voice,
    Web,
    /// Anything else; what a request that names no kind asks for.
    #[default]
    Other,
}

/// One end of a requested session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// An IPv4 unicast address.
    #[schema(value_type = String, example = "10.0.0.1")]
    pub ip: IpAddr,
    /// The port, or null for any port.
    #[serde(default)]
    #[schema(example = 40000, minimum = 1, maximum = 65535)]
    pub port: Option<u16>,
}

/// `POST /sessions`: a session an application server (a session border
/// controller, a SIP proxy, a web server, an IVR) knows before its first
/// packet. The same `external_id` again answers the same session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The application's own id for the session (a SIP Call-ID, ...):
    /// 1 to 256 printable characters.
    #[schema(example = "a84b4c76e66710@pc33")]
    pub external_id: String,
    pub proto: crate::model::Proto,
    pub client: Endpoint,
    pub server: Endpoint,
    /// `other` when left out.
    #[serde(default)]
    pub kind: RequestKind,
    /// What the application knows of the client. `phone` may be E.164 or
    /// a national number (normalised with the controller's default
    /// country).
    #[serde(default)]
    pub client_data: Option<ClientDataIn>,
}

impl SessionRequest {
    pub fn validate(&self) -> crate::model::Check {
        use crate::model::FieldError;
        let id = &self.external_id;
        if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
            return Err(FieldError::new(
                "external_id",
                "must be 1 to 256 printable characters",
            ));
        }
        for (field, e) in [("client", &self.client), ("server", &self.server)] {
            let ok = match e.ip {
                IpAddr::V4(v4) => {
                    !(v4.is_unspecified()
                        || v4.is_broadcast()
                        || v4.is_multicast()
                        || v4.is_loopback())
                }
                IpAddr::V6(_) => false,
            };
            if !ok {
                return Err(FieldError::new(
                    format!("{field}.ip"),
                    "must be an IPv4 unicast address of a host",
                ));
            }
            if e.port == Some(0) {
                return Err(FieldError::new(
                    format!("{field}.port"),
                    "must be 1 to 65535, or null for any port",
                ));
            }
        }
        if self.client.ip == self.server.ip {
            return Err(FieldError::new("server.ip", "must differ from client.ip"));
        }
        if let Some(d) = &self.client_data {
            if let Some(p) = &d.phone {
                let digits = p.chars().filter(char::is_ascii_digit).count();
                if p.len() > 32
                    || !(4..=15).contains(&digits)
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_digit() || "+ ().-".contains(c))
                {
                    return Err(FieldError::new(
                        "client_data.phone",
                        "must be a phone number (E.164 such as +14155550100, or national)",
                    ));
                }
            }
            if let Some(c) = &d.promo_code {
                crate::model::check_name("client_data.promo_code", c)?;
            }
            if let Some(a) = &d.account_id {
                crate::model::check_name("client_data.account_id", a)?;
            }
        }
        Ok(())
    }
}

/// `PUT /sessions/{id}/tier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierChoice {
    #[schema(example = "gold")]
    pub tier: String,
}

/// `PUT /sessions/{id}/state`: `hold` or `active`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// `hold` or `active` (`ended` is refused: end a session with DELETE).
    #[schema(example = "hold")]
    pub state: SessionState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpid_forms() {
        assert_eq!(parse_dpid("0000000000000001"), Some(1));
        assert_eq!(parse_dpid("00000000000000ff"), Some(255));
        assert_eq!(parse_dpid("0xff"), Some(255));
        assert_eq!(parse_dpid("0XFF"), Some(255));
        assert_eq!(parse_dpid("255"), Some(255));
        assert_eq!(parse_dpid("ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_dpid("18446744073709551616"), None);
        assert_eq!(parse_dpid("0x"), None);
        assert_eq!(parse_dpid("0x10000000000000000"), None);
        assert_eq!(parse_dpid("s1"), None);
        assert_eq!(parse_dpid(""), None);
        assert_eq!(parse_dpid("-1"), None);
        assert_eq!(format_dpid(255), "00000000000000ff");
        assert_eq!(parse_dpid(&format_dpid(u64::MAX - 7)), Some(u64::MAX - 7));
    }
}
