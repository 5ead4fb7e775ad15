//! Meter ids, per switch. A session gets two meters (one per direction) on
//! every switch of its path, a media leg two more on every switch of its
//! own path; ids return to their switch's pool when the session ends.

use ahash::AHashMap as HashMap;
use std::collections::BTreeSet;

/// The highest id a switch's pool takes from another instance's records
/// (OVS offers 262,144 meters).
const MAX_RESERVED: u32 = 1 << 20;

/// Meter ids of one switch. Freed ids are reused lowest-first so a
/// long-running switch's ids stay dense; the ceiling is the switch's
/// `max_meter` (0 until its meter features are known).
#[derive(Debug, Clone, Default)]
pub struct MeterPool {
    next: u32,
    /// A set, not a list: a double release must not hand one id to two
    /// sessions, and checking a list for it is linear per release.
    free: BTreeSet<u32>,
    max: u32,
}

impl MeterPool {
    pub fn new(max_meter: u32) -> Self {
        MeterPool {
            next: 1,
            free: BTreeSet::new(),
            max: max_meter,
        }
    }

    /// The switch's meter features arrived (or changed on reconnect).
    pub fn set_max(&mut self, max_meter: u32) {
        self.max = max_meter;
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    pub fn alloc(&mut self) -> Option<u32> {
        if let Some(id) = self.free.pop_first() {
            return Some(id);
        }
        if self.next == 0 || self.next > self.max {
            return None;
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        Some(id)
    }

    /// Marks `id` taken (a session adopted with the meters another
    /// instance gave it); false if it was taken already.
    pub fn reserve(&mut self, id: u32) -> bool {
        // Ids come from Redis: one beyond the switch's ceiling (or absurdly
        // high while it is unknown) must not fill the free set.
        if id == 0 || id > MAX_RESERVED || (self.max > 0 && id > self.max) {
            return false;
        }
        if id >= self.next {
            // The ids skipped on the way are free.
            self.free.extend(self.next.max(1)..id);
            self.next = id.saturating_add(1);
            return true;
        }
        self.free.remove(&id)
    }

    pub fn release(&mut self, id: u32) {
        if id != 0 && id < self.next {
            self.free.insert(id);
        }
    }

    pub fn in_use(&self) -> usize {
        (self.next.saturating_sub(1) as usize).saturating_sub(self.free.len())
    }
}

/// Every switch's pool.
#[derive(Debug, Default)]
pub struct Pools {
    by_switch: HashMap<u64, MeterPool>,
}

impl Pools {
    /// Learns (or updates) a switch's ceiling.
    pub fn set_max(&mut self, dpid: u64, max: u32) {
        self.by_switch
            .entry(dpid)
            .or_insert_with(|| MeterPool::new(max))
            .set_max(max);
    }

    /// Marks `id` taken on `dpid` (see [`MeterPool::reserve`]).
    pub fn reserve(&mut self, dpid: u64, id: u32) -> bool {
        self.by_switch
            .entry(dpid)
            .or_insert_with(|| MeterPool::new(0))
            .reserve(id)
    }

    /// Two ids on `dpid` (forward, reverse); 0 where none is left.
    pub fn alloc_pair(&mut self, dpid: u64) -> (u32, u32) {
        let p = self
            .by_switch
            .entry(dpid)
            .or_insert_with(|| MeterPool::new(0));
        let a = p.alloc().unwrap_or(0);
        let b = p.alloc().unwrap_or(0);
        (a, b)
    }

    /// A pair on every switch of `dpids`, or none at all (what was taken
    /// goes back) when a switch has no pair left.
    pub fn alloc_path(
        &mut self,
        dpids: impl Iterator<Item = u64> + Clone,
    ) -> Option<Vec<(u32, u32)>> {
        let mut got = Vec::new();
        for d in dpids.clone() {
            let (a, b) = self.alloc_pair(d);
            got.push((a, b));
            if a == 0 || b == 0 {
                for (d, (a, b)) in dpids.zip(got) {
                    self.release(d, a);
                    self.release(d, b);
                }
                return None;
            }
        }
        Some(got)
    }

    pub fn release(&mut self, dpid: u64, id: u32) {
        if let Some(p) = self.by_switch.get_mut(&dpid) {
            p.release(id);
        }
    }

    pub fn in_use(&self, dpid: u64) -> usize {
        self.by_switch.get(&dpid).map_or(0, MeterPool::in_use)
    }

    pub fn max(&self, dpid: u64) -> u32 {
        self.by_switch.get(&dpid).map_or(0, MeterPool::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_pool_reuses_ids_and_respects_the_ceiling() {
        let mut p = MeterPool::new(3);
        assert_eq!(
            (p.alloc(), p.alloc(), p.alloc(), p.alloc()),
            (Some(1), Some(2), Some(3), None)
        );
        p.release(2);
        p.release(2);
        p.release(7);
        assert_eq!(p.in_use(), 2);
        assert_eq!(p.alloc(), Some(2));
        assert_eq!(p.alloc(), None);
        let mut none = MeterPool::new(0);
        assert_eq!(none.alloc(), None);
        none.set_max(1);
        assert_eq!(none.alloc(), Some(1));
    }

    #[test]
    fn adopted_ids_are_taken_and_the_ids_below_them_stay_free() {
        let mut p = MeterPool::new(10);
        assert!(p.reserve(3));
        assert!(!p.reserve(3), "taken twice");
        assert!(!p.reserve(11), "beyond the ceiling");
        assert!(!p.reserve(0));
        assert_eq!(p.in_use(), 1);
        assert_eq!(
            (p.alloc(), p.alloc(), p.alloc()),
            (Some(1), Some(2), Some(4))
        );
        p.release(2);
        assert!(p.reserve(2));
        assert_eq!(p.alloc(), Some(5));
        let mut unknown = MeterPool::new(0);
        assert!(!unknown.reserve(u32::MAX));
        assert!(unknown.reserve(7));
    }

    #[test]
    fn freed_ids_come_back_lowest_first() {
        let mut p = MeterPool::new(10);
        for _ in 0..5 {
            p.alloc();
        }
        p.release(4);
        p.release(2);
        assert_eq!(
            (p.alloc(), p.alloc(), p.alloc()),
            (Some(2), Some(4), Some(6))
        );
        let mut pools = Pools::default();
        assert_eq!(pools.alloc_pair(9), (0, 0), "unknown switch: no meters");
        pools.set_max(9, 2);
        assert_eq!(pools.alloc_pair(9), (1, 2));
        assert_eq!(pools.in_use(9), 2);
        pools.release(9, 1);
        assert_eq!(pools.in_use(9), 1);
        // A path: all or nothing.
        pools.set_max(10, 4);
        assert!(
            pools.alloc_path([10, 9].into_iter()).is_none(),
            "9 has one meter left"
        );
        assert_eq!((pools.in_use(10), pools.in_use(9)), (0, 1));
        pools.release(9, 2);
        assert_eq!(
            pools.alloc_path([10, 9].into_iter()),
            Some(vec![(1, 2), (1, 2)])
        );
    }
}
