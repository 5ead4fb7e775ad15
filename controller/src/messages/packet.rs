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
        actions: smallvec::smallvec![Action::output(out_port)],
        data: Cow::Borrowed(data),
    }
}

/// The bytes of `packet_out(in_port, out_port, data)` before its frame
/// (header with xid 0, buffer id, in port, the one output action), for a
/// frame of `data_len` bytes; None when the message would be too long.
/// Written by hand: every setup releases its packet with one, and the
/// generic encoder (actions in a vector, the message's length worked out
/// and patched) costs several times more. A test checks the bytes
/// against `openflow::encode`.
pub fn packet_out_head(in_port: u32, out_port: u32, data_len: usize) -> Option<[u8; 40]> {
    const OFP_VERSION: u8 = 4;
    const OFPT_PACKET_OUT: u8 = 13;
    const ACTIONS_LEN: u16 = 16;
    let len = u16::try_from(40 + data_len).ok()?;
    let mut h = [0u8; 40];
    h[0] = OFP_VERSION;
    h[1] = OFPT_PACKET_OUT;
    h[2..4].copy_from_slice(&len.to_be_bytes());
    // 4..8: xid 0.
    h[8..12].copy_from_slice(&openflow::NO_BUFFER.to_be_bytes());
    h[12..16].copy_from_slice(&PortNo::from(in_port).value().to_be_bytes());
    h[16..18].copy_from_slice(&ACTIONS_LEN.to_be_bytes());
    // 18..24: pad. 24..26: OFPAT_OUTPUT (0).
    h[26..28].copy_from_slice(&ACTIONS_LEN.to_be_bytes());
    h[28..32].copy_from_slice(&PortNo::from(out_port).value().to_be_bytes());
    // 32..34: max_len 0; 34..40: pad.
    Some(h)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_packet_out_head_is_the_encoders() {
        for (inp, out, len) in [(1, 2, 60), (0xffff_fffd, 7, 0), (3, 0xffff_fffb, 1500)] {
            let data = vec![0xab; len];
            let mut v = Vec::new();
            openflow::encode(0, &packet_out(inp, out, &data), &mut v).expect("encodes");
            let head = packet_out_head(inp, out, len).expect("fits");
            assert_eq!(&v[..40], &head[..]);
            assert_eq!(&v[40..], &data[..]);
        }
        assert!(packet_out_head(1, 2, 70_000).is_none());
    }
}
