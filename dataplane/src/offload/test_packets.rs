//! Test support: TCP and UDP packets and super-packets built by hand, and an independent
//! reading of them whose checksums are verified with the plainest RFC 1071 code, sharing
//! nothing with the module under test.

use std::net::IpAddr;

use super::vnet::VNET_HDR_LEN;

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// `virtio_net_hdr` constants, written out independently of the module.
pub const NEEDS_CSUM: u8 = 1;
pub const GSO_TCPV4: u8 = 1;
pub const GSO_TCPV6: u8 = 4;
pub const GSO_UDP_L4: u8 = 5;

/// RFC 1071, word by word: the sum of big-endian 16-bit words with end-around carry.
pub fn ones_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum field value for `bytes` (the complement of their sum).
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    !ones_sum(bytes)
}

/// One direction of a TCP or UDP flow and the header fields a test may vary.
#[derive(Debug, Clone)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub ack: u32,
    pub window: u16,
    pub tcp_options: Vec<u8>,
    pub ip_options: Vec<u8>,
    pub ip_id: u16,
    pub dont_fragment: bool,
    pub ttl: u8,
    pub tos: u8,
}

impl Flow {
    pub fn v4() -> Self {
        Self::between("10.1.2.3".parse().unwrap(), "10.9.8.7".parse().unwrap())
    }

    pub fn v6() -> Self {
        Self::between(
            "fd00:1::1234".parse().unwrap(),
            "fc12:3456::9".parse().unwrap(),
        )
    }

    pub fn between(src: IpAddr, dst: IpAddr) -> Self {
        Flow {
            src,
            dst,
            src_port: 43_210,
            dst_port: 5201,
            ack: 0x0bad_cafe,
            window: 502,
            tcp_options: vec![1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78],
            ip_options: Vec::new(),
            ip_id: 0xfffe,
            dont_fragment: true,
            ttl: 64,
            tos: 0,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }

    /// IP plus TCP header length.
    pub fn tcp_header_len(&self) -> usize {
        self.ip_header_len() + 20 + self.tcp_options.len()
    }

    pub fn ip_header_len(&self) -> usize {
        if self.is_v6() {
            40
        } else {
            20 + self.ip_options.len()
        }
    }

    /// A TCP segment with every checksum correct.
    pub fn tcp(&self, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut packet = self.tcp_unchecked(seq, flags, payload);
        let sum = self.transport_checksum(&packet);
        let at = self.ip_header_len() + 16;
        packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        packet
    }

    /// A TCP super-packet as the kernel hands it to a TUN with TSO: vnet header (NEEDS_CSUM,
    /// GSO_TCPV4/6, `gso_size`), checksum field holding the folded pseudo-header sum.
    pub fn tcp_super(&self, seq: u32, flags: u8, payload: &[u8], gso_size: u16) -> Vec<u8> {
        let mut packet = self.tcp_unchecked(seq, flags, payload);
        let ip_len = self.ip_header_len();
        let at = ip_len + 16;
        let pseudo = ones_sum(&self.pseudo_header(6, packet.len() - ip_len));
        packet[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        let gso_type = if self.is_v6() { GSO_TCPV6 } else { GSO_TCPV4 };
        let header = vnet(
            NEEDS_CSUM,
            gso_type,
            self.tcp_header_len() as u16,
            gso_size,
            ip_len as u16,
            16,
        );
        [&header[..], &packet].concat()
    }

    /// A UDP datagram with every checksum correct.
    pub fn udp(&self, payload: &[u8]) -> Vec<u8> {
        let mut packet = self.udp_unchecked(payload);
        let sum = self.transport_checksum(&packet);
        let sum = if sum == 0 { 0xffff } else { sum };
        let at = self.ip_header_len() + 6;
        packet[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        packet
    }

    /// A UDP super-packet as the kernel hands it to a TUN with USO.
    pub fn udp_super(&self, payload: &[u8], gso_size: u16) -> Vec<u8> {
        let mut packet = self.udp_unchecked(payload);
        let ip_len = self.ip_header_len();
        let pseudo = ones_sum(&self.pseudo_header(17, packet.len() - ip_len));
        packet[ip_len + 6..ip_len + 8].copy_from_slice(&pseudo.to_be_bytes());
        let header = vnet(
            NEEDS_CSUM,
            GSO_UDP_L4,
            (ip_len + 8) as u16,
            gso_size,
            ip_len as u16,
            6,
        );
        [&header[..], &packet].concat()
    }

    fn tcp_unchecked(&self, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&self.src_port.to_be_bytes());
        tcp.extend_from_slice(&self.dst_port.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&self.ack.to_be_bytes());
        tcp.push((((20 + self.tcp_options.len()) / 4) << 4) as u8);
        tcp.push(flags);
        tcp.extend_from_slice(&self.window.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 0]);
        tcp.extend_from_slice(&self.tcp_options);
        tcp.extend_from_slice(payload);
        self.ip(6, &tcp)
    }

    fn udp_unchecked(&self, payload: &[u8]) -> Vec<u8> {
        let mut udp = Vec::new();
        udp.extend_from_slice(&self.src_port.to_be_bytes());
        udp.extend_from_slice(&self.dst_port.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        self.ip(17, &udp)
    }

    /// `transport` behind an IP header with a correct header checksum.
    fn ip(&self, protocol: u8, transport: &[u8]) -> Vec<u8> {
        let mut packet = Vec::new();
        match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let header_len = 20 + self.ip_options.len();
                packet.push(0x40 | (header_len / 4) as u8);
                packet.push(self.tos);
                packet.extend_from_slice(&((header_len + transport.len()) as u16).to_be_bytes());
                packet.extend_from_slice(&self.ip_id.to_be_bytes());
                packet.extend_from_slice(if self.dont_fragment {
                    &[0x40, 0]
                } else {
                    &[0, 0]
                });
                packet.extend_from_slice(&[self.ttl, protocol, 0, 0]);
                packet.extend_from_slice(&src.octets());
                packet.extend_from_slice(&dst.octets());
                packet.extend_from_slice(&self.ip_options);
                let sum = internet_checksum(&packet);
                packet[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                packet.extend_from_slice(&[0x60 | (self.tos >> 4), self.tos << 4, 0x12, 0x34]);
                packet.extend_from_slice(&(transport.len() as u16).to_be_bytes());
                packet.extend_from_slice(&[protocol, self.ttl]);
                packet.extend_from_slice(&src.octets());
                packet.extend_from_slice(&dst.octets());
            }
            _ => panic!("mixed address families"),
        }
        packet.extend_from_slice(transport);
        packet
    }

    /// The pseudo-header for `protocol` and `transport_len` bytes of transport header and data.
    pub fn pseudo_header(&self, protocol: u8, transport_len: usize) -> Vec<u8> {
        let mut pseudo = Vec::new();
        for ip in [self.src, self.dst] {
            match ip {
                IpAddr::V4(v4) => pseudo.extend_from_slice(&v4.octets()),
                IpAddr::V6(v6) => pseudo.extend_from_slice(&v6.octets()),
            }
        }
        if self.is_v6() {
            pseudo.extend_from_slice(&(transport_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, protocol]);
        } else {
            pseudo.extend_from_slice(&[0, protocol]);
            pseudo.extend_from_slice(&(transport_len as u16).to_be_bytes());
        }
        pseudo
    }

    fn transport_checksum(&self, packet: &[u8]) -> u16 {
        let transport = &packet[self.ip_header_len()..];
        let protocol = if self.is_v6() { packet[6] } else { packet[9] };
        let pseudo = self.pseudo_header(protocol, transport.len());
        internet_checksum(&[&pseudo[..], transport].concat())
    }
}

/// A `virtio_net_hdr_v1` with the given fields, little-endian, no buffers.
pub fn vnet(flags: u8, gso_type: u8, hdr_len: u16, gso: u16, start: u16, offset: u16) -> Vec<u8> {
    let mut header = vec![flags, gso_type];
    for field in [hdr_len, gso, start, offset, 0] {
        header.extend_from_slice(&field.to_le_bytes());
    }
    assert_eq!(header.len(), VNET_HDR_LEN);
    header
}

/// What a test reads back out of a TCP or UDP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// TCP sequence number (0 for UDP).
    pub seq: u32,
    /// TCP flags (0 for UDP).
    pub flags: u8,
    /// TCP window (0 for UDP).
    pub window: u16,
    /// IPv4 identification (0 for IPv6).
    pub ip_id: u16,
    pub payload: Vec<u8>,
}

