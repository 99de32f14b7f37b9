//! The label switch alone: one 1420-byte ROUTED frame arriving at an intermediate node,
//! checked, rewritten in place and given its next hop. Each iteration first puts the frame's
//! 16-byte routed header back as the previous node sent it, so every frame is switched from the
//! same state; that copy is part of the time measured.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rovy_dataplane::switch::{SlotSet, Switched, switch};
use rovy_dataplane::wire::frame::{Label, ROUTED_HEADER_LEN, RoutedFrame};

const FRAME_LEN: usize = 1420;
/// The slot the frame arrives on and the one it leaves by, at a node with a few live links.
const INGRESS: u8 = 5;
const EGRESS: u8 = 7;

fn bench(c: &mut Criterion) {
    let mut frame = vec![0x5au8; FRAME_LEN];
    RoutedFrame::new_unchecked(&mut frame[..])
        .fill_header(&Label::new(&[3, EGRESS, 9, 2]).expect("a short label"));
    let sent: [u8; ROUTED_HEADER_LEN] = frame[..ROUTED_HEADER_LEN].try_into().expect("the header");
    let mut live = SlotSet::new();
    for slot in [1, INGRESS, EGRESS, 200] {
        live.insert(slot);
    }

    let mut group = c.benchmark_group("switch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("forward_1420", |bench| {
        bench.iter(|| {
            frame[..ROUTED_HEADER_LEN].copy_from_slice(&sent);
            let switched = switch(black_box(&mut frame[..]), black_box(INGRESS), &live);
            assert_eq!(switched, Ok(Switched::Forward { slot: EGRESS }));
            black_box(&frame);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
