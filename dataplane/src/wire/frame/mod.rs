//! Rovy frames: what a rovy link's data message carries when its first plaintext byte is below
//! 0x40 (an IP packet starts with nibble 4 or 6). DESIGN §1 "Frames" is the layout; this module
//! owns the kind bytes, and the views of each frame live beside them: [`Label`] is a route label
//! as a value, [`RoutedHeader`] and the four frame views read and write the frames that travel
//! along one. What a label means and how a node rewrites it is the switch's
//! ([`crate::switch`]).
//!
//! A frame arrives inside a link's data message, whose plaintext WireGuard pads to a multiple
//! of 16 bytes, so every view accepts bytes after its fixed layout.

mod label;
mod routed;

pub use label::{Label, LinkSlot, MAX_LABEL_LEN};
pub use routed::{
    PING_LEN, PONG_LEN, PingFrame, PongFrame, ROUTE_ERROR_LEN, ROUTE_ERROR_QUOTE_LEN,
    ROUTED_HEADER_LEN, ROUTED_MIN_LEN, RouteErrorCode, RouteErrorFrame, RoutedFrame, RoutedHeader,
    pong_signed_message,
};

use crate::DropReason;

/// The first byte of a rovy frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// A WireGuard message of an upper session, forwarded along its label.
    Routed = 0x10,
    /// A probe along a label, answered by [`FrameKind::Pong`] where the label ends.
    Ping = 0x11,
    /// The answer to a [`FrameKind::Ping`], carrying the replier's public key.
    Pong = 0x12,
    /// A routed frame could not go on; travels back along the return path.
    RouteError = 0x13,
    /// Link liveness and RTT, one link only.
    Hello = 0x20,
    /// Route announcements and retractions, one link only.
    Update = 0x21,
    /// Asks the origin of a route for a newer seqno.
    SeqnoRequest = 0x22,
    /// Asks a neighbour for one route or its full table.
    RouteRequest = 0x23,
    /// Acknowledges a message that asked for it.
    Ack = 0x24,
}

impl FrameKind {
    /// First plaintext bytes below this are rovy frames; 0x40 and above are IP packets or
    /// garbage.
    pub const FIRST_NON_FRAME: u8 = 0x40;

    /// The kind named by `byte`, if any.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0x10 => Self::Routed,
            0x11 => Self::Ping,
            0x12 => Self::Pong,
            0x13 => Self::RouteError,
            0x20 => Self::Hello,
            0x21 => Self::Update,
            0x22 => Self::SeqnoRequest,
            0x23 => Self::RouteRequest,
            0x24 => Self::Ack,
            _ => return None,
        })
    }

    /// The kind of the frame `plaintext`, decrypted from a link data message whose first byte
    /// is below [`Self::FIRST_NON_FRAME`]. A plain WireGuard peer only ever carries IP packets,
    /// so anything else from one is refused before its kind byte is even looked at.
    pub fn classify(plaintext: &[u8], from_rovy_peer: bool) -> Result<Self, DropReason> {
        let first = *plaintext.first().ok_or(DropReason::FrameTruncated)?;
        if !from_rovy_peer {
            return Err(DropReason::FrameFromWireguardPeer);
        }
        Self::from_byte(first).ok_or(DropReason::UnknownFrame)
    }

    /// Whether frames of this kind travel along a label (as opposed to one link).
    pub const fn is_routed(self) -> bool {
        matches!(
            self,
            Self::Routed | Self::Ping | Self::Pong | Self::RouteError
        )
    }
}

#[cfg(test)]
mod tests;
