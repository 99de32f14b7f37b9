//! Cookie replies to our handshake *responses*: an initiator under load answers our response
//! with a cookie reply whose receiver index is our new session's index (not a handshake in
//! flight). As the kernel does, we take it and stamp a valid mac2 on the next response, so a
//! handshake in which we are the responder completes while the initiator is under load.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use rand_core::RngCore as _;
use rovy_control::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received, TunnelId};
use rovy_dataplane::DropReason;
use rovy_dataplane::link_addr::LinkAddr;

const A_ADDR: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    1,
));
const B_ADDR: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    2,
));
const WALL: Duration = Duration::from_secs(1_700_000_000);
const COOKIE_REPLY_LEN: usize = 64;

/// `a` initiates to `b`; `b` knows `a` without an endpoint, so only `a` ever initiates.
struct Pair {
    a: LinkEndpoint,
    b: LinkEndpoint,
    a_peer: TunnelId,
    b_peer: TunnelId,
    rng: StdRng,
    now: Duration,
}

fn pair() -> Pair {
    let mut rng = StdRng::seed_from_u64(7);
    let mut key = || {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        k
    };
    let (ka, kb) = (key(), key());
    let mut rng = StdRng::seed_from_u64(8);
    let mut a = LinkEndpoint::new(ka, EndpointConfig::link(), Duration::ZERO, &mut rng);
    let mut b = LinkEndpoint::new(kb, EndpointConfig::link(), Duration::ZERO, &mut rng);
    let a_peer = a
        .add_tunnel(*b.public_key(), None, Some(B_ADDR), None)
        .unwrap();
    let b_peer = b.add_tunnel(*a.public_key(), None, None, None).unwrap();
    Pair {
        a,
        b,
        a_peer,
        b_peer,
        rng,
        now: Duration::from_secs(100),
    }
}

impl Pair {
    /// The initiations `a` sends now.
    fn poll_a(&mut self) -> Vec<Vec<u8>> {
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let mut sent = Vec::new();
        let wall = WALL + self.now;
        self.a.sync_activity(&mut self.rng);
        self.a.handle_timeout(self.now, &mut self.rng);
        while let Some(t) = self
            .a
            .poll_transmit(self.now, wall, &mut self.rng, &mut out)
        {
            sent.push(out[..t.len].to_vec());
        }
        sent
    }

    /// Hands `msg` to `b` (from `a`) or to `a` (from `b`); returns the verdict and any reply.
    fn deliver(
        &mut self,
        to_b: bool,
        msg: &[u8],
        under_load: bool,
    ) -> Result<(Received, Vec<u8>), DropReason> {
        let (node, from) = if to_b {
            (&mut self.b, A_ADDR)
        } else {
            (&mut self.a, B_ADDR)
        };
        let mut packet = msg.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let r = node.handle_datagram(
            self.now,
            from,
            &mut packet,
            under_load,
            &mut self.rng,
            &mut out,
        )?;
        let reply = match r {
            Received::HandshakeResponse { len, .. } => out[..len].to_vec(),
            Received::CookieReply => out[..COOKIE_REPLY_LEN].to_vec(),
            _ => Vec::new(),
        };
        Ok((r, reply))
    }
}

/// The index at bytes 4..8: a response's sender index, a cookie reply's receiver index.
fn index_at_4(msg: &[u8]) -> u32 {
    u32::from_le_bytes(msg[4..8].try_into().unwrap())
}

#[test]
fn cookie_reply_to_our_response_is_taken_and_the_next_response_carries_mac2() {
    let mut p = pair();
    p.a.initiate(p.a_peer);
    let init = p.poll_a().remove(0);
    let (r, response) = p.deliver(true, &init, false).unwrap();
    assert!(matches!(r, Received::HandshakeResponse { .. }));

    // a is under load: b's response has no mac2, so a answers with a cookie reply addressed to
    // the response's sender index, which is b's new (unconfirmed) session.
    let (r, cookie) = p.deliver(false, &response, true).unwrap();
    assert_eq!(r, Received::CookieReply);
    let session_index =
        p.b.tunnel(p.b_peer)
            .unwrap()
            .sessions()
            .next()
            .unwrap()
            .local_index();
    assert_eq!(index_at_4(&response), session_index);
    assert_eq!(index_at_4(&cookie), session_index);

    assert_eq!(
        p.deliver(true, &cookie, false).unwrap().0,
        Received::CookieAccepted { tunnel: p.b_peer }
    );
    assert_eq!(
        p.deliver(true, &cookie, false).unwrap_err(),
        DropReason::InvalidCookieReply,
        "taken once: a replay cannot refresh the cookie"
    );

    // a retries after REKEY_TIMEOUT; b's new response carries a mac2 a accepts under load.
    p.now += Duration::from_millis(5400);
    let retry = p.poll_a().remove(0);
    let (_, response) = p.deliver(true, &retry, false).unwrap();
    assert_eq!(
        p.deliver(false, &response, true).unwrap().0,
        Received::HandshakeComplete { tunnel: p.a_peer }
    );
}

#[test]
fn cookie_reply_naming_no_index_of_ours_or_failing_to_open_is_refused() {
    let mut p = pair();
    p.a.initiate(p.a_peer);
    let init = p.poll_a().remove(0);
    let (_, response) = p.deliver(true, &init, false).unwrap();
    let (_, cookie) = p.deliver(false, &response, true).unwrap();

    let mut unknown = cookie.clone();
    let index = index_at_4(&cookie).wrapping_add(1);
    unknown[4..8].copy_from_slice(&index.to_le_bytes());
    assert_eq!(
        p.deliver(true, &unknown, false).unwrap_err(),
        DropReason::UnexpectedHandshake
    );

    let mut forged = cookie.clone();
    forged[40] ^= 1;
    assert_eq!(
        p.deliver(true, &forged, false).unwrap_err(),
        DropReason::InvalidCookieReply
    );
    assert_eq!(
        p.deliver(true, &cookie, false).unwrap().0,
        Received::CookieAccepted { tunnel: p.b_peer },
        "the forgeries did not use up the genuine reply"
    );
}
