//! The overlay as the control thread runs it: the routing core ([`Router`]) wired to the node's
//! links. A rovy peer's link is up while it has a session and was heard from lately; its router
//! slot is then its slot in the dataplane's link table, so the labels routing builds are the
//! labels the workers switch on. Routing messages travel as rovy frames inside the links'
//! WireGuard data messages, sealed here and received from the workers' frame queue.
//!
//! Frames whose label ends at this node arrive here too. A PING is answered with a PONG along
//! the way back (traceroute's hops); an upper session's handshake goes to the upper endpoint
//! (`upper`), whose data the workers open themselves.

mod handshake_watch;
mod unroute_grace;
mod upper;

use handshake_watch::HandshakeWatch;
use handshake_watch::UPPER_HANDSHAKE_DEADLINE;
use unroute_grace::UnrouteGrace;

use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::DropReason;
use rovy_dataplane::buf::{LINK_PAYLOAD_AT, buffer_len};
use rovy_dataplane::control_queue::FrameReceiver;
use rovy_dataplane::counters::WorkerCounters;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::overlay_address;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::{Dataplane, Pace};
use rovy_dataplane::route::PeerSlot;
use rovy_dataplane::switch::{answer_ping, failed_label};
use rovy_dataplane::tables::Tables;
use rovy_dataplane::wire::frame::{FrameKind, PingFrame, RouteErrorFrame};
use rovy_dataplane::worker::{FRAME_MSG_MAX_LEN, FrameMsg};

use crate::keys::PublicKey;
use crate::protocol::Endpoint;
use crate::routing::{
    LINK_DEAD_AFTER, NodeKey, RouteEvent, Router, RouterStats, Slot, XeddsaOrigins,
};

pub(super) use upper::upper_endpoint;

/// Frames taken from the queue per loop turn, so a flood of them cannot hold the loop.
const FRAMES_PER_TURN: usize = 64;

/// Largest routing message written: its link plaintext, padded to 16, stays within what a
/// receiving worker hands its control thread.
pub(crate) const ROUTING_MESSAGE_MAX_LEN: usize = FRAME_MSG_MAX_LEN - 16;

/// How the log names a destination: its fc00 address.
fn destination(key: &NodeKey) -> String {
    overlay_address::derive(key).map_or_else(|| PublicKey(*key).to_string(), |a| a.to_string())
}

/// A configured rovy peer, as the overlay sees it.
#[derive(Debug)]
struct Neighbour {
    key: NodeKey,
    shared: Arc<PeerShared>,
    /// Its router slot while its link is up.
    slot: Option<Slot>,
    /// When its link last died: only a packet heard after that brings it back.
    down_at: Option<Duration>,
}

/// The routing state of a node and its links.
#[derive(Debug)]
pub(super) struct Overlay {
    router: Router,
    /// By configured peer; `None` for plain WireGuard peers.
    neighbours: Vec<Option<Neighbour>>,
    /// The configured peer on each router slot.
    on_slot: Vec<Option<PeerSlot>>,
    frames: FrameReceiver,
    dataplane: Arc<Dataplane>,
    /// One link datagram: sealed messages are laid out here.
    buf: Vec<u8>,
    mtu: usize,
    /// The control thread's drop counters.
    drops: Arc<WorkerCounters>,
    /// End-to-end sessions with the destinations routes lead to.
    upper: Endpoint<PeerShared>,
    /// Upper tunnels whose handshake is under way, and over which label.
    handshaking: HandshakeWatch,
    /// Signs PONGs with this node's key.
    pong_signer: XeddsaOrigins,
    /// Paces PONGs.
    pongs: Pace,
    /// Destinations that lost their last route and are still in the workers' table.
    unrouting: UnrouteGrace,
}

/// PONGs are answered at most one per this interval on average ...
pub const PONG_INTERVAL: Duration = Duration::from_millis(2);
/// ... with bursts of this many: a traceroute6 sends up to 16 probes at once, 3 per hop. Each
/// PONG costs an XEdDSA signature (about 20 µs), so a neighbour flooding PINGs takes at most
/// 1 % of a core.
pub const PONG_BURST: u32 = 64;

