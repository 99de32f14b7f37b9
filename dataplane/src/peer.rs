//! What the data path shares about one peer: its keypairs, its endpoint, and the activity the
//! control thread turns into timer events.
//!
//! Workers seal and open through [`PeerShared`] with `&self` (a read lock on the keypairs, an
//! atomic send counter, a per-session replay mutex); the control thread installs and retires
//! keypairs with the write lock. Activity is a handful of atomics holding the last time each
//! kind of packet passed, so workers never message control per packet: control reads them on
//! its tick and replays them into the sans-IO timer machine.
//!
//! Packets that find no session are staged here (see [`crate::staged`]) until control has
//! completed the handshake they asked for and calls [`PeerShared::send_staged`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::DropReason;
#[cfg(doc)]
use crate::buf::LINK_PAYLOAD_AT;
use crate::buf::{Encap, PACKET_AT};
use crate::link_addr::LinkAddr;
use crate::route::PeerSlot;
use crate::session::{KeypairSlots, REKEY_ON_RECEIVE_AGE, Received, Session};
use crate::staged::{Staged, StagedPackets};

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

/// What became of a packet handed to [`PeerShared::encapsulate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// Sealed: send `buf[at..at + len]` to `dst`.
    Datagram {
        /// Where the datagram starts in the buffer (see [`crate::buf::Encap`]).
        at: usize,
        /// Datagram length.
        len: usize,
        /// Where to send it.
        dst: LinkAddr,
    },
    /// The packet cannot go (no route to its fc00 destination, or too big for the overlay):
    /// the pipeline wrote the ICMPv6 error that says so at `buf[at..at + len]`, for the TUN.
    Reply {
        /// Where the ICMPv6 packet starts.
        at: usize,
        /// Its length.
        len: usize,
    },
    /// No session yet: held until the handshake completes; nothing to send now.
    Staged {
        /// The first packet staged since the queue was last empty: wake control, so the
        /// handshake this packet asked for starts now rather than on its next tick.
        first: bool,
    },
}

/// Where packets to a peer go, and whether routing holds them there.
#[derive(Debug, Clone, Copy, Default)]
struct Endpoint {
    addr: Option<LinkAddr>,
    /// Set by [`PeerShared::hold_endpoint`]: what the peer is heard from does not move it.
    held: bool,
}

/// One peer as the workers see it.
#[derive(Debug)]
pub struct PeerShared {
    slot: PeerSlot,
    sessions: RwLock<KeypairSlots>,
    endpoint: Mutex<Endpoint>,
    data_sent: Stamp,
    data_received: Stamp,
    any_sent: Stamp,
    any_received: Stamp,
    confirmed: Stamp,
    wants_handshake: AtomicBool,
    rx_bytes: AtomicU64,
    tx_bytes: AtomicU64,
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    staged: Mutex<StagedPackets>,
    /// Packets in `staged`, readable without the lock.
    staged_len: AtomicUsize,
}

impl PeerShared {
    /// The headers a packet to this peer gets: a peer is a link, so only the link session's.
    pub const ENCAP: Encap = Encap::Direct;

