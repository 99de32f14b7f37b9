//! Label forwarding through the pipeline, in memory: A — B — C, each link a real WireGuard
//! session. A routed frame sealed at A for B is switched by B's `Dataplane::inbound`, re-sealed
//! in place for C, and opened by C as a frame for its control thread, label rewritten into the
//! way back. Hostile frames (U-turns, dead next hops, frames from a plain WireGuard peer) are
//! dropped with their reason, and a dead next hop bounces a ROUTE_ERROR back to A. A
//! hop-limited probe from A's TUN becomes a PING that ends at B, and B's PONG a Time Exceeded
//! from B's address (traceroute).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use etherparse::icmpv6::TimeExceededCode;
use etherparse::{Icmpv6Slice, Icmpv6Type, Ipv6Slice, PacketBuilder};
use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, PACKET_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::overlay_address;
use rovy_dataplane::peer::{PeerShared, Sealed};
use rovy_dataplane::pipeline::{Dataplane, Inbound, ROUTE_ERROR_BURST, ROUTE_ERROR_INTERVAL};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::signature;
use rovy_dataplane::switch::{answer_ping, failed_label};
use rovy_dataplane::tables::{PeerKind, Tables};
use rovy_dataplane::wire::frame::{
    FrameKind, Label, PONG_LEN, PingFrame, PongFrame, ROUTE_ERROR_LEN, RouteErrorFrame,
    RoutedFrame, RoutedHeader, pong_signed_message,
};

const MTU: usize = 1420;
const NOW: Duration = Duration::from_secs(1);

fn addr(last: u8) -> LinkAddr {
    LinkAddr::Udp(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 8, 0, last)),
        1312,
    ))
}

/// One end of a link: our session, the peer's address, its kind, and our slot for it.
struct End {
    session: Session,
    at: LinkAddr,
    kind: PeerKind,
    slot: u8,
}

/// A node with one peer per `End`, in order, each link live on its slot.
fn node(ends: Vec<End>) -> Dataplane {
    let index = Arc::new(IndexTable::new());
    let mut peers = Vec::new();
    let mut kinds = Vec::new();
    let mut slots = Vec::new();
    for (i, end) in ends.into_iter().enumerate() {
        let peer = Arc::new(PeerShared::new(i as u16, Some(end.at)));
        index.insert(end.session.local_index(), Arc::clone(&peer));
        peer.install(end.session);
        peers.push(peer);
        kinds.push(end.kind);
        slots.push(end.slot);
    }
    let mut tables = Tables::new(RoutingTable::new(), peers, kinds);
    for (i, slot) in slots.into_iter().enumerate() {
        let peer = Arc::clone(tables.peer(i as u16).unwrap());
        assert!(tables.links.insert(slot, peer));
    }
    Dataplane::new(index, tables, MTU)
}

/// Two ends of one link: (ours at X, ours at Y), X the initiator.
fn link(x: u32, y: u32) -> (Session, Session) {
    let key = |b: u32| SymmetricKey::from_bytes([b as u8; 32]);
    (
        Session::new(x, y, key(x), key(y), true, Duration::ZERO),
        Session::new(y, x, key(y), key(x), false, Duration::ZERO),
    )
}

struct Net {
    /// A's only peer is B (slot 3).
    a: Dataplane,
    /// B's peers: A (slot 5), C (slot 7), and W, a plain WireGuard peer (slot 9).
    b: Dataplane,
    /// C's only peer is B (slot 2).
    c: Dataplane,
    /// W's session with B, to seal as a WireGuard peer would.
    w_to_b: Dataplane,
}

fn net() -> Net {
    let (ab, ba) = link(11, 12);
    let (bc, cb) = link(21, 22);
    let (wb, bw) = link(32, 31);
    let end = |session, at, kind, slot| End {
        session,
        at,
        kind,
        slot,
    };
    Net {
        a: node(vec![end(ab, addr(2), PeerKind::Rovy, 3)]),
        b: node(vec![
            end(ba, addr(1), PeerKind::Rovy, 5),
            end(bc, addr(3), PeerKind::Rovy, 7),
            end(bw, addr(9), PeerKind::WireGuard, 9),
        ]),
        c: node(vec![end(cb, addr(2), PeerKind::Rovy, 2)]),
        w_to_b: node(vec![end(wb, addr(2), PeerKind::Rovy, 1)]),
    }
}

