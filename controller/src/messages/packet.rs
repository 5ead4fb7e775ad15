//! Packet-outs: a packet released along its path, floods to edge ports,
//! LLDP probes.

use openflow::{Action, Actions, MacAddr, PacketOut, PortNo};
use std::borrow::Cow;

/// Sends `data` out of `out_port`, as if it came in on `in_port`
/// (`PortNo::Controller` when it came from elsewhere).
pub fn packet_out(in_port: u32, out_port: u32, data: &[u8]) -> PacketOut<'_> {
    PacketOut {
        buffer_id: openflow::NO_BUFFER,
        in_port: PortNo::from(in_port),
        actions: [Action::output(out_port)].into_iter().collect(),
        data: Cow::Borrowed(data),
    }
}

/// Sends `data` out of each of `ports`.
pub fn flood_out<'a>(
    in_port: u32,
    ports: impl IntoIterator<Item = u32>,
    data: &'a [u8],
) -> PacketOut<'a> {
    let actions: Actions<'a> = ports.into_iter().map(Action::output).collect();
    PacketOut {
        buffer_id: openflow::NO_BUFFER,
        in_port: PortNo::from(in_port),
        actions,
        data: Cow::Borrowed(data),
    }
}

/// The LLDP probe of `port` of switch `dpid` (whose address is `mac`),
/// signed with `key` at `now_ms`.
pub fn probe_out(
    key: &crate::lldp::Key,
    dpid: u64,
    port: u32,
    mac: MacAddr,
    now_ms: u64,
) -> PacketOut<'static> {
    let frame = crate::lldp::probe(key, dpid, port, mac, now_ms);
    PacketOut {
        buffer_id: openflow::NO_BUFFER,
        in_port: PortNo::Controller,
        actions: [Action::output(port)].into_iter().collect(),
        data: Cow::Owned(frame.to_vec()),
    }
}
