//! VLANs as the data plane needs them: the `/vlans` and `/ports` records
//! compiled once per CRM snapshot into a [`Plan`] (which VLANs each port
//! carries and how, the routed subnets), the classification of a frame
//! at its ingress port, how a VLAN's frames are tagged on each port, and
//! the [`Carry`] of a path: per switch, the tag each direction arrives
//! and leaves with, and the Ethernet rewrite at each direction's routing
//! hop.
//!
//! Conventions: every port carries VLAN 1 untagged unless `/ports` says
//! otherwise; inter-switch links carry every VLAN tagged, VLAN 1 too. With
//! no VLAN and no port record at all the plan is inactive, and the
//! controller forwards exactly as it always has (plain flows, untagged
//! everywhere, no VLAN matches).
//!
//! A leaf: imports nothing of the crate. Knows nothing of switches,
//! topology or OpenFlow messages (callers say which ports are links).

use ahash::AHashMap as HashMap;
use ipnet::Ipv4Net;
use openflow::MacAddr;
use smallvec::SmallVec;
use std::net::Ipv4Addr;
use tierflow_api::model::{DEFAULT_VLAN, PortConfig, Vlan};

/// An 802.1Q VLAN id.
pub type Vid = u16;

/// (datapath id, port).
pub type PortRef = (u64, u32);

/// `OFPVID_PRESENT`.
const VID_PRESENT: u16 = 0x1000;

/// How a VLAN's frames are carried on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Tag {
    /// Without an 802.1Q header (the port's native VLAN, or VLAN 1 on a
    /// link).
    Untagged,
    /// With this VID.
    Tagged(Vid),
}

impl Tag {
    /// The OXM `vlan_vid` that matches frames carried so.
    pub fn vlan_vid(self) -> u16 {
        match self {
            Tag::Untagged => 0,
            Tag::Tagged(v) => v | VID_PRESENT,
        }
    }

    /// The tag a frame has, from its outer VID.
    pub fn of(vid: Option<Vid>) -> Tag {
        vid.map_or(Tag::Untagged, Tag::Tagged)
    }
}

/// The VLANs one port carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    native: Option<Vid>,
    tagged: SmallVec<[Vid; 4]>,
}

impl Default for Member {
    fn default() -> Self {
        Member {
            native: Some(DEFAULT_VLAN),
            tagged: SmallVec::new(),
        }
    }
}

/// A routed subnet: the VLAN it is on and the router's address in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub vid: Vid,
    pub gateway: Ipv4Addr,
    pub net: Ipv4Net,
}

/// The VLAN configuration compiled for the data plane.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    active: bool,
    ports: HashMap<PortRef, Member>,
    /// VLANs with a record (VLAN 1 exists without one).
    vlans: HashMap<Vid, Vlan>,
    /// Every routed subnet.
    subnets: Vec<Subnet>,
}

impl Plan {
    /// The plan of these records. Records that do not validate are left
    /// out (the store never holds them).
    pub fn new(vlans: &[Vlan], ports: &[PortConfig]) -> Plan {
        let mut p = Plan {
            active: !vlans.is_empty() || !ports.is_empty(),
            ..Plan::default()
        };
        for v in vlans.iter().filter(|v| v.validate().is_ok()) {
            for gw in v.gateways() {
                p.subnets.push(Subnet {
                    vid: v.vid,
                    gateway: gw.addr,
                    net: gw.net,
                });
            }
            p.vlans.insert(v.vid, v.clone());
        }
        // Longest prefix first, so a lookup finds the most specific.
        p.subnets
            .sort_by_key(|s| std::cmp::Reverse(s.net.prefix_len()));
        for c in ports.iter().filter(|c| c.validate().is_ok()) {
            if let Some(dpid) = c.dpid_value() {
                p.ports.insert(
                    (dpid, c.port),
                    Member {
                        native: c.native_vlan,
                        tagged: c.tagged_vlans.iter().copied().collect(),
                    },
                );
            }
        }
        p
    }

    /// Whether any VLAN or port is configured: then flows match VLANs and
    /// ports; otherwise the network is one bridged LAN with plain flows.
    pub fn is_active(&self) -> bool {
        self.active
    }

    fn member(&self, at: PortRef) -> Option<&Member> {
        self.ports.get(&at)
    }

