//! What every switch gets when it connects, and the service catch flows.

use super::cookie::{self, Kind};
use super::{GUARD_TABLE, prio, to_controller, to_guard};
use openflow::{FlowMod, Match, Message, Oxm, SwitchConfig};

/// Whole packets to the controller, no buffering on the switch.
pub fn set_config() -> Message<'static> {
    Message::SetConfig(SwitchConfig {
        flags: 0,
        miss_send_len: openflow::CML_NO_BUFFER,
    })
}

/// The switch's controller meter (`OFPM_CONTROLLER`): at most `pps`
/// packets a second (and as many at once) go to the controller, whatever
/// a host sends.
pub fn controller_meter(pps: u32) -> Message<'static> {
    Message::MeterMod(openflow::MeterMod {
        command: openflow::MeterModCommand::Add,
        flags: openflow::consts::meter_flags::PKTPS
            | openflow::consts::meter_flags::BURST
            | openflow::consts::meter_flags::STATS,
        meter_id: openflow::METER_CONTROLLER,
        bands: vec![openflow::MeterBand::Drop {
            rate: pps,
            burst_size: pps,
        }],
    })
}

/// This controller's role on the switch (OpenFlow 1.3 §6.3.7): the
/// cluster's leader asks MASTER, the others SLAVE; `generation` (the
/// cluster's term) lets the switch refuse a former master.
pub fn role_request(master: bool, generation: u64) -> Message<'static> {
    Message::RoleRequest(openflow::Role {
        role: if master {
            openflow::ControllerRole::Master
        } else {
            openflow::ControllerRole::Slave
        },
        generation_id: generation,
    })
}

/// Deletes every flow in our cookie namespace, in every table.
pub fn delete_ours() -> FlowMod<'static> {
    cookie::delete(cookie::NAMESPACE, cookie::NAMESPACE_MASK)
}

pub fn table_miss() -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 1),
        priority: prio::MISS,
        instructions: [to_guard()].into_iter().collect(),
        ..FlowMod::default()
    }
}

pub fn lldp_to_controller() -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 2),
        priority: prio::LLDP,
        match_: Match::new().with(Oxm::EthType(crate::lldp::ETH_TYPE_LLDP, None)),
        instructions: [to_guard()].into_iter().collect(),
        ..FlowMod::default()
    }
}

/// The guard table's miss: a port without a guard flow yet (it just came
/// up) reaches the controller unmetered, as every port did before.
pub fn guard_miss() -> FlowMod<'static> {
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 3),
        table_id: GUARD_TABLE,
        priority: prio::MISS,
        instructions: [to_controller()].into_iter().collect(),
        ..FlowMod::default()
    }
}

/// The meter id of a port's guard: above any session meter's (those count
/// up from 1 to the switch's `max_meter`); `None` for port numbers beyond
/// the range (no physical port has one).
pub fn guard_meter_id(port: u32) -> Option<u32> {
    (port < 0x0100_0000).then_some(0x7000_0000 | port)
}

/// The meter id of a port's LLDP guard (next to its guard's).
pub fn lldp_guard_meter_id(port: u32) -> Option<u32> {
    (port < 0x0100_0000).then_some(0x7100_0000 | port)
}

/// At most this many LLDP frames a second from one port reach the
/// controller: a link carries one probe a second each way, so ten leave
/// room for a restart's burst and none for a host's LLDP flood.
pub const LLDP_PPS_PER_PORT: u32 = 10;

/// A port's guard: its packets to the controller through its meter
/// (`meter`: none when the switch has no meters or no limit is set).
pub fn guard_port(port: u32, meter: Option<u32>) -> FlowMod<'static> {
    guard_flow(port, false, meter)
}

/// A port's LLDP guard: its LLDP frames through a meter of their own, so
/// a link port flooded with other hosts' traffic keeps its probes (and a
/// host flooding LLDP spends only its own port's).
pub fn guard_lldp_port(port: u32, meter: Option<u32>) -> FlowMod<'static> {
    guard_flow(port, true, meter)
}

fn guard_match(port: u32, lldp: bool) -> (u16, Match<'static>) {
    let m = Match::new().with(Oxm::InPort(openflow::PortNo::from(port), None));
    if lldp {
        (
            prio::GUARD_LLDP,
            m.with(Oxm::EthType(crate::lldp::ETH_TYPE_LLDP, None)),
        )
    } else {
        (prio::GUARD, m)
    }
}

fn guard_flow(port: u32, lldp: bool, meter: Option<u32>) -> FlowMod<'static> {
    let mut instructions: openflow::Instructions<'static> = Default::default();
    if let Some(meter_id) = meter {
        instructions.push(openflow::Instruction::Meter { meter_id });
    }
    instructions.push(to_controller());
    let (priority, match_) = guard_match(port, lldp);
    FlowMod {
        cookie: cookie::cookie(Kind::Infra, 4),
        table_id: GUARD_TABLE,
        priority,
        match_,
        instructions,
        ..FlowMod::default()
    }
}

/// A port's guard flows leave (the port was deleted).
pub fn delete_guard(port: u32) -> [FlowMod<'static>; 2] {
    [false, true].map(|lldp| {
        let (priority, match_) = guard_match(port, lldp);
        FlowMod {
            cookie: cookie::cookie(Kind::Infra, 4),
            table_id: GUARD_TABLE,
            command: openflow::FlowModCommand::DeleteStrict,
            priority,
            match_,
            ..FlowMod::default()
        }
    })
}

