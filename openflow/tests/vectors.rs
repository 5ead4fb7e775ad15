//! Conformance against the shared OpenFlow 1.3 test vectors: Ryu's binary
//! `*.packet` files, each with Ryu's decoded form (`<name>.packet.json`)
//! beside it.
//!
//! For every vector file this checks that each message in it decodes, that
//! re-encoding gives back exactly the input bytes, and that every field
//! Ryu's JSON lists agrees with our decode (`to_json` under
//! `NumericEnums`), compared leaf by leaf. Wire lengths and padding are the
//! only fields not compared by value: the byte-exact round trip covers them.
//! Where Ryu's JSON is shaped differently from ours, the difference is
//! spelled out in the tables below; a Ryu key or class that no table
//! explains fails the test. It also checks that the names-mode `to_json`
//! starts with `version`, `type` (the spec name) and `xid`.

use base64::Engine as _;
use openflow::json::NumericEnums;
use openflow::{Header, Message};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;

/// How many `*.packet` files the shared directory holds: fewer means a
/// missing directory or a broken glob, which must not pass as "all good".
const EXPECTED_FILES: usize = 81;

// ---------------------------------------------------------------------------
// The mapping tables: every structural difference between Ryu's JSON and
// ours, with the reason it is not a disagreement. Value-level conventions
// are applied everywhere rather than listed per key:
// - Ryu's `data` (base64 text or a list of byte values) vs our hex text;
// - Ryu's `null` for an absent optional field (an OXM mask, the code of an
//   experimenter error) vs our leaving the key out;
// - Ryu's numbers above 2^53 went through a double, so they are compared
//   as doubles;
// - Ryu's OXM-id `hasmask` 0/1 vs our boolean;
// - Ryu's class wrappers (`{"OFPFlowMod": {...}}`) are unwrapped and the
//   class name checked against our type codes (the class tables below).
// ---------------------------------------------------------------------------

