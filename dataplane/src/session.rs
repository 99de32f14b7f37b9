//! Transport sessions: one keypair's send counter, replay window and limits, and the
//! previous/current/next slots a peer keeps them in.
//!
//! The handshake (in the control crate) derives the keys and installs a [`Session`]; from then on
//! every data message goes through [`Session::encapsulate`] and [`Session::decapsulate`], which
//! enforce WireGuard's message and time limits on the `now` the caller passes in.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::DropReason;
use crate::crypto::{OpeningKey, SealingKey, SymmetricKey};
use crate::replay::ReplayWindow;
use crate::wire::{DATA_HEADER_LEN, DataHeader, TAG_LEN};

/// After this many messages sent on one keypair, a new handshake is due.
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;
/// Counters at or past this (2^64 − 2^13 − 1) are never sent nor accepted.
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);
/// The initiator starts a new handshake when sending on a keypair this old.
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);
/// An initiator re-keys on receive when its keypair is this old (REJECT_AFTER_TIME −
/// KEEPALIVE_TIMEOUT − REKEY_TIMEOUT), so it does not expire between a send and the reply.
pub const REKEY_ON_RECEIVE_AGE: Duration = Duration::from_secs(180 - 10 - 5);
/// A keypair this old is neither used to send nor to receive.
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);

/// Plaintext is zero-padded to a multiple of this, hiding exact packet lengths.
const PADDING_MULTIPLE: usize = 16;

/// Why a message could not be sealed. Nothing was written to the buffer and no counter was
/// used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The keypair is at least [`REJECT_AFTER_TIME`] old.
    Expired,
    /// The send counter reached [`REJECT_AFTER_MESSAGES`].
    CounterExhausted,
    /// The buffer cannot hold header, padded payload and tag.
    BufferTooSmall,
    /// No current keypair to send with.
    NoSession,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Expired => "keypair older than REJECT_AFTER_TIME",
            SendError::CounterExhausted => "send counter reached REJECT_AFTER_MESSAGES",
            SendError::BufferTooSmall => "buffer too small for header, padded payload and tag",
            SendError::NoSession => "no current keypair",
        })
    }
}

impl std::error::Error for SendError {}

/// Length of the padded plaintext for a payload of `payload_len`, as wireguard-go's
/// `calculatePaddingSize`: round up to [`PADDING_MULTIPLE`], but never past the MTU, and never
/// pad a payload that already exceeds it.
fn padded_len(payload_len: usize, mtu: usize) -> usize {
    payload_len
        .next_multiple_of(PADDING_MULTIPLE)
        .min(mtu.max(payload_len))
}

/// Length of the data message that seals a payload of `payload_len`: header, padded
/// ciphertext, tag. What [`Session::encapsulate`] needs room for.
pub fn sealed_len(payload_len: usize, mtu: usize) -> usize {
    DATA_HEADER_LEN + padded_len(payload_len, mtu) + TAG_LEN
}

/// One keypair from one handshake.
#[derive(Debug)]
pub struct Session {
    local_index: u32,
    remote_index: u32,
    is_initiator: bool,
    created: Duration,
    sealing: SealingKey,
    opening: OpeningKey,
    /// Next counter to send. Atomic so that several workers can seal on one session.
    send_counter: AtomicU64,
    /// Behind a mutex so any worker can open with `&self`; packets of one flow land on one
    /// worker, so the lock is uncontended in the common case.
    replay: Mutex<ReplayWindow>,
}

impl Session {
    /// A fresh keypair: counters start at 0. The key bytes are consumed and wiped.
    pub fn new(
        local_index: u32,
        remote_index: u32,
        send_key: SymmetricKey,
        recv_key: SymmetricKey,
        is_initiator: bool,
        now: Duration,
    ) -> Self {
        Self {
            local_index,
            remote_index,
            is_initiator,
            created: now,
            sealing: SealingKey::new(&send_key),
            opening: OpeningKey::new(&recv_key),
            send_counter: AtomicU64::new(0),
            replay: Mutex::new(ReplayWindow::new()),
        }
    }

