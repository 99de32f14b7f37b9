//! The simulated network: real [`Router`]s joined by in-memory links with a delay and a loss
//! rate, on a virtual clock, with a schedule of failures. Every route change any router
//! reports is checked on the spot for loops.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::ops::RangeInclusive;
use std::time::Duration;

use rovy_dataplane::session::sealed_len;

use super::super::{
    HandleError, InstalledRoute, NodeKey, RouteEvent, Router, SimulatedOrigins, Slot,
};
use super::SimRng;
use crate::config::DEFAULT_MTU;
use crate::daemon::ROUTING_MESSAGE_MAX_LEN;

/// Wall clock the routers are created at.
const UNIX_START: u64 = 1_700_000_000;
/// The virtual time a network starts at.
pub const START: Duration = Duration::from_secs(10);

/// One direction of a simulated link.
#[derive(Debug, Clone, Copy)]
struct WireEnd {
    peer: usize,
    peer_slot: Slot,
    delay: Duration,
    loss: f64,
    up: bool,
}

/// A change to the network that the schedule applies at its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The link between two nodes falls silent; both ends notice only by the silence.
    Cut(usize, usize),
    /// The link between two nodes is closed at both ends at once (its session went away).
    Close(usize, usize),
    /// A node stops dead: its links fall silent and it does nothing more.
    Kill(usize),
    /// A link comes up between two nodes.
    Connect(usize, usize),
}

#[derive(Debug)]
enum Item {
    Deliver {
        to: usize,
        slot: Slot,
        bytes: Vec<u8>,
    },
    Act(Action),
}

/// Something due at `at`; `order` keeps same-time items first in, first out.
#[derive(Debug)]
struct Queued {
    at: Duration,
    order: u64,
    item: Item,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// What the network counted since it started.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetStats {
    /// Routing messages the routers sent (lost ones included).
    pub messages: u64,
    /// Their bytes, as the routers wrote them.
    pub bytes: u64,
    /// Their bytes as WireGuard data messages on the default MTU: header, padding, tag.
    pub wire_bytes: u64,
    /// Messages the links lost.
    pub lost: u64,
    /// Route events (installed, changed, removed) the routers reported.
    pub route_events: u64,
    /// When the latest one was reported.
    pub last_route_event: Option<Duration>,
    /// Links a router found dead.
    pub link_deaths: u64,
    /// Links a router found dead while their peer still sent, brought back up.
    pub relinks: u64,
    /// When links were found dead since this was last cleared: the first time and the last.
    pub links_found_dead: Option<(Duration, Duration)>,
    /// Installed routes whose next hops, followed node by node, came back round.
    pub loops: u64,
    /// Installed labels that pass through some node twice.
    pub label_loops: u64,
    /// Installed labels that lead over live links to a node other than the destination.
    pub misdirected: u64,
}

/// The simulated network.
#[derive(Debug)]
pub struct Net {
    nodes: Vec<Router>,
    alive: Vec<bool>,
    index: HashMap<NodeKey, usize>,
    now: Duration,
    rng: SimRng,
    /// Per node, indexed by slot byte.
    wires: Vec<Vec<Option<WireEnd>>>,
    queue: BinaryHeap<Reverse<Queued>>,
    timeouts: BinaryHeap<Reverse<(Duration, usize)>>,
    /// Per node, the timeout queued for it (later queue entries for it are stale).
    scheduled: Vec<Option<Duration>>,
    order: u64,
    /// Per node, the walk that last visited it (loop checks).
    visited: Vec<u64>,
    walks: u64,
    buf: Vec<u8>,
    /// Delay of links brought up from now on, in milliseconds, drawn uniformly.
    pub delay_ms: RangeInclusive<u64>,
    /// Loss rate of links brought up from now on.
    pub loss: f64,
    /// Check every installed or changed route for loops (on by default).
    pub check_loops: bool,
    /// Keep every event in [`Net::events`] (off by default: millions on large networks).
    pub record_events: bool,
    /// Every event any router reported, with the time and the node, if recorded.
    pub events: Vec<(Duration, usize, RouteEvent)>,
    /// Counters.
    pub stats: NetStats,
    /// The first loop or misdirected label found, described.
    pub first_fault: Option<String>,
}

