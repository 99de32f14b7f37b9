//! The same protocol over an address type that has nothing to do with UDP: a `u32` route id,
//! with a data path of its own, a Noise identifier of its own, and any key admitted.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use rovy_dataplane::peer::Activity;
use rovy_dataplane::route::PeerSlot;
use rovy_dataplane::session::{self, KeypairSlots, Session};

use super::*;
use crate::handshake::rate_limit::SourceGroup;

/// A route through the overlay, as far as these tests are concerned.
type Route = u32;

impl Address for Route {
    fn with_cookie_input<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.to_be_bytes())
    }

    fn source_group(&self) -> SourceGroup {
        SourceGroup::Other(u64::from(*self))
    }
}

/// A tunnel's shared state over routes: datagrams start at 0, the payload at 16.
#[derive(Debug)]
struct RouteTunnel {
    slot: PeerSlot,
    route: Mutex<Option<Route>>,
    sessions: RwLock<KeypairSlots>,
    activity: Mutex<Activity>,
    wants_handshake: AtomicBool,
}

impl RouteTunnel {
    fn stamp(&self, f: impl FnOnce(&mut Activity)) {
        f(&mut self.activity.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl TunnelShared for RouteTunnel {
    type Addr = Route;
    type Index = RouteIndex;

    fn new(slot: PeerSlot, endpoint: Option<Route>) -> Self {
        RouteTunnel {
            slot,
            route: Mutex::new(endpoint),
            sessions: RwLock::new(KeypairSlots::new()),
            activity: Mutex::new(Activity::default()),
            wants_handshake: AtomicBool::new(false),
        }
    }

    fn slot(&self) -> PeerSlot {
        self.slot
    }

    fn endpoint(&self) -> Option<Route> {
        *self.route.lock().unwrap()
    }

    fn set_endpoint(&self, addr: Route) {
        *self.route.lock().unwrap() = Some(addr);
    }

    fn sessions(&self) -> RwLockReadGuard<'_, KeypairSlots> {
        self.sessions.read().unwrap()
    }

    fn install(&self, session: Session) {
        self.sessions.write().unwrap().install(session);
    }

    fn clear_sessions(&self) {
        self.sessions.write().unwrap().clear();
    }

    fn activity(&self) -> Activity {
        *self.activity.lock().unwrap()
    }

    fn take_handshake_request(&self) -> bool {
        self.wants_handshake.swap(false, Ordering::Relaxed)
    }

    fn clear_staged(&self) -> usize {
        0
    }

    fn seal(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(Range<usize>, Route), DropReason> {
        let dst = self.endpoint().ok_or(DropReason::NoEndpoint)?;
        let sealed = self.sessions().encapsulate(now, buf, payload_len, mtu);
        let Ok(len) = sealed else {
            self.wants_handshake.store(true, Ordering::Relaxed);
            return Err(DropReason::NoSession);
        };
        self.stamp(|a| {
            a.any_sent = Some(now);
            if payload_len > 0 {
                a.data_sent = Some(now);
            }
        });
        Ok((0..len, dst))
    }

    fn decapsulate(
        &self,
        now: Duration,
        src: Route,
        packet: &mut [u8],
    ) -> Result<session::Received, DropReason> {
        let received = self.sessions().decapsulate(now, packet)?;
        let confirmed = received.confirmed_next
            && self
                .sessions
                .write()
                .unwrap()
                .promote_next(received.local_index);
        self.set_endpoint(src);
        self.stamp(|a| {
            a.any_received = Some(now);
            if received.plaintext_len > 0 {
                a.data_received = Some(now);
            }
            if confirmed {
                a.confirmed = Some(now);
            }
        });
        Ok(received)
    }
}

#[derive(Debug, Default)]
struct RouteIndex(RwLock<HashMap<u32, Arc<RouteTunnel>>>);

impl IndexDemux<RouteTunnel> for RouteIndex {
    fn insert(&self, index: u32, tunnel: Arc<RouteTunnel>) {
        self.0.write().unwrap().insert(index, tunnel);
    }

    fn remove(&self, index: u32) {
        self.0.write().unwrap().remove(&index);
    }

    fn contains(&self, index: u32) -> bool {
        self.0.read().unwrap().contains_key(&index)
    }

    fn with<R>(&self, index: u32, f: impl FnOnce(&RouteTunnel) -> R) -> Option<R> {
        self.0.read().unwrap().get(&index).map(|t| f(t))
    }
}

const UPPER: &[u8] = b"rovy upper v1";
const NOW: Duration = Duration::from_secs(100);

fn upper(private: [u8; 32], admission: Admission, rng: &mut StdRng) -> Endpoint<RouteTunnel> {
    let config = EndpointConfig {
        identifier: UPPER,
        admission,
    };
    Endpoint::new(private, config, Duration::ZERO, rng)
}

fn handle(
    node: &mut Endpoint<RouteTunnel>,
    from: Route,
    msg: &[u8],
    under_load: bool,
    rng: &mut StdRng,
) -> Result<(Received, Vec<u8>), DropReason> {
    let mut packet = msg.to_vec();
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    let r = node.handle_datagram(NOW, from, &mut packet, under_load, rng, &mut out)?;
    Ok((r, reply(r, &out, &packet)))
}

/// `a` knows `b` at route 7; `b` admits any key (at most `cap`) and learns `a`'s route, 9,
/// from its initiation. Returns a's initiation.
fn dial(cap: usize, rng: &mut StdRng) -> (Endpoint<RouteTunnel>, Endpoint<RouteTunnel>, Vec<u8>) {
    let mut a = upper(key(rng), Admission::Configured, rng);
    let b = upper(key(rng), Admission::Any { max_tunnels: cap }, rng);
    let to_b = a.add_tunnel(*b.public_key(), None, Some(7), None).unwrap();
    a.initiate(to_b);
    let sent = poll(&mut a, NOW, WALL0, rng);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 7);
    (a, b, sent[0].1.clone())
}

#[test]
fn a_route_addressed_endpoint_admits_a_new_key_and_carries_data() {
    let mut rng = StdRng::seed_from_u64(40);
    let (mut a, mut b, init) = dial(4, &mut rng);
    assert_eq!(b.tunnel_count(), 0);
    let (r, response) = handle(&mut b, 9, &init, false, &mut rng).unwrap();
    let id = b
        .tunnel_by_key(a.public_key())
        .expect("a tunnel made on the fly");
    assert_eq!(
        r,
        Received::HandshakeResponse {
            tunnel: id,
            len: 92
        }
    );
    assert_eq!(b.tunnel(id).unwrap().endpoint(), Some(9));

    let a_to_b = a.tunnel_by_key(b.public_key()).unwrap();
    assert_eq!(
        handle(&mut a, 7, &response, false, &mut rng).unwrap().0,
        Received::HandshakeComplete { tunnel: a_to_b }
    );
    let confirm = poll(&mut a, NOW, WALL0, &mut rng);
    assert_eq!(confirm.len(), 1);
    assert_eq!(confirm[0].0, 7);
    assert_eq!(
        handle(&mut b, 9, &confirm[0].1, false, &mut rng).unwrap().0,
        Received::Data { tunnel: id, len: 0 }
    );

    let mut buf = [0u8; 128];
    buf[16..21].copy_from_slice(b"hello");
    let (range, dst) = b.encapsulate(NOW, id, &mut buf, 5, 1420, &mut rng).unwrap();
    assert_eq!(dst, 9);
    let (r, plain) = handle(&mut a, 7, &buf[range], false, &mut rng).unwrap();
    assert!(matches!(r, Received::Data { tunnel, .. } if tunnel == a_to_b));
    assert_eq!(&plain[..5], b"hello");
}

#[test]
fn admission_of_unknown_keys_stops_at_the_cap() {
    let mut rng = StdRng::seed_from_u64(41);
    let (_, mut b, init) = dial(1, &mut rng);
    assert!(handle(&mut b, 9, &init, false, &mut rng).is_ok());
    let mut c = upper(key(&mut rng), Admission::Configured, &mut rng);
    let to_b = c.add_tunnel(*b.public_key(), None, Some(7), None).unwrap();
    c.initiate(to_b);
    let init = poll(&mut c, NOW, WALL0, &mut rng).remove(0).1;
    assert_eq!(
        handle(&mut b, 11, &init, false, &mut rng).unwrap_err(),
        DropReason::HandshakeFailed
    );
    assert_eq!(b.tunnel_count(), 1);
    assert_eq!(b.tunnel_by_key(c.public_key()), None);
}

#[test]
fn cookies_bind_to_the_route_a_message_came_by() {
    let mut rng = StdRng::seed_from_u64(42);
    let (mut a, mut b, init) = dial(4, &mut rng);
    let (r, cookie) = handle(&mut b, 9, &init, true, &mut rng).unwrap();
    assert_eq!(r, Received::CookieReply);
    assert!(matches!(
        handle(&mut a, 7, &cookie, false, &mut rng).unwrap().0,
        Received::CookieAccepted { .. }
    ));
    let a_to_b = a.tunnel_by_key(b.public_key()).unwrap();
    let later = NOW + Duration::from_secs(6);
    let retry = poll(&mut a, later, WALL0 + Duration::from_secs(6), &mut rng);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0, 7);
    let retry = &retry[0].1;
    assert_eq!(
        handle(&mut b, 10, retry, true, &mut rng).unwrap().0,
        Received::CookieReply,
        "the cookie was for route 9"
    );
    assert!(matches!(
        handle(&mut b, 9, retry, true, &mut rng).unwrap().0,
        Received::HandshakeResponse { .. }
    ));
    assert!(a.tunnel(a_to_b).unwrap().handshake_in_flight());
}

#[test]
fn upper_and_link_handshakes_are_never_taken_for_each_other() {
    let mut rng = StdRng::seed_from_u64(43);
    let (ka, kb) = (key(&mut rng), key(&mut rng));
    let mut upper_a = upper(ka, Admission::Configured, &mut rng);
    let mut link_b = link(kb, &mut rng);
    let to_b = upper_a
        .add_tunnel(*link_b.public_key(), None, Some(7), None)
        .unwrap();
    link_b
        .add_tunnel(*upper_a.public_key(), None, Some(A_ADDR), None)
        .unwrap();
    upper_a.initiate(to_b);
    let mut init = poll(&mut upper_a, NOW, WALL0, &mut rng).remove(0).1;
    let mut out = [0u8; HANDSHAKE_BUF_LEN];
    assert_eq!(
        link_b.handle_datagram(NOW, A_ADDR, &mut init, false, &mut rng, &mut out),
        Err(DropReason::HandshakeFailed),
        "mac1 passes (same key), the Noise prologue does not"
    );

    let mut link_a = link(ka, &mut rng);
    let mut upper_b = upper(kb, Admission::Any { max_tunnels: 4 }, &mut rng);
    let to_b = link_a
        .add_tunnel(*upper_b.public_key(), None, Some(B_ADDR), None)
        .unwrap();
    link_a.initiate(to_b);
    let init = poll(&mut link_a, NOW, WALL0, &mut rng).remove(0).1;
    assert_eq!(
        handle(&mut upper_b, 9, &init, false, &mut rng).unwrap_err(),
        DropReason::HandshakeFailed
    );
    assert_eq!(
        upper_b.tunnel_count(),
        0,
        "no tunnel for a failed handshake"
    );
}
