//! The bytes of `tierflow bench`'s emulated switches: the frames their
//! hosts send (a 60-byte IPv4/UDP frame carrying a sequence number, a
//! gratuitous ARP), PACKET_IN templates patched per packet, fixed-offset
//! readers for PACKET_OUT, and the switch side of the handshake (HELLO,
//! FEATURES_REPLY, PORT_DESC/DESC/METER_FEATURES replies).
//!
//! The hot path (PACKET_IN out, BARRIER_REPLY out, PACKET_OUT in) never
//! builds a `Message`: templates are encoded once by the `openflow` codec
//! and then copied and patched; PACKET_OUTs are read at the offsets of
//! `ofp_packet_out` (spec 7.3.7). Handshake replies are rare and go through
//! the codec.

use bytes::{BufMut, BytesMut};
use openflow::multipart::{Desc, MeterFeatures, MultipartReplyBody};
use openflow::port::state;
use openflow::{
    ErrorMsg, ErrorType, FeaturesReply, FixedStr, HelloElem, MacAddr, Match, Message, MsgType,
    MultipartReply, MultipartType, OFP_VERSION, Oxm, PacketIn, PacketInReason, Port, PortNo,
};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// Marks a frame as one of ours, so floods of other frames are not taken
/// for setup completions.
pub const MAGIC: [u8; 4] = *b"TFb1";
/// Minimum Ethernet frame (without FCS): what a NIC would hand OVS.
pub const FRAME_LEN: usize = 60;

// Offsets inside the bench frame: Ethernet (14) + IPv4 (20) + UDP (8).
const ETH_TYPE_AT: usize = 12;
const IP_PROTO_AT: usize = 23;
const IP_SRC_AT: usize = 26;
const UDP_SRC_AT: usize = 34;
const UDP_CSUM_AT: usize = 40;
const MAGIC_AT: usize = 42;
const SWITCH_AT: usize = 46;
const SEQ_AT: usize = 50;
const PAYLOAD_LEN: usize = FRAME_LEN - MAGIC_AT;

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_LLDP: u16 = 0x88cc;
const IPPROTO_UDP: u8 = 17;
/// UDP destination port of bench frames (the discard service).
const BENCH_UDP_PORT: u16 = 9;

/// An emulated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
}

impl Host {
    /// Host number `n` of the run: a locally administered MAC and an
    /// address in 10.0.0.0/8, both derived from `n`.
    pub fn numbered(n: u32) -> Host {
        let [a, b, c, d] = n.to_be_bytes();
        let ip = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (n & 0x00ff_ffff) + 1;
        Host {
            mac: [0x02, 0xbe, a, b, c, d],
            ip: Ipv4Addr::from(ip),
        }
    }

    /// Host number `n` in subnet 10.`subnet`.0.0/16 (routed mode: 10.1/16
    /// and 10.2/16, whose gateways are .0.1): the same MAC as
    /// `numbered(n)`, an address from 10.`subnet`.0.2 on.
    pub fn in_subnet(n: u32, subnet: u8) -> Host {
        let base = u32::from(Ipv4Addr::new(10, subnet, 0, 0));
        Host {
            ip: Ipv4Addr::from(base + (n & 0xffff) % 0xfffd + 2),
            ..Host::numbered(n)
        }
    }
}

/// The router's address (the controller's `vlan::ROUTER_MAC`): routed
/// mode's frames are sent to it.
pub const ROUTER_MAC: [u8; 6] = [0x0e, 0x74, 0x66, 0x00, 0x00, 0x01];

/// A new-flow frame from `src` to `dst`; `switch` and the sequence number
/// (zero here, patched per packet) identify it when it comes back.
pub fn udp_frame(src: &Host, dst: &Host, switch: u32) -> [u8; FRAME_LEN] {
    frame_via(src, dst, dst.mac, switch)
}

/// The same frame sent to the router (routed mode): to its Ethernet
/// address, for `dst`'s IPv4 address.
pub fn routed_udp_frame(src: &Host, dst: &Host, switch: u32) -> [u8; FRAME_LEN] {
    frame_via(src, dst, ROUTER_MAC, switch)
}

fn frame_via(src: &Host, dst: &Host, next: [u8; 6], switch: u32) -> [u8; FRAME_LEN] {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[..4].copy_from_slice(&MAGIC);
    payload[4..8].copy_from_slice(&switch.to_be_bytes());
    let mut frame = [0u8; FRAME_LEN];
    let built = etherparse::PacketBuilder::ethernet2(src.mac, next)
        .ipv4(src.ip.octets(), dst.ip.octets(), 64)
        .udp(BENCH_UDP_PORT, BENCH_UDP_PORT)
        .write_to_slice(&mut frame, &payload);
    debug_assert!(built.is_ok());
    // The UDP source port and payload change per packet: "no checksum"
    // (allowed over IPv4) keeps the patch a plain copy.
    frame[UDP_CSUM_AT..UDP_CSUM_AT + 2].copy_from_slice(&[0, 0]);
    frame
}