/// How one key of a Ryu object is checked against our JSON.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A wire length: compared when we print it too, otherwise covered by
    /// the byte-exact round trip.
    Length,
    /// The same field under another name in our JSON.
    Rename(&'static str),
    /// Our decoder accepts only this value (JSON text), so a successful
    /// decode implies it; Ryu's value is checked against it.
    Implied(&'static str),
    /// Ryu nests a multipart body that is a single structure in an object
    /// of its own (or a one-element list); we print its fields at the top
    /// level of the message.
    Flatten,
    /// Ryu lists the bytes as 32-bit big-endian words, we print hex.
    Words32,
    /// We keep the ONF flow-monitor requests raw in `data`; the test
    /// decodes them from our bytes (see `onf_flow_monitor_requests`).
    OnfFlowMonitorBody,
}

/// (Ryu class, Ryu key, rule, why). The class is exact, `*` for any class,
/// or `*Suffix` for every class ending in Suffix; the first match wins. A
/// key listed nowhere must appear in our JSON under the same name.
const KEY_RULES: &[(&str, &str, Rule, &str)] = &[
    ("*", "len", Rule::Length, "wire length"),
    ("*", "length", Rule::Length, "wire length"),
    ("OFPPacketOut", "actions_len", Rule::Length, "wire length"),
    (
        "ONFFlowMonitorRequest",
        "match_len",
        Rule::Length,
        "wire length",
    ),
    (
        "OFPMatch",
        "type",
        Rule::Implied("1"),
        "Match::parse rejects every match type but OFPMT_OXM (1)",
    ),
    (
        "NXFlowSpecOutput",
        "dst",
        Rule::Implied("\"\""),
        "an NX learn output spec has no destination on the wire; Ryu prints \"\"",
    ),
    (
        "OFPErrorMsg",
        "type",
        Rule::Rename("err_type"),
        "we call the error type err_type",
    ),
    (
        "OFPGroupMod",
        "type",
        Rule::Rename("group_type"),
        "we call the group type group_type",
    ),
    (
        "OFPOxmId",
        "type",
        Rule::Rename("field"),
        "Ryu names the OXM field `type`",
    ),
    (
        "*StatsRequest",
        "type",
        Rule::Rename("multipart_type"),
        "the multipart type; our `type` is the message type",
    ),
    (
        "*StatsReply",
        "type",
        Rule::Rename("multipart_type"),
        "the multipart type; our `type` is the message type",
    ),
    (
        "OFPTableFeaturePropExperimenter",
        "data",
        Rule::Words32,
        "Ryu parses the experimenter data as a list of 32-bit words",
    ),
    (
        "OFPDescStatsReply",
        "body",
        Rule::Flatten,
        "single-structure body",
    ),
    (
        "OFPAggregateStatsReply",
        "body",
        Rule::Flatten,
        "single-structure body",
    ),
    (
        "OFPGroupFeaturesStatsReply",
        "body",
        Rule::Flatten,
        "single-structure body",
    ),
    (
        "OFPMeterFeaturesStatsReply",
        "body",
        Rule::Flatten,
        "single-structure body",
    ),
    (
        "OFPExperimenterStatsReply",
        "body",
        Rule::Flatten,
        "single-structure body",
    ),
    (
        "ONFFlowMonitorStatsRequest",
        "body",
        Rule::OnfFlowMonitorBody,
        "ONF experimenter multipart we keep raw",
    ),
];

/// Ryu's message classes: (class, our `type`, our `multipart_type`).
const MESSAGE_CLASSES: &[(&str, u64, Option<u64>)] = &[
    ("OFPHello", 0, None),
    ("OFPErrorMsg", 1, None),
    ("OFPEchoRequest", 2, None),
    ("OFPEchoReply", 3, None),
    ("OFPExperimenter", 4, None),
    ("OFPFeaturesRequest", 5, None),
    ("OFPSwitchFeatures", 6, None),
    ("OFPGetConfigRequest", 7, None),
    ("OFPGetConfigReply", 8, None),
    ("OFPSetConfig", 9, None),
    ("OFPPacketIn", 10, None),
    ("OFPFlowRemoved", 11, None),
    ("OFPPortStatus", 12, None),
    ("OFPPacketOut", 13, None),
    ("OFPFlowMod", 14, None),
    ("OFPGroupMod", 15, None),
    ("OFPPortMod", 16, None),
    ("OFPTableMod", 17, None),
    ("OFPBarrierRequest", 20, None),
    ("OFPBarrierReply", 21, None),
    ("OFPQueueGetConfigRequest", 22, None),
    ("OFPQueueGetConfigReply", 23, None),
    ("OFPRoleRequest", 24, None),
    ("OFPRoleReply", 25, None),
    ("OFPGetAsyncRequest", 26, None),
    ("OFPGetAsyncReply", 27, None),
    ("OFPSetAsync", 28, None),
    ("OFPMeterMod", 29, None),
    ("ONFFlowMonitorStatsRequest", 18, Some(0xffff)),
];

/// Ryu's multipart classes are `<stem>StatsRequest` (our type 18) and
/// `<stem>StatsReply` (19): (stem, our `multipart_type`).
const MULTIPART_STEMS: &[(&str, u64)] = &[
    ("OFPDesc", 0),
    ("OFPFlow", 1),
    ("OFPAggregate", 2),
    ("OFPTable", 3),
    ("OFPPort", 4),
    ("OFPQueue", 5),
    ("OFPGroup", 6),
    ("OFPGroupDesc", 7),
    ("OFPGroupFeatures", 8),
    ("OFPMeter", 9),
    ("OFPMeterConfig", 10),
    ("OFPMeterFeatures", 11),
    ("OFPTableFeatures", 12),
    ("OFPPortDesc", 13),
    ("OFPExperimenter", 0xffff),
];

/// Ryu classes of typed elements: (class, our key holding the type, the
/// values the class stands for). Ryu's own `type`/`property` key is
/// compared as well, where it has one.
const ELEMENT_CLASSES: &[(&str, &str, &[u64])] = &[
    ("OFPHelloElemVersionBitmap", "type", &[1]),
    ("OFPActionOutput", "type", &[0]),
    ("OFPActionCopyTtlOut", "type", &[11]),
    ("OFPActionCopyTtlIn", "type", &[12]),
    ("OFPActionSetMplsTtl", "type", &[15]),
    ("OFPActionDecMplsTtl", "type", &[16]),
    ("OFPActionPushVlan", "type", &[17]),
    ("OFPActionPopVlan", "type", &[18]),
    ("OFPActionPushMpls", "type", &[19]),
    ("OFPActionPopMpls", "type", &[20]),
    ("OFPActionSetQueue", "type", &[21]),
    ("OFPActionGroup", "type", &[22]),
    ("OFPActionSetNwTtl", "type", &[23]),
    ("OFPActionDecNwTtl", "type", &[24]),
    ("OFPActionSetField", "type", &[25]),
    ("OFPActionPushPbb", "type", &[26]),
    ("OFPActionPopPbb", "type", &[27]),
    ("OFPActionExperimenterUnknown", "type", &[0xffff]),
    // NX actions: our raw experimenter action, decoded by `nx_action`.
    ("NXActionConjunction", "type", &[0xffff]),
    ("NXActionLearn", "type", &[0xffff]),
    ("NXActionUnknown", "type", &[0xffff]),
    // NX learn specs, decoded by `nx_learn_specs` (dst type bits).
    ("NXFlowSpecMatch", "dst_type", &[0]),
    ("NXFlowSpecLoad", "dst_type", &[1]),
    ("NXFlowSpecOutput", "dst_type", &[2]),
    ("OFPInstructionGotoTable", "type", &[1]),
    ("OFPInstructionWriteMetadata", "type", &[2]),
    // One Ryu class for WRITE_ACTIONS, APPLY_ACTIONS and CLEAR_ACTIONS;
    // its `type` key says which and is compared too.
    ("OFPInstructionActions", "type", &[3, 4, 5]),
    ("OFPInstructionMeter", "type", &[6]),
    ("OFPMeterBandDrop", "type", &[1]),
    ("OFPMeterBandDscpRemark", "type", &[2]),
    ("OFPMeterBandExperimenter", "type", &[0xffff]),
    ("OFPQueuePropMinRate", "property", &[1]),
    ("OFPQueuePropMaxRate", "property", &[2]),
    ("OFPQueuePropExperimenter", "property", &[0xffff]),
    ("OFPTableFeaturePropInstructions", "type", &[0, 1]),
    ("OFPTableFeaturePropNextTables", "type", &[2, 3]),
    ("OFPTableFeaturePropActions", "type", &[4, 5, 6, 7]),
    ("OFPTableFeaturePropOxm", "type", &[8, 10, 12, 13, 14, 15]),
    ("OFPTableFeaturePropExperimenter", "type", &[0xfffe, 0xffff]),
];

/// Ryu classes of structures without a type code of their own: only their
/// fields are compared.
const PLAIN_CLASSES: &[&str] = &[
    "OFPMatch",
    "OXMTlv",
    "OFPPort",
    "OFPBucket",
    "OFPPacketQueue",
    "OFPDescStats",
    "OFPFlowStats",
    "OFPAggregateStats",
    "OFPTableStats",
    "OFPPortStats",
    "OFPQueueStats",
    "OFPGroupStats",
    "OFPBucketCounter",
    "OFPGroupDescStats",
    "OFPGroupFeaturesStats",
    "OFPMeterStats",
    "OFPMeterBandStats",
    "OFPMeterConfigStats",
    "OFPMeterFeaturesStats",
    "OFPTableFeaturesStats",
    "OFPExperimenterMultipart",
    "OFPInstructionId",
    "OFPActionId",
    "OFPOxmId",
    "ONFFlowMonitorRequest",
    // Ryu's packet library view of a PACKET_OUT's frame; `packet_as_ryu`
    // decodes our bytes the same way.
    "Packet",
];

/// How the value of a non-basic OXM is printed by Ryu.
#[derive(Debug, Clone, Copy)]
enum OxmKind {
    Int,
    Ipv4,
}

/// An OXM we keep raw (`Oxm::Raw`) that Ryu decodes by name.
/// Experimenter-class OXMs carry the experimenter id and a 16-bit field
/// type before the value.
struct NamedRawOxm {
    class: u16,
    field: u8,
    experimenter: Option<u32>,
    exp_type: Option<u16>,
    ryu_name: &'static str,
    kind: OxmKind,
}

const RAW_OXMS: &[NamedRawOxm] = &[
    // ONF extension 256 (OpenFlow 1.3 EXT-256): the PBB UCA bit.
    NamedRawOxm {
        class: 0xffff,
        field: 0,
        experimenter: Some(0x4f4e_4600),
        exp_type: Some(2560),
        ryu_name: "pbb_uca",
        kind: OxmKind::Int,
    },
    // Nicira NXM_NX_TUN_IPV4_SRC, NXM_NX_TUN_IPV4_DST, NXM_NX_CONJ_ID.
    NamedRawOxm {
        class: 0x0001,
        field: 31,
        experimenter: None,
        exp_type: None,
        ryu_name: "tun_ipv4_src",
        kind: OxmKind::Ipv4,
    },
    NamedRawOxm {
        class: 0x0001,
        field: 32,
        experimenter: None,
        exp_type: None,
        ryu_name: "tun_ipv4_dst",
        kind: OxmKind::Ipv4,
    },
    NamedRawOxm {
        class: 0x0001,
        field: 37,
        experimenter: None,
        exp_type: None,
        ryu_name: "conj_id",
        kind: OxmKind::Int,
    },
];

/// Ryu's names for NXM headers used by NX learn specs (class, field, name);
/// OpenFlow-basic fields use the spec names from `BASIC_FIELD_NAMES`.
const NXM_NAMES: &[(u16, u8, &str)] = &[
    (0x0000, 1, "eth_dst_nxm"),
    (0x0000, 2, "eth_src_nxm"),
    (0x0001, 16, "tunnel_id_nxm"),
];

/// The Nicira experimenter id (NX_VENDOR_ID).
const NX_EXPERIMENTER: u64 = 0x2320;
/// NXAST_LEARN and NXAST_CONJUNCTION.
const NXAST_LEARN: u16 = 16;
const NXAST_CONJUNCTION: u16 = 34;

/// Spec names of the message types, indexed by wire type (without OFPT_).
const MSG_TYPE_NAMES: [&str; 30] = [
    "HELLO",
    "ERROR",
    "ECHO_REQUEST",
    "ECHO_REPLY",
    "EXPERIMENTER",
    "FEATURES_REQUEST",
    "FEATURES_REPLY",
    "GET_CONFIG_REQUEST",
    "GET_CONFIG_REPLY",
    "SET_CONFIG",
    "PACKET_IN",
    "FLOW_REMOVED",
    "PORT_STATUS",
    "PACKET_OUT",
    "FLOW_MOD",
    "GROUP_MOD",
    "PORT_MOD",
    "TABLE_MOD",
    "MULTIPART_REQUEST",
    "MULTIPART_REPLY",
    "BARRIER_REQUEST",
    "BARRIER_REPLY",
    "QUEUE_GET_CONFIG_REQUEST",
    "QUEUE_GET_CONFIG_REPLY",
    "ROLE_REQUEST",
    "ROLE_REPLY",
    "GET_ASYNC_REQUEST",
    "GET_ASYNC_REPLY",
    "SET_ASYNC",
    "METER_MOD",
];

// ---------------------------------------------------------------------------
// Loading the vectors.
// ---------------------------------------------------------------------------

struct Vector {
    name: String,
    bytes: Vec<u8>,
    ryu: Value,
}

fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("TIERFLOW_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/vectors/of13"
            ))
        });
    assert!(
        dir.is_dir(),
        "OpenFlow 1.3 vectors directory {} is missing (set TIERFLOW_VECTORS)",
        dir.display()
    );
    dir
}

