//! The OpenFlow header and every OpenFlow 1.3 message body, with the
//! top-level [`decode`] and [`encode`] entry points.

use crate::action::{Actions, actions_into_owned, actions_len, emit_actions, parse_actions};
use crate::consts::{
    ControllerRole, ErrorType, FlowModCommand, FlowRemovedReason, HEADER_LEN, MsgType, OFP_VERSION,
    PacketInReason, PortNo,
};
use crate::error::{DecodeError, ErrorKind, PErr, PResult, finish};
use crate::group::GroupMod;
use crate::instruction::{
    Instructions, emit_instructions, instructions_into_owned, instructions_len, parse_instructions,
};
use crate::meter::MeterMod;
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::oxm::Match;
use crate::parse::{be_u8, be_u16, be_u32, be_u64, bounded, done, many, pad, pad8, take};
use crate::port::{PortMod, PortStatus};
use crate::queue::PacketQueue;
use crate::sink::Sink;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::borrow::Cow;
use std::fmt;

/// `ofp_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub msg_type: MsgType,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes, without validating it.
    pub fn peek(b: &[u8]) -> Option<Header> {
        let h: [u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        let [version, msg_type, l0, l1, x0, x1, x2, x3] = h;
        Some(Header {
            version,
            msg_type: MsgType::from(msg_type),
            length: u16::from_be_bytes([l0, l1]),
            xid: u32::from_be_bytes([x0, x1, x2, x3]),
        })
    }
}

/// A HELLO element (`ofp_hello_elem_header`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HelloElem<'a> {
    /// `OFPHET_VERSIONBITMAP`: bit n of the bitmaps set means version n.
    VersionBitmap { bitmaps: Vec<u32> },
    /// Another element type; `data` follows the 4-byte element header.
    Unknown { elem_type: u16, data: Cow<'a, [u8]> },
}

crate::enum_with_unknown! {
    /// `ofp_hello_elem_type`.
    pub enum HelloElemType(u16) {
        VersionBitmap = 1 => "VERSIONBITMAP",
    }
}

const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

impl<'a> HelloElem<'a> {
    /// A version bitmap advertising exactly OpenFlow 1.3.
    pub fn of13_only() -> Self {
        HelloElem::VersionBitmap {
            bitmaps: vec![1 << OFP_VERSION],
        }
    }

    fn unpadded_len(&self) -> usize {
        match self {
            HelloElem::VersionBitmap { bitmaps } => 4 + 4 * bitmaps.len(),
            HelloElem::Unknown { data, .. } => 4 + data.len(),
        }
    }

    pub fn buffer_len(&self) -> usize {
        let n = self.unpadded_len();
        n + pad8(n)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        let n = self.unpadded_len();
        match self {
            HelloElem::VersionBitmap { bitmaps } => {
                buf.put_u16(HELLO_ELEM_VERSIONBITMAP);
                buf.put_u16(n as u16);
                for b in bitmaps {
                    buf.put_u32(*b);
                }
            }
            HelloElem::Unknown { elem_type, data } => {
                buf.put_u16(*elem_type);
                buf.put_u16(n as u16);
                buf.put_slice(data);
            }
        }
        buf.put_bytes(0, pad8(n));
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, elem_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        let length = usize::from(length);
        let (rest, whole) = bounded(input, length, 4, "hello element")?;
        let (body, _) = take(whole, 4)?;
        // Padding after the last element may be cut short by some switches;
        // take what is there, up to the full pad.
        let padding = pad8(length).min(rest.len());
        let (rest, ()) = pad(rest, padding)?;
        let elem = if elem_type == HELLO_ELEM_VERSIONBITMAP && body.len() % 4 == 0 {
            HelloElem::VersionBitmap {
                bitmaps: many(body, be_u32)?,
            }
        } else {
            HelloElem::Unknown {
                elem_type,
                data: Cow::Borrowed(body),
            }
        };
        Ok((rest, elem))
    }

    pub fn into_owned(self) -> HelloElem<'static> {
        match self {
            HelloElem::VersionBitmap { bitmaps } => HelloElem::VersionBitmap { bitmaps },
            HelloElem::Unknown { elem_type, data } => HelloElem::Unknown {
                elem_type,
                data: Cow::Owned(data.into_owned()),
            },
        }
    }

    /// The versions this element advertises, if it is a bitmap.
    pub fn versions(&self) -> Option<impl Iterator<Item = u8> + '_> {
        match self {
            HelloElem::VersionBitmap { bitmaps } => {
                Some(bitmaps.iter().enumerate().flat_map(|(i, word)| {
                    (0..32u32)
                        .filter(move |bit| word & (1 << bit) != 0)
                        .map(move |bit| (i as u32 * 32 + bit).min(255) as u8)
                }))
            }
            HelloElem::Unknown { .. } => None,
        }
    }
}