/// A gratuitous ARP request from `h` (sender and target address its own),
/// padded to the minimum frame size.
pub fn arp_frame(h: &Host) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let ip = h.ip.octets();
    let fields: [&[u8]; 12] = [
        &[0xff; 6],
        &h.mac,
        &ETH_ARP.to_be_bytes(),
        &1u16.to_be_bytes(),
        &ETH_IPV4.to_be_bytes(),
        &[6, 4],
        &1u16.to_be_bytes(),
        &h.mac,
        &ip,
        &[0; 6],
        &ip,
        &[],
    ];
    let mut at = 0;
    for part in fields {
        f[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    f
}

/// A PACKET_IN (table miss, no buffer) carrying `frame` in on `in_port`.
pub fn packet_in(in_port: u32, frame: &[u8]) -> Message<'_> {
    Message::PacketIn(PacketIn {
        buffer_id: openflow::NO_BUFFER,
        total_len: frame.len() as u16,
        reason: PacketInReason::NoMatch,
        table_id: 0,
        cookie: u64::MAX,
        match_: Match::new().with(Oxm::InPort(PortNo::from(in_port), None)),
        data: Cow::Borrowed(frame),
    })
}

/// A PACKET_IN of a bench frame, encoded once; each use copies it and
/// patches the sequence number (and the UDP source port, so consecutive
/// packets are distinct flows to anything that looks at L4).
#[derive(Debug, Clone)]
pub struct PacketInTemplate {
    bytes: Vec<u8>,
    frame_at: usize,
    /// Patch a per-packet source address in (session admission mode).
    vary_source: bool,
}

impl PacketInTemplate {
    pub fn new(
        in_port: u32,
        frame: &[u8; FRAME_LEN],
        vary_source: bool,
    ) -> Result<Self, openflow::EncodeError> {
        let bytes = openflow::to_vec(0, &packet_in(in_port, frame))?;
        let frame_at = bytes.len() - FRAME_LEN;
        Ok(PacketInTemplate {
            bytes,
            frame_at,
            vary_source,
        })
    }

    pub fn emit(&self, seq: u64, out: &mut BytesMut) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let f = start + self.frame_at;
        if let Some(b) = out.get_mut(f + UDP_SRC_AT..f + UDP_SRC_AT + 2) {
            b.copy_from_slice(&(1024 + (seq as u16 & 0x7fff)).to_be_bytes());
        }
        if let Some(b) = out.get_mut(f + SEQ_AT..f + SEQ_AT + 8) {
            b.copy_from_slice(&seq.to_be_bytes());
        }
        if self.vary_source
            && let Some(b) = out.get_mut(f + IP_SRC_AT + 1..f + IP_SRC_AT + 4)
        {
            // 10.64.0.0/10: never a bench host's address. The IPv4 header
            // checksum is left stale; nothing on the controller's path
            // verifies it.
            let v = 0x40_0000 | (seq as u32 & 0x3f_ffff);
            b.copy_from_slice(&v.to_be_bytes()[1..]);
        }
    }
}

/// `(actions, data)` of a PACKET_OUT, read at the offsets of
/// `ofp_packet_out`: header (8), buffer_id (4), in_port (4),
/// actions_len (2), pad (6), actions, data.
pub fn packet_out_parts(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes(msg.get(16..18)?.try_into().ok()?));
    let actions = msg.get(24..24 + len)?;
    let data = msg.get(24 + len..)?;
    Some((actions, data))
}

