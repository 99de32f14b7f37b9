//! The per-packet pipeline, free of I/O: a TUN packet becomes a sealed datagram for its peer,
//! a datagram becomes a packet for the TUN, a frame forwarded to the next link, or a message
//! for control. Workers run it between their reads and writes; benchmarks run it in memory.
//!
//! A link's plaintext is an IP packet (first nibble 4 or 6), empty (a keepalive) or a rovy
//! frame (first byte below 0x40, DESIGN §1). Frames that travel along a label are switched here,
//! in the worker: rewritten and re-sealed in place for the next link, with no copy and no trip
//! through control; frames for this node and one-link routing messages go to control.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::Guard;

use crate::DropReason;
use crate::buf::{LINK_PAYLOAD_AT, PACKET_AT};
use crate::index::IndexTable;
use crate::link_addr::LinkAddr;
use crate::peer::{PeerShared, Sealed};
use crate::route::PeerSlot;
use crate::session::sealed_len;
use crate::switch::{Switched, route_error_in_place, switch};
use crate::tables::{SharedTables, Tables};
use crate::wire::frame::{FrameKind, ROUTE_ERROR_LEN};
use crate::wire::{self, MessageType, ip};

/// Least time between two ROUTE_ERRORs a node sends: errors answer traffic that cannot go on,
/// so a flood of it must not become a flood of errors.
pub const ROUTE_ERROR_INTERVAL: Duration = Duration::from_millis(10);

/// What a datagram from the network turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Write `buf[at..at + len]` to the TUN.
    Deliver {
        /// Where the IP packet starts in the datagram's buffer.
        at: usize,
        /// Length of the IP packet (padding stripped).
        len: usize,
    },
    /// A routed frame re-sealed in place for its next link: send `buf[at..at + len]` to `dst`.
    Forward {
        /// Where the new datagram starts.
        at: usize,
        /// Its length.
        len: usize,
        /// The next link's address.
        dst: LinkAddr,
    },
    /// A routed frame whose next link is dead: count it as [`DropReason::DeadSlot`], and send
    /// the ROUTE_ERROR made of it, sealed in place, `buf[at..at + len]`, back to `dst`.
    Bounce {
        /// Where the ROUTE_ERROR's datagram starts.
        at: usize,
        /// Its length.
        len: usize,
        /// The link the failed frame came in on.
        dst: LinkAddr,
    },
    /// A rovy frame for control: a one-link routing message, or a routed frame whose label
    /// ends here. The frame is `buf[at..at + len]` (with the link's padding).
    Control {
        /// Where the frame starts.
        at: usize,
        /// Its length.
        len: usize,
        /// The configured peer whose link it came in on.
        peer: PeerSlot,
    },
    /// An authenticated keepalive: nothing to deliver.
    Keepalive,
    /// A handshake message or cookie reply: hand it to control as it is.
    Handshake,
}

/// What every worker shares: the index table, the tables it routes by, the MTU.
#[derive(Debug)]
pub struct Dataplane {
    index: Arc<IndexTable>,
    tables: SharedTables,
    mtu: usize,
    /// When the next ROUTE_ERROR may go, in nanoseconds on the callers' clock.
    route_error_after: AtomicU64,
}

impl Dataplane {
    /// A data plane starting with `tables`.
    pub fn new(index: Arc<IndexTable>, tables: Tables, mtu: usize) -> Self {
        Dataplane {
            index,
            tables: SharedTables::new(tables),
            mtu,
            route_error_after: AtomicU64::new(0),
        }
    }

    /// The TUN MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The current tables; hold the guard for one packet or one batch.
    pub fn tables(&self) -> Guard<Arc<Tables>> {
        self.tables.load()
    }

    /// The shared tables, for control to replace.
    pub fn shared_tables(&self) -> &SharedTables {
        &self.tables
    }

