//! Segmentation: a super-packet read from the TUN becomes the MTU-sized IP packets the kernel
//! would have sent had it not offloaded the work to us.
//!
//! With TSO/USO on, the kernel hands the TUN one packet of up to 64 KB: one set of IP and
//! transport headers, then the payload of many segments, described by the [`VnetHdr`]
//! (`gso_size` bytes of payload per segment) and with a partial checksum (only the
//! pseudo-header sum in the checksum field, `NEEDS_CSUM`). [`Segmenter`] writes each segment
//! as a complete IP packet into a buffer of the caller's, where it is then sealed in place:
//!
//! - the IP and transport headers are copied in front of each `gso_size` slice of payload (the
//!   last slice may be shorter);
//! - IPv4: total length set, identification incremented per segment (as the kernel's own
//!   segmentation does), header checksum recomputed; IPv6: payload length set;
//! - TCP: sequence number advanced by the payload before the segment; FIN and PSH kept only on
//!   the last segment and CWR only on the first (the rules of the kernel's `tcp_gso_segment`);
//!   checksum computed in full over pseudo-header, header and payload;
//! - UDP (`GSO_UDP_L4`): each segment a datagram with its own length and full checksum (0
//!   sent as `0xffff`).
//!
//! A plain packet (`GSO_NONE`) is copied as it is, its partial checksum completed if the header
//! says `NEEDS_CSUM`: summed from `csum_start` to the end (the field already holds the
//! pseudo-header sum) and stored complemented at `csum_start + csum_offset`.
//!
//! Everything about the input is checked before the first segment is written, so a packet is
//! either segmented whole or dropped with one [`DropReason`].

use super::checksum::Checksum;
use super::headers::{
    Family, IpHeader, PROTO_TCP, PROTO_UDP, TCP_CHECKSUM_AT, TCP_FLAGS_AT, UDP_CHECKSUM_AT, be16,
    be32, pseudo_header, put16, put32, set_ip_len, set_ipv4_checksum, tcp_flags,
    transport_header_len,
};
use super::vnet::{GsoType, VnetHdr};
use crate::DropReason;

/// Writes the segments of one packet read from the TUN, one complete IP packet per call to
/// [`Segmenter::next_into`]; no allocation, no copy beyond the one into the caller's buffer.
#[derive(Debug)]
pub struct Segmenter<'a> {
    packet: &'a [u8],
    plan: Plan,
}

#[derive(Debug)]
enum Plan {
    /// A plain packet, copied once, with its partial checksum completed if it has one.
    Whole {
        partial: Option<PartialChecksum>,
        done: bool,
    },
    /// A TCP or UDP super-packet.
    Segments(Segments),
}

impl<'a> Segmenter<'a> {
    /// Checks `packet` against its virtio header `hdr` and prepares to segment it so that no
    /// segment is longer than `mtu` bytes.
    ///
    /// Errors:
    /// - [`DropReason::InvalidOffload`]: `hdr_len` past the end of the packet; checksum field
    ///   outside the packet; for a super-packet, a GSO type that does not match the packet
    ///   (family, protocol, IPv6 extension headers), a `gso_size` of 0 or one that makes a
    ///   segment longer than `mtu`, no payload, or checksum offsets other than the transport
    ///   header's;
    /// - [`DropReason::InvalidInnerPacket`]: a super-packet whose IP or transport header is
    ///   truncated or inconsistent (bad IHL or data offset, length field not matching the
    ///   packet, an IPv4 fragment);
    /// - [`DropReason::BadLength`]: a plain packet longer than `mtu`.
    pub fn new(hdr: &VnetHdr, packet: &'a [u8], mtu: usize) -> Result<Self, DropReason> {
        if usize::from(hdr.hdr_len) > packet.len() {
            return Err(DropReason::InvalidOffload);
        }
        let plan = match hdr.gso_type {
            GsoType::None => {
                let partial = PartialChecksum::of(hdr, packet.len())?;
                if packet.len() > mtu {
                    return Err(DropReason::BadLength);
                }
                Plan::Whole {
                    partial,
                    done: false,
                }
            }
            GsoType::TcpV4 => Plan::Segments(Segments::new(
                hdr,
                packet,
                mtu,
                Some(Family::V4),
                PROTO_TCP,
            )?),
            GsoType::TcpV6 => Plan::Segments(Segments::new(
                hdr,
                packet,
                mtu,
                Some(Family::V6),
                PROTO_TCP,
            )?),
            GsoType::UdpL4 => Plan::Segments(Segments::new(hdr, packet, mtu, None, PROTO_UDP)?),
        };
        Ok(Segmenter { packet, plan })
    }

