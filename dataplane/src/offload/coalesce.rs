//! Coalescing: consecutive TCP segments of one flow, as they come out of the tunnel, become one
//! super-packet written to the TUN with a vnet header (receive offload done by us), so the
//! kernel runs its TCP receive path once per 64 KB instead of once per segment. Consecutive
//! UDP datagrams of one flow become one USO super-packet the same way, when the kernel takes
//! them ([`Coalescer::merge_udp`]): one TUN write and one pass through IP for the lot, which
//! the kernel splits back into the same datagrams at the socket (or hands whole to a socket
//! with `UDP_GRO`).
//!
//! The kernel takes such a packet as if a NIC's GRO had built it, so the rules are those of its
//! own GRO (`inet_gro_receive`, `ipv6_gro_receive`, `tcp_gro_receive`), slightly stricter.
//! A segment joins the flow's held super-packet only if all of these hold:
//!
//! 1. It is TCP directly over IPv4 (not a fragment) or IPv6 (no extension headers), at most
//!    65,535 bytes long, its length fields match, its IPv4 header checksum and its TCP
//!    checksum verify (the kernel does not check a `NEEDS_CSUM` packet again, so what we merge
//!    must already be correct).
//! 2. Its flags are ACK, or ACK and PSH (no SYN, FIN, RST, URG, ECE or CWR: those change the
//!    connection's state or must be seen per segment), and it carries payload.
//! 3. Same flow: addresses and ports. Same IP header apart from length, checksum and (IPv4)
//!    identification: TOS/traffic class, flow label, TTL/hop limit, DF, options byte for
//!    byte. Without DF the identification must be the previous one plus one, as when one
//!    super-packet was segmented; with DF it is ignored.
//! 4. Same TCP header apart from sequence number, flags (PSH), window and checksum: the same
//!    acknowledgment number, data offset, urgent pointer and options byte for byte (so
//!    timestamps must be equal, as they are within one burst).
//! 5. Its sequence number is the next one expected, and its payload is no longer than the first
//!    segment's (`gso_size`); the merged IP packet stays within 65,535 bytes.
//!
//! A segment shorter than the first, or one with PSH, is appended and ends the super-packet,
//! which is emitted at once. The window of the last segment appended is kept, and PSH if it
//! had it. A segment of a held flow that does not join it (out of order, different ACK, a
//! flag, no payload) first emits the held super-packet, so the flow's order is kept, and then
//! starts a new one or passes through. Anything that is not a TCP segment with payload passes
//! through untouched: the caller writes it itself with a zero vnet header.
//!
//! UDP datagrams follow rules 1, 3 and 5: UDP over IPv4 or IPv6 with a payload, its length
//! field matching, a non-zero checksum that verifies (an IPv4 datagram sent without one would
//! gain one); the same flow and IP header (identification as for TCP); a payload no longer
//! than the first datagram's, a shorter one ending the super-packet, and at most 64 datagrams
//! (the kernel's limit for a USO frame written to a TUN). There is no sequence to
//! check: UDP is merged in the order it arrived, which is the order it is delivered in.
//!
//! Emitted super-packets of two or more segments carry `GSO_TCPV4`/`GSO_TCPV6`, `gso_size` =
//! the first segment's payload, `hdr_len` = IP + TCP headers, `NEEDS_CSUM` with `csum_start`
//! at the TCP header and `csum_offset` 16, and the TCP checksum field holding the folded
//! pseudo-header sum over the merged length (the kernel's `CHECKSUM_PARTIAL` form, which it
//! completes if it ever forwards or segments the packet); the IP length and IPv4 header
//! checksum are fixed. UDP super-packets carry `GSO_UDP_L4`, `hdr_len` = IP + 8 bytes,
//! `csum_offset` 6, and a UDP length covering the whole payload, which the kernel rewrites per
//! datagram as it splits. A held flow of one segment goes out as it came, with a zero header.

use super::checksum::checksum;
use super::headers::{
    Family, IPV4_DONT_FRAGMENT, IpHeader, MAX_IP_PACKET_LEN, PROTO_TCP, PROTO_UDP, TCP_CHECKSUM_AT,
    TCP_FLAGS_AT, UDP_CHECKSUM_AT, be16, be32, pseudo_header, put16, set_ip_len, set_ipv4_checksum,
    tcp_flags, transport_header_len,
};
use super::vnet::{GsoType, VNET_HDR_LEN, VnetHdr};

/// Largest frame the coalescer emits: the vnet header and a 64 KB IP packet.
pub const MAX_FRAME_LEN: usize = VNET_HDR_LEN + MAX_IP_PACKET_LEN;