/// The (switch, sequence number) of a bench frame.
pub fn bench_seq(data: &[u8]) -> Option<(u32, u64)> {
    if data.len() < FRAME_LEN
        || data.get(ETH_TYPE_AT..ETH_TYPE_AT + 2)? != ETH_IPV4.to_be_bytes()
        || *data.get(IP_PROTO_AT)? != IPPROTO_UDP
        || data.get(MAGIC_AT..MAGIC_AT + 4)? != MAGIC
    {
        return None;
    }
    let sw = u32::from_be_bytes(data.get(SWITCH_AT..SWITCH_AT + 4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(data.get(SEQ_AT..SEQ_AT + 8)?.try_into().ok()?);
    Some((sw, seq))
}

pub fn is_lldp(data: &[u8]) -> bool {
    data.get(ETH_TYPE_AT..ETH_TYPE_AT + 2) == Some(&ETH_LLDP.to_be_bytes()[..])
}

/// The sender MAC of an ARP frame.
pub fn arp_sender(data: &[u8]) -> Option<[u8; 6]> {
    if data.get(ETH_TYPE_AT..ETH_TYPE_AT + 2)? != ETH_ARP.to_be_bytes() {
        return None;
    }
    data.get(22..28)?.try_into().ok()
}

/// The ports of the OUTPUT actions in an action list.
pub fn output_ports(mut actions: &[u8]) -> impl Iterator<Item = u32> + '_ {
    std::iter::from_fn(move || {
        loop {
            let t = u16::from_be_bytes(actions.get(0..2)?.try_into().ok()?);
            let len = usize::from(u16::from_be_bytes(actions.get(2..4)?.try_into().ok()?));
            if len < 8 {
                return None;
            }
            let this = actions.get(..len)?;
            actions = actions.get(len..)?;
            if t == 0 {
                return Some(u32::from_be_bytes(this.get(4..8)?.try_into().ok()?));
            }
        }
    })
}

/// A bodiless reply (BARRIER_REPLY) to `xid`.
pub fn empty_reply(t: MsgType, xid: u32, out: &mut BytesMut) {
    out.put_u8(OFP_VERSION);
    out.put_u8(t.into());
    out.put_u16(8);
    out.put_u32(xid);
}

/// ECHO_REPLY: the request with its type changed.
pub fn echo_reply(req: &[u8], out: &mut BytesMut) {
    let start = out.len();
    out.extend_from_slice(req);
    if let Some(t) = out.get_mut(start + 1) {
        *t = MsgType::EchoReply.into();
    }
}

/// Encodes a (rare) codec-built message; failures are a bug in the bench
/// (every message here is far below the length limit), reported not panicked.
pub fn push(xid: u32, msg: &Message<'_>, out: &mut BytesMut) -> Result<(), String> {
    openflow::encode(xid, msg, out)
        .map(|_| ())
        .map_err(|e| format!("cannot encode {}: {e}", msg.msg_type()))
}

pub fn hello() -> Message<'static> {
    Message::Hello {
        elements: vec![HelloElem::of13_only()],
    }
}

/// Whether the controller's HELLO offers OpenFlow 1.3 (spec 7.5.1).
pub fn hello_offers_13(msg: &[u8]) -> bool {
    match openflow::decode(msg) {
        Ok((h, Message::Hello { elements })) => {
            let bitmap = elements.iter().find_map(|e| match e {
                HelloElem::VersionBitmap { bitmaps } => bitmaps.first().copied(),
                HelloElem::Unknown { .. } => None,
            });
            match bitmap {
                Some(w) => w & (1 << OFP_VERSION) != 0,
                None => h.version >= OFP_VERSION,
            }
        }
        _ => false,
    }
}

pub fn features_reply(dpid: u64) -> Message<'static> {
    Message::FeaturesReply(FeaturesReply {
        datapath_id: dpid,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        // FLOW_STATS | TABLE_STATS | PORT_STATS | GROUP_STATS | QUEUE_STATS,
        // as OVS reports.
        capabilities: 0x4f,
        reserved: 0,
    })
}

/// Port `n` of switch `dpid`: up, live, 10 Gb/s, a MAC derived from both.
pub fn port(dpid: u64, n: u32) -> Port {
    let [.., a, b, c, d] = dpid.to_be_bytes();
    Port {
        port_no: PortNo::from(n),
        hw_addr: MacAddr([0x06, a, b, c, d, n as u8]),
        name: FixedStr::new(&format!("b{dpid:x}-eth{n}")),
        config: 0,
        state: state::LIVE,
        curr: 0x840, // 10GB_FD | COPPER
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 10_000_000,
    }
}

/// The reply to a MULTIPART_REQUEST, or an OFPT_ERROR for the types an
/// emulated switch has nothing to say about. Returns the request's type.
pub fn multipart_reply(
    xid: u32,
    req: &[u8],
    dpid: u64,
    ports: &[u32],
    out: &mut BytesMut,
) -> Result<MultipartType, String> {
    let t = req
        .get(8..10)
        .and_then(|b| b.try_into().ok())
        .map_or(MultipartType::Unknown(u16::MAX), |b| {
            MultipartType::from(u16::from_be_bytes(b))
        });
    let body = match t {
        MultipartType::PortDesc => {
            MultipartReplyBody::PortDesc(ports.iter().map(|&n| port(dpid, n)).collect())
        }
        MultipartType::Desc => MultipartReplyBody::Desc(Box::new(Desc {
            mfr_desc: FixedStr::new("Tierflow"),
            hw_desc: FixedStr::new("tierflow bench emulated switch"),
            sw_desc: FixedStr::new(env!("CARGO_PKG_VERSION")),
            serial_num: FixedStr::new("None"),
            dp_desc: FixedStr::new(&format!("bench-{dpid:x}")),
        })),
        MultipartType::MeterFeatures => MultipartReplyBody::MeterFeatures(MeterFeatures {
            max_meter: 262_144,
            band_types: 1 << 1, // DROP only, like OVS's userspace datapath
            capabilities: 0xf,
            max_bands: 1,
            max_color: 0,
        }),
        MultipartType::Flow => MultipartReplyBody::Flow(Vec::new()),
        _ => {
            let data = req.get(..req.len().min(64)).unwrap_or_default();
            let err = Message::Error(ErrorMsg::new(
                ErrorType::BadRequest,
                openflow::bad_request::BAD_MULTIPART,
                data,
            ));
            push(xid, &err, out)?;
            return Ok(t);
        }
    };
    push(
        xid,
        &Message::MultipartReply(MultipartReply { flags: 0, body }),
        out,
    )?;
    Ok(t)
}

