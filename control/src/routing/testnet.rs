//! An in-memory network of routers on a virtual clock: links are queues with a delay (and an
//! optional loss rate), randomness comes from a seed, so every run is the same run.
//!
//! After every step it can check that no node's selected route to a destination whose route
//! just changed leads round a loop, following next hops node by node.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::label::first_hop;
use super::{InstalledRoute, Label, NodeKey, RouteEvent, Router, Slot};

/// Wall clock the routers are created at.
const UNIX_START: u64 = 1_700_000_000;
/// Largest message a link carries in the simulation.
const LINK_MTU: usize = 1420;

/// One direction of a simulated link.
#[derive(Debug, Clone, Copy)]
struct WireEnd {
    peer: usize,
    peer_slot: Slot,
    delay: Duration,
    up: bool,
}

/// A message in flight.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Duration,
    order: u64,
    to: usize,
    slot: Slot,
    bytes: Vec<u8>,
}

/// The simulated network.
#[derive(Debug)]
pub(crate) struct TestNet {
    pub nodes: Vec<Router>,
    pub now: Duration,
    rng: StdRng,
    wires: HashMap<(usize, Slot), WireEnd>,
    /// Per node, the slots of its wires.
    adjacent: Vec<Vec<Slot>>,
    in_flight: BinaryHeap<Reverse<Delivery>>,
    timeouts: BinaryHeap<Reverse<(Duration, usize)>>,
    /// Per node, the timeout queued for it (later queue entries for it are stale).
    scheduled: Vec<Option<Duration>>,
    order: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Check loop freedom after every step.
    pub check_loops: bool,
    /// Every event any router reported, with the node and the time.
    pub events: Vec<(Duration, usize, RouteEvent)>,
    pub messages_sent: u64,
}