impl Overlay {
    /// The overlay of the node whose key `upper` has, with no neighbour yet (see
    /// [`Overlay::set_neighbour`]), fed by `frames`, counting drops in `drops`, with `upper` for
    /// its end-to-end sessions (made by [`upper_endpoint`]; the dataplane opens their data with
    /// its index table), signing its routing origins with `private`.
    pub(super) fn new(
        frames: FrameReceiver,
        dataplane: Arc<Dataplane>,
        drops: Arc<WorkerCounters>,
        upper: Endpoint<PeerShared>,
        private: &[u8; 32],
        unix_secs: u64,
        now: Duration,
    ) -> Self {
        let mtu = dataplane.mtu();
        let key = *upper.public_key();
        let origins = Box::new(XeddsaOrigins::new(key, private));
        let pong_signer = XeddsaOrigins::new(key, private);
        Overlay {
            router: Router::new(key, unix_secs, now, origins),
            neighbours: Vec::new(),
            on_slot: vec![None; 256],
            frames,
            dataplane,
            buf: vec![0; buffer_len(mtu)],
            mtu,
            drops,
            upper,
            handshaking: HandshakeWatch::default(),
            pong_signer,
            pongs: Pace::new(PONG_INTERVAL, PONG_BURST),
            unrouting: UnrouteGrace::default(),
        }
    }

    /// The routing state, for status and `route list`.
    pub(super) fn router(&self) -> &Router {
        &self.router
    }

    /// Makes configured peer `peer` the rovy neighbour with `key` and `shared` state, or (with
    /// `None`) no neighbour: a plain WireGuard peer, or one removed. A neighbour that goes while
    /// its link is up leaves `tables`' link table (the caller stores `tables`), and its routes
    /// are retracted at once.
    pub(super) fn set_neighbour(
        &mut self,
        peer: PeerSlot,
        neighbour: Option<(NodeKey, Arc<PeerShared>)>,
        now: Duration,
        tables: &mut Tables,
    ) {
        let at = usize::from(peer);
        if self.neighbours.len() <= at {
            self.neighbours.resize_with(at + 1, || None);
        }
        if let Some(slot) = self.neighbours[at].take().and_then(|gone| gone.slot) {
            tracing::info!(
                "link {} down: its peer is no rovy neighbour now",
                slot.get()
            );
            tables.links.remove(slot.get());
            self.on_slot[usize::from(slot.get())] = None;
            let _ = self.router.link_down(slot, now);
        }
        self.neighbours[at] = neighbour.map(|(key, shared)| Neighbour {
            key,
            shared,
            slot: None,
            down_at: None,
        });
    }

    /// The configured peer behind router slot `slot`.
    pub(super) fn peer_on(&self, slot: Slot) -> Option<PeerSlot> {
        self.on_slot[usize::from(slot.get())]
    }

    /// One turn: links up and down, frames from the workers, timers, and what routing sends.
    /// Datagrams to send go to `send`.
    pub(super) fn turn(&mut self, now: Duration, mut send: impl FnMut(LinkAddr, &[u8])) {
        self.sync_links(now);
        for _ in 0..FRAMES_PER_TURN {
            let Some(msg) = self.frames.pop() else {
                break;
            };
            self.handle_frame(now, &msg, &mut send);
        }
        self.router.handle_timeout(now);
        self.apply_events(now);
        self.unroute_due(now);
        self.transmit(now, &mut send);
        self.upper_turn(now, &mut send);
    }

