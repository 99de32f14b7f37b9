//! Label forwarding through the pipeline, in memory: A — B — C, each link a real WireGuard
//! session. A routed frame sealed at A for B is switched by B's `Dataplane::inbound`, re-sealed
//! in place for C, and opened by C as a frame for its control thread, label rewritten into the
//! way back. Hostile frames (U-turns, dead next hops, frames from a plain WireGuard peer) are
//! dropped with their reason, and a dead next hop bounces a ROUTE_ERROR back to A.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::{Dataplane, Inbound};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};
use rovy_dataplane::wire::frame::{
    FrameKind, Label, ROUTE_ERROR_LEN, RouteErrorFrame, RoutedFrame, RoutedHeader,
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
        let peer = Arc::clone(&tables.peers[i]);
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
    let peer = Arc::clone(&from.tables().peers[0]);
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
    let peer = Arc::clone(&n.a.tables().peers[0]);
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

    let mut second = sealed_frame(&n.a, FrameKind::Routed, &[3, 200], 32);
    assert_eq!(
        n.b.inbound(NOW, addr(1), &mut second),
        Err(DropReason::DeadSlot),
        "the next error within the interval is not sent"
    );
}

#[test]
fn a_ping_too_short_to_carry_its_route_error_is_dropped_without_a_handshake() {
    let n = net();
    let b_to_a = Arc::clone(&n.b.tables().peers[0]);
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
    let peer = Arc::clone(&n.a.tables().peers[0]);
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