/// A routed frame of `kind` along `label` with a recognisable payload, sealed by `from` for
/// its only peer: the datagram.
fn sealed_frame(from: &Dataplane, kind: FrameKind, label: &[u8], payload_len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; buffer_len(MTU)];
    let frame_len = 16 + payload_len;
    {
        let frame = &mut buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + frame_len];
        for (i, byte) in frame[16..].iter_mut().enumerate() {
            *byte = i as u8;
        }
        RoutedHeader::new_unchecked(&mut frame[..]).fill(kind, &Label::new(label).unwrap());
    }
    let peer = Arc::clone(from.tables().peer(0).unwrap());
    let (len, _) = peer.seal_link(NOW, &mut buf, frame_len, MTU).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn a_routed_frame_crosses_the_middle_node_and_arrives_with_the_way_back() {
    let n = net();
    let mut datagram = sealed_frame(&n.a, FrameKind::Routed, &[3, 7], 64);
    let sent_len = datagram.len();
    let Ok(Inbound::Forward { at, len, dst }) = n.b.inbound(NOW, addr(1), &mut datagram) else {
        panic!("B forwards the frame");
    };
    assert_eq!(
        (at, len, dst),
        (0, sent_len, addr(3)),
        "re-sealed in place, for C"
    );
    let opened = n.c.inbound(NOW, addr(2), &mut datagram[..len]);
    let Ok(Inbound::Control { at, len, peer }) = opened else {
        panic!("C takes the frame: {opened:?}");
    };
    assert_eq!((at, peer), (LINK_PAYLOAD_AT, 0));
    let frame = RoutedFrame::new_checked(&datagram[at..at + len]).unwrap();
    assert_eq!(frame.header().pos(), 2);
    assert_eq!(
        frame.header().label(),
        &[5, 2],
        "the slots back, written backwards"
    );
    let payload: Vec<u8> = (0..64).map(|i| i as u8).collect();
    assert_eq!(&frame.payload()[..64], &payload[..]);
}

#[test]
fn a_frame_for_the_next_node_and_a_routing_message_go_to_control() {
    let n = net();
    let mut datagram = sealed_frame(&n.a, FrameKind::Ping, &[3], 8);
    assert!(matches!(
        n.b.inbound(NOW, addr(1), &mut datagram),
        Ok(Inbound::Control { peer: 0, .. })
    ));

    let mut buf = vec![0u8; buffer_len(MTU)];
    buf[LINK_PAYLOAD_AT] = FrameKind::Hello as u8;
    let peer = Arc::clone(n.a.tables().peer(0).unwrap());
    let (len, _) = peer.seal_link(NOW, &mut buf, 15, MTU).unwrap();
    assert!(matches!(
        n.b.inbound(NOW, addr(1), &mut buf[..len]),
        Ok(Inbound::Control {
            peer: 0,
            len: 16,
            ..
        })
    ));
}

#[test]
fn u_turns_are_dropped_but_a_ping_may_turn_back() {
    let n = net();
    let mut routed = sealed_frame(&n.a, FrameKind::Routed, &[3, 5], 32);
    assert_eq!(
        n.b.inbound(NOW, addr(1), &mut routed),
        Err(DropReason::UTurn)
    );
    let mut ping = sealed_frame(&n.a, FrameKind::Ping, &[3, 5, 3], 8);
    assert!(matches!(
        n.b.inbound(NOW, addr(1), &mut ping),
        Ok(Inbound::Forward { dst, .. }) if dst == addr(1)
    ));
}

