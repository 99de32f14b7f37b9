//! The route table: per destination key, the routes heard from neighbours, the feasibility
//! distance that keeps them loop-free, the selected route and the learned way back.
//!
//! Destinations live in a slab addressed by index and generation, so deadlines, the change log
//! and a full-table dump in progress can name one without holding a borrow or hashing its key.

use std::collections::HashMap;
use std::time::Duration;

use super::label::{Label, MAX_ANNOUNCED_LABEL_LEN, Slot};
use super::origin::Proof;
use super::{
    HYSTERESIS_DEN, HYSTERESIS_NUM, InstalledRoute, MAX_ROUTES_PER_DESTINATION, NodeKey,
    RouteSource,
};

/// Whether seqno `a` is newer than `b` in wrapping (RFC 1982) order.
pub(super) fn seqno_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The smallest metric this node has announced for a destination's current seqno (RFC 8966
/// §3.5.1): only routes that improve on it are feasible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Feasibility {
    pub seqno: u32,
    pub metric: u16,
}

impl Feasibility {
    /// Whether a neighbour's announcement of `(seqno, metric)` is feasible.
    fn admits(self, seqno: u32, metric: u16) -> bool {
        seqno_newer(seqno, self.seqno) || (seqno == self.seqno && metric < self.metric)
    }
}

/// A route heard from the neighbour on `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    pub slot: Slot,
    /// `slot ‖` the neighbour's label.
    pub label: Label,
    /// The neighbour's metric plus the link cost.
    pub metric: u16,
    /// The neighbour's metric, which feasibility compares.
    pub announced_metric: u16,
    pub seqno: u32,
    pub refreshed: Duration,
}

/// A way back to a source, learned from a frame it sent here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReturnPath {
    pub label: Label,
    pub next_hop: Slot,
    pub refreshed: Duration,
}

/// What this node tells its neighbours about a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announcement {
    pub seqno: u32,
    pub metric: u16,
    pub label: Label,
}

/// Everything known about one destination key.
#[derive(Debug)]
pub(super) struct Destination {
    pub key: NodeKey,
    pub generation: u32,
    pub feasibility: Option<Feasibility>,
    /// Heard routes, at most one per first hop.
    pub routes: [Option<Route>; MAX_ROUTES_PER_DESTINATION],
    pub selected: Option<Slot>,
    pub return_path: Option<ReturnPath>,
    /// What was last put in the change log (`None`: retracted or never announced).
    pub announced: Option<Announcement>,
    /// What `poll_event` last reported.
    pub reported: Option<InstalledRoute>,
    pub event_pending: bool,
    /// Number of this destination's latest change-log entry.
    pub last_change: u64,
    pub retractions_left: u8,
    pub retract_due: Option<Duration>,
    /// Next SEQNO_REQ while starving.
    pub seqno_request_due: Option<Duration>,
    /// Last SEQNO_REQ forwarded for this key (seqno, hops left, when), against request
    /// storms.
    pub forwarded_request: Option<(u32, u8, Duration)>,
    /// Since when the destination has had no route at all.
    pub empty_since: Option<Duration>,
    /// The deadline queued for this destination, if any.
    pub armed: Option<Duration>,
    /// The origin's newest verified proof: routes with seqnos up to its seqno are accepted.
    pub proof: Option<Proof>,
    /// The change-log number from which on `proof` is new: links that have not read that far
    /// get it with the destination's entry.
    pub proof_change: u64,
}

impl Destination {
    fn new(key: NodeKey, generation: u32) -> Self {
        Self {
            key,
            generation,
            feasibility: None,
            routes: [None; MAX_ROUTES_PER_DESTINATION],
            selected: None,
            return_path: None,
            announced: None,
            reported: None,
            event_pending: false,
            last_change: 0,
            retractions_left: 0,
            retract_due: None,
            seqno_request_due: None,
            forwarded_request: None,
            empty_since: None,
            armed: None,
            proof: None,
            proof_change: 0,
        }
    }

    pub fn route(&self, slot: Slot) -> Option<&Route> {
        self.routes.iter().flatten().find(|r| r.slot == slot)
    }

    pub fn heard(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().flatten()
    }

    pub fn selected_route(&self) -> Option<&Route> {
        self.route(self.selected?)
    }

    /// Whether a route is feasible against the current feasibility distance.
    pub fn is_feasible(&self, route: &Route) -> bool {
        self.feasibility
            .is_none_or(|fd| fd.admits(route.seqno, route.announced_metric))
    }

    /// Stores (or refreshes) the route heard on `route.slot`. With all places taken, a
    /// feasible newcomer replaces the worst unselected route (unfeasible ones first) when it is
    /// better; otherwise it is not kept.
    pub fn store(&mut self, route: Route) {
        let place = match self
            .routes
            .iter()
            .position(|r| r.is_some_and(|r| r.slot == route.slot))
        {
            Some(i) => Some(i),
            None => self
                .routes
                .iter()
                .position(Option::is_none)
                .or_else(|| self.victim(&route)),
        };
        if let Some(i) = place {
            self.routes[i] = Some(route);
        }
    }

