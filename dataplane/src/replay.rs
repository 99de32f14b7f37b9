//! Sliding replay window over received message counters (RFC 6479).
//!
//! A ring of 128 blocks of 64 bits; the block holding the greatest counter seen so far is the
//! head, and the other 127 blocks remember the counters just below it. Moving the window forward
//! only clears the blocks it enters, so the cost of a jump is bounded by the ring size, never by
//! the distance jumped. A counter is accepted if unseen and at most [`WINDOW_SIZE`] = 8128 below
//! the greatest, exactly as wireguard-go (`replay.go`) and the Linux kernel (`counter_validate`)
//! decide: the block of `greatest - 8128` is always the 127th block behind the head, still in
//! the ring.

use std::fmt;

use crate::session::REJECT_AFTER_MESSAGES;

const BLOCK_BITS: u64 = u64::BITS as u64;
const BLOCKS: usize = 128;

/// How many counters, counting the greatest one seen, the window remembers. A counter this far
/// or further below the greatest is rejected as too old.
pub const WINDOW_SIZE: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;

/// Which counters of one receiving session have been seen.
///
/// [`check`](Self::check) before decrypting (cheap rejection of replays without spending an
/// AEAD open), [`mark`](Self::mark) only after the packet authenticated, so forged packets can
/// never move the window.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Greatest counter marked so far (0 before any, which is harmless: 0 is then unmarked).
    greatest: u64,
    blocks: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("greatest", &self.greatest)
            .finish_non_exhaustive()
    }
}

/// Ring slot and bit mask for `counter`.
fn position(counter: u64) -> (usize, u64) {
    let slot = (counter / BLOCK_BITS) % BLOCKS as u64;
    (slot as usize, 1 << (counter % BLOCK_BITS))
}

impl ReplayWindow {
    /// A window that has seen nothing.
    pub const fn new() -> Self {
        Self {
            greatest: 0,
            blocks: [0; BLOCKS],
        }
    }

    /// Whether `counter` would be accepted now. Changes nothing.
    pub fn check(&self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        if counter > self.greatest {
            return true;
        }
        if self.greatest - counter > WINDOW_SIZE {
            return false;
        }
        let (slot, bit) = position(counter);
        self.blocks[slot] & bit == 0
    }

    /// Records `counter` as received. Returns false, changing nothing, if it was already
    /// recorded, is too old for the window, or is at or past the reject limit.
    pub fn mark(&mut self, counter: u64) -> bool {
        if counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        if counter > self.greatest {
            let head = self.greatest / BLOCK_BITS;
            let entered = (counter / BLOCK_BITS - head).min(BLOCKS as u64);
            for step in 1..=entered {
                self.blocks[((head + step) % BLOCKS as u64) as usize] = 0;
            }
            self.greatest = counter;
        } else if self.greatest - counter > WINDOW_SIZE {
            return false;
        }
        let (slot, bit) = position(counter);
        let fresh = self.blocks[slot] & bit == 0;
        self.blocks[slot] |= bit;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The obvious definition: every counter ever accepted, and the greatest of them.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        greatest: Option<u64>,
    }

    impl Model {
        fn accepts(&self, counter: u64) -> bool {
            counter < u64::MAX - 8192
                && !self.seen.contains(&counter)
                && self
                    .greatest
                    .is_none_or(|g| counter > g || g - counter <= 8128)
        }

        fn mark(&mut self, counter: u64) -> bool {
            let accepted = self.accepts(counter);
            if accepted {
                self.seen.insert(counter);
                self.greatest = Some(self.greatest.map_or(counter, |g| g.max(counter)));
            }
            accepted
        }
    }

    fn assert_same(window: &mut ReplayWindow, model: &mut Model, counter: u64) {
        let expected = model.accepts(counter);
        assert_eq!(window.check(counter), expected, "check({counter})");
        assert_eq!(
            window.check(counter),
            expected,
            "check must not change state"
        );
        assert_eq!(window.mark(counter), model.mark(counter), "mark({counter})");
    }

