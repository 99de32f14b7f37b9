//! The per-packet pipeline, free of I/O: a TUN packet becomes a sealed datagram for its peer,
//! a datagram becomes a packet for the TUN, a frame forwarded to the next link, or a message
//! for control. Workers run it between their reads and writes; benchmarks run it in memory.
//!
//! A link's plaintext is an IP packet (first nibble 4 or 6), empty (a keepalive) or a rovy
//! frame (first byte below 0x40, DESIGN §1). Frames that travel along a label are switched here,
//! in the worker: rewritten and re-sealed in place for the next link, with no copy and no trip
//! through control; frames for this node and one-link routing messages go to control.

mod pace;
mod traceroute;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;

use std::net::{IpAddr, Ipv6Addr};

use crate::DropReason;
use crate::buf::{Encap, LINK_PAYLOAD_AT, OVERLAY_OVERHEAD, PACKET_AT, UPPER_MESSAGE_AT};
use crate::index::IndexTable;
use crate::link_addr::LinkAddr;
use crate::overlay_address::is_overlay;
use crate::peer::{PeerShared, Sealed};
use crate::route::PeerSlot;
use crate::session::sealed_len;
use crate::switch::{Switched, route_error_in_place, switch, way_back};
use crate::tables::{SharedTables, Tables};
use crate::wire::frame::{FrameKind, ROUTE_ERROR_LEN, ROUTED_HEADER_LEN, RoutedHeader};
use crate::wire::icmpv6::{ICMPV6_ERROR_MAX_LEN, Icmpv6Error, write_error};
use crate::wire::{self, MessageType, ip};

pub use pace::Pace;
use traceroute::probe_path;

/// How often, on average, a node sends a ROUTE_ERROR: errors answer traffic that cannot go on,
/// so a flood of it must not become a flood of errors.
pub const ROUTE_ERROR_INTERVAL: Duration = Duration::from_millis(10);
/// How many ROUTE_ERRORs may go at once.
pub const ROUTE_ERROR_BURST: u32 = 10;

/// How often, on average, a node writes an ICMPv6 error for its TUN (RFC 4443 §2.4 f asks for
/// a limit; this is Linux's default of 1000 per second).
pub const ICMP_ERROR_INTERVAL: Duration = Duration::from_millis(1);
/// How many ICMPv6 errors may go at once: traceroute sends up to 16 probes together, and
/// Linux allows bursts of 50.
pub const ICMP_ERROR_BURST: u32 = 50;

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

/// Where a packet from the TUN goes.
#[derive(Debug, Clone, Copy)]
pub enum Route<'t> {
    /// To a configured peer, over its link (its allowed IPs, or a rovy neighbour's own
    /// address).
    Link(&'t PeerShared),
    /// To an fc00::/8 destination through the overlay, in its upper session.
    Overlay(&'t PeerShared),
}

impl Route<'_> {
    /// The headers the packet gets.
    pub fn encap(&self) -> Encap {
        match self {
            Route::Link(_) => PeerShared::ENCAP,
            Route::Overlay(_) => Encap::Routed,
        }
    }
}

/// What every worker shares: the index tables, the tables it routes by, the MTU.
#[derive(Debug)]
pub struct Dataplane {
    index: Arc<IndexTable>,
    /// Receiver indices of the upper sessions, a number space of their own.
    upper_index: Arc<IndexTable>,
    tables: SharedTables,
    mtu: usize,
    route_errors: Pace,
    /// This node's fc00 address, the source of the ICMPv6 errors it writes for the TUN.
    own_address: Option<Ipv6Addr>,
    icmp_errors: Pace,
    /// Keys the ids of traceroute's PINGs (see [`traceroute`]).
    probe_ids: std::hash::RandomState,
}

impl Dataplane {
    /// A data plane starting with `tables`.
    pub fn new(index: Arc<IndexTable>, tables: Tables, mtu: usize) -> Self {
        Dataplane {
            index,
            upper_index: Arc::default(),
            tables: SharedTables::new(tables),
            mtu,
            route_errors: Pace::new(ROUTE_ERROR_INTERVAL, ROUTE_ERROR_BURST),
            own_address: None,
            icmp_errors: Pace::new(ICMP_ERROR_INTERVAL, ICMP_ERROR_BURST),
            probe_ids: std::hash::RandomState::new(),
        }
    }

