//! One peer's protocol state: its handshake in flight, sessions, timers and endpoint.
//!
//! [`super::Endpoint`] owns the tunnels and routes messages to them; this file holds the rules
//! that concern a single peer (when to initiate, how a session is installed, what a timer does).

use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use rovy_dataplane::peer::Activity;
use rovy_dataplane::session::{KeypairSlots, Session};
use zeroize::Zeroizing;

use super::TunnelShared;
use crate::handshake::cookie::{CookieJar, MacKeys};
use crate::handshake::noise::{PendingInitiation, TransportKeys};
use crate::handshake::tai64n::TimestampGuard;
use crate::timers::{REKEY_TIMEOUT, TimerAction, TimerActions, Timers};

/// Index of a tunnel in its [`super::Endpoint`]; stable for the endpoint's lifetime, and the
/// tunnel's slot in the tables the workers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub usize);

/// Local indices a tunnel holds at most: a handshake in flight and three sessions.
pub(super) const MAX_INDICES: usize = 4;

/// What the protocol knows about one peer.
pub struct Tunnel<S> {
    pub(super) public: [u8; 32],
    pub(super) psk: Zeroizing<[u8; 32]>,
    pub(super) jar: CookieJar,
    pub(super) timestamps: TimestampGuard,
    pub(super) pending: Option<PendingInitiation>,
    pub(super) last_initiation_sent: Option<Duration>,
    /// Keypairs, endpoint and activity, shared with the workers.
    pub(super) shared: Arc<S>,
    /// The activity already replayed into `timers`.
    pub(super) seen: Activity,
    pub(super) timers: Timers,
    pub(super) last_handshake: Option<Duration>,
    /// An initiation the next [`super::Endpoint::poll_transmit`] should send (`Some(retry)`).
    pub(super) want_initiation: Option<bool>,
    /// A keepalive is wanted, since this time. Only something the workers send *after* it
    /// makes it unnecessary: a send stamped earlier but replayed later (activity is replayed on
    /// the caller's tick) went out before the reason for the keepalive, e.g. on the keypair a
    /// handshake has just replaced, and would cancel a key confirmation the peer still needs.
    pub(super) want_keepalive: Option<Duration>,
    /// Whether the tunnel waits in the endpoint's transmit queue.
    pub(super) queued: bool,
    /// The local indices this tunnel holds in the endpoint's index table.
    pub(super) published: [Option<u32>; MAX_INDICES],
}

/// What [`Tunnel::sync_activity`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Synced {
    /// Nothing happened since the last call.
    Unchanged,
    /// Activity was replayed into the timers, or a handshake was asked for.
    Changed {
        /// A responder's keypair was confirmed (its sessions changed).
        confirmed: bool,
    },
}

impl<S: TunnelShared> std::fmt::Debug for Tunnel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("endpoint", &self.shared.endpoint())
            .field("last_handshake", &self.last_handshake)
            .finish_non_exhaustive()
    }
}

impl<S: TunnelShared> Tunnel<S> {
    pub(super) fn new(
        public: [u8; 32],
        psk: Option<[u8; 32]>,
        shared: Arc<S>,
        persistent_keepalive: Option<Duration>,
    ) -> Self {
        Tunnel {
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
            want_keepalive: None,
            queued: false,
            published: [None; MAX_INDICES],
        }
    }

    /// The peer's static public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Where packets to this peer go: configured, or roamed to its latest authenticated source.
    pub fn endpoint(&self) -> Option<S::Addr> {
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

    /// The local indices the tunnel uses now: its handshake in flight and its sessions.
    pub(super) fn live_indices(&self) -> [Option<u32>; MAX_INDICES] {
        let mut live = [None; MAX_INDICES];
        let pending = self.pending.as_ref().map(PendingInitiation::local_index);
        let sessions = self.shared.sessions();
        for (slot, index) in live
            .iter_mut()
            .zip(pending.into_iter().chain(sessions.local_indices()))
        {
            *slot = Some(index);
        }
        live
    }

    /// The state the workers share for this peer.
    pub fn shared(&self) -> &Arc<S> {
        &self.shared
    }

    /// Whether an initiation is waiting for its response.
    pub fn handshake_in_flight(&self) -> bool {
        self.pending.is_some()
    }

    /// The earliest moment one of the tunnel's timers fires.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.next_deadline()
    }

    /// Whether the tunnel has a handshake or keepalive for [`super::Endpoint::poll_transmit`].
    pub(super) fn wants_transmit(&self) -> bool {
        self.want_initiation.is_some() || self.want_keepalive.is_some()
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
    /// picks up its handshake requests. `jitter` is drawn only if data was sent (for
    /// `on_data_sent`). An idle tunnel costs five atomic loads and a swap.
    pub(super) fn sync_activity(&mut self, mut jitter: impl FnMut() -> Duration) -> Synced {
        let now = self.shared.activity();
        let changed = now != self.seen;
        let mut confirmed = false;
        if changed {
            let newer =
                |new: Option<Duration>, old: Option<Duration>| new.filter(|n| Some(*n) > old);
            let mut events: [(Option<Duration>, u8); 5] = [
                (newer(now.any_received, self.seen.any_received), 0),
                (newer(now.data_received, self.seen.data_received), 1),
                (newer(now.confirmed, self.seen.confirmed), 2),
                (newer(now.any_sent, self.seen.any_sent), 3),
                (newer(now.data_sent, self.seen.data_sent), 4),
            ];
            events.sort_by_key(|(at, kind)| (*at, *kind));
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
                        if self.want_keepalive.is_some_and(|since| at > since) {
                            self.want_keepalive = None;
                        }
                    }
                    _ => self.timers.on_data_sent(at, jitter()),
                }
            }
            self.seen = now;
        }
        let requested = self.shared.take_handshake_request();
        if requested {
            self.request_initiation();
        }
        if changed || requested {
            Synced::Changed { confirmed }
        } else {
            Synced::Unchanged
        }
    }

    /// Applies fired timers; transmissions they ask for are picked up by `poll_transmit`.
    /// Returns what fired, so the caller can drop the queued packets of a tunnel that gave up
    /// handshaking and retire the indices of erased sessions.
    pub(super) fn fire_timers(&mut self, now: Duration) -> TimerActions {
        let actions = self.timers.poll(now);
        for action in actions.iter() {
            match action {
                TimerAction::SendInitiation { retry } => {
                    if retry || self.pending.is_none() {
                        self.want_initiation = Some(retry);
                    }
                }
                TimerAction::SendKeepalive => self.want_keepalive = Some(now),
                TimerAction::GiveUp => {
                    self.pending = None;
                    self.want_initiation = None;
                }
                TimerAction::ZeroKeys => self.zero_keys(),
            }
        }
        actions
    }

    /// Erases every session and the handshake state.
    pub(super) fn zero_keys(&mut self) {
        self.shared.clear_sessions();
        self.pending = None;
        self.want_initiation = None;
        self.want_keepalive = None;
        self.timers.stop_all();
    }
}
