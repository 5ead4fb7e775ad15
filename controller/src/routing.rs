//! The IP router between the subnets of routed VLANs (those with
//! gateways). It decides; it never sends (plans go back to the caller):
//!
//! - ARP requests for a gateway address, from a host of that gateway's
//!   VLAN, get the router's answer ([`ROUTER_MAC`]);
//! - ICMP echo requests to any gateway address, from a routed VLAN, get
//!   an echo reply;
//! - a packet sent to the router for a host of another routed subnet is
//!   forwarded when that host is known (its address learnt in its
//!   subnet's VLAN): the caller sets up the routed path ([`path_hops`]);
//!   otherwise the packet waits, bounded, while the router asks for the
//!   host by ARP from its gateway; its answer (any frame from it, in
//!   fact) releases the packets that waited ([`Router::resolved`]);
//! - anything else sent to the router is dropped and counted. A VLAN
//!   without gateways is never routed.
//!
//! Owns the wait queue (bounded in addresses, packets per address and
//! time). Knows nothing of connections, sessions or the CRM.

use crate::frame::{Arp, Frame};
use crate::messages;
use crate::plan::Plan;
use crate::topology::{Hop, PortHop, PortRef, Topology};
use crate::vlan::{self, Carry, HopCarry, ROUTER_MAC, Tag, Vid};
use ahash::AHashMap as HashMap;
use bytes::Bytes;
use openflow::{MacAddr, Message, PortNo};
use parking_lot::Mutex;
use smallvec::SmallVec;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Addresses being asked for at most.
pub const MAX_WAITS: usize = 1024;
/// Packets waiting for one address at most (the rest are dropped).
pub const MAX_PACKETS_PER_WAIT: usize = 4;
/// How long a packet waits for its next hop's answer.
pub const WAIT_FOR: Duration = Duration::from_secs(3);
/// How often the router asks again for an address that has not answered.
pub const ASK_EVERY: Duration = Duration::from_secs(1);

/// A packet waiting for its next hop: where it came in, and the frame.
#[derive(Debug, Clone)]
pub struct Parked {
    pub dpid: u64,
    pub in_port: u32,
    pub data: Bytes,
}

#[derive(Debug)]
struct Wait {
    since: Instant,
    asked: Instant,
    packets: SmallVec<[Parked; 2]>,
}

/// Where a routed packet goes next: a host of a routed subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub vlan: Vid,
    pub mac: MacAddr,
    pub at: PortRef,
}

/// Why the router dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The sender's VLAN is not routed.
    NotRouted,
    /// No routed subnet holds the destination.
    NoRoute,
    /// Sent to the router itself, and not an echo request (or an ARP
    /// answer, which learning already took).
    ForRouter,
    /// Too many packets wait already.
    Full,
}

/// What to do with a packet sent to the router.
#[derive(Debug)]
pub enum Decision {
    /// The router answers: send this plan.
    Answer(Plan),
    /// Forward it along a routed path to `Target`.
    Forward(Target),
    /// It waits for its next hop; the plan (if any) asks for it by ARP.
    Wait(Option<Plan>),
    /// An answer to the router's own ARP: learning took what it says.
    Consumed,
    Drop(Dropped),
}

/// The router's state: packets waiting for their next hop.
#[derive(Debug, Default)]
pub struct Router {
    waits: Mutex<HashMap<(Vid, Ipv4Addr), Wait>>,
    /// Something waits (checked on every learnt address, without the lock).
    waiting: AtomicBool,
}

