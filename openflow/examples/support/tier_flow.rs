//! The FLOW_MOD a tier installs for one direction of a session, shared by
//! the codec's benchmark, its zero-allocation test and the examples (one
//! definition, included with `#[path]`): a five-field match, the session's
//! meter, DSCP marking, the tier's queue, the output port and a copy to a
//! call-recording port.

use openflow::{Action, FlowMod, Instruction, Match, Oxm, PortNo};
use std::net::Ipv4Addr;

pub fn tier_flow_mod() -> FlowMod<'static> {
    FlowMod {
        cookie: 0x7466_0300_0000_0001,
        priority: 40_000,
        idle_timeout: 60,
        match_: Match::new()
            .with(Oxm::InPort(PortNo::from(1), None))
            .with(Oxm::EthType(0x0800, None))
            .with(Oxm::IpProto(17, None))
            .with(Oxm::Ipv4Src(Ipv4Addr::new(10, 0, 0, 1), None))
            .with(Oxm::UdpDst(5060, None)),
        instructions: [
            Instruction::Meter { meter_id: 7 },
            Instruction::ApplyActions {
                actions: [
                    Action::SetField {
                        field: Oxm::IpDscp(46, None),
                    },
                    Action::SetQueue { queue_id: 1 },
                    Action::output(2),
                    Action::output(3),
                ]
                .into_iter()
                .collect(),
            },
        ]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    }
}