fn load_vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "packet"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= EXPECTED_FILES,
        "expected at least {EXPECTED_FILES} *.packet files in {}, found {}",
        dir.display(),
        paths.len()
    );
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            let json_path = dir.join(format!("{name}.json"));
            let text = std::fs::read_to_string(&json_path)
                .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
            let ryu = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
            Vector { name, bytes, ryu }
        })
        .collect()
}

/// One message of a vector file: its bytes, header and body.
type Decoded<'a> = (&'a [u8], Header, Message<'a>);

/// Splits a file into messages and decodes each one; the messages must
/// cover the whole file.
fn decode_all(v: &Vector) -> Result<Vec<Decoded<'_>>, String> {
    let mut out = Vec::new();
    let mut covered = 0;
    for item in openflow::framing::split(&v.bytes) {
        let (offset, raw) =
            item.map_err(|e| format!("{}: byte {}: {}", v.name, e.offset, e.kind))?;
        let (header, msg) = openflow::decode(raw)
            .map_err(|e| format!("{}: byte {}: {}", v.name, offset + e.offset, e.kind))?;
        covered += raw.len();
        out.push((raw, header, msg));
    }
    if out.is_empty() || covered != v.bytes.len() {
        return Err(format!(
            "{}: {} messages cover {covered} of {} bytes",
            v.name,
            out.len(),
            v.bytes.len()
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Decoders for what we keep raw but Ryu decodes. They turn our bytes into
// the shape of Ryu's JSON so the ordinary comparison applies.
// ---------------------------------------------------------------------------

fn hex_bytes(v: Option<&Value>) -> Result<Vec<u8>, String> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| format!("expected a hex string, got {v:?}"))?;
    hex::decode(s).map_err(|e| format!("bad hex {s:?}: {e}"))
}

/// Reads fixed-size big-endian fields off the front of a byte slice.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("need {n} bytes, have {}", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

fn mac_text(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ipv4_text(b: &[u8]) -> Result<String, String> {
    let a: [u8; 4] = b
        .try_into()
        .map_err(|_| format!("IPv4 value of {} bytes", b.len()))?;
    Ok(std::net::Ipv4Addr::from(a).to_string())
}

/// A raw OXM of ours as Ryu prints it: `{field, value, mask?}`, after
/// checking its header against `RAW_OXMS`.
fn raw_oxm_as_ryu(ours: &Map<String, Value>) -> Result<Value, String> {
    let class = ours.get("class").and_then(Value::as_u64);
    let field = ours.get("field").and_then(Value::as_u64);
    let hasmask = ours.get("hasmask").and_then(Value::as_bool);
    let payload = hex_bytes(ours.get("data"))?;
    let mut r = Bytes(&payload);
    let Some(entry) = RAW_OXMS.iter().find(|e| {
        class == Some(u64::from(e.class))
            && field == Some(u64::from(e.field))
            && e.experimenter.is_none_or(|x| {
                ours.get("experimenter").and_then(Value::as_u64) == Some(u64::from(x))
            })
            && e.exp_type
                .is_none_or(|t| payload.get(4..6) == Some(&t.to_be_bytes()[..]))
    }) else {
        return Err(format!(
            "raw OXM not in RAW_OXMS: {}",
            short(Some(&Value::Object(ours.clone())))
        ));
    };
    if entry.experimenter.is_some() {
        r.take(4)?;
    }
    if entry.exp_type.is_some() {
        r.take(2)?;
    }
    let body = r.0;
    let (value, mask) = match hasmask {
        Some(true) => body.split_at(body.len() / 2),
        Some(false) => (body, &[][..]),
        None => return Err("raw OXM without hasmask".into()),
    };
    let render = |b: &[u8]| -> Result<Value, String> {
        match entry.kind {
            OxmKind::Int => Ok(Bytes(b).uint(b.len())?.into()),
            OxmKind::Ipv4 => Ok(ipv4_text(b)?.into()),
        }
    };
    let mut m = Map::new();
    m.insert("field".into(), entry.ryu_name.into());
    m.insert("value".into(), render(value)?);
    if hasmask == Some(true) {
        m.insert("mask".into(), render(mask)?);
    }
    Ok(Value::Object(m))
}

/// Ryu's `[name, offset]` for an NXM/OXM header and bit offset.
fn nxm_field(header: u64, ofs: u64) -> Value {
    let class = (header >> 16) as u16;
    let field = ((header >> 9) & 0x7f) as u8;
    let basic = openflow::oxm::BASIC_FIELD_NAMES
        .iter()
        .find(|(id, _)| *id == field)
        .map(|(_, n)| *n)
        .filter(|_| class == 0x8000);
    let nx = NXM_NAMES
        .iter()
        .find(|(c, f, _)| *c == class && *f == field)
        .map(|(_, _, n)| *n);
    let name = basic
        .or(nx)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("nxm:{header:08x}"));
    json!([name, ofs])
}

/// The flow-mod specs of an NX learn action (`nx_learn_spec`s up to the
/// zero padding), as Ryu's NXFlowSpec objects plus our `dst_type`.
fn nx_learn_specs(mut r: Bytes<'_>) -> Result<Value, String> {
    let mut specs = Vec::new();
    while r.0.len() >= 2 {
        let h = r.uint(2)?;
        if h == 0 {
            break;
        }
        let n_bits = h & 0x3ff;
        let src_immediate = h & 0x2000 != 0;
        let dst_type = (h >> 11) & 3;
        let src = if src_immediate {
            let n = n_bits.div_ceil(16) as usize * 2;
            Value::from(r.uint(n)?)
        } else {
            let header = r.uint(4)?;
            nxm_field(header, r.uint(2)?)
        };
        let mut spec = Map::new();
        spec.insert("dst_type".into(), dst_type.into());
        spec.insert("n_bits".into(), n_bits.into());
        spec.insert("src".into(), src);
        if dst_type != 2 {
            let header = r.uint(4)?;
            spec.insert("dst".into(), nxm_field(header, r.uint(2)?));
        }
        specs.push(Value::Object(spec));
    }
    if r.0.iter().any(|b| *b != 0) {
        return Err(format!("non-zero bytes after NX learn specs: {:?}", r.0));
    }
    Ok(Value::Array(specs))
}

/// Our raw experimenter action, decoded the way Ryu decodes Nicira
/// actions: conjunction and learn field by field, others as
/// `subtype` plus opaque `data` (Ryu's NXActionUnknown).
fn nx_action(ours: &Map<String, Value>) -> Result<Value, String> {
    if ours.get("experimenter").and_then(Value::as_u64) != Some(NX_EXPERIMENTER) {
        return Err(format!(
            "not a Nicira action: experimenter {:?}",
            ours.get("experimenter")
        ));
    }
    let data = hex_bytes(ours.get("data"))?;
    let mut r = Bytes(&data);
    let subtype = r.uint(2)? as u16;
    let mut m = Map::new();
    m.insert(
        "type".into(),
        ours.get("type").cloned().unwrap_or(Value::Null),
    );
    m.insert("experimenter".into(), NX_EXPERIMENTER.into());
    m.insert("subtype".into(), subtype.into());
    match subtype {
        NXAST_CONJUNCTION => {
            m.insert("clause".into(), r.uint(1)?.into());
            m.insert("n_clauses".into(), r.uint(1)?.into());
            m.insert("id".into(), r.uint(4)?.into());
        }
        NXAST_LEARN => {
            for (key, n) in [
                ("idle_timeout", 2),
                ("hard_timeout", 2),
                ("priority", 2),
                ("cookie", 8),
                ("flags", 2),
                ("table_id", 1),
            ] {
                m.insert(key.into(), r.uint(n)?.into());
            }
            r.take(1)?;
            m.insert("fin_idle_timeout".into(), r.uint(2)?.into());
            m.insert("fin_hard_timeout".into(), r.uint(2)?.into());
            m.insert("specs".into(), nx_learn_specs(r)?);
        }
        _ => {
            m.insert("data".into(), hex::encode(r.0).into());
        }
    }
    Ok(Value::Object(m))
}

/// The ONF flow-monitor requests (`onf_flow_monitor_request`) in our raw
/// experimenter multipart `data`, with the match OXMs decoded by our own
/// `Oxm::parse`.
fn onf_flow_monitor_requests(ours: &Map<String, Value>) -> Result<Value, String> {
    let data = hex_bytes(ours.get("data"))?;
    let mut r = Bytes(&data);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let id = r.uint(4)?;
        let flags = r.uint(2)?;
        let match_len = r.uint(2)? as usize;
        let out_port = r.uint(4)?;
        let table_id = r.uint(1)?;
        r.take(3)?;
        let mut oxms = r.take(match_len)?;
        r.take((8 - match_len % 8) % 8)?;
        let mut fields = Vec::new();
        while !oxms.is_empty() {
            let (rest, oxm) = openflow::Oxm::parse(oxms)
                .map_err(|_| format!("bad OXM in flow-monitor match: {oxms:?}"))?;
            fields.push(serde_json::to_value(&oxm).map_err(|e| e.to_string())?);
            oxms = rest;
        }
        out.push(json!({
            "id": id,
            "flags": flags,
            "out_port": out_port,
            "table_id": table_id,
            "match": { "oxm_fields": fields },
        }));
    }
    Ok(Value::Array(out))
}

