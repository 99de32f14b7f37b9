//! The steady data path allocates nothing per packet, on either backend, with and without
//! offloads: after a warm-up, a run of round trips through two real workers leaves the
//! process-wide allocation count where it was, give or take a small constant (needs root).
#![forbid(unsafe_code)]

mod common;

use std::sync::atomic::Ordering;

use common::{Backend, TwoNodes, in_new_netns};
use rovy_dataplane::sys::CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

const WARM_UP: usize = 64;
const ROUND_TRIPS: usize = 2000;
/// Allocations tolerated during the measured run, whatever its length (lazy one-time
/// initialisation somewhere in the standard library, say): far below one per packet.
const SLACK: u64 = 8;

/// Allocations made by the whole process during `ROUND_TRIPS` round trips on `backend`, with
/// the offload path if `offloads`.
fn allocations_during_round_trips(backend: Backend, offloads: bool) -> u64 {
    in_new_netns(move || {
        let nodes = TwoNodes::start_with(backend, offloads);
        assert_eq!(
            nodes.b_offloads.csum, offloads,
            "the TUN takes offloads exactly when asked to, so the path measured is the one named"
        );
        let payload = [0x42u8; 1200];
        let mut buf = [0u8; 2048];
        for _ in 0..WARM_UP {
            nodes.round_trip(&payload, &mut buf);
        }
        let before = ALLOCATOR.allocations();
        for _ in 0..ROUND_TRIPS {
            nodes.round_trip(&payload, &mut buf);
        }
        let during = ALLOCATOR.allocations() - before;
        for stopped in nodes.stop() {
            let sent = stopped.counters.tx_packets.load(Ordering::Relaxed);
            assert_eq!(sent, (WARM_UP + ROUND_TRIPS) as u64, "{backend:?}");
            assert_eq!(stopped.counters.drops().total(), 0, "{backend:?}");
            assert!(stopped.handshakes.is_empty());
        }
        during
    })
}

/// One test for both backends and both paths, one after the other, so no other test's
/// allocations are counted.
#[test]
fn steady_path_allocates_nothing_per_packet_on_either_backend() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    for offloads in [false, true] {
        for backend in [Backend::Epoll, Backend::Uring] {
            let during = allocations_during_round_trips(backend, offloads);
            assert!(
                during <= SLACK,
                "{backend:?}, offloads {offloads}: {during} allocations during {ROUND_TRIPS} \
                 round trips ({} packets)",
                ROUND_TRIPS * 4
            );
        }
    }
}
