//! The ICMPv6 error messages a node writes to its own TUN about overlay packets it cannot carry
//! (DESIGN §1 "ICMPv6 inside the overlay", "MTU"): Time Exceeded for traceroute, Destination
//! Unreachable when no route reaches an fc00 destination, Packet Too Big when a packet does not
//! fit the overlay's MTU. Each is a whole IPv6 packet addressed to the offending packet's
//! source, quoting as much of it as RFC 4443 allows.

use std::net::Ipv6Addr;

use crate::offload::Checksum;

/// The largest ICMPv6 error, headers included: IPv6's minimum MTU (RFC 4443 §2.4 c), so it
/// reaches the source whatever the path.
pub const ICMPV6_ERROR_MAX_LEN: usize = 1280;
/// The hop limit of the errors we originate.
pub const ICMPV6_ERROR_HOP_LIMIT: u8 = 64;

const IPV6_HEADER_LEN: usize = 40;
const ICMPV6_HEADER_LEN: usize = 8;
/// Where the quote of the offending packet starts.
const QUOTE_AT: usize = IPV6_HEADER_LEN + ICMPV6_HEADER_LEN;

/// IPv6 header fields and next-header numbers this module reads or writes.
mod ipv6 {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SOURCE: usize = 8;
    pub const DESTINATION: usize = 24;
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTHENTICATION: u8 = 51;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const ICMPV6: u8 = 58;
}

/// ICMPv6 header fields, from the start of the ICMPv6 message.
mod icmp {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const WORD: usize = 4;
    /// Types below this are error messages (RFC 4443 §2.1).
    pub const FIRST_INFORMATIONAL: u8 = 128;
}

/// Which error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Error {
    /// Type 3, code 0: hop limit exceeded in transit, what traceroute listens for.
    TimeExceeded,
    /// Type 1, code 0: no route to the destination.
    NoRoute,
    /// Type 2: the packet is larger than `mtu`, the largest the path takes.
    PacketTooBig {
        /// The MTU to tell the source.
        mtu: u32,
    },
}

impl Icmpv6Error {
    /// Type, code and the 4-byte word after the checksum.
    fn header(self) -> (u8, u8, [u8; 4]) {
        match self {
            Self::NoRoute => (1, 0, [0; 4]),
            Self::PacketTooBig { mtu } => (2, 0, mtu.to_be_bytes()),
            Self::TimeExceeded => (3, 0, [0; 4]),
        }
    }
}

/// How much of the IPv6 packet at the start of `offending` an error quotes: its length from
/// its header, at most what keeps the error within [`ICMPV6_ERROR_MAX_LEN`]. `None` when
/// `offending` does not start with an IPv6 header or holds less than that quote. A packet
/// longer than the quote may be cut short after it: so a traceroute PING carries only the
/// quote of its probe (see [`crate::pipeline`]).
pub fn quoted_len(offending: &[u8]) -> Option<usize> {
    let header = offending.get(..IPV6_HEADER_LEN)?;
    if header[0] >> 4 != 6 {
        return None;
    }
    let payload = u16::from_be_bytes([header[ipv6::PAYLOAD_LEN], header[ipv6::PAYLOAD_LEN + 1]]);
    let len = (IPV6_HEADER_LEN + usize::from(payload)).min(ICMPV6_QUOTE_MAX_LEN);
    (offending.len() >= len).then_some(len)
}

/// The most of an offending packet an ICMPv6 error quotes.
pub const ICMPV6_QUOTE_MAX_LEN: usize = ICMPV6_ERROR_MAX_LEN - QUOTE_AT;

