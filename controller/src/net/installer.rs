//! The installer: the registry of connected switches, and the one place
//! plans are sent from.
//!
//! A plan's sends are queued on their switches in the plan's order (egress
//! first for a path: the decider ordered them), each queued message with
//! a fresh xid; a gated send is followed by a barrier whose xid names the
//! plan's setup. The plan's packet is parked in a slab until every gated
//! switch has answered its own barrier: a reply is accepted only from a
//! switch the barrier was sent to, once. Nothing awaits: the packet-in
//! path queues and returns, and the barrier replies complete the setup in
//! the connection tasks that read them.

use super::switch::{MsgCounts, SETUP_XID_BIT, Switch};
use crate::messages;
use crate::plan::{Execute, Plan, Release};
use crate::stats::Stats;
// ahash: keys come off the wire (datapath ids), so a DoS-resistant hash,
// but several times cheaper than std's SipHash on this hot path.
use ahash::AHashMap as HashMap;
use parking_lot::{Mutex, RwLock};
use slab::Slab;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A packet (or someone) waiting for the barriers of its plan.
struct Setup {
    generation: u8,
    /// Switches whose barrier reply is still due.
    waiting: SmallVec<[u64; 4]>,
    release: Option<Release>,
    confirmed: Option<crate::plan::Confirmed>,
    created: Instant,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("waiting", &self.waiting)
            .field("release", &self.release)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Setups {
    slab: Slab<Setup>,
    generation: u8,
}

/// Most setups in flight: the slot is 24 bits of the barrier xid.
const MAX_SETUPS: usize = 1 << 24;

/// Connected switches and setups in flight.
#[derive(Debug)]
pub struct Installer {
    switches: RwLock<HashMap<u64, Arc<Switch>>>,
    /// Whether plans go out: false while another instance of the
    /// cluster masters the switches.
    writable: std::sync::atomic::AtomicBool,
    setups: Mutex<Setups>,
    stats: Arc<Stats>,
}

impl Installer {
    pub fn new(stats: Arc<Stats>) -> Self {
        Installer {
            switches: RwLock::new(HashMap::default()),
            writable: std::sync::atomic::AtomicBool::new(true),
            setups: Mutex::new(Setups::default()),
            stats,
        }
    }

    /// Registers a connected switch, unless a connection that is still
    /// open holds its datapath id: then that one is returned and stays.
    /// A closed holder (dropped, or replaced because it stopped
    /// answering) gives way.
    pub fn add(&self, sw: Arc<Switch>) -> Result<(), Arc<Switch>> {
        let mut map = self.switches.write();
        match map.get(&sw.dpid) {
            Some(cur) if cur.is_connected() && !Arc::ptr_eq(cur, &sw) => Err(cur.clone()),
            _ => {
                map.insert(sw.dpid, sw);
                Ok(())
            }
        }
    }

    /// Unregisters `sw`, unless a newer connection of its datapath
    /// replaced it. True if it was the registered one.
    pub fn remove(&self, sw: &Arc<Switch>) -> bool {
        let mut map = self.switches.write();
        if map.get(&sw.dpid).is_some_and(|cur| Arc::ptr_eq(cur, sw)) {
            map.remove(&sw.dpid);
            true
        } else {
            false
        }
    }

    /// Opens (the leader) or closes (a follower) the way out for plans.
    pub fn set_writable(&self, on: bool) {
        self.writable
            .store(on, std::sync::atomic::Ordering::Release);
    }

    pub fn switch(&self, dpid: u64) -> Option<Arc<Switch>> {
        self.switches.read().get(&dpid).cloned()
    }

    /// Every connected switch, by datapath id.
    pub fn switches(&self) -> Vec<Arc<Switch>> {
        let mut v: Vec<_> = self.switches.read().values().cloned().collect();
        v.sort_by_key(|s| s.dpid);
        v
    }

    pub fn count(&self) -> usize {
        self.switches.read().len()
    }

    /// Setups waiting for barriers now.
    pub fn in_flight(&self) -> usize {
        self.setups.lock().slab.len()
    }

    /// Parks `release` (and `confirmed`) until each of `gated` answers
    /// the returned xid.
    fn begin(
        &self,
        release: Option<Release>,
        confirmed: Option<crate::plan::Confirmed>,
        gated: SmallVec<[u64; 4]>,
        created: Instant,
    ) -> Option<(usize, u32)> {
        let mut s = self.setups.lock();
        if s.slab.len() >= MAX_SETUPS {
            // More than 16M setups in flight: refuse rather than alias xids.
            drop(s);
            self.stats.setups_abandoned.inc();
            if let Some(c) = confirmed {
                c(false);
            }
            return None;
        }
        s.generation = s.generation.wrapping_add(1) & 0x7f;
        let generation = s.generation;
        let slot = s.slab.insert(Setup {
            generation,
            waiting: gated,
            release,
            confirmed,
            created,
        });
        Some((
            slot,
            SETUP_XID_BIT | (u32::from(generation) << 24) | slot as u32,
        ))
    }

