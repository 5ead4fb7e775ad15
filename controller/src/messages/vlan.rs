//! VLANs and routing on the wire: how a frame changes at one switch of a
//! path (802.1Q push, pop or VID change; at a routing hop the Ethernet
//! addresses rewritten and the TTL decremented), the flows that match a
//! path's frames by ingress port and VLAN (bridged: the Ethernet pair;
//! routed: the IPv4 pair), and packet-outs that do to a frame what a hop
//! would (floods per tag, deliveries, the router's own answers).
//!
//! [`carry`] turns any of the other builders' flows (a plain path flow, a
//! tier flow, a media or untiered flow) into the same flow for one hop of
//! a carried path: it matches the ingress port and the VLAN tag the
//! frame arrives with, and rewrites before it outputs.

use super::cookie::{self, Kind};
use super::prio;
use crate::vlan::{HopCarry, Tag};
use openflow::oxm::VID_PRESENT;
use openflow::{Action, Actions, FlowMod, Instruction, MacAddr, Match, Oxm, PacketOut, PortNo};
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// 802.1Q.
const ETH_TYPE_VLAN: u16 = 0x8100;

/// The actions that turn a frame tagged `arrive` into one tagged `leave`.
pub fn tag_actions<'a>(arrive: Tag, leave: Tag, out: &mut Actions<'a>) {
    match (arrive, leave) {
        (Tag::Untagged, Tag::Untagged) => {}
        (Tag::Untagged, Tag::Tagged(v)) => {
            out.push(Action::PushVlan {
                ethertype: ETH_TYPE_VLAN,
            });
            out.push(set_vid(v));
        }
        (Tag::Tagged(_), Tag::Untagged) => out.push(Action::PopVlan),
        (Tag::Tagged(a), Tag::Tagged(b)) if a != b => out.push(set_vid(b)),
        (Tag::Tagged(_), Tag::Tagged(_)) => {}
    }
}

fn set_vid<'a>(v: u16) -> Action<'a> {
    Action::SetField {
        field: Oxm::VlanVid(v | VID_PRESENT, None),
    }
}

/// What one hop does to a frame before it outputs it: at a routing hop
/// the router's address as source, the next hop's as destination and the
/// TTL decremented once; then the tag change.
pub fn hop_actions<'a>(hop: &HopCarry, out: &mut Actions<'a>) {
    if let Some(r) = hop.l3 {
        out.push(Action::SetField {
            field: Oxm::EthSrc(r.eth_src, None),
        });
        out.push(Action::SetField {
            field: Oxm::EthDst(r.eth_dst, None),
        });
        out.push(Action::DecNwTtl);
    }
    tag_actions(hop.arrive, hop.leave, out);
}

