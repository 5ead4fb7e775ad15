//! OXM TLVs (`ofp_oxm_header` + payload) and the OXM match (`ofp_match`).
//!
//! Every OpenFlow-basic field decodes to a typed variant with an optional
//! mask; experimenter OXMs, other classes and unknown basic fields are kept
//! raw in [`RawOxm`] so they re-encode to the same bytes.

use crate::error::{ErrorKind, PErr, PResult};
use crate::parse::{array, be_u8, be_u16, be_u32, be_u64, bounded, done, pad, pad8, take};
use crate::sink::Sink;
use crate::types::MacAddr;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

/// `OFPXMC_OPENFLOW_BASIC`.
pub const CLASS_OPENFLOW_BASIC: u16 = 0x8000;
/// `OFPXMC_EXPERIMENTER`.
pub const CLASS_EXPERIMENTER: u16 = 0xffff;
/// `OFPVID_PRESENT`: set in `vlan_vid` when a VLAN tag is present.
pub const VID_PRESENT: u16 = 0x1000;

/// A value that can be carried in an OXM payload.
pub trait OxmValue: Sized + Copy {
    /// Payload length without the mask.
    const LEN: usize;
    fn parse(b: &[u8]) -> PResult<'_, Self>;
    fn emit<B: Sink>(&self, buf: &mut B);
    /// Writes the value into `out`, which is exactly `LEN` bytes.
    fn write(&self, out: &mut [u8]);
}

macro_rules! int_value {
    ($t:ty, $len:expr, $parse:ident, $put:ident) => {
        impl OxmValue for $t {
            const LEN: usize = $len;
            fn parse(b: &[u8]) -> PResult<'_, Self> {
                $parse(b)
            }
            fn emit<B: Sink>(&self, buf: &mut B) {
                buf.$put(*self);
            }
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_be_bytes());
            }
        }
    };
}
int_value!(u8, 1, be_u8, put_u8);
int_value!(u16, 2, be_u16, put_u16);
int_value!(u32, 4, be_u32, put_u32);
int_value!(u64, 8, be_u64, put_u64);

impl OxmValue for MacAddr {
    const LEN: usize = 6;
    fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (r, a) = array::<6>(b)?;
        Ok((r, MacAddr(a)))
    }
    fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_slice(&self.0);
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
}

impl OxmValue for Ipv4Addr {
    const LEN: usize = 4;
    fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (r, a) = array::<4>(b)?;
        Ok((r, Ipv4Addr::from(a)))
    }
    fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_slice(&self.octets());
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }
}

impl OxmValue for Ipv6Addr {
    const LEN: usize = 16;
    fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (r, a) = array::<16>(b)?;
        Ok((r, Ipv6Addr::from(a)))
    }
    fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_slice(&self.octets());
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }
}

/// A 24-bit value (`pbb_isid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct U24(pub u32);

impl OxmValue for U24 {
    const LEN: usize = 3;
    fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (r, [a, b, c]) = array::<3>(b)?;
        Ok((r, U24(u32::from_be_bytes([0, a, b, c]))))
    }
    fn emit<B: Sink>(&self, buf: &mut B) {
        let [_, a, b, c] = self.0.to_be_bytes();
        buf.put_slice(&[a, b, c]);
    }
    fn write(&self, out: &mut [u8]) {
        let [_, a, b, c] = self.0.to_be_bytes();
        out.copy_from_slice(&[a, b, c]);
    }
}

/// A non-basic or unknown OXM kept byte for byte. For the experimenter
/// class the payload starts with the 32-bit experimenter id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawOxm<'a> {
    pub class: u16,
    pub field: u8,
    pub hasmask: bool,
    pub payload: Cow<'a, [u8]>,
}

impl RawOxm<'_> {
    pub fn into_owned(self) -> RawOxm<'static> {
        RawOxm {
            payload: Cow::Owned(self.payload.into_owned()),
            ..self
        }
    }

    /// The experimenter id, for the experimenter class.
    pub fn experimenter(&self) -> Option<u32> {
        if self.class != CLASS_EXPERIMENTER {
            return None;
        }
        let b: [u8; 4] = self.payload.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(b))
    }
}