impl Serialize for HelloElem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            HelloElem::VersionBitmap { bitmaps } => {
                m.serialize_entry("type", &HelloElemType::VersionBitmap)?;
                m.serialize_entry("bitmaps", bitmaps)?;
                let versions: Vec<u8> = self.versions().map(Iterator::collect).unwrap_or_default();
                m.serialize_entry("versions", &versions)?;
            }
            HelloElem::Unknown { elem_type, data } => {
                m.serialize_entry("type", &HelloElemType::from(*elem_type))?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
        }
        m.end()
    }
}

/// ERROR (`ofp_error_msg`, or `ofp_error_experimenter_msg` when the type
/// is EXPERIMENTER: then `code` carries `exp_type` and `experimenter` is set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorMsg<'a> {
    pub err_type: ErrorType,
    pub code: u16,
    pub experimenter: Option<u32>,
    /// At least the first 64 bytes of the failed request, for standard errors.
    pub data: Cow<'a, [u8]>,
}

impl<'a> ErrorMsg<'a> {
    pub fn new(err_type: ErrorType, code: u16, data: &'a [u8]) -> Self {
        ErrorMsg {
            err_type,
            code,
            experimenter: None,
            data: Cow::Borrowed(data),
        }
    }

    /// The spec name of the code, if known.
    pub fn code_name(&self) -> Option<&'static str> {
        self.err_type.code_name(self.code)
    }

    fn is_experimenter(&self) -> bool {
        self.err_type == ErrorType::Experimenter
    }

    fn buffer_len(&self) -> usize {
        4 + if self.is_experimenter() { 4 } else { 0 } + self.data.len()
    }

    fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.err_type.value());
        buf.put_u16(self.code);
        if self.is_experimenter() {
            buf.put_u32(self.experimenter.unwrap_or(0));
        }
        buf.put_slice(&self.data);
    }

    fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, t) = be_u16(b)?;
        let (b, code) = be_u16(b)?;
        let err_type = ErrorType::from(t);
        let (b, experimenter) = if err_type == ErrorType::Experimenter {
            let (b, e) = be_u32(b)?;
            (b, Some(e))
        } else {
            (b, None)
        };
        Ok((
            &[],
            ErrorMsg {
                err_type,
                code,
                experimenter,
                data: Cow::Borrowed(b),
            },
        ))
    }
}

impl fmt::Display for ErrorMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code_name() {
            Some(c) => write!(f, "{}/{}", self.err_type, c),
            None => write!(f, "{}/{}", self.err_type, self.code),
        }
    }
}

impl Serialize for ErrorMsg<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("err_type", &self.err_type)?;
        if let Some(e) = self.experimenter {
            m.serialize_entry("exp_type", &self.code)?;
            m.serialize_entry("experimenter", &e)?;
        } else {
            match self.code_name() {
                Some(n) if !crate::json::numeric() => m.serialize_entry("code", n)?,
                _ => m.serialize_entry("code", &self.code)?,
            }
        }
        m.serialize_entry("data", &hex::encode(&self.data))?;
        m.end()
    }
}

/// EXPERIMENTER (`ofp_experimenter_header`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Experimenter<'a> {
    pub experimenter: u32,
    pub exp_type: u32,
    #[serde(serialize_with = "crate::json::hex")]
    pub data: Cow<'a, [u8]>,
}

/// FEATURES_REPLY (`ofp_switch_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

/// GET_CONFIG_REPLY and SET_CONFIG (`ofp_switch_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

/// PACKET_IN. `data` borrows the frame from the input: no copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PacketIn<'a> {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: PacketInReason,
    pub table_id: u8,
    pub cookie: u64,
    #[serde(rename = "match")]
    pub match_: Match<'a>,
    #[serde(serialize_with = "crate::json::hex")]
    pub data: Cow<'a, [u8]>,
}

/// FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlowRemoved<'a> {
    pub cookie: u64,
    pub priority: u16,
    pub reason: FlowRemovedReason,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    #[serde(rename = "match")]
    pub match_: Match<'a>,
}

/// PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PacketOut<'a> {
    pub buffer_id: u32,
    pub in_port: PortNo,
    pub actions: Actions<'a>,
    #[serde(serialize_with = "crate::json::hex")]
    pub data: Cow<'a, [u8]>,
}

/// FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlowMod<'a> {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: PortNo,
    pub out_group: u32,
    /// `ofp_flow_mod_flags` bits.
    pub flags: u16,
    #[serde(rename = "match")]
    pub match_: Match<'a>,
    pub instructions: Instructions<'a>,
}

impl Default for FlowMod<'_> {
    /// An ADD into table 0 with no timeouts, no buffer and no filters.
    fn default() -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id: 0,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0,
            buffer_id: crate::consts::NO_BUFFER,
            out_port: PortNo::Any,
            out_group: crate::consts::GROUP_ANY,
            flags: 0,
            match_: Match::new(),
            instructions: Instructions::new(),
        }
    }
}

/// TABLE_MOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TableMod {
    pub table_id: u8,
    pub config: u32,
}

