//! [`Store::lookup`]: the decision-time read of "remote" mode, and the
//! task that batches concurrent lookups.
//!
//! redis-server spends its CPU per command far more than per key, and at
//! decision rates it is the bottleneck, not the network (BENCHMARKS.md).
//! So the lookups in flight on one [`Store`] (and its clones) are gathered
//! by one task into batches of up to [`MAX_BATCH`], and a batch costs two
//! round trips and three commands whatever its size: one pipeline (an MGET
//! of every lookup's phone, address, prefix and promotion keys, plus HKEYS
//! of `tf:idx:ip-lens`), then one MGET of the matched customers. A lone
//! lookup is a batch of one: the same two trips it always took.
//!
//! The prefix lengths come back with the first trip, so the cached set is
//! checked by every batch: when another writer added a length the cache
//! lacked, the cache is refreshed and the new lengths are probed, for the
//! lookups that matched nothing yet, in one extra MGET (once per new
//! length, not per lookup). Reading the lengths first would make every
//! batch three trips; trusting the cache alone would miss prefixes added
//! by other writers.

use super::batch::{IpLens, Pending, Query, prefix_keys};
use super::error::{CrmError, Result};
use super::keys;
use super::store::{Record, Store, parse};
use super::{Lookup, MatchedBy};
use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;
use tierflow_api::model::{Customer, Promotion};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;

/// Lookups answered by one batch at most: bounds one MGET's size (a few
/// keys per lookup).
pub(super) const MAX_BATCH: usize = 256;
/// Batches in flight at once: while one waits on Redis the next gathers,
/// and two keep the connection busy without splitting the load into many
/// small batches.
const IN_FLIGHT: usize = 2;
/// Lookups queued for the batcher at most; beyond that callers wait their
/// turn (bounded by their timeout), so a stalled Redis cannot grow the
/// queue without limit.
const QUEUE: usize = 8 * MAX_BATCH;

/// Where one lookup's keys sit in the batch's first MGET.
struct Slots {
    phone: Option<usize>,
    promo: Option<usize>,
    /// The exact address key, then the prefix keys probed.
    ip: Range<usize>,
}

/// The batch's answer to a Redis call that failed: every lookup in it
/// gets the same error.
fn all_failed(n: usize, e: &CrmError) -> Vec<Result<Lookup>> {
    (0..n).map(|_| Err(e.clone())).collect()
}

impl Store {
    /// Who the client is and what its promotion code is (see the module
    /// doc of `crm` for the matching rules), answered in a batch with the
    /// other lookups in flight (see this module's doc).
    pub async fn lookup(
        &self,
        phone: Option<&str>,
        ip: Option<IpAddr>,
        promo: Option<&str>,
    ) -> Result<Lookup> {
        let query = Query::new(phone, ip, promo);
        if query.is_empty() {
            return Ok(Lookup::default());
        }
        let tx = self.lookups.get_or_init(|| self.start_batcher());
        // One channel per lookup: the remote mode's decision waits on
        // Redis anyway, and this is how its answer finds it.
        let (reply, answer) = oneshot::channel();
        let asked = async {
            if let Err(mpsc::error::SendError(p)) = tx.send(Pending { query, reply }).await {
                // The batcher is gone with the runtime that started it
                // (a store carried over to another runtime): answer here.
                return self.lookup_batch(&[p.query]).await.pop();
            }
            answer.await.ok()
        };
        // A batch makes at most three calls, each bounded by the
        // operation timeout; the queue ahead of it is bounded too.
        match tokio::time::timeout(4 * self.op_timeout(), asked).await {
            Ok(Some(r)) => r,
            Ok(None) | Err(_) => Err(CrmError::Timeout),
        }
    }

