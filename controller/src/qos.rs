//! What a tier asks of a session's meters, in numbers: the rate and the
//! bucket of each direction's meter in each state. Pure: the messages
//! that carry them are built in `messages`, the session table decides
//! when.
//!
//! The bucket is sized from the rate, not taken from `burst_kbits` alone:
//! OVS's userspace meters are token buckets that drop, and TCP through a
//! bucket of a tenth of a second of the rate gets about half of it
//! (PRODUCT.md, environment facts). Measured on a chain of four switches
//! (iperf3, 10 s, 0.5 to 50 Mbit/s, BENCHMARKS.md "Meter buckets"): below
//! 0.2 s of the rate goodput falls off a cliff (0.15 s: 0.70-0.78 at
//! every rate), because a bucket smaller than TCP's least retransmission
//! timeout (200 ms) overflows while the sender waits one out; above it
//! the sender overshoots (iperf3's sender figure at 0.25 s: 1.10-1.18 of
//! the rate below 10 Mbit/s, at 0.5 s 1.15-1.28). A fifth of a second is
//! where both hold: the sender's figure 0.98-1.12, the receiver's
//! 0.87-0.96.

use tierflow_api::model::{SessionState, Tier};

/// Milliseconds of the rate a meter's bucket holds (unless the tier's
/// `burst_kbits` asks for more).
const BUCKET_MS: u64 = 200;

/// Milliseconds of the rate a held session's buckets hold: a TCP session
/// put on hold meets a rate a hundred times below its window, and half a
/// second keeps it trickling at 0.82-0.98 of the hold rate instead of
/// timing out (BENCHMARKS.md "Hold and resume").
const HOLD_BUCKET_MS: u64 = 500;

/// The least bucket: two full Ethernet frames (2 × 1514 bytes), so a
/// low rate never drops a frame for being a frame.
pub const MIN_BUCKET_KBITS: u32 = 25;

/// One meter's setting: a DROP band at `rate_kbps` with a bucket of
/// `bucket_kbits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    pub rate_kbps: u32,
    pub bucket_kbits: u32,
}

/// The bucket for `rate_kbps`: a fifth of a second of the rate, never
/// below the operator's `burst_kbits` nor two frames.
pub fn bucket_kbits(rate_kbps: u32, burst_kbits: u32) -> u32 {
    bucket_of(rate_kbps, BUCKET_MS).max(burst_kbits)
}

/// The bucket of a held session's meter at `rate_kbps`: half a second of
/// it, never below two frames.
pub fn hold_bucket_kbits(rate_kbps: u32) -> u32 {
    bucket_of(rate_kbps, HOLD_BUCKET_MS)
}

fn bucket_of(rate_kbps: u32, ms: u64) -> u32 {
    u32::try_from(u64::from(rate_kbps) * ms / 1000)
        .unwrap_or(u32::MAX)
        .max(MIN_BUCKET_KBITS)
}

/// Which way a held call's media still runs: music on hold, or the
/// held party still talking to a recorder. Set by the SDP that held it
/// (`a=sendonly` from one side); CTI, idle media and `a=inactive` hold
/// both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keeps {
    #[default]
    Neither,
    /// Client (caller) to server.
    ToServer,
    /// Server to client (caller).
    ToClient,
}

/// A session's two meters, `[to_server, to_client]`, in `state`. On
/// hold each direction falls to `hold_rate_kbps`, except the one a call
/// keeps (`keeps`), which gets what its codec needs on the wire
/// (`need_kbps`: G.711 when unknown) but never more than the tier's own
/// rate, and never less than the hold rate.
pub fn meters(
    tier: &Tier,
    state: SessionState,
    keeps: Keeps,
    need_kbps: Option<u32>,
) -> [Meter; 2] {
    let active = Meter {
        rate_kbps: tier.rate_kbps,
        bucket_kbits: bucket_kbits(tier.rate_kbps, tier.burst_kbits),
    };
    if state != SessionState::Hold {
        return [active; 2];
    }
    // The operator's burst is for the tier's rate: a held session's
    // bucket shrinks with its rate, so the hold takes effect within half
    // a second rather than after a tier-sized burst.
    let held = Meter {
        rate_kbps: tier.hold_rate_kbps,
        bucket_kbits: hold_bucket_kbits(tier.hold_rate_kbps),
    };
    let media = {
        let rate = need_kbps
            .unwrap_or(G711_KBPS)
            .min(tier.rate_kbps)
            .max(tier.hold_rate_kbps);
        Meter {
            rate_kbps: rate,
            bucket_kbits: hold_bucket_kbits(rate),
        }
    };
    match keeps {
        Keeps::Neither => [held; 2],
        Keeps::ToServer => [media, held],
        Keeps::ToClient => [held, media],
    }
}

