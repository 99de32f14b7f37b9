//! IPv4/IPv6 packets carrying TCP or UDP: a builder driven by fuzzer-chosen fields, and a plain
//! reader of the fields the offload targets check. Offsets are the RFCs' (791, 8200, 9293, 768),
//! written out here independently of the dataplane's own header code.

use libfuzzer_sys::arbitrary::{self, Arbitrary};

use crate::sum::{ones_sum, ones_sum_from, verifies};

/// IP protocol number of TCP.
pub const TCP: u8 = 6;
/// IP protocol number of UDP.
pub const UDP: u8 = 17;
/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const CWR: u8 = 0x80;

/// The fields of one packet the fuzzer chooses; everything else follows from them.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Spec {
    pub v6: bool,
    pub udp: bool,
    /// Which of four source addresses (and ports): how flows collide.
    pub flow: u8,
    /// IPv4 options, in 4-byte words (taken modulo 11).
    pub ip_option_words: u8,
    /// TCP options, in 4-byte words (taken modulo 11).
    pub tcp_option_words: u8,
    pub dont_fragment: bool,
    pub ip_id: u16,
    pub tos: u8,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

/// What goes in the transport checksum field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumForm {
    /// The complete checksum.
    Full,
    /// Only the pseudo-header sum, as the kernel leaves it for `NEEDS_CSUM`.
    Partial,
}

impl Spec {
    /// Bytes of IP header this spec gives.
    pub fn ip_len(&self) -> usize {
        if self.v6 {
            40
        } else {
            20 + 4 * usize::from(self.ip_option_words % 11)
        }
    }

    /// Bytes of transport header this spec gives.
    pub fn transport_header_len(&self) -> usize {
        if self.udp {
            8
        } else {
            20 + 4 * usize::from(self.tcp_option_words % 11)
        }
    }

    /// IP and transport headers together.
    pub fn header_len(&self) -> usize {
        self.ip_len() + self.transport_header_len()
    }

    /// The whole packet around `payload`, with its checksums in `form`.
    pub fn build(&self, payload: &[u8], form: ChecksumForm) -> Vec<u8> {
        let ip_len = self.ip_len();
        let l4_header = self.transport_header_len();
        let total = ip_len + l4_header + payload.len();
        let mut p = vec![0u8; total];
        let host = self.flow % 4;
        if self.v6 {
            p[0] = 0x60 | (self.tos >> 4);
            p[1] = self.tos << 4;
            put16(&mut p, 4, (total - 40) as u16);
            p[6] = if self.udp { UDP } else { TCP };
            p[7] = 64;
            p[8] = 0xfd;
            p[23] = 1 + host;
            p[24] = 0xfd;
            p[39] = 0x80;
        } else {
            p[0] = 0x40 | (ip_len / 4) as u8;
            p[1] = self.tos;
            put16(&mut p, 2, total as u16);
            put16(&mut p, 4, self.ip_id);
            put16(&mut p, 6, if self.dont_fragment { 0x4000 } else { 0 });
            p[8] = 64;
            p[9] = if self.udp { UDP } else { TCP };
            p[12..16].copy_from_slice(&[10, 0, 0, 1 + host]);
            p[16..20].copy_from_slice(&[10, 0, 1, 1]);
            p[20..ip_len].fill(0x01);
            let sum = !ones_sum(&p[..ip_len]);
            put16(&mut p, 10, sum);
        }
        let l4 = ip_len;
        put16(&mut p, l4, 40_000 + u16::from(host));
        put16(&mut p, l4 + 2, 443);
        if self.udp {
            put16(&mut p, l4 + 4, (total - ip_len) as u16);
        } else {
            put32(&mut p, l4 + 4, self.seq);
            put32(&mut p, l4 + 8, self.ack);
            p[l4 + 12] = ((l4_header / 4) as u8) << 4;
            p[l4 + 13] = self.flags;
            put16(&mut p, l4 + 14, self.window);
            p[l4 + 20..l4 + l4_header].fill(0x01);
        }
        p[l4 + l4_header..].copy_from_slice(payload);
        let at = l4 + if self.udp { 6 } else { 16 };
        let pseudo = pseudo_sum(&p, self.v6, total - ip_len);
        let value = match form {
            ChecksumForm::Partial => pseudo,
            ChecksumForm::Full => {
                let value = !ones_sum_from(pseudo, &p[l4..]);
                if self.udp && value == 0 {
                    0xffff
                } else {
                    value
                }
            }
        };
        put16(&mut p, at, value);
        p
    }
}