#[test]
fn a_dead_next_hop_bounces_a_route_error_back_to_the_source() {
    let n = net();
    let mut datagram = sealed_frame(&n.a, FrameKind::Routed, &[3, 200], 32);
    let Ok(Inbound::Bounce { at, len, dst }) = n.b.inbound(NOW, addr(1), &mut datagram) else {
        panic!("B bounces the frame");
    };
    assert_eq!(dst, addr(1), "back on the link it came in on");
    let back = n.a.inbound(NOW, addr(2), &mut datagram[at..at + len]);
    let Ok(Inbound::Control { at, len, .. }) = back else {
        panic!("A takes the error: {back:?}");
    };
    assert!(len >= ROUTE_ERROR_LEN);
    let error = RouteErrorFrame::new_checked(&datagram[at..at + len]).unwrap();
    assert_eq!(error.failed_pos(), 1);
    assert_eq!(
        error.header().label(),
        &[3],
        "A's way back to itself: the link it sent on"
    );
    assert_eq!(
        failed_label(&error).unwrap().as_slice(),
        &[3, 200],
        "A can tell which of its labels broke"
    );

    let bounced = (1..ROUTE_ERROR_BURST + 10)
        .filter(|_| {
            let mut next = sealed_frame(&n.a, FrameKind::Routed, &[3, 200], 32);
            let verdict = n.b.inbound(NOW, addr(1), &mut next);
            assert!(
                matches!(
                    verdict,
                    Ok(Inbound::Bounce { .. }) | Err(DropReason::DeadSlot)
                ),
                "{verdict:?}"
            );
            verdict.is_ok()
        })
        .count();
    assert_eq!(
        bounced as u32,
        ROUTE_ERROR_BURST - 1,
        "errors past the burst are not sent until the interval passes"
    );
    let mut later = sealed_frame(&n.a, FrameKind::Routed, &[3, 200], 32);
    assert!(matches!(
        n.b.inbound(NOW + ROUTE_ERROR_INTERVAL, addr(1), &mut later),
        Ok(Inbound::Bounce { .. })
    ));
}

#[test]
fn a_ping_too_short_to_carry_its_route_error_is_dropped_without_a_handshake() {
    let n = net();
    let b_to_a = Arc::clone(n.b.tables().peer(0).unwrap());
    assert!(!b_to_a.take_handshake_request());
    // A PING's 24 bytes pad to 32: its datagram has no room for the 34-byte ROUTE_ERROR.
    let mut ping = sealed_frame(&n.a, FrameKind::Ping, &[3, 200], 8);
    assert_eq!(
        n.b.inbound(NOW, addr(1), &mut ping),
        Err(DropReason::DeadSlot)
    );
    assert!(
        !b_to_a.take_handshake_request(),
        "a healthy link asked to rekey by a frame"
    );
    let mut routed = sealed_frame(&n.a, FrameKind::Routed, &[3, 200], 32);
    assert!(
        matches!(
            n.b.inbound(NOW, addr(1), &mut routed),
            Ok(Inbound::Bounce { .. })
        ),
        "the dropped PING used no ROUTE_ERROR allowance"
    );
}

#[test]
fn frames_from_a_wireguard_peer_and_malformed_labels_are_counted_drops() {
    let n = net();
    let mut from_w = sealed_frame(&n.w_to_b, FrameKind::Routed, &[1, 7], 32);
    assert_eq!(
        n.b.inbound(NOW, addr(9), &mut from_w),
        Err(DropReason::FrameFromWireguardPeer)
    );
    let mut buf = vec![0u8; buffer_len(MTU)];
    buf[LINK_PAYLOAD_AT] = 0x3f;
    let peer = Arc::clone(n.a.tables().peer(0).unwrap());
    let (len, _) = peer.seal_link(NOW, &mut buf, 48, MTU).unwrap();
    assert_eq!(
        n.b.inbound(NOW, addr(1), &mut buf[..len]),
        Err(DropReason::UnknownFrame)
    );
    let mut bad_pos = [0u8; 64];
    bad_pos[0] = FrameKind::Routed as u8;
    bad_pos[1] = (3 << 4) | 2;
    let mut buf = vec![0u8; buffer_len(MTU)];
    buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + 64].copy_from_slice(&bad_pos);
    let (len, _) = peer.seal_link(NOW, &mut buf, 64, MTU).unwrap();
    assert_eq!(
        n.b.inbound(NOW, addr(1), &mut buf[..len]),
        Err(DropReason::BadLabel)
    );
    let mut valid = sealed_frame(&n.a, FrameKind::Routed, &[3, 7], 32);
    assert!(
        matches!(
            n.b.inbound(NOW, addr(1), &mut valid),
            Ok(Inbound::Forward { .. })
        ),
        "the node forwards on after the drops"
    );
}

