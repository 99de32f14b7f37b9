//! Which tunnel's timer fires next, without looking at every tunnel.
//!
//! A min-heap of `(deadline, tunnel)` with lazy invalidation: rescheduling a tunnel pushes a new
//! entry and records it as the tunnel's deadline; entries that no longer match the record are
//! stale and dropped when they surface. Stale entries are bounded: once they outnumber the
//! tunnels the heap is rebuilt from the records. An idle endpoint therefore costs nothing per
//! tick, and finding the next deadline is a peek.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::TunnelId;

/// Entries beyond twice the tunnel count (plus this) trigger a rebuild.
const SLACK: usize = 64;

/// The deadlines of an endpoint's tunnels, earliest first.
#[derive(Debug, Default)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(Duration, TunnelId)>>,
    /// Each tunnel's deadline; a heap entry that differs from it is stale.
    scheduled: Vec<Option<Duration>>,
}

impl Deadlines {
    /// Makes room for tunnel `id` (tunnels are numbered densely), with no deadline.
    pub fn add(&mut self, id: TunnelId) {
        if self.scheduled.len() <= id.0 {
            self.scheduled.resize(id.0 + 1, None);
        }
    }

    /// Sets the deadline of `id` (`None` = nothing armed).
    pub fn schedule(&mut self, id: TunnelId, at: Option<Duration>) {
        let Some(slot) = self.scheduled.get_mut(id.0) else {
            return;
        };
        if *slot == at {
            return;
        }
        *slot = at;
        if let Some(at) = at {
            self.heap.push(Reverse((at, id)));
        }
        if self.heap.len() > 2 * self.scheduled.len() + SLACK {
            self.rebuild();
        }
    }

    /// The earliest deadline of any tunnel.
    pub fn next(&mut self) -> Option<Duration> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// A tunnel whose deadline is at or before `now`, earliest first; its deadline is cleared
    /// (the caller fires it and schedules what its timers arm next).
    pub fn pop_due(&mut self, now: Duration) -> Option<TunnelId> {
        let at = self.next()?;
        if at > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        self.scheduled[id.0] = None;
        Some(id)
    }

    fn is_live(&self, at: Duration, id: TunnelId) -> bool {
        self.scheduled.get(id.0) == Some(&Some(at))
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if self.is_live(at, id) {
                return;
            }
            self.heap.pop();
        }
    }

    fn rebuild(&mut self) {
        self.heap = self
            .scheduled
            .iter()
            .enumerate()
            .filter_map(|(i, at)| at.map(|at| Reverse((at, TunnelId(i)))))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn deadlines(n: usize) -> Deadlines {
        let mut d = Deadlines::default();
        for i in 0..n {
            d.add(TunnelId(i));
        }
        d
    }

    #[test]
    fn due_tunnels_come_out_earliest_first_and_once() {
        let mut d = deadlines(3);
        d.schedule(TunnelId(0), Some(ms(30)));
        d.schedule(TunnelId(1), Some(ms(10)));
        d.schedule(TunnelId(2), Some(ms(20)));
        assert_eq!(d.next(), Some(ms(10)));
        assert_eq!(d.pop_due(ms(9)), None, "nothing is due before 10 ms");
        assert_eq!(d.pop_due(ms(25)), Some(TunnelId(1)));
        assert_eq!(d.pop_due(ms(25)), Some(TunnelId(2)));
        assert_eq!(d.pop_due(ms(25)), None);
        assert_eq!(d.next(), Some(ms(30)));
    }

    #[test]
    fn rescheduling_replaces_the_old_deadline() {
        let mut d = deadlines(2);
        d.schedule(TunnelId(0), Some(ms(10)));
        d.schedule(TunnelId(1), Some(ms(20)));
        d.schedule(TunnelId(0), Some(ms(40)));
        assert_eq!(d.next(), Some(ms(20)), "the 10 ms entry is stale");
        d.schedule(TunnelId(1), None);
        assert_eq!(d.next(), Some(ms(40)));
        // Back to a deadline it had before: still fires once.
        d.schedule(TunnelId(0), Some(ms(10)));
        assert_eq!(d.pop_due(ms(50)), Some(TunnelId(0)));
        assert_eq!(d.pop_due(ms(50)), None);
        assert_eq!(d.next(), None);
    }

    #[test]
    fn stale_entries_stay_bounded() {
        let mut d = deadlines(4);
        for i in 0..10_000u64 {
            d.schedule(TunnelId((i % 4) as usize), Some(ms(1000 + i)));
            assert!(d.heap.len() <= 2 * 4 + SLACK + 1);
        }
        assert_eq!(d.next(), Some(ms(1000 + 9_996)));
        let due: Vec<_> = std::iter::from_fn(|| d.pop_due(ms(u64::MAX / 2))).collect();
        assert_eq!(due, [TunnelId(0), TunnelId(1), TunnelId(2), TunnelId(3)]);
    }
}