/// An Ethernet/IPv4/ICMP echo frame in our hex `data`, as Ryu's packet
/// library prints it.
fn packet_as_ryu(ours: &Value) -> Result<Value, String> {
    let frame = hex_bytes(Some(ours))?;
    let mut r = Bytes(&frame);
    let mut protocols = Vec::new();
    let dst = mac_text(r.take(6)?);
    let src = mac_text(r.take(6)?);
    let ethertype = r.uint(2)?;
    protocols.push(json!({ "ethernet": { "dst": dst, "src": src, "ethertype": ethertype } }));
    if ethertype != 0x0800 {
        return Err(format!(
            "only IPv4 frames are decoded, got ethertype {ethertype:#x}"
        ));
    }
    let vhl = r.uint(1)?;
    let header_length = vhl & 0xf;
    let tos = r.uint(1)?;
    let total_length = r.uint(2)?;
    let identification = r.uint(2)?;
    let frag = r.uint(2)?;
    let ttl = r.uint(1)?;
    let proto = r.uint(1)?;
    let csum = r.uint(2)?;
    let ip_src = ipv4_text(r.take(4)?)?;
    let ip_dst = ipv4_text(r.take(4)?)?;
    let option_len = (header_length as usize * 4)
        .checked_sub(20)
        .ok_or("IPv4 header_length below 5")?;
    let option = r.take(option_len)?;
    let mut ipv4 = json!({
        "version": vhl >> 4,
        "header_length": header_length,
        "tos": tos,
        "total_length": total_length,
        "identification": identification,
        "flags": frag >> 13,
        "offset": frag & 0x1fff,
        "ttl": ttl,
        "proto": proto,
        "csum": csum,
        "src": ip_src,
        "dst": ip_dst,
    });
    if !option.is_empty() {
        ipv4["option"] = hex::encode(option).into();
    }
    protocols.push(json!({ "ipv4": ipv4 }));
    if proto != 1 {
        return Err(format!("only ICMP is decoded, got IP protocol {proto}"));
    }
    let payload_len = (total_length as usize)
        .checked_sub(header_length as usize * 4)
        .ok_or("IPv4 total_length below its header")?;
    let mut icmp = Bytes(r.take(payload_len)?);
    let icmp_type = icmp.uint(1)?;
    let code = icmp.uint(1)?;
    let icmp_csum = icmp.uint(2)?;
    if icmp_type != 0 && icmp_type != 8 {
        return Err(format!("only ICMP echo is decoded, got type {icmp_type}"));
    }
    let id = icmp.uint(2)?;
    let seq = icmp.uint(2)?;
    protocols.push(json!({ "icmp": {
        "type": icmp_type,
        "code": code,
        "csum": icmp_csum,
        "data": { "echo": { "id": id, "seq": seq, "data": hex::encode(icmp.0) } },
    }}));
    Ok(json!({ "protocols": protocols }))
}

