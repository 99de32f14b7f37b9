//! `Dataplane::inbound` with real sessions: the harness seals the fuzzer's plaintexts on a
//! sender session paired with the receiving node's, so the bytes get past authentication to the
//! inner checks, and delivers them (and raw datagrams, and tampered copies) in the fuzzer's
//! order. Each result is what the protocol says it must be: a keepalive for an empty plaintext,
//! the inner packet's exact bytes and length when its header is sound and its source allowed,
//! the right drop otherwise; a rovy frame refused from a plain WireGuard peer, handed to
//! control when it is a one-link message or its label ends here, and otherwise switched as the
//! forwarding rule says (the harness's own model of it): a PING turning back re-sealed for the
//! sender, a frame whose next hop is dead bounced as the ROUTE_ERROR built from it (at most one
//! per interval, and only when its datagram has room for it), both opening at the sender to
//! exactly those bytes. A second delivery is a
//! replay, a tampered one fails authentication without burning its counter; the peer roams
//! only on an authenticated packet, and a responder's keypair is confirmed by the first one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::buf::LINK_PAYLOAD_AT;
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::{Dataplane, Inbound, ROUTE_ERROR_BURST};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};
use rovy_dataplane::wire::{MessageType, message_type};
use rovy_fuzz::frame::{self, Switched};

const MTU: usize = 1420;
const NOW: Duration = Duration::from_secs(1);
const SENDER_INDEX: u32 = 7;
const RECEIVER_INDEX: u32 = 9;
const ALLOWED_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const ALLOWED_V6_PREFIX: u64 = 0xfd00_0000_0000_0001;
/// Data header and tag around a link plaintext.
const LINK_OVERHEAD: usize = 32;

#[derive(Debug, Arbitrary)]
struct Input {
    /// The receiver's keypair came from a handshake it answered (waits in `next`).
    responder: bool,
    /// The sending peer is a rovy node (else a plain WireGuard peer).
    rovy: bool,
    /// The sender's link slot at the receiver; 0: no live link.
    link_slot: u8,
    /// Another live link, to a peer with an endpoint but no session yet; 0: none.
    other_slot: u8,
    plaintexts: Vec<Plaintext>,
    deliveries: Vec<Delivery>,
}

#[derive(Debug, Arbitrary)]
struct Plaintext {
    shape: Shape,
    bytes: Vec<u8>,
}

/// How much of an IP header or frame the harness fixes up, so that sealed packets reach every
/// check.
#[derive(Debug, Arbitrary)]
enum Shape {
    /// The bytes as they are.
    AsIs,
    /// The IPv4/IPv6 length field set to agree with the bytes.
    FixLength,
    /// An IPv4 header from the allowed source, its length agreeing.
    AllowedV4,
    /// An IPv6 header from the allowed /64, its length agreeing.
    AllowedV6,
    /// A rovy frame: one of the nine kinds, at least as long as a label-routed kind's layout.
    Frame { kind: u8 },
}

#[derive(Debug, Arbitrary)]
enum Delivery {
    /// Sealed message `index`, from one of two addresses, maybe with one ciphertext byte
    /// flipped.
    Sealed {
        index: u8,
        from_second: bool,
        tamper: Option<(u16, u8)>,
    },
    /// Bytes as they are.
    Raw(Vec<u8>),
}

/// What an authenticated plaintext must come to.
#[derive(Debug)]
enum Expected {
    /// Exactly this result; for a packet delivered or a frame handed to control, the bytes it
    /// points at: the packet, or the frame as the switch left it.
    Exact(Result<Inbound, DropReason>, Option<Vec<u8>>),
    /// These link plaintext bytes, re-sealed for the sender.
    Sealed(Vec<u8>),
}

/// The receiving node as the frame path sees it.
struct Links {
    rovy: bool,
    slot: Option<u8>,
    other: Option<u8>,
}

fn addr(ip: [u8; 4], port: u16) -> LinkAddr {
    LinkAddr::from(SocketAddr::from((ip, port)))
}

