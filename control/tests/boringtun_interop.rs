//! rovy-fast's protocol core against boringtun's `Tunn`, an independent WireGuard
//! implementation, in-process: handshakes in both roles, data both ways, cookies under load in
//! both directions, and the replay window seen from the wire.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rovy_control::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received, TunnelId};
use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{PACKET_AT, buffer_len};
use rovy_dataplane::link_addr::LinkAddr;

const MTU: usize = 1420;
const OURS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 1312);
const THEIRS: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)),
    51820,
));

struct Pair {
    rovy: LinkEndpoint,
    peer: TunnelId,
    bt: Tunn,
    rng: StdRng,
    now: Duration,
}

fn wall() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// rovy-fast and boringtun peered with each other; `bt_limit` is boringtun's handshake rate
/// limit (0 = permanently under load).
fn pair(seed: u64, psk: Option<[u8; 32]>, bt_limit: Option<u64>) -> Pair {
    let mut rng = StdRng::seed_from_u64(seed);
    let rovy_secret = x25519::StaticSecret::random_from_rng(&mut rng);
    let bt_secret = x25519::StaticSecret::random_from_rng(&mut rng);
    let rovy_public = x25519::PublicKey::from(&rovy_secret);
    let bt_public = x25519::PublicKey::from(&bt_secret);
    let mut rovy = LinkEndpoint::new(
        rovy_secret.to_bytes(),
        EndpointConfig::link(),
        Duration::ZERO,
        &mut rng,
    );
    let peer = rovy
        .add_tunnel(bt_public.to_bytes(), psk, Some(THEIRS), None)
        .unwrap();
    let limiter = bt_limit.map(|l| Arc::new(RateLimiter::new(&bt_public, l)));
    let bt = Tunn::new(bt_secret, rovy_public, psk, None, 7, limiter);
    Pair {
        rovy,
        peer,
        bt,
        rng,
        now: Duration::from_secs(1000),
    }
}

/// A minimal IPv4/UDP packet boringtun accepts as tunnel payload.
fn ipv4_packet(payload: &[u8], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&5678u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

impl Pair {
    /// Fires rovy's due timers and drains its pending transmissions (initiations, keepalives)
    /// into boringtun and
    /// returns what boringtun answered.
    fn rovy_poll_to_bt(&mut self) -> Vec<Vec<u8>> {
        let mut answers = Vec::new();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        self.rovy.sync_activity(&mut self.rng);
        self.rovy.handle_timeout(self.now, &mut self.rng);
        while let Some(t) = self
            .rovy
            .poll_transmit(self.now, wall(), &mut self.rng, &mut out)
        {
            assert_eq!(t.dst, THEIRS);
            answers.extend(self.bt_receive(&out[..t.len]));
        }
        answers
    }

    /// Feeds one datagram to boringtun, collecting every datagram it wants to send.
    fn bt_receive(&mut self, datagram: &[u8]) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        let mut dst = vec![0u8; 2048];
        let mut input = datagram.to_vec();
        loop {
            match self.bt.decapsulate(Some(OURS.ip()), &input, &mut dst) {
                TunnResult::WriteToNetwork(b) => sent.push(b.to_vec()),
                TunnResult::Done => break,
                TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => break,
                TunnResult::Err(e) => panic!("boringtun rejected our datagram: {e:?}"),
            }
            input.clear();
        }
        sent
    }

    fn rovy_receive(&mut self, datagram: &[u8]) -> Result<(Received, Vec<u8>), DropReason> {
        let mut packet = datagram.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = self.rovy.handle_datagram(
            self.now,
            THEIRS,
            &mut packet,
            false,
            &mut self.rng,
            &mut out,
        )?;
        let reply = match r {
            Received::HandshakeResponse { len, .. } => out[..len].to_vec(),
            Received::CookieReply => out[..64].to_vec(),
            Received::Data { len, .. } => packet[16..16 + len].to_vec(),
            _ => Vec::new(),
        };
        Ok((r, reply))
    }

    /// rovy seals `payload` for boringtun; returns the datagram.
    fn rovy_seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; buffer_len(MTU)];
        buf[PACKET_AT..PACKET_AT + payload.len()].copy_from_slice(payload);
        let (range, dst) = self
            .rovy
            .encapsulate(
                self.now,
                self.peer,
                &mut buf,
                payload.len(),
                MTU,
                &mut self.rng,
            )
            .expect("session ready");
        assert_eq!(dst, THEIRS);
        buf[range].to_vec()
    }

    fn bt_seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut dst = vec![0u8; payload.len() + 64 + 148];
        match self.bt.encapsulate(payload, &mut dst) {
            TunnResult::WriteToNetwork(b) => b.to_vec(),
            other => panic!("boringtun did not seal: {other:?}"),
        }
    }

    fn bt_open(&mut self, datagram: &[u8]) -> Vec<u8> {
        let mut dst = vec![0u8; 2048];
        match self.bt.decapsulate(Some(OURS.ip()), datagram, &mut dst) {
            TunnResult::WriteToTunnelV4(b, _) | TunnResult::WriteToTunnelV6(b, _) => b.to_vec(),
            other => panic!("boringtun did not open our data: {other:?}"),
        }
    }

    /// Data both ways, checked byte for byte.
    fn exchange_data(&mut self) {
        for size in [0usize, 1, 100, 1000, 1392] {
            let to_bt = ipv4_packet(&vec![0xa5; size], [10, 9, 0, 1], [10, 9, 0, 2]);
            let sealed = self.rovy_seal(&to_bt);
            let padded = to_bt.len().next_multiple_of(16).min(MTU);
            assert_eq!(
                sealed.len(),
                32 + padded,
                "padded to 16, never beyond the MTU"
            );
            assert_eq!(self.bt_open(&sealed), to_bt);

            let to_rovy = ipv4_packet(&vec![0x5a; size], [10, 9, 0, 2], [10, 9, 0, 1]);
            let sealed = self.bt_seal(&to_rovy);
            let (r, plain) = self.rovy_receive(&sealed).unwrap();
            assert!(matches!(r, Received::Data { tunnel, .. } if tunnel == self.peer));
            assert_eq!(&plain[..to_rovy.len()], &to_rovy[..]);
        }
    }
}