impl Router {
    /// An ARP request from a host of `vlan` (arriving at `here`, where
    /// `vlan` is carried `tag`) for one of `vlan`'s gateway addresses:
    /// the router's answer, out of the asker's port.
    pub fn arp_for_gateway(
        net: &vlan::Plan,
        here: PortRef,
        (vlan, tag): (Vid, Tag),
        arp: &Arp,
    ) -> Option<Plan> {
        if arp.op != Arp::REQUEST || !net.is_routed(vlan) {
            return None;
        }
        let gw = net.gateway(arp.target_ip).filter(|s| s.vid == vlan)?;
        let frame = arp_frame(
            Arp::REPLY,
            (ROUTER_MAC, gw.gateway),
            (arp.sender_mac, arp.sender_ip),
        );
        Some(deliver(here, tag, &frame))
    }

    /// A packet of `vlan` sent to the router's address, arriving at
    /// `here` where `vlan` is carried `tag`.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        net: &vlan::Plan,
        topo: &Topology,
        here: PortRef,
        (vlan, tag): (Vid, Tag),
        f: &Frame<'_>,
        data: &Bytes,
        now: Instant,
    ) -> Decision {
        if !net.is_routed(vlan) {
            return Decision::Drop(Dropped::NotRouted);
        }
        if let Some(arp) = &f.arp {
            if arp.op == Arp::REPLY {
                return Decision::Consumed;
            }
            // A unicast request (a host checking its gateway's address).
            return match Router::arp_for_gateway(net, here, (vlan, tag), arp) {
                Some(p) => Decision::Answer(p),
                None => Decision::Drop(Dropped::ForRouter),
            };
        }
        let Some(ip) = &f.ip4 else {
            return Decision::Drop(Dropped::ForRouter);
        };
        if net.gateway(ip.dst).is_some() {
            return match echo_reply(data) {
                Some(frame) => Decision::Answer(deliver(here, tag, &frame)),
                None => Decision::Drop(Dropped::ForRouter),
            };
        }
        let Some(subnet) = net.subnet_of(ip.dst) else {
            return Decision::Drop(Dropped::NoRoute);
        };
        if let Some(h) = topo
            .host_by_ip(std::net::IpAddr::V4(ip.dst))
            .filter(|h| h.vlan == subnet.vid)
        {
            return Decision::Forward(Target {
                vlan: h.vlan,
                mac: h.mac,
                at: h.at,
            });
        }
        let parked = Parked {
            dpid: here.0,
            in_port: here.1,
            data: data.clone(),
        };
        match self.hold((subnet.vid, ip.dst), parked, now) {
            None => Decision::Drop(Dropped::Full),
            Some(false) => Decision::Wait(None),
            Some(true) => {
                let frame = arp_frame(
                    Arp::REQUEST,
                    (ROUTER_MAC, subnet.gateway),
                    (MacAddr([0; 6]), ip.dst),
                );
                Decision::Wait(Some(flood_in(net, topo, subnet.vid, &frame)))
            }
        }
    }

    /// Parks a packet for `(vlan, ip)`. `Some(true)`: ask for it now;
    /// `Some(false)`: asked a moment ago; `None`: no room.
    fn hold(&self, key: (Vid, Ipv4Addr), p: Parked, now: Instant) -> Option<bool> {
        let mut w = self.waits.lock();
        let fresh = !w.contains_key(&key);
        if fresh && w.len() >= MAX_WAITS {
            return None;
        }
        let e = w.entry(key).or_insert_with(|| Wait {
            since: now,
            asked: now,
            packets: SmallVec::new(),
        });
        if e.packets.len() < MAX_PACKETS_PER_WAIT {
            e.packets.push(p);
        }
        self.waiting.store(true, Ordering::Relaxed);
        let ask = fresh || now.saturating_duration_since(e.asked) >= ASK_EVERY;
        if ask {
            e.asked = now;
        }
        Some(ask)
    }

    /// `ip` was learnt in `vlan`: the packets that waited for it.
    pub fn resolved(&self, vlan: Vid, ip: Ipv4Addr) -> SmallVec<[Parked; 2]> {
        if !self.waiting.load(Ordering::Relaxed) {
            return SmallVec::new();
        }
        let mut w = self.waits.lock();
        let out = w.remove(&(vlan, ip)).map(|e| e.packets).unwrap_or_default();
        if w.is_empty() {
            self.waiting.store(false, Ordering::Relaxed);
        }
        out
    }

    /// Drops the packets that waited longer than [`WAIT_FOR`] (their
    /// next hop never answered); returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        if !self.waiting.load(Ordering::Relaxed) {
            return 0;
        }
        let mut w = self.waits.lock();
        let mut n = 0;
        w.retain(|_, e| {
            let keep = now.saturating_duration_since(e.since) < WAIT_FOR;
            if !keep {
                n += e.packets.len();
            }
            keep
        });
        if w.is_empty() {
            self.waiting.store(false, Ordering::Relaxed);
        }
        n
    }

    /// Forgets what waits in `vlan` (its gateways changed).
    pub fn vlan_changed(&self, vlan: Vid) {
        self.waits.lock().retain(|k, _| k.0 != vlan);
    }

    /// Addresses being asked for now.
    pub fn waiting(&self) -> usize {
        self.waits.lock().len()
    }
}

