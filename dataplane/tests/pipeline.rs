//! The per-packet pipeline in memory: node A seals with `Dataplane::outbound`, node B opens
//! with `Dataplane::inbound`. Cryptokey routing on receipt: a packet that authenticates but
//! whose inner source the sending peer does not own is dropped as `SourceNotAllowed`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, PACKET_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::{PeerShared, Sealed};
use rovy_dataplane::pipeline::{Dataplane, ICMP_ERROR_BURST, ICMP_ERROR_INTERVAL, Inbound};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};

const MTU: usize = 1420;
const A_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const A_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const B_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const A_UNDER: LinkAddr = LinkAddr::Udp(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1)), 1));
const B_UNDER: LinkAddr = LinkAddr::Udp(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2)), 2));

/// A node whose only peer (slot 0, at `peer_under`) owns the host routes `peer_owns`.
fn node(peer_owns: [IpAddr; 2], peer_under: LinkAddr, session: Session) -> Dataplane {
    let local = session.local_index();
    let peer = Arc::new(PeerShared::new(0, Some(peer_under)));
    peer.install(session);
    let index = Arc::new(IndexTable::new());
    index.insert(local, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    for addr in peer_owns {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        routes.insert(addr, len, 0).unwrap();
    }
    Dataplane::new(
        index,
        Tables::new(routes, vec![peer], vec![PeerKind::Rovy]),
        MTU,
    )
}

/// A and B with matching sessions, B the responder already confirmed by A's first packet.
fn pair() -> (Dataplane, Dataplane) {
    let key = |b| SymmetricKey::from_bytes([b; 32]);
    let a = Session::new(1, 2, key(1), key(2), true, Duration::ZERO);
    let b = Session::new(2, 1, key(2), key(1), false, Duration::ZERO);
    (
        node([B_V4.into(), B_V6.into()], B_UNDER, a),
        node([A_V4.into(), A_V6.into()], A_UNDER, b),
    )
}

/// A minimal IP packet (header only) from `src` to `dst`.
fn packet(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut p = vec![0u8; 20];
            p[0] = 0x45;
            p[2..4].copy_from_slice(&20u16.to_be_bytes());
            p[8] = 64;
            p[9] = 17;
            p[12..16].copy_from_slice(&src.octets());
            p[16..20].copy_from_slice(&dst.octets());
            p
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut p = vec![0u8; 40];
            p[0] = 0x60;
            p[6] = 59;
            p[7] = 64;
            p[8..24].copy_from_slice(&src.octets());
            p[24..40].copy_from_slice(&dst.octets());
            p
        }
        _ => unreachable!("one family per packet"),
    }
}

/// Seals `ip` at A and opens the datagram at B.
fn a_to_b(a: &Dataplane, b: &Dataplane, ip: &[u8]) -> Result<Inbound, DropReason> {
    let now = Duration::from_secs(1);
    let mut buf = vec![0u8; buffer_len(MTU)];
    buf[PACKET_AT..PACKET_AT + ip.len()].copy_from_slice(ip);
    let Ok(Sealed::Datagram { at, len, dst }) = a.outbound(now, &mut buf, ip.len()) else {
        panic!("A has a session to B");
    };
    assert_eq!(dst, B_UNDER);
    b.inbound(now, A_UNDER, &mut buf[at..at + len])
}

#[test]
fn authenticated_packet_from_a_source_the_peer_does_not_own_is_dropped() {
    let (a, b) = pair();
    let own_v4 = packet(A_V4.into(), B_V4.into());
    assert_eq!(
        a_to_b(&a, &b, &own_v4),
        Ok(Inbound::Deliver {
            at: LINK_PAYLOAD_AT,
            len: 20
        })
    );

    // Same peer, same session, valid tag: only the inner source differs.
    for spoofed in [Ipv4Addr::new(10, 9, 0, 3), B_V4, Ipv4Addr::UNSPECIFIED] {
        let ip = packet(spoofed.into(), B_V4.into());
        assert_eq!(
            a_to_b(&a, &b, &ip),
            Err(DropReason::SourceNotAllowed),
            "{spoofed}"
        );
    }
    let spoofed_v6 = packet(
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3).into(),
        B_V6.into(),
    );
    assert_eq!(
        a_to_b(&a, &b, &spoofed_v6),
        Err(DropReason::SourceNotAllowed)
    );

    // The drops did not disturb the session: owned sources still arrive.
    let own_v6 = packet(A_V6.into(), B_V6.into());
    assert_eq!(
        a_to_b(&a, &b, &own_v6),
        Ok(Inbound::Deliver {
            at: LINK_PAYLOAD_AT,
            len: 40
        })
    );
    assert_eq!(
        a_to_b(&a, &b, &own_v4),
        Ok(Inbound::Deliver {
            at: LINK_PAYLOAD_AT,
            len: 20
        })
    );
}

#[test]
fn an_fc00_packet_nothing_routes_is_answered_with_destination_unreachable_from_the_node() {
    let own = Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0xa);
    let (a, _) = pair();
    let a = a.with_own_address(own);
    let src = Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0xa);
    let nowhere = Ipv6Addr::new(0xfc12, 0, 0, 0, 0, 0, 0, 1);
    let ip = packet(src.into(), nowhere.into());
    let outbound = |a: &Dataplane, now: Duration, ip: &[u8]| {
        let mut buf = vec![0u8; buffer_len(MTU)];
        buf[PACKET_AT..PACKET_AT + ip.len()].copy_from_slice(ip);
        a.outbound(now, &mut buf, ip.len())
            .map(|sealed| match sealed {
                Sealed::Reply { at, len } => buf[at..at + len].to_vec(),
                other => panic!("not a reply: {other:?}"),
            })
    };
    let reply = outbound(&a, Duration::from_secs(1), &ip).unwrap();
    assert_eq!(reply[0] >> 4, 6);
    assert_eq!(reply[6], 58, "ICMPv6");
    assert_eq!(&reply[8..24], &own.octets(), "from the node itself");
    assert_eq!(&reply[24..40], &src.octets(), "to the packet's source");
    assert_eq!(
        (reply[40], reply[41]),
        (1, 0),
        "Destination Unreachable, no route"
    );
    assert_eq!(&reply[48..48 + ip.len()], &ip[..], "quoting the packet");
    let answered = (1..ICMP_ERROR_BURST + 10)
        .filter(|_| outbound(&a, Duration::from_secs(1), &ip).is_ok())
        .count();
    assert_eq!(
        answered as u32,
        ICMP_ERROR_BURST - 1,
        "a burst, then the rate"
    );
    assert_eq!(
        outbound(&a, Duration::from_secs(1), &ip),
        Err(DropReason::NoRoute),
        "past the burst, only a drop"
    );
    assert!(outbound(&a, Duration::from_secs(1) + ICMP_ERROR_INTERVAL, &ip).is_ok());
    let not_overlay = packet(
        src.into(),
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9).into(),
    );
    assert_eq!(
        outbound(&a, Duration::from_secs(3), &not_overlay),
        Err(DropReason::NoRoute),
        "outside fc00::/8 a missing route is only a drop, as in WireGuard"
    );
}
