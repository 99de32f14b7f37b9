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
    /// The label of no hop: how a node announces itself.
    pub const EMPTY: Self = Label {
        slots: [0; MAX_LABEL_LEN],
        len: 0,
    };

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

    /// The first hop's slot: the link a frame with this label leaves its source on.
    pub fn first(&self) -> Option<LinkSlot> {
        self.as_slice().first().copied()
    }

    /// `slot ‖ self`: labels compose by prepending, so a node that reaches the announcer of
    /// `self` on `slot` installs this. `None` when it would pass [`MAX_LABEL_LEN`].
    pub fn prepend(&self, slot: LinkSlot) -> Option<Self> {
        let len = self.len();
        if len >= MAX_LABEL_LEN {
            return None;
        }
        let mut out = Label::EMPTY;
        out.slots[0] = slot;
        out.slots[1..=len].copy_from_slice(self.as_slice());
        out.len = self.len + 1;
        Some(out)
    }

    /// This label read backwards: at a destination, the rewritten label reversed is the way
    /// back to the source.
    pub fn backwards(&self) -> Self {
        let mut out = *self;
        out.slots[..self.len()].reverse();
        out
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Label({self})")
    }
}

/// Slots joined by dots (`3.7`), `-` for the empty label: how `route list` shows a label.
impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, slot) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            slot.fmt(f)?;
        }
        Ok(())
    }
}