/// A key whose address is in fc00::/8, and that address: about one try in 256 fits.
fn overlay_key(seed: u8) -> ([u8; 32], Ipv6Addr) {
    (0..=u16::MAX)
        .find_map(|i| {
            let mut key = [seed; 32];
            key[..2].copy_from_slice(&i.to_le_bytes());
            overlay_address::derive(&key).map(|address| (key, address))
        })
        .expect("some key has an fc address")
}

/// A real X25519 identity whose key derives an fc address: (private, public, address).
fn overlay_identity(seed: u8) -> ([u8; 32], [u8; 32], Ipv6Addr) {
    (0..=u16::MAX)
        .find_map(|i| {
            let mut private = [seed; 32];
            private[..2].copy_from_slice(&i.to_le_bytes());
            let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(private))
                .to_bytes();
            overlay_address::derive(&public).map(|address| (private, public, address))
        })
        .expect("some key has an fc address")
}

/// A routes C's address through an upper peer whose route is `[3, 7]` (via B), as control
/// does when routing finds C. Returns C's address.
fn route_a_to_c(n: &Net) -> Ipv6Addr {
    let (_, c_address) = overlay_key(0xc0);
    let upper = Arc::new(PeerShared::new(
        0,
        Some(LinkAddr::Overlay(Label::new(&[3, 7]).unwrap())),
    ));
    let tables = n.a.shared_tables();
    let mut next = tables.snapshot();
    let mut overlay = (*next.overlay).clone();
    overlay.insert(c_address, upper);
    next.overlay = Arc::new(overlay);
    tables.store(next);
    c_address
}

/// A UDP probe, as traceroute6 sends, from A's address to `dst` with `hop_limit`, in a packet
/// buffer as the TUN read it.
fn probe(dst: Ipv6Addr, hop_limit: u8) -> (Vec<u8>, Vec<u8>, usize) {
    let (_, a_address) = overlay_key(0xa0);
    let mut packet = Vec::new();
    PacketBuilder::ipv6(a_address.octets(), dst.octets(), hop_limit)
        .udp(40000, 33434)
        .write(&mut packet, &[0x5a; 24])
        .unwrap();
    let mut buf = vec![0u8; buffer_len(MTU)];
    buf[PACKET_AT..PACKET_AT + packet.len()].copy_from_slice(&packet);
    let len = packet.len();
    (packet, buf, len)
}

