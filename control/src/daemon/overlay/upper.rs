//! Upper sessions: the WireGuard protocol end to end, between this node and the destinations
//! its routes lead to, carried in ROUTED frames (DESIGN §1). The endpoint here runs their
//! handshakes and timers, with Noise identifier `rovy upper v1` (so no link message is ever
//! taken for one) and admission of any rovy key (the key is the address). The workers seal and
//! open their data; each session's endpoint is the label of its route
//! ([`LinkAddr::Overlay`]), moved by routing events here and, at the receiving end, by every
//! frame that arrives (the way back).

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, UPPER_MESSAGE_AT};
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::switch::way_back;
use rovy_dataplane::wire::frame::{FrameKind, Label, ROUTED_HEADER_LEN, RoutedHeader};
use rovy_dataplane::wire::{COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN};

use super::Overlay;
use crate::keys::PublicKey;
use crate::protocol::{Admission, Endpoint, EndpointConfig, HANDSHAKE_BUF_LEN, Received, TunnelId};
use crate::routing::{InstalledRoute, NodeKey, RouteSource, Slot};

/// The Noise identifier of upper sessions.
pub const UPPER_IDENTIFIER: &[u8] = b"rovy upper v1";

/// Most upper sessions a node keeps (one per destination it talks to or routes to).
const MAX_UPPER_TUNNELS: usize = 65_536;

/// The endpoint of a node's upper sessions, for its static key `private`.
pub(in crate::daemon) fn upper_endpoint(private: [u8; 32], now: Duration) -> Endpoint<PeerShared> {
    let config = EndpointConfig {
        identifier: UPPER_IDENTIFIER,
        admission: Admission::Any {
            max_tunnels: MAX_UPPER_TUNNELS,
        },
    };
    Endpoint::new(private, config, now, &mut OsRng)
}

impl Overlay {
    /// Routing found (or moved) the route to `key`: its upper session follows its label, and
    /// the workers send what goes to its address through it. An announced route holds the
    /// session there; a learned way back lets it roam to the way its frames come.
    pub(super) fn route_to(&mut self, key: &NodeKey, route: InstalledRoute) {
        let label = route.label;
        self.unrouting.found(key);
        let Some(addr) = PublicKey(*key).address() else {
            return;
        };
        let id = match self.upper.tunnel_by_key(key) {
            Some(id) => id,
            None => match self
                .upper
                .add_tunnel(*key, None, Some(LinkAddr::Overlay(label)), None)
            {
                Ok(id) => id,
                Err(_) => return self.drops.count_drop(DropReason::HandshakeFailed),
            },
        };
        if let Some(tunnel) = self.upper.tunnel(id) {
            let shared = tunnel.shared();
            match route.source {
                RouteSource::Announced => shared.hold_endpoint(LinkAddr::Overlay(label)),
                RouteSource::ReturnPath => {
                    shared.release_endpoint();
                    shared.set_endpoint(LinkAddr::Overlay(label));
                }
            }
        }
        self.publish(addr, id);
    }

    /// Unroutes every destination whose grace ([`super::unroute_grace`]) ran out at `now`
    /// without a new route.
    pub(super) fn unroute_due(&mut self, now: Duration) {
        for key in self.unrouting.take_due(now) {
            self.unroute(&key);
        }
    }

    /// Routing lost `key`: its address no longer goes through the overlay, and its upper
    /// session roams again.
    fn unroute(&mut self, key: &NodeKey) {
        let Some(addr) = PublicKey(*key).address() else {
            return;
        };
        if let Some(tunnel) = self
            .upper
            .tunnel_by_key(key)
            .and_then(|id| self.upper.tunnel(id))
        {
            tunnel.shared().release_endpoint();
        }
        let tables = self.dataplane.shared_tables();
        let mut next = tables.snapshot();
        if next.overlay.get(&addr).is_some() {
            Arc::make_mut(&mut next.overlay).remove(&addr);
            tables.store(next);
        }
    }

    /// Lists upper tunnel `id` under `addr` in the workers' overlay table, unless it is.
    fn publish(&mut self, addr: Ipv6Addr, id: TunnelId) {
        let Some(shared) = self.upper.tunnel(id).map(|t| Arc::clone(t.shared())) else {
            return;
        };
        let tables = self.dataplane.shared_tables();
        if tables
            .load()
            .overlay
            .get(&addr)
            .is_some_and(|listed| Arc::ptr_eq(listed, &shared))
        {
            return;
        }
        let mut next = tables.snapshot();
        Arc::make_mut(&mut next.overlay).insert(addr, shared);
        tables.store(next);
    }