/// Per switch of a carried path: where it leaves, and how it carries.
pub type CarriedHops = SmallVec<[(Hop, HopCarry); 4]>;

/// A carried path both ways along `route` (from the packet's port to its
/// destination's): per switch, where each direction leaves and how it
/// carries the frame. The reverse direction is the route walked back.
pub fn path_hops(route: &[PortHop], carry: &Carry) -> Option<(CarriedHops, CarriedHops)> {
    let mut fwd = SmallVec::new();
    let mut rev = SmallVec::new();
    for (i, h) in route.iter().enumerate() {
        fwd.push((
            Hop {
                dpid: h.dpid,
                out_port: h.out_port,
            },
            carry.fwd(i, h.in_port)?,
        ));
    }
    for (i, h) in route.iter().enumerate().rev() {
        rev.push((
            Hop {
                dpid: h.dpid,
                out_port: h.in_port,
            },
            carry.rev(i, h.out_port)?,
        ));
    }
    Some((fwd, rev))
}

/// The `(dpid, in_port, out_port)` triples of a route.
pub fn triples(route: &[PortHop]) -> SmallVec<[(u64, u32, u32); 4]> {
    route
        .iter()
        .map(|h| (h.dpid, h.in_port, h.out_port))
        .collect()
}

/// A frame the controller made, sent out of `at` where its VLAN is
/// carried `tag`.
fn deliver(at: PortRef, tag: Tag, frame: &[u8]) -> Plan {
    let hop = HopCarry {
        in_port: PortNo::Controller.value(),
        arrive: Tag::Untagged,
        leave: tag,
        l3: None,
    };
    let mut plan = Plan::new();
    plan.push(
        at.0,
        &Message::PacketOut(messages::carried_packet_out(
            PortNo::Controller.value(),
            &hop,
            at.1,
            frame,
        )),
    );
    plan
}

/// A frame the controller made, to every edge port carrying `vlan`.
fn flood_in(net: &vlan::Plan, topo: &Topology, vlan: Vid, frame: &[u8]) -> Plan {
    let mut plan = Plan::new();
    let mut switches: SmallVec<[u64; 16]> = topo.switches().collect();
    switches.sort_unstable();
    for dpid in switches {
        let (untagged, tagged) = net.split_ports(dpid, topo.edge_ports(dpid), vlan);
        if untagged.is_empty() && tagged.is_empty() {
            continue;
        }
        plan.push(
            dpid,
            &Message::PacketOut(messages::vlan_flood_out(
                PortNo::Controller.value(),
                Tag::Untagged,
                vlan,
                &untagged,
                &tagged,
                frame,
            )),
        );
    }
    plan
}