/// OFPT_ERROR BAD_REQUEST/BAD_TYPE for a message an emulated switch does
/// not implement.
pub fn bad_type(xid: u32, req: &[u8], out: &mut BytesMut) -> Result<(), String> {
    let data = req.get(..req.len().min(64)).unwrap_or_default();
    push(
        xid,
        &Message::Error(ErrorMsg::new(
            ErrorType::BadRequest,
            openflow::bad_request::BAD_TYPE,
            data,
        )),
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use openflow::{Action, PacketOut};

    #[test]
    fn packet_in_template_decodes_and_carries_the_sequence() {
        let (a, b) = (Host::numbered(1), Host::numbered(2));
        let t = PacketInTemplate::new(2, &udp_frame(&a, &b, 7), false).expect("template");
        let mut out = BytesMut::new();
        t.emit(0x0102_0304_0506_0708, &mut out);
        let (_, msg) = openflow::decode(&out).expect("decodes");
        let Message::PacketIn(pi) = msg else {
            panic!("not a PACKET_IN: {msg:?}")
        };
        assert_eq!(pi.match_.in_port(), Some(2));
        assert_eq!(bench_seq(&pi.data), Some((7, 0x0102_0304_0506_0708)));
        let eth = etherparse::SlicedPacket::from_ethernet(&pi.data).expect("frame parses");
        let Some(etherparse::NetSlice::Ipv4(ip)) = eth.net else {
            panic!("not IPv4")
        };
        assert_eq!(ip.header().source_addr(), a.ip);
        assert_eq!(ip.header().destination_addr(), b.ip);
    }

    #[test]
    fn packet_out_is_read_at_fixed_offsets() {
        let frame = udp_frame(&Host::numbered(3), &Host::numbered(4), 1);
        let mut data = frame;
        data[SEQ_AT + 7] = 42;
        let po = Message::PacketOut(PacketOut {
            buffer_id: openflow::NO_BUFFER,
            in_port: PortNo::from(1),
            actions: [Action::output(3), Action::output(5)].into_iter().collect(),
            data: Cow::Borrowed(&data),
        });
        let bytes = openflow::to_vec(9, &po).expect("encodes");
        let (actions, d) = packet_out_parts(&bytes).expect("parts");
        assert_eq!(output_ports(actions).collect::<Vec<_>>(), vec![3, 5]);
        assert_eq!(bench_seq(d), Some((1, 42)));
        assert!(!is_lldp(d));
        let arp = arp_frame(&Host::numbered(5));
        assert_eq!(arp_sender(&arp), Some(Host::numbered(5).mac));
        assert_eq!(bench_seq(&arp), None);
    }

    #[test]
    fn handshake_replies_decode() {
        let mut out = BytesMut::new();
        let req = openflow::to_vec(
            5,
            &Message::MultipartRequest(openflow::MultipartRequest {
                flags: 0,
                body: openflow::multipart::MultipartRequestBody::PortDesc,
            }),
        )
        .expect("encodes");
        let t = multipart_reply(5, &req, 0xab, &[1, 2, 3], &mut out).expect("reply");
        assert_eq!(t, MultipartType::PortDesc);
        let (h, msg) = openflow::decode(&out).expect("decodes");
        assert_eq!(h.xid, 5);
        let Message::MultipartReply(MultipartReply {
            body: MultipartReplyBody::PortDesc(ports),
            ..
        }) = msg
        else {
            panic!("not PORT_DESC: {msg:?}")
        };
        assert_eq!(ports.len(), 3);
        assert!(ports.iter().all(Port::is_up));
        let hello = openflow::to_vec(1, &hello()).expect("encodes");
        assert!(hello_offers_13(&hello));
    }
}
