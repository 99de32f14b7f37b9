//! The tables the workers route by, built by control and swapped whole.
//!
//! A worker loads the current [`Tables`] once per packet (or per super-packet) with one
//! wait-free [`ArcSwap`] load; control builds a new value when links, peers or routes change
//! and publishes it with one store. No lock is taken on the data path and a worker never sees
//! a half-updated table. The large parts (allowed IPs, the peer list) sit behind their own
//! `Arc`s, so a link coming up copies 256 slot entries, not the routing table.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::peer::PeerShared;
use crate::route::{PeerSlot, RoutingTable};
use crate::switch::{LiveSlots, SlotSet};
use crate::wire::frame::LinkSlot;

/// What kind of peer a configured peer is: it decides what its link may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// A rovy node: IP packets and rovy frames, and its fc00 address is its own.
    Rovy,
    /// A plain WireGuard peer: IP packets within its allowed IPs only.
    WireGuard,
}

/// Live rovy links by 8-bit slot (DESIGN §1): slot 0 is the node itself, 1..=255 a link.
#[derive(Debug, Clone)]
pub struct LinkTable {
    by_slot: Vec<Option<Arc<PeerShared>>>,
    /// The link slot of each peer, by [`PeerSlot`]; 0 = none.
    slot_of: Vec<LinkSlot>,
    live: SlotSet,
}

impl LinkTable {
    /// No live link, for `peers` configured peers.
    pub fn new(peers: usize) -> Self {
        LinkTable {
            by_slot: vec![None; 256],
            slot_of: vec![0; peers],
            live: SlotSet::new(),
        }
    }

    /// Makes room for configured peers up to `peers` (peers are added while the node runs).
    pub fn grow(&mut self, peers: usize) {
        if self.slot_of.len() < peers {
            self.slot_of.resize(peers, 0);
        }
    }

    /// Puts `peer` on link slot `slot` (1..=255; 0 is refused). The peer's previous slot, if
    /// any, is freed.
    pub fn insert(&mut self, slot: LinkSlot, peer: Arc<PeerShared>) -> bool {
        let Some(of) = self.slot_of.get_mut(usize::from(peer.slot())) else {
            return false;
        };
        if slot == 0 {
            return false;
        }
        let previous = std::mem::replace(of, slot);
        if previous != 0 {
            self.by_slot[usize::from(previous)] = None;
            self.live.remove(previous);
        }
        self.by_slot[usize::from(slot)] = Some(peer);
        self.live.insert(slot);
        true
    }

    /// Frees link slot `slot`.
    pub fn remove(&mut self, slot: LinkSlot) {
        if let Some(peer) = self.by_slot[usize::from(slot)].take() {
            if let Some(of) = self.slot_of.get_mut(usize::from(peer.slot())) {
                *of = 0;
            }
        }
        self.live.remove(slot);
    }

    /// The peer on link slot `slot`.
    pub fn peer(&self, slot: LinkSlot) -> Option<&Arc<PeerShared>> {
        self.by_slot[usize::from(slot)].as_ref()
    }

    /// The link slot of configured peer `peer`, if its link is live.
    pub fn slot_of(&self, peer: PeerSlot) -> Option<LinkSlot> {
        self.slot_of
            .get(usize::from(peer))
            .copied()
            .filter(|&s| s != 0)
    }
}

impl LiveSlots for LinkTable {
    fn is_live(&self, slot: LinkSlot) -> bool {
        self.live.contains(slot)
    }
}

/// fc00::/8 destinations reached through the overlay, each by its upper peer: the end-to-end
/// session with that destination, whose endpoint is the label of its route
/// ([`crate::link_addr::LinkAddr::Overlay`]). Also the source check of what upper sessions
/// deliver: a packet is delivered only from the address its upper peer is listed under.
#[derive(Debug, Clone, Default)]
pub struct OverlayRoutes {
    by_addr: HashMap<Ipv6Addr, Arc<PeerShared>>,
}

impl OverlayRoutes {
    /// The upper peer of `addr`.
    pub fn get(&self, addr: &Ipv6Addr) -> Option<&Arc<PeerShared>> {
        self.by_addr.get(addr)
    }

    /// Routes `addr` through `upper`.
    pub fn insert(&mut self, addr: Ipv6Addr, upper: Arc<PeerShared>) {
        self.by_addr.insert(addr, upper);
    }

    /// Forgets `addr`.
    pub fn remove(&mut self, addr: &Ipv6Addr) {
        self.by_addr.remove(addr);
    }

    /// Destinations routed.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

/// A configured peer as the workers see it.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// Its shared state.
    pub shared: Arc<PeerShared>,
    /// What its link may carry.
    pub kind: PeerKind,
}

/// Everything a worker routes by.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Cryptokey routing: allowed IPs, and every rovy peer's own fc00 address.
    pub routes: Arc<RoutingTable>,
    /// The configured peers, by [`PeerSlot`]; `None` where a peer was removed (its slot rests
    /// before another peer gets it).
    pub peers: Arc<[Option<PeerEntry>]>,
    /// Live rovy links.
    pub links: LinkTable,
    /// Destinations through the overlay.
    pub overlay: Arc<OverlayRoutes>,
}

