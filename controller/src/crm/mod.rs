//! The CRM held in Redis: tiers, customers, promotions, services, policy
//! and sessions (`keys` fixes the key schema, `docs/crm.md` explains it).
//!
//! - [`store`]: [`Store`], the Redis client everything writes through:
//!   validated, atomic writes that keep the phone/IP indexes and publish a
//!   change event.
//! - [`lookup`]: the decision-time [`Store::lookup`] ("remote" mode), which
//!   batches the lookups in flight into a few Redis calls.
//! - [`replica`]: [`Replica`], an in-memory copy kept current from the
//!   change events, whose [`Snapshot::lookup`] needs no I/O ("replica" mode,
//!   and the tiers/services every mode needs).
//! - [`load`]: `tierflow crm load FILE`.
//! - [`cluster`]: the instances' heartbeat (membership, the leader's lease)
//!   and what `/cluster` reads.
//! - [`tls`]: [`RedisTls`] and the one place a Redis client is built
//!   from a URL (`rediss://` with a CA and client certificate).
//!
//! Both lookups answer the same question the same way: the customer a
//! client is, matched by phone number first, then by IP address (exact
//! address, then the longest indexed prefix that holds it), and the record
//! of the promotion code the client gave. A promotion is returned whatever
//! its expiry: whether it still counts is the policy's decision, which can
//! then explain "code expired" instead of seeing no code at all.

mod batch;
pub mod cluster;
mod error;
pub mod keys;
pub mod load;
mod lookup;
pub mod replica;
pub mod store;
pub mod tls;

pub use load::{load_file, load_file_with};
pub use replica::{Change, ChangeKind, Replica, ReplicaOptions, ReplicaScope, Snapshot};
pub use store::{CrmError, CustomerFilter, LoadSummary, Store, StoreOptions, Write};
pub use tls::RedisTls;

use std::sync::Arc;
use tierflow_api::model::{Customer, Promotion};

/// How a customer was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchedBy {
    Phone,
    Ip,
}

impl MatchedBy {
    /// The name used in explanations (`phone`, `ip`).
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedBy::Phone => "phone",
            MatchedBy::Ip => "ip",
        }
    }
}

/// The CRM's answer at decision time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookup {
    pub customer: Option<Arc<Customer>>,
    /// Set exactly when `customer` is.
    pub matched_by: Option<MatchedBy>,
    /// The record of the code the client gave, expired or not.
    pub promotion: Option<Arc<Promotion>>,
}

/// A Redis URL fit for logs: its user and password replaced by `***`,
/// and so are the values of `pass`, `password` and `user` query
/// parameters (`redis+unix:///run/redis.sock?pass=...`).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL: it may hold anything, a password included.
        return "<not a URL>".to_string();
    };
    // Everything up to the last '@' may be userinfo (a password may hold
    // '@', '/' or '?' unencoded): all of it goes.
    let (mut out, rest) = match rest.rsplit_once('@') {
        Some((_, host)) => (format!("{scheme}://***@"), host),
        None => (format!("{scheme}://"), rest),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    out.push_str(rest);
    if let Some(q) = query {
        let (q, fragment) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        out.push('?');
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _))
                    if ["pass", "password", "user", "username"]
                        .iter()
                        .any(|s| k.eq_ignore_ascii_case(s)) =>
                {
                    format!("{k}=***")
                }
                _ => kv.to_string(),
            })
            .collect();
        out.push_str(&params.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            super::redacted("redis://:s3cret@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            super::redacted("rediss://user:pw@h:6380"),
            "rediss://***@h:6380"
        );
        assert_eq!(
            super::redacted("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            super::redacted("rediss://:p@ss/w@rd@redis.example:6380/2#insecure"),
            "rediss://***@redis.example:6380/2#insecure"
        );
        assert_eq!(
            super::redacted("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        assert_eq!(super::redacted(":s3cret@host"), "<not a URL>");
    }
}