/// Writes into `out` the IPv6 packet that carries `error` from `source` to the source of
/// `offending` (an IPv6 packet, padding after it allowed, or at least its [`quoted_len`]
/// bytes), and returns its length. The offending packet is quoted from its start, as much of
/// it as keeps the error within [`ICMPV6_ERROR_MAX_LEN`] and within `out`.
///
/// Returns `None`, sending nothing, where RFC 4443 §2.4 (e) forbids an error or there is no one
/// to send it to: `offending` is not an IPv6 packet or is cut short of its quote; it is itself
/// an ICMPv6 error (or its extension headers hide whether it is); its source is unspecified or
/// multicast; its destination is multicast, except for Packet Too Big; or `out` cannot hold the
/// headers.
pub fn write_error(
    error: Icmpv6Error,
    source: Ipv6Addr,
    offending: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let len = quoted_len(offending)?;
    let address = |at: usize| -> Option<Ipv6Addr> {
        let octets: [u8; 16] = offending.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(octets))
    };
    let (to, offending_dst) = (address(ipv6::SOURCE)?, address(ipv6::DESTINATION)?);
    if to.is_unspecified() || to.is_multicast() {
        return None;
    }
    if offending_dst.is_multicast() && !matches!(error, Icmpv6Error::PacketTooBig { .. }) {
        return None;
    }
    if may_be_icmpv6_error(offending.get(..len)?)? {
        return None;
    }
    let quote_len = len.min(out.len().checked_sub(QUOTE_AT)?);
    let total = QUOTE_AT + quote_len;
    let packet = &mut out[..total];
    let icmp_len = ICMPV6_HEADER_LEN + quote_len;

    packet[..ipv6::PAYLOAD_LEN].copy_from_slice(&[0x60, 0, 0, 0]);
    // At most 1280 − 40 bytes, so it fits the 16-bit field.
    packet[ipv6::PAYLOAD_LEN..ipv6::NEXT_HEADER].copy_from_slice(&(icmp_len as u16).to_be_bytes());
    packet[ipv6::NEXT_HEADER] = ipv6::ICMPV6;
    packet[ipv6::HOP_LIMIT] = ICMPV6_ERROR_HOP_LIMIT;
    packet[ipv6::SOURCE..ipv6::DESTINATION].copy_from_slice(&source.octets());
    packet[ipv6::DESTINATION..IPV6_HEADER_LEN].copy_from_slice(&to.octets());

    let (kind, code, word) = error.header();
    let message = &mut packet[IPV6_HEADER_LEN..];
    message[icmp::TYPE] = kind;
    message[icmp::CODE] = code;
    message[icmp::CHECKSUM..icmp::WORD].fill(0);
    message[icmp::WORD..ICMPV6_HEADER_LEN].copy_from_slice(&word);
    message[ICMPV6_HEADER_LEN..].copy_from_slice(&offending[..quote_len]);

    // RFC 4443 §2.3: the checksum covers the pseudo-header of RFC 8200 §8.1 and the message.
    let mut sum = Checksum::new();
    sum.add_bytes(&packet[ipv6::SOURCE..IPV6_HEADER_LEN]);
    sum.add_u32(icmp_len as u32);
    sum.add_u16(u16::from(ipv6::ICMPV6));
    sum.add_bytes(&packet[IPV6_HEADER_LEN..]);
    let checksum = sum.finish();
    packet[IPV6_HEADER_LEN + icmp::CHECKSUM..IPV6_HEADER_LEN + icmp::WORD]
        .copy_from_slice(&checksum.to_be_bytes());
    Some(total)
}

/// Whether the IPv6 packet `packet` (exactly its length) is, or may be, an ICMPv6 error
/// message: follows the extension headers to the upper-layer header. `Some(true)` also for an
/// ICMPv6 message too short to show its type; `None` for a truncated extension header, which
/// hides the answer. A later fragment carries no upper-layer header and is not an error's
/// start; an ESP-protected payload cannot be read and is taken as not one.
fn may_be_icmpv6_error(packet: &[u8]) -> Option<bool> {
    let mut next = *packet.get(ipv6::NEXT_HEADER)?;
    let mut at = IPV6_HEADER_LEN;
    loop {
        let header = packet.get(at..)?;
        let header_len = match next {
            ipv6::ICMPV6 => {
                return Some(
                    header
                        .first()
                        .is_none_or(|&t| t < icmp::FIRST_INFORMATIONAL),
                );
            }
            ipv6::HOP_BY_HOP | ipv6::ROUTING | ipv6::DESTINATION_OPTIONS => {
                (usize::from(*header.get(1)?) + 1) * 8
            }
            ipv6::FRAGMENT => {
                let offset = u16::from_be_bytes([*header.get(2)?, *header.get(3)?]) >> 3;
                if offset != 0 {
                    return Some(false);
                }
                8
            }
            ipv6::AUTHENTICATION => (usize::from(*header.get(1)?) + 2) * 4,
            _ => return Some(false),
        };
        if header.len() < header_len {
            return None;
        }
        next = header[0];
        at += header_len;
    }
}

#[cfg(test)]
mod tests;
