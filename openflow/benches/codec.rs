//! Criterion benchmarks of the codec's hot paths: decoding the PACKET_IN
//! Open vSwitch sends for a table miss, encoding the FLOW_MOD a tier
//! installs, PACKET_OUT and BARRIER encoding, and splitting PACKET_INs off a
//! connection's read buffer. Targets: >= 10 M decodes/s and >= 10 M
//! encodes/s on one core.

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use openflow::{Action, Body, Message, NO_BUFFER, PacketOut, PortNo, decode, encode, framing};
use std::borrow::Cow;
use std::hint::black_box;
use std::net::Ipv4Addr;

/// The whole PACKET_IN is 128 bytes, as a switch truncating to a
/// 128-byte budget would send it.
const PACKET_IN_LEN: usize = 128;
/// Header (8) + buffer_id, total_len, reason, table_id, cookie (16) + match
/// with in_port (16, padded) + 2 pad bytes: what precedes the frame.
const PACKET_IN_FIXED: usize = 8 + 16 + 16 + 2;
const FRAME_LEN: usize = PACKET_IN_LEN - PACKET_IN_FIXED;

const SIP_INVITE: &[u8] = b"INVITE sip:bob@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@10.0.0.2>\r\n\
From: Alice <sip:alice@10.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1:5060>\r\n\
Content-Length: 0\r\n\r\n";

#[path = "../examples/support/tier_flow.rs"]
mod tier_flow;
use tier_flow::tier_flow_mod;

fn ipv4_checksum(header: &[u8]) -> u16 {
    let sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    !(((folded & 0xffff) + (folded >> 16)) as u16)
}

/// A complete Ethernet/IPv4/UDP datagram carrying a SIP INVITE from
/// 10.0.0.1:5060 to 10.0.0.2:5060, with a valid IPv4 header checksum.
fn sip_invite_frame() -> Vec<u8> {
    let udp_len = 8 + SIP_INVITE.len();
    let ip_len = 20 + udp_len;
    let mut ip = vec![
        0x45, 0x00, // version 4, IHL 5; DSCP 0
    ];
    ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
    ip.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, 17, 0, 0]);
    ip.extend_from_slice(&Ipv4Addr::new(10, 0, 0, 1).octets());
    ip.extend_from_slice(&Ipv4Addr::new(10, 0, 0, 2).octets());
    let csum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());

    let mut frame = vec![
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // eth_dst
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // eth_src
        0x08, 0x00, // IPv4
    ];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&5060u16.to_be_bytes());
    frame.extend_from_slice(&5060u16.to_be_bytes());
    frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
    // A zero UDP checksum means "none" over IPv4.
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(SIP_INVITE);
    frame
}

/// A table-miss PACKET_IN as Open vSwitch sends it: not buffered,
/// `total_len` the whole datagram, a match holding only `in_port`, and the
/// frame cut so that the message is [`PACKET_IN_LEN`] bytes.
fn packet_in_bytes(xid: u32, in_port: u32) -> Vec<u8> {
    let frame = sip_invite_frame();
    let mut m = Vec::with_capacity(PACKET_IN_LEN);
    m.extend_from_slice(&[0x04, 10]); // OFP 1.3, PACKET_IN
    m.extend_from_slice(&(PACKET_IN_LEN as u16).to_be_bytes());
    m.extend_from_slice(&xid.to_be_bytes());
    m.extend_from_slice(&NO_BUFFER.to_be_bytes());
    m.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    m.push(0); // OFPR_NO_MATCH
    m.push(0); // table 0
    m.extend_from_slice(&u64::MAX.to_be_bytes()); // cookie of the table-miss flow
    m.extend_from_slice(&[0x00, 0x01, 0x00, 0x0c]); // OXM match, length 12
    m.extend_from_slice(&[0x80, 0x00, 0x00, 0x04]); // OXM in_port, 4 bytes
    m.extend_from_slice(&in_port.to_be_bytes());
    m.extend_from_slice(&[0; 4]); // match padding to 16
    m.extend_from_slice(&[0; 2]);
    m.extend_from_slice(&frame[..FRAME_LEN]);
    assert_eq!(m.len(), PACKET_IN_LEN);
    m
}