/// QUEUE_GET_CONFIG_REPLY.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct QueueGetConfigReply<'a> {
    pub port: PortNo,
    pub queues: Vec<PacketQueue<'a>>,
}

/// ROLE_REQUEST and ROLE_REPLY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Role {
    pub role: ControllerRole,
    pub generation_id: u64,
}

/// GET_ASYNC_REPLY and SET_ASYNC (`ofp_async_config`): index 0 is for the
/// master/equal role, 1 for slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

/// An OpenFlow 1.3 message body. Byte payloads borrow from the decoded
/// input; `into_owned` detaches them.
// FLOW_MOD and PACKET_IN are large because their match, instructions and
// actions are stored inline (SmallVec) so the packet-in hot path neither
// decodes nor builds them with a heap allocation; boxing would undo that.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message<'a> {
    Hello {
        elements: Vec<HelloElem<'a>>,
    },
    Error(ErrorMsg<'a>),
    EchoRequest {
        data: Cow<'a, [u8]>,
    },
    EchoReply {
        data: Cow<'a, [u8]>,
    },
    Experimenter(Experimenter<'a>),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn<'a>),
    FlowRemoved(FlowRemoved<'a>),
    PortStatus(PortStatus),
    PacketOut(PacketOut<'a>),
    /// Boxed: a FLOW_MOD with its inline match and instructions is the
    /// largest body, and every decoded message would pay for its size;
    /// encode one without a box through [`Body`].
    FlowMod(Box<FlowMod<'a>>),
    GroupMod(GroupMod<'a>),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest<'a>),
    MultipartReply(MultipartReply<'a>),
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest {
        port: PortNo,
    },
    QueueGetConfigReply(QueueGetConfigReply<'a>),
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod<'a>),
}

impl<'a> From<FlowMod<'a>> for Message<'a> {
    fn from(f: FlowMod<'a>) -> Self {
        Message::FlowMod(Box::new(f))
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded message would exceed the 16-bit length field.
    TooLong { length: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { length } => {
                write!(
                    f,
                    "message of {length} bytes exceeds the 65535-byte OpenFlow limit"
                )
            }
        }
    }
}

impl std::error::Error for EncodeError {}

impl<'a> Message<'a> {
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Hello { .. } => MsgType::Hello,
            Message::Error(_) => MsgType::Error,
            Message::EchoRequest { .. } => MsgType::EchoRequest,
            Message::EchoReply { .. } => MsgType::EchoReply,
            Message::Experimenter(_) => MsgType::Experimenter,
            Message::FeaturesRequest => MsgType::FeaturesRequest,
            Message::FeaturesReply(_) => MsgType::FeaturesReply,
            Message::GetConfigRequest => MsgType::GetConfigRequest,
            Message::GetConfigReply(_) => MsgType::GetConfigReply,
            Message::SetConfig(_) => MsgType::SetConfig,
            Message::PacketIn(_) => MsgType::PacketIn,
            Message::FlowRemoved(_) => MsgType::FlowRemoved,
            Message::PortStatus(_) => MsgType::PortStatus,
            Message::PacketOut(_) => MsgType::PacketOut,
            Message::FlowMod(_) => MsgType::FlowMod,
            Message::GroupMod(_) => MsgType::GroupMod,
            Message::PortMod(_) => MsgType::PortMod,
            Message::TableMod(_) => MsgType::TableMod,
            Message::MultipartRequest(_) => MsgType::MultipartRequest,
            Message::MultipartReply(_) => MsgType::MultipartReply,
            Message::BarrierRequest => MsgType::BarrierRequest,
            Message::BarrierReply => MsgType::BarrierReply,
            Message::QueueGetConfigRequest { .. } => MsgType::QueueGetConfigRequest,
            Message::QueueGetConfigReply(_) => MsgType::QueueGetConfigReply,
            Message::RoleRequest(_) => MsgType::RoleRequest,
            Message::RoleReply(_) => MsgType::RoleReply,
            Message::GetAsyncRequest => MsgType::GetAsyncRequest,
            Message::GetAsyncReply(_) => MsgType::GetAsyncReply,
            Message::SetAsync(_) => MsgType::SetAsync,
            Message::MeterMod(_) => MsgType::MeterMod,
        }
    }

    /// Encoded length of the body (everything after the header).
    pub fn body_len(&self) -> usize {
        match self {
            Message::Hello { elements } => elements.iter().map(HelloElem::buffer_len).sum(),
            Message::Error(e) => e.buffer_len(),
            Message::EchoRequest { data } | Message::EchoReply { data } => data.len(),
            Message::Experimenter(e) => 8 + e.data.len(),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => 0,
            Message::FeaturesReply(_) => 24,
            Message::GetConfigReply(_) | Message::SetConfig(_) => 4,
            Message::PacketIn(p) => 16 + p.match_.buffer_len() + 2 + p.data.len(),
            Message::FlowRemoved(f) => 40 + f.match_.buffer_len(),
            Message::PortStatus(_) => PortStatus::LEN,
            Message::PacketOut(p) => p.body_len(),
            Message::FlowMod(f) => f.body_len(),
            Message::GroupMod(g) => g.body_len(),
            Message::PortMod(_) => PortMod::LEN,
            Message::TableMod(_) => 8,
            Message::MultipartRequest(m) => m.buffer_len(),
            Message::MultipartReply(m) => m.buffer_len(),
            Message::QueueGetConfigRequest { .. } => 8,
            Message::QueueGetConfigReply(q) => {
                8 + q.queues.iter().map(PacketQueue::buffer_len).sum::<usize>()
            }
            Message::RoleRequest(_) | Message::RoleReply(_) => 16,
            Message::GetAsyncReply(_) | Message::SetAsync(_) => 24,
            Message::MeterMod(m) => m.body_len(),
        }
    }

    /// Encoded length of the whole message, header included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    fn emit_body<B: Sink>(&self, buf: &mut B) {
        match self {
            Message::Hello { elements } => elements.iter().for_each(|e| e.emit(buf)),
            Message::Error(e) => e.emit(buf),
            Message::EchoRequest { data } | Message::EchoReply { data } => buf.put_slice(data),
            Message::Experimenter(e) => {
                buf.put_u32(e.experimenter);
                buf.put_u32(e.exp_type);
                buf.put_slice(&e.data);
            }
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => {
                buf.put_u64(f.datapath_id);
                buf.put_u32(f.n_buffers);
                buf.put_u8(f.n_tables);
                buf.put_u8(f.auxiliary_id);
                buf.put_bytes(0, 2);
                buf.put_u32(f.capabilities);
                buf.put_u32(f.reserved);
            }
            Message::GetConfigReply(c) | Message::SetConfig(c) => {
                buf.put_u16(c.flags);
                buf.put_u16(c.miss_send_len);
            }
            Message::PacketIn(p) => {
                buf.put_u32(p.buffer_id);
                buf.put_u16(p.total_len);
                buf.put_u8(p.reason.value());
                buf.put_u8(p.table_id);
                buf.put_u64(p.cookie);
                p.match_.emit(buf);
                buf.put_bytes(0, 2);
                buf.put_slice(&p.data);
            }
            Message::FlowRemoved(f) => {
                buf.put_u64(f.cookie);
                buf.put_u16(f.priority);
                buf.put_u8(f.reason.value());
                buf.put_u8(f.table_id);
                buf.put_u32(f.duration_sec);
                buf.put_u32(f.duration_nsec);
                buf.put_u16(f.idle_timeout);
                buf.put_u16(f.hard_timeout);
                buf.put_u64(f.packet_count);
                buf.put_u64(f.byte_count);
                f.match_.emit(buf);
            }
            Message::PortStatus(p) => p.emit(buf),
            Message::PacketOut(p) => p.emit_body(buf),
            Message::FlowMod(f) => f.emit_body(buf),
            Message::GroupMod(g) => g.emit(buf),
            Message::PortMod(p) => p.emit(buf),
            Message::TableMod(t) => {
                buf.put_u8(t.table_id);
                buf.put_bytes(0, 3);
                buf.put_u32(t.config);
            }
            Message::MultipartRequest(m) => m.emit(buf),
            Message::MultipartReply(m) => m.emit(buf),
            Message::QueueGetConfigRequest { port } => {
                buf.put_u32(port.value());
                buf.put_bytes(0, 4);
            }
            Message::QueueGetConfigReply(q) => {
                buf.put_u32(q.port.value());
                buf.put_bytes(0, 4);
                q.queues.iter().for_each(|x| x.emit(buf));
            }
            Message::RoleRequest(r) | Message::RoleReply(r) => {
                buf.put_u32(r.role.value());
                buf.put_bytes(0, 4);
                buf.put_u64(r.generation_id);
            }
            Message::GetAsyncReply(a) | Message::SetAsync(a) => {
                for v in a
                    .packet_in_mask
                    .iter()
                    .chain(&a.port_status_mask)
                    .chain(&a.flow_removed_mask)
                {
                    buf.put_u32(*v);
                }
            }
            Message::MeterMod(m) => m.emit(buf),
        }
    }

    fn parse_body(t: MsgType, b: &'a [u8]) -> Result<Self, nom::Err<PErr>> {
        let empty = |m: Message<'a>| done(b).map(|()| m);
        let msg = match t {
            MsgType::Hello => Message::Hello {
                elements: many(b, HelloElem::parse)?,
            },
            MsgType::Error => Message::Error(ErrorMsg::parse(b)?.1),
            MsgType::EchoRequest => Message::EchoRequest {
                data: Cow::Borrowed(b),
            },
            MsgType::EchoReply => Message::EchoReply {
                data: Cow::Borrowed(b),
            },
            MsgType::Experimenter => {
                let (r, experimenter) = be_u32(b)?;
                let (r, exp_type) = be_u32(r)?;
                Message::Experimenter(Experimenter {
                    experimenter,
                    exp_type,
                    data: Cow::Borrowed(r),
                })
            }
            MsgType::FeaturesRequest => empty(Message::FeaturesRequest)?,
            MsgType::FeaturesReply => {
                let (r, datapath_id) = be_u64(b)?;
                let (r, n_buffers) = be_u32(r)?;
                let (r, n_tables) = be_u8(r)?;
                let (r, auxiliary_id) = be_u8(r)?;
                let (r, ()) = pad(r, 2)?;
                let (r, capabilities) = be_u32(r)?;
                let (r, reserved) = be_u32(r)?;
                done(r)?;
                Message::FeaturesReply(FeaturesReply {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                    reserved,
                })
            }
            MsgType::GetConfigRequest => empty(Message::GetConfigRequest)?,
            MsgType::GetConfigReply | MsgType::SetConfig => {
                let (r, flags) = be_u16(b)?;
                let (r, miss_send_len) = be_u16(r)?;
                done(r)?;
                let c = SwitchConfig {
                    flags,
                    miss_send_len,
                };
                if t == MsgType::SetConfig {
                    Message::SetConfig(c)
                } else {
                    Message::GetConfigReply(c)
                }
            }
            MsgType::PacketIn => {
                let (r, buffer_id) = be_u32(b)?;
                let (r, total_len) = be_u16(r)?;
                let (r, reason) = be_u8(r)?;
                let (r, table_id) = be_u8(r)?;
                let (r, cookie) = be_u64(r)?;
                let (r, match_) = Match::parse(r)?;
                let (data, ()) = pad(r, 2)?;
                Message::PacketIn(PacketIn {
                    buffer_id,
                    total_len,
                    reason: reason.into(),
                    table_id,
                    cookie,
                    match_,
                    data: Cow::Borrowed(data),
                })
            }
            MsgType::FlowRemoved => {
                let (r, cookie) = be_u64(b)?;
                let (r, priority) = be_u16(r)?;
                let (r, reason) = be_u8(r)?;
                let (r, table_id) = be_u8(r)?;
                let (r, duration_sec) = be_u32(r)?;
                let (r, duration_nsec) = be_u32(r)?;
                let (r, idle_timeout) = be_u16(r)?;
                let (r, hard_timeout) = be_u16(r)?;
                let (r, packet_count) = be_u64(r)?;
                let (r, byte_count) = be_u64(r)?;
                let (r, match_) = Match::parse(r)?;
                done(r)?;
                Message::FlowRemoved(FlowRemoved {
                    cookie,
                    priority,
                    reason: reason.into(),
                    table_id,
                    duration_sec,
                    duration_nsec,
                    idle_timeout,
                    hard_timeout,
                    packet_count,
                    byte_count,
                    match_,
                })
            }
            MsgType::PortStatus => {
                let (r, p) = PortStatus::parse(b)?;
                done(r)?;
                Message::PortStatus(p)
            }
            MsgType::PacketOut => {
                let (r, buffer_id) = be_u32(b)?;
                let (r, in_port) = be_u32(r)?;
                let (r, actions_len) = be_u16(r)?;
                let (r, ()) = pad(r, 6)?;
                let (data, acts) = take(r, usize::from(actions_len)).map_err(|_| {
                    PErr::at(
                        r,
                        ErrorKind::BadLength {
                            what: "actions",
                            length: u32::from(actions_len),
                        },
                    )
                })?;
                Message::PacketOut(PacketOut {
                    buffer_id,
                    in_port: in_port.into(),
                    actions: parse_actions(acts)?,
                    data: Cow::Borrowed(data),
                })
            }
            MsgType::FlowMod => {
                let (r, cookie) = be_u64(b)?;
                let (r, cookie_mask) = be_u64(r)?;
                let (r, table_id) = be_u8(r)?;
                let (r, command) = be_u8(r)?;
                let (r, idle_timeout) = be_u16(r)?;
                let (r, hard_timeout) = be_u16(r)?;
                let (r, priority) = be_u16(r)?;
                let (r, buffer_id) = be_u32(r)?;
                let (r, out_port) = be_u32(r)?;
                let (r, out_group) = be_u32(r)?;
                let (r, flags) = be_u16(r)?;
                let (r, ()) = pad(r, 2)?;
                let (r, match_) = Match::parse(r)?;
                Message::FlowMod(Box::new(FlowMod {
                    cookie,
                    cookie_mask,
                    table_id,
                    command: command.into(),
                    idle_timeout,
                    hard_timeout,
                    priority,
                    buffer_id,
                    out_port: out_port.into(),
                    out_group,
                    flags,
                    match_,
                    instructions: parse_instructions(r)?,
                }))
            }
            MsgType::GroupMod => Message::GroupMod(GroupMod::parse(b)?.1),
            MsgType::PortMod => {
                let (r, p) = PortMod::parse(b)?;
                done(r)?;
                Message::PortMod(p)
            }
            MsgType::TableMod => {
                let (r, table_id) = be_u8(b)?;
                let (r, ()) = pad(r, 3)?;
                let (r, config) = be_u32(r)?;
                done(r)?;
                Message::TableMod(TableMod { table_id, config })
            }
            MsgType::MultipartRequest => Message::MultipartRequest(MultipartRequest::parse(b)?.1),
            MsgType::MultipartReply => Message::MultipartReply(MultipartReply::parse(b)?.1),
            MsgType::BarrierRequest => empty(Message::BarrierRequest)?,
            MsgType::BarrierReply => empty(Message::BarrierReply)?,
            MsgType::QueueGetConfigRequest => {
                let (r, port) = be_u32(b)?;
                let (r, ()) = pad(r, 4)?;
                done(r)?;
                Message::QueueGetConfigRequest { port: port.into() }
            }
            MsgType::QueueGetConfigReply => {
                let (r, port) = be_u32(b)?;
                let (r, ()) = pad(r, 4)?;
                let queues = many(r, PacketQueue::parse)?;
                Message::QueueGetConfigReply(QueueGetConfigReply {
                    port: port.into(),
                    queues,
                })
            }
            MsgType::RoleRequest | MsgType::RoleReply => {
                let (r, role) = be_u32(b)?;
                let (r, ()) = pad(r, 4)?;
                let (r, generation_id) = be_u64(r)?;
                done(r)?;
                let role = Role {
                    role: role.into(),
                    generation_id,
                };
                if t == MsgType::RoleRequest {
                    Message::RoleRequest(role)
                } else {
                    Message::RoleReply(role)
                }
            }
            MsgType::GetAsyncRequest => empty(Message::GetAsyncRequest)?,
            MsgType::GetAsyncReply | MsgType::SetAsync => {
                let (r, a) = be_u32(b)?;
                let (r, b2) = be_u32(r)?;
                let (r, c) = be_u32(r)?;
                let (r, d) = be_u32(r)?;
                let (r, e) = be_u32(r)?;
                let (r, f) = be_u32(r)?;
                done(r)?;
                let cfg = AsyncConfig {
                    packet_in_mask: [a, b2],
                    port_status_mask: [c, d],
                    flow_removed_mask: [e, f],
                };
                if t == MsgType::SetAsync {
                    Message::SetAsync(cfg)
                } else {
                    Message::GetAsyncReply(cfg)
                }
            }
            MsgType::MeterMod => Message::MeterMod(MeterMod::parse(b)?.1),
            MsgType::Unknown(msg_type) => {
                return Err(PErr::at(b, ErrorKind::BadType { msg_type }));
            }
        };
        Ok(msg)
    }

    /// Detaches every payload from the input buffer.
    pub fn into_owned(self) -> Message<'static> {
        let own = |d: Cow<'_, [u8]>| Cow::Owned(d.into_owned());
        match self {
            Message::Hello { elements } => Message::Hello {
                elements: elements.into_iter().map(HelloElem::into_owned).collect(),
            },
            Message::Error(e) => Message::Error(ErrorMsg {
                data: own(e.data),
                ..e
            }),
            Message::EchoRequest { data } => Message::EchoRequest { data: own(data) },
            Message::EchoReply { data } => Message::EchoReply { data: own(data) },
            Message::Experimenter(e) => Message::Experimenter(Experimenter {
                data: own(e.data),
                ..e
            }),
            Message::FeaturesRequest => Message::FeaturesRequest,
            Message::FeaturesReply(f) => Message::FeaturesReply(f),
            Message::GetConfigRequest => Message::GetConfigRequest,
            Message::GetConfigReply(c) => Message::GetConfigReply(c),
            Message::SetConfig(c) => Message::SetConfig(c),
            Message::PacketIn(p) => Message::PacketIn(PacketIn {
                match_: p.match_.into_owned(),
                data: own(p.data),
                ..p
            }),
            Message::FlowRemoved(f) => Message::FlowRemoved(FlowRemoved {
                match_: f.match_.into_owned(),
                ..f
            }),
            Message::PortStatus(p) => Message::PortStatus(p),
            Message::PacketOut(p) => Message::PacketOut(PacketOut {
                actions: actions_into_owned(p.actions),
                data: own(p.data),
                ..p
            }),
            Message::FlowMod(f) => {
                let f = *f;
                Message::FlowMod(Box::new(FlowMod {
                    match_: f.match_.into_owned(),
                    instructions: instructions_into_owned(f.instructions),
                    ..f
                }))
            }
            Message::GroupMod(g) => Message::GroupMod(g.into_owned()),
            Message::PortMod(p) => Message::PortMod(p),
            Message::TableMod(t) => Message::TableMod(t),
            Message::MultipartRequest(m) => Message::MultipartRequest(m.into_owned()),
            Message::MultipartReply(m) => Message::MultipartReply(m.into_owned()),
            Message::BarrierRequest => Message::BarrierRequest,
            Message::BarrierReply => Message::BarrierReply,
            Message::QueueGetConfigRequest { port } => Message::QueueGetConfigRequest { port },
            Message::QueueGetConfigReply(q) => Message::QueueGetConfigReply(QueueGetConfigReply {
                port: q.port,
                queues: q.queues.into_iter().map(PacketQueue::into_owned).collect(),
            }),
            Message::RoleRequest(r) => Message::RoleRequest(r),
            Message::RoleReply(r) => Message::RoleReply(r),
            Message::GetAsyncRequest => Message::GetAsyncRequest,
            Message::GetAsyncReply(a) => Message::GetAsyncReply(a),
            Message::SetAsync(a) => Message::SetAsync(a),
            Message::MeterMod(m) => Message::MeterMod(m.into_owned()),
        }
    }
}

