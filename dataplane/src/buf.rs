//! The packet buffer layout: where every header sits around a packet, so that reading from the
//! TUN, sealing for a link, sealing for an upper session, staging and the offload paths all
//! work in one buffer without copying, and agree on it because it is written down once, here.
//!
//! An outbound packet is read at [`PACKET_AT`], behind room for every header that may go in
//! front of it on the way out:
//!
//! ```text
//!  0          16           32            48                         +pad   +16     +16
//!  | link hdr | frame hdr  | upper hdr   | packet ...               |      | upper | link |
//!  |          | (ROUTED)   | (WireGuard) |                          |      | tag   | tag  |
//! ```
//!
//! A packet for a direct neighbour takes only the link header: its datagram starts at
//! [`Encap::Direct`]`.datagram_at()` (32) and the bytes before it are never written. A packet
//! routed through the overlay takes all three and its datagram starts at 0. A received datagram
//! is read at 0: its link plaintext starts at [`LINK_PAYLOAD_AT`], and the packet inside a
//! routed frame lands at [`PACKET_AT`] again.

use crate::wire::frame::ROUTED_HEADER_LEN;
use crate::wire::{DATA_HEADER_LEN, TAG_LEN};

/// The link session's data header.
pub const LINK_HEADER_LEN: usize = DATA_HEADER_LEN;
/// The upper session's data header, inside a routed frame.
pub const UPPER_HEADER_LEN: usize = DATA_HEADER_LEN;
/// Where an outbound packet is read: behind every header that may precede it.
pub const PACKET_AT: usize = LINK_HEADER_LEN + ROUTED_HEADER_LEN + UPPER_HEADER_LEN;
/// The largest link MTU a node runs with (the config refuses more): what one packet from a
/// TUN without segmentation offload can be.
pub const MAX_MTU: usize = 9000;

/// What the overlay adds inside a link's payload: the routed frame header, and the upper
/// session's data header and tag. The fc00::/8 route carries `mtu - OVERLAY_OVERHEAD`.
pub const OVERLAY_OVERHEAD: usize = ROUTED_HEADER_LEN + UPPER_HEADER_LEN + TAG_LEN;
/// The least link MTU the overlay works over: IPv6's minimum of 1280 plus the overhead.
pub const OVERLAY_MIN_MTU: usize = 1280 + OVERLAY_OVERHEAD;

/// Where the link plaintext of a datagram read at offset 0 starts.
pub const LINK_PAYLOAD_AT: usize = LINK_HEADER_LEN;
/// Where the upper session's message starts inside a routed frame, in a buffer laid out here.
pub const UPPER_MESSAGE_AT: usize = LINK_PAYLOAD_AT + ROUTED_HEADER_LEN;
/// Room after a packet of MTU size: padding to 16 never passes the MTU, so two tags (upper and
/// link), and slack for a datagram a peer padded differently.
const TAILROOM: usize = 2 * TAG_LEN + 64;

/// Size of one packet buffer for `mtu`: every header, the packet, and the tailroom; large
/// enough for any datagram a peer may send us with that MTU.
pub const fn buffer_len(mtu: usize) -> usize {
    PACKET_AT + mtu + TAILROOM
}

/// Most bytes of packet a buffer of `buffer_len` bytes can take at [`PACKET_AT`] and still be
/// sealed in place.
pub const fn packet_room(buffer_len: usize) -> usize {
    buffer_len.saturating_sub(PACKET_AT + TAILROOM)
}

/// The headers an outbound packet gets, which decides where its datagram starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// A link session only: to a neighbour.
    Direct,
    /// Link session, routed frame and upper session: through the overlay.
    Routed,
}

impl Encap {
    /// Offset of the datagram in the buffer of a packet at [`PACKET_AT`].
    pub const fn datagram_at(self) -> usize {
        match self {
            Encap::Direct => PACKET_AT - LINK_HEADER_LEN,
            Encap::Routed => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_stack_in_front_of_the_packet() {
        assert_eq!(PACKET_AT, 48);
        assert_eq!(Encap::Direct.datagram_at() + LINK_HEADER_LEN, PACKET_AT);
        assert_eq!(
            Encap::Routed.datagram_at() + LINK_HEADER_LEN + ROUTED_HEADER_LEN + UPPER_HEADER_LEN,
            PACKET_AT,
            "a routed datagram uses all the headroom"
        );
        assert_eq!(
            LINK_PAYLOAD_AT + ROUTED_HEADER_LEN + UPPER_HEADER_LEN,
            PACKET_AT,
            "a received routed packet lands where an outbound one is read"
        );
    }

    #[test]
    fn the_overlay_needs_48_bytes_and_an_mtu_of_1328() {
        assert_eq!(OVERLAY_OVERHEAD, 48);
        assert_eq!(OVERLAY_MIN_MTU, 1328);
    }

    #[test]
    fn a_buffer_seals_an_mtu_packet_for_either_encapsulation() {
        for mtu in [1280, 1420, 9000] {
            let len = buffer_len(mtu);
            assert_eq!(packet_room(len), mtu);
            let routed_end = Encap::Routed.datagram_at() + PACKET_AT + mtu + 2 * TAG_LEN;
            assert!(routed_end <= len);
        }
        assert_eq!(packet_room(10), 0);
    }
}
