//! A packet-in's frame, parsed once into what every stage of
//! the pipeline reads: Ethernet addresses and type, the outer VLAN id, the
//! sender's IP address (ARP or IPv4), an ARP packet's addresses, and for
//! IPv4 the addresses, protocol, ports and transport payload. Lax: a frame whose upper layers are cut short or
//! malformed still yields what could be read (its Ethernet header at
//! least), so forwarding never depends on a host sending well-formed IP.
//!
//! Borrows the frame; allocates nothing.

use etherparse::{
    ArpPacketSlice, Ethernet2Header, Ethernet2HeaderSlice, LaxIpv4Slice, SingleVlanHeader,
    SingleVlanHeaderSlice, TcpSlice, UdpSlice,
};
use openflow::MacAddr;
use std::net::{IpAddr, Ipv4Addr};

pub const ETH_TYPE_IPV4: u16 = 0x0800;
pub const ETH_TYPE_ARP: u16 = 0x0806;

/// The fields of a frame the controller reads.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub src: MacAddr,
    pub dst: MacAddr,
    /// After any VLAN tags.
    pub ether_type: u16,
    /// The outer 802.1Q VLAN id; `None` for an untagged (or priority
    /// tagged, VID 0) frame.
    pub vid: Option<u16>,
    /// The ARP sender or the IPv4 source.
    pub sender_ip: Option<IpAddr>,
    pub ip4: Option<Ip4<'a>>,
    /// An IPv4-over-Ethernet ARP packet.
    pub arp: Option<Arp>,
}

/// An ARP packet's operation and addresses (IPv4 over Ethernet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1: request, 2: reply.
    pub op: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
}

/// An IPv4 packet with its TCP or UDP ports (0 for other protocols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip4<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// The TCP or UDP payload (empty for other protocols).
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// None when not even an Ethernet header is there.
    ///
    /// Read header by header with etherparse's slices, asking only for the
    /// layers this frame has: this runs for every packet-in, and the
    /// whole-packet `LaxSlicedPacket` cost about as much as the rest of a
    /// plain setup's pipeline. The rules stay etherparse's lax ones: up
    /// to three 802.1Q / 802.1ad / QinQ tags; an IPv4 payload ends at the
    /// total length when that is within the frame (else at the frame's
    /// end); a fragment has no transport; UDP's payload ends at its length
    /// field when that is sane; TCP's starts after its data offset.
    pub fn parse(data: &'a [u8]) -> Option<Frame<'a>> {
        let eth = Ethernet2HeaderSlice::from_slice(data).ok()?;
        let mut f = Frame {
            src: MacAddr(eth.source()),
            dst: MacAddr(eth.destination()),
            ether_type: eth.ether_type().0,
            vid: None,
            sender_ip: None,
            ip4: None,
            arp: None,
        };
        let mut rest = data.get(Ethernet2Header::LEN..).unwrap_or_default();
        for i in 0..3 {
            if !matches!(f.ether_type, 0x8100 | 0x88a8 | 0x9100) {
                break;
            }
            // A tag cut short: the type that announced it stays.
            let Ok(tag) = SingleVlanHeaderSlice::from_slice(rest) else {
                return Some(f);
            };
            if i == 0 {
                f.vid = Some(tag.vlan_identifier().value()).filter(|v| *v != 0);
            }
            f.ether_type = tag.ether_type().0;
            rest = rest.get(SingleVlanHeader::LEN..).unwrap_or_default();
        }
        match f.ether_type {
            ETH_TYPE_IPV4 => {
                f.ip4 = parse_ip4(rest);
                f.sender_ip = f.ip4.map(|ip| IpAddr::V4(ip.src));
            }
            ETH_TYPE_ARP => (f.sender_ip, f.arp) = parse_arp(rest),
            _ => {}
        }
        Some(f)
    }

    pub fn is_lldp(&self) -> bool {
        self.ether_type == crate::lldp::ETH_TYPE_LLDP
    }

    /// A TCP or UDP packet over IPv4 (what sessions are made of).
    pub fn tcp_udp(&self) -> Option<&Ip4<'a>> {
        self.ip4.as_ref().filter(|p| p.proto == 6 || p.proto == 17)
    }
}