    /// Spawns the batching task. It holds a store of its own whose batcher
    /// slot stays empty, so it does not keep its own queue open: it ends
    /// when the last clone of this store is dropped.
    fn start_batcher(&self) -> mpsc::Sender<Pending> {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        let store = self.detached();
        let spawner = self.detached();
        self.spawn(async move {
            let slots = Arc::new(Semaphore::new(IN_FLIGHT));
            let mut batch = Vec::with_capacity(MAX_BATCH);
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    break;
                }
                let batch = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
                let store = store.clone();
                spawner.spawn(async move {
                    let (queries, replies): (Vec<Query>, Vec<_>) =
                        batch.into_iter().map(|p| (p.query, p.reply)).unzip();
                    let answers = store.lookup_batch(&queries).await;
                    for (reply, answer) in replies.into_iter().zip(answers) {
                        // A caller that gave up has dropped its end.
                        let _ = reply.send(answer);
                    }
                    drop(permit);
                });
            }
            debug!("CRM lookup batcher: store dropped, stopping");
        });
        tx
    }

    /// The answers to `queries`, in their order (two round trips, three
    /// with new prefix lengths to probe).
    pub(super) async fn lookup_batch(&self, queries: &[Query]) -> Vec<Result<Lookup>> {
        let n = queries.len();
        let cached = self.lens.lock().clone();
        let mut keys_: Vec<String> = Vec::with_capacity(4 * n);
        let mut slots = Vec::with_capacity(n);
        for q in queries {
            let mut at = |key: String| {
                keys_.push(key);
                keys_.len() - 1
            };
            let phone = q.phone.as_deref().map(|p| at(keys::phone_idx(p)));
            let promo = q.promo.as_deref().map(|c| at(keys::promo(c)));
            let start = keys_.len();
            if let Some(a) = q.ip {
                keys_.push(keys::ip_idx(a));
                keys_.extend(prefix_keys(a, cached.for_addr(a)));
            }
            slots.push(Slots {
                phone,
                promo,
                ip: start..keys_.len(),
            });
        }
        if keys_.is_empty() {
            return (0..n).map(|_| Ok(Lookup::default())).collect();
        }

        let any_ip = queries.iter().any(|q| q.ip.is_some());
        let mut con = self.con();
        let first = if any_ip {
            self.run(
                redis::pipe()
                    .cmd("MGET")
                    .arg(&keys_)
                    .cmd("HKEYS")
                    .arg(keys::IP_LENS)
                    .query_async(&mut con),
            )
            .await
        } else {
            self.run(redis::cmd("MGET").arg(&keys_).query_async(&mut con))
                .await
                .map(|v| (v, Vec::new()))
        };
        let (vals, classes): (Vec<Option<String>>, Vec<String>) = match first {
            Ok(v) => v,
            Err(e) => return all_failed(n, &e),
        };
        let val = |i: usize| vals.get(i).and_then(|v| v.as_deref());

        let mut found: Vec<Option<(&str, MatchedBy)>> = slots
            .iter()
            .map(|s| {
                s.phone
                    .and_then(val)
                    .map(|id| (id, MatchedBy::Phone))
                    .or_else(|| s.ip.clone().find_map(val).map(|id| (id, MatchedBy::Ip)))
            })
            .collect();

        // Prefix lengths another writer added: probed for the lookups
        // still unmatched.
        let mut late: Vec<Option<String>> = Vec::new();
        let mut late_at: Vec<(usize, Range<usize>)> = Vec::new();
        if any_ip {
            let fresh = IpLens::from_classes(&classes);
            // Compared with what this batch probed: a batch in flight
            // beside it may have refreshed the cache already.
            if fresh != cached {
                {
                    let mut c = self.lens.lock();
                    if *c != fresh {
                        *c = fresh.clone();
                    }
                }
                let mut more: Vec<String> = Vec::new();
                for (i, q) in queries.iter().enumerate() {
                    let Some(a) = q.ip.filter(|_| found[i].is_none()) else {
                        continue;
                    };
                    let probed = cached.for_addr(a);
                    let missed: Vec<u8> = fresh
                        .for_addr(a)
                        .iter()
                        .copied()
                        .filter(|l| !probed.contains(l))
                        .collect();
                    let start = more.len();
                    more.extend(prefix_keys(a, &missed));
                    if more.len() > start {
                        late_at.push((i, start..more.len()));
                    }
                }
                if !more.is_empty() {
                    late = match self
                        .run(redis::cmd("MGET").arg(&more).query_async(&mut con))
                        .await
                    {
                        Ok(v) => v,
                        Err(e) => return all_failed(n, &e),
                    };
                }
            }
        }
        for (i, r) in &late_at {
            if let Some(id) = r
                .clone()
                .find_map(|j| late.get(j).and_then(|v| v.as_deref()))
            {
                found[*i] = Some((id, MatchedBy::Ip));
            }
        }

        let customer_keys: Vec<String> = found
            .iter()
            .flatten()
            .map(|(id, _)| <Customer as Record>::key(id))
            .collect();
        let records: Vec<Option<String>> = if customer_keys.is_empty() {
            Vec::new()
        } else {
            match self
                .run(redis::cmd("MGET").arg(&customer_keys).query_async(&mut con))
                .await
            {
                Ok(v) => v,
                Err(e) => return all_failed(n, &e),
            }
        };

        let mut records = customer_keys.iter().zip(records);
        slots
            .iter()
            .zip(&found)
            .map(|(s, found)| {
                // Taken first, whatever this lookup's fate: the records
                // are in the order of the matched lookups.
                let record = found.and_then(|_| records.next());
                let promotion = match s.promo.and_then(|i| Some((i, val(i)?))) {
                    Some((i, j)) => Some(Arc::new(parse::<Promotion>(&keys_[i], j)?)),
                    None => None,
                };
                // The record can vanish between the two trips (a
                // concurrent delete): then the client matches nobody.
                let customer = match record {
                    Some((key, Some(j))) => Some(Arc::new(parse::<Customer>(key, &j)?)),
                    _ => None,
                };
                Ok(Lookup {
                    matched_by: customer.as_ref().and(found.map(|(_, by)| by)),
                    customer,
                    promotion,
                })
            })
            .collect()
    }
}