    /// A peer in table slot `slot`, at its configured `endpoint` if it has one.
    pub fn new(slot: PeerSlot, endpoint: Option<LinkAddr>) -> Self {
        PeerShared {
            slot,
            sessions: RwLock::new(KeypairSlots::new()),
            endpoint: Mutex::new(Endpoint {
                addr: endpoint,
                held: false,
            }),
            data_sent: Stamp::default(),
            data_received: Stamp::default(),
            any_sent: Stamp::default(),
            any_received: Stamp::default(),
            confirmed: Stamp::default(),
            wants_handshake: AtomicBool::new(false),
            rx_bytes: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            rx_packets: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            staged: Mutex::new(StagedPackets::new()),
            staged_len: AtomicUsize::new(0),
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
    pub fn endpoint(&self) -> Option<LinkAddr> {
        self.endpoint_mut().addr
    }

    /// Moves the peer to `addr`, where it was just heard from (roaming, or a handshake from a
    /// new address), unless routing holds its endpoint ([`PeerShared::hold_endpoint`]).
    pub fn set_endpoint(&self, addr: LinkAddr) {
        let mut endpoint = self.endpoint_mut();
        if !endpoint.held {
            endpoint.addr = Some(addr);
        }
    }

    /// Routing chose `addr` for this peer: it stays there, whatever path the peer's own
    /// frames take, until routing moves or releases it. An overlay destination's frames come
    /// back along the routes it chose; were each end to follow the other's way back, both
    /// could stay on a path their routes have left, and never return to the better one.
    pub fn hold_endpoint(&self, addr: LinkAddr) {
        *self.endpoint_mut() = Endpoint {
            addr: Some(addr),
            held: true,
        };
    }

    /// Routing no longer holds the endpoint: the peer roams again ([`PeerShared::set_endpoint`]).
    pub fn release_endpoint(&self) {
        self.endpoint_mut().held = false;
    }

    fn endpoint_mut(&self) -> MutexGuard<'_, Endpoint> {
        self.endpoint.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Data messages (keepalives aside) received and sent.
    pub fn packets(&self) -> (u64, u64) {
        (
            self.rx_packets.load(Ordering::Relaxed),
            self.tx_packets.load(Ordering::Relaxed),
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

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + payload_len]` (see [`crate::buf`]) on
    /// the current keypair, or stages the packet when
    /// there is none (a keepalive, `payload_len` 0, is never staged). Fails with
    /// [`DropReason::NoSession`] when staging it pushed out the oldest staged packet, or the
    /// packet is longer than `mtu`, and as [`PeerShared::seal`] otherwise.
    pub fn encapsulate(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<Sealed, DropReason> {
        self.encapsulate_with(buf, payload_len, mtu, |buf| {
            let (len, dst) = self.seal(now, buf, payload_len, mtu)?;
            Ok(Sealed::Datagram {
                at: Self::ENCAP.datagram_at(),
                len,
                dst,
            })
        })
    }

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + payload_len]` with `seal`, or stages it
    /// when `seal` finds no session, as [`PeerShared::encapsulate`] does; `seal` may wrap the
    /// packet in more than this peer's session (an upper session's packet also goes into a
    /// frame and a link session).
    pub fn encapsulate_with(
        &self,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
        seal: impl FnOnce(&mut [u8]) -> Result<Sealed, DropReason>,
    ) -> Result<Sealed, DropReason> {
        match seal(buf) {
            Ok(sealed) => Ok(sealed),
            Err(DropReason::NoSession) if payload_len > 0 => {
                let packet = buf
                    .get(PACKET_AT..PACKET_AT + payload_len)
                    .ok_or(DropReason::InvalidInnerPacket)?;
                let mut staged = self.staged();
                let first = staged.is_empty();
                let result = staged.push(packet, mtu);
                self.staged_len.store(staged.len(), Ordering::Relaxed);
                match result {
                    Staged::Held => Ok(Sealed::Staged { first }),
                    Staged::DroppedOldest | Staged::TooLong => Err(DropReason::NoSession),
                }
            }
            Err(reason) => Err(reason),
        }
    }

    fn staged(&self) -> MutexGuard<'_, StagedPackets> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Packets staged while waiting for a session.
    pub fn staged_len(&self) -> usize {
        self.staged_len.load(Ordering::Relaxed)
    }

    /// Seals the staged packets, oldest first, on the current keypair and hands each datagram
    /// and its destination to `send`; stops, keeping the rest, at the first that cannot be
    /// sealed (no session yet). Returns how many were sent.
    pub fn send_staged(
        &self,
        now: Duration,
        mtu: usize,
        mut send: impl FnMut(&[u8], LinkAddr),
    ) -> usize {
        self.send_staged_with(|slot, len| {
            let Ok((datagram_len, dst)) = self.seal(now, slot, len, mtu) else {
                return false;
            };
            let at = Self::ENCAP.datagram_at();
            send(&slot[at..at + datagram_len], dst);
            true
        })
    }

    /// Hands the staged packets, oldest first, to `seal_and_send` (a buffer laid out as
    /// [`crate::buf`] says, the packet at `PACKET_AT`, and its length), which returns whether it
    /// sent the packet; stops, keeping the rest, at the first it did not. Returns how many were
    /// sent.
    pub fn send_staged_with(
        &self,
        mut seal_and_send: impl FnMut(&mut [u8], usize) -> bool,
    ) -> usize {
        if self.staged_len() == 0 {
            return 0;
        }
        let mut staged = self.staged();
        let mut sent = 0;
        while let Some((slot, len)) = staged.front_mut() {
            if !seal_and_send(slot, len) {
                break;
            }
            staged.pop_front();
            sent += 1;
        }
        self.staged_len.store(staged.len(), Ordering::Relaxed);
        sent
    }

    /// Forgets the staged packets (the handshake gave up); returns how many there were.
    pub fn clear_staged(&self) -> usize {
        let mut staged = self.staged();
        let dropped = staged.len();
        staged.clear();
        self.staged_len.store(0, Ordering::Relaxed);
        dropped
    }

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + payload_len]` on the current keypair
    /// into a link datagram at `buf[Self::ENCAP.datagram_at()..]`; returns the datagram
    /// length and destination. Without a usable keypair, or when it is due for rekeying, asks
    /// control for a handshake.
    pub fn seal(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(usize, LinkAddr), DropReason> {
        let datagram = buf
            .get_mut(Self::ENCAP.datagram_at()..)
            .ok_or(DropReason::BadLength)?;
        self.seal_link(now, datagram, payload_len, mtu)
    }

    /// Seals the link payload at `datagram[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + payload_len]`
    /// (a packet, or a frame this node forwards) into a data message from `datagram[0]` on;
    /// returns its length and destination. Asks for a handshake as [`PeerShared::seal`] does.
    pub fn seal_link(
        &self,
        now: Duration,
        datagram: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(usize, LinkAddr), DropReason> {
        let dst = self.endpoint().ok_or(DropReason::NoEndpoint)?;
        let len = self.seal_message(now, datagram, payload_len, mtu)?;
        Ok((len, dst))
    }

    /// Seals the payload at `message[16..16 + payload_len]` into a data message of this peer's
    /// session from `message[0]` on, wherever it goes: the core of every seal. Returns its
    /// length; asks for a handshake as [`PeerShared::seal`] does.
    pub fn seal_message(
        &self,
        now: Duration,
        message: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<usize, DropReason> {
        let sessions = self.sessions();
        let sent = sessions.encapsulate(now, message, payload_len, mtu);
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
            self.tx_packets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(len)
    }

    /// Opens a data message from `src`. On success the peer roams to `src` (unless routing
    /// holds its endpoint), its activity is recorded, a confirmed `next` keypair is promoted,
    /// and an initiator whose keypair nears REJECT_AFTER_TIME asks for a rekey.
    pub fn decapsulate(
        &self,
        now: Duration,
        src: LinkAddr,
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
            self.rx_packets.fetch_add(1, Ordering::Relaxed);
        }
        Ok(received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::{LINK_PAYLOAD_AT, buffer_len};
    use crate::crypto::SymmetricKey;
    use crate::staged::STAGED_CAPACITY;

    const MTU: usize = 1420;
    const T0: Duration = Duration::from_secs(1);

    fn endpoint() -> LinkAddr {
        LinkAddr::from(std::net::SocketAddr::from(([10, 0, 0, 2], 51820)))
    }

    /// An initiator's keypair to install at the peer, and the remote end's, to open with.
    fn sessions() -> (Session, Session) {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let ours = Session::new(
            7,
            9,
            SymmetricKey::from_bytes(a),
            SymmetricKey::from_bytes(b),
            true,
            T0,
        );
        let theirs = Session::new(
            9,
            7,
            SymmetricKey::from_bytes(b),
            SymmetricKey::from_bytes(a),
            false,
            T0,
        );
        (ours, theirs)
    }

    /// Offers `payload` to the peer as a TUN packet.
    fn offer(peer: &PeerShared, payload: &[u8]) -> Result<Sealed, DropReason> {
        let mut buf = vec![0u8; buffer_len(MTU)];
        buf[PACKET_AT..PACKET_AT + payload.len()].copy_from_slice(payload);
        peer.encapsulate(T0, &mut buf, payload.len(), MTU)
    }

    #[test]
    fn packets_without_a_session_are_staged_then_sent_in_order_once_it_exists() {
        let peer = PeerShared::new(0, Some(endpoint()));
        let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        assert_eq!(
            offer(&peer, &payloads[0]),
            Ok(Sealed::Staged { first: true })
        );
        assert!(
            peer.take_handshake_request(),
            "staging asks for a handshake"
        );
        assert_eq!(
            offer(&peer, &payloads[1]),
            Ok(Sealed::Staged { first: false })
        );
        assert_eq!(
            offer(&peer, &payloads[2]),
            Ok(Sealed::Staged { first: false })
        );
        assert_eq!(
            offer(&peer, &[]),
            Err(DropReason::NoSession),
            "keepalives are not staged"
        );
        assert_eq!(peer.staged_len(), 3);

        let mut sent = Vec::new();
        let mut send = |datagram: &[u8], dst| sent.push((datagram.to_vec(), dst));
        assert_eq!(peer.send_staged(T0, MTU, &mut send), 0, "still no session");
        assert_eq!(peer.staged_len(), 3);

        let (ours, theirs) = sessions();
        peer.install(ours);
        assert_eq!(peer.send_staged(T0, MTU, &mut send), 3);
        assert_eq!(peer.staged_len(), 0);
        assert_eq!(peer.send_staged(T0, MTU, &mut send), 0);
        assert_eq!(sent.len(), 3);
        for ((datagram, dst), payload) in sent.iter_mut().zip(&payloads) {
            assert_eq!(*dst, endpoint());
            let n = theirs.decapsulate(T0, datagram).unwrap();
            let opened = &datagram[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + payload.len()];
            assert_eq!(opened, &payload[..]);
            assert!(n >= payload.len());
        }
        assert_eq!(peer.traffic().1, 100 + 101 + 102);
        assert!(matches!(
            offer(&peer, b"now"),
            Ok(Sealed::Datagram { dst, .. }) if dst == endpoint()
        ));
    }

    #[test]
    fn the_oldest_staged_packet_goes_when_full_and_clear_forgets_them() {
        let peer = PeerShared::new(0, Some(endpoint()));
        for i in 0..STAGED_CAPACITY {
            assert!(matches!(
                offer(&peer, &[i as u8; 60]),
                Ok(Sealed::Staged { .. })
            ));
        }
        assert_eq!(offer(&peer, &[0xff; 60]), Err(DropReason::NoSession));
        assert_eq!(offer(&peer, &[0; MTU + 1]), Err(DropReason::NoSession));
        assert_eq!(peer.staged_len(), STAGED_CAPACITY);
        assert_eq!(peer.clear_staged(), STAGED_CAPACITY);
        assert_eq!(peer.staged_len(), 0);

        let no_endpoint = PeerShared::new(1, None);
        assert_eq!(offer(&no_endpoint, b"x"), Err(DropReason::NoEndpoint));
        assert_eq!(no_endpoint.staged_len(), 0);
    }

    #[test]
    fn a_held_endpoint_stays_where_routing_put_it_until_released() {
        let (ours, theirs) = sessions();
        let peer = PeerShared::new(0, Some(endpoint()));
        peer.install(ours);
        let elsewhere = LinkAddr::from(std::net::SocketAddr::from(([10, 0, 0, 3], 51820)));
        let routed = LinkAddr::from(std::net::SocketAddr::from(([10, 0, 0, 4], 51820)));
        // Keepalives: authenticated data like any other, and they roam a peer as well.
        let keepalive = || {
            let mut buf = vec![0u8; buffer_len(MTU)];
            let len = theirs.encapsulate(T0, &mut buf, 0, MTU).unwrap();
            buf.truncate(len);
            buf
        };

        peer.decapsulate(T0, elsewhere, &mut keepalive()).unwrap();
        assert_eq!(
            peer.endpoint(),
            Some(elsewhere),
            "a peer roams to where it is heard"
        );

        peer.hold_endpoint(routed);
        peer.decapsulate(T0, elsewhere, &mut keepalive()).unwrap();
        peer.set_endpoint(elsewhere);
        assert_eq!(
            peer.endpoint(),
            Some(routed),
            "a held endpoint does not roam"
        );
        peer.hold_endpoint(endpoint());
        assert_eq!(
            peer.endpoint(),
            Some(endpoint()),
            "routing moves what it holds"
        );

        peer.release_endpoint();
        assert_eq!(
            peer.endpoint(),
            Some(endpoint()),
            "releasing keeps the address"
        );
        peer.decapsulate(T0, elsewhere, &mut keepalive()).unwrap();
        assert_eq!(peer.endpoint(), Some(elsewhere), "released, it roams again");
    }
}