/// What a plain reading of a whole TCP or UDP packet finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub v6: bool,
    pub protocol: u8,
    /// Bytes of IP header.
    pub ip_len: usize,
    /// Bytes of IP and transport header.
    pub header_len: usize,
}

/// Reads `packet` as exactly one IPv4 (not a fragment) or IPv6 packet carrying a whole TCP or
/// UDP header; `None` otherwise.
pub fn headers(packet: &[u8]) -> Option<Headers> {
    let first = *packet.first()?;
    let (v6, ip_len, protocol) = match first >> 4 {
        4 => {
            let ip_len = usize::from(first & 0xf) * 4;
            if ip_len < 20 || packet.len() < ip_len || be16(packet, 2) as usize != packet.len() {
                return None;
            }
            if be16(packet, 6) & 0x3fff != 0 {
                return None;
            }
            (false, ip_len, packet[9])
        }
        6 => {
            if packet.len() < 40 || 40 + be16(packet, 4) as usize != packet.len() {
                return None;
            }
            (true, 40, packet[6])
        }
        _ => return None,
    };
    let l4_header = match protocol {
        TCP => usize::from(*packet.get(ip_len + 12)? >> 4) * 4,
        UDP => 8,
        _ => return None,
    };
    if l4_header < 8 || (protocol == TCP && l4_header < 20) || packet.len() < ip_len + l4_header {
        return None;
    }
    Some(Headers {
        v6,
        protocol,
        ip_len,
        header_len: ip_len + l4_header,
    })
}

/// Identifies a flow: family, protocol, addresses and ports.
pub fn flow_key(packet: &[u8], h: &Headers) -> Vec<u8> {
    let addresses = if h.v6 {
        &packet[8..40]
    } else {
        &packet[12..20]
    };
    let mut key = vec![u8::from(h.v6), h.protocol];
    key.extend_from_slice(addresses);
    key.extend_from_slice(&packet[h.ip_len..h.ip_len + 4]);
    key
}

/// The pseudo-header sum (addresses, protocol, transport length `l4_len`), folded.
pub fn pseudo_sum(packet: &[u8], v6: bool, l4_len: usize) -> u16 {
    let (addresses, protocol) = if v6 {
        (&packet[8..40], packet[6])
    } else {
        (&packet[12..20], packet[9])
    };
    let mut words = addresses.to_vec();
    words.extend_from_slice(&[0, protocol]);
    words.extend_from_slice(&(l4_len as u32).to_be_bytes());
    ones_sum(&words)
}

/// Whether the transport checksum of a whole packet verifies (a UDP checksum of 0 does not:
/// nothing we write may claim "no checksum").
pub fn transport_checksum_ok(packet: &[u8], h: &Headers) -> bool {
    let l4 = &packet[h.ip_len..];
    if h.protocol == UDP && be16(l4, 6) == 0 {
        return false;
    }
    verifies(pseudo_sum(packet, h.v6, l4.len()), l4)
}

/// Whether an IPv4 header checksum verifies (true for IPv6, which has none).
pub fn ip_checksum_ok(packet: &[u8], h: &Headers) -> bool {
    h.v6 || verifies(0, &packet[..h.ip_len])
}

/// The big-endian 16-bit field at `at`.
pub fn be16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

/// The big-endian 32-bit field at `at`.
pub fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn put16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn put32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
