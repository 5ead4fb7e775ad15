//! Sessions in Redis: the stored record (the API's view, plus what
//! re-admission needs that the view does not say: the flows' match, who
//! put the call on hold, the decision's parts), and the writer that keeps
//! Redis current. The writer remembers only *which* sessions changed;
//! their records are built when written, so a backlog costs a few bytes
//! per session, and a dead Redis loses nothing while the controller runs
//! (failed writes are retried each second).

use super::Sessions;
use super::record::{
    Decision, HoldCause, HoldTrack, Inputs, Name, Names, Record, Requested, SessionId, StateReason,
};
use crate::crm::{MatchedBy, Snapshot};
use crate::messages::SessionKey;
use crate::policy::{Basis, PromoNote};
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;
use tierflow_api::model::{Reason, ServiceKind, Session, SessionState};
use tierflow_api::views::RequestKind;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Records built and written per round trip group.
const CHUNK: usize = 256;

/// A session as Redis keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// What the API shows (readers of the API's `Session` ignore the
    /// rest).
    #[serde(flatten)]
    pub view: Session,
    #[serde(default, rename = "_tierflow")]
    pub internal: Internal,
}

/// What re-admitting a session needs beyond its view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Internal {
    /// The service's protocol and port its flows match (`None`: a call,
    /// matched on its address pair).
    pub l4: Option<(u8, u16)>,
    pub held_by: Option<HoldCause>,
    pub hold_before: Option<Reason>,
    pub state_reason: StateReason,
    pub basis: Option<Basis>,
    pub note: Option<PromoNote>,
    #[serde(default)]
    pub manual: bool,
    /// The client's port its flows match (a requested session's).
    #[serde(default)]
    pub client_port: Option<u16>,
    /// Requested by an application server: what it asked for.
    #[serde(default)]
    pub requested: Option<RequestKind>,
}

impl Stored {
    pub fn of(rec: &Record, view: Session) -> Stored {
        Stored {
            view,
            internal: Internal {
                l4: rec.key.l4,
                held_by: rec.hold.by,
                hold_before: rec.hold.before,
                state_reason: rec.state_reason,
                basis: Some(rec.decision.basis),
                note: Some(rec.decision.note),
                manual: rec.decision.manual,
                client_port: rec.key.client_port,
                requested: rec.requested.as_ref().map(|r| r.kind),
            },
        }
    }

    /// The record of a remembered session, parked (no hops). None for an
    /// ended one, or one that is not IPv4.
    pub fn into_record(self, snap: &Snapshot, names: &Names) -> Option<Record> {
        let v = self.view;
        let i = self.internal;
        if v.state == SessionState::Ended {
            return None;
        }
        let (IpAddr::V4(client), IpAddr::V4(server)) = (v.client_ip, v.server_ip) else {
            return None;
        };
        // Records written before the internal part existed: the service's
        // current definition says what its flows match.
        let l4 = i.l4.or_else(|| {
            snap.services
                .iter()
                .find(|x| x.name == v.service)
                .and_then(|x| (x.kind != ServiceKind::Sip).then_some((x.proto.ip_proto(), x.port)))
        });
        let key = SessionKey {
            client,
            server,
            l4,
            client_port: i.client_port,
        };
        let e = &v.explanation;
        let customer: Option<(Name, MatchedBy)> = e.customer_id.as_deref().map(|c| {
            (
                names.intern(c),
                if e.matched_by.as_deref() == Some("phone") {
                    MatchedBy::Phone
                } else {
                    MatchedBy::Ip
                },
            )
        });
        let basis = i.basis.unwrap_or(match (&customer, e.reason) {
            (None, _) => Basis::NoCustomer,
            (Some(_), Reason::Default) => Basis::BelowEveryTier,
            _ => Basis::Scored,
        });
        let note = i
            .note
            .unwrap_or(if e.promotion.is_some() && e.reason == Reason::Promotion {
                PromoNote::Lifted
            } else if e.inputs.promo_code.is_some() && e.promotion.is_none() {
                if e.detail.contains("is expired") {
                    PromoNote::Expired
                } else {
                    PromoNote::Unknown
                }
            } else {
                PromoNote::None
            });
        let mut hold = HoldTrack::new();
        if v.state == SessionState::Hold {
            // A record without the internal part held by CTI: the one
            // cause nothing but its own kind ends.
            hold.by = Some(i.held_by.unwrap_or(HoldCause::Cti));
            hold.before = i.hold_before;
        }
        Some(Record {
            id: SessionId::parse(&v.id)?,
            key,
            hops: Default::default(),
            carry: None,
            service: names.intern(&v.service),
            tier: names.intern(&v.tier),
            override_tier: v.override_tier.as_deref().map(|o| names.intern(o)),
            state: v.state,
            state_reason: i.state_reason,
            hold,
            inputs: Inputs::from_client(&e.inputs),
            decision: Decision {
                customer,
                promotion: e.promotion.as_deref().map(|p| names.intern(p)),
                note,
                basis,
                weights: e.weights,
                terms: e.terms,
                tier: names.intern(&e.tier),
                reason: e.reason,
                manual: i.manual,
            },
            created_at: v.created_at,
            updated_at: v.updated_at,
            call: None,
            requested: match (i.requested, v.external_id) {
                (Some(kind), Some(ext)) => Some(Box::new(Requested {
                    external_id: ext.into(),
                    kind,
                    idle: 0,
                })),
                _ => None,
            },
        })
    }
}

