//! The endpoint under test, the peers the harness plays, and what the harness knows the
//! endpoint must have done: checks every delivery and transmission makes whatever the op was.
//! The ops themselves, and what each must produce, are in `ops.rs`.

#[path = "ops.rs"]
mod ops;
#[path = "sent.rs"]
mod sent;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rovy_control::handshake::cookie::{
    COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE, CookieChecker, CookieJar, MacKeys, MacVerdict,
};
use rovy_control::handshake::noise::{self, PendingInitiation};
use rovy_control::handshake::tai64n::{MIN_INITIATION_INTERVAL, Tai64n};
use rovy_control::protocol::{
    Admission, EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received, Transmit, TunnelId,
};
use rovy_dataplane::DropReason;
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::session::{KeypairSlots, REJECT_AFTER_TIME, Session};
use rovy_dataplane::wire::{
    COOKIE_REPLY_LEN, INITIATION_LEN, INITIATION_MAC1_OFFSET, INITIATION_MAC2_OFFSET,
    KEEPALIVE_LEN, MessageType, RESPONSE_LEN, RESPONSE_MAC1_OFFSET, RESPONSE_MAC2_OFFSET,
    message_type,
};
use rovy_fuzz::mac;
use rovy_fuzz::rng::CountingRng;
use rovy_fuzz::script::{PEERS, Setup};

const OUR_PRIVATE: [u8; 32] = [0x10; 32];
/// The last identity is the endpoint's own key: a reflected handshake.
const OWN: usize = PEERS - 1;
const NOW0: Duration = Duration::from_secs(1_000);
const WALL0: Duration = Duration::from_secs(1_700_000_000);
const MTU: usize = 1420;
/// Messages the peers sent that a replay can pick from.
const HISTORY: usize = 16;
/// The endpoint's initiations a peer keeps, to answer.
const KEPT: usize = 4;
/// A cookie is used this long after it arrives.
const COOKIE_USE: Duration = COOKIE_SECRET_MAX_AGE.saturating_sub(COOKIE_SECRET_LATENCY);
/// Where the endpoint is, as the peers see it.
const US: LinkAddr = udp(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 51820);
/// Where the peers send from: two ports of one address, another, and an IPv6 one.
const SOURCES: [LinkAddr; 4] = [
    udp(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 1),
    udp(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 2),
    udp(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)), 3),
    udp(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)), 4),
];

const fn udp(ip: IpAddr, port: u16) -> LinkAddr {
    LinkAddr::Udp(SocketAddr::new(ip, port))
}

/// One identity the harness plays.
struct Peer {
    private: [u8; 32],
    public: [u8; 32],
    /// The preshared key it uses, and whether the endpoint's for it is the same.
    psk: [u8; 32],
    psk_agrees: bool,
    /// Stamps its messages to the endpoint and holds the cookies the endpoint gives it.
    jar: CookieJar,
    /// The source and the endpoint's secret epoch of the cookie `jar` holds.
    cookie: Option<(LinkAddr, u64)>,
    /// Its side of cookies for the endpoint's messages to it.
    checker: CookieChecker,
    last_ts: Tai64n,
    next_index: u32,
    /// Its initiations waiting for the endpoint's response.
    pending: Vec<PendingInitiation>,
    /// The endpoint's last initiations to it (oldest first) and last response.
    from_us: Vec<[u8; INITIATION_LEN]>,
    last_response: Option<[u8; RESPONSE_LEN]>,
    slots: KeypairSlots,
    /// The endpoint's replay guard for this key: the last timestamp it took, and when.
    accepted: Option<(Tai64n, Duration)>,
}

/// What the endpoint did with one tunnel that the harness cannot ask it.
#[derive(Default)]
struct TunnelModel {
    /// The sender index of its last initiation.
    last_initiation: Option<u32>,
    last_initiation_ts: Option<Tai64n>,
    /// mac1 of its last handshake message, until a cookie reply to it is taken.
    last_stamped: Option<[u8; 16]>,
    /// When it took a cookie reply from the peer.
    cookie_at: Option<Duration>,
    /// A keepalive it owes (it just completed a handshake as initiator).
    owes_keepalive: bool,
    /// Local indices of its sessions whose remote index is not the one the peer wrote: a
    /// replayed response changed the sender index (only mac1 covers it) and completed the
    /// handshake. What they seal goes to an index the peer holds for no such session.
    misdirected: Vec<u32>,
    /// Data messages (keepalives aside) and their plaintext bytes received and sent, as its
    /// counters must read.
    packets: (u64, u64),
    bytes: (u64, u64),
}