// ---------------------------------------------------------------------------
// The comparison.
// ---------------------------------------------------------------------------

/// A value's JSON text, cut short for mismatch reports.
fn short(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "nothing".into();
    };
    let s = v.to_string();
    match s.char_indices().nth(160) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Ryu wraps each object in its class name: `{"OFPFlowMod": {...}}`.
fn class_of(m: &Map<String, Value>) -> Option<(&str, &Map<String, Value>)> {
    let (k, v) = m.iter().next().filter(|_| m.len() == 1)?;
    let inner = v.as_object()?;
    k.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some((k.as_str(), inner))
}

fn class_matches(pattern: &str, class: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => class.ends_with(suffix),
        None => pattern == class,
    }
}

fn rule_for(class: &str, key: &str) -> Option<Rule> {
    KEY_RULES
        .iter()
        .find(|(c, k, _, _)| *k == key && class_matches(c, class))
        .map(|(_, _, r, _)| *r)
}

/// Scalar leaves (null included) in a Ryu value.
fn count_leaves(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.iter().map(count_leaves).sum(),
        Value::Object(m) => m.values().map(count_leaves).sum(),
        _ => 1,
    }
}

/// Beyond 2^53 Ryu's JSON numbers have gone through a double (e.g.
/// cookie_mask 0xffffffffffffffff appears as 18446744073709552000).
fn numbers_equal(ryu: &serde_json::Number, ours: &serde_json::Number) -> bool {
    const EXACT: u64 = 1 << 53;
    match (ryu.as_u64(), ours.as_u64()) {
        (Some(r), Some(o)) if r <= EXACT && o <= EXACT => r == o,
        _ => ryu.as_f64() == ours.as_f64(),
    }
}