/// Which sessions Redis does not have as they are now.
#[derive(Debug, Default)]
pub struct Writer {
    dirty: Mutex<HashSet<SessionId>>,
    /// Ended sessions' last records (no longer in the table).
    ended: Mutex<HashMap<SessionId, Stored>>,
    wake: Notify,
}

impl Sessions {
    /// The session changed: Redis gets its record on the next round.
    pub(super) fn persist(&self, id: SessionId) {
        self.writer.dirty.lock().insert(id);
        self.writer.wake.notify_one();
    }

    pub(super) fn persist_ended(&self, id: SessionId, s: Stored) {
        self.writer.dirty.lock().remove(&id);
        self.writer.ended.lock().insert(id, s);
        self.writer.wake.notify_one();
    }

    /// Sessions changed and not written yet.
    pub fn writer_backlog(&self) -> usize {
        self.writer.dirty.lock().len() + self.writer.ended.lock().len()
    }

    /// The record Redis should hold for a live or parked session.
    fn stored(&self, id: SessionId) -> Option<Stored> {
        let t = self.table.lock();
        let rec = t.live(id).or_else(|| t.parked(id))?;
        Some(Stored::of(rec, self.view_of(rec, false)))
    }

    /// Writes changed sessions to Redis until `shutdown`; failed writes
    /// are retried every second (a newer change of the same session
    /// supersedes them).
    pub async fn run_writer(&self, shutdown: CancellationToken) {
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = self.writer.wake.notified() => false,
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            };
            // Taken, not drained: a drained set keeps the capacity of its
            // largest backlog.
            let dirty: Vec<SessionId> = std::mem::take(&mut *self.writer.dirty.lock())
                .into_iter()
                .collect();
            let ended: Vec<(SessionId, Stored)> = std::mem::take(&mut *self.writer.ended.lock())
                .into_iter()
                .collect();
            let mut failed = false;
            for chunk in dirty.chunks(CHUNK) {
                if failed {
                    self.writer.dirty.lock().extend(chunk.iter().copied());
                    continue;
                }
                let records: Vec<(SessionId, Stored)> = chunk
                    .iter()
                    .filter_map(|id| self.stored(*id).map(|s| (*id, s)))
                    .collect();
                let retry = self.write(&records, false).await;
                if !retry.is_empty() {
                    failed = true;
                    self.writer.dirty.lock().extend(retry);
                }
            }
            for chunk in ended.chunks(CHUNK) {
                let retry = if failed {
                    chunk.iter().map(|(id, _)| *id).collect()
                } else {
                    self.write(chunk, true).await
                };
                if !retry.is_empty() {
                    failed = true;
                    let mut e = self.writer.ended.lock();
                    for (id, s) in chunk.iter().filter(|(id, _)| retry.contains(id)) {
                        // A newer end of the same session wins.
                        e.entry(*id).or_insert_with(|| s.clone());
                    }
                }
            }
            if stop {
                break;
            }
        }
    }

    /// Writes records concurrently (the store's connection pipelines
    /// them); returns the ids whose write failed.
    async fn write(&self, records: &[(SessionId, Stored)], ended: bool) -> Vec<SessionId> {
        let store = &self.crm.store;
        let writes = records.iter().map(|(id, s)| async move {
            let r = store.put_session_record(&id.to_string(), ended, s).await;
            (*id, r)
        });
        let mut retry = Vec::new();
        for (id, r) in futures_util::future::join_all(writes).await {
            if let Err(e) = r {
                self.stats.redis_errors.inc();
                debug!("session {id} not written to Redis yet: {e}");
                retry.push(id);
            }
        }
        retry
    }
}