    /// How many packets are left to write.
    pub fn remaining(&self) -> usize {
        match &self.plan {
            Plan::Whole { done, .. } => usize::from(!done),
            Plan::Segments(segments) => {
                let rest = self.packet.len() - segments.next;
                rest.div_ceil(segments.gso_size)
            }
        }
    }

    /// Writes the next packet at the start of `dst` and returns its length, or `None` when all
    /// are written. `dst` must hold the `mtu` given to [`Segmenter::new`]; if it is too short
    /// for the packet, this returns [`DropReason::BadLength`] and ends the segmentation.
    pub fn next_into(&mut self, dst: &mut [u8]) -> Option<Result<usize, DropReason>> {
        match &mut self.plan {
            Plan::Whole { partial, done } => {
                if *done {
                    return None;
                }
                *done = true;
                let Some(out) = dst.get_mut(..self.packet.len()) else {
                    return Some(Err(DropReason::BadLength));
                };
                out.copy_from_slice(self.packet);
                if let Some(partial) = partial {
                    partial.complete(out);
                }
                Some(Ok(out.len()))
            }
            Plan::Segments(segments) => segments.next_into(self.packet, dst),
        }
    }
}

/// Completes in place the partial checksum of a plain packet (`GSO_NONE` with `NEEDS_CSUM`),
/// for a caller that reads such packets straight into the buffer they are sealed in; does
/// nothing without `NEEDS_CSUM`. Fails with [`DropReason::InvalidOffload`] if the checksum
/// field lies outside `packet`.
pub fn complete_checksum(hdr: &VnetHdr, packet: &mut [u8]) -> Result<(), DropReason> {
    if let Some(partial) = PartialChecksum::of(hdr, packet.len())? {
        partial.complete(packet);
    }
    Ok(())
}

/// Where a partial checksum starts and where its 16-bit field is, checked against a length.
#[derive(Debug, Clone, Copy)]
struct PartialChecksum {
    start: usize,
    field: usize,
}

impl PartialChecksum {
    /// The partial checksum `hdr` describes for a packet of `len` bytes, if it has one.
    fn of(hdr: &VnetHdr, len: usize) -> Result<Option<Self>, DropReason> {
        if !hdr.needs_csum() {
            return Ok(None);
        }
        let start = usize::from(hdr.csum_start);
        let field = start + usize::from(hdr.csum_offset);
        if field + 2 > len {
            return Err(DropReason::InvalidOffload);
        }
        Ok(Some(PartialChecksum { start, field }))
    }

    /// Sums from `start` to the end (the field holds the pseudo-header sum) and stores the
    /// complement, 0 as `0xffff` as the kernel's `skb_checksum_help` does.
    fn complete(self, packet: &mut [u8]) {
        let mut sum = Checksum::new();
        sum.add_bytes(&packet[self.start..]);
        put16(packet, self.field, nonzero(sum.finish()));
    }
}

/// The state of one super-packet's segmentation.
#[derive(Debug)]
struct Segments {
    family: Family,
    protocol: u8,
    ip_len: usize,
    /// IP and transport headers, repeated in every segment.
    header_len: usize,
    gso_size: usize,
    /// Offset in the packet of the next segment's payload.
    next: usize,
    /// Segments written so far (wrapping, as the IPv4 identification does).
    written: u16,
    /// The super-packet's IPv4 identification (unused for IPv6).
    ip_id: u16,
    /// The super-packet's TCP sequence number (unused for UDP).
    seq: u32,
    /// The pseudo-header without its length, the same for every segment.
    pseudo: Checksum,
}