/// A message a peer sent, for replays.
struct Sent {
    bytes: Vec<u8>,
    src: LinkAddr,
    peer: usize,
    /// An initiation's timestamp.
    ts: Option<Tai64n>,
    accepted: bool,
}

/// What one tunnel looks like from outside: compared before and after a rejected message.
#[derive(Debug, PartialEq, Eq)]
struct TunnelState {
    in_flight: bool,
    sessions: [Option<u32>; 3],
    endpoint: Option<LinkAddr>,
}

pub struct Harness {
    us: LinkEndpoint,
    our_public: [u8; 32],
    rng: CountingRng,
    now: Duration,
    wall: Duration,
    under_load: bool,
    /// The admission's cap on tunnels (`Configured`: 65536).
    cap: usize,
    any: bool,
    peers: Vec<Peer>,
    tunnels: Vec<TunnelModel>,
    /// The endpoint's cookie secret: when it was born, and how many it had before.
    secret_born: Duration,
    epoch: u64,
    history: VecDeque<Sent>,
    nonce: u8,
}

impl Harness {
    pub fn new(setup: &Setup) -> Self {
        let mut rng = CountingRng(0x5eed);
        let admission = match setup.any {
            None => Admission::Configured,
            Some(cap) => Admission::Any {
                max_tunnels: usize::from(cap % 5),
            },
        };
        let config = EndpointConfig {
            admission,
            ..EndpointConfig::link()
        };
        let mut us = LinkEndpoint::new(OUR_PRIVATE, config, NOW0, &mut rng);
        let our_public = *us.public_key();
        assert_eq!(our_public, noise::public_key(&OUR_PRIVATE));
        let cap = match admission {
            Admission::Configured => 1 << 16,
            Admission::Any { max_tunnels } => max_tunnels,
        };
        let mut peers = Vec::new();
        for (i, p) in setup.peers.iter().enumerate() {
            let private = if i == OWN {
                OUR_PRIVATE
            } else {
                [0x20 + i as u8; 32]
            };
            let public = noise::public_key(&private);
            let wanted = (p.configured && p.psk).then_some([0x40 + i as u8; 32]);
            let mut ours = None;
            if p.configured && i != OWN {
                let room = us.tunnel_count() < cap;
                let added = us.add_tunnel(
                    public,
                    wanted,
                    p.endpoint.then_some(SOURCES[i]),
                    p.keepalive.then_some(Duration::from_secs(25)),
                );
                assert_eq!(added.is_ok(), room, "{added:?}");
                ours = wanted.filter(|_| added.is_ok());
            } else if p.configured {
                assert!(us.add_tunnel(public, None, None, None).is_err(), "own key");
            }
            let psk = if p.psk_differs {
                [0x80 + i as u8; 32]
            } else {
                wanted.unwrap_or([0; 32])
            };
            peers.push(Peer {
                private,
                public,
                psk,
                psk_agrees: psk == ours.unwrap_or([0; 32]),
                jar: CookieJar::new(MacKeys::new(&our_public)),
                cookie: None,
                checker: CookieChecker::new(MacKeys::new(&public), NOW0, &mut rng),
                last_ts: Tai64n::from_unix(WALL0 - Duration::from_secs(60)),
                next_index: (i as u32) << 28,
                pending: Vec::new(),
                from_us: Vec::new(),
                last_response: None,
                slots: KeypairSlots::new(),
                accepted: None,
            });
        }
        let tunnels = (0..us.tunnel_count())
            .map(|_| TunnelModel::default())
            .collect();
        let mut harness = Harness {
            us,
            our_public,
            rng,
            now: NOW0,
            wall: WALL0,
            under_load: false,
            cap,
            any: setup.any.is_some(),
            peers,
            tunnels,
            secret_born: NOW0,
            epoch: 0,
            history: VecDeque::new(),
            nonce: 0,
        };
        // Peers with an endpoint are handshaken with at start-up, as the daemon does.
        for id in 0..harness.us.tunnel_count() {
            if harness
                .us
                .tunnel(TunnelId(id))
                .unwrap()
                .endpoint()
                .is_some()
            {
                harness.us.initiate(TunnelId(id));
            }
        }
        harness.drain();
        harness
    }

