//! The forwarder: a ROUTED frame from A opened at B, its label switched and re-sealed for C in
//! place (`Dataplane::inbound`), next to B's bare open + seal of the same bytes in the same run.
//! A's seal happens in the untimed setup of each iteration.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rovy_benches::forwarding::Middle;

const FRAME_LENS: [usize; 2] = [64, 1420];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    for frame_len in FRAME_LENS {
        group.throughput(Throughput::Bytes(frame_len as u64));
        let middle = Middle::new();
        let now = Duration::from_secs(1);
        group.bench_with_input(
            BenchmarkId::new("open_switch_reseal", frame_len),
            &frame_len,
            |bench, &frame_len| {
                bench.iter_batched_ref(
                    || {
                        let mut buf = Middle::buffer();
                        let len = middle.seal_at_a(now, &mut buf, frame_len).expect("sealed");
                        buf.truncate(len);
                        buf
                    },
                    |datagram| {
                        let forwarded = middle.forward_at_b(now, black_box(datagram));
                        black_box(forwarded.expect("forwarded"))
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