#[derive(Default)]
struct Checker {
    file: String,
    mismatches: Vec<String>,
    /// Ryu leaves compared with a value of ours.
    compared: usize,
    /// Ryu class names checked against our type codes.
    class_checks: usize,
    /// Ryu leaves not compared, by reason.
    skipped: BTreeMap<&'static str, usize>,
}

impl Checker {
    fn mismatch(&mut self, path: &str, what: impl Display) {
        self.mismatches
            .push(format!("{}: {path}: {what}", self.file));
    }

    /// Compares one Ryu value with ours (`None`: we have no such key).
    fn value(&mut self, path: &str, key: &str, ryu: &Value, ours: Option<&Value>) {
        match ryu {
            Value::Object(m) => match class_of(m) {
                Some((class, inner)) => self.class(&format!("{path}<{class}>"), class, inner, ours),
                None => match ours.and_then(Value::as_object) {
                    Some(o) => self.fields(path, "", m, o),
                    None => self.mismatch(
                        path,
                        format_args!("Ryu has an object, we have {}", short(ours)),
                    ),
                },
            },
            Value::Array(_) | Value::String(_) if key == "data" => self.bytes(path, ryu, ours),
            Value::Array(a) => match ours.and_then(Value::as_array) {
                Some(o) if o.len() == a.len() => {
                    for (i, (r, x)) in a.iter().zip(o).enumerate() {
                        self.value(&format!("{path}[{i}]"), key, r, Some(x));
                    }
                }
                _ => self.mismatch(
                    path,
                    format_args!("Ryu has a list of {}, we have {}", a.len(), short(ours)),
                ),
            },
            _ => self.scalar(path, ryu, ours),
        }
    }