    fn identity(&self, id: TunnelId) -> usize {
        let key = self.us.tunnel(id).expect("tunnel").public_key();
        self.peers
            .iter()
            .position(|p| &p.public == key)
            .expect("every tunnel is to a key the harness plays")
    }

    fn snapshot(&self) -> Vec<TunnelState> {
        self.us
            .tunnels()
            .map(|(_, t)| {
                let s = t.sessions();
                TunnelState {
                    in_flight: t.handshake_in_flight(),
                    sessions: [s.previous(), s.current(), s.next()]
                        .map(|s| s.map(Session::local_index)),
                    endpoint: t.endpoint(),
                }
            })
            .collect()
    }

    /// The tunnel holding local index `index` in the endpoint's table.
    fn holder(&self, index: u32) -> Option<TunnelId> {
        self.us
            .index_table()
            .with(index, |t| TunnelId(usize::from(t.slot())))
    }

    /// Hands `bytes` to the endpoint from `src` and checks what every outcome implies, whatever
    /// the op: returns the outcome, the endpoint's reply buffer and the packet after it.
    fn deliver(
        &mut self,
        src: LinkAddr,
        bytes: &[u8],
    ) -> (
        Result<Received, DropReason>,
        [u8; HANDSHAKE_BUF_LEN],
        Vec<u8>,
    ) {
        let kind = message_type(bytes);
        if matches!(kind, Ok(MessageType::Initiation | MessageType::Response))
            && self.now.saturating_sub(self.secret_born) >= COOKIE_SECRET_MAX_AGE
        {
            self.secret_born = self.now;
            self.epoch += 1;
        }
        let before = self.snapshot();
        let last_initiation: Vec<_> = self.tunnels.iter().map(|t| t.last_initiation).collect();
        let mut packet = bytes.to_vec();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let result = self.us.handle_datagram(
            self.now,
            src,
            &mut packet,
            self.under_load,
            &mut self.rng,
            &mut out,
        );
        let count = self.us.tunnel_count();
        let grew = count - before.len();
        assert!(grew <= 1 && count <= self.cap.max(before.len()));
        let index_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        match result {
            Ok(Received::HandshakeResponse { tunnel, len }) => {
                assert_eq!(kind, Ok(MessageType::Initiation));
                assert_eq!(len, RESPONSE_LEN);
                assert!(tunnel.0 < count);
                if grew == 1 {
                    assert!(self.any && tunnel.0 == before.len());
                    self.tunnels.push(TunnelModel::default());
                }
                let response = &out[..RESPONSE_LEN];
                assert_eq!(response[..4], MessageType::Response.to_wire());
                let sender = u32::from_le_bytes(response[4..8].try_into().unwrap());
                assert_eq!(response[8..12], bytes[4..8], "response to another sender");
                assert_eq!(self.holder(sender), Some(tunnel));
                let t = self.us.tunnel(tunnel).unwrap();
                assert_eq!(t.sessions().next().map(Session::local_index), Some(sender));
                assert_eq!(t.endpoint(), Some(src));
                let i = self.identity(tunnel);
                let mac1 = &response[RESPONSE_MAC1_OFFSET..RESPONSE_MAC2_OFFSET];
                assert_eq!(
                    mac1,
                    mac::mac1(&self.peers[i].public, &response[..RESPONSE_MAC1_OFFSET])
                );
                self.check_mac2(tunnel, response, RESPONSE_MAC1_OFFSET);
                self.tunnels[tunnel.0].last_stamped = Some(mac1.try_into().unwrap());
                self.peers[i].last_response = Some(response.try_into().unwrap());
            }
            Ok(Received::CookieReply) => {
                assert!(self.under_load);
                assert!(matches!(
                    kind,
                    Ok(MessageType::Initiation | MessageType::Response)
                ));
                assert_eq!(out[..4], MessageType::CookieReply.to_wire());
                assert_eq!(out[4..8], bytes[4..8], "cookie reply to another sender");
            }
            Ok(Received::HandshakeComplete { tunnel }) => {
                assert_eq!(kind, Ok(MessageType::Response));
                let receiver = index_at(8);
                assert!(
                    before[tunnel.0].in_flight,
                    "completed a handshake not in flight"
                );
                assert_eq!(
                    last_initiation[tunnel.0],
                    Some(receiver),
                    "not our initiation"
                );
                let t = self.us.tunnel(tunnel).unwrap();
                assert!(!t.handshake_in_flight());
                let current = t
                    .sessions()
                    .current()
                    .map(|s| (s.local_index(), s.is_initiator()));
                assert_eq!(current, Some((receiver, true)));
                assert_eq!(t.endpoint(), Some(src));
                self.tunnels[tunnel.0].owes_keepalive = true;
            }
            Ok(Received::CookieAccepted { tunnel }) => {
                assert_eq!(kind, Ok(MessageType::CookieReply));
                assert_eq!(self.holder(index_at(4)), Some(tunnel));
                let model = &mut self.tunnels[tunnel.0];
                assert!(
                    model.last_stamped.take().is_some(),
                    "cookie for nothing sent"
                );
                model.cookie_at = Some(self.now);
            }
            Ok(Received::Data { tunnel, len }) => {
                assert_eq!(kind, Ok(MessageType::Data));
                let receiver = index_at(4);
                assert!(before[tunnel.0].sessions.contains(&Some(receiver)));
                assert!(len + KEEPALIVE_LEN <= bytes.len());
                assert_eq!(self.us.tunnel(tunnel).unwrap().endpoint(), Some(src));
                if len > 0 {
                    let model = &mut self.tunnels[tunnel.0];
                    model.packets.0 += 1;
                    model.bytes.0 += len as u64;
                }
            }
            Err(_) => {
                assert_eq!(grew, 0, "a rejected message added a tunnel");
                assert_eq!(
                    self.snapshot(),
                    before,
                    "a rejected message changed a tunnel"
                );
            }
        }
        if !matches!(result, Ok(Received::HandshakeResponse { .. })) {
            assert_eq!(grew, 0, "{result:?} added a tunnel");
        }
        (result, out, packet)
    }

