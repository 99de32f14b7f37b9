//! The WireGuard timer machine for one peer, on an injected clock.
//!
//! Follows the whitepaper (§6) and wireguard-go's `timers.go`: five deadlines, armed and
//! disarmed by events the peer reports, and fired by [`Timers::poll`] with the caller's `now`.
//! Nothing here reads a clock or sleeps, so every rule is tested exactly on a virtual clock.
//! Jitter for handshake retransmission comes from the caller as a ready `Duration`.

use std::time::Duration;

/// Initiator re-keys when sending on a session at least this old.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// Sessions older than this are never used.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);
/// Handshake retries stop after this long (as a count of [`MAX_TIMER_HANDSHAKES`] retries).
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);
/// Base interval between handshake retransmissions (plus jitter).
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);
/// Passive keepalive after receiving data and sending nothing for this long.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound (exclusive) of the jitter added to each retransmission.
pub const MAX_JITTER: Duration = Duration::from_millis(334);
/// Retransmissions before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
pub const MAX_TIMER_HANDSHAKES: u32 =
    (REKEY_ATTEMPT_TIME.as_secs() / REKEY_TIMEOUT.as_secs()) as u32;
/// All key material is erased after this long without a new session.
pub const ZERO_KEYS_AFTER: Duration = Duration::from_secs(REJECT_AFTER_TIME.as_secs() * 3);
pub use rovy_dataplane::session::REKEY_ON_RECEIVE_AGE;

/// What a fired timer asks the peer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Send a new handshake initiation. `retry` distinguishes a retransmission (which must
    /// not be suppressed by the initiation rate limit) from a fresh attempt.
    SendInitiation {
        /// Whether this retransmits an unanswered initiation.
        retry: bool,
    },
    /// Send an empty data message (passive or persistent keepalive).
    SendKeepalive,
    /// Retries exhausted: stop handshaking and drop queued packets.
    GiveUp,
    /// Erase every session and the handshake state.
    ZeroKeys,
}

/// Deadlines of one peer. `None` = not armed.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    retransmit_handshake: Option<Duration>,
    send_keepalive: Option<Duration>,
    new_handshake: Option<Duration>,
    zero_key_material: Option<Duration>,
    persistent_keepalive: Option<Duration>,
    persistent_interval: Option<Duration>,
    handshake_attempts: u32,
    need_another_keepalive: bool,
}

impl Timers {
    /// Timers for a peer with the given persistent keepalive interval (`None` = off).
    pub fn new(persistent_interval: Option<Duration>) -> Self {
        Timers {
            persistent_interval,
            ..Timers::default()
        }
    }

    /// The earliest armed deadline, for the caller's sleep.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.retransmit_handshake,
            self.send_keepalive,
            self.new_handshake,
            self.zero_key_material,
            self.persistent_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Retransmissions made for the handshake now in flight.
    pub fn handshake_attempts(&self) -> u32 {
        self.handshake_attempts
    }

    /// An initiation was sent (first or retry): retransmit after REKEY_TIMEOUT + `jitter`
    /// unless a response arrives.
    pub fn on_handshake_initiated(&mut self, now: Duration, jitter: Duration) {
        self.retransmit_handshake = Some(now + REKEY_TIMEOUT + jitter.min(MAX_JITTER));
    }

    /// A handshake completed (initiator: response consumed; responder: first data on the
    /// new session). Stops retransmission and resets the attempt count.
    pub fn on_handshake_complete(&mut self) {
        self.retransmit_handshake = None;
        self.handshake_attempts = 0;
    }

    /// New session keys were derived (either role): erase everything if no newer keys come
    /// within [`ZERO_KEYS_AFTER`].
    pub fn on_session_derived(&mut self, now: Duration) {
        self.zero_key_material = Some(now + ZERO_KEYS_AFTER);
    }

    /// A data packet (not a keepalive) was sent: if nothing authenticated comes back within
    /// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ jitter), start a new handshake.
    pub fn on_data_sent(&mut self, now: Duration, jitter: Duration) {
        if self.new_handshake.is_none() {
            self.new_handshake =
                Some(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter.min(MAX_JITTER));
        }
    }

    /// A data packet (not a keepalive) was received: answer with a keepalive unless we send
    /// something within KEEPALIVE_TIMEOUT.
    pub fn on_data_received(&mut self, now: Duration) {
        if self.send_keepalive.is_none() {
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        } else {
            self.need_another_keepalive = true;
        }
    }

    /// Any authenticated packet (data, keepalive or handshake) was sent.
    pub fn on_authenticated_sent(&mut self, now: Duration) {
        self.send_keepalive = None;
        self.need_another_keepalive = false;
        self.rearm_persistent(now);
    }

    /// Any authenticated packet was received: the path works, no new handshake needed.
    pub fn on_authenticated_received(&mut self, now: Duration) {
        self.new_handshake = None;
        self.rearm_persistent(now);
    }

    fn rearm_persistent(&mut self, now: Duration) {
        self.persistent_keepalive = self.persistent_interval.map(|i| now + i);
    }

    /// Changes the persistent keepalive interval (config reload); `now` re-arms it.
    pub fn set_persistent_keepalive(&mut self, now: Duration, interval: Option<Duration>) {
        self.persistent_interval = interval;
        self.rearm_persistent(now);
    }

    /// Disarms everything (peer removed or keys zeroed).
    pub fn stop_all(&mut self) {
        *self = Timers::new(self.persistent_interval);
    }

    /// Fires every deadline at or before `now`, in a fixed order, and returns what to do.
    /// At most one action of each kind is returned per call.
    pub fn poll(&mut self, now: Duration) -> TimerActions {
        let mut out = TimerActions::default();
        if fired(&mut self.retransmit_handshake, now) {
            if self.handshake_attempts >= MAX_TIMER_HANDSHAKES {
                self.send_keepalive = None;
                self.handshake_attempts = 0;
                out.push(TimerAction::GiveUp);
                if self.zero_key_material.is_none() {
                    self.zero_key_material = Some(now + ZERO_KEYS_AFTER);
                }
            } else {
                self.handshake_attempts += 1;
                out.push(TimerAction::SendInitiation { retry: true });
            }
        }
        if fired(&mut self.send_keepalive, now) {
            out.push(TimerAction::SendKeepalive);
            if std::mem::take(&mut self.need_another_keepalive) {
                self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
            }
        }
        if fired(&mut self.new_handshake, now) {
            out.push(TimerAction::SendInitiation { retry: false });
        }
        if fired(&mut self.persistent_keepalive, now) && !out.contains(TimerAction::SendKeepalive) {
            out.push(TimerAction::SendKeepalive);
        }
        if fired(&mut self.zero_key_material, now) {
            out.push(TimerAction::ZeroKeys);
        }
        out
    }
}

fn fired(deadline: &mut Option<Duration>, now: Duration) -> bool {
    match *deadline {
        Some(at) if at <= now => {
            *deadline = None;
            true
        }
        _ => false,
    }
}

/// The actions of one [`Timers::poll`], without allocating.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TimerActions {
    items: [Option<TimerAction>; 4],
    len: usize,
}

impl TimerActions {
    fn push(&mut self, action: TimerAction) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(action);
            self.len += 1;
        }
    }

    /// Whether `action` is among them.
    pub fn contains(&self, action: TimerAction) -> bool {
        self.iter().any(|a| a == action)
    }

    /// Whether nothing fired.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The actions in firing order.
    pub fn iter(&self) -> impl Iterator<Item = TimerAction> + '_ {
        self.items.iter().take(self.len).flatten().copied()
    }
}

#[cfg(test)]
mod tests;
