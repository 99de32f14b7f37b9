//! The label switch: what a node does with a label-routed frame (ROUTED, PING, PONG,
//! ROUTE_ERROR) that arrives on one of its links. Only the 16-byte routed header is read and
//! rewritten, in place; the rest of the frame is never looked at.
//!
//! # Labels
//!
//! A node numbers its live rovy links with slots 1..=255 (0 is the node itself). A label lists
//! one slot per hop: byte `i` is the slot, at the `i`-th node of the path (node 0 is the
//! source), of the link to node `i + 1`. The source sends a fresh frame (`pos` 0) on the link
//! of `label[0]`. Every node that receives it on ingress slot `g`:
//!
//! 1. writes `label[pos] := g`, turning the byte it no longer needs into the way back;
//! 2. moves on: `pos += 1`;
//! 3. if `pos == len`, the frame is for this node ([`Switched::Local`]);
//! 4. else reads `next = label[pos]`: slot 0 or a slot without a live link is a
//!    [`Switched::RouteError`] to send back; `next == g` is a U-turn, dropped
//!    ([`DropReason::UTurn`]) unless the frame is a PING, which may probe a link and come back;
//!    anything else is [`Switched::Forward`] on `next`.
//!
//! So `label[..pos]` is always the path back, written backwards: [`way_back`] reads it in
//! reverse, which at the destination is the whole label and at a failure is the return path of
//! the ROUTE_ERROR ([`route_error_in_place`]).
//!
//! # Worked example
//!
//! ```text
//!        A ──3────5── B ──7────2── C          (each end's slot for the link)
//! ```
//!
//! - A's label to C is `[3, 7]`; A sends `pos 0, [3, 7]` on its slot 3.
//! - B receives it on slot 5: `label[0] := 5` → `pos 1, [5, 7]`; `next = 7`, live, not 5:
//!   forward on 7.
//! - C receives it on slot 2: `label[1] := 2` → `pos 2, [5, 2]`; `pos == len`: local. The way
//!   back is the label reversed, `[2, 5]`.
//! - C replies with `pos 0, [2, 5]` on its slot 2; B receives it on 7 → `pos 1, [7, 5]`,
//!   forwards on 5; A receives it on 3 → `pos 2, [7, 3]`: local, and A's way back, `[3, 7]`,
//!   is the label it started with.
//! - Had B's link 7 been dead, B would have sent back a ROUTE_ERROR along `[5]` (the reversed
//!   `label[..1]`), failed position 1, quoting `pos 1, [5, 7]`.

use crate::DropReason;
use crate::signature::SIGNATURE_LEN;
use crate::wire::frame::{
    FrameKind, Label, LinkSlot, PONG_LEN, PingFrame, PongFrame, ROUTE_ERROR_LEN, RouteErrorCode,
    RouteErrorFrame, RoutedHeader, pong_signed_message,
};

/// Which of a node's slots have a live link right now. The switch asks once per frame, so an
/// implementation is a lookup, never a search or a lock.
pub trait LiveSlots {
    /// Whether `slot` names a live link. Slot 0, the node itself, never does.
    fn is_live(&self, slot: LinkSlot) -> bool;
}

/// A set of slots in four words: 32 bytes, `Copy`, one shift and mask per lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotSet {
    words: [u64; 4],
}

impl SlotSet {
    /// No slot live.
    pub const fn new() -> Self {
        SlotSet { words: [0; 4] }
    }

    /// Marks `slot` live. Slot 0 is the node itself and never becomes a link: ignored.
    pub fn insert(&mut self, slot: LinkSlot) {
        if slot != 0 {
            self.words[usize::from(slot >> 6)] |= 1 << (slot & 63);
        }
    }

    /// Marks `slot` not live.
    pub fn remove(&mut self, slot: LinkSlot) {
        self.words[usize::from(slot >> 6)] &= !(1 << (slot & 63));
    }

    /// Whether `slot` is in the set.
    pub fn contains(&self, slot: LinkSlot) -> bool {
        self.words[usize::from(slot >> 6)] & (1 << (slot & 63)) != 0
    }
}

impl LiveSlots for SlotSet {
    fn is_live(&self, slot: LinkSlot) -> bool {
        self.contains(slot)
    }
}

/// Where a switched frame goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switched {
    /// The label ends here: the frame is for this node.
    Local,
    /// Re-seal the frame for the link in `slot` and send it.
    Forward {
        /// The next hop's slot: live, and not the ingress slot unless the frame is a PING.
        slot: LinkSlot,
    },
    /// The frame cannot go on: turn it into a ROUTE_ERROR with [`route_error_in_place`] and
    /// send that back on the ingress slot.
    RouteError {
        /// Why.
        code: RouteErrorCode,
        /// The label position whose slot led nowhere (the frame's `pos` now).
        failed_pos: usize,
    },
}