    /// The same data plane, answering packets it cannot send through the overlay with ICMPv6
    /// errors from `address` (the node's own fc00 address).
    #[must_use]
    pub fn with_own_address(mut self, address: Ipv6Addr) -> Self {
        self.own_address = Some(address);
        self
    }

    /// The same data plane, looking upper sessions up in `upper_index` (the upper endpoint's).
    #[must_use]
    pub fn with_upper_index(mut self, upper_index: Arc<IndexTable>) -> Self {
        self.upper_index = upper_index;
        self
    }

    /// The TUN MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The largest packet that goes through the overlay: what the fc00::/8 route carries.
    pub fn overlay_mtu(&self) -> usize {
        self.mtu.saturating_sub(OVERLAY_OVERHEAD)
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
        let dst = ip::parse(packet)?.dst;
        let sealed = route(&tables, dst).and_then(|route| self.seal(now, &tables, route, buf, len));
        match sealed {
            Err(reason @ (DropReason::NoRoute | DropReason::OverlayTooBig)) => {
                self.icmp_reply(now, reason, dst, buf, len).ok_or(reason)
            }
            other => other,
        }
    }

    /// The ICMPv6 error answering the packet at `buf[PACKET_AT..PACKET_AT + len]`, which was
    /// refused for `reason` on its way to `dst`, written over it: Destination Unreachable (no
    /// route) for an fc00 destination nothing routes, Packet Too Big with the overlay MTU for
    /// one too long for the overlay; from this node's own address, within
    /// [`ICMP_ERROR_INTERVAL`] and [`ICMP_ERROR_BURST`]. `None` where no error is due (not an overlay destination, an
    /// ICMPv6 error itself, over the rate).
    pub fn icmp_reply(
        &self,
        now: Duration,
        reason: DropReason,
        dst: IpAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<Sealed> {
        let own = self.own_address?;
        let error = match (reason, dst) {
            (DropReason::NoRoute, IpAddr::V6(dst)) if is_overlay(&dst) => Icmpv6Error::NoRoute,
            (DropReason::OverlayTooBig, _) => Icmpv6Error::PacketTooBig {
                mtu: u32::try_from(self.overlay_mtu()).ok()?,
            },
            _ => return None,
        };
        let mut out = [0u8; ICMPV6_ERROR_MAX_LEN];
        let written = write_error(error, own, buf.get(PACKET_AT..PACKET_AT + len)?, &mut out)?;
        if !self.icmp_errors.allow(now) {
            return None;
        }
        buf.get_mut(PACKET_AT..PACKET_AT + written)?
            .copy_from_slice(&out[..written]);
        Some(Sealed::Reply {
            at: PACKET_AT,
            len: written,
        })
    }

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + len]` for `route`, or stages it while
    /// the session it needs is not there yet.
    pub fn seal(
        &self,
        now: Duration,
        tables: &Tables,
        route: Route<'_>,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Sealed, DropReason> {
        match route {
            Route::Link(peer) => peer.encapsulate(now, buf, len, self.mtu),
            Route::Overlay(upper) => {
                if let Some(path) = probe_path(upper, buf, len) {
                    return self.probe(now, tables, &path, buf, len);
                }
                if len > self.overlay_mtu() {
                    return Err(DropReason::OverlayTooBig);
                }
                upper.encapsulate_with(buf, len, self.mtu, |buf| {
                    self.seal_overlay(now, tables, upper, buf, len)
                })
            }
        }
    }

    /// Seals the packet at `buf[PACKET_AT..PACKET_AT + len]` in `upper`'s session, puts the
    /// message in a ROUTED frame along `upper`'s label, and seals that for the label's first
    /// link: the datagram starts at 0 (see [`crate::buf`]).
    fn seal_overlay(
        &self,
        now: Duration,
        tables: &Tables,
        upper: &PeerShared,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Sealed, DropReason> {
        let Some(LinkAddr::Overlay(label)) = upper.endpoint() else {
            return Err(DropReason::NoEndpoint);
        };
        let link = label
            .first()
            .and_then(|slot| tables.links.peer(slot))
            .ok_or(DropReason::DeadSlot)?;
        let message = buf
            .get_mut(UPPER_MESSAGE_AT..)
            .ok_or(DropReason::BadLength)?;
        let upper_len = upper.seal_message(now, message, len, self.overlay_mtu())?;
        RoutedHeader::new_unchecked(&mut buf[LINK_PAYLOAD_AT..UPPER_MESSAGE_AT])
            .fill(FrameKind::Routed, &label);
        let (len, dst) = link.seal_link(now, buf, ROUTED_HEADER_LEN + upper_len, self.mtu)?;
        Ok(Sealed::Datagram { at: 0, len, dst })
    }

    /// Seals and sends (through `send`) the packets `upper` staged while its session was
    /// being made; returns how many went.
    pub fn send_staged_overlay(
        &self,
        now: Duration,
        upper: &PeerShared,
        mut send: impl FnMut(&[u8], LinkAddr),
    ) -> usize {
        let tables = self.tables();
        upper.send_staged_with(|slot, len| {
            match self.seal_overlay(now, &tables, upper, slot, len) {
                Ok(Sealed::Datagram { at, len, dst }) => {
                    send(&slot[at..at + len], dst);
                    true
                }
                _ => false,
            }
        })
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
            Switched::Local if kind == FrameKind::Routed && carries_data(frame) => {
                self.upper_data(now, tables, buf, len)
            }
            Switched::Local if kind == FrameKind::Pong => self.time_exceeded(now, buf, len),
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

    /// The upper session's data message inside the ROUTED frame of `len` bytes at
    /// `buf[LINK_PAYLOAD_AT..]`, whose label ended here: opened in place, delivered only if its
    /// inner source is the address its upper peer is routed under. The peer's way back becomes
    /// the frame's label read backwards.
    fn upper_data(
        &self,
        now: Duration,
        tables: &Tables,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Inbound, DropReason> {
        let back = way_back(&RoutedHeader::new_checked(&buf[LINK_PAYLOAD_AT..])?);
        let message = UPPER_MESSAGE_AT..LINK_PAYLOAD_AT + len;
        let header = buf.get(message.clone()).ok_or(DropReason::FrameTruncated)?;
        let receiver = wire::DataHeader::new_checked(header)?.receiver_index();
        self.upper_index
            .with(receiver, |upper| {
                let received =
                    upper.decapsulate(now, LinkAddr::Overlay(back), &mut buf[message])?;
                let plaintext = buf
                    .get(PACKET_AT..PACKET_AT + received.plaintext_len)
                    .ok_or(DropReason::InvalidInnerPacket)?;
                if plaintext.is_empty() {
                    return Ok(Inbound::Keepalive);
                }
                let info = ip::parse(plaintext)?;
                let owned = match info.src {
                    IpAddr::V6(src) => tables
                        .overlay
                        .get(&src)
                        .is_some_and(|routed| std::ptr::eq(&**routed, upper)),
                    IpAddr::V4(_) => false,
                };
                if !owned {
                    return Err(DropReason::SourceNotAllowed);
                }
                Ok(Inbound::Deliver {
                    at: PACKET_AT,
                    len: info.len,
                })
            })
            .ok_or(DropReason::UnknownIndex)?
    }

    /// Whether a ROUTE_ERROR may go now, within [`ROUTE_ERROR_INTERVAL`] and
    /// [`ROUTE_ERROR_BURST`] for the whole node.
    fn may_send_route_error(&self, now: Duration) -> bool {
        self.route_errors.allow(now)
    }
}

/// Where a packet to `dst` goes: the configured peer whose allowed IPs hold it most
/// specifically, else, for an fc00::/8 address, its upper session through the overlay.
pub fn route(tables: &Tables, dst: IpAddr) -> Result<Route<'_>, DropReason> {
    if let Some(slot) = tables.routes.lookup(dst) {
        return tables
            .peer(slot)
            .map(|peer| Route::Link(peer))
            .ok_or(DropReason::NoRoute);
    }
    match dst {
        IpAddr::V6(addr) if is_overlay(&addr) => tables
            .overlay
            .get(&addr)
            .map(|upper| Route::Overlay(upper))
            .ok_or(DropReason::NoRoute),
        _ => Err(DropReason::NoRoute),
    }
}

/// Whether the routed frame `frame` carries an upper data message (type 4); handshake messages
/// go to control.
fn carries_data(frame: &[u8]) -> bool {
    frame.get(ROUTED_HEADER_LEN..ROUTED_HEADER_LEN + 4)
        == Some(&wire::MessageType::Data.to_wire()[..])
}