/// Reads a TCP or UDP packet over IPv4 or IPv6 built like [`Flow`]'s, asserting that its
/// length fields, IPv4 header checksum and transport checksum are all correct.
pub fn parse_checked(packet: &[u8]) -> Parsed {
    let v6 = packet[0] >> 4 == 6;
    let (ip_len, protocol, addresses) = if v6 {
        let payload_len = u16::from_be_bytes([packet[4], packet[5]]);
        assert_eq!(
            usize::from(payload_len) + 40,
            packet.len(),
            "IPv6 payload length"
        );
        (40, packet[6], &packet[8..40])
    } else {
        let ip_len = usize::from(packet[0] & 0x0f) * 4;
        let total = u16::from_be_bytes([packet[2], packet[3]]);
        assert_eq!(usize::from(total), packet.len(), "IPv4 total length");
        assert_eq!(ones_sum(&packet[..ip_len]), 0xffff, "IPv4 header checksum");
        (ip_len, packet[9], &packet[12..20])
    };
    let transport = &packet[ip_len..];
    let mut pseudo = addresses.to_vec();
    if v6 {
        pseudo.extend_from_slice(&(transport.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, protocol]);
    } else {
        pseudo.extend_from_slice(&[0, protocol]);
        pseudo.extend_from_slice(&(transport.len() as u16).to_be_bytes());
    }
    assert_eq!(
        ones_sum(&[&pseudo[..], transport].concat()),
        0xffff,
        "transport checksum"
    );
    let ip_id = if v6 {
        0
    } else {
        u16::from_be_bytes([packet[4], packet[5]])
    };
    let be32 = |at: usize| u32::from_be_bytes(transport[at..at + 4].try_into().unwrap());
    match protocol {
        6 => {
            let data_offset = usize::from(transport[12] >> 4) * 4;
            Parsed {
                seq: be32(4),
                flags: transport[13],
                window: u16::from_be_bytes([transport[14], transport[15]]),
                ip_id,
                payload: transport[data_offset..].to_vec(),
            }
        }
        17 => {
            let udp_len = u16::from_be_bytes([transport[4], transport[5]]);
            assert_eq!(usize::from(udp_len), transport.len(), "UDP length");
            assert_ne!(transport[6..8], [0, 0], "UDP checksum present");
            Parsed {
                seq: 0,
                flags: 0,
                window: 0,
                ip_id,
                payload: transport[8..].to_vec(),
            }
        }
        other => panic!("protocol {other}"),
    }
}

/// A payload of `len` bytes that differ from their neighbours (so misplaced bytes show).
pub fn payload(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}