macro_rules! oxm_fields {
    ($( $variant:ident = $id:expr, $name:literal, $t:ty; )+) => {
        /// One OXM TLV. Basic fields carry a value and an optional mask.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Oxm<'a> {
            $( $variant($t, Option<$t>), )+
            Raw(RawOxm<'a>),
        }

        /// Spec names of the basic fields, indexed by field number.
        pub const BASIC_FIELD_NAMES: &[(u8, &str)] = &[ $( ($id, $name) ),+ ];

        impl<'a> Oxm<'a> {
            /// (class, field number, hasmask).
            pub fn header_parts(&self) -> (u16, u8, bool) {
                match self {
                    $( Oxm::$variant(_, m) => (CLASS_OPENFLOW_BASIC, $id, m.is_some()), )+
                    Oxm::Raw(r) => (r.class, r.field, r.hasmask),
                }
            }

            /// The spec name of a basic field (`"ipv4_src"`).
            pub fn name(&self) -> Option<&'static str> {
                match self {
                    $( Oxm::$variant(..) => Some($name), )+
                    Oxm::Raw(_) => None,
                }
            }

            /// Payload length (value plus mask), as in the OXM header.
            pub fn payload_len(&self) -> usize {
                match self {
                    $( Oxm::$variant(_, m) => <$t as OxmValue>::LEN * if m.is_some() { 2 } else { 1 }, )+
                    Oxm::Raw(r) => r.payload.len(),
                }
            }

            /// Writes the TLV, header and payload, in one pass.
            #[inline]
            pub fn emit<B: Sink>(&self, buf: &mut B) {
                match self {
                    $( Oxm::$variant(v, m) => {
                        let len = <$t as OxmValue>::LEN as u32 * if m.is_some() { 2 } else { 1 };
                        buf.put_u32(
                            (u32::from(CLASS_OPENFLOW_BASIC) << 16)
                                | (($id as u32) << 9)
                                | (u32::from(m.is_some()) << 8)
                                | len,
                        );
                        v.emit(buf);
                        if let Some(m) = m {
                            m.emit(buf);
                        }
                    } )+
                    Oxm::Raw(r) => {
                        buf.put_u32(self.header());
                        buf.put_slice(&r.payload);
                    }
                }
            }

            /// Parses a basic field's payload, checking its length, in one
            /// dispatch on the field number. `None` for an unknown field.
            fn parse_basic(field: u8, hasmask: bool, payload: &'a [u8]) -> Option<Result<Self, ()>> {
                match field {
                    $( $id => Some((|| {
                        const LEN: usize = <$t as OxmValue>::LEN;
                        if payload.len() != if hasmask { 2 * LEN } else { LEN } {
                            return Err(());
                        }
                        let (r, v) = <$t as OxmValue>::parse(payload).map_err(|_| ())?;
                        let m = if hasmask {
                            Some(<$t as OxmValue>::parse(r).map_err(|_| ())?.1)
                        } else {
                            None
                        };
                        Ok(Oxm::$variant(v, m))
                    })()), )+
                    _ => None,
                }
            }

            /// Detaches from the input buffer.
            pub fn into_owned(self) -> Oxm<'static> {
                match self {
                    $( Oxm::$variant(v, m) => Oxm::$variant(v, m), )+
                    Oxm::Raw(r) => Oxm::Raw(r.into_owned()),
                }
            }

            fn serialize_value<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
                match self {
                    $( Oxm::$variant(v, m) => {
                        map.serialize_entry("value", v)?;
                        if let Some(m) = m { map.serialize_entry("mask", m)?; }
                        Ok(())
                    } )+
                    Oxm::Raw(_) => Ok(()),
                }
            }
        }
    };
}

use crate::consts::PortNo;
impl OxmValue for PortNo {
    const LEN: usize = 4;
    fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (r, v) = be_u32(b)?;
        Ok((r, PortNo::from(v)))
    }
    fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(u32::from(*self));
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&u32::from(*self).to_be_bytes());
    }
}

