//! One queue of deadlines for every link and destination, earliest first.
//!
//! Each owner records the deadline it queued (`armed`); an entry is current only while it
//! matches, so re-arming never searches the heap: later deadlines let the early entry fire
//! and re-arm, earlier ones push a new entry, and entries no owner matches are skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Target {
    /// Liveness, HELLO and the periodic full update of the link on `slot`.
    Link { slot: u8, generation: u64 },
    /// Expiry, retraction repeats, SEQNO_REQ repeats and forgetting of a destination.
    Destination { idx: usize, generation: u32 },
}

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Duration, Target)>>,
}

impl Deadlines {
    /// Queues `at` for `target` unless an earlier deadline is already armed.
    pub fn arm(&mut self, armed: &mut Option<Duration>, at: Option<Duration>, target: Target) {
        let Some(at) = at else { return };
        if armed.is_none_or(|armed| at < armed) {
            *armed = Some(at);
            self.heap.push(Reverse((at, target)));
        }
    }

    pub fn peek(&self) -> Option<(Duration, Target)> {
        self.heap.peek().map(|Reverse(entry)| *entry)
    }

    pub fn pop(&mut self) -> Option<(Duration, Target)> {
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry `is_current` rejects.
    pub fn retain(&mut self, mut is_current: impl FnMut(Duration, Target) -> bool) {
        self.heap
            .retain(|Reverse((at, target))| is_current(*at, *target));
    }
}