fuzz_target!(|input: Input| {
    let key = |b| SymmetricKey::from_bytes([b; 32]);
    let sender = Session::new(
        SENDER_INDEX,
        RECEIVER_INDEX,
        key(1),
        key(2),
        true,
        Duration::ZERO,
    );
    let receiver = Session::new(
        RECEIVER_INDEX,
        SENDER_INDEX,
        key(2),
        key(1),
        !input.responder,
        Duration::ZERO,
    );
    let first_src = addr([192, 0, 2, 1], 1312);
    let second_src = addr([198, 51, 100, 2], 51820);
    let peer = Arc::new(PeerShared::new(0, None));
    peer.install(receiver);
    let other = Arc::new(PeerShared::new(1, Some(addr([203, 0, 113, 3], 1312))));
    let index = Arc::new(IndexTable::new());
    index.insert(RECEIVER_INDEX, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    routes.insert(ALLOWED_V4.into(), 32, 0).unwrap();
    routes.insert(v6_prefix_addr().into(), 64, 0).unwrap();
    let kind = if input.rovy {
        PeerKind::Rovy
    } else {
        PeerKind::WireGuard
    };
    let mut tables = Tables::new(
        routes,
        vec![Arc::clone(&peer), Arc::clone(&other)],
        vec![kind, PeerKind::Rovy],
    );
    let links = Links {
        rovy: input.rovy,
        slot: (input.link_slot != 0).then_some(input.link_slot),
        other: (input.other_slot != 0 && input.other_slot != input.link_slot)
            .then_some(input.other_slot),
    };
    if let Some(slot) = links.slot {
        assert!(tables.links.insert(slot, Arc::clone(&peer)));
    }
    if let Some(slot) = links.other {
        assert!(tables.links.insert(slot, Arc::clone(&other)));
    }
    let node = Dataplane::new(index, tables, MTU);

    // Seal every plaintext in order: counters 0, 1, 2, ...
    let mut sealed = Vec::new();
    for plaintext in input.plaintexts.iter().take(32) {
        let mut bytes = plaintext.bytes.clone();
        bytes.truncate(MTU);
        shape(&plaintext.shape, &mut bytes);
        let mut buf = vec![0u8; LINK_PAYLOAD_AT + MTU + LINK_OVERHEAD];
        buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + bytes.len()].copy_from_slice(&bytes);
        let len = sender
            .encapsulate(NOW, &mut buf, bytes.len(), MTU)
            .expect("sealed");
        // The padded plaintext the receiver will see.
        let mut padded = bytes.clone();
        padded.resize(len - LINK_OVERHEAD, 0);
        sealed.push((buf[..len].to_vec(), bytes.is_empty(), padded));
    }

    let mut delivered = vec![false; sealed.len()];
    let mut authenticated = false;
    let mut endpoint = None;
    let mut route_errors_sent = 0;
    for delivery in input.deliveries.iter().take(64) {
        match delivery {
            Delivery::Raw(bytes) => {
                let mut buf = bytes.clone();
                let result = node.inbound(NOW, first_src, &mut buf);
                match message_type(bytes) {
                    Err(reason) => assert_eq!(result, Err(reason)),
                    Ok(MessageType::Data) => assert!(
                        !matches!(result, Ok(Inbound::Handshake)),
                        "a data message taken for a handshake"
                    ),
                    Ok(_) => assert_eq!(result, Ok(Inbound::Handshake)),
                }
                if result.is_ok_and(|r| r != Inbound::Handshake) {
                    authenticated = true;
                    endpoint = Some(first_src);
                }
            }
            Delivery::Sealed {
                index,
                from_second,
                tamper,
            } => {
                if sealed.is_empty() {
                    continue;
                }
                let k = usize::from(*index) % sealed.len();
                let (datagram, keepalive, padded) = &sealed[k];
                let src = if *from_second { second_src } else { first_src };
                let mut buf = datagram.clone();
                let tampered = tamper.is_some_and(|(_, xor)| xor != 0);
                if let Some((at, xor)) = tamper {
                    let at = 16 + usize::from(*at) % (buf.len() - 16);
                    buf[at] ^= xor;
                }
                let result = node.inbound(NOW, src, &mut buf);
                if tampered {
                    let expected = if delivered[k] {
                        DropReason::Replayed
                    } else {
                        DropReason::AuthFailed
                    };
                    assert_eq!(result, Err(expected), "tampered message {k}");
                } else if delivered[k] {
                    assert_eq!(result, Err(DropReason::Replayed), "message {k} again");
                } else {
                    delivered[k] = true;
                    authenticated = true;
                    endpoint = Some(src);
                    let expected = if *keepalive {
                        Expected::Exact(Ok(Inbound::Keepalive), None)
                    } else if padded[0] < 0x40 {
                        expected_frame(&links, padded, &mut route_errors_sent)
                    } else {
                        let result = expected_ip(padded);
                        let packet = result.ok().map(|_| padded.to_vec());
                        Expected::Exact(result, packet)
                    };
                    check_result(&expected, result, &mut buf, src, &sender, k);
                }
            }
        }
        assert_eq!(peer.endpoint(), endpoint, "roamed without authentication");
        let current = peer.sessions().current().map(Session::local_index);
        let confirmed = !input.responder || authenticated;
        assert_eq!(
            current,
            confirmed.then_some(RECEIVER_INDEX),
            "keypair confirmation"
        );
    }
});