oxm_fields! {
    InPort = 0, "in_port", PortNo;
    InPhyPort = 1, "in_phy_port", PortNo;
    Metadata = 2, "metadata", u64;
    EthDst = 3, "eth_dst", MacAddr;
    EthSrc = 4, "eth_src", MacAddr;
    EthType = 5, "eth_type", u16;
    VlanVid = 6, "vlan_vid", u16;
    VlanPcp = 7, "vlan_pcp", u8;
    IpDscp = 8, "ip_dscp", u8;
    IpEcn = 9, "ip_ecn", u8;
    IpProto = 10, "ip_proto", u8;
    Ipv4Src = 11, "ipv4_src", Ipv4Addr;
    Ipv4Dst = 12, "ipv4_dst", Ipv4Addr;
    TcpSrc = 13, "tcp_src", u16;
    TcpDst = 14, "tcp_dst", u16;
    UdpSrc = 15, "udp_src", u16;
    UdpDst = 16, "udp_dst", u16;
    SctpSrc = 17, "sctp_src", u16;
    SctpDst = 18, "sctp_dst", u16;
    Icmpv4Type = 19, "icmpv4_type", u8;
    Icmpv4Code = 20, "icmpv4_code", u8;
    ArpOp = 21, "arp_op", u16;
    ArpSpa = 22, "arp_spa", Ipv4Addr;
    ArpTpa = 23, "arp_tpa", Ipv4Addr;
    ArpSha = 24, "arp_sha", MacAddr;
    ArpTha = 25, "arp_tha", MacAddr;
    Ipv6Src = 26, "ipv6_src", Ipv6Addr;
    Ipv6Dst = 27, "ipv6_dst", Ipv6Addr;
    Ipv6Flabel = 28, "ipv6_flabel", u32;
    Icmpv6Type = 29, "icmpv6_type", u8;
    Icmpv6Code = 30, "icmpv6_code", u8;
    Ipv6NdTarget = 31, "ipv6_nd_target", Ipv6Addr;
    Ipv6NdSll = 32, "ipv6_nd_sll", MacAddr;
    Ipv6NdTll = 33, "ipv6_nd_tll", MacAddr;
    MplsLabel = 34, "mpls_label", u32;
    MplsTc = 35, "mpls_tc", u8;
    MplsBos = 36, "mpls_bos", u8;
    PbbIsid = 37, "pbb_isid", U24;
    TunnelId = 38, "tunnel_id", u64;
    Ipv6Exthdr = 39, "ipv6_exthdr", u16;
}

impl<'a> Oxm<'a> {
    /// Encoded length: 4-byte header plus payload.
    pub fn buffer_len(&self) -> usize {
        4 + self.payload_len()
    }

    /// The 32-bit OXM header.
    pub fn header(&self) -> u32 {
        let (class, field, hasmask) = self.header_parts();
        // The payload length field is one byte; a raw payload longer than
        // that cannot be expressed and is clamped (never produced by parse).
        let len = self.payload_len().min(255) as u32;
        (u32::from(class) << 16) | (u32::from(field) << 9) | (u32::from(hasmask) << 8) | len
    }

    /// Parses one OXM TLV.
    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, header) = be_u32(input)?;
        let class = (header >> 16) as u16;
        let field = ((header >> 9) & 0x7f) as u8;
        let hasmask = header & 0x100 != 0;
        let length = (header & 0xff) as u8;
        let (rest, payload) = take(rest, usize::from(length))
            .map_err(|_| PErr::at(input, ErrorKind::BadOxmLength { field, length }))?;
        if class == CLASS_OPENFLOW_BASIC {
            match Self::parse_basic(field, hasmask, payload) {
                Some(Ok(oxm)) => return Ok((rest, oxm)),
                Some(Err(())) => {
                    return Err(PErr::at(input, ErrorKind::BadOxmLength { field, length }));
                }
                None => {}
            }
        } else if class == CLASS_EXPERIMENTER && length < 4 {
            // The experimenter class must carry its 32-bit experimenter id.
            return Err(PErr::at(input, ErrorKind::BadOxmLength { field, length }));
        }
        let raw = RawOxm {
            class,
            field,
            hasmask,
            payload: Cow::Borrowed(payload),
        };
        Ok((rest, Oxm::Raw(raw)))
    }
}

impl Serialize for Oxm<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Oxm::Raw(r) => {
                map.serialize_entry("class", &r.class)?;
                map.serialize_entry("field", &r.field)?;
                map.serialize_entry("hasmask", &r.hasmask)?;
                if let Some(exp) = r.experimenter() {
                    map.serialize_entry("experimenter", &exp)?;
                }
                map.serialize_entry("data", &hex::encode(&r.payload))?;
            }
            basic => {
                map.serialize_entry("field", &basic.name())?;
                basic.serialize_value(&mut map)?;
            }
        }
        map.end()
    }
}

/// Inline capacity of a match. A packet-in's match (in_port plus a few
/// pipeline fields) and a forwarding flow's fit without a heap allocation;
/// larger matches spill to the heap when built. Kept small because every
/// decoded message moves its match by value: at 8 inline fields, copying
/// the match was a third of decoding a PACKET_IN (callgrind).
pub const MATCH_INLINE: usize = 4;