impl TestNet {
    /// `n` routers with random keys, no links.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Duration::from_secs(10);
        let nodes = (0..n)
            .map(|_| {
                let mut key = [0; 32];
                rng.fill(&mut key);
                Router::new(key, UNIX_START, now)
            })
            .collect();
        Self {
            nodes,
            now,
            rng,
            wires: HashMap::new(),
            adjacent: vec![Vec::new(); n],
            in_flight: BinaryHeap::new(),
            timeouts: BinaryHeap::new(),
            scheduled: vec![None; n],
            order: 0,
            loss: 0.0,
            check_loops: true,
            events: Vec::new(),
            messages_sent: 0,
        }
    }

    pub fn key(&self, node: usize) -> NodeKey {
        *self.nodes[node].key()
    }

    /// Brings up a link between `a` and `b` with a random delay of 1..=20 ms.
    pub fn connect(&mut self, a: usize, b: usize) {
        let delay = Duration::from_millis(self.rng.gen_range(1..=20));
        let now = self.now;
        let (ka, kb) = (self.key(a), self.key(b));
        let sa = self.nodes[a].link_up(kb, now).expect("slot at a");
        let sb = self.nodes[b].link_up(ka, now).expect("slot at b");
        let up = true;
        self.wires.insert(
            (a, sa),
            WireEnd {
                peer: b,
                peer_slot: sb,
                delay,
                up,
            },
        );
        self.wires.insert(
            (b, sb),
            WireEnd {
                peer: a,
                peer_slot: sa,
                delay,
                up,
            },
        );
        self.adjacent[a].push(sa);
        self.adjacent[b].push(sb);
        self.flush(a);
        self.flush(b);
    }

    /// The slot `a` reaches `b` on, if they are linked.
    pub fn slot_to(&self, a: usize, b: usize) -> Option<Slot> {
        self.adjacent[a]
            .iter()
            .copied()
            .find(|&slot| self.wires[&(a, slot)].peer == b)
    }

    /// The node on the other end of `node`'s link on `slot`, while the wire is up.
    pub fn neighbour(&self, node: usize, slot: Slot) -> Option<usize> {
        self.wires
            .get(&(node, slot))
            .filter(|end| end.up)
            .map(|end| end.peer)
    }

    /// Silently breaks the link between `a` and `b`: both routers only notice by timeout.
    pub fn cut(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let slot = self.slot_to(x, y).expect("linked");
            if let Some(end) = self.wires.get_mut(&(x, slot)) {
                end.up = false;
            }
        }
    }

    /// Closes the link between `a` and `b` on both sides at once.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let slot = self.slot_to(x, y).expect("linked");
            self.wires.remove(&(x, slot));
            self.adjacent[x].retain(|&s| s != slot);
            let now = self.now;
            self.nodes[x].link_down(slot, now).expect("live link");
            self.flush(x);
        }
    }

    /// Runs the network until `until`.
    pub fn run_until(&mut self, until: Duration) {
        loop {
            let next_delivery = self.in_flight.peek().map(|Reverse(d)| d.at);
            let next_timeout = self.timeouts.peek().map(|Reverse((at, _))| *at);
            let next = match (next_delivery, next_timeout) {
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
            if next_delivery == Some(next) {
                let Some(Reverse(delivery)) = self.in_flight.pop() else {
                    break;
                };
                self.deliver(delivery);
            } else if let Some(Reverse((at, node))) = self.timeouts.pop() {
                if self.scheduled[node] != Some(at) {
                    continue;
                }
                self.scheduled[node] = None;
                let now = self.now;
                self.nodes[node].handle_timeout(now);
                self.flush(node);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs the network for `span` more.
    pub fn run_for(&mut self, span: Duration) {
        self.run_until(self.now + span);
    }

    fn deliver(&mut self, delivery: Delivery) {
        let from_wire_up = self
            .wires
            .get(&(delivery.to, delivery.slot))
            .is_some_and(|end| end.up);
        if !from_wire_up {
            return;
        }
        let now = self.now;
        // Messages for a link the receiver already closed are refused; that is fine here.
        let _ = self.nodes[delivery.to].handle_message(delivery.slot, &delivery.bytes, now);
        self.flush(delivery.to);
    }

    /// Sends what `node` has to send, records its events, checks loops, queues its timeout.
    fn flush(&mut self, node: usize) {
        let mut buf = [0u8; LINK_MTU];
        let now = self.now;
        while let Some((slot, len)) = self.nodes[node].poll_transmit(now, &mut buf) {
            self.messages_sent += 1;
            let Some(end) = self.wires.get(&(node, slot)).copied() else {
                continue;
            };
            if !end.up || (self.loss > 0.0 && self.rng.gen_bool(self.loss)) {
                continue;
            }
            self.order += 1;
            self.in_flight.push(Reverse(Delivery {
                at: now + end.delay,
                order: self.order,
                to: end.peer,
                slot: end.peer_slot,
                bytes: buf[..len].to_vec(),
            }));
        }
        while let Some(event) = self.nodes[node].poll_event() {
            self.events.push((now, node, event));
            if let (true, RouteEvent::Installed { key, .. } | RouteEvent::Changed { key, .. }) =
                (self.check_loops, event)
            {
                let dst = self.node_of(&key).expect("known key");
                self.assert_loop_free(dst);
            }
        }
        if let Some(at) = self.nodes[node].poll_timeout() {
            if self.scheduled[node].is_none_or(|queued| at < queued) {
                self.scheduled[node] = Some(at);
                self.timeouts.push(Reverse((at, node)));
            }
        }
    }

    pub fn node_of(&self, key: &NodeKey) -> Option<usize> {
        self.nodes.iter().position(|r| r.key() == key)
    }

    pub fn route(&self, src: usize, dst: usize) -> Option<InstalledRoute> {
        self.nodes[src].route(&self.key(dst))
    }

    /// Follows the next hops of each node's selected route from `src` towards `dst`; returns
    /// the nodes visited, or panics on a loop.
    pub fn next_hop_path(&self, src: usize, dst: usize) -> Vec<usize> {
        let mut path = vec![src];
        let mut at = src;
        while at != dst {
            let Some(next) = self
                .route(at, dst)
                .and_then(|r| self.neighbour(at, r.next_hop))
            else {
                break;
            };
            assert!(
                !path.contains(&next),
                "routing loop towards {dst} at {:?}: {path:?} then {next}",
                self.now
            );
            path.push(next);
            at = next;
        }
        path
    }

    fn assert_loop_free(&self, dst: usize) {
        for src in 0..self.nodes.len() {
            self.next_hop_path(src, dst);
        }
    }

    /// Where `label` leads from `src` through live wires, if every slot names one.
    pub fn walk(&self, src: usize, label: &Label) -> Option<usize> {
        label
            .as_slice()
            .iter()
            .try_fold(src, |at, &slot| self.neighbour(at, Slot::new(slot)?))
    }

    /// Hop counts from `src` over live wires (`None`: unreachable).
    pub fn bfs(&self, src: usize) -> Vec<Option<u16>> {
        let mut dist = vec![None; self.nodes.len()];
        dist[src] = Some(0);
        let mut queue = VecDeque::from([src]);
        while let Some(at) = queue.pop_front() {
            let d = dist[at].unwrap_or(0);
            for &slot in &self.adjacent[at] {
                if let Some(peer) = self.neighbour(at, slot).filter(|&p| dist[p].is_none()) {
                    dist[peer] = Some(d + 1);
                    queue.push_back(peer);
                }
            }
        }
        dist
    }

    /// Asserts that every node routes to every node it can reach, over a shortest path whose
    /// label walks there, and has no route to nodes it cannot reach.
    pub fn assert_converged(&self) {
        for src in 0..self.nodes.len() {
            let dist = self.bfs(src);
            for (dst, hops) in dist.iter().enumerate().filter(|&(dst, _)| dst != src) {
                let route = self.route(src, dst);
                match (hops, route) {
                    (Some(hops), Some(route)) => {
                        assert_eq!(route.metric, *hops, "metric {src} -> {dst}");
                        assert_eq!(
                            self.walk(src, &route.label),
                            Some(dst),
                            "label {src} -> {dst}"
                        );
                        assert_eq!(first_hop(&route.label), Some(route.next_hop));
                    }
                    (None, None) => {}
                    (hops, route) => panic!("{src} -> {dst}: distance {hops:?}, route {route:?}"),
                }
            }
        }
    }

    /// The graph's diameter in hops (`None` if disconnected).
    pub fn diameter(&self) -> Option<u16> {
        (0..self.nodes.len())
            .map(|src| {
                self.bfs(src)
                    .into_iter()
                    .try_fold(0, |m, d| Some(m.max(d?)))
            })
            .try_fold(0, |m, d| Some(m.max(d?)))
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}
