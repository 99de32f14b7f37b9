//! Zero-copy views of the four frames that travel along a route label: ROUTED, PING, PONG and
//! ROUTE_ERROR. All four start with the same 16-byte routed header, so the switch reads and
//! rewrites any of them through [`RoutedHeader`] without knowing more.
//!
//! ```text
//! routed header   kind (1) | pos<<4 | len (1) | label (14, zero after len)
//! ROUTED          header | one WireGuard message of the upper session
//! PING            header | id (8) | data (any length)
//! PONG            header | id (8) | replier's public key (32) | signature (64) | the PING's
//!                 data, echoed (the signature: XEdDSA by the replier's key over
//!                 "rovy pong" ‖ id, see [`pong_signed_message`])
//! ROUTE_ERROR     header (the return path) | code (1) | failed position (1) | quote (16)
//! ```

use super::{FrameKind, Label, LinkSlot, MAX_LABEL_LEN};
use crate::DropReason;
use crate::wire::KEEPALIVE_LEN;

/// Size of the header every label-routed frame starts with; what a packet buffer reserves in
/// front of an upper-session message that is forwarded along a label.
pub const ROUTED_HEADER_LEN: usize = 16;
/// Smallest ROUTED frame: the header and the smallest WireGuard message, a keepalive.
pub const ROUTED_MIN_LEN: usize = ROUTED_HEADER_LEN + KEEPALIVE_LEN;
/// Size of a PING without data.
pub const PING_LEN: usize = at::PING_END;
/// Size of a PONG without data.
pub const PONG_LEN: usize = at::PONG_END;
/// Size of a ROUTE_ERROR.
pub const ROUTE_ERROR_LEN: usize = at::ROUTE_ERROR_END;
/// How much of a failed frame a ROUTE_ERROR quotes: its routed header, which is all the source
/// needs to tell which of its labels broke.
pub const ROUTE_ERROR_QUOTE_LEN: usize = ROUTED_HEADER_LEN;

/// What a PONG's signature covers: a context string, then the id of the PING it answers. The
/// context keeps a signature made on any neighbour's request (a PING's id is the sender's
/// choice) from ever standing for another signed message of the node's.
pub fn pong_signed_message(id: u64) -> [u8; 17] {
    let mut message = [0u8; 17];
    message[..9].copy_from_slice(b"rovy pong");
    message[9..].copy_from_slice(&id.to_le_bytes());
    message
}

/// Field offsets, from the start of the frame.
mod at {
    pub const KIND: usize = 0;
    pub const POS_LEN: usize = 1;
    pub const LABEL: usize = 2;
    pub const ID: usize = super::ROUTED_HEADER_LEN;
    pub const PING_END: usize = ID + 8;
    pub const PUBLIC_KEY: usize = PING_END;
    pub const SIGNATURE: usize = PUBLIC_KEY + 32;
    pub const PONG_END: usize = SIGNATURE + crate::signature::SIGNATURE_LEN;
    pub const CODE: usize = super::ROUTED_HEADER_LEN;
    pub const FAILED_POS: usize = CODE + 1;
    pub const QUOTE: usize = FAILED_POS + 1;
    pub const ROUTE_ERROR_END: usize = QUOTE + super::ROUTE_ERROR_QUOTE_LEN;
}

const _: () = assert!(at::LABEL + MAX_LABEL_LEN == ROUTED_HEADER_LEN);
const _: () = assert!(MAX_LABEL_LEN < 16, "pos and len each fit a nibble");

/// Why a ROUTE_ERROR was sent: its code byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RouteErrorCode {
    /// The label named slot 0 or a slot with no live link at the failed position.
    NoLink = 1,
}

impl RouteErrorCode {
    /// The code named by `byte`, if any. Codes are read by the source only; intermediate nodes
    /// carry a code they do not know unchanged.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::NoLink),
            _ => None,
        }
    }
}

/// The smallest frame of a label-routed `kind`.
const fn min_len(kind: FrameKind) -> usize {
    match kind {
        FrameKind::Routed => ROUTED_MIN_LEN,
        FrameKind::Ping => PING_LEN,
        FrameKind::Pong => PONG_LEN,
        _ => ROUTE_ERROR_LEN,
    }
}

/// Checks everything a view of a label-routed frame relies on: a routed kind, the kind's whole
/// fixed layout present, `len` ≤ [`MAX_LABEL_LEN`] and `pos` ≤ `len`.
fn check(buf: &[u8]) -> Result<FrameKind, DropReason> {
    let first = *buf.first().ok_or(DropReason::FrameTruncated)?;
    let kind = FrameKind::from_byte(first)
        .filter(|kind| kind.is_routed())
        .ok_or(DropReason::UnknownFrame)?;
    if buf.len() < min_len(kind) {
        return Err(DropReason::FrameTruncated);
    }
    let (pos, len) = (buf[at::POS_LEN] >> 4, buf[at::POS_LEN] & 0x0f);
    if usize::from(len) > MAX_LABEL_LEN || pos > len {
        return Err(DropReason::BadLabel);
    }
    Ok(kind)
}

