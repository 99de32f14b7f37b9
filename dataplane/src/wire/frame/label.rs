//! A route label as a value: what the routing table stores per destination and what a frame's
//! header is filled from. The switch ([`crate::switch`]) says what the bytes mean.

use std::fmt;

/// A node's number for one of its live rovy links, 1..=255; 0 is the node itself.
pub type LinkSlot = u8;

/// The most slots a label holds: the 16-byte routed header less its kind and `pos|len` bytes.
pub const MAX_LABEL_LEN: usize = 14;

/// Up to [`MAX_LABEL_LEN`] link slots, one per hop. Fixed-size and `Copy`, so a label is
/// carried and reversed without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Label {
    /// The slots, zero after `len`: the form they take in a frame header.
    slots: [LinkSlot; MAX_LABEL_LEN],
    len: u8,
}

impl Label {
    /// The label made of `slots`, or `None` if there are more than [`MAX_LABEL_LEN`].
    pub fn new(slots: &[LinkSlot]) -> Option<Self> {
        let mut label = Label::default();
        label.slots.get_mut(..slots.len())?.copy_from_slice(slots);
        label.len = u8::try_from(slots.len()).ok()?;
        Some(label)
    }

    /// The label that follows `slots` in reverse order, or `None` if there are more than
    /// [`MAX_LABEL_LEN`]. A return path is a label read backwards.
    pub fn reversed(slots: &[LinkSlot]) -> Option<Self> {
        let mut label = Self::new(slots)?;
        label.slots[..slots.len()].reverse();
        Some(label)
    }

    /// The slots, in hop order.
    pub fn as_slice(&self) -> &[LinkSlot] {
        &self.slots[..usize::from(self.len)]
    }

    /// The slots padded with zeros to [`MAX_LABEL_LEN`], as a frame header holds them.
    pub fn padded(&self) -> &[LinkSlot; MAX_LABEL_LEN] {
        &self.slots
    }

    /// How many hops the label takes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the label takes no hop at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Label").field(&self.as_slice()).finish()
    }
}
