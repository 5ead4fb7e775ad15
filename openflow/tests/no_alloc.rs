//! Checks that the codec's hot paths make no heap allocation at all:
//! decoding a 128-byte PACKET_IN (and reading its `in_port` and frame),
//! encoding a tier FLOW_MOD, a PACKET_OUT and a BARRIER into reserved
//! buffers, and splitting + decoding PACKET_INs off a filled `BytesMut`.
//! Allocations are counted by dhat's heap profiler in testing mode; a
//! control window that does allocate proves the counter is live.
//!
//! dhat allows one profiler per process, so everything is one `#[test]`.

use bytes::BytesMut;
use openflow::{Action, Message, NO_BUFFER, PacketOut, PortNo, decode, encode, framing};
use std::borrow::Cow;
use std::hint::black_box;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Iterations per measured path: enough that a per-message allocation
/// anywhere would show as N blocks, not a rounding error.
const N: u64 = 1000;
const PACKET_IN_LEN: usize = 128;
const FRAME_LEN: usize = PACKET_IN_LEN - (8 + 16 + 16 + 2);
const IN_PORT: u32 = 3;

/// A 128-byte table-miss PACKET_IN as Open vSwitch sends it: NO_BUFFER,
/// reason NO_MATCH, table 0, a match with only `in_port`, then the start
/// of an Ethernet/IPv4/UDP frame carrying a SIP INVITE.
#[path = "../examples/support/tier_flow.rs"]
mod tier_flow;

fn tier_flow_mod() -> Message<'static> {
    Message::from(tier_flow::tier_flow_mod())
}

fn packet_in_bytes(xid: u32) -> Vec<u8> {
    let sip = b"INVITE sip:bob@10.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060\r\n";
    let mut frame = vec![
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
    ];
    let ip_len = (20 + 8 + sip.len()) as u16;
    frame.extend_from_slice(&[0x45, 0x00]);
    frame.extend_from_slice(&ip_len.to_be_bytes());
    frame.extend_from_slice(&[
        0x1c, 0x46, 0x40, 0x00, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    frame.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4]);
    frame.extend_from_slice(&(ip_len - 20).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(sip);

    let mut m = vec![0x04, 10];
    m.extend_from_slice(&(PACKET_IN_LEN as u16).to_be_bytes());
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&NO_BUFFER.to_be_bytes());
    m.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&u64::MAX.to_be_bytes());
    m.extend_from_slice(&[0x00, 0x01, 0x00, 0x0c, 0x80, 0x00, 0x00, 0x04]);
    m.extend_from_slice(&IN_PORT.to_be_bytes());
    m.extend_from_slice(&[0; 6]);
    m.extend_from_slice(
        frame
            .get(..FRAME_LEN)
            .expect("frame shorter than the message"),
    );
    assert_eq!(m.len(), PACKET_IN_LEN);
    m
}

fn total_blocks() -> u64 {
    dhat::HeapStats::get().total_blocks
}

/// Heap blocks allocated while running `f`.
fn blocks_during(f: impl FnOnce()) -> u64 {
    let before = total_blocks();
    f();
    total_blocks() - before
}

