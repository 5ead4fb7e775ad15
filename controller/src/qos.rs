//! What a tier asks of a meter, in numbers: the rate and the bucket a
//! session's meter gets in each state. Pure: the messages that carry
//! them are built in `messages`, the session table decides when.

use tierflow_api::model::{SessionState, Tier};

/// The meter rate and burst (kbit/s, kbit) a session's state calls for.
/// On hold the burst shrinks with the rate, so a held call's bandwidth
/// falls to the hold rate within a second rather than after a tier-sized
/// burst.
pub fn rate_of(tier: &Tier, state: SessionState) -> (u32, u32) {
    match state {
        SessionState::Hold => (
            tier.hold_rate_kbps,
            tier.burst_kbits.min(tier.hold_rate_kbps.max(16)),
        ),
        _ => (tier.rate_kbps, tier.burst_kbits),
    }
}