/// G.711 at 20 ms on Ethernet (`codec::OVERHEAD_BYTES`), the need
/// assumed for a call whose SDP names no codec Tierflow can size.
pub const G711_KBPS: u32 = 88;

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(rate: u32, burst: u32, hold: u32) -> Tier {
        Tier {
            name: "t".into(),
            min_benefit: 0.0,
            rate_kbps: rate,
            burst_kbits: burst,
            dscp: 0,
            queue_id: 0,
            queue_min_kbps: 0,
            hold_rate_kbps: hold,
        }
    }

    fn show(m: [Meter; 2]) -> String {
        format!(
            "to_server rate={} bucket={} to_client rate={} bucket={}",
            m[0].rate_kbps, m[0].bucket_kbits, m[1].rate_kbps, m[1].bucket_kbits
        )
    }

    #[test]
    fn buckets_hold_a_fifth_of_a_second_of_the_rate_or_the_operators_burst() {
        // The tiers: a tenth of a second of burst gets a fifth.
        assert_eq!(bucket_kbits(3000, 300), 600);
        assert_eq!(bucket_kbits(1000, 100), 200);
        assert_eq!(bucket_kbits(100_000, 10_000), 20_000);
        // No burst given.
        assert_eq!(bucket_kbits(50_000, 0), 10_000);
        // A larger burst is the operator's floor.
        assert_eq!(bucket_kbits(2000, 4000), 4000);
        // Two frames at least; no overflow at the top.
        assert_eq!(bucket_kbits(16, 0), MIN_BUCKET_KBITS);
        assert_eq!(bucket_kbits(u32::MAX, 0), u32::MAX / 5);
        // Held: half a second of the hold rate, whatever the burst.
        assert_eq!(hold_bucket_kbits(1000), 500);
        assert_eq!(hold_bucket_kbits(16), MIN_BUCKET_KBITS);
    }

    #[test]
    fn active_sessions_get_the_tier_both_ways() {
        let t = tier(20_000, 2000, 1000);
        assert_eq!(
            show(meters(&t, SessionState::Active, Keeps::ToClient, Some(88))),
            "to_server rate=20000 bucket=4000 to_client rate=20000 bucket=4000"
        );
    }

    #[test]
    fn hold_slows_both_ways_with_a_bucket_of_the_hold_rate() {
        let t = tier(20_000, 2000, 1000);
        assert_eq!(
            show(meters(&t, SessionState::Hold, Keeps::Neither, None)),
            "to_server rate=1000 bucket=500 to_client rate=1000 bucket=500"
        );
        let t = tier(20_000, 2000, 100);
        assert_eq!(
            show(meters(&t, SessionState::Hold, Keeps::Neither, Some(88))),
            "to_server rate=100 bucket=50 to_client rate=100 bucket=50"
        );
    }

    #[test]
    fn music_on_hold_keeps_its_codecs_rate_one_way() {
        let t = tier(2000, 200, 16);
        assert_eq!(
            show(meters(&t, SessionState::Hold, Keeps::ToClient, Some(88))),
            "to_server rate=16 bucket=25 to_client rate=88 bucket=44"
        );
        assert_eq!(
            show(meters(&t, SessionState::Hold, Keeps::ToServer, None)),
            "to_server rate=88 bucket=44 to_client rate=16 bucket=25"
        );
        // Never above the tier's own rate, never below its hold rate.
        let t = tier(64, 100, 16);
        assert_eq!(
            meters(&t, SessionState::Hold, Keeps::ToClient, Some(88))[1].rate_kbps,
            64
        );
        let t = tier(2000, 200, 500);
        assert_eq!(
            meters(&t, SessionState::Hold, Keeps::ToClient, Some(88))[1].rate_kbps,
            500
        );
    }
}