/// The `N` bytes at `at`. Views built with `new_checked` are always long enough; a view built
/// with `new_unchecked` over a short buffer is a caller bug, reported by this panic.
fn array<const N: usize>(buf: &[u8], at: usize) -> &[u8; N] {
    buf.get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .expect("buffer shorter than the frame layout; parse received bytes with new_checked")
}

fn array_mut<const N: usize>(buf: &mut [u8], at: usize) -> &mut [u8; N] {
    buf.get_mut(at..)
        .and_then(|rest| rest.first_chunk_mut::<N>())
        .expect("buffer shorter than the frame layout; size emit buffers from the *_LEN constants")
}

/// The routed header of any of the four label-routed frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutedHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RoutedHeader<T> {
    /// Wraps a received frame of any label-routed kind after checking its kind, that the
    /// kind's whole fixed layout is present ([`DropReason::FrameTruncated`]), and that its
    /// label length and position are possible ([`DropReason::BadLabel`]). Another kind is
    /// [`DropReason::UnknownFrame`].
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        check(buffer.as_ref())?;
        Ok(Self { buffer })
    }

    /// Wraps a buffer without checking it. Accessors panic if it is shorter than the header.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The frame's kind. Panics on a kind byte that names no frame, which a checked view
    /// never holds.
    pub fn kind(&self) -> FrameKind {
        FrameKind::from_byte(self.buffer.as_ref()[at::KIND])
            .expect("kind byte names no frame; parse received bytes with new_checked")
    }

    /// How many label bytes have been consumed: the index of the label byte naming the next
    /// hop, and the length of the return path written so far.
    pub fn pos(&self) -> usize {
        usize::from(self.buffer.as_ref()[at::POS_LEN] >> 4)
    }

    /// How many slots the label holds.
    pub fn label_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[at::POS_LEN] & 0x0f)
    }

    /// The label's slots (return path first, once the frame has been switched).
    pub fn label(&self) -> &[LinkSlot] {
        let slots = array::<MAX_LABEL_LEN>(self.buffer.as_ref(), at::LABEL);
        &slots[..self.label_len().min(MAX_LABEL_LEN)]
    }

    /// The header as the bytes a ROUTE_ERROR quotes.
    pub fn as_bytes(&self) -> &[u8; ROUTED_HEADER_LEN] {
        array(self.buffer.as_ref(), at::KIND)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RoutedHeader<T> {
    /// Writes a fresh header for a frame about to leave its source: `kind`, position 0 and
    /// `label`, zero after its length.
    pub fn fill(&mut self, kind: FrameKind, label: &Label) {
        let buf = self.buffer.as_mut();
        buf[at::KIND] = kind as u8;
        // A label's length is at most MAX_LABEL_LEN, so it fits the low nibble.
        buf[at::POS_LEN] = label.len() as u8;
        *array_mut(buf, at::LABEL) = *label.padded();
    }

    /// Moves the position. Panics past the label's length, which no rewrite of a checked frame
    /// does.
    pub fn set_pos(&mut self, pos: usize) {
        let len = self.label_len();
        assert!(pos <= len, "position {pos} past the label's {len} slots");
        // pos ≤ len ≤ 15 here, so it fits the high nibble.
        self.buffer.as_mut()[at::POS_LEN] = ((pos as u8) << 4) | len as u8;
    }

    /// The label's slots, for the switch to write the return path into.
    pub fn label_mut(&mut self) -> &mut [LinkSlot] {
        let len = self.label_len().min(MAX_LABEL_LEN);
        &mut array_mut::<MAX_LABEL_LEN>(self.buffer.as_mut(), at::LABEL)[..len]
    }
}

/// Declares a view of one label-routed frame kind with the constructors they share.
macro_rules! frame_view {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a received frame after the checks of [`RoutedHeader::new_checked`]; a
            /// frame of another kind is [`DropReason::UnknownFrame`].
            pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
                if check(buffer.as_ref())? == $kind {
                    Ok(Self { buffer })
                } else {
                    Err(DropReason::UnknownFrame)
                }
            }

            /// Wraps a buffer without checking it, for emitting. Accessors panic if the buffer
            /// is shorter than the frame.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Gives the buffer back.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The routed header.
            pub fn header(&self) -> RoutedHeader<&[u8]> {
                RoutedHeader::new_unchecked(self.buffer.as_ref())
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// The routed header, for writing.
            pub fn header_mut(&mut self) -> RoutedHeader<&mut [u8]> {
                RoutedHeader::new_unchecked(self.buffer.as_mut())
            }

            /// Writes the header of a frame of this kind leaving its source along `label`.
            pub fn fill_header(&mut self, label: &Label) {
                self.header_mut().fill($kind, label);
            }
        }
    };
}