    /// A ROUTED frame whose label ended here and that carries an upper handshake message.
    pub(super) fn upper_handshake(
        &mut self,
        now: Duration,
        frame: &[u8],
        send: &mut impl FnMut(LinkAddr, &[u8]),
    ) {
        let Ok(header) = RoutedHeader::new_checked(frame) else {
            return self.drops.count_drop(DropReason::FrameTruncated);
        };
        let back = way_back(&header);
        let message = &frame[ROUTED_HEADER_LEN..];
        // The link padded the frame: the message is as long as its type says.
        let len = match message.first() {
            Some(1) => INITIATION_LEN,
            Some(2) => RESPONSE_LEN,
            Some(3) => COOKIE_REPLY_LEN,
            _ => return self.drops.count_drop(DropReason::UnknownType),
        };
        let mut packet = [0u8; HANDSHAKE_BUF_LEN];
        let Some(bytes) = message.get(..len) else {
            return self.drops.count_drop(DropReason::BadLength);
        };
        packet[..len].copy_from_slice(bytes);
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let from = LinkAddr::Overlay(back);
        match self
            .upper
            .handle_datagram(now, from, &mut packet[..len], false, &mut OsRng, &mut out)
        {
            Ok(Received::HandshakeResponse { tunnel, len }) => {
                // The initiator is now known by its key: its frame's way back is a route to
                // it, used until one is announced.
                if let Some(key) = self.upper.tunnel(tunnel).map(|t| *t.public_key()) {
                    self.router.learn_return_path(&key, back, now);
                }
                self.publish_tunnel(tunnel);
                self.send_routed(now, back, &out[..len], send);
            }
            Ok(Received::CookieReply) => {
                self.drops.count_drop(DropReason::CookieRequired);
                self.send_routed(now, back, &out[..COOKIE_REPLY_LEN], send);
            }
            Ok(Received::HandshakeComplete { tunnel }) => {
                self.handshaking.completed(tunnel);
                self.publish_tunnel(tunnel);
            }
            Ok(_) => {}
            Err(reason) => self.drops.count_drop(reason),
        }
    }

    /// Lists upper tunnel `id` under its key's address.
    fn publish_tunnel(&mut self, id: TunnelId) {
        let Some(key) = self.upper.tunnel(id).map(|t| *t.public_key()) else {
            return;
        };
        if let Some(addr) = PublicKey(key).address() {
            self.publish(addr, id);
        }
    }

    /// The upper endpoint's turn: worker activity, timers, what it sends, and the packets its
    /// sessions staged while they were being made.
    pub(super) fn upper_turn(&mut self, now: Duration, send: &mut impl FnMut(LinkAddr, &[u8])) {
        self.upper.sync_activity(&mut OsRng);
        self.upper.handle_timeout(now, &mut OsRng);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        while let Some(t) = self.upper.poll_transmit(now, wall, &mut OsRng, &mut out) {
            match t.dst {
                LinkAddr::Overlay(label) => {
                    let initiation = rovy_dataplane::wire::message_type(&out[..t.len])
                        == Ok(rovy_dataplane::wire::MessageType::Initiation);
                    if initiation {
                        self.handshaking.initiation_sent(t.tunnel, label, now);
                    }
                    self.send_routed(now, label, &out[..t.len], send);
                }
                LinkAddr::Udp(_) => self.drops.count_drop(DropReason::SendFailed),
            }
        }
        self.demote_silent_labels(now);
        let staged: Vec<Arc<PeerShared>> = self
            .upper
            .tunnels()
            .filter(|(_, t)| t.shared().staged_len() > 0)
            .map(|(_, t)| Arc::clone(t.shared()))
            .collect();
        for shared in staged {
            self.dataplane
                .send_staged_overlay(now, &shared, |datagram, dst| send(dst, datagram));
        }
    }

    /// Demotes every label over which an upper handshake has gone unanswered for
    /// [`super::UPPER_HANDSHAKE_DEADLINE`]: its destination moves to the next route, and the
    /// handshake's retries take that one.
    fn demote_silent_labels(&mut self, now: Duration) {
        for label in self.handshaking.take_due(now) {
            let moved = self.router.route_failed(&label, now);
            if moved > 0 {
                tracing::info!(
                    "route {label} demoted: no end-to-end handshake over it within {} s",
                    super::UPPER_HANDSHAKE_DEADLINE.as_secs()
                );
            }
        }
    }

    /// Sends the upper message `message` in a ROUTED frame along `label`, sealed for the
    /// label's first link.
    fn send_routed(
        &mut self,
        now: Duration,
        label: Label,
        message: &[u8],
        send: &mut impl FnMut(LinkAddr, &[u8]),
    ) {
        let Some(first) = label.first().and_then(Slot::new) else {
            return self.drops.count_drop(DropReason::BadLabel);
        };
        let Some(room) = self
            .buf
            .get_mut(UPPER_MESSAGE_AT..UPPER_MESSAGE_AT + message.len())
        else {
            return self.drops.count_drop(DropReason::BadLength);
        };
        room.copy_from_slice(message);
        RoutedHeader::new_unchecked(&mut self.buf[LINK_PAYLOAD_AT..UPPER_MESSAGE_AT])
            .fill(FrameKind::Routed, &label);
        self.seal_and_send(now, first, ROUTED_HEADER_LEN + message.len(), send);
    }
}
