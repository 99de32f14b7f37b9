//! One static key's side of the protocol: admission, mac1/mac2 and cookies, the rate limit, and
//! the demux of messages to tunnels by receiver index.
//!
//! This file takes datagrams in; [`timing`] holds what the clock and the data path drive (timers,
//! activity, transmissions, encapsulation), [`changes`] what changes the set of tunnels while it
//! runs (removal, slots given again, settings).

mod changes;
mod timing;

pub use changes::SLOT_REST;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use rovy_dataplane::DropReason;
use rovy_dataplane::sys::{SecretPage, steered_index};
use rovy_dataplane::wire::{
    self, COOKIE_REPLY_LEN, INITIATION_LEN, INITIATION_MAC1_OFFSET, MessageType, RESPONSE_LEN,
    RESPONSE_MAC1_OFFSET,
};

use super::deadlines::Deadlines;
use super::{
    AddTunnelError, Address, HANDSHAKE_BUF_LEN, IndexDemux, Received, Tunnel, TunnelId,
    TunnelShared,
};
use crate::handshake::cookie::{CookieChecker, MacKeys, MacVerdict, NONCE_LEN};
use crate::handshake::noise::{self, NoiseError};
use crate::handshake::rate_limit::RateLimiter;
use crate::handshake::tai64n::Tai64n;

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
    /// By slot; `None` where a tunnel was removed.
    tunnels: Vec<Option<Tunnel<S>>>,
    by_key: HashMap<[u8; 32], TunnelId>,
    /// Slots of removed tunnels that have rested (see [`changes::SLOT_REST`]), lowest first.
    free_slots: BTreeSet<usize>,
    /// Slots of removed tunnels still resting, with the time each was removed, oldest first.
    resting: VecDeque<(TunnelId, Duration)>,
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
            free_slots: BTreeSet::new(),
            resting: VecDeque::new(),
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

    /// Its mac1/mac2 checker, to [`CookieChecker::share`] with the threads that screen
    /// handshake messages before they reach it.
    pub fn cookie_checker(&self) -> &CookieChecker {
        &self.checker
    }

    /// The receiver-index table, for the workers.
    pub fn index_table(&self) -> Arc<S::Index> {
        Arc::clone(&self.index)
    }

    /// Adds a tunnel to the peer with static key `public`. `psk` = None means no preshared key
    /// (WireGuard's all-zero key). A tunnel gets the lowest slot of a removed tunnel that has
    /// rested, else the next new one: 0, 1, … in the order they are added (at most 65536, and
    /// no more than [`Admission::Any`] allows).
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
        if self.by_key.len() >= cap {
            return Err(AddTunnelError::TooMany);
        }
        let index = match self.free_slots.first() {
            Some(&free) => free,
            None if self.tunnels.len() < MAX_TUNNELS => self.tunnels.len(),
            None => return Err(AddTunnelError::TooMany),
        };
        let slot = u16::try_from(index).map_err(|_| AddTunnelError::TooMany)?;
        self.free_slots.remove(&index);
        let id = TunnelId(index);
        let shared = Arc::new(S::new(slot, endpoint));
        let tunnel = Tunnel::new(public, psk, shared, persistent_keepalive);
        match self.tunnels.get_mut(index) {
            Some(place) => *place = Some(tunnel),
            None => self.tunnels.push(Some(tunnel)),
        }
        self.by_key.insert(public, id);
        self.deadlines.add(id);
        Ok(id)
    }

    /// The tunnel `id`, if any.
    pub fn tunnel(&self, id: TunnelId) -> Option<&Tunnel<S>> {
        self.tunnels.get(id.0).and_then(Option::as_ref)
    }

    /// The tunnel `id` to change, if any.
    fn tunnel_mut(&mut self, id: TunnelId) -> Option<&mut Tunnel<S>> {
        self.tunnels.get_mut(id.0).and_then(Option::as_mut)
    }

    /// The tunnel to the peer with this public key, if there is one.
    pub fn tunnel_by_key(&self, public: &[u8; 32]) -> Option<TunnelId> {
        self.by_key.get(public).copied()
    }

    /// Number of tunnels.
    pub fn tunnel_count(&self) -> usize {
        self.by_key.len()
    }

    /// Every tunnel, in slot order.
    pub fn tunnels(&self) -> impl Iterator<Item = (TunnelId, &Tunnel<S>)> {
        self.tunnels
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((TunnelId(i), t.as_ref()?)))
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
                let mut nonce = [0u8; NONCE_LEN];
                rng.fill_bytes(&mut nonce);
                let reply = src
                    .with_cookie_input(|input| {
                        self.checker.reply_to(msg, mac1_offset, input, nonce)
                    })
                    .ok_or(DropReason::BadLength)?;
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
        if !self.check_macs(now, src, msg, INITIATION_MAC1_OFFSET, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let received = noise::read_initiation(self.config.identifier, self.private.expose(), msg)
            .map_err(NoiseError::drop_reason)?;
        let id = self.admit(&received.peer_public)?;
        let timestamp = Tai64n::from_bytes(received.timestamp);
        self.tunnel_mut(id)
            .ok_or(DropReason::HandshakeFailed)?
            .timestamps
            .check(&timestamp, now)
            .map_err(|_| DropReason::HandshakeReplayed)?;
        let local_index = self.fresh_index(id, rng);
        let psk = self
            .tunnel(id)
            .ok_or(DropReason::HandshakeFailed)?
            .psk
            .clone();
        let response: &mut [u8; RESPONSE_LEN] = (&mut out[..RESPONSE_LEN])
            .try_into()
            .map_err(|_| DropReason::BadLength)?;
        let keys = received
            .write_response(&psk, local_index, response)
            .map_err(|_: NoiseError| DropReason::HandshakeFailed)?;
        let tunnel = self.tunnel_mut(id).ok_or(DropReason::HandshakeFailed)?;
        tunnel
            .jar
            .stamp(now, response, RESPONSE_MAC1_OFFSET)
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
        if !self.check_macs(now, src, msg, RESPONSE_MAC1_OFFSET, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let receiver = wire::Response::new_unchecked(&msg[..]).receiver_index();
        let id = self.pending_tunnel(receiver)?;
        let tunnel = self.tunnel_mut(id).ok_or(DropReason::UnexpectedHandshake)?;
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
        self.tunnel_mut(id)
            .ok_or(DropReason::InvalidCookieReply)?
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
        match self.tunnel(id).and_then(|t| t.pending.as_ref()) {
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
        let Some(tunnel) = self.tunnels.get_mut(id.0).and_then(Option::as_mut) else {
            return;
        };
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