    /// A handshake message the endpoint stamped for `tunnel` carries a mac2 the peer's checker
    /// takes exactly when the endpoint holds a cookie from it young enough, else zeros.
    fn check_mac2(&self, tunnel: TunnelId, msg: &[u8], mac1_at: usize) {
        let fresh = self.tunnels[tunnel.0]
            .cookie_at
            .is_some_and(|at| self.now - at < COOKIE_USE);
        let peer = &self.peers[self.identity(tunnel)];
        if fresh {
            let verdict = peer
                .checker
                .check(msg, mac1_at, US.cookie_input().as_bytes(), true);
            assert_eq!(verdict, MacVerdict::Mac2Valid);
        } else {
            assert_eq!(
                msg[mac1_at + 16..mac1_at + 32],
                [0; 16],
                "mac2 without a cookie"
            );
        }
    }

    /// Whether the endpoint would take a mac2 from `peer` at `src` now (after the rotation
    /// the delivery just modelled).
    fn mac2_valid(&self, peer: usize, src: LinkAddr, had_cookie: bool) -> bool {
        had_cookie && self.peers[peer].cookie == Some((src, self.epoch))
    }

    /// Checks an outcome under the under-load policy: not under load it is `expected`; under
    /// load without a valid mac2 a cookie reply; with one `expected` or rate-limited.
    fn check_policy(
        &self,
        result: Result<Received, DropReason>,
        expected: Result<Received, DropReason>,
        mac2_valid: bool,
    ) {
        if !self.under_load {
            assert_eq!(result, expected);
        } else if !mac2_valid {
            assert_eq!(result, Ok(Received::CookieReply));
        } else if result != Err(DropReason::RateLimited) {
            assert_eq!(result, expected);
        }
    }