/// Checks what `inbound` made of message `k` from `src` against `expected`; a re-sealed
/// datagram must open at the sender to exactly the expected plaintext.
fn check_result(
    expected: &Expected,
    result: Result<Inbound, DropReason>,
    buf: &mut [u8],
    src: LinkAddr,
    sender: &Session,
    k: usize,
) {
    match expected {
        Expected::Exact(expected, bytes) => {
            assert_eq!(result, *expected, "message {k}");
            if let (
                Ok(Inbound::Deliver { at, len } | Inbound::Control { at, len, .. }),
                Some(bytes),
            ) = (result, bytes)
            {
                assert_eq!(&buf[at..at + len], &bytes[..len], "message {k}'s bytes");
            }
        }
        Expected::Sealed(plaintext) => {
            let (at, len, dst) = match result {
                Ok(Inbound::Forward { at, len, dst } | Inbound::Bounce { at, len, dst }) => {
                    (at, len, dst)
                }
                other => panic!("message {k}: {other:?}, expected a re-sealed frame"),
            };
            assert_eq!(dst, src, "message {k} re-sealed for another address");
            let datagram = &mut buf[at..at + len];
            let opened = sender
                .decapsulate(NOW, datagram)
                .expect("the sender opens what the node sealed for it");
            let got = &datagram[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + opened];
            assert!(opened >= plaintext.len(), "message {k} re-sealed short");
            assert_eq!(
                &got[..plaintext.len()],
                &plaintext[..],
                "message {k} re-sealed"
            );
            assert!(got[plaintext.len()..].iter().all(|&b| b == 0), "padding");
        }
    }
}

/// What the node must make of an authenticated rovy frame (first byte below 0x40) from the
/// sender, as DESIGN §1 says, with the forwarding rule taken from the harness's model.
fn expected_frame(links: &Links, padded: &[u8], route_errors_sent: &mut u32) -> Expected {
    let exact = |result| Expected::Exact(result, None);
    if !links.rovy {
        return exact(Err(DropReason::FrameFromWireguardPeer));
    }
    let control = Ok(Inbound::Control {
        at: LINK_PAYLOAD_AT,
        len: padded.len(),
        peer: 0,
    });
    if frame::ONE_LINK.contains(&padded[0]) {
        return Expected::Exact(control, Some(padded.to_vec()));
    }
    if frame::min_len(padded[0]).is_none() {
        return exact(Err(DropReason::UnknownFrame));
    }
    let Some(ingress) = links.slot else {
        return exact(Err(DropReason::DeadSlot));
    };
    let mut switched = padded.to_vec();
    let live = |slot| Some(slot) == links.slot || Some(slot) == links.other;
    match frame::switch(&mut switched, ingress, live) {
        Switched::Drop(reason) => exact(Err(reason)),
        // A PONG for this node becomes a Time Exceeded only if its id is one this node gave a
        // probe, a keyed hash no input can forge.
        Switched::Local if padded[0] == frame::PONG => exact(Err(DropReason::UnsolicitedPong)),
        Switched::Local => Expected::Exact(control, Some(switched)),
        Switched::Forward(slot) if slot == ingress => Expected::Sealed(switched),
        Switched::Forward(_) => exact(Err(DropReason::NoSession)),
        // The error is sealed over the failed frame's datagram: a frame whose padded
        // plaintext cannot hold the padded ROUTE_ERROR (a PING) is dropped, not bounced. All
        // inputs run at one instant, so only the pace's burst of errors goes.
        Switched::RouteError
            if *route_errors_sent >= ROUTE_ERROR_BURST
                || padded.len() < frame::ROUTE_ERROR_LEN.next_multiple_of(16) =>
        {
            exact(Err(DropReason::DeadSlot))
        }
        Switched::RouteError => {
            *route_errors_sent += 1;
            Expected::Sealed(frame::route_error(&switched).to_vec())
        }
    }
}

