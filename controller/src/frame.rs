//! A packet-in's frame, parsed once into what every stage of
//! the pipeline reads: Ethernet addresses and type, the outer VLAN id, the
//! sender's IP address (ARP or IPv4), an ARP packet's addresses, and for
//! IPv4 the addresses, protocol, ports and transport payload. Lax: a frame whose upper layers are cut short or
//! malformed still yields what could be read (its Ethernet header at
//! least), so forwarding never depends on a host sending well-formed IP.
//!
//! Borrows the frame; allocates nothing.

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
    /// Read by hand, field by field, in the order of the headers: this
    /// runs for every packet-in, and a general parser (etherparse's
    /// `LaxSlicedPacket`, which this replaced) cost about as much as the
    /// rest of a plain setup's pipeline. The rules are etherparse's lax
    /// ones, so what a frame yields did not change: up to three 802.1Q /
    /// 802.1ad / QinQ tags; an IPv4 header needs version 4, IHL ≥ 5 and
    /// all of its options; its payload ends at the total length when that
    /// is within the frame (else at the frame's end); a fragment has no
    /// transport; UDP's payload ends at its length field when that is
    /// sane; TCP's starts after its data offset. MACsec frames are not
    /// looked into.
    pub fn parse(data: &'a [u8]) -> Option<Frame<'a>> {
        let dst = MacAddr(data.get(0..6)?.try_into().ok()?);
        let src = MacAddr(data.get(6..12)?.try_into().ok()?);
        let mut ether_type = be16(data, 12)?;
        let mut at = 14;
        let mut vid = None;
        for i in 0..3 {
            if !matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
                break;
            }
            let (Some(tci), Some(inner)) = (be16(data, at), be16(data, at + 2)) else {
                // A tag cut short: the type that announced it stays.
                return Some(Frame::link(src, dst, ether_type, vid));
            };
            if i == 0 {
                vid = Some(tci & 0x0fff).filter(|v| *v != 0);
            }
            ether_type = inner;
            at += 4;
        }
        let mut f = Frame::link(src, dst, ether_type, vid);
        let net = data.get(at..).unwrap_or_default();
        match ether_type {
            ETH_TYPE_IPV4 => f.ip4 = parse_ip4(net),
            ETH_TYPE_ARP => (f.sender_ip, f.arp) = parse_arp(net),
            _ => {}
        }
        if let Some(ip) = &f.ip4 {
            f.sender_ip = Some(IpAddr::V4(ip.src));
        }
        Some(f)
    }

    fn link(src: MacAddr, dst: MacAddr, ether_type: u16, vid: Option<u16>) -> Frame<'a> {
        Frame {
            src,
            dst,
            ether_type,
            vid,
            sender_ip: None,
            ip4: None,
            arp: None,
        }
    }

    pub fn is_lldp(&self) -> bool {
        self.ether_type == crate::lldp::ETH_TYPE_LLDP
    }

    /// A TCP or UDP packet over IPv4 (what sessions are made of).
    pub fn tcp_udp(&self) -> Option<&Ip4<'a>> {
        self.ip4.as_ref().filter(|p| p.proto == 6 || p.proto == 17)
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn ip4_at(d: &[u8], at: usize) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::from(
        <[u8; 4]>::try_from(d.get(at..at + 4)?).ok()?,
    ))
}

/// An IPv4 packet (`d` starts at its header), with its ports and payload
/// when it is an unfragmented TCP or UDP packet.
fn parse_ip4(d: &[u8]) -> Option<Ip4<'_>> {
    let first = *d.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || d.len() < ihl {
        return None;
    }
    let total = usize::from(be16(d, 2)?);
    let end = if total < ihl || total > d.len() {
        d.len()
    } else {
        total
    };
    let body = d.get(ihl..end).unwrap_or_default();
    // More fragments, or not the first one.
    let fragment = be16(d, 6)? & 0x3fff != 0;
    let proto = *d.get(9)?;
    let (sport, dport, payload) = match proto {
        _ if fragment => (0, 0, &[][..]),
        17 if body.len() >= 8 => {
            let len = usize::from(be16(body, 4)?);
            let end = if len < 8 || len > body.len() {
                body.len()
            } else {
                len
            };
            (
                be16(body, 0)?,
                be16(body, 2)?,
                body.get(8..end).unwrap_or_default(),
            )
        }
        6 if body.len() >= 20 => {
            let off = usize::from(body.get(12)? >> 4) * 4;
            match body.get(off..) {
                Some(p) if off >= 20 => (be16(body, 0)?, be16(body, 2)?, p),
                _ => (0, 0, &[][..]),
            }
        }
        _ => (0, 0, &[][..]),
    };
    Some(Ip4 {
        src: ip4_at(d, 12)?,
        dst: ip4_at(d, 16)?,
        proto,
        sport,
        dport,
        payload,
    })
}

/// An ARP packet's sender address (when it is IPv4's size) and, for IPv4
/// over Ethernet, the packet.
fn parse_arp(d: &[u8]) -> (Option<IpAddr>, Option<Arp>) {
    let (Some(&hs), Some(&ps), Some(op)) = (d.get(4), d.get(5), be16(d, 6)) else {
        return (None, None);
    };
    let (hs, ps) = (usize::from(hs), usize::from(ps));
    if d.len() < 8 + 2 * (hs + ps) {
        return (None, None);
    }
    let spa = (ps == 4).then(|| ip4_at(d, 8 + hs)).flatten();
    let arp = match (hs, spa) {
        (6, Some(sender_ip)) => Some(Arp {
            op,
            sender_mac: MacAddr(
                d.get(8..14)
                    .and_then(|m| m.try_into().ok())
                    .unwrap_or_default(),
            ),
            sender_ip,
            target_ip: ip4_at(d, 8 + 2 * hs + ps).unwrap_or(Ipv4Addr::UNSPECIFIED),
        }),
        _ => None,
    };
    (spa.map(IpAddr::V4), arp)
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
}
