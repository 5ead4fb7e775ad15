//! Several instances, one network: which instance masters the switches.
//!
//! Every instance pointed at the same Redis beats every `BEAT` (one Lua
//! script, `crm::cluster`): it renews its membership and, if it leads,
//! the leader's lease; when nobody holds the lease (the leader died or
//! stopped), the first to beat takes it and the term grows. The leader is
//! OpenFlow MASTER of every switch, with the term as `generation_id`, so
//! a switch refuses a former leader's late writes; the others are SLAVE
//! and never write.
//!
//! This module owns the role and what a heartbeat's answer means for it
//! ([`verdict`], pure). It knows nothing of switches or sessions: the
//! control plane acts on the [`Step`] it returns.

use crate::crm::cluster::Beat;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often an instance beats.
pub const BEAT: Duration = Duration::from_millis(400);
/// How long a beat holds the lease: a dead leader's switches are taken
/// over at most this long after its last beat (plus one beat).
pub const LEASE: Duration = Duration::from_millis(1500);

/// What this instance is in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Before the first heartbeat's answer.
    Starting,
    /// Redis did not answer the first heartbeat: acting as the one
    /// controller (switches keep the EQUAL role) until it does.
    Alone,
    /// Master of every switch, with `term` as the generation id.
    Leader { term: u64 },
    /// SLAVE of every switch; `leader` masters them.
    Follower { leader: String, term: u64 },
    /// A leader that could not renew its lease while other instances
    /// were alive: it writes nothing until a heartbeat says who leads.
    Fenced { term: u64 },
}

impl Role {
    /// Whether this instance writes to switches and decides.
    pub fn acts(&self) -> bool {
        matches!(self, Role::Alone | Role::Leader { .. })
    }

    /// The term this role knows (0 before any).
    pub fn term(&self) -> u64 {
        match self {
            Role::Leader { term } | Role::Follower { term, .. } | Role::Fenced { term } => *term,
            Role::Starting | Role::Alone => 0,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Alone => "alone",
            Role::Leader { .. } => "leader",
            Role::Follower { .. } => "follower",
            Role::Fenced { .. } => "fenced",
        }
    }
}

/// What a heartbeat's answer asks of the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing changes.
    Stay,
    /// Redis did not answer the first heartbeat: act alone.
    ActAlone,
    /// Lead with `term`: `takeover` when this instance followed until
    /// now (the switches hold the former leader's flows and meters, to be
    /// adopted, not wiped), otherwise a start or a renewed term.
    Lead { term: u64, takeover: bool },
    /// Follow `leader`.
    Follow { leader: String, term: u64 },
    /// Another instance leads while this one acted: it must stop acting
    /// at once (its switches already refuse its writes).
    StepDown { leader: String },
    /// Stop writing until Redis answers (see [`Role::Fenced`]).
    Fence { term: u64 },
}

/// What an instance remembers between heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Other instances alive at the last answered heartbeat.
    pub peers: usize,
    /// Since the last answered heartbeat.
    pub unanswered_for: Duration,
}

/// What `beat` (None: Redis did not answer) means for an instance that is
/// `now`. A leader that cannot reach Redis keeps leading while it is
/// alone (a lone controller keeps the network going through a Redis
/// outage), or for a lease; with other instances alive, once its lease is
/// over one of them may lead, so it stops writing (and the switches'
/// generation id refuses it anyway once another has taken over).
pub fn verdict(now: &Role, beat: Option<&Beat>, mem: &Memory) -> Step {
    let Some(b) = beat else {
        return match now {
            Role::Starting => Step::ActAlone,
            Role::Leader { term } if mem.peers > 0 && mem.unanswered_for > LEASE => {
                Step::Fence { term: *term }
            }
            _ => Step::Stay,
        };
    };
    if b.leads {
        return match now {
            Role::Leader { term } if *term == b.term => Step::Stay,
            Role::Follower { .. } => Step::Lead {
                term: b.term,
                takeover: true,
            },
            _ => Step::Lead {
                term: b.term,
                takeover: false,
            },
        };
    }
    match now {
        Role::Follower { leader, term } if *leader == b.leader && *term == b.term => Step::Stay,
        Role::Starting | Role::Follower { .. } => Step::Follow {
            leader: b.leader.clone(),
            term: b.term,
        },
        Role::Alone | Role::Leader { .. } | Role::Fenced { .. } => Step::StepDown {
            leader: b.leader.clone(),
        },
    }
}

/// How an instance describes itself to the others (`/cluster`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub id: String,
    /// Where its REST API answers.
    pub api: String,
    pub openflow: String,
    pub role: String,
    /// Switches connected to it (16 hex digits).
    pub switches: Vec<String>,
    pub started_at: String,
}

/// This instance's identity and role.
#[derive(Debug)]
pub struct Cluster {
    pub id: String,
    role: RwLock<Role>,
    /// The leader's API address, when another instance leads.
    leader_api: RwLock<Option<String>>,
}