    /// The next counter of a random but realistic arrival sequence: mostly in order, with
    /// reordering, duplicates, window-edge probes, jumps across part or all of the ring, and
    /// rare leaps to the end of the counter space.
    fn next_counter(rng: &mut StdRng, model: &Model) -> u64 {
        let g = model.greatest.unwrap_or(0);
        match rng.gen_range(0..100) {
            0..=49 => g.saturating_add(rng.gen_range(1..=3)),
            50..=64 => g.saturating_sub(rng.gen_range(0..200)),
            65..=72 => g.saturating_sub(rng.gen_range(0..9000)),
            73..=76 => g.saturating_sub(8127 + rng.gen_range(0..3)),
            77..=82 => *model.seen.iter().next_back().unwrap_or(&0),
            83..=90 => g.saturating_add(rng.gen_range(60..8200)),
            91..=96 => g.saturating_add(rng.gen_range(8000..40_000)),
            97 => g.saturating_add(rng.gen_range(0..1 << 40)),
            98 => REJECT_AFTER_MESSAGES - rng.gen_range(0..10_000),
            _ => REJECT_AFTER_MESSAGES + rng.gen_range(0..=8192),
        }
    }

    #[test]
    fn matches_reference_model_on_long_random_sequences() {
        for seed in 0..6 {
            let mut rng = StdRng::seed_from_u64(seed);
            for _episode in 0..10 {
                let mut window = ReplayWindow::new();
                let mut model = Model::default();
                for _ in 0..20_000 {
                    let counter = next_counter(&mut rng, &model);
                    assert_same(&mut window, &mut model, counter);
                }
            }
        }
    }

    #[test]
    fn accepts_each_counter_once() {
        let mut window = ReplayWindow::new();
        assert!(window.check(0));
        assert!(window.mark(0));
        assert!(!window.check(0));
        assert!(!window.mark(0));
        assert!(window.mark(2));
        assert!(window.mark(1));
        assert!(!window.mark(1));
        assert!(!window.mark(2));
    }

    #[test]
    fn window_edge_is_exactly_8128_counters() {
        let mut window = ReplayWindow::new();
        assert!(window.mark(20_000));
        let oldest = 20_000 - 8128;
        assert!(window.check(oldest));
        assert!(!window.check(oldest - 1));
        assert!(!window.mark(oldest - 1));
        assert!(window.mark(oldest));
        assert!(!window.mark(oldest));
    }

    #[test]
    fn in_order_stream_wraps_the_ring_many_times() {
        let mut window = ReplayWindow::new();
        let total = BLOCKS as u64 * BLOCK_BITS * 5 + 17;
        for counter in 0..total {
            assert!(window.mark(counter), "{counter}");
        }
        let greatest = total - 1;
        for counter in greatest - 8128..=greatest {
            assert!(!window.check(counter), "replay of {counter}");
        }
        assert!(!window.check(greatest - 8129));
        assert!(window.check(total));
    }

    #[test]
    fn moving_forward_clears_stale_bits_of_reused_slots() {
        let mut window = ReplayWindow::new();
        let ring = BLOCKS as u64 * BLOCK_BITS;
        for counter in 0..ring {
            assert!(window.mark(counter));
        }
        // Jump half a ring: the slots entered held counters 0..4096 and must now read as unseen.
        let head = ring + ring / 2;
        assert!(window.mark(head));
        for counter in ring..head {
            assert!(window.check(counter), "{counter} reads as seen");
        }
        // A jump of exactly one ring lands in the slot and bit of a counter already marked.
        assert!(window.mark(head + ring));
        assert!(window.mark(head + ring - 1));
    }

    #[test]
    fn huge_jump_forgets_everything_below_the_window() {
        let mut window = ReplayWindow::new();
        for counter in 0..100 {
            assert!(window.mark(counter));
        }
        let far = 1 << 50;
        assert!(window.mark(far));
        assert!(!window.check(99));
        for counter in far - 8128..far {
            assert!(window.check(counter));
        }
    }

    #[test]
    fn counters_at_the_reject_limit_are_refused() {
        let mut window = ReplayWindow::new();
        assert_eq!(REJECT_AFTER_MESSAGES, u64::MAX - 8192);
        for counter in [REJECT_AFTER_MESSAGES, REJECT_AFTER_MESSAGES + 1, u64::MAX] {
            assert!(!window.check(counter));
            assert!(!window.mark(counter));
        }
        let last = REJECT_AFTER_MESSAGES - 1;
        assert!(window.mark(last));
        assert!(!window.mark(last));
        assert!(window.mark(last - 8128));
        assert!(!window.mark(last - 8129));
        assert!(!window.mark(u64::MAX));
    }
}