/// Decodes exactly one message from the start of `buf`, which must hold at
/// least the `length` its header declares (bytes after it are ignored:
/// use [`crate::framing`] to split a stream). Never panics.
pub fn decode(buf: &[u8]) -> Result<(Header, Message<'_>), DecodeError> {
    let err = |kind, offset| DecodeError { kind, offset };
    let header = Header::peek(buf).ok_or(err(ErrorKind::Truncated, buf.len()))?;
    let length = usize::from(header.length);
    if length < HEADER_LEN {
        return Err(err(
            ErrorKind::LengthBelowHeader {
                length: header.length,
            },
            2,
        ));
    }
    let whole = buf
        .get(..length)
        .ok_or(err(ErrorKind::Truncated, buf.len()))?;
    // HELLO is exchanged before the version is agreed, so any version's
    // HELLO is accepted; everything else must be OpenFlow 1.3.
    if header.version != OFP_VERSION && header.msg_type != MsgType::Hello {
        return Err(err(
            ErrorKind::BadVersion {
                version: header.version,
            },
            0,
        ));
    }
    if let MsgType::Unknown(msg_type) = header.msg_type {
        return Err(err(ErrorKind::BadType { msg_type }, 1));
    }
    let body = whole.get(HEADER_LEN..).unwrap_or_default();
    let msg = Message::parse_body(header.msg_type, body).map_err(|e| {
        let mut d = finish(body, e);
        d.offset += HEADER_LEN;
        d
    })?;
    Ok((header, msg))
}