    fn scalar(&mut self, path: &str, ryu: &Value, ours: Option<&Value>) {
        self.compared += 1;
        let same = match (ryu, ours) {
            // Ryu prints an absent optional field (an OXM's mask, an
            // experimenter error's code) as null; we leave it out.
            (Value::Null, None | Some(Value::Null)) => true,
            (Value::Number(r), Some(Value::Number(o))) => numbers_equal(r, o),
            // Ryu prints OXM-id `hasmask` as 0/1, we as a boolean.
            (Value::Number(r), Some(Value::Bool(o))) => r.as_u64() == Some(u64::from(*o)),
            (Value::String(r), Some(Value::String(o))) => r == o,
            (Value::Bool(r), Some(Value::Bool(o))) => r == o,
            _ => false,
        };
        if !same {
            self.mismatch(path, format_args!("Ryu {ryu}, ours {}", short(ours)));
        }
    }

    /// Ryu prints bytes as base64 or a list of integers, we as hex.
    fn bytes(&mut self, path: &str, ryu: &Value, ours: Option<&Value>) {
        self.compared += count_leaves(ryu);
        let want = match ryu {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| e.to_string()),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or_else(|| format!("not a byte: {x}"))
                })
                .collect(),
            _ => Err(format!("not bytes: {ryu}")),
        };
        match (want, hex_bytes(ours)) {
            (Ok(w), Ok(o)) if w == o => {}
            (w, o) => self.mismatch(path, format_args!("Ryu bytes {w:02x?}, ours {o:02x?}")),
        }
    }

    fn words32(&mut self, path: &str, ryu: &Value, ours: Option<&Value>) {
        self.compared += count_leaves(ryu);
        let want: Option<Vec<u8>> = ryu.as_array().and_then(|a| {
            a.iter()
                .map(|w| w.as_u64().and_then(|w| u32::try_from(w).ok()))
                .collect::<Option<Vec<u32>>>()
                .map(|ws| ws.iter().flat_map(|w| w.to_be_bytes()).collect())
        });
        match (want, hex_bytes(ours)) {
            (Some(w), Ok(o)) if w == o => {}
            (w, o) => self.mismatch(path, format_args!("Ryu words {w:02x?}, ours {o:02x?}")),
        }
    }

    fn skip(&mut self, why: &'static str, ryu: &Value) {
        *self.skipped.entry(why).or_default() += count_leaves(ryu);
    }

    /// Checks that a Ryu class name stands for our type code(s).
    fn class_type(&mut self, path: &str, class: &str, ours: &Map<String, Value>) {
        let get = |k: &str| ours.get(k).and_then(Value::as_u64);
        let message = MESSAGE_CLASSES
            .iter()
            .map(|&(c, t, mp)| (c.to_owned(), t, mp))
            .chain(MULTIPART_STEMS.iter().flat_map(|&(stem, mp)| {
                [
                    (format!("{stem}StatsRequest"), 18, Some(mp)),
                    (format!("{stem}StatsReply"), 19, Some(mp)),
                ]
            }))
            .find(|(c, _, _)| c == class);
        let ok = if let Some((_, t, mp)) = message {
            get("type") == Some(t) && mp.is_none_or(|mp| get("multipart_type") == Some(mp))
        } else if let Some((_, key, values)) = ELEMENT_CLASSES.iter().find(|(c, _, _)| *c == class)
        {
            get(key).is_some_and(|v| values.contains(&v))
        } else if PLAIN_CLASSES.contains(&class) {
            return;
        } else {
            self.mismatch(path, "Ryu class not in the class tables");
            return;
        };
        self.class_checks += 1;
        if !ok {
            self.mismatch(
                path,
                format_args!(
                    "class does not match our type codes in {}",
                    short(Some(&Value::Object(ours.clone())))
                ),
            );
        }
    }

    fn class(&mut self, path: &str, class: &str, ryu: &Map<String, Value>, ours: Option<&Value>) {
        let Some(ours) = ours else {
            self.mismatch(path, "no counterpart in ours");
            return;
        };
        let derived = match class {
            "Packet" => Some(packet_as_ryu(ours)),
            c if c.starts_with("NXAction") => Some(
                ours.as_object()
                    .ok_or_else(|| format!("not an object: {ours}"))
                    .and_then(nx_action),
            ),
            "OXMTlv" => match ours.as_object() {
                Some(o) if o.contains_key("class") => Some(raw_oxm_as_ryu(o)),
                _ => None,
            },
            _ => None,
        };
        let ours = match derived {
            Some(Ok(v)) => v,
            Some(Err(e)) => return self.mismatch(path, e),
            None => ours.clone(),
        };
        let Some(ours) = ours.as_object() else {
            return self.mismatch(path, format_args!("Ryu has an object, we have {ours}"));
        };
        self.class_type(path, class, ours);
        self.fields(path, class, ryu, ours);
    }

    fn fields(
        &mut self,
        path: &str,
        class: &str,
        ryu: &Map<String, Value>,
        ours: &Map<String, Value>,
    ) {
        for (k, v) in ryu {
            let p = format!("{path}.{k}");
            match rule_for(class, k) {
                None => self.value(&p, k, v, ours.get(k)),
                Some(Rule::Length) if ours.contains_key(k) => self.value(&p, k, v, ours.get(k)),
                Some(Rule::Length) => self.skip("wire length", v),
                Some(Rule::Rename(o)) => self.value(&p, k, v, ours.get(o)),
                Some(Rule::Implied(text)) => {
                    let want: Value = serde_json::from_str(text).expect("Implied holds JSON");
                    self.scalar(&p, v, Some(&want));
                }
                Some(Rule::Flatten) => {
                    let one = match v {
                        Value::Array(a) if a.len() == 1 => &a[0],
                        other => other,
                    };
                    match one.as_object().and_then(class_of) {
                        Some((c, inner)) => {
                            let p = format!("{p}<{c}>");
                            self.class_type(&p, c, ours);
                            self.fields(&p, c, inner, ours);
                        }
                        None => self.mismatch(&p, "expected one Ryu structure to flatten"),
                    }
                }
                Some(Rule::Words32) => self.words32(&p, v, ours.get(k)),
                Some(Rule::OnfFlowMonitorBody) => match onf_flow_monitor_requests(ours) {
                    Ok(reqs) => self.value(&p, k, v, Some(&reqs)),
                    Err(e) => self.mismatch(&p, e),
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn every_vector_decodes_and_reencodes_byte_for_byte() {
    let vectors = load_vectors();
    let mut failures = Vec::new();
    let mut messages = 0;
    for v in &vectors {
        let decoded = match decode_all(v) {
            Ok(d) => d,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        for (raw, header, msg) in &decoded {
            messages += 1;
            let mut again = Vec::new();
            match openflow::encode_versioned(header.version, header.xid, msg, &mut again) {
                Ok(_) if again == *raw => {}
                Ok(_) => {
                    let at = again
                        .iter()
                        .zip(raw.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(again.len().min(raw.len()));
                    failures.push(format!(
                        "{}: re-encoding differs at byte {at} ({} bytes in, {} out)",
                        v.name,
                        raw.len(),
                        again.len()
                    ));
                }
                Err(e) => failures.push(format!("{}: cannot re-encode: {e}", v.name)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(messages >= vectors.len());
    println!(
        "{} files, {messages} messages decoded and re-encoded exactly",
        vectors.len()
    );
}

#[test]
fn every_vector_agrees_with_ryus_decode() {
    let vectors = load_vectors();
    let _numeric = NumericEnums::enter();
    let mut total = Checker::default();
    let mut ryu_leaves = 0;
    let mut messages = 0;
    for v in &vectors {
        let mut c = Checker {
            file: v.name.clone(),
            ..Checker::default()
        };
        let decoded = match decode_all(v) {
            Ok(d) => d,
            Err(e) => {
                total.mismatches.push(e);
                continue;
            }
        };
        // Ryu's JSON holds one object per message; a file of several
        // messages would hold a list.
        let ryu: Vec<&Value> = match &v.ryu {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        if ryu.len() != decoded.len() {
            c.mismatch(
                "",
                format_args!(
                    "Ryu has {} messages, we decoded {}",
                    ryu.len(),
                    decoded.len()
                ),
            );
        }
        for (r, (_, header, msg)) in ryu.iter().zip(&decoded) {
            messages += 1;
            ryu_leaves += count_leaves(r);
            c.value("", "", r, Some(&openflow::to_json(header, msg)));
        }
        total.mismatches.append(&mut c.mismatches);
        total.compared += c.compared;
        total.class_checks += c.class_checks;
        for (why, n) in c.skipped {
            *total.skipped.entry(why).or_default() += n;
        }
    }
    assert!(
        total.mismatches.is_empty(),
        "{} disagreements with Ryu:\n{}",
        total.mismatches.len(),
        total.mismatches.join("\n")
    );
    let skipped: usize = total.skipped.values().sum();
    // Every Ryu leaf must have been either compared or skipped by a rule.
    assert_eq!(total.compared + skipped, ryu_leaves);
    assert!(
        total.compared > 10_000,
        "too few fields compared: {}",
        total.compared
    );
    println!(
        "{} files, {messages} messages: {} Ryu leaf fields compared, {} class names checked, skipped {:?}",
        vectors.len(),
        total.compared,
        total.class_checks,
        total.skipped
    );
}

#[test]
fn json_starts_with_version_type_and_xid() {
    let vectors = load_vectors();
    let mut failures = Vec::new();
    for v in &vectors {
        let decoded = decode_all(v).unwrap_or_else(|e| panic!("{e}"));
        for (raw, header, msg) in &decoded {
            let j = openflow::to_json(header, msg);
            let Some(obj) = j.as_object() else {
                failures.push(format!("{}: not an object", v.name));
                continue;
            };
            let keys: Vec<&str> = obj.keys().take(3).map(String::as_str).collect();
            let name = MSG_TYPE_NAMES.get(usize::from(raw[1])).copied();
            let xid = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let want = (
                vec!["version", "type", "xid"],
                Some(u64::from(raw[0])),
                name,
                Some(u64::from(xid)),
            );
            let got = (
                keys,
                obj.get("version").and_then(Value::as_u64),
                obj.get("type").and_then(Value::as_str),
                obj.get("xid").and_then(Value::as_u64),
            );
            if got != want {
                failures.push(format!("{}: want {want:?}, got {got:?}", v.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
