//! Two link endpoints talking to each other on a virtual clock.

mod generic;
mod scheduling;

use super::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{PACKET_AT, buffer_len};
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::Sealed;
use rovy_dataplane::wire::{COOKIE_REPLY_LEN, INITIATION_LEN};
use std::sync::Arc;
use std::time::Duration;

const A_ADDR: LinkAddr = LinkAddr::Udp(std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    1,
));
const B_ADDR: LinkAddr = LinkAddr::Udp(std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    2,
));
const WALL0: Duration = Duration::from_secs(1_700_000_000);

struct Net {
    a: LinkEndpoint,
    b: LinkEndpoint,
    a_peer: TunnelId,
    b_peer: TunnelId,
    rng: StdRng,
    now: Duration,
    wall: Duration,
}

fn key(rng: &mut StdRng) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

/// A link endpoint with key `private` and no tunnels.
fn link(private: [u8; 32], rng: &mut StdRng) -> LinkEndpoint {
    LinkEndpoint::new(private, EndpointConfig::link(), Duration::ZERO, rng)
}

/// Everything `node` sends at `now`, as the control loop does it: the workers' activity,
/// the timers that are due, then the queued messages.
fn poll<S: TunnelShared>(
    node: &mut Endpoint<S>,
    now: Duration,
    wall: Duration,
    rng: &mut StdRng,
) -> Vec<(S::Addr, Vec<u8>)> {
    node.sync_activity(rng);
    node.handle_timeout(now, rng);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let mut sent = Vec::new();
    while let Some(t) = node.poll_transmit(now, wall, rng, &mut out) {
        sent.push((t.dst, out[..t.len].to_vec()));
    }
    sent
}

fn net(seed: u64) -> Net {
    net_with_keepalive(seed, None)
}

/// `a` and `b`, each with a tunnel to the other; `a` sends persistent keepalives every
/// `keepalive`.
fn net_with_keepalive(seed: u64, keepalive: Option<Duration>) -> Net {
    let mut rng = StdRng::seed_from_u64(seed);
    let (ka, kb) = (key(&mut rng), key(&mut rng));
    let mut a = link(ka, &mut rng);
    let mut b = link(kb, &mut rng);
    let a_peer = a
        .add_tunnel(*b.public_key(), None, Some(B_ADDR), keepalive)
        .unwrap();
    let b_peer = b
        .add_tunnel(*a.public_key(), None, Some(A_ADDR), None)
        .unwrap();
    Net {
        a,
        b,
        a_peer,
        b_peer,
        rng,
        now: Duration::from_secs(100),
        wall: WALL0,
    }
}

impl Net {
    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.wall += d;
    }

    /// Everything `a` wants to send now.
    fn poll_a(&mut self) -> Vec<Vec<u8>> {
        poll(&mut self.a, self.now, self.wall, &mut self.rng)
            .into_iter()
            .map(|(dst, msg)| {
                assert_eq!(dst, B_ADDR);
                msg
            })
            .collect()
    }

    fn poll_b(&mut self) -> Vec<Vec<u8>> {
        poll(&mut self.b, self.now, self.wall, &mut self.rng)
            .into_iter()
            .map(|(_, msg)| msg)
            .collect()
    }

    fn deliver_b(
        &mut self,
        from: LinkAddr,
        msg: &[u8],
        under_load: bool,
    ) -> Result<(Received, Vec<u8>), DropReason> {
        let mut packet = msg.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = self.b.handle_datagram(
            self.now,
            from,
            &mut packet,
            under_load,
            &mut self.rng,
            &mut out,
        )?;
        Ok((r, reply(r, &out, &packet)))
    }

    fn deliver_a(
        &mut self,
        msg: &[u8],
        under_load: bool,
    ) -> Result<(Received, Vec<u8>), DropReason> {
        let mut packet = msg.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = self.a.handle_datagram(
            self.now,
            B_ADDR,
            &mut packet,
            under_load,
            &mut self.rng,
            &mut out,
        )?;
        Ok((r, reply(r, &out, &packet)))
    }

    /// a initiates, b responds, a confirms with a keepalive.
    fn handshake(&mut self) {
        self.a.initiate(self.a_peer);
        let init = self.poll_a();
        assert_eq!(init.len(), 1);
        let (r, response) = self.deliver_b(A_ADDR, &init[0], false).unwrap();
        assert_eq!(
            r,
            Received::HandshakeResponse {
                tunnel: self.b_peer,
                len: 92
            }
        );
        assert_eq!(
            self.deliver_a(&response, false).unwrap().0,
            Received::HandshakeComplete {
                tunnel: self.a_peer
            }
        );
        let keepalive = self.poll_a();
        assert_eq!(keepalive.len(), 1);
        assert_eq!(keepalive[0].len(), 32);
        assert_eq!(
            self.deliver_b(A_ADDR, &keepalive[0], false).unwrap().0,
            Received::Data {
                tunnel: self.b_peer,
                len: 0
            }
        );
    }

    fn seal_a(&mut self, payload: &[u8]) -> Result<Vec<u8>, DropReason> {
        seal(&mut self.a, self.a_peer, self.now, payload, &mut self.rng)
    }

    fn seal_b(&mut self, payload: &[u8]) -> Result<Vec<u8>, DropReason> {
        seal(&mut self.b, self.b_peer, self.now, payload, &mut self.rng)
    }
}