    /// Seals the TUN packet at `buf[PACKET_AT..PACKET_AT + len]` (see [`crate::buf`]) for the
    /// peer that routes its destination, or stages it while that peer has no session (see
    /// [`PeerShared::encapsulate`]).
    pub fn outbound(
        &self,
        now: Duration,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Sealed, DropReason> {
        let packet = buf
            .get(PACKET_AT..PACKET_AT + len)
            .ok_or(DropReason::InvalidInnerPacket)?;
        let tables = self.tables();
        let peer = route(&tables, packet)?;
        peer.encapsulate(now, buf, len, self.mtu)
    }

    /// Opens the datagram in `buf` from `src`. Data is decrypted in place; an IP packet is
    /// delivered only if its inner source is allowed for the peer that sealed it; a rovy frame
    /// is switched or handed to control (see the module docs).
    pub fn inbound(
        &self,
        now: Duration,
        src: LinkAddr,
        buf: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        if wire::message_type(buf)? != MessageType::Data {
            return Ok(Inbound::Handshake);
        }
        let receiver = wire::DataHeader::new_checked(&*buf)?.receiver_index();
        self.index
            .with(receiver, |peer| {
                let received = peer.decapsulate(now, src, buf)?;
                let len = received.plaintext_len;
                let first = match buf.get(LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + len) {
                    Some([]) => return Ok(Inbound::Keepalive),
                    Some([first, ..]) => *first,
                    None => return Err(DropReason::InvalidInnerPacket),
                };
                let tables = self.tables();
                if first < FrameKind::FIRST_NON_FRAME {
                    return self.frame(now, &tables, peer, buf, len);
                }
                let plaintext = &buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + len];
                let info = ip::parse(plaintext)?;
                if !tables.routes.allows_source(peer.slot(), info.src) {
                    return Err(DropReason::SourceNotAllowed);
                }
                Ok(Inbound::Deliver {
                    at: LINK_PAYLOAD_AT,
                    len: info.len,
                })
            })
            .ok_or(DropReason::UnknownIndex)?
    }

    /// The rovy frame of `len` bytes at `buf[LINK_PAYLOAD_AT..]`, opened from `peer`.
    fn frame(
        &self,
        now: Duration,
        tables: &Tables,
        peer: &PeerShared,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Inbound, DropReason> {
        let frame = &mut buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + len];
        let kind = FrameKind::classify(frame, tables.is_rovy(peer.slot()))?;
        let control = Inbound::Control {
            at: LINK_PAYLOAD_AT,
            len,
            peer: peer.slot(),
        };
        if !kind.is_routed() {
            return Ok(control);
        }
        let ingress = tables
            .links
            .slot_of(peer.slot())
            .ok_or(DropReason::DeadSlot)?;
        match switch(frame, ingress, &tables.links)? {
            Switched::Local => Ok(control),
            Switched::Forward { slot } => {
                let next = tables.links.peer(slot).ok_or(DropReason::DeadSlot)?;
                let (len, dst) = next.seal_link(now, buf, len, self.mtu)?;
                Ok(Inbound::Forward { at: 0, len, dst })
            }
            Switched::RouteError { code, .. } => {
                // The ROUTE_ERROR is sealed over the failed frame's datagram, which is all the
                // room there is (the next datagram of a batch may follow it); a frame shorter
                // than the error, a PING, is dropped rather than sealed past its end.
                if sealed_len(ROUTE_ERROR_LEN, self.mtu) > buf.len()
                    || !self.may_send_route_error(now)
                {
                    return Err(DropReason::DeadSlot);
                }
                let error = buf
                    .get_mut(LINK_PAYLOAD_AT..)
                    .ok_or(DropReason::FrameTruncated)?;
                let error_len = route_error_in_place(error, code)?;
                let (len, dst) = peer.seal_link(now, buf, error_len, self.mtu)?;
                Ok(Inbound::Bounce { at: 0, len, dst })
            }
        }
    }

    /// Whether a ROUTE_ERROR may go now: at most one per [`ROUTE_ERROR_INTERVAL`] for the
    /// whole node, shared by its workers without a lock.
    fn may_send_route_error(&self, now: Duration) -> bool {
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let after = self.route_error_after.load(Ordering::Relaxed);
        let next = now.saturating_add(ROUTE_ERROR_INTERVAL.as_nanos() as u64);
        now >= after
            && self
                .route_error_after
                .compare_exchange(after, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// The peer whose allowed IPs route the destination of the IP packet `packet`. Segments of one
/// super-packet share their addresses, so the offload path routes them once.
pub fn route<'t>(tables: &'t Tables, packet: &[u8]) -> Result<&'t PeerShared, DropReason> {
    let info = ip::parse(packet)?;
    let slot = tables.routes.lookup(info.dst).ok_or(DropReason::NoRoute)?;
    tables
        .peer(slot)
        .map(|peer| &**peer)
        .ok_or(DropReason::NoRoute)
}