    fn victim(&self, newcomer: &Route) -> Option<usize> {
        if !self.is_feasible(newcomer) {
            return None;
        }
        let (i, worst) = self
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (i, r)))
            .filter(|(_, r)| Some(r.slot) != self.selected)
            .max_by_key(|(_, r)| (!self.is_feasible(r), r.metric))?;
        (!self.is_feasible(&worst) || worst.metric > newcomer.metric).then_some(i)
    }

    /// Forgets the route heard on `slot`.
    pub fn forget(&mut self, slot: Slot) {
        for place in &mut self.routes {
            if place.is_some_and(|r| r.slot == slot) {
                *place = None;
            }
        }
    }

    /// Selects the lowest-metric feasible route, keeping the current one unless the best is
    /// at least 10 % better, and lowers the feasibility distance to what will be announced.
    pub fn reselect(&mut self) {
        let current = self.selected_route().filter(|r| self.is_feasible(r));
        let best = self
            .heard()
            .filter(|r| self.is_feasible(r))
            .min_by_key(|r| (r.metric, r.slot));
        let chosen = match (current, best) {
            (Some(c), Some(b))
                if u32::from(b.metric) * HYSTERESIS_DEN <= u32::from(c.metric) * HYSTERESIS_NUM =>
            {
                Some(*b)
            }
            (Some(c), _) => Some(*c),
            (None, b) => b.copied(),
        };
        self.selected = chosen.map(|r| r.slot);
        if let Some(r) = chosen {
            self.feasibility = Some(match self.feasibility {
                Some(fd) if fd.seqno == r.seqno => Feasibility {
                    seqno: r.seqno,
                    metric: fd.metric.min(r.metric),
                },
                Some(fd) if !seqno_newer(r.seqno, fd.seqno) => fd,
                _ => Feasibility {
                    seqno: r.seqno,
                    metric: r.metric,
                },
            });
        }
    }

    /// What to announce now: the selected route if its label leaves room for the receiver's
    /// slot.
    pub fn announcement(&self) -> Option<Announcement> {
        let r = self.selected_route()?;
        (r.label.len() <= MAX_ANNOUNCED_LABEL_LEN).then_some(Announcement {
            seqno: r.seqno,
            metric: r.metric,
            label: r.label,
        })
    }

    /// Whether only a newer seqno from the origin can help: no feasible route while an
    /// unfeasible one is offered (starvation, RFC 8966 §3.8.2.1), or an unfeasible route that
    /// would be selected for its metric if it were feasible.
    pub fn wants_newer_seqno(&self) -> bool {
        let selected = self.selected_route().map(|r| u32::from(r.metric));
        self.heard().any(|r| {
            !self.is_feasible(r)
                && selected
                    .is_none_or(|m| u32::from(r.metric) * HYSTERESIS_DEN <= m * HYSTERESIS_NUM)
        })
    }

    /// The route traffic uses: the selected one, else the learned way back.
    pub fn effective(&self) -> Option<InstalledRoute> {
        match (self.selected_route(), self.return_path) {
            (Some(r), _) => Some(InstalledRoute {
                label: r.label,
                metric: r.metric,
                next_hop: r.slot,
                source: RouteSource::Announced,
            }),
            (None, Some(back)) => Some(InstalledRoute {
                label: back.label,
                metric: back.label.len() as u16,
                next_hop: back.next_hop,
                source: RouteSource::ReturnPath,
            }),
            (None, None) => None,
        }
    }

    /// Whether nothing routes to this destination any more.
    pub fn is_empty(&self) -> bool {
        self.heard().next().is_none() && self.return_path.is_none()
    }
}

/// Heap bytes one destination costs at least: its slab place and its index entry.
pub(super) const DESTINATION_BYTES: usize =
    size_of::<Option<Destination>>() + size_of::<(NodeKey, usize)>() + 1;

/// All destinations, capped at a fixed count.
#[derive(Debug)]
pub(super) struct Table {
    slab: Vec<Option<Destination>>,
    index: HashMap<NodeKey, usize>,
    free: Vec<usize>,
    next_generation: u32,
    cap: usize,
}

impl Table {
    pub fn new(cap: usize) -> Self {
        Self {
            slab: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
            next_generation: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn slab_len(&self) -> usize {
        self.slab.len()
    }

    pub fn find(&self, key: &NodeKey) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The destination at `idx`, whatever its generation.
    pub fn at(&self, idx: usize) -> Option<&Destination> {
        self.slab.get(idx)?.as_ref()
    }

    pub fn at_mut(&mut self, idx: usize) -> Option<&mut Destination> {
        self.slab.get_mut(idx)?.as_mut()
    }

    /// The destination at `idx` if it is still generation `generation`.
    pub fn get(&self, idx: usize, generation: u32) -> Option<&Destination> {
        self.at(idx).filter(|d| d.generation == generation)
    }

    pub fn get_mut(&mut self, idx: usize, generation: u32) -> Option<&mut Destination> {
        self.at_mut(idx).filter(|d| d.generation == generation)
    }

    /// The index of `key`'s destination, created if new; `None` when the table is full.
    pub fn find_or_insert(&mut self, key: &NodeKey) -> Option<usize> {
        if let Some(idx) = self.find(key) {
            return Some(idx);
        }
        if self.index.len() >= self.cap {
            return None;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let dest = Destination::new(*key, self.next_generation);
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slab[idx] = Some(dest);
                idx
            }
            None => {
                self.slab.push(Some(dest));
                self.slab.len() - 1
            }
        };
        self.index.insert(*key, idx);
        Some(idx)
    }

    pub fn remove(&mut self, idx: usize) {
        if let Some(dest) = self.slab.get_mut(idx).and_then(Option::take) {
            self.index.remove(&dest.key);
            self.free.push(idx);
        }
    }

    /// Heap bytes the table holds: the slab's places, the index (hashbrown keeps a key, a
    /// value and one control byte per bucket) and the free list, at their capacities.
    pub fn heap_bytes(&self) -> usize {
        self.slab.capacity() * size_of::<Option<Destination>>()
            + self.index.capacity() * (size_of::<(NodeKey, usize)>() + 1)
            + self.free.capacity() * size_of::<usize>()
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &Destination)> {
        self.slab
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.as_ref().map(|d| (i, d)))
    }
}
