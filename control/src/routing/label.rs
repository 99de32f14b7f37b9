//! Route labels and link slots (DESIGN §1 "Slots and route labels").
//!
//! A label is a source route: byte i is the slot, at the i-th node of the path (node 0 = the
//! source), of the link to node i+1. Labels compose by prepending the slot a node received the
//! announcement on, so a label never needs more than [`MAX_LABEL_LEN`] bytes of fixed storage.

use std::fmt;
use std::num::NonZeroU8;

/// Longest label a routed frame carries.
pub const MAX_LABEL_LEN: usize = 14;
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

/// A route label of at most [`MAX_LABEL_LEN`] bytes, stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Label {
    len: u8,
    bytes: [u8; MAX_LABEL_LEN],
}

impl Label {
    /// The empty label: how a node announces itself.
    pub const EMPTY: Self = Self {
        len: 0,
        bytes: [0; MAX_LABEL_LEN],
    };

    /// A label holding `bytes`, or `None` when it is longer than [`MAX_LABEL_LEN`].
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut label = Self::EMPTY;
        label.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        label.len = bytes.len() as u8;
        Some(label)
    }

    /// The label's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Number of hops the label takes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether this is the empty label (the node itself).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first hop: the slot of the link the route leaves this node on. `None` for the empty
    /// label or a label starting with 0.
    pub fn first_hop(&self) -> Option<Slot> {
        Slot::new(*self.as_slice().first()?)
    }

    /// `slot ‖ self`: the label a node that received `self` on `slot` installs. `None` when the
    /// result would exceed [`MAX_LABEL_LEN`].
    pub fn prepend(&self, slot: Slot) -> Option<Self> {
        if self.len() >= MAX_LABEL_LEN {
            return None;
        }
        let mut out = Self::EMPTY;
        out.bytes[0] = slot.get();
        out.bytes[1..=self.len()].copy_from_slice(self.as_slice());
        out.len = self.len + 1;
        Some(out)
    }

    /// The label read backwards: at a destination, the received (rewritten) label reversed is
    /// the way back to the source.
    pub fn reversed(&self) -> Self {
        let mut out = *self;
        out.bytes[..self.len()].reverse();
        out
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({self})")
    }
}

impl fmt::Display for Label {
    /// Slots joined by dots, `-` for the empty label.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, byte) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            byte.fmt(f)?;
        }
        Ok(())
    }
}
