//! The cost of `measured_kbps` for 10,000 live sessions: one poll as the
//! control plane makes it every second. Each of four switches answers one
//! meter-statistics request (OVS splits the answer into parts of at most
//! 64 KiB, ~1,400 meters each); the poll decodes the parts, sums what each
//! meter let through, and turns the counters of both directions of every
//! session into rates. The switches' own time to answer is theirs.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use openflow::multipart::{MeterBandStats, MeterStats, MultipartReplyBody};
use openflow::{Message, MultipartReply};
use std::time::{Duration, Instant};
use tierflow::sessions::SessionId;
use tierflow::sessions::measure::{Passed, Rates, Targets, add_passed};

const SESSIONS: u32 = 10_000;
const SWITCHES: u64 = 4;
/// Meters per reply part: as many 56-byte entries as fit in one
/// message after its 16-byte multipart header.
const PER_PART: usize = (u16::MAX as usize - 16) / 56;

/// Session `i`'s meters are read on two switches: one direction's at
/// switch `i % 4`, the other's at the next one.
fn targets() -> Targets {
    let mut t: Targets = (1..=SWITCHES).map(|d| (d, Vec::new())).collect();
    for i in 0..SESSIONS {
        let first = u64::from(i) % SWITCHES;
        let last = (first + 1) % SWITCHES;
        let id = SessionId(u64::from(i) + 1);
        t[first as usize].1.push((2 * i + 1, id, true));
        t[last as usize].1.push((2 * i + 2, id, false));
    }
    t
}

/// The encoded replies of every switch, counters at `round`.
fn replies(targets: &Targets, round: u64) -> Vec<(u64, Vec<Vec<u8>>)> {
    targets
        .iter()
        .map(|(dpid, meters)| {
            let stats: Vec<MeterStats> = meters
                .iter()
                .map(|&(m, _, _)| MeterStats {
                    meter_id: m,
                    flow_count: 2,
                    packet_in_count: 1000 * round,
                    byte_in_count: 1_000_000 * round + u64::from(m),
                    duration_sec: round as u32,
                    duration_nsec: 0,
                    band_stats: vec![MeterBandStats {
                        packet_band_count: 10 * round,
                        byte_band_count: 10_000 * round,
                    }],
                })
                .collect();
            let chunks: Vec<&[MeterStats]> = stats.chunks(PER_PART).collect();
            let n = chunks.len();
            let parts = chunks
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let msg = Message::MultipartReply(MultipartReply {
                        flags: if i + 1 < n { 1 } else { 0 },
                        body: MultipartReplyBody::Meter(c.to_vec()),
                    });
                    let mut buf = Vec::new();
                    openflow::encode(7, &msg, &mut buf).expect("encodes");
                    buf
                })
                .collect();
            (*dpid, parts)
        })
        .collect()
}

/// One poll: decode every part, sum, rate.
fn poll(
    rates: &mut Rates,
    targets: &Targets,
    replies: &[(u64, Vec<Vec<u8>>)],
    now: Instant,
) -> usize {
    let mut passed = Passed::default();
    for (dpid, parts) in replies {
        for bytes in parts {
            if let Ok((_, Message::MultipartReply(r))) = openflow::decode(bytes) {
                add_passed(*dpid, &r.body, &mut passed);
            }
        }
    }
    rates.poll(targets, &passed, now).len()
}

fn bench(c: &mut Criterion) {
    let targets = targets();
    let before = replies(&targets, 1);
    let after = replies(&targets, 2);
    let bytes: usize = after.iter().flat_map(|(_, p)| p).map(Vec::len).sum();
    let mut g = c.benchmark_group("measure");
    g.throughput(Throughput::Elements(u64::from(SESSIONS)));
    g.bench_function("poll_10k_sessions_4_switches", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut rates = Rates::default();
                let t0 = Instant::now();
                poll(&mut rates, &targets, &before, t0);
                let start = Instant::now();
                let n = poll(
                    &mut rates,
                    &targets,
                    black_box(&after),
                    t0 + Duration::from_secs(1),
                );
                total += start.elapsed();
                assert_eq!(n, SESSIONS as usize);
            }
            total
        })
    });
    g.finish();
    println!("replies: {bytes} bytes from {SWITCHES} switches per poll");
}

criterion_group!(benches, bench);
criterion_main!(benches);