/// Most datagrams in one USO frame. The kernel refuses (`EINVAL`) a `GSO_UDP_L4` frame written
/// to a TUN with more than `UDP_MAX_SEGMENTS` of them: 64 up to Linux 6.9, 128 since. Small
/// datagrams reach this long before 64 KB.
const MAX_UDP_SEGMENTS: usize = 64;

/// What [`Coalescer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Copied into a held super-packet; it reaches the TUN with it.
    Held,
    /// Not held: write it to the TUN now, after a zero vnet header.
    PassThrough,
}

/// Up to a fixed number of TCP or UDP flows being coalesced, each in a preallocated 64 KB slot.
#[derive(Debug)]
pub struct Coalescer {
    slots: Box<[Slot]>,
    /// Indices of the slots holding a flow, oldest first (the first to go when all are taken).
    active: Vec<usize>,
    /// Indices of the free slots.
    free: Vec<usize>,
    /// Whether UDP over IPv4, and over IPv6, is merged into USO frames.
    udp: [bool; 2],
}

impl Coalescer {
    /// A coalescer for up to `flows` flows at once (at least one), each with a buffer of
    /// [`MAX_FRAME_LEN`] bytes allocated here, once.
    pub fn new(flows: usize) -> Self {
        let flows = flows.max(1);
        Coalescer {
            slots: (0..flows).map(|_| Slot::new()).collect(),
            active: Vec::with_capacity(flows),
            free: (0..flows).rev().collect(),
            udp: [false; 2],
        }
    }

    /// Also merges UDP datagrams over IPv4 (`v4`) and IPv6 (`v6`) into USO super-packets. Only
    /// for a TUN whose kernel takes `GSO_UDP_L4` frames (Linux 6.2 and later, the kernels
    /// that accept `TUN_F_USO4`/`TUN_F_USO6`); older ones refuse the write.
    pub fn merge_udp(mut self, v4: bool, v6: bool) -> Self {
        self.udp = [v4, v6];
        self
    }

    /// Offers one IP packet to the coalescer (see the module doc for the rules).
    ///
    /// Held super-packets that must reach the TUN before this packet (its flow's, when it does
    /// not join it; the oldest, when a new flow needs a slot and none is free) or that it
    /// completes are handed to `out` as whole frames (vnet header and packet) before this
    /// returns. `out` must write or copy the frame: the slot is reused afterwards.
    pub fn push(&mut self, packet: &[u8], out: &mut impl FnMut(&[u8])) -> Push {
        let Some(segment) = Segment::parse(packet, self.udp) else {
            return Push::PassThrough;
        };
        let held = self
            .active
            .iter()
            .position(|&slot| self.slots[slot].flow == segment.flow);
        if !segment.mergeable() {
            if let Some(position) = held {
                self.emit(position, out);
            }
            return Push::PassThrough;
        }
        if let Some(position) = held {
            let slot = &mut self.slots[self.active[position]];
            if slot.accepts(&segment) {
                if slot.append(&segment) {
                    self.emit(position, out);
                }
                return Push::Held;
            }
            self.emit(position, out);
        }
        if segment.flow.protocol == PROTO_TCP && segment.flags & tcp_flags::PSH != 0 {
            // Complete on its own: nothing could join it.
            return Push::PassThrough;
        }
        if self.free.is_empty() {
            // Every slot holds a flow (there is at least one): the oldest makes room.
            self.emit(0, out);
        }
        let Some(index) = self.free.pop() else {
            return Push::PassThrough;
        };
        self.slots[index].start(&segment);
        self.active.push(index);
        Push::Held
    }

    /// Hands every held super-packet to `out`, oldest first, and frees all slots. Call it at
    /// the end of each batch of received packets.
    pub fn flush(&mut self, mut out: impl FnMut(&[u8])) {
        while !self.active.is_empty() {
            self.emit(0, &mut out);
        }
    }

    /// How many flows are held.
    pub fn held(&self) -> usize {
        self.active.len()
    }

    /// Emits the slot at `position` in `active` and frees it.
    fn emit(&mut self, position: usize, out: &mut impl FnMut(&[u8])) {
        let index = self.active.remove(position);
        out(self.slots[index].finish());
        self.free.push(index);
    }
}

/// One flow's super-packet in the making.
#[derive(Debug)]
struct Slot {
    /// Room for the vnet header, then the merged IP packet.
    frame: Box<[u8]>,
    /// Length of the merged IP packet after the header.
    len: usize,
    flow: FlowKey,
    ip_len: usize,
    /// IP and TCP header length.
    header_len: usize,
    /// Payload of the first segment: the most any later one may carry.
    gso_size: usize,
    segments: usize,
    next_seq: u32,
    next_ip_id: u16,
}