    /// Brings up the link of every rovy peer with a session heard from within
    /// [`LINK_DEAD_AFTER`], and since its link last died; the router takes links down itself
    /// when they fall silent. The router's silence counts routing messages, the data path's
    /// stamp any packet: a neighbour that died just after its last data packet still looks
    /// heard from when its HELLOs have been missing long enough to end its link.
    fn sync_links(&mut self, now: Duration) {
        for peer in 0..self.neighbours.len() {
            let Some(neighbour) = self.neighbours[peer].as_ref() else {
                continue;
            };
            if neighbour.slot.is_some() {
                continue;
            }
            let heard = neighbour.shared.activity().any_received;
            let live = neighbour.shared.sessions().current().is_some()
                && heard.is_some_and(|t| {
                    now.saturating_sub(t) < LINK_DEAD_AFTER
                        && neighbour.down_at.is_none_or(|down| t > down)
                });
            if !live {
                continue;
            }
            let Ok(slot) = self.router.link_up(neighbour.key, now) else {
                continue;
            };
            let shared = Arc::clone(&neighbour.shared);
            let tables = self.dataplane.shared_tables();
            let mut next = tables.snapshot();
            if next.links.insert(slot.get(), shared) {
                tables.store(next);
            }
            self.on_slot[usize::from(slot.get())] = Some(peer as PeerSlot);
            tracing::info!("link {} up: {}", slot.get(), PublicKey(neighbour.key));
            if let Some(neighbour) = self.neighbours[peer].as_mut() {
                neighbour.slot = Some(slot);
            }
        }
    }

    /// Applies what the router decided: dead links leave the link table, routes move the
    /// upper sessions of their destinations.
    fn apply_events(&mut self, now: Duration) {
        while let Some(event) = self.router.poll_event() {
            match event {
                RouteEvent::LinkDead { slot } => self.link_gone(slot, now),
                RouteEvent::Installed { key, route } | RouteEvent::Changed { key, route } => {
                    tracing::info!(
                        "route to {}: label {}, metric {}",
                        destination(&key),
                        route.label,
                        route.metric
                    );
                    self.route_to(&key, route);
                }
                RouteEvent::Removed { key } => {
                    tracing::info!("route to {} gone", destination(&key));
                    self.unrouting.lost(key, now);
                }
            }
        }
    }

    fn link_gone(&mut self, slot: Slot, now: Duration) {
        tracing::info!(
            "link {} down: silent for {} ms",
            slot.get(),
            LINK_DEAD_AFTER.as_millis()
        );
        let tables = self.dataplane.shared_tables();
        let mut next = tables.snapshot();
        next.links.remove(slot.get());
        tables.store(next);
        if let Some(peer) = self.on_slot[usize::from(slot.get())].take() {
            if let Some(Some(neighbour)) = self.neighbours.get_mut(usize::from(peer)) {
                neighbour.slot = None;
                neighbour.down_at = Some(now);
            }
        }
        let _ = self.router.link_down(slot, now);
    }

    /// A frame from the workers: a routing message for the router, or a frame whose label
    /// ends here.
    fn handle_frame(
        &mut self,
        now: Duration,
        msg: &FrameMsg,
        send: &mut impl FnMut(LinkAddr, &[u8]),
    ) {
        let Some(frame) = msg.bytes.get(..msg.len) else {
            return self.drops.count_drop(DropReason::BadLength);
        };
        let slot = self
            .neighbours
            .get(usize::from(msg.peer))
            .and_then(|n| n.as_ref())
            .and_then(|n| n.slot);
        let Some(slot) = slot else {
            return self.drops.count_drop(DropReason::DeadSlot);
        };
        self.router.link_heard(slot, now);
        match frame.first().copied().and_then(FrameKind::from_byte) {
            Some(FrameKind::Ping) => self.answer_ping(now, frame, send),
            Some(FrameKind::Routed) => self.upper_handshake(now, frame, send),
            Some(FrameKind::RouteError) => self.route_error(now, frame),
            Some(kind) if kind.is_routed() => self.drops.count_drop(DropReason::UnknownFrame),
            Some(_) => {
                let before = self.router.stats();
                if let Err(error) = self.router.handle_message(slot, frame, now) {
                    self.drops.count_drop(error.drop_reason());
                }
                self.count_refused_entries(before);
            }
            None => self.drops.count_drop(DropReason::UnknownFrame),
        }
    }