/// A message body that encodes on its own: [`Message`], and the bodies
/// the controller sends on its hot paths (FLOW_MOD, PACKET_OUT, METER_MOD,
/// GROUP_MOD), which can be encoded without building a `Message`.
pub trait Body {
    fn msg_type(&self) -> MsgType;
    /// Encoded length of everything after the 8-byte header.
    fn body_len(&self) -> usize;
    /// Writes everything after the 8-byte header.
    fn emit_body<B: Sink>(&self, buf: &mut B);
    /// Encoded length of the whole message.
    fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }
}

impl Body for Message<'_> {
    fn msg_type(&self) -> MsgType {
        Message::msg_type(self)
    }
    fn body_len(&self) -> usize {
        Message::body_len(self)
    }
    fn emit_body<B: Sink>(&self, buf: &mut B) {
        Message::emit_body(self, buf)
    }
}

impl Body for FlowMod<'_> {
    fn msg_type(&self) -> MsgType {
        MsgType::FlowMod
    }
    fn body_len(&self) -> usize {
        40 + self.match_.buffer_len() + instructions_len(&self.instructions)
    }
    fn emit_body<B: Sink>(&self, buf: &mut B) {
        // The 40 fixed bytes in one write: this is the hottest encode.
        let mut fixed = [0u8; 40];
        let fields: [&[u8]; 11] = [
            &self.cookie.to_be_bytes(),
            &self.cookie_mask.to_be_bytes(),
            &[self.table_id, self.command.value()],
            &self.idle_timeout.to_be_bytes(),
            &self.hard_timeout.to_be_bytes(),
            &self.priority.to_be_bytes(),
            &self.buffer_id.to_be_bytes(),
            &self.out_port.value().to_be_bytes(),
            &self.out_group.to_be_bytes(),
            &self.flags.to_be_bytes(),
            &[0, 0],
        ];
        let mut at = 0;
        for f in fields {
            if let Some(dst) = fixed.get_mut(at..at + f.len()) {
                dst.copy_from_slice(f);
            }
            at += f.len();
        }
        buf.put_slice(&fixed);
        self.match_.emit(buf);
        emit_instructions(&self.instructions, buf);
    }
}