#[test]
fn rovy_initiates_boringtun_responds_data_flows_both_ways() {
    for psk in [None, Some([7u8; 32])] {
        let mut p = pair(1, psk, None);
        p.rovy.initiate(p.peer);
        let answers = p.rovy_poll_to_bt();
        assert_eq!(answers.len(), 1, "boringtun answers the initiation");
        assert_eq!(answers[0].len(), 92);
        let (r, _) = p.rovy_receive(&answers[0]).unwrap();
        assert_eq!(r, Received::HandshakeComplete { tunnel: p.peer });
        // Key confirmation keepalive goes out first, then data both ways.
        let after = p.rovy_poll_to_bt();
        assert!(after.is_empty(), "keepalive needs no answer: {after:?}");
        p.exchange_data();
    }
}

#[test]
fn boringtun_initiates_rovy_responds_data_flows_both_ways() {
    for psk in [None, Some([9u8; 32])] {
        let mut p = pair(2, psk, None);
        let mut dst = [0u8; 256];
        let init = match p.bt.format_handshake_initiation(&mut dst, false) {
            TunnResult::WriteToNetwork(b) => b.to_vec(),
            other => panic!("{other:?}"),
        };
        let (r, response) = p.rovy_receive(&init).unwrap();
        assert_eq!(
            r,
            Received::HandshakeResponse {
                tunnel: p.peer,
                len: 92
            }
        );
        // boringtun answers the response with a keepalive: our key confirmation.
        let keepalive = p.bt_receive(&response);
        assert_eq!(keepalive.len(), 1);
        assert_eq!(keepalive[0].len(), 32);
        let (r, _) = p.rovy_receive(&keepalive[0]).unwrap();
        assert_eq!(
            r,
            Received::Data {
                tunnel: p.peer,
                len: 0
            }
        );
        assert!(p.rovy.tunnel(p.peer).unwrap().last_handshake().is_some());
        p.exchange_data();
    }
}

#[test]
fn mismatched_preshared_keys_never_complete() {
    let mut p = pair(3, Some([1u8; 32]), None);
    // Re-create boringtun with another psk.
    let mut rng = StdRng::seed_from_u64(3);
    let rovy_secret = x25519::StaticSecret::random_from_rng(&mut rng);
    let bt_secret = x25519::StaticSecret::random_from_rng(&mut rng);
    p.bt = Tunn::new(
        bt_secret,
        (&rovy_secret).into(),
        Some([2u8; 32]),
        None,
        7,
        None,
    );
    let mut dst = [0u8; 256];
    let init = match p.bt.format_handshake_initiation(&mut dst, false) {
        TunnResult::WriteToNetwork(b) => b.to_vec(),
        other => panic!("{other:?}"),
    };
    // The initiation itself carries no psk: we answer, boringtun cannot read the answer.
    let (_, response) = p.rovy_receive(&init).unwrap();
    let mut out = vec![0u8; 2048];
    assert!(matches!(
        p.bt.decapsulate(Some(OURS.ip()), &response, &mut out),
        TunnResult::Err(_)
    ));
}

