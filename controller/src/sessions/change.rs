//! Re-tiering live sessions in place: a tier edited, a manual override
//! set or cleared, a re-scoring (new client data, a customer or policy
//! change), hold and resume. Meters are modified and flows rewritten,
//! never removed, so no packet of a session goes untiered.

use super::admit::reason_name;
use super::program;
use super::record::{Decision, Inputs, Record, SessionId, StateReason};
use super::{HoldCause, SessionError, Sessions};
use crate::crm::Lookup;
use crate::plan::Execute;
use crate::policy;
use crate::qos::Keeps;
use chrono::Utc;
use tierflow_api::model::{ClientData, Reason, Session, SessionState, Tier};
use tracing::info;

impl Sessions {
    /// Moves a live session to `tier` (or to its hold rate) in place.
    fn retier(&self, exec: &dyn Execute, rec: &mut Record, tier: &Tier) {
        rec.tier = self.names.intern(&tier.name);
        rec.updated_at = Utc::now();
        exec.execute(&mut program::retier(rec, tier, self.idle_timeout));
        self.stats.sessions_retiered.inc();
        self.persist(rec.id);
    }

    /// Applies `f` to a live session and re-tiers it to the tier it then
    /// names. The tier must exist in the current snapshot.
    fn update(
        &self,
        exec: &dyn Execute,
        id: &str,
        f: impl FnOnce(&mut Record) -> Result<(), SessionError>,
    ) -> Result<Session, SessionError> {
        let id = SessionId::parse(id).ok_or(SessionError::NotFound)?;
        let snap = self.snapshot();
        let mut t = self.table.lock();
        // A parked session (no path now) takes the change too: it keeps it
        // when it is back on the network.
        let parked = !t.by_id.contains_key(&id);
        let rec = t.record_mut(id).ok_or(SessionError::NotFound)?;
        let before = rec.tier;
        let mut changed = rec.clone();
        f(&mut changed)?;
        let name = self.names.get(changed.tier);
        let tier = snap
            .tier(&name)
            .cloned()
            .ok_or_else(|| SessionError::UnknownTier(name.to_string()))?;
        if changed.tier != before {
            info!(
                "session {id} re-tiered: {} -> {} ({}): {}",
                self.names.get(before),
                tier.name,
                reason_name(changed.decision.reason),
                self.view_of(&changed, false).explanation.detail
            );
        }
        *rec = changed;
        self.retier(exec, rec, &tier);
        Ok(self.view_of(rec, parked))
    }

    /// Manual override: `tier` wins over the automatic choice until
    /// cleared.
    pub fn set_override(
        &self,
        exec: &dyn Execute,
        id: &str,
        tier: &str,
    ) -> Result<Session, SessionError> {
        let n = self.names.intern(tier);
        self.update(exec, id, |r| {
            r.override_tier = Some(n);
            r.tier = n;
            r.decision.reason = Reason::ManualOverride;
            r.decision.manual = true;
            Ok(())
        })
    }

    /// The client data to re-score a live session with: what it had,
    /// with `more` (data solicited later) winning; where the client is
    /// stays what the network saw.
    pub fn rescore_inputs(
        &self,
        id: &str,
        more: Option<&ClientData>,
    ) -> Result<Inputs, SessionError> {
        let id = SessionId::parse(id).ok_or(SessionError::NotFound)?;
        let had = {
            let t = self.table.lock();
            t.live(id)
                .or_else(|| t.parked(id))
                .ok_or(SessionError::NotFound)?
                .inputs
                .clone()
        };
        Ok(match more {
            Some(m) => {
                let mut i = Inputs::from_client(m);
                i.ip = had.ip;
                i.mac = had.mac;
                i.keep_gathered(&had);
                i
            }
            None => had,
        })
    }

