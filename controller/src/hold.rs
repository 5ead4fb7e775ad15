//! Idle-media hold detection: a task that reads the flow statistics of
//! every live voice (SIP) session from its client-side switch and puts a
//! call whose media went quiet on hold, and resumes it when the media
//! comes back. One OFPMP_FLOW request per switch and flow kind per poll
//! (filtered by the cookie's kind bits), not one per call: the cost of a
//! poll grows with the switches the calls start on, not with the calls.
//!
//! Owns only the per-session byte counters between polls. The rules that
//! keep it from fighting SIP and CTI: it resumes only holds it set itself,
//! and it puts a call on hold only after the media was below the threshold
//! for the whole `idle_after_ms` *and* that long has passed since anyone
//! last changed the call's state (so a call SIP or CTI resumed a moment
//! ago is not put straight back on hold while its media restarts).

use crate::config::HoldConfig;
use crate::control::ControlPlane;
use crate::cookie::{self, Kind};
use crate::session::{HoldCause, VoiceProbe, format_id};
use ahash::AHashMap as HashMap;
use openflow::multipart::FlowStatsRequest;
use openflow::{Match, PortNo};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tierflow_api::model::SessionState;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Bytes counted in one poll, by (flow kind, switch, session id).
type FlowBytes = HashMap<(Kind, u64, u64), u64>;

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

impl ControlPlane {
    /// Polls the voice sessions' media until `shutdown` (does nothing when
    /// `cfg.idle_media` is off).
    pub async fn idle_media_monitor(self: Arc<Self>, cfg: HoldConfig, shutdown: CancellationToken) {
        if !cfg.idle_media {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.idle_poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: HashMap<u64, Seen> = HashMap::default();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let probes = self.sessions.voice_probes();
            seen.retain(|id, _| probes.iter().any(|p| p.id == *id));
            let mut wanted: Vec<(Kind, u64)> = probes
                .iter()
                .flat_map(|p| {
                    std::iter::once((Kind::Session, p.dpid))
                        .chain(p.media_dpid.map(|d| (Kind::Media, d)))
                })
                .collect();
            wanted.sort_unstable_by_key(|&(k, d)| (k as u8, d));
            wanted.dedup();
            let mut counted = FlowBytes::default();
            for (kind, dpid) in wanted {
                self.count_flow_bytes(kind, dpid, &mut counted).await;
            }
            for p in probes {
                // No session flows on its switch (not read, or not
                // installed yet): nothing to judge this poll.
                let Some(&session) = counted.get(&(Kind::Session, p.dpid, p.id)) else {
                    continue;
                };
                // A call whose media bypasses its IP pair: its media leg's
                // flows carry the RTP.
                let leg = p
                    .media_dpid
                    .and_then(|d| counted.get(&(Kind::Media, d, p.id)))
                    .copied()
                    .unwrap_or(0);
                let bytes = session + leg;
                let now = Instant::now();
                let fresh = Seen {
                    bytes,
                    at: now,
                    below_since: None,
                };
                // A first sight, or counters that went backwards (the
                // flows were put back after a switch reconnected): start
                // over from this poll.
                let prev = match seen.get(&p.id).copied() {
                    Some(prev) if bytes >= prev.bytes && now > prev.at => prev,
                    _ => {
                        seen.insert(p.id, fresh);
                        continue;
                    }
                };
                let dt = now.duration_since(prev.at).as_secs_f64();
                let kbps = (bytes - prev.bytes) as f64 * 8.0 / 1000.0 / dt;
                let below_since = (kbps < f64::from(cfg.idle_below_kbps))
                    .then(|| prev.below_since.unwrap_or(now));
                seen.insert(
                    p.id,
                    Seen {
                        bytes,
                        at: now,
                        below_since,
                    },
                );
                let id = format_id(p.id);
                let r = match verdict(&cfg, &p, kbps, below_since, now) {
                    Verdict::Hold => self.set_hold(&id, true, HoldCause::IdleMedia, "idle media"),
                    Verdict::Resume => {
                        self.set_hold(&id, false, HoldCause::IdleMedia, "media resumed")
                    }
                    Verdict::Nothing => continue,
                };
                if let Err(e) = r {
                    debug!("session {id}: idle-media change not applied: {e}");
                }
            }
        }
    }

    /// Adds to `out` the bytes every flow of `kind` on `dpid` matched so
    /// far, by session id (both directions: the client-side switch
    /// carries the forward flow in and the reverse flow out). Flow
    /// counters count every packet a flow matched, before its meter drops
    /// any, so a held call's media is measured at the rate it is sent.
    async fn count_flow_bytes(&self, kind: Kind, dpid: u64, out: &mut FlowBytes) {
        let Some(sw) = self.switch(dpid) else {
            return;
        };
        let flows = match sw
            .flow_stats(FlowStatsRequest {
                table_id: openflow::TABLE_ALL,
                out_port: PortNo::Any,
                out_group: openflow::GROUP_ANY,
                cookie: cookie::cookie(kind, 0),
                cookie_mask: cookie::KIND_MASK,
                match_: Match::new(),
            })
            .await
        {
            Ok(f) => f,
            Err(e) => {
                debug!("flow stats of {kind:?} flows on {dpid:#x} not read: {e}");
                return;
            }
        };
        for f in &flows {
            if let Some(id) = cookie::id_of(f.cookie, kind) {
                *out.entry((kind, dpid, id)).or_default() += f.byte_count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(state: SessionState, held_by: Option<HoldCause>, since: Instant) -> VoiceProbe {
        VoiceProbe {
            id: 1,
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
}