    /// Our index: the receiver index of data messages sent to us.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The peer's index: written into every data message we send.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }

    /// Whether we sent the initiation that created this keypair.
    pub fn is_initiator(&self) -> bool {
        self.is_initiator
    }

    /// When the keypair was installed, on the caller's clock.
    pub fn created(&self) -> Duration {
        self.created
    }

    /// The counter the next sent message will carry, which is also how many were sent.
    pub fn next_send_counter(&self) -> u64 {
        self.send_counter.load(Ordering::Relaxed)
    }

    fn age(&self, now: Duration) -> Duration {
        now.saturating_sub(self.created)
    }

    /// Whether the keypair is too old to send or receive with.
    pub fn is_expired(&self, now: Duration) -> bool {
        self.age(now) >= REJECT_AFTER_TIME
    }

    /// Whether a new handshake is due: too many messages sent, or (for the initiator, who
    /// alone rekeys on time) the keypair is [`REKEY_AFTER_TIME`] old.
    pub fn needs_rekey(&self, now: Duration) -> bool {
        self.next_send_counter() >= REKEY_AFTER_MESSAGES
            || (self.is_initiator && self.age(now) >= REKEY_AFTER_TIME)
    }

    /// Takes the next send counter, unless exhausted. Never wraps, even when called forever.
    fn take_send_counter(&self) -> Result<u64, SendError> {
        self.send_counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |counter| {
                (counter < REJECT_AFTER_MESSAGES).then_some(counter + 1)
            })
            .map_err(|_| SendError::CounterExhausted)
    }

    /// Seals the plaintext at `buf[16..16 + payload_len]` into a data message in place and
    /// returns the datagram length: header, zero-padded ciphertext, tag.
    ///
    /// Every check that can fail runs before a counter is taken, so a failed call leaves the
    /// session exactly as it was.
    pub fn encapsulate(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<usize, SendError> {
        if self.is_expired(now) {
            return Err(SendError::Expired);
        }
        if payload_len > buf.len() {
            return Err(SendError::BufferTooSmall);
        }
        let datagram_len = sealed_len(payload_len, mtu);
        let padded = datagram_len - DATA_HEADER_LEN - TAG_LEN;
        let datagram = buf
            .get_mut(..datagram_len)
            .ok_or(SendError::BufferTooSmall)?;
        let counter = self.take_send_counter()?;

        let (header, body) = datagram.split_at_mut(DATA_HEADER_LEN);
        DataHeader::new_unchecked(header).fill_header(self.remote_index, counter);
        let (plaintext, tag) = body.split_at_mut(padded);
        plaintext[payload_len..].fill(0);
        tag.copy_from_slice(&self.sealing.seal_in_place(counter, plaintext));
        Ok(datagram_len)
    }

    /// Authenticates and decrypts a data message in place. On success the padded plaintext is
    /// `packet[16..16 + n]` for the returned `n` (0 for a keepalive).
    ///
    /// Header, index, age, counter limit and replay are all checked before the AEAD runs, and
    /// the replay window only records packets that authenticated.
    pub fn decapsulate(&self, now: Duration, packet: &mut [u8]) -> Result<usize, DropReason> {
        let header = DataHeader::new_checked(&*packet)?;
        let (receiver_index, counter) = (header.receiver_index(), header.counter());
        if receiver_index != self.local_index {
            return Err(DropReason::UnknownIndex);
        }
        if self.is_expired(now) {
            return Err(DropReason::SessionExpired);
        }
        if counter >= REJECT_AFTER_MESSAGES {
            return Err(DropReason::CounterExhausted);
        }
        if !self.window().check(counter) {
            return Err(DropReason::Replayed);
        }
        let sealed = packet
            .get_mut(DATA_HEADER_LEN..)
            .ok_or(DropReason::Truncated)?;
        let plaintext_len = self.opening.open_in_place(counter, sealed)?;
        if !self.window().mark(counter) {
            return Err(DropReason::Replayed);
        }
        Ok(plaintext_len)
    }

    /// The replay window; a panic elsewhere while holding it cannot corrupt a bitmap, so a
    /// poisoned lock is simply taken over.
    fn window(&self) -> std::sync::MutexGuard<'_, ReplayWindow> {
        self.replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What [`KeypairSlots::decapsulate`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Padded plaintext length at `packet[16..]`; 0 for a keepalive.
    pub plaintext_len: usize,
    /// Which session opened it.
    pub local_index: u32,
    /// The packet confirmed the `next` keypair, which is now `current`: the responder's side of
    /// key confirmation. Control should treat the handshake as complete.
    pub confirmed_next: bool,
}

/// A peer's keypairs, as wireguard-go keeps them.
///
/// - `current` sends and receives.
/// - `next` is a responder's fresh keypair, unusable for sending until the initiator proves it
///   holds the keys by sending a data message on it.
/// - `previous` still receives, so packets in flight across a rekey are not lost.
#[derive(Debug, Default)]
pub struct KeypairSlots {
    previous: Option<Session>,
    current: Option<Session>,
    next: Option<Session>,
}

impl KeypairSlots {
    /// No keypairs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the keypair from a completed handshake. An initiator's keypair is confirmed by
    /// the response it just received and becomes current at once; the old current (or an
    /// unconfirmed next) is kept as previous. A responder's keypair waits in next, and the
    /// previous keypair is dropped.
    pub fn install(&mut self, session: Session) {
        if session.is_initiator() {
            self.previous = self.next.take().or_else(|| self.current.take());
            self.current = Some(session);
        } else {
            self.next = Some(session);
            self.previous = None;
        }
    }

    /// The keypair used to send.
    pub fn current(&self) -> Option<&Session> {
        self.current.as_ref()
    }

    /// A responder's keypair awaiting confirmation.
    pub fn next(&self) -> Option<&Session> {
        self.next.as_ref()
    }

    /// The keypair before current, kept for packets still in flight.
    pub fn previous(&self) -> Option<&Session> {
        self.previous.as_ref()
    }

    /// Indices of every held keypair: previous, current, next.
    pub fn local_indices(&self) -> impl Iterator<Item = u32> + '_ {
        [&self.previous, &self.current, &self.next]
            .into_iter()
            .flatten()
            .map(Session::local_index)
    }

    /// Drops every keypair; their key bytes are wiped.
    pub fn clear(&mut self) {
        self.previous = None;
        self.current = None;
        self.next = None;
    }

    /// Seals with the current keypair; see [`Session::encapsulate`].
    pub fn encapsulate(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<usize, SendError> {
        self.current
            .as_ref()
            .ok_or(SendError::NoSession)?
            .encapsulate(now, buf, payload_len, mtu)
    }

    /// Opens a data message with whichever keypair its receiver index names. A message that
    /// authenticates on `next` reports `confirmed_next`; the owner then calls
    /// [`KeypairSlots::promote_next`] (which needs `&mut`, so shared owners take a write lock
    /// only for that rare step).
    pub fn decapsulate(&self, now: Duration, packet: &mut [u8]) -> Result<Received, DropReason> {
        let local_index = DataHeader::new_checked(&*packet)?.receiver_index();
        fn names_it(slot: &Option<Session>, local_index: u32) -> Option<&Session> {
            slot.as_ref().filter(|s| s.local_index() == local_index)
        }
        let (session, is_next) = if let Some(s) = names_it(&self.current, local_index) {
            (s, false)
        } else if let Some(s) = names_it(&self.next, local_index) {
            (s, true)
        } else if let Some(s) = names_it(&self.previous, local_index) {
            (s, false)
        } else {
            return Err(DropReason::UnknownIndex);
        };
        let plaintext_len = session.decapsulate(now, packet)?;
        Ok(Received {
            plaintext_len,
            local_index,
            confirmed_next: is_next,
        })
    }

    /// Key confirmation: if `next` is still the keypair with `local_index`, it becomes current
    /// and the old current becomes previous. Returns whether it did.
    pub fn promote_next(&mut self, local_index: u32) -> bool {
        if self
            .next
            .as_ref()
            .is_some_and(|s| s.local_index() == local_index)
        {
            self.previous = self.current.take();
            self.current = self.next.take();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests;
