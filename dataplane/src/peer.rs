//! What the data path shares about one peer: its keypairs, its endpoint, and the activity the
//! control thread turns into timer events.
//!
//! Workers seal and open through [`PeerShared`] with `&self` (a read lock on the keypairs, an
//! atomic send counter, a per-session replay mutex); the control thread installs and retires
//! keypairs with the write lock. Activity is a handful of atomics holding the last time each
//! kind of packet passed, so workers never message control per packet: control reads them on
//! its tick and replays them into the sans-IO timer machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::DropReason;
use crate::route::PeerSlot;
use crate::session::{KeypairSlots, REKEY_ON_RECEIVE_AGE, Received, Session};

/// A timestamp cell: nanoseconds since the caller's origin plus one, 0 = never.
#[derive(Debug, Default)]
struct Stamp(AtomicU64);

impl Stamp {
    fn set(&self, now: Duration) {
        let nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX - 1);
        self.0.store(nanos + 1, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }
}

/// When each kind of authenticated packet last passed, as the timers need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Last data (non-keepalive) message sent.
    pub data_sent: Option<Duration>,
    /// Last data (non-keepalive) message received.
    pub data_received: Option<Duration>,
    /// Last authenticated message of any kind sent.
    pub any_sent: Option<Duration>,
    /// Last authenticated message of any kind received.
    pub any_received: Option<Duration>,
    /// Last time a responder's `next` keypair was confirmed by the initiator's first data.
    pub confirmed: Option<Duration>,
}

/// One peer as the workers see it.
#[derive(Debug)]
pub struct PeerShared {
    slot: PeerSlot,
    sessions: RwLock<KeypairSlots>,
    endpoint: Mutex<Option<SocketAddr>>,
    data_sent: Stamp,
    data_received: Stamp,
    any_sent: Stamp,
    any_received: Stamp,
    confirmed: Stamp,
    wants_handshake: AtomicBool,
    rx_bytes: AtomicU64,
    tx_bytes: AtomicU64,
}

impl PeerShared {
    /// A peer in table slot `slot`, at its configured `endpoint` if it has one.
    pub fn new(slot: PeerSlot, endpoint: Option<SocketAddr>) -> Self {
        PeerShared {
            slot,
            sessions: RwLock::new(KeypairSlots::new()),
            endpoint: Mutex::new(endpoint),
            data_sent: Stamp::default(),
            data_received: Stamp::default(),
            any_sent: Stamp::default(),
            any_received: Stamp::default(),
            confirmed: Stamp::default(),
            wants_handshake: AtomicBool::new(false),
            rx_bytes: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
        }
    }

    /// The peer's slot in the node's peer table.
    pub fn slot(&self) -> PeerSlot {
        self.slot
    }

    /// Read access to the keypairs.
    pub fn sessions(&self) -> RwLockReadGuard<'_, KeypairSlots> {
        self.sessions.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn sessions_mut(&self) -> RwLockWriteGuard<'_, KeypairSlots> {
        self.sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs a keypair from a completed handshake (see [`KeypairSlots::install`]).
    pub fn install(&self, session: Session) {
        self.sessions_mut().install(session);
    }

    /// Drops every keypair (their keys are wiped).
    pub fn clear(&self) {
        self.sessions_mut().clear();
    }

    /// Where packets to this peer go now.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        *self.endpoint.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the peer to `addr` (roaming, or a handshake from a new address).
    pub fn set_endpoint(&self, addr: SocketAddr) {
        *self.endpoint.lock().unwrap_or_else(PoisonError::into_inner) = Some(addr);
    }

    /// Whether the data path asked for a handshake since the last call (no usable session,
    /// or one due for rekeying); clears the request.
    pub fn take_handshake_request(&self) -> bool {
        self.wants_handshake.swap(false, Ordering::Relaxed)
    }

    fn request_handshake(&self) {
        if !self.wants_handshake.load(Ordering::Relaxed) {
            self.wants_handshake.store(true, Ordering::Relaxed);
        }
    }

    /// Records an authenticated message control sent itself (handshake or keepalive).
    pub fn note_sent(&self, now: Duration) {
        self.any_sent.set(now);
    }

    /// Bytes of plaintext received and sent.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.rx_bytes.load(Ordering::Relaxed),
            self.tx_bytes.load(Ordering::Relaxed),
        )
    }

    /// A snapshot of the activity stamps.
    pub fn activity(&self) -> Activity {
        Activity {
            data_sent: self.data_sent.get(),
            data_received: self.data_received.get(),
            any_sent: self.any_sent.get(),
            any_received: self.any_received.get(),
            confirmed: self.confirmed.get(),
        }
    }

    /// Seals `buf[16..16 + payload_len]` on the current keypair; returns the datagram length
    /// and destination. Without a usable keypair, or when it is due for rekeying, asks control
    /// for a handshake.
    pub fn encapsulate(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(usize, SocketAddr), DropReason> {
        let dst = self.endpoint().ok_or(DropReason::NoEndpoint)?;
        let sessions = self.sessions();
        let sent = sessions.encapsulate(now, buf, payload_len, mtu);
        let rekey = sessions.current().is_none_or(|s| s.needs_rekey(now));
        drop(sessions);
        if rekey || sent.is_err() {
            self.request_handshake();
        }
        let len = sent.map_err(|_| DropReason::NoSession)?;
        self.any_sent.set(now);
        if payload_len > 0 {
            self.data_sent.set(now);
            self.tx_bytes
                .fetch_add(payload_len as u64, Ordering::Relaxed);
        }
        Ok((len, dst))
    }

    /// Opens a data message from `src`. On success the peer roams to `src`, its activity is
    /// recorded, a confirmed `next` keypair is promoted, and an initiator whose keypair nears
    /// REJECT_AFTER_TIME asks for a rekey.
    pub fn decapsulate(
        &self,
        now: Duration,
        src: SocketAddr,
        packet: &mut [u8],
    ) -> Result<Received, DropReason> {
        let sessions = self.sessions();
        let received = sessions.decapsulate(now, packet)?;
        let rekey = sessions.current().is_some_and(|s| {
            s.is_initiator() && now.saturating_sub(s.created()) >= REKEY_ON_RECEIVE_AGE
        });
        drop(sessions);
        if received.confirmed_next && self.sessions_mut().promote_next(received.local_index) {
            self.confirmed.set(now);
        }
        if rekey {
            self.request_handshake();
        }
        self.set_endpoint(src);
        self.any_received.set(now);
        if received.plaintext_len > 0 {
            self.data_received.set(now);
            self.rx_bytes
                .fetch_add(received.plaintext_len as u64, Ordering::Relaxed);
        }
        Ok(received)
    }
}
