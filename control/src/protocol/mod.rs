//! The sans-IO WireGuard protocol of one node: many peers, one static key.
//!
//! Datagrams go in through [`Protocol::handle_datagram`] with the source address, `now` and the
//! caller's under-load signal; plaintext goes out through [`Protocol::encapsulate`]; handshakes
//! and keepalives that timers ask for come out of [`Protocol::poll_transmit`] (quinn-style: the
//! caller polls until it returns `None`, then sleeps until [`Protocol::next_deadline`]).
//! Handshake messages are written into a caller-provided 148-byte buffer: nothing here
//! allocates per packet, and every rejection is a [`DropReason`] for the caller to count.

mod peer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use rovy_dataplane::DropReason;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::sys::{SecretPage, steered_index};
use rovy_dataplane::wire::{self, COOKIE_REPLY_LEN, INITIATION_LEN, MessageType, RESPONSE_LEN};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::handshake::cookie::{CookieChecker, MacKeys, MacVerdict};
use crate::handshake::noise::{self, NoiseError};
use crate::handshake::rate_limit::RateLimiter;
use crate::handshake::tai64n::Tai64n;
use crate::timers::MAX_JITTER;

pub use peer::{Peer, PeerIdx};

/// Offsets of mac1 in the two handshake messages (mac2 follows at +16).
const INITIATION_MAC1: usize = 116;
const RESPONSE_MAC1: usize = 60;

/// Largest message [`Protocol`] writes into the caller's handshake buffer.
pub const HANDSHAKE_BUF_LEN: usize = INITIATION_LEN;

/// What a datagram handed to [`Protocol::handle_datagram`] turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An initiation was accepted: send `out[..len]` (the response) back to the source.
    HandshakeResponse {
        /// The initiating peer.
        peer: PeerIdx,
        /// Length of the response in `out`.
        len: usize,
    },
    /// Under load without a valid mac2: send `out[..COOKIE_REPLY_LEN]` back to the source;
    /// the message itself was not processed (count it as [`DropReason::CookieRequired`]).
    CookieReply,
    /// Our initiation was answered: a session is ready, flush packets queued for the peer.
    HandshakeComplete {
        /// The responding peer.
        peer: PeerIdx,
    },
    /// A cookie reply for our last handshake message to the peer (initiation or response) was
    /// stored; the next one we send it carries a valid mac2.
    CookieAccepted {
        /// The peer that sent it.
        peer: PeerIdx,
    },
    /// Data decrypted in place: the plaintext is `packet[16..16 + len]`; `len == 0` is a
    /// keepalive.
    Data {
        /// The sending peer.
        peer: PeerIdx,
        /// Plaintext length (including WireGuard's zero padding).
        len: usize,
    },
}

/// A message [`Protocol::poll_transmit`] wrote into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The peer it is for.
    pub peer: PeerIdx,
    /// Where to send it.
    pub dst: LinkAddr,
    /// Its length in the buffer.
    pub len: usize,
}

/// Why a peer could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddPeerError {
    /// The key is already a peer.
    #[error("the peer is configured twice")]
    Duplicate,
    /// The key is this node's own.
    #[error("the peer's public key is this node's own")]
    OwnKey,
    /// More than 65536 peers.
    #[error("too many peers")]
    TooMany,
}

/// One node's WireGuard protocol state.
pub struct Protocol {
    /// The static private key, in a page core dumps leave out.
    private: SecretPage<32>,
    public: [u8; 32],
    checker: CookieChecker,
    limiter: RateLimiter,
    peers: Vec<Peer>,
    by_key: HashMap<[u8; 32], PeerIdx>,
    /// Receiver index → peer, shared with the workers.
    index: Arc<IndexTable>,
    /// Indices each peer holds in `index`, to drop them when its sessions rotate.
    indices: Vec<Vec<u32>>,
    /// Workers that data is steered across by receiver index (1 = no steering).
    workers: usize,
    /// Staged packets dropped because their peer's handshake gave up, not yet taken.
    staged_dropped: u64,
}

