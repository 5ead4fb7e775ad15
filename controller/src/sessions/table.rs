//! The session table: live sessions by id and by key, admissions in
//! flight, parked sessions, SDP offers waiting for their admission; and
//! the ring of recently ended sessions.
//!
//! Lock order, for the whole controller (written here once):
//!
//! 1. the topology;
//! 2. the session table ([`Table`]);
//! 3. the meter pools;
//! 4. the ended ring, the writer's dirty set, the measured rates;
//! 5. the forwarding path table, the flood filter, the router's wait
//!    queue (each taken alone, never two at once);
//! 6. the installer's setups, then a switch's output buffer.
//!
//! A lock may be taken while holding one above it in this list, never
//! one below. Plans of a session are handed to the installer while the
//! table is held, so two changes to one session reach its switches in
//! the order they were made.

use super::record::{Offer, Record, SessionId};
use crate::messages::SessionKey;
use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use std::collections::VecDeque;
use tierflow_api::model::Session;

/// Bound on [`Table::offers`] (offers of admissions that never completed).
pub const OFFERS_KEPT: usize = 4096;

/// How many ended sessions the table remembers for the API (Redis keeps
/// each ended record for an hour too).
pub const ENDED_KEPT: usize = 10_000;

#[derive(Debug, Default)]
pub struct Table {
    /// Boxed: the table keeps up to twice as many buckets as entries, so
    /// inline records would double the memory of every session.
    pub by_id: HashMap<SessionId, Box<Record>>,
    pub by_key: HashMap<SessionKey, SessionId>,
    /// Admissions in flight: further packets of the flow are dropped
    /// (their first packet is released when the tier is in place).
    pub pending: HashSet<SessionKey>,
    /// Sessions whose path broke (or that Redis remembered from before a
    /// restart): re-admitted by their next packet, keeping id, creation
    /// time, override, hold and the client data they had gathered.
    pub parked: HashMap<SessionKey, Box<Record>>,
    pub parked_ids: HashMap<SessionId, SessionKey>,
    /// When each parked session was parked (they expire).
    pub parked_since: HashMap<SessionKey, std::time::Instant>,
    /// Media endpoints of an INVITE's SDP offer whose session is being
    /// admitted; taken by the admission.
    pub offers: HashMap<SessionKey, Offer>,
    /// Requested sessions (live or parked) by the application's id.
    pub by_external: HashMap<Box<str>, SessionId>,
    /// Live sessions per client address and per client-side port (the
    /// port where the session enters the network), for the limits.
    pub per_client: HashMap<std::net::Ipv4Addr, u32>,
    pub per_port: HashMap<(u64, u32), u32>,
    /// Each client-side port's allowance of new sessions.
    admissions: HashMap<(u64, u32), Allowance>,
}

/// Ports whose admission allowance is tracked at most; when full, the
/// ports idle long enough to have a full allowance again are forgotten.
const ALLOWANCES_KEPT: usize = 65_536;

/// A token bucket of admissions.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    tokens: f32,
    at: std::time::Instant,
}

impl Table {
    pub fn live(&self, id: SessionId) -> Option<&Record> {
        self.by_id.get(&id).map(|b| &**b)
    }

    pub fn live_mut(&mut self, id: SessionId) -> Option<&mut Record> {
        self.by_id.get_mut(&id).map(|b| &mut **b)
    }

    pub fn by_key(&self, key: &SessionKey) -> Option<&Record> {
        self.by_key.get(key).and_then(|id| self.live(*id))
    }

    /// Inserts a live session.
    pub fn insert(&mut self, rec: Box<Record>) {
        if let Some(r) = &rec.requested {
            self.by_external.insert(r.external_id.clone(), rec.id);
        }
        self.by_key.insert(rec.key, rec.id);
        *self.per_client.entry(rec.key.client).or_default() += 1;
        if let Some(h) = rec.hops.first() {
            *self.per_port.entry((h.dpid, h.in_port)).or_default() += 1;
        }
        self.by_id.insert(rec.id, rec);
    }