#[test]
fn boringtun_under_load_sends_cookie_and_our_retry_carries_valid_mac2() {
    let mut p = pair(4, None, Some(0));
    p.rovy.initiate(p.peer);
    let answers = p.rovy_poll_to_bt();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].len(), 64, "a cookie reply, not a response");
    let (r, _) = p.rovy_receive(&answers[0]).unwrap();
    assert_eq!(r, Received::CookieAccepted { tunnel: p.peer });
    // The retransmission timer fires after REKEY_TIMEOUT + jitter; its initiation carries
    // mac2 and boringtun (still under load) now answers it with a response.
    p.now += Duration::from_millis(5334);
    let answers = p.rovy_poll_to_bt();
    assert_eq!(answers.len(), 1, "one retry");
    assert_eq!(answers[0].len(), 92, "boringtun accepted our mac2");
    let (r, _) = p.rovy_receive(&answers[0]).unwrap();
    assert_eq!(r, Received::HandshakeComplete { tunnel: p.peer });
    p.rovy_poll_to_bt();
    p.exchange_data();
}

#[test]
fn rovy_under_load_sends_cookie_and_boringtun_retry_carries_valid_mac2() {
    let mut p = pair(5, None, None);
    let mut dst = [0u8; 256];
    let init = match p.bt.format_handshake_initiation(&mut dst, false) {
        TunnResult::WriteToNetwork(b) => b.to_vec(),
        other => panic!("{other:?}"),
    };
    let mut packet = init.clone();
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let r = p
        .rovy
        .handle_datagram(p.now, THEIRS, &mut packet, true, &mut p.rng, &mut out)
        .unwrap();
    assert_eq!(r, Received::CookieReply);
    let cookie = out[..64].to_vec();
    assert!(
        p.bt_receive(&cookie).is_empty(),
        "boringtun stores the cookie"
    );
    // Without mac2 the same initiation is refused again while we are under load.
    let mut packet = init.clone();
    assert_eq!(
        p.rovy
            .handle_datagram(p.now, THEIRS, &mut packet, true, &mut p.rng, &mut out)
            .unwrap(),
        Received::CookieReply
    );
    // boringtun's retry carries mac2 from our cookie and is processed though we are loaded.
    let retry = match p.bt.format_handshake_initiation(&mut dst, true) {
        TunnResult::WriteToNetwork(b) => b.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_ne!(retry[132..148], [0u8; 16], "mac2 present");
    let mut packet = retry.clone();
    p.now += Duration::from_millis(50);
    let r = p
        .rovy
        .handle_datagram(p.now, THEIRS, &mut packet, true, &mut p.rng, &mut out)
        .unwrap();
    assert!(matches!(r, Received::HandshakeResponse { len: 92, .. }));
    let response = out[..92].to_vec();
    let keepalive = p.bt_receive(&response);
    p.rovy_receive(&keepalive[0]).unwrap();
    p.exchange_data();
}

#[test]
fn replayed_and_too_old_data_from_boringtun_are_rejected() {
    let mut p = pair(6, None, None);
    p.rovy.initiate(p.peer);
    let answers = p.rovy_poll_to_bt();
    p.rovy_receive(&answers[0]).unwrap();
    p.rovy_poll_to_bt();
    let packet = ipv4_packet(b"once", [10, 9, 0, 2], [10, 9, 0, 1]);
    let first = p.bt_seal(&packet);
    p.rovy_receive(&first).unwrap();
    assert_eq!(p.rovy_receive(&first).unwrap_err(), DropReason::Replayed);

    // Counters: `first` was 0. Hold back 1 and 2, then deliver 3..=8130. Like wireguard-go and
    // the kernel we accept counters up to 8128 below the newest (8130): 2 is exactly at the
    // edge, 1 is one past it.
    let held_past_edge = p.bt_seal(&packet);
    let held_at_edge = p.bt_seal(&packet);
    for _ in 3..=8130 {
        let d = p.bt_seal(&packet);
        p.rovy_receive(&d).unwrap();
    }
    assert_eq!(
        p.rovy_receive(&held_past_edge).unwrap_err(),
        DropReason::Replayed
    );
    let (r, _) = p.rovy_receive(&held_at_edge).unwrap();
    assert!(matches!(r, Received::Data { .. }));
    assert_eq!(
        p.rovy_receive(&held_at_edge).unwrap_err(),
        DropReason::Replayed
    );
}