impl std::fmt::Debug for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protocol")
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Protocol {
    /// A node with the given static private key and no peers. `now` and `rng` seed the
    /// cookie secret.
    pub fn new(private: [u8; 32], now: Duration, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let public = PublicKey::from(&StaticSecret::from(private)).to_bytes();
        Protocol {
            private: SecretPage::new(&private),
            public,
            checker: CookieChecker::new(MacKeys::new(&public), now, rng),
            limiter: RateLimiter::new(),
            peers: Vec::new(),
            by_key: HashMap::new(),
            index: Arc::new(IndexTable::new()),
            indices: Vec::new(),
            workers: 1,
            staged_dropped: 0,
        }
    }

    /// This node's static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The receiver-index table, for the workers.
    pub fn index_table(&self) -> Arc<IndexTable> {
        Arc::clone(&self.index)
    }

    /// Adds a peer. `psk` = None means no preshared key (WireGuard's all-zero key). Peers get
    /// slots 0, 1, … in the order they are added (at most 65536).
    pub fn add_peer(
        &mut self,
        public: [u8; 32],
        psk: Option<[u8; 32]>,
        endpoint: Option<LinkAddr>,
        persistent_keepalive: Option<Duration>,
    ) -> Result<PeerIdx, AddPeerError> {
        if public == self.public {
            return Err(AddPeerError::OwnKey);
        }
        if self.by_key.contains_key(&public) {
            return Err(AddPeerError::Duplicate);
        }
        let slot = u16::try_from(self.peers.len()).map_err(|_| AddPeerError::TooMany)?;
        let idx = PeerIdx(self.peers.len());
        let shared = Arc::new(PeerShared::new(slot, endpoint));
        self.peers
            .push(Peer::new(public, psk, shared, persistent_keepalive));
        self.indices.push(Vec::new());
        self.by_key.insert(public, idx);
        Ok(idx)
    }

    /// The peer at `idx`, if any.
    pub fn peer(&self, idx: PeerIdx) -> Option<&Peer> {
        self.peers.get(idx.0)
    }

    /// The peer with this public key, if configured.
    pub fn peer_by_key(&self, public: &[u8; 32]) -> Option<PeerIdx> {
        self.by_key.get(public).copied()
    }

    /// Number of configured peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Processes one datagram from `src`. `now` is the monotonic clock, `wall` the time since
    /// the Unix epoch (only for TAI64N), `under_load` the caller's handshake-queue signal.
    /// Replies (response, cookie reply) are written into `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_datagram(
        &mut self,
        now: Duration,
        src: LinkAddr,
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
    fn admit(
        &mut self,
        now: Duration,
        src: LinkAddr,
        msg: &[u8],
        mac1_offset: usize,
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<bool, DropReason> {
        self.checker.rotate_if_due(now, rng);
        match self.checker.check(msg, mac1_offset, &src, under_load) {
            MacVerdict::InvalidMac1 => Err(DropReason::InvalidMac1),
            MacVerdict::Valid => Ok(true),
            MacVerdict::Mac2Valid => {
                if self.limiter.allow(now, src.source_ip()) {
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
                let reply = self.checker.make_cookie_reply(sender, &mac1, &src, nonce);
                out[..COOKIE_REPLY_LEN].copy_from_slice(&reply);
                Ok(false)
            }
        }
    }

    fn handle_initiation(
        &mut self,
        now: Duration,
        src: LinkAddr,
        packet: &[u8],
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<Received, DropReason> {
        let msg: &[u8; INITIATION_LEN] = packet.try_into().map_err(|_| DropReason::BadLength)?;
        if !self.admit(now, src, msg, INITIATION_MAC1, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let received =
            noise::read_initiation(self.private.expose(), msg).map_err(NoiseError::drop_reason)?;
        let idx = self
            .peer_by_key(&received.peer_public)
            .ok_or(DropReason::HandshakeFailed)?;
        let timestamp = Tai64n::from_bytes(received.timestamp);
        self.peers[idx.0]
            .timestamps
            .check(&timestamp, now)
            .map_err(|_| DropReason::HandshakeReplayed)?;
        let local_index = self.fresh_index(idx, rng);
        let psk = self.peers[idx.0].psk.clone();
        let response: &mut [u8; RESPONSE_LEN] = (&mut out[..RESPONSE_LEN])
            .try_into()
            .map_err(|_| DropReason::BadLength)?;
        let keys = received
            .write_response(&psk, local_index, response)
            .map_err(|_: NoiseError| DropReason::HandshakeFailed)?;
        let peer = &mut self.peers[idx.0];
        peer.jar
            .stamp(now, response, RESPONSE_MAC1)
            .map_err(|_| DropReason::HandshakeFailed)?;
        peer.timestamps.accept(timestamp, now);
        peer.install(now, &keys, false);
        peer.shared.set_endpoint(src);
        peer.timers.on_authenticated_received(now);
        peer.timers.on_authenticated_sent(now);
        self.sync_indices(idx);
        Ok(Received::HandshakeResponse {
            peer: idx,
            len: RESPONSE_LEN,
        })
    }

    fn handle_response(
        &mut self,
        now: Duration,
        src: LinkAddr,
        packet: &[u8],
        under_load: bool,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Result<Received, DropReason> {
        let msg: &[u8; RESPONSE_LEN] = packet.try_into().map_err(|_| DropReason::BadLength)?;
        if !self.admit(now, src, msg, RESPONSE_MAC1, under_load, rng, out)? {
            return Ok(Received::CookieReply);
        }
        let receiver = wire::Response::new_unchecked(&msg[..]).receiver_index();
        let idx = self.pending_peer(receiver)?;
        let peer = &mut self.peers[idx.0];
        let pending = peer
            .pending
            .as_mut()
            .ok_or(DropReason::UnexpectedHandshake)?;
        let keys = pending
            .read_response(msg)
            .map_err(NoiseError::drop_reason)?;
        peer.pending = None;
        peer.install(now, &keys, true);
        peer.shared.set_endpoint(src);
        peer.timers.on_authenticated_received(now);
        // Key confirmation for the responder: a keepalive unless queued data goes first.
        peer.want_keepalive = true;
        self.sync_indices(idx);
        Ok(Received::HandshakeComplete { peer: idx })
    }

    fn handle_cookie_reply(
        &mut self,
        now: Duration,
        packet: &[u8],
    ) -> Result<Received, DropReason> {
        let receiver = wire::CookieReply::new_checked(packet)?.receiver_index();
        // Any index of ours names the peer, as in the kernel's wg_cookie_message_consume: a
        // handshake in flight, or a session (a response's sender index is the responder's new
        // session). The jar opens the reply with the mac1 of our last message to that peer.
        let idx = self.indexed_peer(receiver)?;
        self.peers[idx.0]
            .jar
            .consume_reply(now, packet)
            .map_err(|_| DropReason::InvalidCookieReply)?;
        Ok(Received::CookieAccepted { peer: idx })
    }

    fn handle_data(
        &mut self,
        now: Duration,
        src: LinkAddr,
        packet: &mut [u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Received, DropReason> {
        let receiver = wire::DataHeader::new_checked(&packet[..])?.receiver_index();
        let (slot, received) = self
            .index
            .with(receiver, |peer| {
                peer.decapsulate(now, src, packet).map(|r| (peer.slot(), r))
            })
            .ok_or(DropReason::UnknownIndex)??;
        let idx = PeerIdx(usize::from(slot));
        self.sync_activity(idx, rng);
        Ok(Received::Data {
            peer: idx,
            len: received.plaintext_len,
        })
    }

    /// Replays the data path's activity for `idx` into its timers (see `Peer::sync_activity`).
    fn sync_activity(&mut self, idx: PeerIdx, rng: &mut (impl RngCore + CryptoRng)) {
        let jitter = jitter(rng);
        if self.peers[idx.0].sync_activity(jitter) {
            self.sync_indices(idx);
        }
    }

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + payload_len]` (see
    /// [`rovy_dataplane::buf`]) for `peer` in place; returns the datagram's range in `buf` and
    /// where to send it. Without a usable session it asks for a handshake (picked up by
    /// [`Protocol::poll_transmit`]) and fails with [`DropReason::NoSession`]: the caller may
    /// queue the packet until [`Received::HandshakeComplete`].
    #[allow(clippy::too_many_arguments)]
    pub fn encapsulate(
        &mut self,
        now: Duration,
        idx: PeerIdx,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Range<usize>, LinkAddr), DropReason> {
        let peer = self.peers.get(idx.0).ok_or(DropReason::NoRoute)?;
        let sent = peer.shared.seal(now, buf, payload_len, mtu);
        self.sync_activity(idx, rng);
        let at = PeerShared::ENCAP.datagram_at();
        sent.map(|(len, dst)| (at..at + len, dst))
    }

    /// How many staged packets were dropped since the last call because their peer's
    /// handshake gave up (WireGuard purges them then, too); the caller counts them.
    pub fn take_staged_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.staged_dropped)
    }

    /// Asks for a handshake with `peer` now (e.g. at start-up for peers with an endpoint).
    pub fn initiate(&mut self, idx: PeerIdx) {
        if let Some(peer) = self.peers.get_mut(idx.0) {
            peer.request_initiation();
        }
    }

    /// Fires due timers and returns the next message to send (initiation or keepalive),
    /// written into `out`. Call until it returns `None`. `wall` is the time since the Unix
    /// epoch, for the initiation's TAI64N timestamp.
    pub fn poll_transmit(
        &mut self,
        now: Duration,
        wall: Duration,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> Option<Transmit> {
        self.limiter.gc(now);
        for i in 0..self.peers.len() {
            let idx = PeerIdx(i);
            self.sync_activity(idx, rng);
            if self.peers[i].fire_timers(now) {
                self.sync_indices(idx);
                self.staged_dropped += self.peers[i].shared.clear_staged() as u64;
            }
            let peer = &mut self.peers[i];
            let Some(dst) = peer.shared.endpoint() else {
                peer.want_initiation = None;
                peer.want_keepalive = false;
                continue;
            };
            if std::mem::take(&mut peer.want_keepalive) {
                if let Ok((len, _)) = peer.shared.seal(now, &mut out[..], 0, 0) {
                    // Sealed where a packet's datagram goes; a Transmit is at the start.
                    let at = PeerShared::ENCAP.datagram_at();
                    out.copy_within(at..at + len, 0);
                    return Some(Transmit {
                        peer: idx,
                        dst,
                        len,
                    });
                }
            }
            if let Some(retry) = peer.want_initiation.take() {
                if peer.may_initiate(now, retry) && self.write_initiation(now, wall, idx, rng, out)
                {
                    return Some(Transmit {
                        peer: idx,
                        dst,
                        len: INITIATION_LEN,
                    });
                }
            }
        }
        None
    }

    fn write_initiation(
        &mut self,
        now: Duration,
        wall: Duration,
        idx: PeerIdx,
        rng: &mut (impl RngCore + CryptoRng),
        out: &mut [u8; HANDSHAKE_BUF_LEN],
    ) -> bool {
        let local_index = self.fresh_index(idx, rng);
        let timestamp = Tai64n::from_unix(wall);
        let peer = &mut self.peers[idx.0];
        let Ok(pending) = noise::write_initiation(
            self.private.expose(),
            &peer.public,
            &peer.psk,
            local_index,
            timestamp.as_bytes(),
            out,
        ) else {
            return false;
        };
        if peer.jar.stamp(now, out, INITIATION_MAC1).is_err() {
            return false;
        }
        peer.pending = Some(pending);
        peer.last_initiation_sent = Some(now);
        peer.timers.on_handshake_initiated(now, jitter(rng));
        peer.timers.on_authenticated_sent(now);
        self.sync_indices(idx);
        true
    }

    /// The earliest moment a timer of any peer fires.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.peers
            .iter()
            .filter_map(|p| p.timers.next_deadline())
            .min()
    }

    /// The peer whose handshake in flight has local index `receiver` (pending indices are in
    /// the index table too, so this is one lookup).
    fn pending_peer(&self, receiver: u32) -> Result<PeerIdx, DropReason> {
        let idx = self.indexed_peer(receiver)?;
        match &self.peers[idx.0].pending {
            Some(p) if p.local_index() == receiver => Ok(idx),
            _ => Err(DropReason::UnexpectedHandshake),
        }
    }

    /// The peer holding local index `receiver` (handshake in flight or session).
    fn indexed_peer(&self, receiver: u32) -> Result<PeerIdx, DropReason> {
        self.index
            .with(receiver, |p| PeerIdx(usize::from(p.slot())))
            .ok_or(DropReason::UnexpectedHandshake)
    }

    /// Makes every new local index of a peer steer its data messages to the peer's home
    /// worker (slot modulo `workers`; see `rovy_dataplane::sys::steer`).
    pub fn steer_indices(&mut self, workers: usize) {
        self.workers = workers.max(1);
    }

    /// A random local index not in use by any peer, steered to `idx`'s home worker.
    fn fresh_index(&mut self, idx: PeerIdx, rng: &mut (impl RngCore + CryptoRng)) -> u32 {
        loop {
            let candidate = steered_index(rng.next_u32(), idx.0 % self.workers, self.workers);
            if !self.index.contains(candidate) {
                return candidate;
            }
        }
    }

    /// Makes `by_index` hold exactly the indices `idx` still uses (its handshake in flight and
    /// its sessions), so rotated-out sessions stop matching incoming packets.
    fn sync_indices(&mut self, idx: PeerIdx) {
        let peer = &self.peers[idx.0];
        let live: Vec<u32> = peer
            .pending
            .as_ref()
            .map(|p| p.local_index())
            .into_iter()
            .chain(peer.shared.sessions().local_indices())
            .collect();
        for old in &self.indices[idx.0] {
            if !live.contains(old) {
                self.index.remove(*old);
            }
        }
        for new in &live {
            if !self.indices[idx.0].contains(new) {
                self.index.insert(*new, Arc::clone(&peer.shared));
            }
        }
        self.indices[idx.0] = live;
    }
}

fn jitter(rng: &mut (impl RngCore + CryptoRng)) -> Duration {
    Duration::from_nanos(u64::from(rng.next_u32()) % MAX_JITTER.as_nanos() as u64)
}
