//! The slot allocator: which 8-bit number each live link has at this node.
//!
//! A freed slot rests for [`SLOT_QUARANTINE`] before it is given again (longer than any route
//! lives), and free slots are handed out least recently freed first, so a label still naming
//! the old link cannot reach the new neighbour on its slot.

use std::collections::VecDeque;
use std::time::Duration;

use super::label::Slot;

/// How long a freed slot rests before it is reused.
pub const SLOT_QUARANTINE: Duration = Duration::from_secs(120);

/// Why a slot could not be given or freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Every slot is live or still resting.
    #[error("no free link slot (255 live or freed within the last 120 s)")]
    Exhausted,
    /// The slot to free is not live.
    #[error("link slot {0} is not live")]
    NotLive(Slot),
}

/// Slots 1..=255 of one node.
#[derive(Debug, Clone)]
pub struct SlotAllocator {
    /// Free slots in the order they were freed (never-used ones first, freed at `None`).
    free: VecDeque<(Slot, Option<Duration>)>,
    live: [bool; 256],
}

impl Default for SlotAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotAllocator {
    /// All 255 slots free and never used.
    pub fn new() -> Self {
        Self {
            free: (1..=u8::MAX)
                .filter_map(Slot::new)
                .map(|s| (s, None))
                .collect(),
            live: [false; 256],
        }
    }

    /// Gives the least recently freed slot that has rested long enough.
    pub fn allocate(&mut self, now: Duration) -> Result<Slot, SlotError> {
        // `free` is ordered by free time, so if the front has not rested, none has.
        let &(slot, freed_at) = self.free.front().ok_or(SlotError::Exhausted)?;
        if freed_at.is_some_and(|at| now < at + SLOT_QUARANTINE) {
            return Err(SlotError::Exhausted);
        }
        self.free.pop_front();
        self.live[usize::from(slot.get())] = true;
        Ok(slot)
    }

    /// Frees a live slot; it rests from `now`.
    pub fn free(&mut self, slot: Slot, now: Duration) -> Result<(), SlotError> {
        let live = &mut self.live[usize::from(slot.get())];
        if !*live {
            return Err(SlotError::NotLive(slot));
        }
        *live = false;
        self.free.push_back((slot, Some(now)));
        Ok(())
    }

    /// Whether `slot` is given to a live link.
    pub fn is_live(&self, slot: Slot) -> bool {
        self.live[usize::from(slot.get())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(1000);

    fn slot(byte: u8) -> Slot {
        Slot::new(byte).unwrap()
    }

    #[test]
    fn gives_every_slot_once_then_exhausts() {
        let mut slots = SlotAllocator::new();
        let given: Vec<u8> = (0..255)
            .map(|_| slots.allocate(T0).unwrap().get())
            .collect();
        assert_eq!(given, (1..=255).collect::<Vec<u8>>());
        assert_eq!(slots.allocate(T0), Err(SlotError::Exhausted));
    }

    #[test]
    fn freed_slot_rests_120_s_then_is_reused() {
        let mut slots = SlotAllocator::new();
        for _ in 0..255 {
            slots.allocate(T0).unwrap();
        }
        slots.free(slot(7), T0).unwrap();
        assert!(!slots.is_live(slot(7)));
        let just_before = T0 + SLOT_QUARANTINE - Duration::from_millis(1);
        assert_eq!(slots.allocate(just_before), Err(SlotError::Exhausted));
        assert_eq!(slots.allocate(T0 + SLOT_QUARANTINE), Ok(slot(7)));
        assert!(slots.is_live(slot(7)));
    }

    #[test]
    fn never_used_slots_come_before_freed_ones() {
        let mut slots = SlotAllocator::new();
        let first = slots.allocate(T0).unwrap();
        slots.free(first, T0).unwrap();
        let later = T0 + SLOT_QUARANTINE * 2;
        assert_eq!(slots.allocate(later), Ok(slot(2)));
    }

    #[test]
    fn least_recently_freed_is_reused_first() {
        let mut slots = SlotAllocator::new();
        for _ in 0..255 {
            slots.allocate(T0).unwrap();
        }
        slots.free(slot(200), T0).unwrap();
        slots.free(slot(3), T0 + Duration::from_secs(1)).unwrap();
        slots.free(slot(90), T0 + Duration::from_secs(2)).unwrap();
        let later = T0 + SLOT_QUARANTINE * 2;
        let order: Vec<u8> = (0..3)
            .map(|_| slots.allocate(later).unwrap().get())
            .collect();
        assert_eq!(order, [200, 3, 90]);
        assert_eq!(slots.allocate(later), Err(SlotError::Exhausted));
    }

    #[test]
    fn freeing_a_slot_that_is_not_live_is_refused() {
        let mut slots = SlotAllocator::new();
        assert_eq!(slots.free(slot(1), T0), Err(SlotError::NotLive(slot(1))));
        let s = slots.allocate(T0).unwrap();
        slots.free(s, T0).unwrap();
        assert_eq!(slots.free(s, T0), Err(SlotError::NotLive(s)));
    }
}
