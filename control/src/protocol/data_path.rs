//! The seam between a tunnel and the data path that carries its packets.
//!
//! Control and the workers share, per tunnel, its keypairs, its address and the activity stamps
//! the workers write; and, per endpoint, the receiver-index table the workers look data
//! messages up in. Links use the dataplane's [`PeerShared`] and [`IndexTable`]; upper sessions
//! will bring their own state with another address type. These traits are what an endpoint
//! needs of either, so the protocol code is the same for both.

use std::ops::Range;
use std::sync::{Arc, RwLockReadGuard};
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::{Activity, PeerShared};
use rovy_dataplane::route::PeerSlot;
use rovy_dataplane::session::{self, KeypairSlots, Session};

use super::Address;

/// The state one tunnel shares with the workers.
pub trait TunnelShared: Send + Sync + Sized + 'static {
    /// Where the tunnel's messages go to and come from.
    type Addr: Address;
    /// The receiver-index table the tunnel's sessions are published in.
    type Index: IndexDemux<Self>;

    /// The state of a new tunnel in table slot `slot`, at `endpoint` if it is known.
    fn new(slot: PeerSlot, endpoint: Option<Self::Addr>) -> Self;

    /// The tunnel's slot, as given to [`TunnelShared::new`].
    fn slot(&self) -> PeerSlot;

    /// Where messages to the tunnel go now.
    fn endpoint(&self) -> Option<Self::Addr>;

    /// Moves the tunnel to `addr` (a handshake from a new address).
    fn set_endpoint(&self, addr: Self::Addr);

    /// Read access to the keypairs.
    fn sessions(&self) -> RwLockReadGuard<'_, KeypairSlots>;

    /// Installs a keypair from a completed handshake.
    fn install(&self, session: Session);

    /// Drops every keypair.
    fn clear_sessions(&self);

    /// The workers' activity stamps.
    fn activity(&self) -> Activity;

    /// Whether the data path asked for a handshake since the last call; clears the request.
    fn take_handshake_request(&self) -> bool;

    /// Forgets the packets staged for a session (the handshake gave up); returns how many.
    fn clear_staged(&self) -> usize;

    /// Seals the packet at the data path's payload offset in `buf` on the current keypair;
    /// returns where the datagram is in `buf` and where to send it.
    fn seal(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(Range<usize>, Self::Addr), DropReason>;

    /// Opens a data message from `src` in place (and records it as the workers do).
    fn decapsulate(
        &self,
        now: Duration,
        src: Self::Addr,
        packet: &mut [u8],
    ) -> Result<session::Received, DropReason>;
}

/// Receiver index → tunnel state, shared with the workers.
pub trait IndexDemux<S>: Default + Send + Sync + 'static {
    /// Points `index` at `tunnel`.
    fn insert(&self, index: u32, tunnel: Arc<S>);
    /// Forgets `index`.
    fn remove(&self, index: u32);
    /// Whether `index` is in use.
    fn contains(&self, index: u32) -> bool;
    /// Runs `f` on the tunnel state holding `index`, if any.
    fn with<R>(&self, index: u32, f: impl FnOnce(&S) -> R) -> Option<R>;
}

impl TunnelShared for PeerShared {
    type Addr = LinkAddr;
    type Index = IndexTable;

    fn new(slot: PeerSlot, endpoint: Option<LinkAddr>) -> Self {
        PeerShared::new(slot, endpoint)
    }

    fn slot(&self) -> PeerSlot {
        PeerShared::slot(self)
    }

    fn endpoint(&self) -> Option<LinkAddr> {
        PeerShared::endpoint(self)
    }

    fn set_endpoint(&self, addr: LinkAddr) {
        PeerShared::set_endpoint(self, addr);
    }

    fn sessions(&self) -> RwLockReadGuard<'_, KeypairSlots> {
        PeerShared::sessions(self)
    }

    fn install(&self, session: Session) {
        PeerShared::install(self, session);
    }

    fn clear_sessions(&self) {
        PeerShared::clear(self);
    }

    fn activity(&self) -> Activity {
        PeerShared::activity(self)
    }

    fn take_handshake_request(&self) -> bool {
        PeerShared::take_handshake_request(self)
    }

    fn clear_staged(&self) -> usize {
        PeerShared::clear_staged(self)
    }

    fn seal(
        &self,
        now: Duration,
        buf: &mut [u8],
        payload_len: usize,
        mtu: usize,
    ) -> Result<(Range<usize>, LinkAddr), DropReason> {
        let at = PeerShared::ENCAP.datagram_at();
        PeerShared::seal(self, now, buf, payload_len, mtu).map(|(len, dst)| (at..at + len, dst))
    }

    fn decapsulate(
        &self,
        now: Duration,
        src: LinkAddr,
        packet: &mut [u8],
    ) -> Result<session::Received, DropReason> {
        PeerShared::decapsulate(self, now, src, packet)
    }
}

impl IndexDemux<PeerShared> for IndexTable {
    fn insert(&self, index: u32, tunnel: Arc<PeerShared>) {
        IndexTable::insert(self, index, tunnel);
    }

    fn remove(&self, index: u32) {
        IndexTable::remove(self, index);
    }

    fn contains(&self, index: u32) -> bool {
        IndexTable::contains(self, index)
    }

    fn with<R>(&self, index: u32, f: impl FnOnce(&PeerShared) -> R) -> Option<R> {
        IndexTable::with(self, index, f)
    }
}
