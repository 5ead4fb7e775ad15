//! Idle-media hold detection, the deciding half: from the bytes each
//! voice session's flows counted at each poll, which calls go on hold and
//! which resume. The polling itself (flow statistics read from the
//! switches, one request per switch and flow kind) is the control
//! plane's; this module holds the per-session counters between polls and
//! the rules. Pure: the clock is passed in.
//!
//! The rules that keep it from fighting SIP and CTI: it resumes only holds
//! it set itself, and it puts a call on hold only after the media was
//! below the threshold for the whole `idle_after_ms` *and* that long has
//! passed since anyone last changed the call's state (so a call SIP or
//! CTI resumed a moment ago is not put straight back on hold while its
//! media restarts).

use super::Sessions;
use super::record::{HoldCause, SessionId};
use crate::config::HoldConfig;
use crate::messages::cookie::Kind;
use ahash::AHashMap as HashMap;
use std::time::{Duration, Instant};
use tierflow_api::model::SessionState;

/// A voice session as the idle-media monitor sees it.
#[derive(Debug, Clone, Copy)]
pub struct VoiceProbe {
    pub id: SessionId,
    /// The client-side switch, whose two session flows carry every media
    /// packet of the call in both directions.
    pub dpid: u64,
    pub state: SessionState,
    pub held_by: Option<HoldCause>,
    /// When the state last changed.
    pub since: Instant,
    /// The caller-side switch of the call's first media leg, when its
    /// media bypasses the IP pair (the media flows are read there too).
    pub media_dpid: Option<u64>,
}

/// Bytes counted in one poll, by (flow kind, switch, session id).
pub type FlowBytes = HashMap<(Kind, u64, u64), u64>;

/// One session's counters at the previous poll.
#[derive(Debug, Clone, Copy)]
struct Seen {
    bytes: u64,
    at: Instant,
    /// Since when the rate has been below the threshold.
    below_since: Option<Instant>,
}

/// What the monitor decides for one session after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Hold,
    Resume,
    Nothing,
}

/// The decision rule, pure: `kbps` is the media rate just measured,
/// `below_since` when it first went below the threshold (this poll
/// included), `now` the poll's time.
pub fn verdict(
    cfg: &HoldConfig,
    p: &VoiceProbe,
    kbps: f64,
    below_since: Option<Instant>,
    now: Instant,
) -> Verdict {
    let after = Duration::from_millis(cfg.idle_after_ms);
    if kbps >= f64::from(cfg.idle_below_kbps) {
        if p.state == SessionState::Hold && p.held_by == Some(HoldCause::IdleMedia) {
            return Verdict::Resume;
        }
        return Verdict::Nothing;
    }
    let quiet = below_since.is_some_and(|t| now.duration_since(t) >= after);
    if p.state == SessionState::Active && quiet && now.duration_since(p.since) >= after {
        return Verdict::Hold;
    }
    Verdict::Nothing
}

/// The monitor's memory between polls.
#[derive(Debug, Default)]
pub struct Monitor {
    seen: HashMap<SessionId, Seen>,
}

impl Monitor {
    /// What to read this poll: (kind, switch) pairs, each once.
    pub fn wanted(probes: &[VoiceProbe]) -> Vec<(Kind, u64)> {
        let mut wanted: Vec<(Kind, u64)> = probes
            .iter()
            .flat_map(|p| {
                std::iter::once((Kind::Session, p.dpid))
                    .chain(p.media_dpid.map(|d| (Kind::Media, d)))
            })
            .collect();
        wanted.sort_unstable_by_key(|&(k, d)| (k as u8, d));
        wanted.dedup();
        wanted
    }

    /// The verdicts of one poll: `counted` is what the switches said.
    pub fn poll(
        &mut self,
        cfg: &HoldConfig,
        probes: &[VoiceProbe],
        counted: &FlowBytes,
        now: Instant,
    ) -> Vec<(SessionId, Verdict)> {
        self.seen.retain(|id, _| probes.iter().any(|p| p.id == *id));
        let mut out = Vec::new();
        for p in probes {
            // No session flows on its switch (not read, or not installed
            // yet): nothing to judge this poll.
            let Some(&session) = counted.get(&(Kind::Session, p.dpid, p.id.0)) else {
                continue;
            };
            // A call whose media bypasses its IP pair: its media leg's
            // flows carry the RTP.
            let leg = p
                .media_dpid
                .and_then(|d| counted.get(&(Kind::Media, d, p.id.0)))
                .copied()
                .unwrap_or(0);
            let bytes = session + leg;
            let fresh = Seen {
                bytes,
                at: now,
                below_since: None,
            };
            // A first sight, or counters that went backwards (the flows
            // were put back after a switch reconnected): start over.
            let prev = match self.seen.get(&p.id).copied() {
                Some(prev) if bytes >= prev.bytes && now > prev.at => prev,
                _ => {
                    self.seen.insert(p.id, fresh);
                    continue;
                }
            };
            let dt = now.duration_since(prev.at).as_secs_f64();
            let kbps = (bytes - prev.bytes) as f64 * 8.0 / 1000.0 / dt;
            let below_since =
                (kbps < f64::from(cfg.idle_below_kbps)).then(|| prev.below_since.unwrap_or(now));
            self.seen.insert(
                p.id,
                Seen {
                    bytes,
                    at: now,
                    below_since,
                },
            );
            let v = verdict(cfg, p, kbps, below_since, now);
            if v != Verdict::Nothing {
                out.push((p.id, v));
            }
        }
        out
    }
}