/// `m` narrowed to frames arriving by the hop's port with its tag.
pub fn hop_match(hop: &HopCarry, m: Match<'static>) -> Match<'static> {
    let mut fields = Match::new()
        .with(Oxm::InPort(PortNo::from(hop.in_port), None))
        .with(Oxm::VlanVid(hop.arrive.vlan_vid(), None));
    fields.fields.extend(m.fields);
    fields
}

/// The flow `f` (any builder's: it ends by outputting) for one hop of a
/// carried path: it also matches the ingress port and the arriving tag,
/// and does the hop's rewrites before anything else it does (a tier
/// flow's DSCP is marked after the routing rewrite, on the frame that
/// leaves). A frame that leaves by the port it came in on (a host on a
/// trunk routed between two of its VLANs) is output to `IN_PORT`, as
/// OpenFlow requires.
pub fn carry(mut f: FlowMod<'static>, hop: &HopCarry) -> FlowMod<'static> {
    f.match_ = hop_match(hop, std::mem::take(&mut f.match_));
    for i in f.instructions.iter_mut() {
        if let Instruction::ApplyActions { actions } = i {
            let mut with: Actions<'static> = Actions::new();
            hop_actions(hop, &mut with);
            with.extend(actions.drain(..).map(|a| match a {
                Action::Output { port, max_len } if port.value() == hop.in_port => Action::Output {
                    port: PortNo::InPort,
                    max_len,
                },
                a => a,
            }));
            *actions = with;
        }
    }
    f
}

/// A bridged path's flow on one hop: frames from `src` to `dst` arriving
/// as `hop` says leave by `out_port`, retagged.
pub fn vlan_path_flow(
    id: u64,
    src: MacAddr,
    dst: MacAddr,
    hop: &HopCarry,
    out_port: u32,
    idle: u16,
) -> FlowMod<'static> {
    carry(super::path_flow(id, src, dst, out_port, idle), hop)
}

/// A routed path's flow on one hop: IPv4 from `src` to `dst` arriving as
/// `hop` says leaves by `out_port`. At the routing hop (`hop.l3`) it
/// matches frames sent to the router (`router`) and rewrites them; at the
/// others, frames the router sent (their source is `router`), so a
/// routed flow never matches bridged traffic.
pub fn routed_path_flow(
    id: u64,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    router: MacAddr,
    hop: &HopCarry,
    out_port: u32,
    idle: u16,
) -> FlowMod<'static> {
    let eth = if hop.l3.is_some() {
        Oxm::EthDst(router, None)
    } else {
        Oxm::EthSrc(router, None)
    };
    let f = FlowMod {
        cookie: cookie::cookie(Kind::Path, id),
        priority: prio::PATH,
        idle_timeout: idle,
        match_: Match::new()
            .with(eth)
            .with(Oxm::EthType(0x0800, None))
            .with(Oxm::Ipv4Src(src, None))
            .with(Oxm::Ipv4Dst(dst, None)),
        instructions: [Instruction::ApplyActions {
            actions: [Action::output(out_port)].into_iter().collect(),
        }]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    };
    carry(f, hop)
}

/// Delivers a frame of VLAN `vid` that arrived tagged `arrive` to
/// `untagged` ports without its tag and to `tagged` ports with it (the
/// action list outputs, retags, outputs again).
pub fn vlan_flood_out<'a>(
    in_port: u32,
    arrive: Tag,
    vid: u16,
    untagged: &[u32],
    tagged: &[u32],
    data: &'a [u8],
) -> PacketOut<'a> {
    let mut actions: Actions<'a> = Actions::new();
    let (first, second, to) = match arrive {
        Tag::Untagged => (untagged, tagged, Tag::Tagged(vid)),
        Tag::Tagged(_) => (tagged, untagged, Tag::Untagged),
    };
    actions.extend(first.iter().map(|p| Action::output(*p)));
    if !second.is_empty() {
        let mut retag = Actions::new();
        tag_actions(arrive, to, &mut retag);
        actions.extend(retag);
        actions.extend(second.iter().map(|p| Action::output(*p)));
    }
    PacketOut {
        buffer_id: openflow::NO_BUFFER,
        in_port: PortNo::from(in_port),
        actions,
        data: Cow::Borrowed(data),
    }
}