fn reply(r: Received, out: &[u8], packet: &[u8]) -> Vec<u8> {
    match r {
        Received::HandshakeResponse { len, .. } => out[..len].to_vec(),
        Received::CookieReply => out[..COOKIE_REPLY_LEN].to_vec(),
        Received::Data { len, .. } => packet[16..16 + len].to_vec(),
        _ => Vec::new(),
    }
}

fn seal(
    p: &mut LinkEndpoint,
    peer: TunnelId,
    now: Duration,
    payload: &[u8],
    rng: &mut StdRng,
) -> Result<Vec<u8>, DropReason> {
    let mut buf = vec![0u8; buffer_len(1420)];
    buf[PACKET_AT..PACKET_AT + payload.len()].copy_from_slice(payload);
    let (range, _) = p.encapsulate(now, peer, &mut buf, payload.len(), 1420, rng)?;
    Ok(buf[range].to_vec())
}

#[test]
fn handshake_and_data_both_ways() {
    let mut n = net(1);
    n.handshake();
    let d = n.seal_a(b"hello b").unwrap();
    assert_eq!(&n.deliver_b(A_ADDR, &d, false).unwrap().1[..7], b"hello b");
    let d = n.seal_b(b"hello a").unwrap();
    assert_eq!(&n.deliver_a(&d, false).unwrap().1[..7], b"hello a");
}

#[test]
fn responder_sends_only_after_key_confirmation() {
    let mut n = net(2);
    n.a.initiate(n.a_peer);
    let init = n.poll_a();
    let (_, response) = n.deliver_b(A_ADDR, &init[0], false).unwrap();
    assert_eq!(
        n.seal_b(b"early"),
        Err(DropReason::NoSession),
        "next keypair is not usable yet"
    );
    n.deliver_a(&response, false).unwrap();
    let d = n.seal_a(b"first").unwrap();
    n.deliver_b(A_ADDR, &d, false).unwrap();
    assert!(n.seal_b(b"now").is_ok());
    assert_eq!(n.b.tunnel(n.b_peer).unwrap().last_handshake(), Some(n.now));
}