impl Cluster {
    /// A lone controller until the first heartbeat says otherwise.
    pub fn new(id: String) -> Self {
        Cluster {
            id,
            role: RwLock::new(Role::Alone),
            leader_api: RwLock::new(None),
        }
    }

    pub fn role(&self) -> Role {
        self.role.read().clone()
    }

    pub fn acts(&self) -> bool {
        self.role.read().acts()
    }

    pub fn set_role(&self, role: Role) {
        *self.role.write() = role;
    }

    /// Where API calls go when another instance leads.
    pub fn leader_api(&self) -> Option<String> {
        self.leader_api.read().clone()
    }

    pub fn set_leader_api(&self, api: Option<String>) {
        *self.leader_api.write() = api;
    }
}

/// The default instance id: the host's name and the OpenFlow port, stable
/// across restarts (a restarted instance finds its own lease and keeps
/// leading) and distinct for instances sharing a host.
pub fn default_id(openflow_port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tierflow".to_owned());
    format!("{host}:{openflow_port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Memory = Memory {
        peers: 0,
        unanswered_for: Duration::ZERO,
    };

    fn beat(leader: &str, term: u64, leads: bool) -> Beat {
        Beat {
            leader: leader.into(),
            term,
            leads,
            leader_info: String::new(),
            members: 1,
        }
    }

    #[test]
    fn the_first_answer_decides_how_an_instance_starts() {
        assert_eq!(
            verdict(&Role::Starting, Some(&beat("a", 1, true)), &M),
            Step::Lead {
                term: 1,
                takeover: false
            }
        );
        assert_eq!(
            verdict(&Role::Starting, Some(&beat("a", 1, false)), &M),
            Step::Follow {
                leader: "a".into(),
                term: 1
            }
        );
        assert_eq!(verdict(&Role::Starting, None, &M), Step::ActAlone);
    }

    #[test]
    fn a_follower_takes_over_when_the_lease_is_its_own() {
        let f = Role::Follower {
            leader: "a".into(),
            term: 1,
        };
        assert_eq!(verdict(&f, Some(&beat("a", 1, false)), &M), Step::Stay);
        assert_eq!(verdict(&f, None, &M), Step::Stay);
        assert_eq!(
            verdict(&f, Some(&beat("b", 2, true)), &M),
            Step::Lead {
                term: 2,
                takeover: true
            }
        );
        // Another instance took over first: follow it.
        assert_eq!(
            verdict(&f, Some(&beat("c", 2, false)), &M),
            Step::Follow {
                leader: "c".into(),
                term: 2
            }
        );
    }

    #[test]
    fn a_leader_keeps_leading_without_redis_and_steps_down_for_another() {
        let l = Role::Leader { term: 3 };
        assert_eq!(verdict(&l, Some(&beat("a", 3, true)), &M), Step::Stay);
        assert_eq!(verdict(&l, None, &M), Step::Stay);
        // Its lease lapsed and it took it again: a new term for the switches.
        assert_eq!(
            verdict(&l, Some(&beat("a", 4, true)), &M),
            Step::Lead {
                term: 4,
                takeover: false
            }
        );
        assert_eq!(
            verdict(&l, Some(&beat("b", 4, false)), &M),
            Step::StepDown { leader: "b".into() }
        );
        assert_eq!(
            verdict(&Role::Alone, Some(&beat("b", 4, false)), &M),
            Step::StepDown { leader: "b".into() }
        );
        assert_eq!(
            verdict(&Role::Alone, Some(&beat("a", 5, true)), &M),
            Step::Lead {
                term: 5,
                takeover: false
            }
        );
    }

    #[test]
    fn a_leader_cut_from_redis_stops_writing_when_others_may_lead() {
        let l = Role::Leader { term: 3 };
        let cut = |peers, ms| Memory {
            peers,
            unanswered_for: Duration::from_millis(ms),
        };
        // Alone: it keeps the network going through the outage.
        assert_eq!(verdict(&l, None, &cut(0, 60_000)), Step::Stay);
        // With others: for a lease, then it stops writing.
        assert_eq!(verdict(&l, None, &cut(1, 1_000)), Step::Stay);
        assert_eq!(verdict(&l, None, &cut(1, 2_000)), Step::Fence { term: 3 });
        let f = Role::Fenced { term: 3 };
        assert!(!f.acts());
        assert_eq!(verdict(&f, None, &cut(1, 9_000)), Step::Stay);
        // Redis back: another leads (stop), or nobody took over (lead again).
        assert_eq!(
            verdict(&f, Some(&beat("b", 4, false)), &M),
            Step::StepDown { leader: "b".into() }
        );
        assert_eq!(
            verdict(&f, Some(&beat("a", 4, true)), &M),
            Step::Lead {
                term: 4,
                takeover: false
            }
        );
    }
}
