//! Cost of one complete WireGuard handshake through the protocol core, on the control thread:
//! initiation written (with mac1), response consumed by the responder (mac1 check, Noise, TAI64N
//! rule, response written), response consumed by the initiator, and the first data message that
//! confirms the responder's keys. Also each half alone, since under a flood the responder's
//! half is what an attacker makes us pay.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rovy_control::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received, TunnelId};
use rovy_dataplane::link_addr::LinkAddr;

const A: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    1,
));
const B: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    2,
));

struct Pair {
    a: LinkEndpoint,
    b: LinkEndpoint,
    a_peer: TunnelId,
    b_peer: TunnelId,
    rng: StdRng,
    /// Advances 1 s per handshake so the 20 ms initiation rule and TAI64N order always pass.
    clock: Duration,
}

fn pair() -> Pair {
    let mut rng = StdRng::seed_from_u64(1);
    let mut ka = [0u8; 32];
    let mut kb = [0u8; 32];
    rng.fill_bytes(&mut ka);
    rng.fill_bytes(&mut kb);
    let mut a = LinkEndpoint::new(ka, EndpointConfig::link(), Duration::ZERO, &mut rng);
    let mut b = LinkEndpoint::new(kb, EndpointConfig::link(), Duration::ZERO, &mut rng);
    let a_peer = a.add_tunnel(*b.public_key(), None, Some(B), None).unwrap();
    let b_peer = b.add_tunnel(*a.public_key(), None, Some(A), None).unwrap();
    Pair {
        a,
        b,
        a_peer,
        b_peer,
        rng,
        clock: Duration::from_secs(1_700_000_000),
    }
}

impl Pair {
    /// A fresh initiation from `a`: the clock moves past the retransmission timeout, so an
    /// unanswered handshake is retried (or, once retries are exhausted, started anew).
    fn initiation(&mut self) -> ([u8; HANDSHAKE_BUF_LEN], Duration) {
        self.clock += Duration::from_secs(6);
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        loop {
            self.a.initiate(self.a_peer);
            self.a.handle_timeout(self.clock, &mut self.rng);
            if let Some(t) = self
                .a
                .poll_transmit(self.clock, self.clock, &mut self.rng, &mut out)
            {
                assert_eq!(t.len, 148);
                return (out, self.clock);
            }
        }
    }

    /// `b` answers an initiation made at `at` (its clock then, for the 20 ms rule).
    fn respond(
        &mut self,
        (mut init, at): ([u8; HANDSHAKE_BUF_LEN], Duration),
    ) -> [u8; HANDSHAKE_BUF_LEN] {
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = self
            .b
            .handle_datagram(at, A, &mut init, false, &mut self.rng, &mut out)
            .expect("response");
        assert!(matches!(r, Received::HandshakeResponse { .. }));
        out
    }

    fn full(&mut self) {
        let init = self.initiation();
        let response = self.respond(init);
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let mut response = response[..92].to_vec();
        let r = self
            .a
            .handle_datagram(self.clock, B, &mut response, false, &mut self.rng, &mut out)
            .expect("complete");
        assert_eq!(
            r,
            Received::HandshakeComplete {
                tunnel: self.a_peer
            }
        );
        let mut data = [0u8; 128];
        let (range, _) = self
            .a
            .encapsulate(self.clock, self.a_peer, &mut data, 0, 1420, &mut self.rng)
            .expect("first data");
        let r = self
            .b
            .handle_datagram(
                self.clock,
                A,
                &mut data[range],
                false,
                &mut self.rng,
                &mut out,
            )
            .expect("confirmation");
        assert_eq!(
            r,
            Received::Data {
                tunnel: self.b_peer,
                len: 0
            }
        );
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    let mut p = pair();
    group.bench_function("full_initiation_response_first_data", |b| {
        b.iter(|| p.full())
    });
    let mut p = pair();
    group.bench_function("initiator_write_initiation", |b| {
        b.iter(|| black_box(p.initiation()))
    });
    let mut p = pair();
    group.bench_function("responder_consume_initiation_write_response", |b| {
        b.iter_custom(|iters| {
            let inits: Vec<_> = (0..iters).map(|_| p.initiation()).collect();
            let start = Instant::now();
            for init in inits {
                black_box(p.respond(init));
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