#[test]
fn replayed_initiation_and_too_frequent_initiations_are_refused() {
    let mut n = net(3);
    n.a.initiate(n.a_peer);
    let init = n.poll_a();
    n.deliver_b(A_ADDR, &init[0], false).unwrap();
    assert_eq!(
        n.deliver_b(A_ADDR, &init[0], false).unwrap_err(),
        DropReason::HandshakeReplayed
    );

    // a retransmits (its own clock 6 s on) with a newer timestamp; on b's clock that is
    // 10 ms later: still too soon (20 ms rule).
    n.wall += Duration::from_millis(100);
    n.now += Duration::from_millis(10);
    let mut a_clock = n.now + Duration::from_secs(6);
    let retry = poll(&mut n.a, a_clock, n.wall, &mut n.rng);
    assert_eq!(retry.len(), 1);
    assert_eq!(
        n.deliver_b(A_ADDR, &retry[0].1, false).unwrap_err(),
        DropReason::HandshakeReplayed
    );
    // 20 ms after the last accepted one it is taken.
    n.now += Duration::from_millis(10);
    n.wall += Duration::from_millis(100);
    a_clock += Duration::from_secs(6);
    let retry = poll(&mut n.a, a_clock, n.wall, &mut n.rng);
    assert_eq!(retry.len(), 1);
    assert!(matches!(
        n.deliver_b(A_ADDR, &retry[0].1, false).unwrap().0,
        Received::HandshakeResponse { .. }
    ));
}

#[test]
fn initiator_rekeys_on_send_after_120s_and_sessions_expire_at_180s() {
    let mut n = net(4);
    n.handshake();
    n.advance(Duration::from_secs(119));
    n.seal_a(b"x").unwrap();
    assert!(n.poll_a().is_empty(), "no rekey before 120 s");
    n.advance(Duration::from_secs(1));
    let d = n.seal_a(b"x").unwrap();
    let sent = n.poll_a();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].len(),
        INITIATION_LEN,
        "rekey initiation after 120 s"
    );
    // The responder never rekeys on send.
    n.deliver_b(A_ADDR, &d, false).unwrap();
    n.seal_b(b"y").unwrap();
    assert!(n.poll_b().iter().all(|m| m.len() != INITIATION_LEN));

    // Without the rekey completing, sessions die at 180 s.
    let mut m = net(5);
    m.handshake();
    let late = m.seal_a(b"late").unwrap();
    m.advance(Duration::from_secs(180));
    assert_eq!(m.seal_a(b"x"), Err(DropReason::NoSession));
    assert_eq!(
        m.deliver_b(A_ADDR, &late, false).unwrap_err(),
        DropReason::SessionExpired
    );
}

#[test]
fn rekey_keeps_traffic_flowing_on_old_keys_until_confirmation() {
    let mut n = net(6);
    n.handshake();
    let old_index =
        n.a.tunnel(n.a_peer)
            .unwrap()
            .sessions()
            .current()
            .unwrap()
            .local_index();
    n.advance(Duration::from_secs(121));
    let in_flight_from_b = n.seal_b(b"old keys").unwrap();
    n.seal_a(b"x").unwrap();
    let init = n.poll_a();
    let (_, response) = n.deliver_b(A_ADDR, &init[0], false).unwrap();
    n.deliver_a(&response, false).unwrap();
    // a now sends on the new session, and still accepts b's packet sealed with the old one.
    let new_index =
        n.a.tunnel(n.a_peer)
            .unwrap()
            .sessions()
            .current()
            .unwrap()
            .local_index();
    assert_ne!(old_index, new_index);
    assert!(matches!(
        n.deliver_a(&in_flight_from_b, false).unwrap().0,
        Received::Data { .. }
    ));
    let d = n.seal_a(b"new keys").unwrap();
    assert_eq!(&n.deliver_b(A_ADDR, &d, false).unwrap().1[..8], b"new keys");
}

#[test]
fn keys_are_zeroed_540s_after_the_last_handshake() {
    let mut n = net(7);
    n.handshake();
    n.advance(Duration::from_secs(539));
    n.poll_a();
    assert!(n.a.tunnel(n.a_peer).unwrap().sessions().current().is_some());
    n.advance(Duration::from_secs(1));
    n.poll_a();
    let s = n.a.tunnel(n.a_peer).unwrap().sessions();
    assert!(s.current().is_none() && s.previous().is_none() && s.next().is_none());
}

#[test]
fn unanswered_initiations_retry_every_5s_and_give_up() {
    let mut n = net(8);
    n.a.initiate(n.a_peer);
    let mut initiations = n.poll_a().len();
    for _ in 0..2000 {
        n.advance(Duration::from_millis(100));
        initiations += n.poll_a().len();
    }
    assert_eq!(
        initiations,
        1 + 18,
        "first attempt plus MAX_TIMER_HANDSHAKES retries"
    );
    assert!(!n.a.tunnel(n.a_peer).unwrap().handshake_in_flight());
}