    /// The VLAN of a frame that arrived at edge port `at` with outer VID
    /// `vid` (`None`: untagged); `None` when the port does not admit it.
    pub fn classify(&self, at: PortRef, vid: Option<Vid>) -> Option<Vid> {
        match (self.member(at), vid) {
            (None, None) => Some(DEFAULT_VLAN),
            (None, Some(_)) => None,
            (Some(m), None) => m.native,
            (Some(m), Some(v)) => m.tagged.contains(&v).then_some(v),
        }
    }

    /// The VLAN of a frame on an inter-switch link: its tag (an untagged
    /// one, which no flow of a VLAN-aware network sends there, counts as
    /// VLAN 1).
    pub fn classify_link(vid: Option<Vid>) -> Vid {
        vid.unwrap_or(DEFAULT_VLAN)
    }

    /// How `vlan` is carried on an inter-switch link: tagged, every VLAN.
    pub fn link_tag(vlan: Vid) -> Tag {
        Tag::Tagged(vlan)
    }

    /// How `vlan` is carried on edge port `at`; `None` if it does not
    /// carry it.
    pub fn edge_tag(&self, at: PortRef, vlan: Vid) -> Option<Tag> {
        match self.member(at) {
            None => (vlan == DEFAULT_VLAN).then_some(Tag::Untagged),
            Some(m) if m.native == Some(vlan) => Some(Tag::Untagged),
            Some(m) => m.tagged.contains(&vlan).then_some(Tag::Tagged(vlan)),
        }
    }

    /// How `vlan` is carried on `at`, a link or an edge port.
    pub fn tag_at(&self, at: PortRef, vlan: Vid, link: bool) -> Option<Tag> {
        if link {
            Some(Plan::link_tag(vlan))
        } else {
            self.edge_tag(at, vlan)
        }
    }

    /// Whether `vlan` is routed (it has gateways).
    pub fn is_routed(&self, vlan: Vid) -> bool {
        self.vlans.get(&vlan).is_some_and(Vlan::is_routed)
    }

    /// The routed subnet holding `ip`, most specific first.
    pub fn subnet_of(&self, ip: Ipv4Addr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.net.contains(&ip))
    }

    /// The subnet whose gateway address is `ip`.
    pub fn gateway(&self, ip: Ipv4Addr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.gateway == ip)
    }

    /// The gateway of `vlan` whose subnet holds `ip` (the address the
    /// router speaks from when it asks for `ip`).
    pub fn gateway_for(&self, vlan: Vid, ip: Ipv4Addr) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.vid == vlan && s.net.contains(&ip))
    }

    /// Every routed subnet.
    pub fn subnets(&self) -> &[Subnet] {
        &self.subnets
    }

    /// How `vlan` leaves each of `ports`: (untagged ports, tagged ports).
    pub fn split_ports(
        &self,
        dpid: u64,
        ports: impl IntoIterator<Item = u32>,
        vlan: Vid,
    ) -> (SmallVec<[u32; 16]>, SmallVec<[u32; 16]>) {
        let mut untagged = SmallVec::new();
        let mut tagged = SmallVec::new();
        for p in ports {
            match self.edge_tag((dpid, p), vlan) {
                Some(Tag::Untagged) => untagged.push(p),
                Some(Tag::Tagged(_)) => tagged.push(p),
                None => {}
            }
        }
        (untagged, tagged)
    }
}

/// An end of a path: the VLAN a host is in and its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct End {
    pub vlan: Vid,
    pub mac: MacAddr,
}

/// The Ethernet addresses a routed frame gets at its routing hop (its
/// TTL is decremented there too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "RewriteRepr", into = "RewriteRepr")]
pub struct Rewrite {
    /// The router's address.
    pub eth_src: MacAddr,
    /// The next hop's (the destination host's) address.
    pub eth_dst: MacAddr,
}

/// A `Rewrite` as a session's Redis record keeps it (with its `Carry`).
#[derive(serde::Serialize, serde::Deserialize)]
struct RewriteRepr {
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
}

impl From<RewriteRepr> for Rewrite {
    fn from(r: RewriteRepr) -> Self {
        Rewrite {
            eth_src: MacAddr(r.eth_src),
            eth_dst: MacAddr(r.eth_dst),
        }
    }
}