/// Switches the label-routed frame at the start of `frame`, received on link `ingress`: checks
/// its header, rewrites it in place (see the module docs) and says where it goes. On an error
/// the frame is to be dropped and counted, and its header may already be rewritten.
///
/// Errors: what [`RoutedHeader::new_checked`] refuses; [`DropReason::BadLabel`] for a frame
/// with no label byte left (`pos == len`: it already reached its end); [`DropReason::UTurn`];
/// [`DropReason::DeadSlot`] for a ROUTE_ERROR that cannot go on, since an error about an error
/// is never sent.
pub fn switch<L: LiveSlots + ?Sized>(
    frame: &mut [u8],
    ingress: LinkSlot,
    live: &L,
) -> Result<Switched, DropReason> {
    let mut header = RoutedHeader::new_checked(frame)?;
    let pos = header.pos();
    let kind = header.kind();
    let label = header.label_mut();
    let Some(arrived_by) = label.get_mut(pos) else {
        return Err(DropReason::BadLabel);
    };
    *arrived_by = ingress;
    let pos = pos + 1;
    let next = label.get(pos).copied();
    header.set_pos(pos);
    let Some(next) = next else {
        // The label holds `len` slots, so none at `pos` means `pos == len`.
        return Ok(Switched::Local);
    };
    if next == 0 || !live.is_live(next) {
        return match kind {
            FrameKind::RouteError => Err(DropReason::DeadSlot),
            _ => Ok(Switched::RouteError {
                code: RouteErrorCode::NoLink,
                failed_pos: pos,
            }),
        };
    }
    if next == ingress && kind != FrameKind::Ping {
        return Err(DropReason::UTurn);
    }
    Ok(Switched::Forward { slot: next })
}

/// The way back from here to the frame's source: the slots written so far, `label[..pos]`,
/// reversed. At the frame's destination that is the whole label, and the first slot of the
/// result is the link the frame came in on.
pub fn way_back<T: AsRef<[u8]>>(header: &RoutedHeader<T>) -> Label {
    let back = &header.label()[..header.pos().min(header.label_len())];
    Label::reversed(back).unwrap_or_default()
}

/// Turns the frame at the start of `buf`, as [`switch`] left it after a
/// [`Switched::RouteError`], into that ROUTE_ERROR in place: header along [`way_back`]
/// (`pos` 0), `code`, the failed position (the frame's `pos`), and the failed frame's routed
/// header as the quote. Returns the ROUTE_ERROR's length; send it on the link the failed frame
/// came in on, which is its label's first slot.
///
/// `buf` is the packet buffer from the frame on, and must have room for [`ROUTE_ERROR_LEN`]
/// bytes even if the failed frame was shorter (a PING is): [`DropReason::FrameTruncated`]
/// otherwise. A frame with no way back (`pos` 0: never switched) is [`DropReason::BadLabel`].
pub fn route_error_in_place(buf: &mut [u8], code: RouteErrorCode) -> Result<usize, DropReason> {
    let failed = RoutedHeader::new_checked(&*buf)?;
    let back = way_back(&failed);
    if back.is_empty() {
        return Err(DropReason::BadLabel);
    }
    let failed_pos = failed.pos();
    let quote = *failed.as_bytes();
    let out = buf
        .get_mut(..ROUTE_ERROR_LEN)
        .ok_or(DropReason::FrameTruncated)?;
    let mut error = RouteErrorFrame::new_unchecked(out);
    error.fill_header(&back);
    error.set_code(code);
    error.set_failed_pos(failed_pos);
    error.set_quote(&quote);
    Ok(ROUTE_ERROR_LEN)
}

/// The label of the route that broke, as the source of the failed frame sent it, from the
/// ROUTE_ERROR `error` that came back to it: the error's way back (the failed frame's path as
/// far as the failure) followed by the slots the failed frame had not reached yet. `None` for
/// an error whose parts do not fit together.
pub fn failed_label(error: &RouteErrorFrame<&[u8]>) -> Option<Label> {
    let reached = way_back(&error.header());
    // The quote is the failed frame's header alone, so only the header's own fields are read
    // (never its kind, which names a frame whose body is not here).
    let failed = RoutedHeader::new_unchecked(&error.quote()[..]);
    let failed_pos = error.failed_pos();
    if reached.len() != failed_pos
        || failed.label_len() > crate::wire::frame::MAX_LABEL_LEN
        || failed_pos > failed.label_len()
    {
        return None;
    }
    let mut slots = [0u8; crate::wire::frame::MAX_LABEL_LEN];
    let len = failed.label_len();
    slots[..failed_pos].copy_from_slice(reached.as_slice());
    slots[failed_pos..len].copy_from_slice(&failed.label()[failed_pos..]);
    Label::new(&slots[..len])
}

/// Writes into `out` the PONG answering `ping`, a PING whose label ended here: along
/// [`way_back`], the PING's id, `key` (the replier's), `sign`'s signature over
/// [`pong_signed_message`] of the id, and as much of the PING's data as `out` holds. Returns
/// the PONG's length and the way back, whose first slot is the link to send it on. A PING with
/// no way back is [`DropReason::BadLabel`]; an `out` shorter than [`PONG_LEN`],
/// [`DropReason::BadLength`]; neither is signed.
pub fn answer_ping(
    ping: &PingFrame<&[u8]>,
    key: &[u8; 32],
    sign: impl FnOnce(&[u8]) -> [u8; SIGNATURE_LEN],
    out: &mut [u8],
) -> Result<(usize, Label), DropReason> {
    let back = way_back(&ping.header());
    if back.is_empty() {
        return Err(DropReason::BadLabel);
    }
    let data = ping.data();
    let len = (PONG_LEN + data.len()).min(out.len());
    if len < PONG_LEN {
        return Err(DropReason::BadLength);
    }
    let mut pong = PongFrame::new_unchecked(&mut out[..len]);
    pong.fill_header(&back);
    pong.set_id(ping.id());
    pong.set_public_key(key);
    pong.set_signature(&sign(&pong_signed_message(ping.id())));
    let echoed = pong.data_mut();
    let n = echoed.len();
    echoed.copy_from_slice(&data[..n]);
    Ok((len, back))
}

#[cfg(test)]
mod tests;
