//! `Dataplane::inbound` with real sessions: the harness seals the fuzzer's plaintexts on a
//! sender session paired with the receiving node's, so the bytes get past authentication to the
//! inner checks, and delivers them (and raw datagrams, and tampered copies) in the fuzzer's
//! order. Each result is what the protocol says it must be: a keepalive for an empty plaintext,
//! the inner packet's exact bytes and length when its header is sound and its source allowed,
//! the right drop otherwise; a second delivery is a replay, a tampered one fails authentication
//! without burning its counter; the peer roams only on an authenticated packet, and a
//! responder's keypair is confirmed by the first one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::{Dataplane, HEADROOM, Inbound, buffer_len};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::wire::{MessageType, message_type};

const MTU: usize = 1420;
const NOW: Duration = Duration::from_secs(1);
const SENDER_INDEX: u32 = 7;
const RECEIVER_INDEX: u32 = 9;
const ALLOWED_V4: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const ALLOWED_V6_PREFIX: u64 = 0xfd00_0000_0000_0001;

#[derive(Debug, Arbitrary)]
struct Input {
    /// The receiver's keypair came from a handshake it answered (waits in `next`).
    responder: bool,
    plaintexts: Vec<Plaintext>,
    deliveries: Vec<Delivery>,
}

#[derive(Debug, Arbitrary)]
struct Plaintext {
    shape: Shape,
    bytes: Vec<u8>,
}

/// How much of an IP header the harness fixes up, so that sealed packets reach every check.
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
    let first_src = SocketAddr::from(([192, 0, 2, 1], 1312));
    let second_src = SocketAddr::from(([198, 51, 100, 2], 51820));
    let peer = Arc::new(PeerShared::new(0, None));
    peer.install(receiver);
    let index = Arc::new(IndexTable::new());
    index.insert(RECEIVER_INDEX, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    routes.insert(ALLOWED_V4.into(), 32, 0).unwrap();
    routes.insert(v6_prefix_addr().into(), 64, 0).unwrap();
    let node = Dataplane::new(index, routes, vec![Arc::clone(&peer)], MTU);

    // Seal every plaintext in order: counters 0, 1, 2, ...
    let mut sealed = Vec::new();
    for plaintext in input.plaintexts.iter().take(32) {
        let mut bytes = plaintext.bytes.clone();
        bytes.truncate(MTU);
        shape(&plaintext.shape, &mut bytes);
        let mut buf = vec![0u8; buffer_len(MTU)];
        buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(&bytes);
        let len = sender
            .encapsulate(NOW, &mut buf, bytes.len(), MTU)
            .expect("sealed");
        // The padded plaintext the receiver will see.
        let mut padded = bytes.clone();
        padded.resize(len - HEADROOM - 16, 0);
        sealed.push((buf[..len].to_vec(), bytes.is_empty(), padded));
    }

    let mut delivered = vec![false; sealed.len()];
    let mut authenticated = false;
    let mut endpoint = None;
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
                    let expected = expected_result(*keepalive, padded);
                    assert_eq!(result, expected, "message {k}");
                    if let Ok(Inbound::Deliver { len }) = result {
                        assert_eq!(buf[HEADROOM..HEADROOM + len], padded[..len]);
                    }
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

/// What the node must make of an authenticated plaintext, read from RFC 791/8200 directly.
fn expected_result(keepalive: bool, padded: &[u8]) -> Result<Inbound, DropReason> {
    if keepalive {
        return Ok(Inbound::Keepalive);
    }
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
        Ok(Inbound::Deliver { len })
    } else {
        Err(DropReason::SourceNotAllowed)
    }
}