/// Sends `data` out of `out_port` after what `hop` does to it (a frame
/// delivered straight to its destination's port: a SIP message the
/// controller relays, the router's answers).
pub fn carried_packet_out<'a>(
    in_port: u32,
    hop: &HopCarry,
    out_port: u32,
    data: &'a [u8],
) -> PacketOut<'a> {
    let mut actions: Actions<'a> = Actions::new();
    hop_actions(hop, &mut actions);
    actions.push(Action::output(out_port));
    PacketOut {
        buffer_id: openflow::NO_BUFFER,
        in_port: PortNo::from(in_port),
        actions,
        data: Cow::Borrowed(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vlan::{ROUTER_MAC, Rewrite};

    fn text<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("json")
    }

    const A: MacAddr = MacAddr([0, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([0, 0, 0, 0, 0, 2]);

    fn hop(arrive: Tag, leave: Tag, l3: Option<Rewrite>) -> HopCarry {
        HopCarry {
            in_port: 3,
            arrive,
            leave,
            l3,
        }
    }

    #[test]
    fn tag_changes_read_like_ovs_actions() {
        let acts = |a, l| {
            let mut v = Actions::new();
            tag_actions(a, l, &mut v);
            text(&v)
        };
        assert_eq!(acts(Tag::Untagged, Tag::Untagged), "[]");
        assert_eq!(
            acts(Tag::Untagged, Tag::Tagged(20)),
            r#"[{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4116}}]"#
        );
        assert_eq!(
            acts(Tag::Tagged(20), Tag::Untagged),
            r#"[{"type":"POP_VLAN"}]"#
        );
        assert_eq!(
            acts(Tag::Tagged(20), Tag::Tagged(30)),
            r#"[{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4126}}]"#
        );
        assert_eq!(acts(Tag::Tagged(20), Tag::Tagged(20)), "[]");
    }

    #[test]
    fn a_bridged_hop_matches_port_and_tag_and_pushes_before_output() {
        let f = vlan_path_flow(7, A, B, &hop(Tag::Untagged, Tag::Tagged(10), None), 9, 60);
        let t = text(&f);
        for want in [
            r#""priority":10"#,
            r#"{"field":"in_port","value":3}"#,
            r#"{"field":"vlan_vid","value":0}"#,
            r#"{"field":"eth_src","value":"00:00:00:00:00:01"}"#,
            r#"{"field":"eth_dst","value":"00:00:00:00:00:02"}"#,
            r#"{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4106}},{"type":"OUTPUT","port":9,"max_len":0}"#,
        ] {
            assert!(t.contains(want), "{want} missing from {t}");
        }
        assert_eq!(cookie::id_of(f.cookie, Kind::Path), Some(7));
        // Back out of the port it came in by: IN_PORT.
        let hairpin = text(&vlan_path_flow(
            7,
            A,
            B,
            &hop(Tag::Tagged(10), Tag::Untagged, None),
            3,
            60,
        ));
        assert!(
            hairpin.contains(r#"{"type":"OUTPUT","port":"IN_PORT","max_len":0}"#),
            "{hairpin}"
        );
        // Encodes (a FLOW_MOD the switch can read).
        let mut v = Vec::new();
        openflow::encode(0, &f, &mut v).expect("encodes");
        let back = openflow::decode(&v).expect("decodes");
        assert!(matches!(back.1, openflow::Message::FlowMod(_)));
    }

    #[test]
    fn the_routing_hop_rewrites_decrements_and_retags_the_next_only_retags() {
        let r = Rewrite {
            eth_src: ROUTER_MAC,
            eth_dst: B,
        };
        let ips = (
            "10.20.0.5".parse().expect("ip"),
            "10.30.0.7".parse().expect("ip"),
        );
        let first = text(&routed_path_flow(
            4,
            ips,
            ROUTER_MAC,
            &hop(Tag::Untagged, Tag::Tagged(30), Some(r)),
            10,
            60,
        ));
        for want in [
            r#"{"field":"eth_dst","value":"0e:74:66:00:00:01"}"#,
            r#"{"field":"eth_type","value":2048}"#,
            r#"{"field":"ipv4_src","value":"10.20.0.5"}"#,
            r#"{"field":"ipv4_dst","value":"10.30.0.7"}"#,
            r#"[{"type":"SET_FIELD","field":{"field":"eth_src","value":"0e:74:66:00:00:01"}},{"type":"SET_FIELD","field":{"field":"eth_dst","value":"00:00:00:00:00:02"}},{"type":"DEC_NW_TTL"},{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4126}},{"type":"OUTPUT","port":10,"max_len":0}]"#,
        ] {
            assert!(first.contains(want), "{want} missing from {first}");
        }
        let next = text(&routed_path_flow(
            4,
            ips,
            ROUTER_MAC,
            &hop(Tag::Tagged(30), Tag::Untagged, None),
            2,
            60,
        ));
        assert!(
            next.contains(r#"{"field":"eth_src","value":"0e:74:66:00:00:01"}"#),
            "{next}"
        );
        assert!(!next.contains("DEC_NW_TTL"), "{next}");
        assert!(
            next.contains(r#"[{"type":"POP_VLAN"},{"type":"OUTPUT","port":2,"max_len":0}]"#),
            "{next}"
        );
    }

    #[test]
    fn a_tier_flow_carried_keeps_its_meter_mark_and_queue() {
        let tier = tierflow_api::model::Tier {
            name: "gold".into(),
            min_benefit: 0.0,
            rate_kbps: 50_000,
            burst_kbits: 5000,
            dscp: 46,
            queue_id: 1,
            queue_min_kbps: 0,
            hold_rate_kbps: 64,
        };
        let key = super::super::SessionKey {
            client: "10.20.0.5".parse().expect("ip"),
            server: "10.30.0.7".parse().expect("ip"),
            l4: Some((6, 5201)),
            client_port: None,
        };
        let f = super::super::session_flow(&super::super::FlowSpec {
            session: 9,
            key: &key,
            tier: &tier,
            dir: super::super::Dir::Fwd,
            meter: Some(3),
            out_port: 10,
            ingress: true,
            notify: true,
            idle_timeout: 30,
            command: openflow::FlowModCommand::Add,
        });
        let r = Rewrite {
            eth_src: ROUTER_MAC,
            eth_dst: B,
        };
        let t = text(&carry(f, &hop(Tag::Untagged, Tag::Tagged(30), Some(r))));
        for want in [
            r#""priority":30000"#,
            r#"{"field":"in_port","value":3},{"field":"vlan_vid","value":0},{"field":"eth_type","value":2048}"#,
            r#"{"type":"METER","meter_id":3}"#,
            r#"{"type":"DEC_NW_TTL"},{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4126}},{"type":"SET_FIELD","field":{"field":"ip_dscp","value":46}},{"type":"SET_QUEUE","queue_id":1},{"type":"OUTPUT","port":10,"max_len":0}"#,
        ] {
            assert!(t.contains(want), "{want} missing from {t}");
        }
    }

    #[test]
    fn floods_output_each_tag_once_and_deliveries_rewrite() {
        let po = vlan_flood_out(1, Tag::Untagged, 10, &[2, 3], &[4], b"arp");
        assert_eq!(
            text(&po.actions),
            r#"[{"type":"OUTPUT","port":2,"max_len":0},{"type":"OUTPUT","port":3,"max_len":0},{"type":"PUSH_VLAN","ethertype":33024},{"type":"SET_FIELD","field":{"field":"vlan_vid","value":4106}},{"type":"OUTPUT","port":4,"max_len":0}]"#
        );
        let po = vlan_flood_out(1, Tag::Tagged(10), 10, &[2], &[], b"arp");
        assert_eq!(
            text(&po.actions),
            r#"[{"type":"POP_VLAN"},{"type":"OUTPUT","port":2,"max_len":0}]"#,
            "untagged ports only: popped first"
        );
        let po = vlan_flood_out(1, Tag::Tagged(10), 10, &[2], &[5], b"arp");
        assert_eq!(
            text(&po.actions),
            r#"[{"type":"OUTPUT","port":5,"max_len":0},{"type":"POP_VLAN"},{"type":"OUTPUT","port":2,"max_len":0}]"#
        );
        let po = carried_packet_out(
            0xffff_fffd,
            &hop(Tag::Tagged(20), Tag::Untagged, None),
            7,
            b"sip",
        );
        assert_eq!(
            text(&po.actions),
            r#"[{"type":"POP_VLAN"},{"type":"OUTPUT","port":7,"max_len":0}]"#
        );
    }
}
