//! Link slots as routing holds them (DESIGN §1 "Slots and route labels"), and the label facts
//! routing adds; the label itself is the dataplane's ([`Label`]), so frames and routes agree
//! on it.

use std::fmt;
use std::num::NonZeroU8;

pub use rovy_dataplane::wire::frame::{Label, MAX_LABEL_LEN};

/// Longest label a node announces: the receiver prepends one slot.
pub const MAX_ANNOUNCED_LABEL_LEN: usize = MAX_LABEL_LEN - 1;

/// The number of a live link at one node, 1..=255 (0 is the node itself and never a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(NonZeroU8);

impl Slot {
    /// The slot numbered `byte`, or `None` for 0 (the node itself).
    pub const fn new(byte: u8) -> Option<Self> {
        match NonZeroU8::new(byte) {
            Some(nz) => Some(Self(nz)),
            None => None,
        }
    }

    /// The slot's byte as it appears in a label.
    pub const fn get(self) -> u8 {
        self.0.get()
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The first hop of `label` as a slot: `None` for the empty label or one starting with 0.
pub fn first_hop(label: &Label) -> Option<Slot> {
    Slot::new(label.first()?)
}
