//! One static key's side of the protocol: admission, mac1/mac2 and cookies, the rate limit, and
//! the demux of messages to tunnels by receiver index.
//!
//! This file takes datagrams in; [`timing`] holds what the clock and the data path drive (timers,
//! activity, transmissions, encapsulation).

mod timing;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use rovy_dataplane::DropReason;
use rovy_dataplane::sys::{SecretPage, steered_index};
use rovy_dataplane::wire::{self, COOKIE_REPLY_LEN, INITIATION_LEN, MessageType, RESPONSE_LEN};

use super::deadlines::Deadlines;
use super::{
    AddTunnelError, Address, HANDSHAKE_BUF_LEN, IndexDemux, Received, Tunnel, TunnelId,
    TunnelShared,
};
use crate::handshake::cookie::{CookieChecker, MacKeys, MacVerdict};
use crate::handshake::noise::{self, NoiseError};
use crate::handshake::rate_limit::RateLimiter;
use crate::handshake::tai64n::Tai64n;

/// Offsets of mac1 in the two handshake messages (mac2 follows at +16).
const INITIATION_MAC1: usize = 116;
const RESPONSE_MAC1: usize = 60;

/// Most tunnels an endpoint holds: their slots are 16 bits.
const MAX_TUNNELS: usize = 1 << 16;

/// Which static keys an endpoint accepts initiations from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Only keys given a tunnel with [`Endpoint::add_tunnel`] (links: the configured peers).
    Configured,
    /// Any key: an authenticated initiation from an unknown key gets a tunnel of its own (no
    /// preshared key, no persistent keepalive), as long as the endpoint has fewer than
    /// `max_tunnels`.
    Any {
        /// The cap on tunnels, configured ones included.
        max_tunnels: usize,
    },
}

/// What makes one endpoint differ from another besides its key and data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The Noise prologue: WireGuard's identifier for links; another one makes handshakes that
    /// can never be taken for a link's.
    pub identifier: &'static [u8],
    /// Whose initiations are answered.
    pub admission: Admission,
}

impl EndpointConfig {
    /// Links: byte-exact WireGuard with the configured peers.
    pub fn link() -> Self {
        EndpointConfig {
            identifier: noise::IDENTIFIER,
            admission: Admission::Configured,
        }
    }
}

/// One static key's protocol state and its tunnels, over the data path `S`.
pub struct Endpoint<S: TunnelShared> {
    /// The static private key, in a page core dumps leave out.
    private: SecretPage<32>,
    public: [u8; 32],
    config: EndpointConfig,
    checker: CookieChecker,
    limiter: RateLimiter,
    tunnels: Vec<Tunnel<S>>,
    by_key: HashMap<[u8; 32], TunnelId>,
    /// Receiver index → tunnel state, shared with the workers.
    index: Arc<S::Index>,
    /// Workers that data is steered across by receiver index (1 = no steering).
    workers: usize,
    /// Staged packets dropped because their tunnel's handshake gave up, not yet taken.
    staged_dropped: u64,
    /// Every tunnel's next timer deadline.
    deadlines: Deadlines,
    /// Tunnels with a handshake or keepalive to send, in the order they asked.
    ready: VecDeque<TunnelId>,
}

