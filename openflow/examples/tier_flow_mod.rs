//! Writes to stdout the FLOW_MOD a tier installs for one session direction:
//! match the session's 5-tuple, meter it, mark DSCP, pick the tier's queue,
//! forward. Used by the demo to show Open vSwitch decoding Tierflow's bytes.

use openflow::{Action, FlowMod, Instruction, Match, Oxm, PortNo};
use std::io::Write;
use std::net::Ipv4Addr;

fn main() -> std::io::Result<()> {
    let flow = FlowMod {
        cookie: 0x7466_0000_0000_0001,
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
                ]
                .into_iter()
                .collect(),
            },
        ]
        .into_iter()
        .collect(),
        ..FlowMod::default()
    };
    let bytes = openflow::to_vec(7, &flow).map_err(std::io::Error::other)?;
    std::io::stdout().write_all(&bytes)
}
