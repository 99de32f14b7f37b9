//! The IPv4, IPv6, TCP and UDP header fields that segmentation and coalescing read and rewrite.
//!
//! Offsets are those of the RFCs (791, 8200, 9293, 768). Every function here takes a packet
//! whose lengths [`IpHeader::parse`] and [`transport_header_len`] have already checked, so the
//! fixed offsets they index are inside it.

use super::checksum::{Checksum, checksum};
use crate::DropReason;

/// IP protocol number of TCP.
pub(super) const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub(super) const PROTO_UDP: u8 = 17;
/// Length of an IPv6 header, and of an IPv4 header without options.
pub(super) const IPV6_HEADER_LEN: usize = 40;
const IPV4_MIN_HEADER_LEN: usize = 20;
/// Length of a TCP header without options.
pub(super) const TCP_MIN_HEADER_LEN: usize = 20;
/// Length of a UDP header.
pub(super) const UDP_HEADER_LEN: usize = 8;
/// Where the checksum field sits in a TCP header.
pub(super) const TCP_CHECKSUM_AT: usize = 16;
/// Where the checksum field sits in a UDP header.
pub(super) const UDP_CHECKSUM_AT: usize = 6;
/// Largest IP packet whose length fits the 16-bit IPv4 total length (and, with room to spare,
/// the IPv6 payload length).
pub(super) const MAX_IP_PACKET_LEN: usize = 65_535;

/// IPv4 flags and fragment offset: Don't Fragment.
pub(super) const IPV4_DONT_FRAGMENT: u16 = 0x4000;
/// IPv4 flags and fragment offset: More Fragments and the 13-bit offset, non-zero in a fragment.
const IPV4_FRAGMENT_BITS: u16 = 0x3fff;

/// TCP flag bits (byte 13 of the header).
pub(super) mod tcp_flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Push: deliver to the application now.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// Congestion window reduced (ECN, RFC 3168).
    pub const CWR: u8 = 0x80;
}
/// Byte offset of the TCP flags.
pub(super) const TCP_FLAGS_AT: usize = 13;

/// IP version of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

/// What the IP header says about a packet: family, header length, next protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IpHeader {
    pub family: Family,
    /// Bytes of IP header: 20 to 60 for IPv4, 40 for IPv6 (extension headers are not skipped:
    /// they show up as a `protocol` other than TCP or UDP).
    pub len: usize,
    /// IPv4 protocol, or IPv6 next header.
    pub protocol: u8,
}

impl IpHeader {
    /// Parses the IP header of `packet`, which must be exactly one whole IP packet: its length
    /// field must match `packet.len()`, and an IPv4 fragment is refused (a fragment has no
    /// transport header of its own to segment or merge).
    pub fn parse(packet: &[u8]) -> Result<Self, DropReason> {
        let first = *packet.first().ok_or(DropReason::InvalidInnerPacket)?;
        match first >> 4 {
            4 => {
                let len = usize::from(first & 0x0f) * 4;
                if len < IPV4_MIN_HEADER_LEN || packet.len() < len {
                    return Err(DropReason::InvalidInnerPacket);
                }
                let total = usize::from(be16(packet, 2));
                if total != packet.len() || be16(packet, 6) & IPV4_FRAGMENT_BITS != 0 {
                    return Err(DropReason::InvalidInnerPacket);
                }
                Ok(IpHeader {
                    family: Family::V4,
                    len,
                    protocol: packet[9],
                })
            }
            6 => {
                if packet.len() < IPV6_HEADER_LEN
                    || IPV6_HEADER_LEN + usize::from(be16(packet, 4)) != packet.len()
                {
                    return Err(DropReason::InvalidInnerPacket);
                }
                Ok(IpHeader {
                    family: Family::V6,
                    len: IPV6_HEADER_LEN,
                    protocol: packet[6],
                })
            }
            _ => Err(DropReason::InvalidInnerPacket),
        }
    }
}

/// Length of the TCP or UDP header that follows `ip` in `packet`, checked to lie inside it.
pub(super) fn transport_header_len(packet: &[u8], ip: &IpHeader) -> Result<usize, DropReason> {
    let len = match ip.protocol {
        PROTO_TCP => {
            let data_offset = packet
                .get(ip.len + 12)
                .ok_or(DropReason::InvalidInnerPacket)?;
            usize::from(data_offset >> 4) * 4
        }
        PROTO_UDP => UDP_HEADER_LEN,
        _ => return Err(DropReason::InvalidInnerPacket),
    };
    if len < UDP_HEADER_LEN
        || (ip.protocol == PROTO_TCP && len < TCP_MIN_HEADER_LEN)
        || packet.len() < ip.len + len
    {
        return Err(DropReason::InvalidInnerPacket);
    }
    Ok(len)
}

/// The pseudo-header's addresses and protocol; the caller adds the transport length.
pub(super) fn pseudo_header(packet: &[u8], family: Family, protocol: u8) -> Checksum {
    let mut sum = Checksum::new();
    match family {
        Family::V4 => sum.add_bytes(&packet[12..20]),
        Family::V6 => sum.add_bytes(&packet[8..40]),
    }
    sum.add_u16(u16::from(protocol));
    sum
}

/// Writes `packet.len()` into the IP length field (IPv4 total length, IPv6 payload length).
/// Callers never make a packet longer than [`MAX_IP_PACKET_LEN`].
pub(super) fn set_ip_len(packet: &mut [u8], family: Family) {
    let (at, len) = match family {
        Family::V4 => (2, packet.len()),
        Family::V6 => (4, packet.len() - IPV6_HEADER_LEN),
    };
    put16(packet, at, len as u16);
}

/// Recomputes the IPv4 header checksum over the `header_len` bytes of header.
pub(super) fn set_ipv4_checksum(packet: &mut [u8], header_len: usize) {
    put16(packet, 10, 0);
    let sum = checksum(&packet[..header_len]);
    put16(packet, 10, sum);
}

/// The big-endian 16-bit field at `at`.
pub(super) fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The big-endian 32-bit field at `at`.
pub(super) fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Stores `value` big-endian at `at`.
pub(super) fn put16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Stores `value` big-endian at `at`.
pub(super) fn put32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