    /// `dpid` answered (or will never answer: `gone`) the barrier of the
    /// setup `xid` names. The packet goes out when no switch is due.
    fn settle(&self, dpid: u64, xid: u32, gone: bool) {
        let slot = (xid & 0xff_ffff) as usize;
        let generation = ((xid >> 24) & 0x7f) as u8;
        let done = {
            let mut s = self.setups.lock();
            let Some(setup) = s.slab.get_mut(slot).filter(|x| x.generation == generation) else {
                return;
            };
            let Some(i) = setup.waiting.iter().position(|d| *d == dpid) else {
                // A barrier this switch was never sent, or answered twice:
                // it must not complete anyone's setup.
                if !gone {
                    self.stats.barriers_unexpected.inc();
                }
                return;
            };
            setup.waiting.swap_remove(i);
            if setup.waiting.is_empty() {
                Some(s.slab.remove(slot))
            } else {
                None
            }
        };
        if let Some(s) = done {
            if let Some(r) = &s.release {
                self.release(r);
            }
            if let Some(c) = s.confirmed {
                c(true);
            }
            self.stats.setups_completed.inc();
        }
    }

    /// A barrier reply with the setup bit arrived from `dpid`.
    pub fn barrier_reply(&self, dpid: u64, xid: u32) {
        self.settle(dpid, xid, false);
    }

    /// Drops setups whose barriers never came back (whoever waits on one
    /// is told it failed).
    pub fn sweep(&self, timeout: Duration) {
        let mut gone = Vec::new();
        {
            let mut s = self.setups.lock();
            let stale: Vec<usize> = s
                .slab
                .iter()
                .filter(|(_, x)| x.created.elapsed() >= timeout)
                .map(|(k, _)| k)
                .collect();
            for k in stale {
                gone.push(s.slab.remove(k));
            }
        }
        self.stats.setups_abandoned.add(gone.len() as u64);
        for s in gone {
            if let Some(c) = s.confirmed {
                c(false);
            }
        }
    }

    fn release(&self, r: &Release) {
        if let Some(sw) = self.switches.read().get(&r.dpid) {
            match messages::packet_out_head(r.in_port, r.out_port, r.data.len()) {
                Some(head) => sw.batch(|b| b.push_head_and_body(&head, &r.data)),
                // Too long to send: the encoder says why in the log.
                None => {
                    sw.send_xid(0, &messages::packet_out(r.in_port, r.out_port, &r.data));
                }
            }
        }
    }
}

impl Execute for Installer {
    fn execute(&self, plan: &mut Plan) {
        let release = plan.take_release();
        let confirmed = plan.take_confirmed();
        if !self.writable.load(std::sync::atomic::Ordering::Acquire) {
            // A follower: the switches refuse its writes anyway.
            self.stats.plans_not_leader.inc();
            if let Some(c) = confirmed {
                c(false);
            }
            return;
        }
        let mut setup = None;
        let mut confirm_now = None;
        if release.is_some() || confirmed.is_some() {
            let mut gated: SmallVec<[u64; 4]> = SmallVec::new();
            for d in plan.gated() {
                if !gated.contains(&d) {
                    gated.push(d);
                }
            }
            if gated.is_empty() {
                // Nothing to wait for: out after the messages.
                if let Some(r) = release {
                    plan.packet_out(r);
                }
                confirm_now = confirmed;
            } else {
                let made = plan.made().unwrap_or_else(Instant::now);
                setup = self.begin(release, confirmed, gated, made);
            }
        }
        let mut counts = MsgCounts::default();
        // Consecutive sends to one switch (a path's two directions, a
        // session's meters then flows) go in one batch: one registry
        // lookup, one lock of its buffer, one wake-up of its writer.
        for group in plan.send_list().chunk_by(|a, b| a.dpid == b.dpid) {
            let Some(dpid) = group.first().map(|s| s.dpid) else {
                continue;
            };
            let queued = {
                let switches = self.switches.read();
                switches.get(&dpid).is_some_and(|sw| {
                    sw.batch(|b| {
                        for send in group {
                            b.push_encoded(plan.bytes(send), &mut counts);
                            if let Some((_, xid)) = setup
                                && send.gate
                            {
                                b.push_encoded_xid(&messages::BARRIER_REQUEST, xid);
                            }
                        }
                        true
                    })
                })
            };
            if !queued && let Some((_, xid)) = setup {
                for send in group.iter().filter(|s| s.gate) {
                    self.settle(send.dpid, xid, true);
                }
            }
        }
        for r in plan.packet_outs() {
            self.release(r);
        }
        if let Some(c) = confirm_now {
            c(true);
        }
        if counts.flow_mods > 0 {
            self.stats.flow_mods_sent.add(counts.flow_mods);
        }
        if counts.meter_mods > 0 {
            self.stats.meter_mods_sent.add(counts.meter_mods);
        }
    }

