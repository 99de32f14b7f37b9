//! The 12-byte `virtio_net_hdr_v1` that precedes every packet on a TUN queue opened with a
//! vnet header (see [`crate::sys::tun`]).
//!
//! Layout (all 16-bit fields little-endian, which is the byte order the TUN uses on a
//! little-endian host and, with `TUNSETVNETLE`, on any host):
//!
//! | offset | field         | meaning                                                       |
//! |--------|---------------|---------------------------------------------------------------|
//! | 0      | `flags`       | [`VnetHdr::F_NEEDS_CSUM`]: checksum partial; `DATA_VALID`     |
//! | 1      | `gso_type`    | none, TCPv4, TCPv6, UDP L4; bit 7 = ECN                       |
//! | 2      | `hdr_len`     | bytes of headers (the kernel may report more: see below)      |
//! | 4      | `gso_size`    | payload bytes per segment                                      |
//! | 6      | `csum_start`  | where the partial checksum starts (the transport header)      |
//! | 8      | `csum_offset` | where, from `csum_start`, the checksum field is               |
//! | 10     | `num_buffers` | merged receive buffers; 0 on a TUN                            |
//!
//! The kernel fills `hdr_len` with the length of the packet's linear part, which can be the
//! whole first segment and more, so segmentation finds the headers by parsing them and only
//! checks that `hdr_len` lies inside the packet.

use crate::DropReason;
use crate::sys::TUN_VNET_HDR_LEN;

/// Length of the virtio header on a TUN queue: the same as [`TUN_VNET_HDR_LEN`].
pub const VNET_HDR_LEN: usize = TUN_VNET_HDR_LEN;

/// Segmentation the header asks for (`VIRTIO_NET_HDR_GSO_*`, without the ECN bit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GsoType {
    /// One packet, not to be segmented (`VIRTIO_NET_HDR_GSO_NONE`).
    #[default]
    None,
    /// A TCP super-packet over IPv4 (`VIRTIO_NET_HDR_GSO_TCPV4`).
    TcpV4,
    /// A TCP super-packet over IPv6 (`VIRTIO_NET_HDR_GSO_TCPV6`).
    TcpV6,
    /// A UDP super-packet: `gso_size` bytes of payload per datagram, over IPv4 or IPv6
    /// (`VIRTIO_NET_HDR_GSO_UDP_L4`, Linux 6.2 and later on a TUN).
    UdpL4,
}

impl GsoType {
    const NONE: u8 = 0;
    const TCPV4: u8 = 1;
    const TCPV6: u8 = 4;
    const UDP_L4: u8 = 5;
    /// Bit of `gso_type` telling that the TCP super-packet carries CWR (`..._GSO_ECN`).
    const ECN: u8 = 0x80;

    fn from_wire(value: u8) -> Option<Self> {
        match value {
            Self::NONE => Some(GsoType::None),
            Self::TCPV4 => Some(GsoType::TcpV4),
            Self::TCPV6 => Some(GsoType::TcpV6),
            Self::UDP_L4 => Some(GsoType::UdpL4),
            _ => None,
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            GsoType::None => Self::NONE,
            GsoType::TcpV4 => Self::TCPV4,
            GsoType::TcpV6 => Self::TCPV6,
            GsoType::UdpL4 => Self::UDP_L4,
        }
    }
}

/// A parsed `virtio_net_hdr_v1`. [`VnetHdr::default`] is the all-zero header of a plain packet
/// with a complete checksum, which is what to put before a packet written as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*` bits; unknown bits are kept and ignored.
    pub flags: u8,
    /// The segmentation asked for.
    pub gso_type: GsoType,
    /// The ECN bit of `gso_type` (TCP only): the first segment carries CWR.
    pub ecn: bool,
    /// Length of the headers that every segment repeats (advisory, see the module doc).
    pub hdr_len: u16,
    /// Payload bytes per segment (TCP MSS, or UDP payload per datagram).
    pub gso_size: u16,
    /// Offset from the start of the packet where the partial checksum starts.
    pub csum_start: u16,
    /// Offset from `csum_start` of the 16-bit checksum field to complete.
    pub csum_offset: u16,
    /// Receive buffers merged into this packet (`VIRTIO_NET_F_MRG_RXBUF`); 0 on a TUN.
    pub num_buffers: u16,
}

impl VnetHdr {
    /// Flag: the checksum at `csum_start + csum_offset` holds only the pseudo-header sum; the
    /// rest is to be summed from `csum_start` to the end (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
    pub const F_NEEDS_CSUM: u8 = 1;
    /// Flag: the checksum was verified (`VIRTIO_NET_HDR_F_DATA_VALID`).
    pub const F_DATA_VALID: u8 = 2;