    /// Re-scores a live session from `inputs` and what the CRM said of
    /// them; a manual override still wins (unless `clear_override`: back
    /// to the automatic choice, in the same change), a held call stays
    /// held.
    pub fn apply_rescore(
        &self,
        exec: &dyn Execute,
        id: &str,
        inputs: Inputs,
        lookup: &Lookup,
        clear_override: bool,
    ) -> Result<Session, SessionError> {
        let snap = self.snapshot();
        self.stats.decisions.inc();
        let matched = lookup.customer.as_deref().map(|c| {
            (
                c,
                lookup
                    .matched_by
                    .unwrap_or(crate::crm::MatchedBy::Ip)
                    .as_str(),
            )
        });
        let choice = policy::choose(
            inputs.promo_code.is_some(),
            matched,
            lookup.promotion.as_deref(),
            &snap.policy,
            &snap.tiers,
            Utc::now(),
        )
        .ok_or_else(|| SessionError::UnknownTier(snap.policy.default_tier.clone()))?;
        let decision = Decision::from_choice(&choice, &self.names);
        self.update(exec, id, move |r| {
            let mut d = decision;
            if clear_override {
                r.override_tier = None;
            }
            r.tier = r.override_tier.unwrap_or(d.tier);
            if r.override_tier.is_some() {
                d.reason = Reason::ManualOverride;
            }
            // A held call stays held: the new reason is what resuming
            // restores.
            if r.state == SessionState::Hold {
                r.hold.before = Some(d.reason);
                if r.override_tier.is_none() {
                    d.reason = Reason::Hold;
                }
            }
            r.decision = d;
            r.inputs = inputs;
            Ok(())
        })
    }

    /// Puts a live session on hold (`hold`) or resumes it: its meters on
    /// every switch of its path move to the tier's hold rate or back, in
    /// place. `why` becomes the session's `state_reason`. On hold the
    /// explanation's reason says `hold` (unless a manual override is in
    /// force); resuming restores the reason it had before.
    pub fn set_hold(
        &self,
        exec: &dyn Execute,
        id: SessionId,
        hold: bool,
        cause: HoldCause,
        why: StateReason,
    ) -> Result<Session, SessionError> {
        self.set_hold_keeping(exec, id, hold, cause, why, Keeps::Neither)
    }

    /// The same, for a call whose media keeps running one way on hold
    /// (`keeps`: music on hold after `a=sendonly`); changing only which
    /// way re-programs the meters too.
    pub fn set_hold_keeping(
        &self,
        exec: &dyn Execute,
        id: SessionId,
        hold: bool,
        cause: HoldCause,
        why: StateReason,
        keeps: Keeps,
    ) -> Result<Session, SessionError> {
        let snap = self.snapshot();
        let mut t = self.table.lock();
        let parked = !t.by_id.contains_key(&id);
        let rec = t.record_mut(id).ok_or(SessionError::NotFound)?;
        let name = self.names.get(rec.tier);
        let tier = snap
            .tier(&name)
            .cloned()
            .ok_or_else(|| SessionError::UnknownTier(name.to_string()))?;
        let was = rec.state == SessionState::Hold;
        let keeps = if hold { keeps } else { Keeps::Neither };
        let kept = match rec.call.as_mut() {
            Some(c) => std::mem::replace(&mut c.keeps, keeps),
            None => Keeps::Neither,
        };
        let d = &mut rec.decision;
        if hold {
            if !was {
                rec.hold.before = Some(d.reason);
            }
            if rec.override_tier.is_none() {
                d.reason = Reason::Hold;
            }
            rec.state = SessionState::Hold;
            rec.hold.by = Some(cause);
        } else {
            if d.reason == Reason::Hold {
                d.reason = rec.hold.before.unwrap_or(if d.customer.is_some() {
                    Reason::Automatic
                } else {
                    Reason::Default
                });
            }
            rec.hold.before = None;
            rec.state = SessionState::Active;
            rec.hold.by = None;
        }
        rec.state_reason = why;
        rec.updated_at = Utc::now();
        if was == hold {
            if kept != keeps && !parked {
                self.retier(exec, rec, &tier);
            } else {
                self.persist(id);
            }
            return Ok(self.view_of(rec, parked));
        }
        rec.hold.since = std::time::Instant::now();
        self.count_transition(cause, hold);
        let [up, down] = rec.meters(&tier);
        info!(
            "session {id} {}: {} (meters at {} kb/s to the server, {} kb/s to the client)",
            if hold { "on hold" } else { "resumed" },
            why.text(),
            up.rate_kbps,
            down.rate_kbps
        );
        self.retier(exec, rec, &tier);
        Ok(self.view_of(rec, parked))
    }

    /// Re-tiers every live session whose tier is `name` (the tier was
    /// edited: new rate, DSCP or queue).
    pub fn tier_changed(&self, exec: &dyn Execute, name: &str) {
        let snap = self.snapshot();
        let (Some(tier), Some(n)) = (snap.tier(name).cloned(), self.names.find(name)) else {
            return;
        };
        let mut t = self.table.lock();
        for rec in t.by_id.values_mut().filter(|r| r.tier == n) {
            self.retier(exec, rec, &tier);
        }
    }
}