/// An OXM match (`ofp_match` of type `OFPMT_OXM`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Match<'a> {
    pub fields: SmallVec<[Oxm<'a>; MATCH_INLINE]>,
}

/// `OFPMT_OXM`.
pub const MATCH_TYPE_OXM: u16 = 1;

impl<'a> Match<'a> {
    /// The match-everything match.
    pub fn new() -> Self {
        Match {
            fields: SmallVec::new(),
        }
    }

    pub fn with(mut self, oxm: Oxm<'a>) -> Self {
        self.fields.push(oxm);
        self
    }

    /// The `length` field: header plus OXMs, without trailing padding.
    pub fn unpadded_len(&self) -> usize {
        4 + self.fields.iter().map(Oxm::buffer_len).sum::<usize>()
    }

    /// Encoded length including padding to a multiple of 8.
    pub fn buffer_len(&self) -> usize {
        let n = self.unpadded_len();
        n + pad8(n)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        let start = buf.written();
        buf.put_u16(MATCH_TYPE_OXM);
        buf.put_u16(0);
        for f in &self.fields {
            f.emit(buf);
        }
        // A match longer than 64 KiB cannot be represented; the message
        // length check in `encode` rejects such messages.
        let n = crate::sink::finish(buf, start, 2);
        crate::sink::put_zeros(buf, pad8(n));
    }

    /// Parses a match including its trailing padding.
    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, match_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        if match_type != MATCH_TYPE_OXM {
            return Err(PErr::at(input, ErrorKind::BadMatchType { match_type }));
        }
        let length = usize::from(length);
        let (rest, body) = bounded(input, length, 4, "match")?;
        let (mut oxms, _) = take(body, 4)?;
        let mut fields = SmallVec::new();
        while !oxms.is_empty() {
            let (r, f) = Oxm::parse(oxms)?;
            fields.push(f);
            oxms = r;
        }
        done(oxms)?;
        let (rest, ()) = pad(rest, pad8(length))?;
        Ok((rest, Match { fields }))
    }

    pub fn into_owned(self) -> Match<'static> {
        Match {
            fields: self.fields.into_iter().map(Oxm::into_owned).collect(),
        }
    }

    /// The first field for which `f` returns something.
    pub fn find<T>(&self, f: impl Fn(&Oxm<'a>) -> Option<T>) -> Option<T> {
        self.fields.iter().find_map(f)
    }

    /// The `in_port` field, if present.
    pub fn in_port(&self) -> Option<u32> {
        self.find(|o| match o {
            Oxm::InPort(p, None) => Some(u32::from(*p)),
            _ => None,
        })
    }
}

impl Serialize for Match<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("oxm_fields", &self.fields[..])?;
        map.end()
    }
}

/// An OXM header alone (table-features properties list supported fields).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OxmId {
    /// The 32-bit OXM header.
    pub header: u32,
    /// For the experimenter class, the experimenter id that follows.
    pub experimenter: Option<u32>,
}

impl OxmId {
    pub fn buffer_len(&self) -> usize {
        if self.experimenter.is_some() { 8 } else { 4 }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.header);
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Self> {
        let (r, header) = be_u32(input)?;
        if (header >> 16) as u16 == CLASS_EXPERIMENTER {
            let (r, e) = be_u32(r)?;
            Ok((
                r,
                OxmId {
                    header,
                    experimenter: Some(e),
                },
            ))
        } else {
            Ok((
                r,
                OxmId {
                    header,
                    experimenter: None,
                },
            ))
        }
    }
}

impl Serialize for OxmId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let class = (self.header >> 16) as u16;
        let field = ((self.header >> 9) & 0x7f) as u8;
        let mut map = s.serialize_map(None)?;
        let name = BASIC_FIELD_NAMES
            .iter()
            .find(|(id, _)| *id == field)
            .map(|(_, n)| *n);
        match name {
            Some(n) if class == CLASS_OPENFLOW_BASIC => map.serialize_entry("field", n)?,
            _ => {
                map.serialize_entry("class", &class)?;
                map.serialize_entry("field", &field)?;
            }
        }
        map.serialize_entry("hasmask", &(self.header & 0x100 != 0))?;
        map.serialize_entry("length", &(self.header & 0xff))?;
        if let Some(e) = self.experimenter {
            map.serialize_entry("experimenter", &e)?;
        }
        map.end()
    }
}