/// An IPv4 packet (`d` starts at its header), with its ports and payload
/// when it is an unfragmented TCP or UDP packet.
fn parse_ip4(d: &[u8]) -> Option<Ip4<'_>> {
    let (ip, _) = LaxIpv4Slice::from_slice(d).ok()?;
    let h = ip.header();
    let p = ip.payload();
    let (sport, dport, payload) = match p.ip_number.0 {
        _ if p.fragmented => (0, 0, &[][..]),
        17 => UdpSlice::from_slice_lax(p.payload)
            .map(|u| (u.source_port(), u.destination_port(), u.payload()))
            .unwrap_or((0, 0, &[][..])),
        6 => TcpSlice::from_slice(p.payload)
            .map(|t| (t.source_port(), t.destination_port(), t.payload()))
            .unwrap_or((0, 0, &[][..])),
        _ => (0, 0, &[][..]),
    };
    Some(Ip4 {
        src: h.source_addr(),
        dst: h.destination_addr(),
        proto: p.ip_number.0,
        sport,
        dport,
        payload,
    })
}

/// An ARP packet's sender address (when it is IPv4's size) and, for IPv4
/// over Ethernet, the packet.
fn parse_arp(d: &[u8]) -> (Option<IpAddr>, Option<Arp>) {
    let Ok(arp) = ArpPacketSlice::from_slice(d) else {
        return (None, None);
    };
    let ip4 = |a: &[u8]| <[u8; 4]>::try_from(a).ok().map(Ipv4Addr::from);
    let spa = ip4(arp.sender_protocol_addr());
    let sha = <[u8; 6]>::try_from(arp.sender_hw_addr()).ok();
    let packet = match (sha, spa) {
        (Some(sha), Some(sender_ip)) => Some(Arp {
            op: arp.operation().0,
            sender_mac: MacAddr(sha),
            sender_ip,
            target_ip: ip4(arp.target_protocol_addr()).unwrap_or(Ipv4Addr::UNSPECIFIED),
        }),
        _ => None,
    };
    (spa.map(IpAddr::V4), packet)
}