impl Body for PacketOut<'_> {
    fn msg_type(&self) -> MsgType {
        MsgType::PacketOut
    }
    fn body_len(&self) -> usize {
        16 + actions_len(&self.actions) + self.data.len()
    }
    fn emit_body<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.in_port.value());
        let at = buf.written();
        buf.put_u16(0);
        buf.put_bytes(0, 6);
        emit_actions(&self.actions, buf);
        let len = buf.written().saturating_sub(at + 8);
        buf.patch_u16(at, len as u16);
        buf.put_slice(&self.data);
    }
}

impl Body for MeterMod<'_> {
    fn msg_type(&self) -> MsgType {
        MsgType::MeterMod
    }
    fn body_len(&self) -> usize {
        8 + crate::meter::bands_len(&self.bands)
    }
    fn emit_body<B: Sink>(&self, buf: &mut B) {
        self.emit(buf)
    }
}

impl Body for GroupMod<'_> {
    fn msg_type(&self) -> MsgType {
        MsgType::GroupMod
    }
    fn body_len(&self) -> usize {
        8 + crate::group::buckets_len(&self.buckets)
    }
    fn emit_body<B: Sink>(&self, buf: &mut B) {
        self.emit(buf)
    }
}

/// Encodes `msg` with transaction id `xid` into `buf` (OpenFlow 1.3
/// header). Writes nothing when the message is too long to encode.
pub fn encode<M: Body + ?Sized, B: Sink>(
    xid: u32,
    msg: &M,
    buf: &mut B,
) -> Result<usize, EncodeError> {
    encode_versioned(OFP_VERSION, xid, msg, buf)
}

