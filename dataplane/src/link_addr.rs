//! The address of a session's far end, as the transport that carries the session names it.
//!
//! Everything above the transport (sessions, peers, the protocol core) holds a [`LinkAddr`] and
//! compares, stores and prints it without knowing what is inside: a UDP endpoint for a link, a
//! label through the overlay for an end-to-end (upper) session; raw Ethernet and stream
//! transports later, each a variant. Only transport code (the workers' socket I/O, the pipeline's
//! overlay encapsulation and the control thread's sends) opens it up.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::wire::frame::Label;

/// Where a link's datagrams go to and come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkAddr {
    /// A UDP endpoint (IPv4, or IPv6 which includes IPv4-mapped addresses).
    Udp(SocketAddr),
    /// The far end of an upper session, reached through the overlay along this label (its
    /// first slot is the link a frame leaves this node by).
    Overlay(Label),
}

/// First byte of an overlay route's cookie input. Routes and UDP endpoints are answered by
/// different endpoints with secrets of their own, so the tag only keeps the input
/// self-describing.
const OVERLAY_COOKIE_TAG: u8 = 0xff;

/// The bytes a cookie is computed over for one source address; see [`LinkAddr::cookie_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieInput {
    bytes: [u8; 18],
    len: usize,
}

impl CookieInput {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl LinkAddr {
    /// What a cookie reply binds a sender to (WireGuard's `MAC(R, source)`): for UDP the IP as 4
    /// or 16 bytes and the port big-endian, as the Linux kernel does, with an IPv4-mapped IPv6
    /// source taken as its IPv4 address so a dual-stack socket and a v4 socket agree; for an
    /// overlay route, the route.
    pub fn cookie_input(&self) -> CookieInput {
        let mut bytes = [0; 18];
        let len = match self {
            LinkAddr::Overlay(label) => {
                // A marker byte no IP length starts with, then the route.
                bytes[0] = OVERLAY_COOKIE_TAG;
                bytes[1..=label.len()].copy_from_slice(label.as_slice());
                1 + label.len()
            }
            LinkAddr::Udp(addr) => {
                let ip_len = match addr.ip().to_canonical() {
                    IpAddr::V4(ip) => {
                        bytes[..4].copy_from_slice(&ip.octets());
                        4
                    }
                    IpAddr::V6(ip) => {
                        bytes[..16].copy_from_slice(&ip.octets());
                        16
                    }
                };
                bytes[ip_len..ip_len + 2].copy_from_slice(&addr.port().to_be_bytes());
                ip_len + 2
            }
        };
        CookieInput { bytes, len }
    }

    /// The network address a flood of handshakes from this source is limited by; `None` for
    /// an overlay route, which has none.
    pub fn source_ip(&self) -> Option<IpAddr> {
        match self {
            LinkAddr::Udp(addr) => Some(addr.ip()),
            LinkAddr::Overlay(_) => None,
        }
    }

    /// The UDP endpoint, for the UDP transport; `None` for other transports.
    pub fn udp(&self) -> Option<SocketAddr> {
        match self {
            LinkAddr::Udp(addr) => Some(*addr),
            LinkAddr::Overlay(_) => None,
        }
    }
}

impl From<SocketAddr> for LinkAddr {
    fn from(addr: SocketAddr) -> Self {
        LinkAddr::Udp(addr)
    }
}

/// Written as the config writes it: `192.0.2.1:1312`, `[2001:db8::1]:1312`.
impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkAddr::Udp(addr) => addr.fmt(f),
            LinkAddr::Overlay(label) => write!(f, "label {label}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_input_is_ip_and_port_with_mapped_v4_as_v4() {
        let v4 = LinkAddr::from(SocketAddr::from(([192, 0, 2, 1], 0x1234)));
        assert_eq!(v4.cookie_input().as_bytes(), [192, 0, 2, 1, 0x12, 0x34]);
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:4660".parse().unwrap();
        assert_eq!(LinkAddr::from(mapped).cookie_input(), v4.cookie_input());
        let v6: SocketAddr = "[2001:db8::1]:1312".parse().unwrap();
        let input = LinkAddr::from(v6).cookie_input();
        assert_eq!(input.as_bytes().len(), 18);
        assert_eq!(&input.as_bytes()[16..], 1312u16.to_be_bytes());
    }

    #[test]
    fn prints_as_the_config_writes_it() {
        let v6: SocketAddr = "[2001:db8::1]:1312".parse().unwrap();
        assert_eq!(LinkAddr::from(v6).to_string(), "[2001:db8::1]:1312");
        assert_eq!(LinkAddr::from(v6).source_ip(), Some(v6.ip()));
        let route = LinkAddr::Overlay(Label::new(&[3, 7]).unwrap());
        assert_eq!(route.to_string(), "label 3.7");
        assert_eq!(route.source_ip(), None);
        assert_eq!(route.udp(), None);
        assert_eq!(route.cookie_input().as_bytes(), [0xff, 3, 7]);
    }
}
