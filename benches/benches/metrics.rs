//! What one Prometheus scrape costs the metrics thread: rendering `/metrics` for a node with
//! 1 000 peers and two workers, from the status snapshot the control thread hands over.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use rovy_control::api::{HandshakeCounts, PeerStatus, Status, WorkerStatus};
use rovy_control::metrics::render;

fn node_with_peers(peers: usize) -> Status {
    Status {
        interface: "rovy0".into(),
        public_key: "A".repeat(44),
        address: None,
        backend: "uring".into(),
        listen: Vec::new(),
        offloads: vec!["gso".into(), "gro".into()],
        workers: (0..2)
            .map(|core| WorkerStatus {
                core,
                rx_packets: 1 << 30,
                tx_packets: 1 << 30,
                rx_bytes: 1 << 40,
                tx_bytes: 1 << 40,
                tun_writes: 1 << 28,
                drops: BTreeMap::new(),
            })
            .collect(),
        drops: BTreeMap::from([("replayed".into(), 12), ("rate_limited".into(), 3)]),
        drops_total: 15,
        peers: (0..peers)
            .map(|i| PeerStatus {
                public_key: format!("{i:0>43}="),
                kind: "wireguard".into(),
                endpoint: Some("192.0.2.1:1312".into()),
                allowed_ips: vec!["10.0.0.1/32".into()],
                last_handshake_secs_ago: Some(17),
                rx_bytes: 123_456_789,
                tx_bytes: 987_654_321,
                rx_packets: 123_456,
                tx_packets: 654_321,
                persistent_keepalive: Some(25),
            })
            .collect(),
        links: Vec::new(),
        routes: 0,
        handshakes: HandshakeCounts::default(),
    }
}

fn bench(c: &mut Criterion) {
    let status = node_with_peers(1000);
    c.bench_function("metrics render, 1000 peers", |b| {
        b.iter(|| render(std::hint::black_box(&status), 1_800_000_000))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