/// Like [`encode`] with another header version: only meaningful for HELLO,
/// which is exchanged before a version is agreed (and to re-encode a
/// decoded HELLO exactly).
pub fn encode_versioned<M: Body + ?Sized, B: Sink>(
    version: u8,
    xid: u32,
    msg: &M,
    buf: &mut B,
) -> Result<usize, EncodeError> {
    let start = buf.written();
    buf.put_u8(version);
    buf.put_u8(msg.msg_type().value());
    buf.put_u16(0);
    buf.put_u32(xid);
    msg.emit_body(buf);
    let length = buf.written().saturating_sub(start);
    match u16::try_from(length) {
        Ok(wire_len) => {
            buf.patch_u16(start + 2, wire_len);
            Ok(length)
        }
        Err(_) => {
            buf.truncate_to(start);
            Err(EncodeError::TooLong { length })
        }
    }
}

/// Encodes into a new vector.
pub fn to_vec<M: Body + ?Sized>(xid: u32, msg: &M) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::with_capacity(256);
    encode(xid, msg, &mut v)?;
    Ok(v)
}

/// The message as a JSON object: `version`, `type`, `xid`, then the body's
/// fields, as `tierflow decode` prints it.
pub fn to_json(header: &Header, msg: &Message<'_>) -> serde_json::Value {
    use serde_json::{Map, Value};
    let mut obj = Map::new();
    obj.insert("version".into(), header.version.into());
    obj.insert(
        "type".into(),
        serde_json::to_value(header.msg_type).unwrap_or(Value::Null),
    );
    obj.insert("xid".into(), header.xid.into());
    let body = match msg {
        Message::Hello { elements } => serde_json::json!({ "elements": elements }),
        Message::Error(e) => serde_json::to_value(e).unwrap_or(Value::Null),
        Message::EchoRequest { data } | Message::EchoReply { data } => {
            serde_json::json!({ "data": hex::encode(data) })
        }
        Message::Experimenter(e) => serde_json::to_value(e).unwrap_or(Value::Null),
        Message::FeaturesReply(f) => serde_json::to_value(f).unwrap_or(Value::Null),
        Message::GetConfigReply(c) | Message::SetConfig(c) => {
            serde_json::to_value(c).unwrap_or(Value::Null)
        }
        Message::PacketIn(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        Message::FlowRemoved(f) => serde_json::to_value(f).unwrap_or(Value::Null),
        Message::PortStatus(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        Message::PacketOut(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        Message::FlowMod(f) => serde_json::to_value(&**f).unwrap_or(Value::Null),
        Message::GroupMod(g) => serde_json::to_value(g).unwrap_or(Value::Null),
        Message::PortMod(p) => serde_json::to_value(p).unwrap_or(Value::Null),
        Message::TableMod(t) => serde_json::to_value(t).unwrap_or(Value::Null),
        Message::MultipartRequest(m) => serde_json::to_value(m).unwrap_or(Value::Null),
        Message::MultipartReply(m) => serde_json::to_value(m).unwrap_or(Value::Null),
        Message::QueueGetConfigRequest { port } => serde_json::json!({ "port": port }),
        Message::QueueGetConfigReply(q) => serde_json::to_value(q).unwrap_or(Value::Null),
        Message::RoleRequest(r) | Message::RoleReply(r) => {
            serde_json::to_value(r).unwrap_or(Value::Null)
        }
        Message::GetAsyncReply(a) | Message::SetAsync(a) => {
            serde_json::to_value(a).unwrap_or(Value::Null)
        }
        Message::MeterMod(m) => serde_json::to_value(m).unwrap_or(Value::Null),
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => Value::Object(Map::new()),
    };
    if let Value::Object(fields) = body {
        obj.extend(fields);
    }
    Value::Object(obj)
}