    /// Counts the UPDATE entries the router refused for their origin proofs since `before`,
    /// each under its drop reason.
    fn count_refused_entries(&self, before: RouterStats) {
        let after = self.router.stats();
        for (reason, was, is) in [
            (
                DropReason::OriginForged,
                before.proofs_invalid,
                after.proofs_invalid,
            ),
            (
                DropReason::OriginUnproven,
                before.entries_unproven,
                after.entries_unproven,
            ),
            (
                DropReason::OriginOverBudget,
                before.proofs_deferred,
                after.proofs_deferred,
            ),
        ] {
            if is > was {
                self.drops.count_drops(reason, is - was);
            }
        }
    }

    /// A ROUTE_ERROR came back along the way back of a frame this node sent: the route with
    /// that label broke, so the destinations using it move to their next routes now.
    fn route_error(&mut self, now: Duration, frame: &[u8]) {
        let Ok(error) = RouteErrorFrame::new_checked(frame) else {
            return self.drops.count_drop(DropReason::FrameTruncated);
        };
        let Some(label) = failed_label(&error) else {
            return self.drops.count_drop(DropReason::BadLabel);
        };
        let moved = self.router.route_failed(&label, now);
        if moved > 0 {
            tracing::info!("route {label} broke (ROUTE_ERROR): {moved} destination(s) moved");
        }
    }

    /// Answers a PING whose label ended here with a PONG along the way back, carrying this
    /// node's key, its signature over the PING's id and the PING's data: the hop traceroute
    /// names. Paced ([`PONG_INTERVAL`], [`PONG_BURST`]): each answer costs a signature.
    fn answer_ping(&mut self, now: Duration, frame: &[u8], send: &mut impl FnMut(LinkAddr, &[u8])) {
        let Ok(ping) = PingFrame::new_checked(frame) else {
            return self.drops.count_drop(DropReason::FrameTruncated);
        };
        if !self.pongs.allow(now) {
            return self.drops.count_drop(DropReason::RateLimited);
        }
        let key = *self.router.key();
        let out = &mut self.buf[LINK_PAYLOAD_AT..LINK_PAYLOAD_AT + self.mtu];
        let signer = &self.pong_signer;
        let (len, back) = match answer_ping(&ping, &key, |m| signer.sign_message(m), out) {
            Ok(answer) => answer,
            Err(reason) => return self.drops.count_drop(reason),
        };
        let Some(first) = back.first().and_then(Slot::new) else {
            return self.drops.count_drop(DropReason::BadLabel);
        };
        self.seal_and_send(now, first, len, send);
    }

    /// Sends what the router has to say, each message sealed for its link.
    fn transmit(&mut self, now: Duration, send: &mut impl FnMut(LinkAddr, &[u8])) {
        let end = LINK_PAYLOAD_AT + ROUTING_MESSAGE_MAX_LEN.min(self.mtu);
        while let Some((slot, len)) = self
            .router
            .poll_transmit(now, &mut self.buf[LINK_PAYLOAD_AT..end])
        {
            self.seal_and_send(now, slot, len, send);
        }
    }

    /// Seals the `len` bytes at `buf[LINK_PAYLOAD_AT..]` for the link on `slot` and sends them.
    fn seal_and_send(
        &mut self,
        now: Duration,
        slot: Slot,
        len: usize,
        send: &mut impl FnMut(LinkAddr, &[u8]),
    ) {
        let Some(peer) = self.peer_on(slot) else {
            return self.drops.count_drop(DropReason::DeadSlot);
        };
        let Some(Some(neighbour)) = self.neighbours.get(usize::from(peer)) else {
            return self.drops.count_drop(DropReason::DeadSlot);
        };
        match neighbour
            .shared
            .seal_link(now, &mut self.buf, len, self.mtu)
        {
            Ok((sealed, dst)) => send(dst, &self.buf[..sealed]),
            Err(reason) => self.drops.count_drop(reason),
        }
    }
}