#[test]
fn hot_paths_do_not_allocate() {
    let _profiler = dhat::Profiler::builder()
        .testing()
        .file_name(concat!(
            env!("CARGO_TARGET_TMPDIR"),
            "/no_alloc-dhat-heap.json"
        ))
        .build();

    // Inputs and buffers are built before any window opens.
    let pkt_in = packet_in_bytes(0x1234_5678);
    let flow_mod = tier_flow_mod();
    let frame = pkt_in.get(PACKET_IN_LEN - FRAME_LEN..).expect("frame");
    let pkt_out = Message::PacketOut(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: PortNo::from(IN_PORT),
        actions: [Action::output(2)].into_iter().collect(),
        data: Cow::Borrowed(frame),
    });
    let barrier = Message::BarrierRequest;
    let mut out_vec: Vec<u8> = Vec::with_capacity(4096);
    let mut out_bytes = BytesMut::with_capacity(4096);
    let mut read_buf = BytesMut::with_capacity((N as usize + 1) * PACKET_IN_LEN);
    for xid in 0..=N as u32 {
        read_buf.extend_from_slice(&packet_in_bytes(xid));
    }
    // The first split of a Vec-backed BytesMut allocates bytes' shared
    // header, once per buffer (not per message): take it outside the
    // window, and check it is indeed at most that one block.
    let first_split = blocks_during(|| {
        let f = framing::next_frame(&mut read_buf);
        assert!(matches!(f, Ok(Some(ref b)) if b.len() == PACKET_IN_LEN));
    });

    let control = blocks_during(|| {
        black_box(Vec::<u8>::with_capacity(16));
    });

    let mut in_port_sum = 0u64;
    let mut data_len_sum = 0usize;
    let decode_blocks = blocks_during(|| {
        for _ in 0..N {
            match decode(black_box(&pkt_in)) {
                Ok((_, Message::PacketIn(p))) => {
                    in_port_sum += u64::from(p.match_.in_port().unwrap_or(0));
                    data_len_sum += black_box(&*p.data).len();
                }
                _ => in_port_sum = u64::MAX,
            }
        }
    });
    assert_eq!(in_port_sum, N * u64::from(IN_PORT));
    assert_eq!(data_len_sum, N as usize * FRAME_LEN);

    let mut encoded = 0usize;
    let flow_mod_blocks = blocks_during(|| {
        for xid in 0..N as u32 {
            out_vec.clear();
            encoded += encode(xid, black_box(&flow_mod), &mut out_vec).unwrap_or(0);
        }
    });
    assert_eq!(encoded, N as usize * flow_mod.buffer_len());
    assert_eq!(out_vec.len(), flow_mod.buffer_len());

    let mut encoded = 0usize;
    let flow_mod_bytes_blocks = blocks_during(|| {
        for xid in 0..N as u32 {
            out_bytes.clear();
            encoded += encode(xid, black_box(&flow_mod), &mut out_bytes).unwrap_or(0);
        }
    });
    assert_eq!(encoded, N as usize * flow_mod.buffer_len());

    let mut encoded = 0usize;
    let packet_out_blocks = blocks_during(|| {
        for xid in 0..N as u32 {
            out_vec.clear();
            encoded += encode(xid, black_box(&pkt_out), &mut out_vec).unwrap_or(0);
        }
    });
    assert_eq!(encoded, N as usize * (8 + 16 + 16 + FRAME_LEN));

    let mut encoded = 0usize;
    let barrier_blocks = blocks_during(|| {
        for xid in 0..N as u32 {
            out_vec.clear();
            encoded += encode(xid, black_box(&barrier), &mut out_vec).unwrap_or(0);
        }
    });
    assert_eq!(encoded, N as usize * 8);

    let mut frames = 0u64;
    let mut xid_sum = 0u64;
    let framing_blocks = blocks_during(|| {
        while let Ok(Some(bytes)) = framing::next_frame(&mut read_buf) {
            frames += 1;
            if let Ok((h, Message::PacketIn(p))) = decode(&bytes) {
                xid_sum += u64::from(h.xid);
                data_len_sum += p.data.len();
            }
        }
    });
    assert_eq!(frames, N);
    assert_eq!(xid_sum, (1..=N).sum::<u64>());
    assert!(read_buf.is_empty());
    assert_eq!(data_len_sum, 2 * N as usize * FRAME_LEN);

    let measured = [
        ("control Vec::with_capacity(16)", control),
        ("decode PACKET_IN + in_port + data", decode_blocks),
        ("encode FLOW_MOD into Vec", flow_mod_blocks),
        ("encode FLOW_MOD into BytesMut", flow_mod_bytes_blocks),
        ("encode PACKET_OUT", packet_out_blocks),
        ("encode BARRIER", barrier_blocks),
        ("next_frame + decode", framing_blocks),
    ];
    let expected = [
        ("control Vec::with_capacity(16)", 1),
        ("decode PACKET_IN + in_port + data", 0),
        ("encode FLOW_MOD into Vec", 0),
        ("encode FLOW_MOD into BytesMut", 0),
        ("encode PACKET_OUT", 0),
        ("encode BARRIER", 0),
        ("next_frame + decode", 0),
    ];
    dhat::assert!(first_split <= 1, "first split allocated {first_split}");
    dhat::assert_eq!(measured, expected);
}
