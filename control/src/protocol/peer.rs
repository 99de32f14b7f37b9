//! One peer's protocol state: its handshake in flight, sessions, timers and endpoint.
//!
//! [`super::Protocol`] owns the peers and routes messages to them; this file holds the rules that
//! concern a single peer (when to initiate, how a session is installed, what a timer does).

use std::net::SocketAddr;
use std::time::Duration;

use rovy_dataplane::session::{KeypairSlots, Session};
use zeroize::Zeroizing;

use crate::handshake::cookie::{CookieJar, MacKeys};
use crate::handshake::noise::{PendingInitiation, TransportKeys};
use crate::handshake::tai64n::TimestampGuard;
use crate::timers::{REKEY_ON_RECEIVE_AGE, REKEY_TIMEOUT, TimerAction, Timers};

/// Index of a peer in its [`super::Protocol`]; stable for the protocol's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIdx(pub usize);

/// What the protocol knows about one configured peer.
pub struct Peer {
    pub(super) public: [u8; 32],
    pub(super) psk: Zeroizing<[u8; 32]>,
    pub(super) jar: CookieJar,
    pub(super) timestamps: TimestampGuard,
    pub(super) pending: Option<PendingInitiation>,
    pub(super) last_initiation_sent: Option<Duration>,
    pub(super) sessions: KeypairSlots,
    pub(super) timers: Timers,
    pub(super) endpoint: Option<SocketAddr>,
    pub(super) last_handshake: Option<Duration>,
    /// An initiation the next [`super::Protocol::poll_transmit`] should send (`Some(retry)`).
    pub(super) want_initiation: Option<bool>,
    pub(super) want_keepalive: bool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("endpoint", &self.endpoint)
            .field("last_handshake", &self.last_handshake)
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub(super) fn new(
        public: [u8; 32],
        psk: Option<[u8; 32]>,
        endpoint: Option<SocketAddr>,
        persistent_keepalive: Option<Duration>,
    ) -> Self {
        Peer {
            public,
            psk: Zeroizing::new(psk.unwrap_or([0; 32])),
            jar: CookieJar::new(MacKeys::new(&public)),
            timestamps: TimestampGuard::default(),
            pending: None,
            last_initiation_sent: None,
            sessions: KeypairSlots::default(),
            timers: Timers::new(persistent_keepalive),
            endpoint,
            last_handshake: None,
            want_initiation: None,
            want_keepalive: false,
        }
    }

    /// The peer's static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Where packets to this peer go: configured, or roamed to its latest authenticated source.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// When the last handshake completed (on the protocol's clock).
    pub fn last_handshake(&self) -> Option<Duration> {
        self.last_handshake
    }

    /// The peer's sessions (previous/current/next).
    pub fn sessions(&self) -> &KeypairSlots {
        &self.sessions
    }

    /// Whether an initiation is waiting for its response.
    pub fn handshake_in_flight(&self) -> bool {
        self.pending.is_some()
    }

    /// Asks for an initiation unless one is already in flight.
    pub(super) fn request_initiation(&mut self) {
        if self.pending.is_none() && self.want_initiation.is_none() {
            self.want_initiation = Some(false);
        }
    }

    /// Whether a fresh (non-retry) initiation may go out now: at most one per REKEY_TIMEOUT.
    pub(super) fn may_initiate(&self, now: Duration, retry: bool) -> bool {
        retry
            || self
                .last_initiation_sent
                .is_none_or(|at| now.saturating_sub(at) >= REKEY_TIMEOUT)
    }

    /// Builds the session for completed handshake keys and records the handshake.
    pub(super) fn install(&mut self, now: Duration, keys: &TransportKeys, initiator: bool) {
        use rovy_dataplane::crypto::SymmetricKey;
        let session = Session::new(
            keys.local_index,
            keys.remote_index,
            SymmetricKey::from_bytes(*keys.send),
            SymmetricKey::from_bytes(*keys.recv),
            initiator,
            now,
        );
        self.sessions.install(session);
        self.timers.on_session_derived(now);
        if initiator {
            self.timers.on_handshake_complete();
            self.last_handshake = Some(now);
        }
    }

    /// After an authenticated receive: initiators re-key a session nearing REJECT_AFTER_TIME.
    pub(super) fn after_receive(&mut self, now: Duration) {
        if let Some(current) = self.sessions.current() {
            if current.is_initiator()
                && now.saturating_sub(current.created()) >= REKEY_ON_RECEIVE_AGE
            {
                self.request_initiation();
            }
        }
    }

    /// Applies fired timers; transmissions they ask for are picked up by `poll_transmit`.
    /// Returns whether the peer gave up handshaking (the caller drops its queued packets).
    pub(super) fn fire_timers(&mut self, now: Duration) -> bool {
        let mut gave_up = false;
        for action in self.timers.poll(now).iter() {
            match action {
                TimerAction::SendInitiation { retry } => {
                    if retry || self.pending.is_none() {
                        self.want_initiation = Some(retry);
                    }
                }
                TimerAction::SendKeepalive => self.want_keepalive = true,
                TimerAction::GiveUp => {
                    self.pending = None;
                    self.want_initiation = None;
                    gave_up = true;
                }
                TimerAction::ZeroKeys => self.zero_keys(),
            }
        }
        gave_up
    }

    /// Erases every session and the handshake state.
    pub(super) fn zero_keys(&mut self) {
        self.sessions.clear();
        self.pending = None;
        self.want_initiation = None;
        self.want_keepalive = false;
        self.timers.stop_all();
    }
}