impl Slot {
    fn new() -> Self {
        Slot {
            frame: vec![0; MAX_FRAME_LEN].into_boxed_slice(),
            len: 0,
            flow: FlowKey::default(),
            ip_len: 0,
            header_len: 0,
            gso_size: 0,
            segments: 0,
            next_seq: 0,
            next_ip_id: 0,
        }
    }

    fn packet(&self) -> &[u8] {
        &self.frame[VNET_HDR_LEN..VNET_HDR_LEN + self.len]
    }

    /// Starts the super-packet with its first segment.
    fn start(&mut self, segment: &Segment<'_>) {
        let packet = segment.packet;
        self.frame[VNET_HDR_LEN..VNET_HDR_LEN + packet.len()].copy_from_slice(packet);
        self.len = packet.len();
        self.flow = segment.flow;
        self.ip_len = segment.ip_len;
        self.header_len = segment.header_len;
        self.gso_size = segment.payload_len();
        self.segments = 1;
        self.next_seq = segment.seq.wrapping_add(segment.payload_len() as u32);
        self.next_ip_id = segment.ip_id().wrapping_add(1);
    }

    /// Whether `segment`, of this slot's flow, may be appended (rules 3 to 5).
    fn accepts(&self, segment: &Segment<'_>) -> bool {
        let held = self.packet();
        let packet = segment.packet;
        let (ip, header) = (self.ip_len, self.header_len);
        if segment.ip_len != ip || segment.header_len != header {
            return false;
        }
        let same = |range: std::ops::Range<usize>| held[range.clone()] == packet[range];
        let ip_same = match segment.flow.family {
            Family::V4 => {
                same(0..2)
                    && same(6..10)
                    && same(20..ip)
                    && (be16(packet, 6) & IPV4_DONT_FRAGMENT != 0
                        || segment.ip_id() == self.next_ip_id)
            }
            Family::V6 => same(0..4) && same(6..8),
        };
        let transport_same = segment.flow.protocol == PROTO_UDP
            || (segment.seq == self.next_seq && same(ip + 8..ip + 13) && same(ip + 18..header));
        ip_same
            && transport_same
            && segment.payload_len() <= self.gso_size
            && self.len + segment.payload_len() <= MAX_IP_PACKET_LEN
    }

    /// Appends an accepted segment; returns whether it ends the super-packet (shorter than the
    /// first, or PSH).
    fn append(&mut self, segment: &Segment<'_>) -> bool {
        let payload = &segment.packet[segment.header_len..];
        let at = VNET_HDR_LEN + self.len;
        self.frame[at..at + payload.len()].copy_from_slice(payload);
        self.len += payload.len();
        self.segments += 1;
        self.next_seq = self.next_seq.wrapping_add(payload.len() as u32);
        self.next_ip_id = self.next_ip_id.wrapping_add(1);
        if self.flow.protocol == PROTO_UDP {
            return payload.len() < self.gso_size || self.segments == MAX_UDP_SEGMENTS;
        }
        let tcp = VNET_HDR_LEN + self.ip_len;
        // The latest window, and PSH if this segment has it.
        self.frame[tcp + 14..tcp + 16]
            .copy_from_slice(&segment.packet[segment.ip_len + 14..segment.ip_len + 16]);
        let psh = segment.flags & tcp_flags::PSH;
        self.frame[tcp + TCP_FLAGS_AT] |= psh;
        payload.len() < self.gso_size || psh != 0
    }

    /// Writes the vnet header and final lengths and checksums; returns the frame.
    fn finish(&mut self) -> &[u8] {
        let (header, rest) = self.frame.split_at_mut(VNET_HDR_LEN);
        let packet = &mut rest[..self.len];
        let hdr = if self.segments == 1 {
            VnetHdr::default()
        } else {
            let (family, protocol) = (self.flow.family, self.flow.protocol);
            set_ip_len(packet, family);
            if family == Family::V4 {
                set_ipv4_checksum(packet, self.ip_len);
            }
            // Lengths here are at most 65,535 (checked as segments were appended): they fit
            // the 16-bit fields.
            let transport_len = self.len - self.ip_len;
            let (gso_type, checksum_at) = match (protocol, family) {
                (PROTO_UDP, _) => {
                    put16(packet, self.ip_len + 4, transport_len as u16);
                    (GsoType::UdpL4, UDP_CHECKSUM_AT)
                }
                (_, Family::V4) => (GsoType::TcpV4, TCP_CHECKSUM_AT),
                (_, Family::V6) => (GsoType::TcpV6, TCP_CHECKSUM_AT),
            };
            let mut pseudo = pseudo_header(packet, family, protocol);
            pseudo.add_u32(transport_len as u32);
            put16(packet, self.ip_len + checksum_at, pseudo.fold());
            VnetHdr {
                flags: VnetHdr::F_NEEDS_CSUM,
                gso_type,
                ecn: false,
                hdr_len: self.header_len as u16,
                gso_size: self.gso_size as u16,
                csum_start: self.ip_len as u16,
                csum_offset: checksum_at as u16,
                num_buffers: 0,
            }
        };
        header.copy_from_slice(&hdr.to_bytes());
        &self.frame[..VNET_HDR_LEN + self.len]
    }
}