impl Sessions {
    /// Live voice (SIP) sessions, for the idle-media monitor.
    pub fn voice_probes(&self) -> Vec<VoiceProbe> {
        let t = self.table.lock();
        t.by_id
            .values()
            .filter(|r| r.is_voice())
            .filter_map(|r| {
                Some(VoiceProbe {
                    id: r.id,
                    dpid: r.hops.first()?.dpid,
                    state: r.state,
                    held_by: r.hold.by,
                    since: r.hold.since,
                    media_dpid: r
                        .legs()
                        .first()
                        .and_then(|g| g.hops.first())
                        .map(|h| h.dpid),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(state: SessionState, held_by: Option<HoldCause>, since: Instant) -> VoiceProbe {
        VoiceProbe {
            id: SessionId(1),
            dpid: 1,
            state,
            held_by,
            since,
            media_dpid: None,
        }
    }

    #[test]
    fn idle_media_rules() {
        let cfg = HoldConfig {
            idle_media: true,
            idle_poll_ms: 100,
            idle_below_kbps: 8,
            idle_after_ms: 2000,
        };
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let active = probe(SessionState::Active, None, t0);
        // Quiet long enough, state unchanged long enough: hold.
        assert_eq!(verdict(&cfg, &active, 0.5, Some(t0), later), Verdict::Hold);
        // Quiet, but not for long enough yet.
        let recent = later - Duration::from_millis(500);
        assert_eq!(
            verdict(&cfg, &active, 0.5, Some(recent), later),
            Verdict::Nothing
        );
        // Media flowing: nothing to do for an active call.
        assert_eq!(verdict(&cfg, &active, 90.0, None, later), Verdict::Nothing);
        // Resumed by SIP or CTI a moment ago: not put back on hold even
        // though the media was quiet throughout.
        let just_resumed = probe(SessionState::Active, None, recent);
        assert_eq!(
            verdict(&cfg, &just_resumed, 0.0, Some(t0), later),
            Verdict::Nothing
        );
        // Media back: resumes only a hold idle media set.
        let idle_held = probe(SessionState::Hold, Some(HoldCause::IdleMedia), t0);
        assert_eq!(
            verdict(&cfg, &idle_held, 90.0, None, later),
            Verdict::Resume
        );
        for by in [HoldCause::Sip, HoldCause::Cti] {
            let held = probe(SessionState::Hold, Some(by), t0);
            assert_eq!(verdict(&cfg, &held, 90.0, None, later), Verdict::Nothing);
            assert_eq!(verdict(&cfg, &held, 0.0, Some(t0), later), Verdict::Nothing);
        }
        // At the threshold counts as media.
        assert_eq!(verdict(&cfg, &idle_held, 8.0, None, later), Verdict::Resume);
    }

    #[test]
    fn a_poll_turns_counters_into_rates_and_verdicts() {
        let cfg = HoldConfig {
            idle_media: true,
            idle_poll_ms: 1000,
            idle_below_kbps: 8,
            idle_after_ms: 2000,
        };
        let t0 = Instant::now();
        let p = probe(SessionState::Active, None, t0);
        let mut m = Monitor::default();
        assert_eq!(Monitor::wanted(&[p]), vec![(Kind::Session, 1)]);
        let mut counted = FlowBytes::default();
        let mut at = |bytes: u64, secs: u64, m: &mut Monitor| {
            counted.insert((Kind::Session, 1, 1), bytes);
            m.poll(&cfg, &[p], &counted, t0 + Duration::from_secs(secs))
        };
        // First sight, then 10 kB/s (80 kb/s): media.
        assert!(at(0, 1, &mut m).is_empty());
        assert!(at(10_000, 2, &mut m).is_empty());
        // Quiet from second 3 on: hold once quiet for 2 s.
        assert!(at(10_000, 3, &mut m).is_empty());
        assert!(at(10_000, 4, &mut m).is_empty());
        assert_eq!(at(10_000, 5, &mut m), vec![(SessionId(1), Verdict::Hold)]);
        // Counters that went backwards start over.
        assert!(at(0, 6, &mut m).is_empty());
    }
}
