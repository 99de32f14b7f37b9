//! The per-packet pipeline, free of I/O: a TUN packet becomes a sealed datagram for its peer,
//! a datagram becomes a packet for the TUN (or a handshake for control). Workers run it between
//! their reads and writes; benchmarks run it in memory.

use std::sync::Arc;
use std::time::Duration;

use crate::DropReason;
use crate::buf::{LINK_PAYLOAD_AT, PACKET_AT};
use crate::index::IndexTable;
use crate::link_addr::LinkAddr;
use crate::peer::{PeerShared, Sealed};
use crate::route::RoutingTable;
use crate::wire::{self, MessageType, ip};

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
    /// An authenticated keepalive: nothing to deliver.
    Keepalive,
    /// A handshake message or cookie reply: hand it to control as it is.
    Handshake,
}

/// What every worker shares: peers, their index table and the routing table.
#[derive(Debug)]
pub struct Dataplane {
    index: Arc<IndexTable>,
    routes: RoutingTable,
    peers: Vec<Arc<PeerShared>>,
    mtu: usize,
}

impl Dataplane {
    /// A data plane over `peers` (indexed by slot), routed by `routes`.
    pub fn new(
        index: Arc<IndexTable>,
        routes: RoutingTable,
        peers: Vec<Arc<PeerShared>>,
        mtu: usize,
    ) -> Self {
        Dataplane {
            index,
            routes,
            peers,
            mtu,
        }
    }

    /// The TUN MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The peers, by slot.
    pub fn peers(&self) -> &[Arc<PeerShared>] {
        &self.peers
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
        let peer = self.route(packet)?;
        peer.encapsulate(now, buf, len, self.mtu)
    }

    /// The peer that routes the destination of the IP packet `packet`. Segments of one
    /// super-packet share their addresses, so the offload path routes them once.
    pub fn route(&self, packet: &[u8]) -> Result<&PeerShared, DropReason> {
        let info = ip::parse(packet)?;
        let slot = self.routes.lookup(info.dst).ok_or(DropReason::NoRoute)?;
        self.peers
            .get(usize::from(slot))
            .map(|peer| &**peer)
            .ok_or(DropReason::NoRoute)
    }

    /// Opens the datagram in `buf` from `src`. Data is decrypted in place and delivered only if
    /// its inner source is allowed for the peer that sealed it.
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
                if received.plaintext_len == 0 {
                    return Ok(Inbound::Keepalive);
                }
                let plaintext = buf
                    .get(LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + received.plaintext_len)
                    .ok_or(DropReason::InvalidInnerPacket)?;
                let info = ip::parse(plaintext)?;
                if !self.routes.allows_source(peer.slot(), info.src) {
                    return Err(DropReason::SourceNotAllowed);
                }
                Ok(Inbound::Deliver {
                    at: LINK_PAYLOAD_AT,
                    len: info.len,
                })
            })
            .ok_or(DropReason::UnknownIndex)?
    }
}