    /// Splits a frame read from a vnet-header TUN into its header and its packet.
    ///
    /// Fails with [`DropReason::Truncated`] if the frame is shorter than the header and with
    /// [`DropReason::InvalidOffload`] for a GSO type we never enable (UFO, or anything
    /// unknown) or an ECN bit on anything but TCP.
    pub fn parse(frame: &[u8]) -> Result<(VnetHdr, &[u8]), DropReason> {
        let (header, packet) = frame
            .split_first_chunk::<VNET_HDR_LEN>()
            .ok_or(DropReason::Truncated)?;
        let le16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
        let gso_type =
            GsoType::from_wire(header[1] & !GsoType::ECN).ok_or(DropReason::InvalidOffload)?;
        let ecn = header[1] & GsoType::ECN != 0;
        if ecn && !matches!(gso_type, GsoType::TcpV4 | GsoType::TcpV6) {
            return Err(DropReason::InvalidOffload);
        }
        let hdr = VnetHdr {
            flags: header[0],
            gso_type,
            ecn,
            hdr_len: le16(2),
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
            num_buffers: le16(10),
        };
        Ok((hdr, packet))
    }

    /// The header as the TUN expects it in front of a packet we write.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut bytes = [0; VNET_HDR_LEN];
        bytes[0] = self.flags;
        bytes[1] = self.gso_type.to_wire() | if self.ecn { GsoType::ECN } else { 0 };
        let fields = [
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
            self.num_buffers,
        ];
        for (at, field) in (2..).step_by(2).zip(fields) {
            bytes[at..at + 2].copy_from_slice(&field.to_le_bytes());
        }
        bytes
    }

    /// Whether the packet's checksum is partial ([`Self::F_NEEDS_CSUM`]).
    pub fn needs_csum(&self) -> bool {
        self.flags & Self::F_NEEDS_CSUM != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_kernel_writes_for_a_tcp_super_packet() {
        // NEEDS_CSUM, TCPV4 with ECN, hdr_len 66, gso_size 1368, csum 20/16, no buffers.
        let frame = [1, 0x81, 66, 0, 0x58, 0x05, 20, 0, 16, 0, 0, 0, 0x45, 0xaa];
        let (hdr, packet) = VnetHdr::parse(&frame).unwrap();
        assert_eq!(
            hdr,
            VnetHdr {
                flags: VnetHdr::F_NEEDS_CSUM,
                gso_type: GsoType::TcpV4,
                ecn: true,
                hdr_len: 66,
                gso_size: 1368,
                csum_start: 20,
                csum_offset: 16,
                num_buffers: 0,
            }
        );
        assert!(hdr.needs_csum());
        assert_eq!(packet, [0x45, 0xaa]);
        assert_eq!(hdr.to_bytes(), frame[..VNET_HDR_LEN]);
    }

    #[test]
    fn round_trips_every_gso_type_and_field() {
        for gso_type in [
            GsoType::None,
            GsoType::TcpV4,
            GsoType::TcpV6,
            GsoType::UdpL4,
        ] {
            let hdr = VnetHdr {
                flags: VnetHdr::F_DATA_VALID,
                gso_type,
                ecn: false,
                hdr_len: 0x0102,
                gso_size: 0x0304,
                csum_start: 0x0506,
                csum_offset: 0x0708,
                num_buffers: 0x090a,
            };
            let bytes = hdr.to_bytes();
            assert_eq!(
                bytes[2..],
                [2, 1, 4, 3, 6, 5, 8, 7, 0x0a, 9],
                "little-endian"
            );
            assert_eq!(VnetHdr::parse(&bytes).unwrap(), (hdr, &[][..]));
            assert!(!hdr.needs_csum());
        }
        assert_eq!(VnetHdr::default().to_bytes(), [0; VNET_HDR_LEN]);
    }

    #[test]
    fn refuses_short_frames_unknown_gso_types_and_stray_ecn() {
        let zero = [0u8; VNET_HDR_LEN];
        for len in 0..VNET_HDR_LEN {
            assert_eq!(VnetHdr::parse(&zero[..len]), Err(DropReason::Truncated));
        }
        // 2 and 6 are unassigned, 3 is UFO (never enabled), the rest unknown.
        for gso_type in [2, 3, 6, 7, 0x40, 0x7f] {
            let mut frame = zero;
            frame[1] = gso_type;
            assert_eq!(VnetHdr::parse(&frame), Err(DropReason::InvalidOffload));
        }
        for gso_type in [0x80, 0x85] {
            let mut frame = zero;
            frame[1] = gso_type;
            assert_eq!(VnetHdr::parse(&frame), Err(DropReason::InvalidOffload));
        }
        let mut tcp6_ecn = zero;
        tcp6_ecn[1] = 0x84;
        assert_eq!(
            VnetHdr::parse(&tcp6_ecn).unwrap().0.gso_type,
            GsoType::TcpV6
        );
    }
}
