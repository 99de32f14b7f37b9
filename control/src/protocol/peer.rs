//! One peer's protocol state: its handshake in flight, sessions, timers and endpoint.
//!
//! [`super::Protocol`] owns the peers and routes messages to them; this file holds the rules that
//! concern a single peer (when to initiate, how a session is installed, what a timer does).

use rovy_dataplane::link_addr::LinkAddr;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use rovy_dataplane::peer::{Activity, PeerShared};
use rovy_dataplane::session::{KeypairSlots, Session};
use zeroize::Zeroizing;

use crate::handshake::cookie::{CookieJar, MacKeys};
use crate::handshake::noise::{PendingInitiation, TransportKeys};
use crate::handshake::tai64n::TimestampGuard;
use crate::timers::{REKEY_TIMEOUT, TimerAction, Timers};

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
    /// Keypairs, endpoint and activity, shared with the workers.
    pub(super) shared: Arc<PeerShared>,
    /// The activity already replayed into `timers`.
    pub(super) seen: Activity,
    pub(super) timers: Timers,
    pub(super) last_handshake: Option<Duration>,
    /// An initiation the next [`super::Protocol::poll_transmit`] should send (`Some(retry)`).
    pub(super) want_initiation: Option<bool>,
    pub(super) want_keepalive: bool,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("endpoint", &self.shared.endpoint())
            .field("last_handshake", &self.last_handshake)
            .finish_non_exhaustive()
    }
}

impl Peer {
    pub(super) fn new(
        public: [u8; 32],
        psk: Option<[u8; 32]>,
        shared: Arc<PeerShared>,
        persistent_keepalive: Option<Duration>,
    ) -> Self {
        Peer {
            public,
            psk: Zeroizing::new(psk.unwrap_or([0; 32])),
            jar: CookieJar::new(MacKeys::new(&public)),
            timestamps: TimestampGuard::default(),
            pending: None,
            last_initiation_sent: None,
            shared,
            seen: Activity::default(),
            timers: Timers::new(persistent_keepalive),
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
    pub fn endpoint(&self) -> Option<LinkAddr> {
        self.shared.endpoint()
    }

    /// When the last handshake completed (on the protocol's clock).
    pub fn last_handshake(&self) -> Option<Duration> {
        self.last_handshake
    }

    /// The peer's sessions (previous/current/next).
    pub fn sessions(&self) -> RwLockReadGuard<'_, KeypairSlots> {
        self.shared.sessions()
    }

    /// The state the workers share for this peer.
    pub fn shared(&self) -> &Arc<PeerShared> {
        &self.shared
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
        self.shared.install(session);
        self.timers.on_session_derived(now);
        if initiator {
            self.timers.on_handshake_complete();
            self.last_handshake = Some(now);
        }
    }

    /// Replays what the data path did since the last call into the timers, oldest first, and
    /// picks up its handshake requests. `jitter` is drawn by the caller for `on_data_sent`.
    pub(super) fn sync_activity(&mut self, jitter: Duration) -> bool {
        let now = self.shared.activity();
        let newer = |new: Option<Duration>, old: Option<Duration>| new.filter(|n| Some(*n) > old);
        let mut events: [(Option<Duration>, u8); 5] = [
            (newer(now.any_received, self.seen.any_received), 0),
            (newer(now.data_received, self.seen.data_received), 1),
            (newer(now.confirmed, self.seen.confirmed), 2),
            (newer(now.any_sent, self.seen.any_sent), 3),
            (newer(now.data_sent, self.seen.data_sent), 4),
        ];
        events.sort_by_key(|(at, kind)| (*at, *kind));
        let mut confirmed = false;
        for (at, kind) in events {
            let Some(at) = at else { continue };
            match kind {
                0 => self.timers.on_authenticated_received(at),
                1 => self.timers.on_data_received(at),
                2 => {
                    self.timers.on_handshake_complete();
                    self.last_handshake = Some(at);
                    confirmed = true;
                }
                3 => {
                    self.timers.on_authenticated_sent(at);
                    self.want_keepalive = false;
                }
                _ => self.timers.on_data_sent(at, jitter),
            }
        }
        self.seen = now;
        if self.shared.take_handshake_request() {
            self.request_initiation();
        }
        confirmed
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
        self.shared.clear();
        self.pending = None;
        self.want_initiation = None;
        self.want_keepalive = false;
        self.timers.stop_all();
    }
}