impl Tables {
    /// Tables over `peers` of `kinds` (same order), routed by `routes`, with no live link.
    pub fn new(routes: RoutingTable, peers: Vec<Arc<PeerShared>>, kinds: Vec<PeerKind>) -> Self {
        let links = LinkTable::new(peers.len());
        Tables {
            routes: Arc::new(routes),
            peers: peers
                .into_iter()
                .zip(kinds)
                .map(|(shared, kind)| Some(PeerEntry { shared, kind }))
                .collect(),
            links,
            overlay: Arc::default(),
        }
    }

    /// The configured peer in `slot`.
    pub fn peer(&self, slot: PeerSlot) -> Option<&Arc<PeerShared>> {
        self.entry(slot).map(|entry| &entry.shared)
    }

    fn entry(&self, slot: PeerSlot) -> Option<&PeerEntry> {
        self.peers.get(usize::from(slot)).and_then(Option::as_ref)
    }

    /// Whether configured peer `slot` is a rovy node (and so may send rovy frames).
    pub fn is_rovy(&self, slot: PeerSlot) -> bool {
        self.entry(slot)
            .is_some_and(|entry| entry.kind == PeerKind::Rovy)
    }

    /// Puts `entry` in `slot` (`None` removes the peer there), growing the table as needed.
    /// Copies the peer list once: change a batch of peers in one snapshot, then store it.
    pub fn set_peer(&mut self, slot: PeerSlot, entry: Option<PeerEntry>) {
        let at = usize::from(slot);
        let mut peers = self.peers.to_vec();
        if peers.len() <= at {
            peers.resize(at + 1, None);
        }
        peers[at] = entry;
        while peers.last().is_some_and(Option::is_none) {
            peers.pop();
        }
        self.links.grow(peers.len());
        self.peers = peers.into();
    }
}

/// The current tables, shared by every worker and replaced whole by control.
#[derive(Debug)]
pub struct SharedTables(ArcSwap<Tables>);

impl SharedTables {
    /// Starts with `tables`.
    pub fn new(tables: Tables) -> Self {
        SharedTables(ArcSwap::from_pointee(tables))
    }

    /// The current tables: wait-free, allocation-free; hold the guard for one packet or batch.
    pub fn load(&self) -> Guard<Arc<Tables>> {
        self.0.load()
    }

    /// A copy of the current tables, to change and [`SharedTables::store`].
    pub fn snapshot(&self) -> Tables {
        Tables::clone(&self.0.load())
    }

    /// Publishes `tables`: packets processed from now on see them.
    pub fn store(&self, tables: Tables) {
        self.0.store(Arc::new(tables));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: u16) -> Vec<Arc<PeerShared>> {
        (0..n).map(|i| Arc::new(PeerShared::new(i, None))).collect()
    }

    #[test]
    fn links_come_and_go_by_slot_and_peer() {
        let peers = peers(3);
        let mut links = LinkTable::new(3);
        assert!(
            !links.insert(0, Arc::clone(&peers[0])),
            "slot 0 is the node"
        );
        assert!(links.insert(7, Arc::clone(&peers[1])));
        assert!(links.is_live(7));
        assert_eq!(links.slot_of(1), Some(7));
        assert_eq!(links.peer(7).map(|p| p.slot()), Some(1));
        assert!(links.insert(9, Arc::clone(&peers[1])), "the peer moves");
        assert!(!links.is_live(7) && links.peer(7).is_none());
        assert_eq!(links.slot_of(1), Some(9));
        links.remove(9);
        assert_eq!(links.slot_of(1), None);
        assert!(!links.is_live(9));
        let stranger = Arc::new(PeerShared::new(40, None));
        assert!(!links.insert(3, stranger), "not a configured peer");
    }

    #[test]
    fn a_stored_table_is_seen_by_the_next_load_and_old_guards_keep_theirs() {
        let shared = SharedTables::new(Tables::new(
            RoutingTable::new(),
            peers(2),
            vec![PeerKind::Rovy, PeerKind::WireGuard],
        ));
        let before = shared.load();
        let mut next = shared.snapshot();
        let first = Arc::clone(next.peer(0).unwrap());
        next.links.insert(5, first);
        shared.store(next);
        assert_eq!(shared.load().links.slot_of(0), Some(5));
        assert_eq!(before.links.slot_of(0), None);
        assert!(before.is_rovy(0) && !before.is_rovy(1) && !before.is_rovy(2));
    }

    #[test]
    fn peers_come_and_go_by_slot_and_links_make_room_for_them() {
        let mut tables = Tables::new(RoutingTable::new(), peers(1), vec![PeerKind::Rovy]);
        let late = Arc::new(PeerShared::new(3, None));
        tables.set_peer(
            3,
            Some(PeerEntry {
                shared: Arc::clone(&late),
                kind: PeerKind::Rovy,
            }),
        );
        assert!(tables.peer(1).is_none() && !tables.is_rovy(2));
        assert!(Arc::ptr_eq(tables.peer(3).unwrap(), &late));
        assert!(tables.is_rovy(3));
        assert!(tables.links.insert(9, Arc::clone(&late)), "room for slot 3");
        tables.set_peer(0, None);
        assert!(tables.peer(0).is_none() && !tables.is_rovy(0));
        assert!(tables.peer(3).is_some(), "the others stay where they are");
        tables.set_peer(3, None);
        assert!(tables.peers.is_empty(), "trailing holes are trimmed");
    }
}
