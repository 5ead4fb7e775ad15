//! A packet-in's frame, parsed once (etherparse) into what every stage of
//! the pipeline reads: Ethernet addresses and type, the outer VLAN id, the
//! sender's IP address (ARP or IPv4), an ARP packet's addresses, and for
//! IPv4 the addresses, protocol, ports and transport payload. Lax: a frame whose upper layers are cut short or
//! malformed still yields what could be read (its Ethernet header at
//! least), so forwarding never depends on a host sending well-formed IP.
//!
//! Borrows the frame; allocates nothing.

use etherparse::{LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};
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
    pub fn parse(data: &'a [u8]) -> Option<Frame<'a>> {
        let p = LaxSlicedPacket::from_ethernet(data).ok()?;
        let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
            return None;
        };
        let (src, dst) = (MacAddr(eth.source()), MacAddr(eth.destination()));
        let mut ether_type = eth.ether_type().0;
        let mut sender_ip = None;
        let mut ip4 = None;
        let mut arp_packet = None;
        let vid = match p.link_exts.first() {
            Some(etherparse::LaxLinkExtSlice::Vlan(v)) => {
                Some(v.vlan_identifier().value()).filter(|v| *v != 0)
            }
            _ => None,
        };
        match &p.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                ether_type = ETH_TYPE_IPV4;
                sender_ip = Some(IpAddr::V4(h.source_addr()));
                let (sport, dport, payload) = match &p.transport {
                    Some(TransportSlice::Tcp(t)) => {
                        (t.source_port(), t.destination_port(), t.payload())
                    }
                    Some(TransportSlice::Udp(u)) => {
                        (u.source_port(), u.destination_port(), u.payload())
                    }
                    _ => (0, 0, &[][..]),
                };
                ip4 = Some(Ip4 {
                    src: h.source_addr(),
                    dst: h.destination_addr(),
                    proto: h.protocol().0,
                    sport,
                    dport,
                    payload,
                });
            }
            Some(LaxNetSlice::Arp(arp)) => {
                ether_type = ETH_TYPE_ARP;
                let spa = <[u8; 4]>::try_from(arp.sender_protocol_addr()).ok();
                sender_ip = spa.map(IpAddr::from);
                let sha = <[u8; 6]>::try_from(arp.sender_hw_addr()).ok();
                let tpa = <[u8; 4]>::try_from(arp.target_protocol_addr()).ok();
                if let (Some(sha), Some(spa), Some(tpa)) = (sha, spa, tpa) {
                    arp_packet = Some(Arp {
                        op: arp.operation().0,
                        sender_mac: MacAddr(sha),
                        sender_ip: Ipv4Addr::from(spa),
                        target_ip: Ipv4Addr::from(tpa),
                    });
                }
            }
            Some(LaxNetSlice::Ipv6(_)) => ether_type = 0x86dd,
            None => {
                // Past VLAN tags: the innermost type.
                if let Some(last) = p.link_exts.last()
                    && let etherparse::LaxLinkExtSlice::Vlan(v) = last
                {
                    ether_type = v.ether_type().0;
                }
            }
        }
        Some(Frame {
            src,
            dst,
            ether_type,
            vid,
            sender_ip,
            ip4,
            arp: arp_packet,
        })
    }

    pub fn is_lldp(&self) -> bool {
        self.ether_type == crate::lldp::ETH_TYPE_LLDP
    }

    /// A TCP or UDP packet over IPv4 (what sessions are made of).
    pub fn tcp_udp(&self) -> Option<&Ip4<'a>> {
        self.ip4.as_ref().filter(|p| p.proto == 6 || p.proto == 17)
    }
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