    fn count_out(&mut self, rec: &Record) {
        fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
            if let Some(n) = m.get_mut(&k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&k);
                }
            }
        }
        dec(&mut self.per_client, rec.key.client);
        if let Some(h) = rec.hops.first() {
            dec(&mut self.per_port, (h.dpid, h.in_port));
        }
    }

    /// Whether one more session may be admitted at `port` at `now`:
    /// `per_second` a second, twice as many at once. Takes one if so.
    pub fn admit_at(&mut self, port: (u64, u32), per_second: u32, now: std::time::Instant) -> bool {
        if per_second == 0 {
            return true;
        }
        let rate = per_second as f32;
        let full = 2.0 * rate;
        if self.admissions.len() >= ALLOWANCES_KEPT && !self.admissions.contains_key(&port) {
            self.admissions.retain(|_, a| {
                a.tokens + now.saturating_duration_since(a.at).as_secs_f32() * rate < full
            });
            if self.admissions.len() >= ALLOWANCES_KEPT {
                return false;
            }
        }
        let a = self.admissions.entry(port).or_insert(Allowance {
            tokens: full,
            at: now,
        });
        a.tokens = (a.tokens + now.saturating_duration_since(a.at).as_secs_f32() * rate).min(full);
        a.at = now;
        if a.tokens >= 1.0 {
            a.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Live sessions of a client address, and entering at a port.
    pub fn load(&self, client: std::net::Ipv4Addr, port: (u64, u32)) -> (u32, u32) {
        (
            self.per_client.get(&client).copied().unwrap_or(0),
            self.per_port.get(&port).copied().unwrap_or(0),
        )
    }

    /// A session ended: its application id is free again.
    pub fn forget_external(&mut self, rec: &Record) {
        if let Some(r) = &rec.requested
            && self.by_external.get(&r.external_id) == Some(&rec.id)
        {
            self.by_external.remove(&r.external_id);
        }
    }

    /// Removes a live session.
    pub fn remove(&mut self, id: SessionId) -> Option<Box<Record>> {
        let rec = self.by_id.remove(&id)?;
        self.by_key.remove(&rec.key);
        self.count_out(&rec);
        Some(rec)
    }

    pub fn park(&mut self, mut rec: Box<Record>) {
        rec.hops.clear();
        rec.carry = None;
        // A call keeps which calls it carries (a BYE after it is back
        // still names one); its media legs and pending offer go.
        if let Some(c) = rec.call.as_mut() {
            c.legs.clear();
            c.offer = None;
        }
        self.parked_since
            .entry(rec.key)
            .or_insert_with(std::time::Instant::now);
        let id = rec.id;
        if let Some(r) = &rec.requested {
            self.by_external.insert(r.external_id.clone(), id);
        }
        self.parked_ids.insert(id, rec.key);
        if let Some(old) = self.parked.insert(rec.key, rec)
            && old.id != id
        {
            self.parked_ids.remove(&old.id);
        }
    }

    pub fn unpark(&mut self, key: &SessionKey) -> Option<Box<Record>> {
        let rec = self.parked.remove(key)?;
        self.parked_since.remove(key);
        self.parked_ids.remove(&rec.id);
        Some(rec)
    }

    /// A live or parked session, to change.
    pub fn record_mut(&mut self, id: SessionId) -> Option<&mut Record> {
        if self.by_id.contains_key(&id) {
            return self.live_mut(id);
        }
        let key = *self.parked_ids.get(&id)?;
        self.parked.get_mut(&key).map(|b| &mut **b)
    }

    pub fn parked(&self, id: SessionId) -> Option<&Record> {
        self.parked_ids
            .get(&id)
            .and_then(|k| self.parked.get(k))
            .map(|b| &**b)
    }

    /// A free id for `key`: its hash, or the next one after a collision
    /// with another key's live session.
    pub fn id_for(&self, key: &SessionKey) -> SessionId {
        let mut id = SessionId::for_key(key);
        while self.by_id.get(&id).is_some_and(|l| l.key != *key) {
            id = id.next();
        }
        id
    }

    pub fn remember_offer(&mut self, key: SessionKey, offer: Offer) {
        if self.offers.len() >= OFFERS_KEPT {
            self.offers.clear();
        }
        self.offers.insert(key, offer);
    }
}

/// Recently ended sessions, newest last, as the API shows them.
#[derive(Debug, Default)]
pub struct Ended {
    by_id: HashMap<SessionId, Session>,
    order: VecDeque<SessionId>,
}

impl Ended {
    pub fn push(&mut self, id: SessionId, s: Session) {
        if self.by_id.insert(id, s).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > ENDED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.by_id.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&SessionId, &Session)> {
        self.by_id.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_port_admits_its_rate_of_new_sessions_and_other_ports_theirs() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let n = (0..100).filter(|_| t.admit_at((1, 1), 10, t0)).count();
        assert_eq!(n, 20, "twice the rate at once, then nothing");
        assert!(t.admit_at((1, 2), 10, t0), "another port is not affected");
        assert!(t.admit_at((2, 1), 10, t0), "another switch is not affected");
        let later = t0 + Duration::from_millis(100);
        assert!(t.admit_at((1, 1), 10, later));
        assert!(!t.admit_at((1, 1), 10, later));
        // 0: no limit.
        assert!((0..1000).all(|_| t.admit_at((1, 1), 0, later)));
    }
}