impl<S: TunnelShared> std::fmt::Debug for Endpoint<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("tunnels", &self.tunnels.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: TunnelShared> Endpoint<S> {
    /// An endpoint with the given static private key and no tunnels. `now` and `rng` seed the
    /// cookie secret.
    pub fn new(
        private: [u8; 32],
        config: EndpointConfig,
        now: Duration,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let public = noise::public_key(&private);
        Endpoint {
            private: SecretPage::new(&private),
            public,
            config,
            checker: CookieChecker::new(MacKeys::new(&public), now, rng),
            limiter: RateLimiter::new(),
            tunnels: Vec::new(),
            by_key: HashMap::new(),
            index: Arc::new(S::Index::default()),
            workers: 1,
            staged_dropped: 0,
            deadlines: Deadlines::default(),
            ready: VecDeque::new(),
        }
    }

    /// This endpoint's static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The receiver-index table, for the workers.
    pub fn index_table(&self) -> Arc<S::Index> {
        Arc::clone(&self.index)
    }

    /// Adds a tunnel to the peer with static key `public`. `psk` = None means no preshared key
    /// (WireGuard's all-zero key). Tunnels get slots 0, 1, … in the order they are added (at
    /// most 65536, and no more than [`Admission::Any`] allows).
    pub fn add_tunnel(
        &mut self,
        public: [u8; 32],
        psk: Option<[u8; 32]>,
        endpoint: Option<S::Addr>,
        persistent_keepalive: Option<Duration>,
    ) -> Result<TunnelId, AddTunnelError> {
        if public == self.public {
            return Err(AddTunnelError::OwnKey);
        }
        if self.by_key.contains_key(&public) {
            return Err(AddTunnelError::Duplicate);
        }
        let cap = match self.config.admission {
            Admission::Configured => MAX_TUNNELS,
            Admission::Any { max_tunnels } => max_tunnels.min(MAX_TUNNELS),
        };
        if self.tunnels.len() >= cap {
            return Err(AddTunnelError::TooMany);
        }
        let slot = u16::try_from(self.tunnels.len()).map_err(|_| AddTunnelError::TooMany)?;
        let id = TunnelId(self.tunnels.len());
        let shared = Arc::new(S::new(slot, endpoint));
        self.tunnels
            .push(Tunnel::new(public, psk, shared, persistent_keepalive));
        self.by_key.insert(public, id);
        self.deadlines.add(id);
        Ok(id)
    }

    /// The tunnel `id`, if any.
    pub fn tunnel(&self, id: TunnelId) -> Option<&Tunnel<S>> {
        self.tunnels.get(id.0)
    }

    /// The tunnel to the peer with this public key, if there is one.
    pub fn tunnel_by_key(&self, public: &[u8; 32]) -> Option<TunnelId> {
        self.by_key.get(public).copied()
    }

    /// Number of tunnels.
    pub fn tunnel_count(&self) -> usize {
        self.tunnels.len()
    }

    /// Every tunnel, in slot order.
    pub fn tunnels(&self) -> impl Iterator<Item = (TunnelId, &Tunnel<S>)> {
        self.tunnels
            .iter()
            .enumerate()
            .map(|(i, t)| (TunnelId(i), t))
    }

    /// Processes one datagram from `src`. `now` is the monotonic clock, `under_load` the
    /// caller's handshake-queue signal. Replies (response, cookie reply) are written into `out`.
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        src: S::Addr,
        packet: &mut [u8],
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<Received, DropReason> {
        match wire::message_type(packet)? {
            MessageType::Initiation => {
                self.handle_initiation(now, src, packet, under_load, rng, out)
            }
            MessageType::Response => self.handle_response(now, src, packet, under_load, rng, out),
            MessageType::CookieReply => self.handle_cookie_reply(now, packet),
            MessageType::Data => self.handle_data(now, src, packet, rng),
        }
    }

    /// mac1 first (before any DH), then the under-load policy: cookie reply or rate limit.
    /// `Ok(true)` = process the message; `Ok(false)` = a cookie reply is in `out`.
    #[allow(clippy::too_many_arguments)]
    fn check_macs(
        &mut self,
        now: Duration,
        src: S::Addr,
        msg: &[u8],
        mac1_offset: usize,
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<bool, DropReason> {
        self.checker.rotate_if_due(now, rng);
        let verdict =
            src.with_cookie_input(|input| self.checker.check(msg, mac1_offset, input, under_load));
        match verdict {
            MacVerdict::InvalidMac1 => Err(DropReason::InvalidMac1),
            MacVerdict::Valid => Ok(true),
            MacVerdict::Mac2Valid => {
                if self.limiter.allow(now, src.source_group()) {
                    Ok(true)
                } else {
                    Err(DropReason::RateLimited)
                }
            }
            MacVerdict::NeedsCookie => {
                let sender = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]);
                let mut mac1 = [0u8; 16];
                mac1.copy_from_slice(&msg[mac1_offset..mac1_offset + 16]);
                let mut nonce = [0u8; 24];
                rng.fill_bytes(&mut nonce);
                let reply = src.with_cookie_input(|input| {
                    self.checker.make_cookie_reply(sender, &mac1, input, nonce)
                });
                out[..COOKIE_REPLY_LEN].copy_from_slice(&reply);
                Ok(false)
            }
        }
    }

    /// The tunnel an authenticated initiation from `public` goes to: its own, or under
    /// [`Admission::Any`] a new one.
    fn admit(&mut self, public: &[u8; 32]) -> Result<TunnelId, DropReason> {
        if let Some(id) = self.tunnel_by_key(public) {
            return Ok(id);
        }
        match self.config.admission {
            Admission::Configured => Err(DropReason::HandshakeFailed),
            Admission::Any { .. } => self
                .add_tunnel(*public, None, None, None)
                .map_err(|_| DropReason::HandshakeFailed),
        }
    }

    fn handle_initiation(
        &mut self,
        now: Duration,
        src: S::Addr,
        packet: &[u8],
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<Received, DropReason> {
        let msg: &[u8; INITIATION_LEN] = packet.try_into().map_err(|_| DropReason::BadLength)?;
        if !self.check_macs(now, src, msg, INITIATION_MAC1, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let received = noise::read_initiation(self.config.identifier, self.private.expose(), msg)
            .map_err(NoiseError::drop_reason)?;
        let id = self.admit(&received.peer_public)?;
        let timestamp = Tai64n::from_bytes(received.timestamp);
        self.tunnels[id.0]
            .timestamps
            .check(&timestamp, now)
            .map_err(|_| DropReason::HandshakeReplayed)?;
        let local_index = self.fresh_index(id, rng);
        let psk = self.tunnels[id.0].psk.clone();
        let response: &mut [u8; RESPONSE_LEN] = (&mut out[..RESPONSE_LEN])
            .try_into()
            .map_err(|_| DropReason::BadLength)?;
        let keys = received
            .write_response(&psk, local_index, response)
            .map_err(|_: NoiseError| DropReason::HandshakeFailed)?;
        let tunnel = &mut self.tunnels[id.0];
        tunnel
            .jar
            .stamp(now, response, RESPONSE_MAC1)
            .map_err(|_| DropReason::HandshakeFailed)?;
        tunnel.timestamps.accept(timestamp, now);
        tunnel.install(now, &keys, false);
        tunnel.shared.set_endpoint(src);
        tunnel.timers.on_authenticated_received(now);
        tunnel.timers.on_authenticated_sent(now);
        self.sync_indices(id);
        self.after_event(id);
        Ok(Received::HandshakeResponse {
            tunnel: id,
            len: RESPONSE_LEN,
        })
    }

    fn handle_response(
        &mut self,
        now: Duration,
        src: S::Addr,
        packet: &[u8],
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<Received, DropReason> {
        let msg: &[u8; RESPONSE_LEN] = packet.try_into().map_err(|_| DropReason::BadLength)?;
        if !self.check_macs(now, src, msg, RESPONSE_MAC1, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let receiver = wire::Response::new_unchecked(&msg[..]).receiver_index();
        let id = self.pending_tunnel(receiver)?;
        let tunnel = &mut self.tunnels[id.0];
        let pending = tunnel
            .pending
            .as_mut()
            .ok_or(DropReason::UnexpectedHandshake)?;
        let keys = pending
            .read_response(msg)
            .map_err(NoiseError::drop_reason)?;
        tunnel.pending = None;
        tunnel.install(now, &keys, true);
        tunnel.shared.set_endpoint(src);
        tunnel.timers.on_authenticated_received(now);
        // Key confirmation for the responder: a keepalive unless queued data goes first.
        tunnel.want_keepalive = Some(now);
        self.sync_indices(id);
        self.after_event(id);
        Ok(Received::HandshakeComplete { tunnel: id })
    }

    fn handle_cookie_reply(
        &mut self,
        now: Duration,
        packet: &[u8],
    ) -> Result<Received, DropReason> {
        let receiver = wire::CookieReply::new_checked(packet)?.receiver_index();
        // Any index of ours names the tunnel, as in the kernel's wg_cookie_message_consume: a
        // handshake in flight, or a session (a response's sender index is the responder's new
        // session). The jar opens the reply with the mac1 of our last message to that peer.
        let id = self.indexed_tunnel(receiver)?;
        self.tunnels[id.0]
            .jar
            .consume_reply(now, packet)
            .map_err(|_| DropReason::InvalidCookieReply)?;
        Ok(Received::CookieAccepted { tunnel: id })
    }

    fn handle_data(
        &mut self,
        now: Duration,
        src: S::Addr,
        packet: &mut [u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Received, DropReason> {
        let receiver = wire::DataHeader::new_checked(&packet[..])?.receiver_index();
        let (slot, received) = self
            .index
            .with(receiver, |tunnel| {
                tunnel
                    .decapsulate(now, src, packet)
                    .map(|r| (tunnel.slot(), r))
            })
            .ok_or(DropReason::UnknownIndex)??;
        let id = TunnelId(usize::from(slot));
        self.sync_tunnel(id, rng);
        Ok(Received::Data {
            tunnel: id,
            len: received.plaintext_len,
        })
    }

    /// The tunnel whose handshake in flight has local index `receiver` (pending indices are in
    /// the index table too, so this is one lookup).
    fn pending_tunnel(&self, receiver: u32) -> Result<TunnelId, DropReason> {
        let id = self.indexed_tunnel(receiver)?;
        match &self.tunnels[id.0].pending {
            Some(p) if p.local_index() == receiver => Ok(id),
            _ => Err(DropReason::UnexpectedHandshake),
        }
    }

    /// The tunnel holding local index `receiver` (handshake in flight or session).
    fn indexed_tunnel(&self, receiver: u32) -> Result<TunnelId, DropReason> {
        self.index
            .with(receiver, |t| TunnelId(usize::from(t.slot())))
            .ok_or(DropReason::UnexpectedHandshake)
    }

    /// Makes every new local index of a tunnel steer its data messages to the tunnel's home
    /// worker (slot modulo `workers`; see `rovy_dataplane::sys::steer`).
    pub fn steer_indices(&mut self, workers: usize) {
        self.workers = workers.max(1);
    }

    /// A random local index not in use by any tunnel, steered to `id`'s home worker.
    fn fresh_index(&mut self, id: TunnelId, rng: &mut (impl RngCore + CryptoRng)) -> u32 {
        loop {
            let candidate = steered_index(rng.next_u32(), id.0 % self.workers, self.workers);
            if !self.index.contains(candidate) {
                return candidate;
            }
        }
    }

    /// Makes the index table hold exactly the indices `id` still uses (its handshake in flight
    /// and its sessions), so rotated-out sessions stop matching incoming packets.
    fn sync_indices(&mut self, id: TunnelId) {
        let tunnel = &mut self.tunnels[id.0];
        let live = tunnel.live_indices();
        for old in tunnel.published.iter().flatten() {
            if !live.contains(&Some(*old)) {
                self.index.remove(*old);
            }
        }
        for new in live.iter().flatten() {
            if !tunnel.published.contains(&Some(*new)) {
                self.index.insert(*new, Arc::clone(&tunnel.shared));
            }
        }
        tunnel.published = live;
    }
}