#[test]
fn staged_packets_are_dropped_and_counted_when_the_handshake_gives_up() {
    let mut n = net(18);
    let shared = Arc::clone(n.a.tunnel(n.a_peer).unwrap().shared());
    let mut buf = [0u8; 256];
    for _ in 0..3 {
        let staged = shared.encapsulate(n.now, &mut buf, 20, 1420);
        assert!(matches!(staged, Ok(Sealed::Staged { .. })), "{staged:?}");
    }
    assert_eq!(n.poll_a().len(), 1, "staging asked for an initiation");
    assert_eq!(n.a.take_staged_dropped(), 0);
    for _ in 0..2000 {
        n.advance(Duration::from_millis(100));
        n.poll_a();
    }
    assert_eq!(shared.staged_len(), 0);
    assert_eq!(n.a.take_staged_dropped(), 3);
    assert_eq!(n.a.take_staged_dropped(), 0, "taken once");
}

#[test]
fn passive_keepalive_after_10s_of_one_way_traffic() {
    let mut n = net(9);
    n.handshake();
    let d = n.seal_a(b"ping").unwrap();
    n.deliver_b(A_ADDR, &d, false).unwrap();
    n.advance(Duration::from_millis(9_999));
    assert!(n.poll_b().is_empty());
    n.advance(Duration::from_millis(1));
    let k = n.poll_b();
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].len(), 32);
}

#[test]
fn persistent_keepalive_is_sent_on_schedule() {
    let mut n = net_with_keepalive(10, Some(Duration::from_secs(25)));
    n.handshake();
    n.advance(Duration::from_secs(25));
    let k = n.poll_a();
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].len(), 32);
}

#[test]
fn endpoint_roams_to_the_source_of_authenticated_data_only() {
    let mut n = net(11);
    n.handshake();
    let roamed = LinkAddr::Udp("10.0.0.99:4444".parse().unwrap());
    let mut forged = n.seal_a(b"x").unwrap();
    forged[20] ^= 1;
    assert_eq!(
        n.deliver_b(roamed, &forged, false).unwrap_err(),
        DropReason::AuthFailed
    );
    assert_eq!(n.b.tunnel(n.b_peer).unwrap().endpoint(), Some(A_ADDR));
    let d = n.seal_a(b"x").unwrap();
    n.deliver_b(roamed, &d, false).unwrap();
    assert_eq!(n.b.tunnel(n.b_peer).unwrap().endpoint(), Some(roamed));
}

