//! Per-packet costs of the data path: the bare ring AEAD as the floor, a session's seal and open
//! on top of it (header, padding, counter, replay window), and the replay window alone.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::replay::ReplayWindow;
use rovy_dataplane::session::Session;
use rovy_dataplane::wire::{DATA_HEADER_LEN, KEEPALIVE_LEN};

const SIZES: [usize; 3] = [64, 1420, 8192];
const NOW: Duration = Duration::from_secs(1);
const SEND_KEY: [u8; 32] = [0x11; 32];
const RECV_KEY: [u8; 32] = [0x22; 32];

/// Both ends of one session: `(sender, receiver)`.
fn session_pair() -> (Session, Session) {
    let sender = Session::new(
        1,
        2,
        SymmetricKey::from_bytes(SEND_KEY),
        SymmetricKey::from_bytes(RECV_KEY),
        true,
        Duration::ZERO,
    );
    let receiver = Session::new(
        2,
        1,
        SymmetricKey::from_bytes(RECV_KEY),
        SymmetricKey::from_bytes(SEND_KEY),
        false,
        Duration::ZERO,
    );
    (sender, receiver)
}

/// A buffer holding a `size`-byte plaintext at the data offset, with room for header and tag.
/// Sizes are multiples of 16 or equal to the MTU passed, so no padding is added.
fn plaintext_buffer(size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; KEEPALIVE_LEN + size];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + size].fill(0x45);
    buf
}

fn aead(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead");
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &SEND_KEY).unwrap());
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x45u8; size];
        let mut counter = 0u64;
        group.bench_function(BenchmarkId::new("ring_raw_seal", size), |b| {
            b.iter(|| {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                counter += 1;
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::empty(),
                    black_box(&mut buf[..]),
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

fn session(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        let (sender, _) = session_pair();
        let mut buf = plaintext_buffer(size);
        group.bench_function(BenchmarkId::new("encapsulate", size), |b| {
            b.iter(|| {
                let len = sender
                    .encapsulate(NOW, black_box(&mut buf), size, size)
                    .unwrap();
                assert_eq!(len, KEEPALIVE_LEN + size);
            })
        });

        // Every packet carries a fresh counter from the sender, sealed outside the timed part,
        // so the receiver's replay window accepts each and the full open is measured.
        let (sender, receiver) = session_pair();
        group.bench_function(BenchmarkId::new("decapsulate", size), |b| {
            b.iter_batched_ref(
                || {
                    let mut packet = plaintext_buffer(size);
                    sender.encapsulate(NOW, &mut packet, size, size).unwrap();
                    packet
                },
                |packet| {
                    let opened = receiver.decapsulate(NOW, black_box(packet));
                    assert_eq!(opened, Ok(size));
                },
                BatchSize::NumIterations(512),
            )
        });
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");

    let mut window = ReplayWindow::new();
    let mut counter = 0u64;
    group.bench_function("mark_in_order", |b| {
        b.iter(|| {
            assert!(window.mark(black_box(counter)));
            counter += 1;
        })
    });

    // Blocks of 1024 consecutive counters, each block delivered in a scrambled order
    // (multiplying by an odd number permutes 0..1024), so every mark is fresh but arrives
    // up to 1023 places out of order.
    let mut window = ReplayWindow::new();
    let mut sequence = 0u64;
    group.bench_function("mark_out_of_order", |b| {
        b.iter(|| {
            let block_start = sequence & !1023;
            let offset = (sequence * 389) & 1023;
            assert!(window.mark(black_box(block_start + offset)));
            sequence += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, aead, session, replay);
criterion_main!(benches);
