//! Every OpenFlow message the controller sends is built here, by pure
//! functions: the cookie namespace, every flow priority, the
//! infrastructure flows put on a switch when it connects, the service
//! catch flows, plain path flows, a tier's meters and flows, and the
//! packet-outs, and what VLANs and routing do to all of them (`vlan`:
//! tags pushed, popped and changed, the routing rewrite). Deciding modules (forwarding, sessions) call these and put
//! what they return into a [`Plan`](crate::plan::Plan); the installer
//! sends plans. Nothing here knows which switch a message goes to, when,
//! or why; nothing here sends.
//!
//! The tests read like `ovs-ofctl dump-flows`: each builder's output is
//! checked field by field as a switch would print it.

pub mod cookie;
mod infra;
mod packet;
mod path;
mod tier;
mod vlan;

pub use infra::{
    LLDP_PPS_PER_PORT, controller_meter, delete_guard, delete_ours, guard_lldp_port,
    guard_meter_id, guard_miss, guard_port, lldp_guard_meter_id, lldp_to_controller, port_meter,
    role_request, service_flows, set_config, table_miss,
};
pub use packet::{flood_out, packet_out, packet_out_head, probe_out};
pub use path::{PATH_FLOW_LEN, delete_path, path_flow};
pub use tier::{
    Dir, FlowSpec, SessionKey, delete_media, delete_meter, delete_session, media_flow, meter,
    session_flow, untiered_flow,
};
pub use vlan::{
    carried_packet_out, carry, hop_actions, routed_path_flow, tag_actions, vlan_flood_out,
    vlan_path_flow,
};

/// A BARRIER_REQUEST with xid 0, as `openflow::encode` writes it (a test
/// checks): the installer follows every gated send with one, so it copies
/// these bytes and sets the xid instead of encoding the message each
/// time.
pub const BARRIER_REQUEST: [u8; openflow::HEADER_LEN] = [4, 20, 0, 8, 0, 0, 0, 0];

/// Every flow priority Tierflow uses, highest first. One table, so the
/// order that makes tiers win is visible in one place.
pub mod prio {
    /// LLDP to the controller: above everything, so discovery never
    /// depends on what else a switch holds.
    pub const LLDP: u16 = 65_000;
    /// SIP signalling copied to the controller: above the tier flows, so a
    /// caller's re-INVITE still reaches the controller during the call.
    pub const SIGNAL: u16 = 31_000;
    /// Tier flows: above plain forwarding, the service catch and any QoS
    /// flow another application is likely to have installed, so a
    /// session's tier replaces whatever QoS the switch applied before.
    pub const SESSION: u16 = 30_000;
    /// First packet of any flow towards a service goes to the controller,
    /// even when a plain forwarding flow between the two hosts exists.
    pub const SERVICE: u16 = 20_000;
    /// Shortest-path forwarding ("plain forwarding"); tier flows sit above.
    pub const PATH: u16 = 10;
    /// Table miss: everything else goes to the controller.
    pub const MISS: u16 = 0;
    /// In the guard table: a port's packets to the controller, through
    /// that port's meter (above the guard table's own miss).
    pub const GUARD: u16 = 100;
    /// In the guard table: a port's LLDP frames, through their own meter.
    pub const GUARD_LLDP: u16 = 110;
}

/// The table every packet bound for the controller goes through: one
/// flow per switch port, each with the port's own packet meter, so a host
/// flooding its port spends its port's budget and nothing else (the LLDP
/// probes on the other ports, the other hosts' session requests).
pub const GUARD_TABLE: u8 = 1;

/// To the controller through the guard table.
fn to_guard() -> openflow::Instruction<'static> {
    openflow::Instruction::GotoTable {
        table_id: GUARD_TABLE,
    }
}

/// Output-to-controller as one instruction (whole packet, unbuffered).
fn to_controller() -> openflow::Instruction<'static> {
    openflow::Instruction::ApplyActions {
        actions: [openflow::Action::Output {
            port: openflow::PortNo::Controller,
            max_len: openflow::CML_NO_BUFFER,
        }]
        .into_iter()
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::prio;

    #[test]
    fn the_barrier_request_bytes_are_the_encoders() {
        let mut v = Vec::new();
        openflow::encode(0, &openflow::Message::BarrierRequest, &mut v).expect("encodes");
        assert_eq!(v, super::BARRIER_REQUEST);
    }

    #[test]
    fn priorities_order_tiers_above_everything_but_signalling_and_lldp() {
        let order = [
            prio::LLDP,
            prio::SIGNAL,
            prio::SESSION,
            prio::SERVICE,
            prio::PATH,
            prio::MISS,
        ];
        assert!(order.windows(2).all(|w| w[0] > w[1]), "{order:?}");
    }
}
