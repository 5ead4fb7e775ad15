//! The cluster's Redis side: each instance's heartbeat (membership and
//! the leader's lease, one script) and what `/cluster` reads. What the
//! leadership means for switches is `crate::cluster`'s business.

use super::error::Result;
use super::keys;
use super::store::Store;
use redis::Script;
use std::sync::LazyLock;

static LEAD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/lead.lua")));
static RESIGN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/resign.lua")));

/// The leader, the term, the members with their leases, their
/// descriptions: `Store::cluster`'s one pipelined read.
type ClusterRead = (
    Option<String>,
    Option<u64>,
    Vec<(String, f64)>,
    std::collections::HashMap<String, String>,
);

/// What one heartbeat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// The instance that leads now.
    pub leader: String,
    /// The leader's term (the switches' `generation_id`).
    pub term: u64,
    /// Whether that is the caller.
    pub leads: bool,
    /// The JSON the leader describes itself with (empty if it has not).
    pub leader_info: String,
    /// Instances alive (the caller included).
    pub members: usize,
}

/// A member as Redis lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    /// End of its lease, ms since the epoch (Redis's clock).
    pub lease_until_ms: u64,
    /// The JSON it describes itself with.
    pub info: String,
}

impl Store {
    /// Renews this instance's membership (and leadership, or takes it if
    /// nobody holds it) for `lease_ms`. A new term is above `seen`, the
    /// highest this instance knows.
    pub async fn heartbeat(&self, id: &str, lease_ms: u64, info: &str, seen: u64) -> Result<Beat> {
        let mut con = self.con();
        let mut inv = LEAD.prepare_invoke();
        inv.key(keys::CLUSTER_LEADER)
            .key(keys::CLUSTER_TERM)
            .key(keys::CLUSTER_MEMBERS)
            .key(keys::CLUSTER_INFO)
            .arg(id)
            .arg(lease_ms)
            .arg(info)
            .arg(seen);
        let (leader, term, leads, leader_info, members): (String, u64, u8, String, usize) =
            self.run(inv.invoke_async(&mut con)).await?;
        Ok(Beat {
            leader,
            term,
            leads: leads == 1,
            leader_info,
            members,
        })
    }

    /// Gives up this instance's leadership and membership (a clean stop).
    pub async fn resign(&self, id: &str) -> Result<()> {
        let mut con = self.con();
        let mut inv = RESIGN.prepare_invoke();
        inv.key(keys::CLUSTER_LEADER)
            .key(keys::CLUSTER_TERM)
            .key(keys::CLUSTER_MEMBERS)
            .key(keys::CLUSTER_INFO)
            .arg(id);
        let _: u8 = self.run(inv.invoke_async(&mut con)).await?;
        Ok(())
    }

    /// The leader (if any holds the lease), the term, and the members
    /// with their leases and descriptions.
    pub async fn cluster(&self) -> Result<(Option<String>, u64, Vec<Member>)> {
        let mut con = self.con();
        let (leader, term, members, info): ClusterRead = self
            .run(
                redis::pipe()
                    .cmd("GET")
                    .arg(keys::CLUSTER_LEADER)
                    .cmd("GET")
                    .arg(keys::CLUSTER_TERM)
                    .cmd("ZRANGE")
                    .arg(keys::CLUSTER_MEMBERS)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .cmd("HGETALL")
                    .arg(keys::CLUSTER_INFO)
                    .query_async(&mut con),
            )
            .await?;
        let members = members
            .into_iter()
            .map(|(id, until)| Member {
                info: info.get(&id).cloned().unwrap_or_default(),
                lease_until_ms: until.max(0.0) as u64,
                id,
            })
            .collect();
        Ok((leader, term.unwrap_or(0), members))
    }
}