#[test]
fn cookie_round_trip_between_rovy_nodes_then_rate_limit() {
    let mut n = net(12);
    n.a.initiate(n.a_peer);
    let init = n.poll_a();
    let (r, cookie) = n.deliver_b(A_ADDR, &init[0], true).unwrap();
    assert_eq!(r, Received::CookieReply);
    assert_eq!(
        n.deliver_a(&cookie, false).unwrap().0,
        Received::CookieAccepted { tunnel: n.a_peer }
    );
    // A replayed cookie reply cannot extend the cookie's life.
    assert_eq!(
        n.deliver_a(&cookie, false).unwrap_err(),
        DropReason::InvalidCookieReply
    );
    n.advance(Duration::from_millis(5400));
    let retry = n.poll_a();
    assert_eq!(retry.len(), 1);
    assert!(matches!(
        n.deliver_b(A_ADDR, &retry[0], true).unwrap().0,
        Received::HandshakeResponse { .. }
    ));
    // The same source sending valid-mac2 messages faster than 20/s (burst 5) is limited.
    let mut limited = 0;
    for _ in 0..10 {
        match n.deliver_b(A_ADDR, &retry[0], true) {
            Err(DropReason::RateLimited) => limited += 1,
            Err(DropReason::HandshakeReplayed) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(limited, 10 - 4, "burst of 5 including the accepted retry");
}

#[test]
fn handshake_from_unknown_key_or_with_bad_mac1_is_dropped() {
    let mut n = net(13);
    let mut rng = StdRng::seed_from_u64(99);
    let mut stranger = link(key(&mut rng), &mut rng);
    let sp = stranger
        .add_tunnel(*n.b.public_key(), None, Some(B_ADDR), None)
        .unwrap();
    stranger.initiate(sp);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let t = stranger
        .poll_transmit(n.now, n.wall, &mut rng, &mut out)
        .unwrap();
    let init = out[..t.len].to_vec();
    assert_eq!(
        n.deliver_b(A_ADDR, &init, false).unwrap_err(),
        DropReason::HandshakeFailed
    );
    assert_eq!(
        n.b.tunnel_count(),
        1,
        "a link endpoint admits configured peers only"
    );
    assert_eq!(n.b.tunnel_by_key(stranger.public_key()), None);
    let mut bad = init.clone();
    bad[40] ^= 1;
    assert_eq!(
        n.deliver_b(A_ADDR, &bad, false).unwrap_err(),
        DropReason::InvalidMac1
    );
    let mut bad = init;
    bad[116] ^= 1;
    assert_eq!(
        n.deliver_b(A_ADDR, &bad, false).unwrap_err(),
        DropReason::InvalidMac1
    );
}

#[test]
fn every_truncation_and_random_garbage_is_a_counted_drop() {
    let mut n = net(14);
    n.handshake();
    n.a.initiate(n.a_peer);
    n.advance(Duration::from_secs(6));
    let init = n.poll_a().remove(0);
    let data = n.seal_a(&[1u8; 100]).unwrap();
    for msg in [&init, &data] {
        for len in 0..msg.len() {
            assert!(
                n.deliver_b(A_ADDR, &msg[..len], false).is_err(),
                "len {len} accepted"
            );
        }
        let mut long = msg.clone();
        long.push(0);
        if msg.len() == INITIATION_LEN {
            assert_eq!(
                n.deliver_b(A_ADDR, &long, false).unwrap_err(),
                DropReason::BadLength
            );
        }
    }
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..20_000 {
        let len = (rng.next_u32() % 200) as usize;
        let mut junk = vec![0u8; len];
        rng.fill_bytes(&mut junk);
        if len >= 4 && i % 2 == 0 {
            junk[0] = (i % 5) as u8;
            junk[1..4].fill(0);
        }
        assert!(n.deliver_b(A_ADDR, &junk, i % 3 == 0).is_err());
    }
    // The session survived all of it.
    let d = n.seal_a(b"still here").unwrap();
    assert_eq!(
        &n.deliver_b(A_ADDR, &d, false).unwrap().1[..10],
        b"still here"
    );
}

#[test]
fn add_tunnel_refuses_duplicates_and_own_key() {
    let mut n = net(15);
    let own = *n.a.public_key();
    let b = *n.b.public_key();
    assert_eq!(
        n.a.add_tunnel(own, None, None, None),
        Err(AddTunnelError::OwnKey)
    );
    assert_eq!(
        n.a.add_tunnel(b, None, None, None),
        Err(AddTunnelError::Duplicate)
    );
}

#[test]
fn peer_without_endpoint_waits_for_it_to_dial_in() {
    let mut rng = StdRng::seed_from_u64(16);
    let mut a = link(key(&mut rng), &mut rng);
    let mut b = link(key(&mut rng), &mut rng);
    let a_peer = a
        .add_tunnel(*b.public_key(), None, Some(B_ADDR), None)
        .unwrap();
    let b_peer = b.add_tunnel(*a.public_key(), None, None, None).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        b.encapsulate(Duration::ZERO, b_peer, &mut buf, 0, 1420, &mut rng),
        Err(DropReason::NoEndpoint)
    );
    a.initiate(a_peer);
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let t = a
        .poll_transmit(Duration::ZERO, WALL0, &mut rng, &mut out)
        .unwrap();
    let mut init = out[..t.len].to_vec();
    b.handle_datagram(Duration::ZERO, A_ADDR, &mut init, false, &mut rng, &mut out)
        .unwrap();
    assert_eq!(b.tunnel(b_peer).unwrap().endpoint(), Some(A_ADDR));
}
