//! A loop driver for profilers (`valgrind --tool=callgrind`, `perf`):
//! `profile_codec decode|encode N` decodes a 128-byte PACKET_IN or encodes
//! a tier FLOW_MOD N times. Instruction counts from callgrind are
//! repeatable where wall-clock benchmarks on a shared machine are not.

use openflow::{Match, Message, Oxm, PacketIn, PortNo};
use std::borrow::Cow;
use std::hint::black_box;

#[path = "support/tier_flow.rs"]
mod tier_flow;
use tier_flow::tier_flow_mod;

fn packet_in_128() -> Vec<u8> {
    let frame = [0x5au8; 86];
    let pi = PacketIn {
        buffer_id: openflow::NO_BUFFER,
        total_len: 86,
        reason: openflow::PacketInReason::NoMatch,
        table_id: 0,
        cookie: u64::MAX,
        match_: Match::new().with(Oxm::InPort(PortNo::from(3), None)),
        data: Cow::Borrowed(&frame),
    };
    let bytes = openflow::to_vec(9, &Message::PacketIn(pi)).unwrap_or_default();
    assert_eq!(bytes.len(), 128);
    bytes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut acc = 0u64;
    match what.as_str() {
        "decode" => {
            let bytes = packet_in_128();
            for _ in 0..n {
                if let Ok((h, Message::PacketIn(pi))) = openflow::decode(black_box(&bytes)) {
                    acc += u64::from(h.xid)
                        + u64::from(pi.match_.in_port().unwrap_or(0))
                        + pi.data.len() as u64;
                }
            }
        }
        "encode" => {
            // Encoded as a `Body` on its own, as the controller sends it.
            let msg = tier_flow_mod();
            let mut buf = Vec::with_capacity(4096);
            for i in 0..n {
                buf.clear();
                acc += openflow::encode(i as u32, black_box(&msg), &mut buf).unwrap_or(0) as u64;
            }
        }
        _ => {
            eprintln!("usage: profile_codec decode|encode N");
            std::process::exit(2);
        }
    }
    println!("{acc}");
}