    /// What an initiation from identity `i` stamped `ts` must get when not under load.
    fn expected_initiation(&self, i: usize, ts: Tai64n) -> Result<Received, DropReason> {
        let tunnel = match self.us.tunnel_by_key(&self.peers[i].public) {
            Some(id) => id,
            None if i != OWN && self.any && self.us.tunnel_count() < self.cap => {
                TunnelId(self.us.tunnel_count())
            }
            None => return Err(DropReason::HandshakeFailed),
        };
        if let Some((last, at)) = self.peers[i].accepted
            && (ts <= last || self.now - at < MIN_INITIATION_INTERVAL)
        {
            return Err(DropReason::HandshakeReplayed);
        }
        Ok(Received::HandshakeResponse {
            tunnel,
            len: RESPONSE_LEN,
        })
    }

    /// The endpoint answered peer `i`'s initiation `answered` (its sender index as the peer
    /// wrote it; stamped `ts`) with `response`. The peer reads the response with the
    /// initiation its receiver index names. That is `answered`, which the peer completes
    /// exactly when their preshared keys agree, unless a replay changed the sender index
    /// (only mac1 covers it, and anyone can compute mac1) into that of another initiation of
    /// the peer's: a response made for one initiation's ephemeral never reads with another's,
    /// which stays pending, as it does in WireGuard.
    fn initiation_answered(&mut self, i: usize, answered: u32, ts: Tai64n, response: &[u8]) {
        let now = self.now;
        let p = &mut self.peers[i];
        p.accepted = Some((ts, now));
        let receiver = u32::from_le_bytes(response[8..12].try_into().unwrap());
        let Some(at) = p.pending.iter().position(|s| s.local_index() == receiver) else {
            return;
        };
        let read = p.pending[at].read_response(response.try_into().unwrap());
        if receiver != answered {
            assert!(
                matches!(read, Err(noise::NoiseError::Decrypt)),
                "another initiation read the response: {read:?}"
            );
            return;
        }
        assert_eq!(read.is_ok(), p.psk_agrees, "{read:?}");
        if let Ok(keys) = read {
            p.pending.remove(at);
            p.slots.install(session(&keys, true, now));
        }
    }

    /// The endpoint sent a cookie reply to peer `i`'s message just stamped from `src`: the
    /// peer's jar opens it.
    fn cookie_received(&mut self, i: usize, src: LinkAddr, reply: &[u8]) {
        let p = &mut self.peers[i];
        assert_eq!(
            p.jar.consume_reply(self.now, &reply[..COOKIE_REPLY_LEN]),
            Ok(())
        );
        p.cookie = Some((src, self.epoch));
    }

    fn remember(&mut self, sent: Sent) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(sent);
    }

    /// After every op: the tunnel count within the cap, every tunnel findable by its key, its
    /// sessions and handshake in flight in the index table under its slot, and its traffic
    /// counters what was delivered and sent.
    pub fn check_consistent(&self) {
        let count = self.us.tunnel_count();
        assert!(count <= self.cap.max(self.tunnels.len()));
        assert_eq!(count, self.tunnels.len());
        for (id, t) in self.us.tunnels() {
            assert_eq!(self.us.tunnel_by_key(t.public_key()), Some(id));
            let model = &self.tunnels[id.0];
            assert_eq!(t.shared().packets(), model.packets, "packet counters");
            assert_eq!(t.shared().traffic(), model.bytes, "byte counters");
            let s = t.sessions();
            let held: Vec<u32> = s.local_indices().collect();
            for (k, index) in held.iter().enumerate() {
                assert_eq!(self.holder(*index), Some(id), "session index unpublished");
                assert!(!held[..k].contains(index), "two sessions share an index");
            }
            if t.handshake_in_flight() {
                let pending = self.tunnels[id.0].last_initiation.expect("initiation sent");
                assert_eq!(
                    self.holder(pending),
                    Some(id),
                    "handshake index unpublished"
                );
            }
        }
    }
}

fn session(keys: &noise::TransportKeys, initiator: bool, now: Duration) -> Session {
    Session::new(
        keys.local_index,
        keys.remote_index,
        SymmetricKey::from_bytes(*keys.send),
        SymmetricKey::from_bytes(*keys.recv),
        initiator,
        now,
    )
}