/// An ARP packet from `sender` to `target` (hardware and protocol
/// addresses), in an untagged Ethernet frame; a request is broadcast.
pub fn arp_frame(op: u16, sender: (MacAddr, Ipv4Addr), target: (MacAddr, Ipv4Addr)) -> Vec<u8> {
    let dst = if op == Arp::REQUEST {
        [0xff; 6]
    } else {
        target.0.0
    };
    let mut v = Vec::with_capacity(42);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sender.0.0);
    v.extend_from_slice(&crate::frame::ETH_TYPE_ARP.to_be_bytes());
    // Ethernet, IPv4, 6- and 4-byte addresses.
    v.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sender.0.0);
    v.extend_from_slice(&sender.1.octets());
    v.extend_from_slice(&target.0.0);
    v.extend_from_slice(&target.1.octets());
    v
}

/// The router's reply to an ICMP echo request (`request`: the whole
/// frame, maybe tagged): an untagged frame back to its sender, from the
/// address it pinged, with the same identifier, sequence and data.
pub fn echo_reply(request: &[u8]) -> Option<Vec<u8>> {
    use etherparse::{Icmpv4Type, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};
    let p = LaxSlicedPacket::from_ethernet(request).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        return None;
    };
    let Some(LaxNetSlice::Ipv4(v4)) = &p.net else {
        return None;
    };
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        return None;
    };
    let Icmpv4Type::EchoRequest(echo) = icmp.icmp_type() else {
        return None;
    };
    let h = v4.header();
    let b = etherparse::PacketBuilder::ethernet2(ROUTER_MAC.0, eth.source())
        .ipv4(h.destination(), h.source(), 64)
        .icmpv4_echo_reply(echo.id, echo.seq);
    let payload = icmp.payload();
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).ok()?;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierflow_api::model::{PortConfig, Vlan};

    const H1: MacAddr = MacAddr([0, 0, 0, 0, 0, 1]);
    const H2: MacAddr = MacAddr([0, 0, 0, 0, 0, 2]);

    fn net() -> vlan::Plan {
        vlan::Plan::new(
            &[
                Vlan {
                    vid: 20,
                    name: String::new(),
                    gateways: vec!["10.20.0.1/24".into()],
                },
                Vlan {
                    vid: 30,
                    name: String::new(),
                    gateways: vec!["10.30.0.1/24".into()],
                },
                Vlan {
                    vid: 40,
                    name: String::new(),
                    gateways: vec![],
                },
            ],
            &[
                PortConfig {
                    dpid: "1".into(),
                    port: 1,
                    native_vlan: Some(20),
                    tagged_vlans: vec![],
                },
                PortConfig {
                    dpid: "2".into(),
                    port: 1,
                    native_vlan: None,
                    tagged_vlans: vec![30],
                },
                PortConfig {
                    dpid: "2".into(),
                    port: 2,
                    native_vlan: Some(40),
                    tagged_vlans: vec![],
                },
            ],
        )
    }

    fn topo() -> Topology {
        let mut t = Topology::default();
        let now = Instant::now();
        t.link_seen((1, 10), (2, 11), now);
        t.link_seen((2, 11), (1, 10), now);
        t.set_ports(1, [1, 10]);
        t.set_ports(2, [1, 2, 11]);
        t
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    fn icmp_echo(src: MacAddr, dst: MacAddr, ips: (&str, &str)) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2(src.0, dst.0)
            .ipv4(ip(ips.0).octets(), ip(ips.1).octets(), 64)
            .icmpv4_echo_request(7, 3);
        let mut v = Vec::new();
        b.write(&mut v, b"ping!").expect("frame");
        v
    }

    fn dump(p: Plan) -> Vec<String> {
        p.dump()
    }

    #[test]
    fn arp_for_a_gateway_is_answered_in_its_own_vlan_only() {
        let n = net();
        let ask = |target: &str| Arp {
            op: Arp::REQUEST,
            sender_mac: H1,
            sender_ip: ip("10.20.0.5"),
            target_ip: ip(target),
        };
        let plan = Router::arp_for_gateway(&n, (1, 1), (20, Tag::Untagged), &ask("10.20.0.1"))
            .expect("answered");
        let d = dump(plan);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(d[0].starts_with("0000000000000001"), "{d:?}");
        assert!(
            d[0].contains(r#"[{"type":"OUTPUT","port":1,"max_len":0}]"#),
            "{d:?}"
        );
        let reply = arp_frame(
            Arp::REPLY,
            (ROUTER_MAC, ip("10.20.0.1")),
            (H1, ip("10.20.0.5")),
        );
        let f = crate::frame::Frame::parse(&reply).expect("parses");
        let a = f.arp.expect("arp");
        assert_eq!(
            (a.op, a.sender_mac, a.sender_ip, a.target_ip, f.dst),
            (Arp::REPLY, ROUTER_MAC, ip("10.20.0.1"), ip("10.20.0.5"), H1)
        );
        // Another VLAN's gateway, a host address, a bridged VLAN: no.
        assert!(
            Router::arp_for_gateway(&n, (1, 1), (20, Tag::Untagged), &ask("10.30.0.1")).is_none()
        );
        assert!(
            Router::arp_for_gateway(&n, (1, 1), (20, Tag::Untagged), &ask("10.20.0.9")).is_none()
        );
        assert!(
            Router::arp_for_gateway(&n, (2, 2), (40, Tag::Untagged), &ask("10.20.0.1")).is_none()
        );
        // A tagged asker gets a tagged answer.
        let d = dump(
            Router::arp_for_gateway(
                &n,
                (2, 1),
                (30, Tag::Tagged(30)),
                &Arp {
                    target_ip: ip("10.30.0.1"),
                    ..ask("10.30.0.1")
                },
            )
            .expect("answered"),
        );
        assert!(d[0].contains("PUSH_VLAN"), "{d:?}");
    }

    #[test]
    fn echo_to_a_gateway_is_answered_with_the_same_id_and_data() {
        let req = icmp_echo(H1, ROUTER_MAC, ("10.20.0.5", "10.30.0.1"));
        let rep = echo_reply(&req).expect("a reply");
        let p = etherparse::SlicedPacket::from_ethernet(&rep).expect("parses");
        let Some(etherparse::NetSlice::Ipv4(v4)) = &p.net else {
            panic!("ipv4")
        };
        assert_eq!(v4.header().source(), ip("10.30.0.1").octets());
        assert_eq!(v4.header().destination(), ip("10.20.0.5").octets());
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
            panic!("icmp")
        };
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 3 })
        );
        assert_eq!(icmp.payload(), b"ping!");
        let r = Router::default();
        let n = net();
        let data = Bytes::from(req);
        let f = crate::frame::Frame::parse(&data).expect("frame");
        match r.decide(
            &n,
            &topo(),
            (1, 1),
            (20, Tag::Untagged),
            &f,
            &data,
            Instant::now(),
        ) {
            Decision::Answer(p) => assert_eq!(p.dump().len(), 1),
            other => panic!("{other:?}"),
        }
        // From a bridged VLAN: never routed, not even answered.
        match r.decide(
            &n,
            &topo(),
            (2, 2),
            (40, Tag::Untagged),
            &f,
            &data,
            Instant::now(),
        ) {
            Decision::Drop(Dropped::NotRouted) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_next_hop_is_asked_for_and_its_packets_wait_bounded() {
        let r = Router::default();
        let n = net();
        let mut t = topo();
        let t0 = Instant::now();
        let udp = |dst: &str| {
            let b = etherparse::PacketBuilder::ethernet2(H1.0, ROUTER_MAC.0)
                .ipv4(ip("10.20.0.5").octets(), ip(dst).octets(), 64)
                .udp(1, 2);
            let mut v = Vec::new();
            b.write(&mut v, b"x").expect("frame");
            Bytes::from(v)
        };
        let data = udp("10.30.0.7");
        let f = crate::frame::Frame::parse(&data).expect("frame");
        let here = (1, 1);
        let v = (20, Tag::Untagged);
        // First packet: asked for, in VLAN 30 only (a tagged port on 2).
        match r.decide(&n, &t, here, v, &f, &data, t0) {
            Decision::Wait(Some(ask)) => {
                let d = ask.dump();
                assert_eq!(d.len(), 1, "{d:#?}");
                assert!(d[0].starts_with("0000000000000002"), "{d:?}");
                assert!(d[0].contains("PUSH_VLAN"), "{d:?}");
                assert!(d[0].contains(r#""port":1"#), "{d:?}");
            }
            other => panic!("{other:?}"),
        }
        // More packets wait without asking again (until a second passed).
        for _ in 0..6 {
            assert!(matches!(
                r.decide(&n, &t, here, v, &f, &data, t0),
                Decision::Wait(None)
            ));
        }
        assert!(matches!(
            r.decide(&n, &t, here, v, &f, &data, t0 + ASK_EVERY),
            Decision::Wait(Some(_))
        ));
        assert_eq!(r.waiting(), 1);
        // It answers: learnt in VLAN 30; its packets come back, bounded.
        t.learn_host_in(30, H2, (2, 1), Some("10.30.0.7".parse().expect("ip")), t0);
        assert_eq!(r.resolved(30, ip("10.30.0.7")).len(), MAX_PACKETS_PER_WAIT);
        assert_eq!(r.waiting(), 0);
        match r.decide(&n, &t, here, v, &f, &data, t0) {
            Decision::Forward(to) => assert_eq!(
                to,
                Target {
                    vlan: 30,
                    mac: H2,
                    at: (2, 1)
                }
            ),
            other => panic!("{other:?}"),
        }
        // A subnet nobody routes, and waits that expire.
        let lost = udp("10.99.0.1");
        let f = crate::frame::Frame::parse(&lost).expect("frame");
        assert!(matches!(
            r.decide(&n, &t, here, v, &f, &lost, t0),
            Decision::Drop(Dropped::NoRoute)
        ));
        let other = udp("10.30.0.8");
        let f = crate::frame::Frame::parse(&other).expect("frame");
        r.decide(&n, &t, here, v, &f, &other, t0);
        assert_eq!(r.expire(t0 + WAIT_FOR), 1);
        assert_eq!(r.waiting(), 0);
    }

    #[test]
    fn a_path_both_ways_walks_the_route_back() {
        let n = net();
        let route = [
            PortHop {
                dpid: 1,
                in_port: 1,
                out_port: 10,
            },
            PortHop {
                dpid: 2,
                in_port: 11,
                out_port: 1,
            },
        ];
        let c = vlan::carry(
            &n,
            &triples(&route),
            (
                vlan::End { vlan: 20, mac: H1 },
                vlan::End { vlan: 30, mac: H2 },
            ),
            Some(ROUTER_MAC),
            |p| p.1 >= 10,
        )
        .expect("carried");
        let (fwd, rev) = path_hops(&route, &c).expect("hops");
        assert_eq!(
            fwd.iter()
                .map(|(h, c)| (h.dpid, h.out_port, c.in_port))
                .collect::<Vec<_>>(),
            vec![(1, 10, 1), (2, 1, 11)]
        );
        assert_eq!(
            rev.iter()
                .map(|(h, c)| (h.dpid, h.out_port, c.in_port))
                .collect::<Vec<_>>(),
            vec![(2, 11, 1), (1, 1, 10)]
        );
        assert!(fwd[0].1.l3.is_some() && fwd[1].1.l3.is_none());
        assert!(rev[0].1.l3.is_some() && rev[1].1.l3.is_none());
        assert_eq!(
            (rev[0].1.arrive, rev[0].1.leave),
            (Tag::Tagged(30), Tag::Tagged(20))
        );
    }
}