impl From<Rewrite> for RewriteRepr {
    fn from(r: Rewrite) -> Self {
        RewriteRepr {
            eth_src: r.eth_src.0,
            eth_dst: r.eth_dst.0,
        }
    }
}

/// How one direction of a path goes through one switch: where it enters,
/// with which tag, the tag it leaves with, and the rewrite when this is
/// the direction's routing hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HopCarry {
    pub in_port: u32,
    pub arrive: Tag,
    pub leave: Tag,
    pub l3: Option<Rewrite>,
}

/// The tags of both directions at one switch of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HopTags {
    pub fwd_in: Tag,
    pub fwd_out: Tag,
    pub rev_in: Tag,
    pub rev_out: Tag,
}

/// How a path's frames are carried, both directions, where VLANs or
/// routing are in force. The forward direction (client or source to
/// server or destination) is routed at the first switch, the reverse
/// direction at the last. Kept in the session's Redis record, so another
/// instance can adopt a carried session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Carry {
    /// One per switch, in path order.
    pub hops: SmallVec<[HopTags; 4]>,
    /// The forward direction's rewrite at the first switch (routed
    /// paths): towards the server's address.
    pub fwd_l3: Option<Rewrite>,
    /// The reverse direction's rewrite at the last switch: towards the
    /// client's address.
    pub rev_l3: Option<Rewrite>,
    /// The client's and the server's VLANs.
    pub vlans: (Vid, Vid),
    /// Routed (the two ends may still share a VLAN: two subnets of one).
    pub routed: bool,
}

impl Carry {
    /// The forward direction at hop `i`, which it enters by `in_port`.
    pub fn fwd(&self, i: usize, in_port: u32) -> Option<HopCarry> {
        let t = self.hops.get(i)?;
        Some(HopCarry {
            in_port,
            arrive: t.fwd_in,
            leave: t.fwd_out,
            l3: if i == 0 { self.fwd_l3 } else { None },
        })
    }

    /// The reverse direction at hop `i`, which it enters by `in_port`
    /// (the hop's forward out port).
    pub fn rev(&self, i: usize, in_port: u32) -> Option<HopCarry> {
        let t = self.hops.get(i)?;
        Some(HopCarry {
            in_port,
            arrive: t.rev_in,
            leave: t.rev_out,
            l3: if i + 1 == self.hops.len() {
                self.rev_l3
            } else {
                None
            },
        })
    }

    /// Whether the path is routed.
    pub fn is_routed(&self) -> bool {
        self.routed
    }

    /// Whether the path carries `vlan`, at either end.
    pub fn touches(&self, vlan: Vid) -> bool {
        self.vlans.0 == vlan || self.vlans.1 == vlan
    }
}

/// The carriage of a path between `client` and `server` along `hops`
/// (`(dpid, in_port, out_port)` per switch, client side first): bridged,
/// or `routed` by `router` (frames rewritten at each direction's first
/// switch). `None` when a port of the path does not carry the VLAN the
/// path needs there.
pub fn carry(
    plan: &Plan,
    hops: &[(u64, u32, u32)],
    (client, server): (End, End),
    routed: Option<MacAddr>,
    is_link: impl Fn(PortRef) -> bool,
) -> Option<Carry> {
    let last = hops.len().checked_sub(1)?;
    let tag = |p: PortRef, v: Vid| plan.tag_at(p, v, is_link(p));
    let mut out = SmallVec::new();
    for (i, &(dpid, in_port, out_port)) in hops.iter().enumerate() {
        let (i_at, o_at) = ((dpid, in_port), (dpid, out_port));
        // Forward: in the client's VLAN until routed at the first switch.
        let fwd_vlan_in = if i == 0 { client.vlan } else { server.vlan };
        // Reverse: in the server's VLAN until routed at the last switch.
        let rev_vlan_in = if i == last { server.vlan } else { client.vlan };
        out.push(HopTags {
            fwd_in: tag(i_at, fwd_vlan_in)?,
            fwd_out: tag(o_at, server.vlan)?,
            rev_in: tag(o_at, rev_vlan_in)?,
            rev_out: tag(i_at, client.vlan)?,
        });
    }
    Some(Carry {
        hops: out,
        fwd_l3: routed.map(|router| Rewrite {
            eth_src: router,
            eth_dst: server.mac,
        }),
        rev_l3: routed.map(|router| Rewrite {
            eth_src: router,
            eth_dst: client.mac,
        }),
        vlans: (client.vlan, server.vlan),
        routed: routed.is_some(),
    })
}