fn v6_prefix_addr() -> Ipv6Addr {
    Ipv6Addr::from(u128::from(ALLOWED_V6_PREFIX) << 64)
}

/// Applies `shape` to a plaintext of at most the MTU.
fn shape(shape: &Shape, bytes: &mut Vec<u8>) {
    match shape {
        Shape::AsIs => return,
        Shape::FixLength => {}
        Shape::AllowedV4 => {
            bytes.resize(bytes.len().max(20), 0);
            bytes[0] = 0x45;
            bytes[12..16].copy_from_slice(&ALLOWED_V4.octets());
        }
        Shape::AllowedV6 => {
            bytes.resize(bytes.len().max(40), 0);
            bytes[0] = 0x60 | (bytes[0] & 0x0f);
            bytes[8..16].copy_from_slice(&ALLOWED_V6_PREFIX.to_be_bytes());
        }
        Shape::Frame { kind } => {
            const KINDS: [u8; 9] = [
                frame::ROUTED,
                frame::PING,
                frame::PONG,
                frame::ROUTE_ERROR,
                0x20,
                0x21,
                0x22,
                0x23,
                0x24,
            ];
            let kind = KINDS[usize::from(*kind) % KINDS.len()];
            let min = frame::min_len(kind).unwrap_or(1);
            bytes.resize(bytes.len().max(min), 0);
            bytes[0] = kind;
            return;
        }
    }
    fix_length(bytes);
}

/// Sets the IP length field from the bytes, so the packet is sound but for what the fuzzer
/// chose elsewhere.
fn fix_length(bytes: &mut [u8]) {
    match bytes.first().map(|b| b >> 4) {
        Some(4) if bytes.len() >= 20 => {
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        Some(6) if bytes.len() >= 40 => {
            let len = (bytes.len() - 40) as u16;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
        }
        _ => {}
    }
}

/// What the node must make of an authenticated plaintext that is not a frame, read from RFC
/// 791/8200 directly.
fn expected_ip(padded: &[u8]) -> Result<Inbound, DropReason> {
    let be16 = |at: usize| usize::from(u16::from_be_bytes([padded[at], padded[at + 1]]));
    let (src, len) = match padded[0] >> 4 {
        4 if padded.len() >= 20 && be16(2) >= 20 => {
            let src = Ipv4Addr::new(padded[12], padded[13], padded[14], padded[15]);
            (IpAddr::V4(src), be16(2))
        }
        6 if padded.len() >= 40 => {
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&padded[8..24]).unwrap());
            (IpAddr::V6(src), 40 + be16(4))
        }
        _ => return Err(DropReason::InvalidInnerPacket),
    };
    if len > padded.len() {
        return Err(DropReason::InvalidInnerPacket);
    }
    let allowed = match src {
        IpAddr::V4(v4) => v4 == ALLOWED_V4,
        IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64 == ALLOWED_V6_PREFIX,
    };
    if allowed {
        Ok(Inbound::Deliver {
            at: LINK_PAYLOAD_AT,
            len,
        })
    } else {
        Err(DropReason::SourceNotAllowed)
    }
}