/// Protocol, addresses and ports of a TCP or UDP flow (one direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    family: Family,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    protocol: u8,
    /// Source then destination address (IPv4: the first 8 bytes).
    addresses: [u8; 32],
    /// Source then destination port.
    ports: [u8; 4],
}

impl Default for FlowKey {
    fn default() -> Self {
        FlowKey {
            family: Family::V4,
            protocol: PROTO_TCP,
            addresses: [0; 32],
            ports: [0; 4],
        }
    }
}

/// A TCP segment or UDP datagram offered to the coalescer, its headers checked to lie inside
/// it.
#[derive(Debug)]
struct Segment<'a> {
    packet: &'a [u8],
    flow: FlowKey,
    ip_len: usize,
    header_len: usize,
    /// TCP sequence number (0 for UDP).
    seq: u32,
    /// TCP flags (0 for UDP).
    flags: u8,
}

impl<'a> Segment<'a> {
    /// `None` for anything but one whole TCP segment, or UDP datagram where `udp` allows it
    /// (`[v4, v6]`), directly over IPv4 or IPv6.
    fn parse(packet: &'a [u8], udp: [bool; 2]) -> Option<Self> {
        let ip = IpHeader::parse(packet).ok()?;
        let udp_allowed = match ip.family {
            Family::V4 => udp[0],
            Family::V6 => udp[1],
        };
        if !(ip.protocol == PROTO_TCP || (ip.protocol == PROTO_UDP && udp_allowed)) {
            return None;
        }
        let header_len = ip.len + transport_header_len(packet, &ip).ok()?;
        let mut addresses = [0; 32];
        match ip.family {
            Family::V4 => addresses[..8].copy_from_slice(&packet[12..20]),
            Family::V6 => addresses.copy_from_slice(&packet[8..40]),
        }
        let mut ports = [0; 4];
        ports.copy_from_slice(&packet[ip.len..ip.len + 4]);
        let tcp = ip.protocol == PROTO_TCP;
        Some(Segment {
            packet,
            flow: FlowKey {
                family: ip.family,
                protocol: ip.protocol,
                addresses,
                ports,
            },
            ip_len: ip.len,
            header_len,
            seq: if tcp { be32(packet, ip.len + 4) } else { 0 },
            flags: if tcp {
                packet[ip.len + TCP_FLAGS_AT]
            } else {
                0
            },
        })
    }

    fn payload_len(&self) -> usize {
        self.packet.len() - self.header_len
    }

    /// The IPv4 identification (0 for IPv6, where it is never compared).
    fn ip_id(&self) -> u16 {
        match self.flow.family {
            Family::V4 => be16(self.packet, 4),
            Family::V6 => 0,
        }
    }

    /// Rules 1 and 2: flags (TCP), length field and checksum presence (UDP), payload, size,
    /// checksums.
    fn mergeable(&self) -> bool {
        if self.payload_len() == 0 || self.packet.len() > MAX_IP_PACKET_LEN {
            return false;
        }
        let transport_len = self.packet.len() - self.ip_len;
        let fit = match self.flow.protocol {
            PROTO_TCP => {
                self.flags & !(tcp_flags::ACK | tcp_flags::PSH) == 0
                    && self.flags & tcp_flags::ACK != 0
            }
            _ => {
                usize::from(be16(self.packet, self.ip_len + 4)) == transport_len
                    && be16(self.packet, self.ip_len + UDP_CHECKSUM_AT) != 0
            }
        };
        if !fit {
            return false;
        }
        if self.flow.family == Family::V4 && checksum(&self.packet[..self.ip_len]) != 0 {
            return false;
        }
        let mut sum = pseudo_header(self.packet, self.flow.family, self.flow.protocol);
        sum.add_u32((self.packet.len() - self.ip_len) as u32);
        sum.add_bytes(&self.packet[self.ip_len..]);
        sum.finish() == 0
    }
}