/// How two hosts reach each other: `Some(None)` bridged (one VLAN, one
/// subnet as far as the router knows), `Some(Some(router))` routed (their
/// subnets are routed ones, different), `None` not at all (different
/// VLANs, not both routed).
pub fn reach(plan: &Plan, a: (Vid, Ipv4Addr), b: (Vid, Ipv4Addr)) -> Option<Option<MacAddr>> {
    let sa = plan.subnet_of(a.1).filter(|s| s.vid == a.0);
    let sb = plan.subnet_of(b.1).filter(|s| s.vid == b.0);
    match (sa, sb) {
        (Some(x), Some(y)) if x.net != y.net => Some(Some(ROUTER_MAC)),
        _ if a.0 == b.0 => Some(None),
        _ => None,
    }
}

/// `data` as a hop leaves it (for a frame the controller delivers itself,
/// straight to its destination's port): retagged, and at a routing hop
/// with the router's and the next hop's addresses and its IPv4 TTL one
/// less (checksum updated). `None` for a frame too short for its headers,
/// or routed with a TTL of 1 or less (it dies here).
pub fn rewrite_frame(data: &[u8], hop: &HopCarry) -> Option<Vec<u8>> {
    const ETH: usize = 12;
    let tagged = data.get(ETH..ETH + 2)? == [0x81, 0x00];
    let body = data.get(if tagged { ETH + 4 } else { ETH }..)?;
    let mut v = Vec::with_capacity(data.len() + 4);
    match hop.l3 {
        Some(r) => {
            v.extend_from_slice(&r.eth_dst.0);
            v.extend_from_slice(&r.eth_src.0);
        }
        None => v.extend_from_slice(data.get(..ETH)?),
    }
    if let Tag::Tagged(vid) = hop.leave {
        v.extend_from_slice(&[0x81, 0x00]);
        v.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    let l3 = v.len() + 2;
    v.extend_from_slice(body);
    if hop.l3.is_some() && body.get(..2) == Some(&[0x08, 0x00]) {
        // IPv4: TTL at byte 8, checksum at 10..12 (RFC 1624 update).
        let ttl = *v.get(l3 + 8)?;
        if ttl <= 1 {
            return None;
        }
        *v.get_mut(l3 + 8)? = ttl - 1;
        let old = u16::from_be_bytes([*v.get(l3 + 10)?, *v.get(l3 + 11)?]);
        let sum = u32::from(!old) + u32::from(!0x0100u16);
        let sum = (sum & 0xffff) + (sum >> 16);
        let new = !((sum & 0xffff) + (sum >> 16)) as u16;
        v.get_mut(l3 + 10..l3 + 12)?
            .copy_from_slice(&new.to_be_bytes());
    }
    Some(v)
}

/// The router's Ethernet address: locally administered, unicast.
pub const ROUTER_MAC: MacAddr = MacAddr([0x0e, 0x74, 0x66, 0x00, 0x00, 0x01]);

#[cfg(test)]
mod tests {
    use super::*;

    fn vlan(vid: Vid, gw: &[&str]) -> Vlan {
        Vlan {
            vid,
            name: String::new(),
            gateways: gw.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn port(dpid: u64, port: u32, native: Option<Vid>, tagged: &[Vid]) -> PortConfig {
        PortConfig {
            dpid: format!("{dpid:016x}"),
            port,
            native_vlan: native,
            tagged_vlans: tagged.to_vec(),
        }
    }

    fn plan() -> Plan {
        Plan::new(
            &[
                vlan(10, &[]),
                vlan(20, &["10.20.0.1/24"]),
                vlan(30, &["10.30.0.1/24", "10.31.0.1/16"]),
            ],
            &[
                port(1, 1, Some(10), &[]),
                port(1, 2, Some(20), &[30]),
                port(1, 3, None, &[10, 20]),
                port(2, 1, Some(30), &[]),
            ],
        )
    }

    #[test]
    fn an_empty_plan_is_inactive_and_everything_is_vlan_one() {
        let p = Plan::new(&[], &[]);
        assert!(!p.is_active());
        assert_eq!(p.classify((9, 9), None), Some(1));
        assert_eq!(p.classify((9, 9), Some(10)), None);
        assert_eq!(p.edge_tag((9, 9), 1), Some(Tag::Untagged));
        assert!(plan().is_active());
    }

    #[test]
    fn frames_are_classified_at_their_ingress_port() {
        let p = plan();
        assert_eq!(p.classify((1, 1), None), Some(10));
        assert_eq!(p.classify((1, 1), Some(10)), None, "not tagged there");
        assert_eq!(p.classify((1, 2), None), Some(20));
        assert_eq!(p.classify((1, 2), Some(30)), Some(30));
        assert_eq!(p.classify((1, 2), Some(20)), None, "native is untagged");
        assert_eq!(p.classify((1, 3), None), None, "no native VLAN");
        assert_eq!(p.classify((1, 3), Some(20)), Some(20));
        assert_eq!(p.classify((1, 9), None), Some(1), "unconfigured");
        assert_eq!(Plan::classify_link(None), 1);
        assert_eq!(Plan::classify_link(Some(20)), 20);
        assert_eq!(Tag::Tagged(20).vlan_vid(), 0x1014);
        assert_eq!(Tag::Untagged.vlan_vid(), 0);
    }

    #[test]
    fn tags_per_port_and_flood_sets() {
        let p = plan();
        assert_eq!(p.edge_tag((1, 2), 30), Some(Tag::Tagged(30)));
        assert_eq!(p.edge_tag((1, 2), 10), None);
        assert_eq!(Plan::link_tag(1), Tag::Tagged(1));
        assert_eq!(Plan::link_tag(30), Tag::Tagged(30));
        assert_eq!(p.tag_at((1, 7), 30, true), Some(Tag::Tagged(30)));
        let (u, t) = p.split_ports(1, [1, 2, 3, 4], 10);
        assert_eq!((u.as_slice(), t.as_slice()), (&[1][..], &[3][..]));
        let (u, t) = p.split_ports(1, [1, 2, 3, 4], 1);
        assert_eq!((u.as_slice(), t.as_slice()), (&[4][..], &[][..]));
    }

    #[test]
    fn routed_subnets_most_specific_first() {
        let p = plan();
        assert!(p.is_routed(20) && p.is_routed(30));
        assert!(!p.is_routed(10) && !p.is_routed(1));
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert_eq!(p.subnet_of(ip("10.20.0.7")).map(|s| s.vid), Some(20));
        assert_eq!(
            p.subnet_of(ip("10.30.0.7")).map(|s| s.net.to_string()),
            Some("10.30.0.0/24".into())
        );
        assert_eq!(p.subnet_of(ip("10.31.200.7")).map(|s| s.vid), Some(30));
        assert_eq!(p.subnet_of(ip("10.40.0.1")), None);
        assert_eq!(p.gateway(ip("10.31.0.1")).map(|s| s.vid), Some(30));
        assert_eq!(p.gateway(ip("10.31.0.2")), None);
        assert_eq!(
            p.gateway_for(30, ip("10.31.9.9")).map(|s| s.gateway),
            Some(ip("10.31.0.1"))
        );
        assert_eq!(p.gateway_for(20, ip("10.31.9.9")), None);
    }

    #[test]
    fn reach_is_bridged_in_a_vlan_and_routed_between_routed_subnets() {
        let p = plan();
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert_eq!(
            reach(&p, (10, ip("10.0.0.1")), (10, ip("10.0.0.2"))),
            Some(None)
        );
        assert_eq!(reach(&p, (10, ip("10.0.0.1")), (20, ip("10.20.0.2"))), None);
        assert_eq!(
            reach(&p, (20, ip("10.20.0.5")), (30, ip("10.30.0.7"))),
            Some(Some(ROUTER_MAC))
        );
        // Two subnets of one VLAN: routed.
        assert_eq!(
            reach(&p, (30, ip("10.30.0.5")), (30, ip("10.31.9.7"))),
            Some(Some(ROUTER_MAC))
        );
        assert_eq!(
            reach(&p, (30, ip("10.30.0.5")), (30, ip("10.30.0.6"))),
            Some(None)
        );
    }

    #[test]
    fn frames_delivered_by_the_controller_are_rewritten_as_the_hop_would() {
        let b = etherparse::PacketBuilder::ethernet2([0, 0, 0, 0, 0, 1], ROUTER_MAC.0)
            .single_vlan(etherparse::VlanId::try_new(20).expect("vid"))
            .ipv4([10, 20, 0, 5], [10, 30, 0, 7], 64)
            .udp(5060, 5060);
        let mut tagged = Vec::new();
        b.write(&mut tagged, b"INVITE").expect("frame");
        let hop = HopCarry {
            in_port: 1,
            arrive: Tag::Tagged(20),
            leave: Tag::Untagged,
            l3: Some(Rewrite {
                eth_src: ROUTER_MAC,
                eth_dst: MacAddr([0, 0, 0, 0, 0, 2]),
            }),
        };
        let out = rewrite_frame(&tagged, &hop).expect("rewritten");
        let p = etherparse::SlicedPacket::from_ethernet(&out).expect("parses");
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("ethernet")
        };
        assert_eq!(eth.destination(), [0, 0, 0, 0, 0, 2]);
        assert_eq!(eth.source(), ROUTER_MAC.0);
        assert!(p.link_exts.is_empty(), "untagged");
        let Some(etherparse::NetSlice::Ipv4(v4)) = &p.net else {
            panic!("ipv4")
        };
        assert_eq!(v4.header().ttl(), 63);
        // The checksum is still right.
        let h = v4.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else {
            panic!("udp")
        };
        assert_eq!(u.payload(), b"INVITE");
        // Bridged: only the tag changes.
        let bridged = HopCarry {
            arrive: Tag::Untagged,
            leave: Tag::Tagged(30),
            l3: None,
            ..hop
        };
        let plain = rewrite_frame(&out, &bridged).expect("tagged");
        assert_eq!(plain.len(), out.len() + 4);
        assert_eq!(plain.get(12..16), Some(&[0x81, 0x00, 0x00, 30][..]));
        assert_eq!(plain.get(..12), out.get(..12));
        assert!(rewrite_frame(&tagged[..10], &hop).is_none());
    }

    #[test]
    fn a_routed_path_changes_vlan_at_each_directions_first_switch() {
        let p = plan();
        let a = End {
            vlan: 20,
            mac: MacAddr([0, 0, 0, 0, 0, 1]),
        };
        let b = End {
            vlan: 30,
            mac: MacAddr([0, 0, 0, 0, 0, 2]),
        };
        // 1:2 (native 20) -> 1:10 link -> 2:11 link -> 2:1 (native 30).
        let hops = [(1, 2, 10), (2, 11, 1)];
        let link = |p: PortRef| p.1 >= 10;
        let c = carry(&p, &hops, (a, b), Some(ROUTER_MAC), link).expect("carried");
        assert!(c.is_routed() && c.touches(20) && c.touches(30) && !c.touches(1));
        assert_eq!(
            c.hops[0],
            HopTags {
                fwd_in: Tag::Untagged,
                fwd_out: Tag::Tagged(30),
                rev_in: Tag::Tagged(20),
                rev_out: Tag::Untagged,
            }
        );
        assert_eq!(
            c.hops[1],
            HopTags {
                fwd_in: Tag::Tagged(30),
                fwd_out: Tag::Untagged,
                rev_in: Tag::Untagged,
                rev_out: Tag::Tagged(20),
            }
        );
        let f0 = c.fwd(0, 2).expect("hop");
        assert_eq!(f0.l3.map(|r| r.eth_dst), Some(b.mac));
        assert_eq!(c.fwd(1, 11).and_then(|h| h.l3), None);
        let r1 = c.rev(1, 1).expect("hop");
        assert_eq!(
            r1.l3.map(|r| (r.eth_src, r.eth_dst)),
            Some((ROUTER_MAC, a.mac))
        );
        assert_eq!(c.rev(0, 10).and_then(|h| h.l3), None);
        // Bridged: no rewrite; a port that does not carry the VLAN: none.
        let a10 = End { vlan: 10, ..a };
        let b10 = End { vlan: 10, ..b };
        let c = carry(&p, &[(1, 1, 3)], (a10, b10), None, |_| false).expect("bridged");
        assert_eq!(c.fwd_l3, None);
        assert_eq!(
            (c.hops[0].fwd_in, c.hops[0].fwd_out),
            (Tag::Untagged, Tag::Tagged(10))
        );
        assert!(carry(&p, &[(1, 1, 2)], (a10, b10), None, |_| false).is_none());
    }
}
