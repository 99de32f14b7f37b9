//! Test support: running a test body in a network namespace of its own, and building and
//! parsing the IPv4/IPv6 UDP packets that cross a TUN queue.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use super::{TunQueue, enter_new_netns_for_current_thread, set_up};

/// Runs `body` on a fresh thread inside a new network namespace with `lo` up, and returns its
/// result (re-raising its panic). Everything the body creates dies with the thread.
pub fn in_new_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let thread = std::thread::spawn(move || {
        enter_new_netns_for_current_thread().expect("unshare(CLONE_NEWNET) (run tests as root)");
        set_up("lo").unwrap();
        body()
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The Internet checksum (RFC 1071) of `bytes`, complemented.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP header and payload with the checksum over `pseudo_header`, as on the wire.
fn udp_segment(pseudo_header: &[u8], src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    let mut segment = Vec::with_capacity(usize::from(len));
    segment.extend_from_slice(&src_port.to_be_bytes());
    segment.extend_from_slice(&dst_port.to_be_bytes());
    segment.extend_from_slice(&len.to_be_bytes());
    segment.extend_from_slice(&[0, 0]);
    segment.extend_from_slice(payload);
    let checksum = internet_checksum(&[pseudo_header, &segment].concat());
    // A computed 0 goes on the wire as all ones (0 means "no checksum" for IPv4).
    let checksum = if checksum == 0 { 0xffff } else { checksum };
    segment[6..8].copy_from_slice(&checksum.to_be_bytes());
    segment
}

/// An IPv4 packet carrying one UDP datagram, with correct header and UDP checksums.
pub fn ipv4_udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u16;
    let pseudo = [
        &src.ip().octets()[..],
        &dst.ip().octets(),
        &[0, 17],
        &udp_len.to_be_bytes(),
    ]
    .concat();
    let segment = udp_segment(&pseudo, src.port(), dst.port(), payload);
    let total = (20 + segment.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend_from_slice(&total.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet.extend_from_slice(&src.ip().octets());
    packet.extend_from_slice(&dst.ip().octets());
    let checksum = internet_checksum(&packet);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(&segment);
    packet
}

/// An IPv6 packet carrying one UDP datagram, with a correct UDP checksum.
pub fn ipv6_udp(src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Vec<u8> {
    let udp_len = (8 + payload.len()) as u32;
    let pseudo = [
        &src.ip().octets()[..],
        &dst.ip().octets(),
        &udp_len.to_be_bytes(),
        &[0, 0, 0, 17],
    ]
    .concat();
    let segment = udp_segment(&pseudo, src.port(), dst.port(), payload);
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[17, 64]);
    packet.extend_from_slice(&src.ip().octets());
    packet.extend_from_slice(&dst.ip().octets());
    packet.extend_from_slice(&segment);
    packet
}

/// A UDP datagram parsed out of an IP packet.
#[derive(Debug, PartialEq, Eq)]
pub struct UdpPacket {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
    /// The UDP checksum field as found.
    pub checksum: u16,
    /// Whether that checksum verifies over the pseudo-header and datagram.
    pub checksum_ok: bool,
}

/// Parses an IPv4 (no options) or IPv6 (no extension headers) packet carrying UDP; `None` for
/// anything else (e.g. the router solicitations and MLD reports an interface sends by itself).
pub fn parse_udp(packet: &[u8]) -> Option<UdpPacket> {
    let (src_ip, dst_ip, pseudo_tail, segment): (IpAddr, IpAddr, Vec<u8>, &[u8]) =
        match packet.first()? >> 4 {
            4 => {
                if packet[0] != 0x45 || *packet.get(9)? != 17 {
                    return None;
                }
                let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
                assert_eq!(total, packet.len(), "IPv4 total length");
                assert_eq!(internet_checksum(&packet[..20]), 0, "IPv4 header checksum");
                let src: [u8; 4] = packet[12..16].try_into().ok()?;
                let dst: [u8; 4] = packet[16..20].try_into().ok()?;
                let segment = &packet[20..];
                let tail = [&[0u8, 17][..], &(segment.len() as u16).to_be_bytes()].concat();
                (src.into(), dst.into(), tail, segment)
            }
            6 => {
                if *packet.get(6)? != 17 {
                    return None;
                }
                let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
                assert_eq!(payload_len + 40, packet.len(), "IPv6 payload length");
                let src: [u8; 16] = packet[8..24].try_into().ok()?;
                let dst: [u8; 16] = packet[24..40].try_into().ok()?;
                let segment = &packet[40..];
                let tail = [&(segment.len() as u32).to_be_bytes()[..], &[0, 0, 0, 17]].concat();
                (src.into(), dst.into(), tail, segment)
            }
            _ => return None,
        };
    let pseudo = [ip_octets(src_ip), ip_octets(dst_ip), pseudo_tail].concat();
    let port = |at: usize| u16::from_be_bytes([segment[at], segment[at + 1]]);
    assert_eq!(usize::from(port(4)), segment.len(), "UDP length");
    Some(UdpPacket {
        src: SocketAddr::new(src_ip, port(0)),
        dst: SocketAddr::new(dst_ip, port(2)),
        payload: segment[8..].to_vec(),
        checksum: port(6),
        checksum_ok: internet_checksum(&[&pseudo[..], segment].concat()) == 0,
    })
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Reads packets from any of `queues` until one (after skipping `skip` header bytes) carries
/// UDP to `dst`; returns the whole packet read, header included. Panics after two seconds.
pub fn read_udp_to(queues: &[TunQueue], skip: usize, dst: SocketAddr) -> Vec<u8> {
    for queue in queues {
        queue.set_nonblocking(true).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = vec![0; 65536 + skip];
    while Instant::now() < deadline {
        for queue in queues {
            match queue.read(&mut buf) {
                Ok(len) => {
                    let packet = &buf[..len];
                    if parse_udp(&packet[skip..]).is_some_and(|udp| udp.dst == dst) {
                        return packet.to_vec();
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("read from {}: {err}", queue.name()),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no UDP packet to {dst} came out of the TUN queues");
}