    fn connected(&self, dpid: u64) -> bool {
        self.switches.read().contains_key(&dpid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use openflow::{FeaturesReply, MsgType};

    fn switch(dpid: u64) -> Arc<Switch> {
        Arc::new(Switch::new(
            FeaturesReply {
                datapath_id: dpid,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0,
                reserved: 0,
            },
            "127.0.0.1:1".parse().expect("addr"),
            Duration::from_secs(1),
        ))
    }

    /// The messages queued on `sw` so far: (type, xid).
    fn queued(sw: &Switch) -> Vec<(MsgType, u32)> {
        let mut out = BytesMut::new();
        sw.take_out(&mut out);
        let mut v = Vec::new();
        let mut b = &out[..];
        while let Some(h) = openflow::Header::peek(b) {
            v.push((h.msg_type, h.xid));
            b = &b[usize::from(h.length)..];
        }
        v
    }

    fn setup_plan() -> Plan {
        let mut p = Plan::new();
        for dpid in [2, 1] {
            p.push(dpid, &messages::table_miss());
            p.gate(dpid);
        }
        p.release(Release {
            dpid: 1,
            in_port: 1,
            out_port: 2,
            data: bytes::Bytes::from_static(b"frame"),
        });
        p
    }

    #[test]
    fn the_packet_waits_for_every_gated_switch_and_only_their_replies_count() {
        let stats = Arc::new(Stats::default());
        let inst = Installer::new(stats.clone());
        let (s1, s2, s3) = (switch(1), switch(2), switch(3));
        for s in [&s1, &s2, &s3] {
            assert!(inst.add(s.clone()).is_ok());
        }
        inst.execute(&mut setup_plan());
        let q2 = queued(&s2);
        assert_eq!(
            q2.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![MsgType::FlowMod, MsgType::BarrierRequest]
        );
        assert_ne!(q2[0].1, 0, "every queued message gets a fresh xid");
        let xid = q2[1].1;
        assert_ne!(xid & SETUP_XID_BIT, 0);
        assert_eq!(queued(&s1)[1].1, xid, "one setup, one xid");
        assert_eq!(inst.in_flight(), 1);
        // A switch that was never sent the barrier cannot complete it,
        // nor can one switch answering twice.
        inst.barrier_reply(3, xid);
        inst.barrier_reply(2, xid);
        inst.barrier_reply(2, xid);
        assert_eq!(stats.barriers_unexpected.get(), 2);
        assert!(queued(&s1).is_empty(), "not released yet");
        inst.barrier_reply(1, xid);
        assert_eq!(queued(&s1), vec![(MsgType::PacketOut, 0)]);
        assert_eq!(stats.setups_completed.get(), 1);
        assert_eq!(stats.flow_mods_sent.get(), 2);
        assert_eq!(inst.in_flight(), 0);
    }

    #[test]
    fn a_gated_switch_that_is_gone_does_not_hold_the_packet() {
        let stats = Arc::new(Stats::default());
        let inst = Installer::new(stats.clone());
        let s1 = switch(1);
        assert!(inst.add(s1.clone()).is_ok());
        // Switch 2 is not connected: only 1's barrier is awaited.
        inst.execute(&mut setup_plan());
        let q1 = queued(&s1);
        let xid = q1[1].1;
        inst.barrier_reply(1, xid);
        assert_eq!(queued(&s1), vec![(MsgType::PacketOut, 0)]);
        // Nothing gated at all: out right after the messages.
        let mut p = Plan::new();
        p.push(1, &messages::table_miss());
        p.release(Release {
            dpid: 1,
            in_port: 1,
            out_port: 2,
            data: bytes::Bytes::from_static(b"x"),
        });
        inst.execute(&mut p);
        assert_eq!(
            queued(&s1).iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![MsgType::FlowMod, MsgType::PacketOut]
        );
        // Abandoned setups are swept.
        inst.execute(&mut setup_plan());
        inst.sweep(Duration::ZERO);
        assert_eq!(inst.in_flight(), 0);
        assert_eq!(stats.setups_abandoned.get(), 1);
    }

    #[test]
    fn a_live_holder_keeps_its_datapath_and_a_replaced_one_gives_way() {
        let inst = Installer::new(Arc::new(Stats::default()));
        let (old, new) = (switch(5), switch(5));
        assert!(inst.add(old.clone()).is_ok());
        let held = inst.add(new.clone()).expect_err("the live holder stays");
        assert!(Arc::ptr_eq(&held, &old));
        assert!(Arc::ptr_eq(&inst.switch(5).expect("registered"), &old));
        // Once the holder is closed (it stopped answering), the newcomer
        // takes its place, and the old one's end does not unregister it.
        old.replace();
        assert!(inst.add(new.clone()).is_ok());
        assert!(!inst.remove(&old));
        assert!(inst.connected(5));
        assert!(inst.remove(&new));
        assert!(!inst.connected(5));
    }
}