fn packet_out(frame: &[u8]) -> Message<'_> {
    Message::PacketOut(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: PortNo::from(1),
        actions: [Action::output(2)].into_iter().collect(),
        data: Cow::Borrowed(frame),
    })
}

/// How many PACKET_INs one read buffer holds in the framing benchmark
/// (8 KiB, a typical socket read).
const FRAMES_PER_READ: usize = 64;

fn bench_decode(c: &mut Criterion) {
    let pkt = packet_in_bytes(0x1234_5678, 1);
    // Fail loudly rather than time an error path.
    match decode(&pkt) {
        Ok((_, Message::PacketIn(p))) => {
            assert_eq!(p.match_.in_port(), Some(1));
            assert_eq!(p.data.len(), FRAME_LEN);
        }
        other => panic!("benchmark input does not decode to a PACKET_IN: {other:?}"),
    }
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("packet_in_128B", |b| {
        b.iter(|| match decode(black_box(&pkt)) {
            Ok((h, Message::PacketIn(p))) => {
                black_box((h.xid, p.match_.in_port(), &*p.data));
            }
            _ => unreachable!(),
        })
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let flow_mod = tier_flow_mod();
    let frame = sip_invite_frame();
    let pkt_out = packet_out(&frame[..FRAME_LEN]);
    let barrier = Message::BarrierRequest;

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));

    let mut vec_buf: Vec<u8> = Vec::with_capacity(4096);
    g.bench_function("flow_mod_5match_4actions_meter", |b| {
        b.iter(|| {
            vec_buf.clear();
            let n = encode(black_box(7), black_box(&flow_mod), &mut vec_buf).ok();
            black_box((n, vec_buf.as_slice()));
        })
    });
    assert_eq!(vec_buf.len(), flow_mod.buffer_len());

    let mut bytes_buf = BytesMut::with_capacity(4096);
    g.bench_function("flow_mod_5match_4actions_meter_bytesmut", |b| {
        b.iter(|| {
            bytes_buf.clear();
            let n = encode(black_box(7), black_box(&flow_mod), &mut bytes_buf).ok();
            black_box((n, &bytes_buf[..]));
        })
    });

    g.bench_function("packet_out_86B_frame", |b| {
        b.iter(|| {
            vec_buf.clear();
            let n = encode(black_box(8), black_box(&pkt_out), &mut vec_buf).ok();
            black_box((n, vec_buf.as_slice()));
        })
    });

    g.bench_function("barrier_request", |b| {
        b.iter(|| {
            vec_buf.clear();
            let n = encode(black_box(9), black_box(&barrier), &mut vec_buf).ok();
            black_box((n, vec_buf.as_slice()));
        })
    });
    g.finish();
}

fn bench_framing(c: &mut Criterion) {
    let stream: Vec<u8> = (0..FRAMES_PER_READ as u32)
        .flat_map(|i| packet_in_bytes(i, 1 + i % 4))
        .collect();

    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(FRAMES_PER_READ as u64));
    // Refilling the read buffer is setup, not timed: only the splitting
    // (and, in the second benchmark, decoding) of each frame is.
    g.bench_function("next_frame_64x_packet_in", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut n = 0usize;
                while let Ok(Some(frame)) = framing::next_frame(buf) {
                    n += frame.len();
                    black_box(&frame);
                }
                assert_eq!(n, stream.len());
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("next_frame_and_decode_64x_packet_in", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                while let Ok(Some(frame)) = framing::next_frame(buf) {
                    match decode(&frame) {
                        Ok((_, Message::PacketIn(p))) => {
                            black_box((p.match_.in_port(), &*p.data));
                        }
                        _ => unreachable!(),
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode, bench_framing);
criterion_main!(benches);