/// A port's packet meter: at most `pps` packets a second (and as many at
/// once) from that port to the controller.
pub fn port_meter(meter_id: u32, pps: u32) -> Message<'static> {
    Message::MeterMod(openflow::MeterMod {
        command: openflow::MeterModCommand::Add,
        flags: openflow::consts::meter_flags::PKTPS
            | openflow::consts::meter_flags::BURST
            | openflow::consts::meter_flags::STATS,
        meter_id,
        bands: vec![openflow::MeterBand::Drop {
            rate: pps,
            burst_size: pps,
        }],
    })
}

/// The flows that bring traffic towards service `index` to the
/// controller: the first packet of every flow to it (a session request),
/// and for SIP every signalling datagram in both directions.
pub fn service_flows(
    index: u64,
    net: ipnet::Ipv4Net,
    proto: u8,
    port: u16,
    sip: bool,
) -> Vec<FlowMod<'static>> {
    let mask = (net.prefix_len() < 32).then(|| net.netmask());
    let ip = |dst: bool| {
        let m = Match::new().with(Oxm::EthType(0x0800, None));
        let m = if dst {
            m.with(Oxm::Ipv4Dst(net.network(), mask))
        } else {
            m.with(Oxm::Ipv4Src(net.network(), mask))
        };
        m.with(Oxm::IpProto(proto, None))
    };
    let l4 = |m: Match<'static>, dst: bool| match (proto, dst) {
        (6, true) => m.with(Oxm::TcpDst(port, None)),
        (6, false) => m.with(Oxm::TcpSrc(port, None)),
        (17, true) => m.with(Oxm::UdpDst(port, None)),
        (17, false) => m.with(Oxm::UdpSrc(port, None)),
        _ => m,
    };
    let flow = |priority: u16, match_: Match<'static>| FlowMod {
        cookie: cookie::cookie(Kind::Service, index),
        priority,
        match_,
        instructions: [to_guard()].into_iter().collect(),
        ..FlowMod::default()
    };
    let mut v = vec![flow(prio::SERVICE, l4(ip(true), true))];
    if sip {
        v.push(flow(prio::SIGNAL, l4(ip(true), true)));
        v.push(flow(prio::SIGNAL, l4(ip(false), false)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("json")
    }

    #[test]
    fn table_miss_and_lldp_go_through_the_guard_table_to_the_controller() {
        let miss = text(&table_miss());
        assert!(miss.contains(r#""priority":0"#), "{miss}");
        assert!(
            miss.contains(r#"{"type":"GOTO_TABLE","table_id":1}"#),
            "{miss}"
        );
        let guard = text(&guard_port(3, guard_meter_id(3)));
        assert!(
            guard.contains(r#""table_id":1"#)
                && guard.contains(r#"{"field":"in_port","value":3}"#)
                && guard.contains(r#"{"type":"METER","meter_id":1879048195}"#)
                && guard.contains(r#"{"type":"OUTPUT","port":"CONTROLLER","max_len":65535}"#),
            "{guard}"
        );
        assert_eq!(guard_meter_id(0x0100_0000), None);
        let open = text(&guard_miss());
        assert!(
            open.contains(r#""table_id":1"#) && open.contains(r#""priority":0"#),
            "{open}"
        );
        let lldp = text(&lldp_to_controller());
        assert!(lldp.contains(r#""priority":65000"#), "{lldp}");
        assert!(
            lldp.contains(r#"{"field":"eth_type","value":35020}"#),
            "{lldp}"
        );
        assert_eq!(delete_ours().cookie_mask, cookie::NAMESPACE_MASK);
    }

    #[test]
    fn the_controller_meter_counts_packets() {
        let Message::MeterMod(m) = controller_meter(500) else {
            panic!("a meter mod");
        };
        assert_eq!(m.meter_id, 0xffff_fffd);
        assert_ne!(m.flags & openflow::consts::meter_flags::PKTPS, 0);
        assert_eq!(
            m.bands,
            vec![openflow::MeterBand::Drop {
                rate: 500,
                burst_size: 500
            }]
        );
    }

    #[test]
    fn sip_service_catches_signalling_both_ways_above_the_tiers() {
        let net: ipnet::Ipv4Net = "10.0.1.0/24".parse().expect("net");
        let flows = service_flows(3, net, 17, 5060, true);
        assert_eq!(flows.len(), 3);
        let first = text(&flows[0]);
        assert!(first.contains(r#""priority":20000"#), "{first}");
        assert!(
            first.contains(r#"{"field":"ipv4_dst","value":"10.0.1.0","mask":"255.255.255.0"}"#),
            "{first}"
        );
        assert!(
            first.contains(r#"{"field":"udp_dst","value":5060}"#),
            "{first}"
        );
        let back = text(&flows[2]);
        assert!(back.contains(r#""priority":31000"#), "{back}");
        assert!(
            back.contains(r#"{"field":"udp_src","value":5060}"#),
            "{back}"
        );
        assert_eq!(
            cookie::id_of(flows[1].cookie, Kind::Service),
            Some(3),
            "one cookie per service"
        );
        // A host address matches without a mask; a web service has one flow.
        let host: ipnet::Ipv4Net = "10.0.0.101/32".parse().expect("net");
        let web = service_flows(0, host, 6, 80, false);
        assert_eq!(web.len(), 1);
        assert!(text(&web[0]).contains(r#"{"field":"ipv4_dst","value":"10.0.0.101"}"#));
    }
}