impl Net {
    /// `n` routers with random keys, no links, at [`START`].
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let nodes: Vec<Router> = (0..n)
            .map(|_| {
                let mut key = [0; 32];
                rng.fill(&mut key);
                Router::new(key, UNIX_START, START, Box::new(SimulatedOrigins::new(key)))
            })
            .collect();
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, r)| (*r.key(), i))
            .collect();
        Self {
            nodes,
            alive: vec![true; n],
            index,
            now: START,
            rng,
            wires: vec![Vec::new(); n],
            queue: BinaryHeap::new(),
            timeouts: BinaryHeap::new(),
            scheduled: vec![None; n],
            order: 0,
            visited: vec![0; n],
            walks: 0,
            buf: vec![0; ROUTING_MESSAGE_MAX_LEN],
            delay_ms: 1..=20,
            loss: 0.0,
            check_loops: true,
            record_events: false,
            events: Vec::new(),
            stats: NetStats::default(),
            first_fault: None,
        }
    }

    /// Number of nodes, alive or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the network has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The network's random generator (for tests that pick at random).
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Node `i`'s router.
    pub fn router(&self, i: usize) -> &Router {
        &self.nodes[i]
    }

    /// Node `i`'s key.
    pub fn key(&self, i: usize) -> NodeKey {
        *self.nodes[i].key()
    }

    /// The node with `key`.
    pub fn node_of(&self, key: &NodeKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Whether node `i` has not been killed.
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i]
    }

    /// Brings up a link between `a` and `b` with a delay drawn from [`Net::delay_ms`] and the
    /// loss rate [`Net::loss`], replacing any link between them that was cut.
    ///
    /// # Panics
    /// If `a` or `b` has no free slot (255 links).
    pub fn connect(&mut self, a: usize, b: usize) {
        let delay = Duration::from_millis(
            self.rng
                .between(*self.delay_ms.start(), *self.delay_ms.end()),
        );
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            // A silently cut link between them is gone for good: its routers give up on it
            // by themselves.
            let cut: Vec<Slot> = self
                .ends(x)
                .filter(|(_, end)| end.peer == y && !end.up)
                .map(|(slot, _)| slot)
                .collect();
            for slot in cut {
                self.wires[x][usize::from(slot.get())] = None;
            }
        }
        let (ka, kb) = (self.key(a), self.key(b));
        let sa = self.nodes[a].link_up(kb, now).expect("a free slot at a");
        let sb = self.nodes[b].link_up(ka, now).expect("a free slot at b");
        for (x, sx, y, sy) in [(a, sa, b, sb), (b, sb, a, sa)] {
            let end = WireEnd {
                peer: y,
                peer_slot: sy,
                delay,
                loss: self.loss,
                up: true,
            };
            self.place_wire(x, sx, end);
        }
        self.flush(a);
        self.flush(b);
    }

    /// Sets the loss rate of every link, both ways, and of links brought up from now on.
    pub fn set_loss(&mut self, loss: f64) {
        self.loss = loss;
        for end in self.wires.iter_mut().flatten().flatten() {
            end.loss = loss;
        }
    }

    /// Sets the loss rate of what `from` sends to `to` on their link.
    ///
    /// # Panics
    /// If they are not linked.
    pub fn set_link_loss(&mut self, from: usize, to: usize, loss: f64) {
        let slot = self.slot_to(from, to).expect("linked");
        if let Some(end) = self.wire_mut(from, slot) {
            end.loss = loss;
        }
    }

    fn place_wire(&mut self, node: usize, slot: Slot, end: WireEnd) {
        let place = usize::from(slot.get());
        let ends = &mut self.wires[node];
        if ends.len() <= place {
            ends.resize(place + 1, None);
        }
        ends[place] = Some(end);
    }

    fn wire(&self, node: usize, slot: Slot) -> Option<&WireEnd> {
        self.wires[node].get(usize::from(slot.get()))?.as_ref()
    }

    fn wire_mut(&mut self, node: usize, slot: Slot) -> Option<&mut WireEnd> {
        self.wires[node].get_mut(usize::from(slot.get()))?.as_mut()
    }

    fn ends(&self, node: usize) -> impl Iterator<Item = (Slot, &WireEnd)> {
        self.wires[node]
            .iter()
            .enumerate()
            .filter_map(|(i, end)| Some((Slot::new(i as u8)?, end.as_ref()?)))
    }

    /// The slot `a` reaches `b` on, if they are linked (even silently cut).
    pub fn slot_to(&self, a: usize, b: usize) -> Option<Slot> {
        self.ends(a)
            .find(|(_, end)| end.peer == b)
            .map(|(slot, _)| slot)
    }

    /// The node on the other end of `node`'s link on `slot`, while that link carries traffic.
    pub fn neighbour(&self, node: usize, slot: Slot) -> Option<usize> {
        self.wire(node, slot)
            .filter(|end| end.up)
            .map(|end| end.peer)
    }

    /// The nodes `node` has links carrying traffic to.
    pub fn neighbours(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.ends(node)
            .filter(|(_, end)| end.up)
            .map(|(_, end)| end.peer)
    }

    /// Links carrying traffic (each counted once).
    pub fn live_links(&self) -> usize {
        (0..self.len())
            .map(|n| self.neighbours(n).count())
            .sum::<usize>()
            / 2
    }

    /// Queues `action` for `at` (no earlier than now).
    pub fn schedule(&mut self, at: Duration, action: Action) {
        self.push(at.max(self.now), Item::Act(action));
    }

    /// Applies `action` now.
    ///
    /// # Panics
    /// If it names a link that was never brought up, or a node without a free slot.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Cut(a, b) => {
                for (x, y) in [(a, b), (b, a)] {
                    let slot = self.slot_to(x, y).expect("linked");
                    if let Some(end) = self.wire_mut(x, slot) {
                        end.up = false;
                    }
                }
            }
            Action::Close(a, b) => {
                for (x, y) in [(a, b), (b, a)] {
                    let slot = self.slot_to(x, y).expect("linked");
                    self.wires[x][usize::from(slot.get())] = None;
                    let now = self.now;
                    // A router that already found the link dead has nothing to close.
                    if self.nodes[x].link_down(slot, now).is_ok() {
                        self.flush(x);
                    }
                }
            }
            Action::Kill(node) => {
                self.alive[node] = false;
                let peers: Vec<usize> = self.ends(node).map(|(_, end)| end.peer).collect();
                for peer in peers {
                    self.apply(Action::Cut(node, peer));
                }
            }
            Action::Connect(a, b) => self.connect(a, b),
        }
    }

    fn push(&mut self, at: Duration, item: Item) {
        self.order += 1;
        let order = self.order;
        self.queue.push(Reverse(Queued { at, order, item }));
    }

    /// Runs the network until `until`.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            let next_item = self.queue.peek().map(|Reverse(q)| q.at);
            let next_timeout = self.timeouts.peek().map(|Reverse((at, _))| *at);
            let next = match (next_item, next_timeout) {
                (Some(d), Some(t)) => d.min(t),
                (d, t) => match d.or(t) {
                    Some(next) => next,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_item == Some(next) {
                let Some(Reverse(queued)) = self.queue.pop() else {
                    break;
                };
                match queued.item {
                    Item::Deliver { to, slot, bytes } => self.deliver(to, slot, &bytes),
                    Item::Act(action) => self.apply(action),
                }
            } else if let Some(Reverse((at, node))) = self.timeouts.pop() {
                if self.scheduled[node] != Some(at) {
                    continue;
                }
                self.scheduled[node] = None;
                if self.alive[node] {
                    let now = self.now;
                    self.nodes[node].handle_timeout(now);
                    self.flush(node);
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs the network for `span` more.
    pub fn run_for(&mut self, span: Duration) {
        self.run_until(self.now + span);
    }

    fn deliver(&mut self, to: usize, slot: Slot, bytes: &[u8]) {
        if !self.alive[to] || !self.wire(to, slot).is_some_and(|end| end.up) {
            return;
        }
        let now = self.now;
        let result = self.nodes[to].handle_message(slot, bytes, now);
        if result == Err(HandleError::UnknownLink(slot)) {
            let fresh = self.relink(to, slot);
            let _ = self.nodes[to].handle_message(fresh, bytes, now);
        }
        // Anything else a router refuses, a real node counts and drops; so here.
        self.flush(to);
    }

    /// `node`'s router gave up on the link on `slot` (lost messages made it fall silent)
    /// but its peer is still sending: as the node's control loop does for a peer heard from
    /// with a live session, the router gets the link back, on a new slot.
    ///
    /// # Panics
    /// If the node has no free slot.
    fn relink(&mut self, node: usize, slot: Slot) -> Slot {
        let now = self.now;
        let end = self.wires[node][usize::from(slot.get())]
            .take()
            .expect("a wire on the slot");
        let peer = self.key(end.peer);
        let fresh = self.nodes[node].link_up(peer, now).expect("a free slot");
        self.place_wire(node, fresh, end);
        if let Some(back) = self.wire_mut(end.peer, end.peer_slot) {
            back.peer_slot = fresh;
        }
        self.stats.relinks += 1;
        fresh
    }

    /// Sends what `node` has to send, checks the routes it changed, queues its timeout.
    fn flush(&mut self, node: usize) {
        let now = self.now;
        while let Some((slot, len)) = self.nodes[node].poll_transmit(now, &mut self.buf) {
            self.stats.messages += 1;
            self.stats.bytes += len as u64;
            self.stats.wire_bytes += sealed_len(len, DEFAULT_MTU.into()) as u64;
            let Some(end) = self.wire(node, slot).copied().filter(|end| end.up) else {
                continue;
            };
            if self.rng.chance(end.loss) {
                self.stats.lost += 1;
                continue;
            }
            let bytes = self.buf[..len].to_vec();
            let (to, slot) = (end.peer, end.peer_slot);
            self.push(now + end.delay, Item::Deliver { to, slot, bytes });
        }
        while let Some(event) = self.nodes[node].poll_event() {
            if self.record_events {
                self.events.push((now, node, event));
            }
            match event {
                RouteEvent::LinkDead { .. } => {
                    self.stats.link_deaths += 1;
                    let found = &mut self.stats.links_found_dead;
                    *found = Some(found.map_or((now, now), |(first, _)| (first, now)));
                }
                RouteEvent::Installed { key, route } | RouteEvent::Changed { key, route } => {
                    self.route_event(now);
                    if self.check_loops {
                        self.check_route(node, &key, &route);
                    }
                }
                RouteEvent::Removed { .. } => self.route_event(now),
            }
        }
        if let Some(at) = self.nodes[node].poll_timeout() {
            if self.scheduled[node].is_none_or(|queued| at < queued) {
                self.scheduled[node] = Some(at);
                self.timeouts.push(Reverse((at, node)));
            }
        }
    }

    fn route_event(&mut self, now: Duration) {
        self.stats.route_events += 1;
        self.stats.last_route_event = Some(now);
    }

    /// `node` just installed `route` to `key`. Only `node`'s next hop changed, so a loop it
    /// closed passes through `node`: following next hops from it finds any loop there is.
    /// Its label is walked too, since traffic follows the label, not the next hops.
    fn check_route(&mut self, node: usize, key: &NodeKey, route: &InstalledRoute) {
        let Some(dst) = self.node_of(key) else {
            return;
        };
        self.walks += 1;
        let mut at = node;
        self.visited[at] = self.walks;
        while at != dst {
            let Some(next) = self
                .route(at, dst)
                .and_then(|r| self.neighbour(at, r.next_hop))
            else {
                break;
            };
            if self.visited[next] == self.walks {
                self.stats.loops += 1;
                self.fault(format!(
                    "next hops from {node} towards {dst} loop at {next}"
                ));
                break;
            }
            self.visited[next] = self.walks;
            at = next;
        }
        self.walks += 1;
        let mut at = node;
        self.visited[at] = self.walks;
        for &slot in route.label.as_slice() {
            let Some(next) = Slot::new(slot).and_then(|slot| self.neighbour(at, slot)) else {
                return;
            };
            if self.visited[next] == self.walks {
                self.stats.label_loops += 1;
                return self.fault(format!("label {:?} of {node} to {dst} loops", route.label));
            }
            self.visited[next] = self.walks;
            at = next;
        }
        if at != dst {
            self.stats.misdirected += 1;
            self.fault(format!(
                "label {:?} of {node} to {dst} ends at {at}",
                route.label
            ));
        }
    }

    fn fault(&mut self, what: String) {
        let now = self.now;
        self.first_fault
            .get_or_insert_with(|| format!("at {now:?}: {what}"));
    }

    /// The route `src` has to `dst`.
    pub fn route(&self, src: usize, dst: usize) -> Option<InstalledRoute> {
        self.nodes[src].route(self.nodes[dst].key())
    }
}
