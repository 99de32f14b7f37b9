//! The node's peers while it runs, and the one way they change: at start, on reload, through
//! WireGuard's userspace API and through `rovy-fast peer connect|disconnect`.
//!
//! Every change is a [`PeerUpdate`]: the whole set of peers the node is to run. [`plan`] checks
//! it (keys, kinds, allowed IPs, room) and compares it with the [`PeerBook`], the peers running
//! now, which gives a [`Plan`]: peers to remove, to add, and to change in place, each with what
//! changed. Nothing has been touched when a check fails, so a refused update leaves the node as
//! it was. [`Peers::apply`] then carries the plan out on the link endpoint, the workers' tables (one
//! store for the whole update) and the overlay, keeping them consistent: a peer's slot is the
//! same number in all of them, stays with the peer while it lives, and rests after it goes (see
//! [`crate::protocol::Endpoint::remove_tunnel`]). A peer whose settings did not change is not
//! touched at all, so its sessions keep flowing.

mod apply;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rovy_dataplane::buf::OVERLAY_MIN_MTU;
use rovy_dataplane::route::RoutingTable;

use crate::config::{IpPrefix, PeerConfig, PeerKind};
use crate::keys::{PrivateKey, PublicKey};
use crate::protocol::TunnelId;

pub(super) use apply::{Applied, Peers};

/// A peer as the node runs it: its settings, and its configured endpoint resolved to an
/// address (host names are resolved before an update is planned, never on the control thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The settings, as the config file (or `wg set`, or `peer connect`) gave them.
    pub config: PeerConfig,
    /// Where [`PeerConfig::endpoint`] is; `None` when the peer has none.
    pub resolved: Option<SocketAddr>,
}

/// The peers the node is to run.
#[derive(Debug, Clone, Default)]
pub struct PeerUpdate {
    /// Every peer, in the order new ones get their slots.
    pub peers: Vec<PeerSpec>,
    /// Peers whose endpoint is to be set even if it did not change (as `wg set … endpoint`
    /// does: go there now, even after the peer roamed elsewhere).
    pub reset_endpoints: HashSet<PublicKey>,
}

/// The peers running now, by slot.
#[derive(Debug, Default)]
pub struct PeerBook {
    by_slot: Vec<Option<PeerSpec>>,
    by_key: HashMap<PublicKey, TunnelId>,
}

impl PeerBook {
    /// The peer in slot `id`.
    pub fn get(&self, id: TunnelId) -> Option<&PeerSpec> {
        self.by_slot.get(id.0).and_then(Option::as_ref)
    }

    /// The slot of the peer with `key`.
    pub fn slot_of(&self, key: &PublicKey) -> Option<TunnelId> {
        self.by_key.get(key).copied()
    }

    /// Every peer, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (TunnelId, &PeerSpec)> {
        self.by_slot
            .iter()
            .enumerate()
            .filter_map(|(i, spec)| Some((TunnelId(i), spec.as_ref()?)))
    }

    /// How many peers run.
    pub fn count(&self) -> usize {
        self.by_key.len()
    }

    /// The running peers as an update that changes nothing: the start of a change to a few.
    pub fn to_update(&self) -> PeerUpdate {
        PeerUpdate {
            peers: self.iter().map(|(_, spec)| spec.clone()).collect(),
            reset_endpoints: HashSet::new(),
        }
    }

    fn set(&mut self, id: TunnelId, spec: Option<PeerSpec>) {
        if let Some(old) = self.by_slot.get(id.0).and_then(Option::as_ref) {
            self.by_key.remove(&old.config.public_key);
        }
        if let Some(spec) = &spec {
            self.by_key.insert(spec.config.public_key, id);
        }
        if self.by_slot.len() <= id.0 {
            self.by_slot.resize(id.0 + 1, None);
        }
        self.by_slot[id.0] = spec;
    }
}

/// What changed in a peer that stays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub kind: bool,
    pub endpoint: bool,
    pub allowed_ips: bool,
    pub preshared_key: bool,
    pub persistent_keepalive: bool,
}

impl Changes {
    fn between(old: &PeerSpec, new: &PeerSpec) -> Changes {
        let (a, b) = (&old.config, &new.config);
        Changes {
            kind: a.kind != b.kind,
            endpoint: a.endpoint != b.endpoint || old.resolved != new.resolved,
            allowed_ips: !same_prefixes(&a.allowed_ips, &b.allowed_ips),
            preshared_key: a.preshared_key != b.preshared_key,
            persistent_keepalive: a.persistent_keepalive != b.persistent_keepalive,
        }
    }

    fn any(self) -> bool {
        self != Changes::default()
    }
}

/// Whether two lists of allowed IPs hold the same prefixes. Their order means nothing: `wg
/// set`, `wg showconf` and a reload may list them in any order, and a peer whose list was only
/// reordered is not touched.
fn same_prefixes(a: &[IpPrefix], b: &[IpPrefix]) -> bool {
    a.iter().collect::<HashSet<_>>() == b.iter().collect::<HashSet<_>>()
}