#[test]
fn a_hop_limited_probe_comes_back_as_time_exceeded_from_the_hop_where_it_ran_out() {
    let n = net();
    let c_address = route_a_to_c(&n);
    let (b_private, b_key, b_address) = overlay_identity(0xb0);
    let (packet, mut buf, len) = probe(c_address, 1);

    let Ok(Sealed::Datagram { at: 0, len, dst }) = n.a.outbound(NOW, &mut buf, len) else {
        panic!("A sends a PING in place of the probe");
    };
    assert_eq!(dst, addr(2), "to B, the route's first hop");
    let opened = n.b.inbound(NOW, addr(1), &mut buf[..len]);
    let Ok(Inbound::Control { at, len, .. }) = opened else {
        panic!("the PING's label ends at B: {opened:?}");
    };
    let ping = PingFrame::new_checked(&buf[at..at + len]).unwrap();
    assert_eq!(
        &ping.data()[..packet.len()],
        &packet[..],
        "the PING carries the probe"
    );

    // B's control answers; its PONG goes back to A on B's slot 5.
    let mut answer = vec![0u8; buffer_len(MTU)];
    let sign = |m: &[u8]| signature::sign(&b_private, m);
    let (pong_len, back) =
        answer_ping(&ping, &b_key, sign, &mut answer[LINK_PAYLOAD_AT..]).unwrap();
    let genuine = answer[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + pong_len].to_vec();
    assert_eq!(back.as_slice(), &[5]);
    let b_to_a = Arc::clone(n.b.tables().peer(0).unwrap());
    let (sealed, _) = b_to_a.seal_link(NOW, &mut answer, pong_len, MTU).unwrap();
    answer.truncate(sealed);

    let delivered = n.a.inbound(NOW, addr(2), &mut answer);
    let Ok(Inbound::Deliver { at, len }) = delivered else {
        panic!("A writes a Time Exceeded to its TUN: {delivered:?}");
    };
    let error = Ipv6Slice::from_slice(&answer[at..at + len]).expect("an IPv6 packet");
    assert_eq!(
        error.header().source_addr(),
        b_address,
        "from B's own address"
    );
    assert_eq!(error.header().destination_addr().octets(), packet[8..24]);
    let icmp = Icmpv6Slice::from_slice(error.payload().payload).unwrap();
    assert!(icmp.is_checksum_valid(b_address.octets(), packet[8..24].try_into().unwrap()));
    assert_eq!(
        icmp.icmp_type(),
        Icmpv6Type::TimeExceeded(TimeExceededCode::HopLimitExceeded)
    );
    assert_eq!(icmp.payload(), &packet[..], "quoting the probe whole");

    // The same PONG with another id, sealed afresh so that it authenticates: refused.
    let mut plain = vec![0u8; buffer_len(MTU)];
    let mut rewritten =
        PongFrame::new_unchecked(&mut plain[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + pong_len]);
    rewritten.fill_header(&Label::new(&[5]).unwrap());
    rewritten.set_id(0x1234);
    rewritten.set_public_key(&b_key);
    rewritten
        .data_mut()
        .copy_from_slice(&ping_data(&packet, pong_len));
    let (sealed, _) = b_to_a.seal_link(NOW, &mut plain, pong_len, MTU).unwrap();
    assert_eq!(
        n.a.inbound(NOW, addr(2), &mut plain[..sealed]),
        Err(DropReason::UnsolicitedPong)
    );

    // The genuine PONG naming B but signed by another key (a hop inventing a node): refused.
    let (m_private, _, _) = overlay_identity(0xd0);
    let mut plain = vec![0u8; buffer_len(MTU)];
    plain[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + pong_len].copy_from_slice(&genuine);
    let mut forged =
        PongFrame::new_unchecked(&mut plain[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + pong_len]);
    let id = forged.id();
    forged.set_signature(&signature::sign(&m_private, &pong_signed_message(id)));
    let (sealed, _) = b_to_a.seal_link(NOW, &mut plain, pong_len, MTU).unwrap();
    assert_eq!(
        n.a.inbound(NOW, addr(2), &mut plain[..sealed]),
        Err(DropReason::ForgedPong)
    );
}

/// The data of a PONG of `pong_len` bytes echoing `packet`: the packet, then zeros.
fn ping_data(packet: &[u8], pong_len: usize) -> Vec<u8> {
    let mut data = vec![0u8; pong_len - PONG_LEN];
    data[..packet.len()].copy_from_slice(packet);
    data
}

#[test]
fn a_probe_with_hops_enough_for_its_route_travels_as_data() {
    let n = net();
    let c_address = route_a_to_c(&n);
    for hop_limit in [2, 64] {
        let (_, mut buf, len) = probe(c_address, hop_limit);
        assert!(
            matches!(n.a.outbound(NOW, &mut buf, len), Ok(Sealed::Staged { .. })),
            "hop limit {hop_limit}: waits for the upper session like any packet to C"
        );
    }
}