frame_view!(
    /// ROUTED: the routed header, then one WireGuard message of the upper session between the
    /// label's two ends, which intermediate nodes never open.
    RoutedFrame,
    FrameKind::Routed
);

frame_view!(
    /// PING: the routed header, an id the sender matches its PONG by, and data the PONG
    /// echoes, so that a source needs no state to tell what its probe was (traceroute's PINGs
    /// carry the probe packet they stand for).
    PingFrame,
    FrameKind::Ping
);

frame_view!(
    /// PONG: the routed header, the id of the PING it answers, the replier's public key and
    /// signature, and the PING's data.
    PongFrame,
    FrameKind::Pong
);

frame_view!(
    /// ROUTE_ERROR: the routed header along the return path, why the failed frame could not go
    /// on, where along its label, and the failed frame's own routed header.
    RouteErrorFrame,
    FrameKind::RouteError
);

impl<T: AsRef<[u8]>> RoutedFrame<T> {
    /// The upper session's message. A handshake message keeps the link's padding after it
    /// (its type gives its length); a data message is a multiple of 16 bytes and has none.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[ROUTED_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RoutedFrame<T> {
    /// The upper session's message, for sealing or opening in place.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[ROUTED_HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> PingFrame<T> {
    /// The probe's id.
    pub fn id(&self) -> u64 {
        u64::from_le_bytes(*array(self.buffer.as_ref(), at::ID))
    }
}

impl<T: AsRef<[u8]>> PingFrame<T> {
    /// The data after the id, with the link's padding.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[at::PING_END..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PingFrame<T> {
    /// Sets the probe's id.
    pub fn set_id(&mut self, id: u64) {
        *array_mut(self.buffer.as_mut(), at::ID) = id.to_le_bytes();
    }

    /// The data after the id, for writing.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[at::PING_END..]
    }
}

impl<T: AsRef<[u8]>> PongFrame<T> {
    /// The id of the PING this answers.
    pub fn id(&self) -> u64 {
        u64::from_le_bytes(*array(self.buffer.as_ref(), at::ID))
    }

    /// The replier's public key.
    pub fn public_key(&self) -> &[u8; 32] {
        array(self.buffer.as_ref(), at::PUBLIC_KEY)
    }

    /// The replier's signature over [`pong_signed_message`] of the id.
    pub fn signature(&self) -> &[u8; crate::signature::SIGNATURE_LEN] {
        array(self.buffer.as_ref(), at::SIGNATURE)
    }

    /// The PING's data, echoed, with the link's padding.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[at::PONG_END..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PongFrame<T> {
    /// Sets the id of the PING this answers.
    pub fn set_id(&mut self, id: u64) {
        *array_mut(self.buffer.as_mut(), at::ID) = id.to_le_bytes();
    }

    /// Sets the replier's public key.
    pub fn set_public_key(&mut self, key: &[u8; 32]) {
        *array_mut(self.buffer.as_mut(), at::PUBLIC_KEY) = *key;
    }

    /// Sets the replier's signature.
    pub fn set_signature(&mut self, signature: &[u8; crate::signature::SIGNATURE_LEN]) {
        *array_mut(self.buffer.as_mut(), at::SIGNATURE) = *signature;
    }

    /// The echoed data, for writing.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[at::PONG_END..]
    }
}

impl<T: AsRef<[u8]>> RouteErrorFrame<T> {
    /// The code byte as sent; [`RouteErrorCode::from_byte`] names the known ones.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[at::CODE]
    }

    /// The position in the failed frame's label whose slot led nowhere.
    pub fn failed_pos(&self) -> usize {
        usize::from(self.buffer.as_ref()[at::FAILED_POS])
    }

    /// The failed frame's routed header, as it was when it failed.
    pub fn quote(&self) -> &[u8; ROUTE_ERROR_QUOTE_LEN] {
        array(self.buffer.as_ref(), at::QUOTE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RouteErrorFrame<T> {
    /// Sets the code.
    pub fn set_code(&mut self, code: RouteErrorCode) {
        self.buffer.as_mut()[at::CODE] = code as u8;
    }

    /// Sets the failed position. Panics past [`MAX_LABEL_LEN`], which no label reaches.
    pub fn set_failed_pos(&mut self, pos: usize) {
        assert!(pos <= MAX_LABEL_LEN, "position {pos} past any label");
        self.buffer.as_mut()[at::FAILED_POS] = pos as u8;
    }

    /// Sets the quote of the failed frame's routed header.
    pub fn set_quote(&mut self, quote: &[u8; ROUTE_ERROR_QUOTE_LEN]) {
        *array_mut(self.buffer.as_mut(), at::QUOTE) = *quote;
    }
}
