//! The whole per-packet pipeline in memory, without I/O: a TUN packet routed, sealed into a data
//! message by node A (`Dataplane::outbound`), then opened, replay-checked, source-checked and
//! handed back for the TUN by node B (`Dataplane::inbound`). Next to it, in the same run, the
//! bare ring AEAD seal + open of the same bytes: the difference is what our pipeline costs on top
//! of the cryptography.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, PACKET_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::{PeerShared, Sealed};
use rovy_dataplane::pipeline::{Dataplane, Inbound};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};

const MTU: usize = 1420;
const SIZES: [usize; 3] = [64, 576, 1420];
const A_INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const A_UNDER: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1)),
    1,
));
const B_UNDER: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::new(10, 8, 0, 2)),
    2,
));

/// A node whose only peer (slot 0) owns `peer_inner` at `peer_under`.
fn node(peer_inner: Ipv4Addr, peer_under: LinkAddr, session: Session) -> Dataplane {
    let local = session.local_index();
    let peer = Arc::new(PeerShared::new(0, Some(peer_under)));
    peer.install(session);
    let index = Arc::new(IndexTable::new());
    index.insert(local, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    routes.insert(peer_inner.into(), 32, 0).unwrap();
    Dataplane::new(
        index,
        Tables::new(routes, vec![peer], vec![PeerKind::Rovy]),
        MTU,
    )
}

fn pair() -> (Dataplane, Dataplane) {
    let key = |b| SymmetricKey::from_bytes([b; 32]);
    let a = Session::new(1, 2, key(1), key(2), true, Duration::ZERO);
    let b = Session::new(2, 1, key(2), key(1), true, Duration::ZERO);
    (node(B_INNER, B_UNDER, a), node(A_INNER, A_UNDER, b))
}

/// An IPv4 packet of `size` bytes from A's inner address to B's.
fn packet(size: usize) -> Vec<u8> {
    let mut p = vec![0x5au8; size];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    p[12..16].copy_from_slice(&A_INNER.octets());
    p[16..20].copy_from_slice(&B_INNER.octets());
    p
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let (a, b) = pair();
        let ip = packet(size);
        let mut buf = vec![0u8; buffer_len(MTU)];
        let now = Duration::from_secs(1);
        group.bench_with_input(
            BenchmarkId::new("tun_to_udp_to_tun", size),
            &size,
            |bench, _| {
                bench.iter(|| {
                    buf[PACKET_AT..PACKET_AT + size].copy_from_slice(&ip);
                    let Ok(Sealed::Datagram { at, len, .. }) = a.outbound(now, &mut buf, size)
                    else {
                        panic!("not sealed");
                    };
                    let datagram = &mut buf[at..at + len];
                    let got = b.inbound(now, A_UNDER, datagram).expect("opened");
                    let delivered = Inbound::Deliver {
                        at: LINK_PAYLOAD_AT,
                        len: size,
                    };
                    assert_eq!(got, delivered);
                    black_box(&buf);
                })
            },
        );

        let sealing = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[1; 32]).unwrap());
        let opening = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[1; 32]).unwrap());
        let mut raw = vec![0u8; size + 16];
        let mut counter = 0u64;
        group.bench_with_input(
            BenchmarkId::new("bare_ring_seal_open", size),
            &size,
            |bench, _| {
                bench.iter(|| {
                    counter += 1;
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&counter.to_le_bytes());
                    raw[..size].copy_from_slice(&ip);
                    let (data, tag) = raw.split_at_mut(size);
                    let t = sealing
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::empty(),
                            data,
                        )
                        .unwrap();
                    tag.copy_from_slice(t.as_ref());
                    let opened = opening
                        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut raw)
                        .unwrap();
                    black_box(opened.len());
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