impl Segments {
    /// Checks a super-packet of `protocol` (TCP or UDP) over `family` (`None`: either).
    fn new(
        hdr: &VnetHdr,
        packet: &[u8],
        mtu: usize,
        family: Option<Family>,
        protocol: u8,
    ) -> Result<Self, DropReason> {
        let ip = IpHeader::parse(packet)?;
        if family.is_some_and(|family| family != ip.family) || ip.protocol != protocol {
            return Err(DropReason::InvalidOffload);
        }
        let checksum_at = if protocol == PROTO_TCP {
            TCP_CHECKSUM_AT
        } else {
            UDP_CHECKSUM_AT
        };
        let header_len = ip.len + transport_header_len(packet, &ip)?;
        let gso_size = usize::from(hdr.gso_size);
        if gso_size == 0 || header_len + gso_size > mtu || packet.len() == header_len {
            return Err(DropReason::InvalidOffload);
        }
        if hdr.needs_csum()
            && (usize::from(hdr.csum_start) != ip.len
                || usize::from(hdr.csum_offset) != checksum_at)
        {
            return Err(DropReason::InvalidOffload);
        }
        Ok(Segments {
            family: ip.family,
            protocol,
            ip_len: ip.len,
            header_len,
            gso_size,
            next: header_len,
            written: 0,
            ip_id: if ip.family == Family::V4 {
                be16(packet, 4)
            } else {
                0
            },
            seq: if protocol == PROTO_TCP {
                be32(packet, ip.len + 4)
            } else {
                0
            },
            pseudo: pseudo_header(packet, ip.family, protocol),
        })
    }

    fn next_into(&mut self, packet: &[u8], dst: &mut [u8]) -> Option<Result<usize, DropReason>> {
        let rest = packet.len() - self.next;
        if rest == 0 {
            return None;
        }
        let payload_len = rest.min(self.gso_size);
        let Some(out) = dst.get_mut(..self.header_len + payload_len) else {
            self.next = packet.len();
            return Some(Err(DropReason::BadLength));
        };
        let (headers, payload) = out.split_at_mut(self.header_len);
        headers.copy_from_slice(&packet[..self.header_len]);
        payload.copy_from_slice(&packet[self.next..self.next + payload_len]);

        set_ip_len(out, self.family);
        if self.family == Family::V4 {
            put16(out, 4, self.ip_id.wrapping_add(self.written));
            set_ipv4_checksum(out, self.ip_len);
        }
        let transport = &mut out[self.ip_len..];
        // The transport length fits 32 bits: the whole packet is at most 64 KB.
        let transport_len = transport.len() as u32;
        let checksum_at = if self.protocol == PROTO_TCP {
            let offset = (self.next - self.header_len) as u32;
            put32(transport, 4, self.seq.wrapping_add(offset));
            let mut flags = transport[TCP_FLAGS_AT];
            if payload_len < rest {
                flags &= !(tcp_flags::FIN | tcp_flags::PSH);
            }
            if self.next > self.header_len {
                flags &= !tcp_flags::CWR;
            }
            transport[TCP_FLAGS_AT] = flags;
            TCP_CHECKSUM_AT
        } else {
            put16(transport, 4, transport_len as u16);
            UDP_CHECKSUM_AT
        };
        put16(transport, checksum_at, 0);
        let mut sum = self.pseudo;
        sum.add_u32(transport_len);
        sum.add_bytes(transport);
        let value = sum.finish();
        let value = if self.protocol == PROTO_UDP {
            nonzero(value)
        } else {
            value
        };
        put16(transport, checksum_at, value);

        self.next += payload_len;
        self.written = self.written.wrapping_add(1);
        Some(Ok(out.len()))
    }
}

/// A computed checksum of 0 as it goes on the wire: `0xffff`, its other ones'-complement form
/// (0 in a UDP header means "no checksum").
fn nonzero(checksum: u16) -> u16 {
    if checksum == 0 { 0xffff } else { checksum }
}