/// A group (multicast or broadcast) Ethernet address.
pub fn is_group(mac: &MacAddr) -> bool {
    mac.0[0] & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 100], 64)
            .udp(40000, 5060);
        let mut v = Vec::new();
        b.write(&mut v, payload).expect("builds");
        v
    }

    #[test]
    fn udp_frame_gives_addresses_ports_and_payload() {
        let v = udp(b"INVITE");
        let f = Frame::parse(&v).expect("parses");
        assert_eq!(f.src, MacAddr([0, 0, 0, 0, 0, 1]));
        assert_eq!(f.ether_type, ETH_TYPE_IPV4);
        assert_eq!(f.sender_ip, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        let ip = f.tcp_udp().expect("udp");
        assert_eq!((ip.sport, ip.dport, ip.proto), (40000, 5060, 17));
        assert_eq!(ip.payload, b"INVITE");
    }

    #[test]
    fn tagged_frames_give_their_outer_vid_and_arp_its_addresses() {
        let b = PacketBuilder::ethernet2([0, 0, 0, 0, 0, 1], [0xff; 6])
            .single_vlan(etherparse::VlanId::try_new(30).expect("vid"))
            .arp(
                etherparse::ArpPacket::new(
                    etherparse::ArpHardwareId::ETHERNET,
                    etherparse::EtherType::IPV4,
                    etherparse::ArpOperation::REQUEST,
                    &[0, 0, 0, 0, 0, 1],
                    &[10, 30, 0, 5],
                    &[0; 6],
                    &[10, 30, 0, 1],
                )
                .expect("arp"),
            );
        let mut v = Vec::new();
        b.write(&mut v).expect("builds");
        let f = Frame::parse(&v).expect("parses");
        assert_eq!(f.vid, Some(30));
        assert_eq!(f.ether_type, ETH_TYPE_ARP);
        let arp = f.arp.expect("arp");
        assert_eq!(arp.op, Arp::REQUEST);
        assert_eq!(arp.sender_ip, Ipv4Addr::new(10, 30, 0, 5));
        assert_eq!(arp.target_ip, Ipv4Addr::new(10, 30, 0, 1));
        assert_eq!(arp.sender_mac, MacAddr([0, 0, 0, 0, 0, 1]));
        // Untagged IPv4 has neither.
        let u = udp(b"x");
        let f = Frame::parse(&u).expect("parses");
        assert_eq!((f.vid, f.arp), (None, None));
    }

    #[test]
    fn truncated_or_odd_frames_still_give_the_ethernet_header() {
        let v = udp(b"INVITE");
        // IP header cut in the middle: Ethernet is still there.
        let f = Frame::parse(&v[..20]).expect("ethernet");
        assert_eq!(f.dst, MacAddr([0, 0, 0, 0, 0, 2]));
        assert!(f.ip4.is_none());
        assert!(Frame::parse(&v[..10]).is_none());
        // LLDP.
        let key = crate::lldp::Key::from_bytes([1; 32]);
        let lldp = crate::lldp::probe(&key, 1, 2, MacAddr([2, 0, 0, 0, 0, 1]), 0);
        assert!(Frame::parse(&lldp).expect("lldp").is_lldp());
        assert!(is_group(&crate::lldp::LLDP_DST));
    }

    /// Source, destination, type, VLAN id, sender address.
    type Seen = (MacAddr, MacAddr, u16, Option<u16>, Option<IpAddr>);

    /// What the whole-packet parser (`LaxSlicedPacket`, which `parse`
    /// replaced for speed) made of a frame: the reference `parse` must
    /// agree with on every input.
    fn reference(data: &[u8]) -> Option<Seen> {
        use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice};
        let p = LaxSlicedPacket::from_ethernet(data).ok()?;
        let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
            return None;
        };
        let vid = match p.link_exts.first() {
            Some(LaxLinkExtSlice::Vlan(v)) => Some(v.vlan_identifier().value()).filter(|v| *v != 0),
            _ => None,
        };
        let mut ether_type = eth.ether_type().0;
        if let Some(LaxLinkExtSlice::Vlan(v)) = p.link_exts.last() {
            ether_type = v.ether_type().0;
        }
        let sender_ip = match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => Some(IpAddr::V4(v4.header().source_addr())),
            Some(LaxNetSlice::Arp(arp)) => <[u8; 4]>::try_from(arp.sender_protocol_addr())
                .ok()
                .map(IpAddr::from),
            _ => None,
        };
        Some((
            MacAddr(eth.source()),
            MacAddr(eth.destination()),
            ether_type,
            vid,
            sender_ip,
        ))
    }

    #[test]
    fn agrees_with_the_whole_packet_parser_on_cut_and_mutated_frames() {
        let mut frames = vec![udp(b"INVITE sip:a@b SIP/2.0")];
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .single_vlan(etherparse::VlanId::try_new(20).expect("vid"))
            .ipv4([10, 0, 20, 1], [10, 0, 30, 1], 64)
            .tcp(40000, 80, 1, 1000);
        let mut v = Vec::new();
        b.write(&mut v, b"GET / HTTP/1.1").expect("builds");
        frames.push(v);
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0xff; 6]).arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &[2, 0, 0, 0, 0, 1],
                &[10, 0, 0, 1],
                &[0; 6],
                &[10, 0, 0, 2],
            )
            .expect("arp"),
        );
        let mut v = Vec::new();
        b.write(&mut v).expect("builds");
        frames.push(v);
        // Every cut of every frame, and each with bytes flipped by a
        // fixed pseudo-random sequence.
        let mut seed = 0x2545_f491_u32;
        let mut cases = Vec::new();
        for f in &frames {
            for n in 0..=f.len() {
                cases.push(f[..n].to_vec());
            }
            for _ in 0..2000 {
                let mut m = f.clone();
                for _ in 0..3 {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let at = seed as usize % m.len();
                    m[at] = (seed >> 8) as u8;
                }
                cases.push(m);
            }
        }
        for c in &cases {
            let got = Frame::parse(c).map(|f| (f.src, f.dst, f.ether_type, f.vid, f.sender_ip));
            assert_eq!(got, reference(c), "{c:02x?}");
        }
    }
}