/// What turns the running peers into an update's.
#[derive(Debug)]
pub struct Plan {
    /// Peers that go.
    pub removed: Vec<TunnelId>,
    /// Peers that come.
    pub added: Vec<PeerSpec>,
    /// Peers that stay with other settings: their slot, their new settings, what changed.
    pub changed: Vec<(TunnelId, PeerSpec, Changes)>,
}

impl Plan {
    /// Whether carrying it out changes nothing.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty() && self.changed.is_empty()
    }
}

/// Why an update was refused. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerError {
    /// The peer it is about, when it is about one.
    pub peer: Option<PublicKey>,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer {
            Some(key) => write!(f, "peer {key}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl std::error::Error for PeerError {}

fn refuse(peer: &PublicKey, problem: impl Into<String>) -> PeerError {
    PeerError {
        peer: Some(*peer),
        problem: problem.into(),
    }
}

/// What a node checks an update against.
#[derive(Debug)]
pub struct Limits<'a> {
    /// The node's own key: no peer may have its public half, or a key it cannot agree with.
    pub private_key: &'a PrivateKey,
    /// The interface MTU: a rovy peer needs room for the overlay.
    pub mtu: u16,
    /// Peers that can still be added (see [`crate::protocol::Endpoint::room_for_tunnels`]).
    pub room: usize,
}

/// Checks `update` and compares it with `book`. The checks are the config file's (no key of
/// our own or twice, a rovy peer owns an fc00 address and has the MTU it needs) except that
/// allowed IPs of two peers may overlap, as in WireGuard, with the longest prefix winning; the
/// same prefix twice is refused.
pub fn plan(book: &PeerBook, update: &PeerUpdate, limits: &Limits<'_>) -> Result<Plan, PeerError> {
    let own = limits.private_key.public_key();
    let mut seen = HashSet::with_capacity(update.peers.len());
    for spec in &update.peers {
        let key = &spec.config.public_key;
        if *key == own {
            return Err(refuse(key, "is this node's own public key"));
        }
        if !limits.private_key.agrees_with(key) {
            return Err(refuse(
                key,
                "is a low-order point; no handshake with it can succeed",
            ));
        }
        if !seen.insert(*key) {
            return Err(refuse(key, "is listed twice"));
        }
        if spec.config.kind == PeerKind::Rovy {
            if key.address().is_none() {
                return Err(refuse(
                    key,
                    "has no fc00::/8 address, so it cannot be a rovy peer (make it a \
                     wireguard peer)",
                ));
            }
            if usize::from(limits.mtu) < OVERLAY_MIN_MTU {
                return Err(refuse(
                    key,
                    format!(
                        "is a rovy peer, which needs an mtu of at least {OVERLAY_MIN_MTU} \
                         (this node's is {})",
                        limits.mtu
                    ),
                ));
            }
        }
    }
    // The prefixes are checked here, under each peer's place in the update; the table the
    // workers get is built again once new peers have their slots.
    routes_for(
        update
            .peers
            .iter()
            .enumerate()
            .map(|(i, spec)| (i as u16, spec)),
    )?;
    let mut plan = Plan {
        removed: Vec::new(),
        added: Vec::new(),
        changed: Vec::new(),
    };
    for (id, running) in book.iter() {
        if !seen.contains(&running.config.public_key) {
            plan.removed.push(id);
        }
    }
    for spec in &update.peers {
        let key = &spec.config.public_key;
        match book.slot_of(key).and_then(|id| Some((id, book.get(id)?))) {
            Some((id, running)) => {
                let mut changes = Changes::between(running, spec);
                changes.endpoint |= update.reset_endpoints.contains(key) && spec.resolved.is_some();
                if changes.any() {
                    plan.changed.push((id, spec.clone(), changes));
                }
            }
            None => plan.added.push(spec.clone()),
        }
    }
    if plan.added.len() > limits.room {
        return Err(PeerError {
            peer: None,
            problem: format!(
                "{} peers to add, room for {} (slots of removed peers rest before they are \
                 given again)",
                plan.added.len(),
                limits.room
            ),
        });
    }
    Ok(plan)
}

/// The cryptokey routing of `peers`, each under its slot: their allowed IPs, and each rovy
/// peer's own fc00 address. The same prefix for two peers is refused.
fn routes_for<'a>(
    peers: impl Iterator<Item = (u16, &'a PeerSpec)>,
) -> Result<RoutingTable, PeerError> {
    let mut routes = RoutingTable::new();
    let mut owner: HashMap<(IpAddr, u8), PublicKey> = HashMap::new();
    for (slot, spec) in peers {
        let key = spec.config.public_key;
        let own = (spec.config.kind == PeerKind::Rovy)
            .then(|| key.address())
            .flatten()
            .map(|addr| (IpAddr::V6(addr), 128));
        let prefixes = spec
            .config
            .allowed_ips
            .iter()
            .map(|p| (p.masked().addr(), p.prefix_len()))
            .chain(own);
        for (addr, len) in prefixes {
            if let Some(other) = owner.insert((addr, len), key).filter(|other| *other != key) {
                return Err(refuse(
                    &key,
                    format!("{addr}/{len} is already an allowed IP of peer {other}"),
                ));
            }
            routes
                .insert(addr, len, slot)
                .map_err(|e| refuse(&key, format!("{addr}/{len}: {e:?}")))?;
        }
    }
    Ok(routes)
}
