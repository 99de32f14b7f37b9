//! Carrying out a [`Plan`] on the link endpoint, the workers' tables and the overlay.

use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::Dataplane;
use rovy_dataplane::tables::{PeerEntry, Tables};

use super::{Limits, PeerBook, PeerError, PeerSpec, PeerUpdate, Plan, plan, routes_for};
use crate::config::PeerKind;
use crate::daemon::overlay::Overlay;
use crate::daemon::routes::TunRoutes;
use crate::keys::PrivateKey;
use crate::protocol::{LinkEndpoint, TunnelId};

/// What an update did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

/// Everything a peer is part of while the node runs.
#[derive(Debug)]
pub struct Peers<'a> {
    pub book: &'a mut PeerBook,
    pub links: &'a mut LinkEndpoint,
    pub dataplane: &'a Dataplane,
    /// The overlay, which keeps the rovy peers as its neighbours.
    pub overlay: Option<&'a mut Overlay>,
    /// The kernel routes into the TUN for the peers' allowed IPs (which it leaves alone with
    /// `routes = false`); `None` where nothing looks at them.
    pub routes: Option<&'a mut TunRoutes>,
}

impl Peers<'_> {
    /// Plans `update` against the running peers (see [`plan`]) and carries it out at `now`:
    /// all of it, or, when it is refused, nothing.
    pub fn update(
        &mut self,
        update: &PeerUpdate,
        private_key: &PrivateKey,
        mtu: u16,
        now: Duration,
    ) -> Result<Applied, PeerError> {
        let limits = Limits {
            private_key,
            mtu,
            room: self.links.room_for_tunnels(),
        };
        let plan = plan(self.book, update, &limits)?;
        self.apply(plan, now)
    }

    /// Carries out `plan` (made against this book) at `now`. The workers see the peers, kinds
    /// and routes of the whole plan in one table store; then the kernel's routes into the TUN
    /// follow the allowed IPs.
    pub fn apply(&mut self, plan: Plan, now: Duration) -> Result<Applied, PeerError> {
        let applied = Applied {
            added: plan.added.len(),
            removed: plan.removed.len(),
            changed: plan.changed.len(),
        };
        if plan.is_empty() {
            return Ok(applied);
        }
        let shared_tables = self.dataplane.shared_tables();
        let mut tables = shared_tables.snapshot();
        for id in plan.removed {
            self.links.remove_tunnel(id, now);
            tables.set_peer(slot(id), None);
            self.set_neighbour(id, None, now, &mut tables);
            self.book.set(id, None);
        }
        for (id, spec, changes) in plan.changed {
            if changes.preshared_key {
                let psk = spec.config.preshared_key.as_ref().map(|k| *k.as_bytes());
                self.links.set_preshared_key(id, psk);
            }
            if changes.persistent_keepalive {
                self.links
                    .set_persistent_keepalive(id, now, spec.config.persistent_keepalive);
            }
            if changes.endpoint {
                if let Some(addr) = spec.resolved {
                    self.links.set_endpoint(id, LinkAddr::Udp(addr));
                    self.dial_if_idle(id);
                }
            }
            if changes.kind {
                let shared = self.links.tunnel(id).map(|t| Arc::clone(t.shared()));
                if let Some(shared) = shared {
                    tables.set_peer(slot(id), Some(entry(&spec, &shared)));
                    self.set_neighbour(id, neighbour(&spec, &shared), now, &mut tables);
                }
            }
            self.book.set(id, Some(spec));
        }
        // The plan checked what could refuse a tunnel (keys, room); should one be refused
        // anyway, the rest of the plan still goes through and the tables stay consistent.
        let mut refused = None;
        for spec in plan.added {
            let config = &spec.config;
            let added = self.links.add_tunnel(
                config.public_key.0,
                config.preshared_key.as_ref().map(|k| *k.as_bytes()),
                spec.resolved.map(LinkAddr::Udp),
                config.persistent_keepalive,
            );
            let id = match added {
                Ok(id) => id,
                Err(e) => {
                    refused = Some(PeerError {
                        peer: Some(config.public_key),
                        problem: e.to_string(),
                    });
                    continue;
                }
            };
            let shared = self.links.tunnel(id).map(|t| Arc::clone(t.shared()));
            if let Some(shared) = shared {
                tables.set_peer(slot(id), Some(entry(&spec, &shared)));
                self.set_neighbour(id, neighbour(&spec, &shared), now, &mut tables);
            }
            if spec.resolved.is_some() {
                self.links.initiate(id);
            }
            self.book.set(id, Some(spec));
        }
        let routes = routes_for(self.book.iter().map(|(id, spec)| (slot(id), spec)));
        let result = routes.map(|routes| tables.routes = Arc::new(routes));
        shared_tables.store(tables);
        // The workers route the new prefixes first, so a packet the kernel sends along a new
        // route finds its peer.
        if let Some(tun_routes) = self.routes.as_deref_mut() {
            tun_routes.sync(
                self.book
                    .iter()
                    .flat_map(|(_, spec)| spec.config.allowed_ips.iter()),
            );
        }
        match refused {
            Some(error) => Err(error),
            None => result.map(|()| applied),
        }
    }

    /// Starts a handshake with `id` unless it has a session or one is on its way: a peer given
    /// an endpoint is dialled, as at start.
    fn dial_if_idle(&mut self, id: TunnelId) {
        let idle = self
            .links
            .tunnel(id)
            .is_some_and(|t| t.sessions().current().is_none() && !t.handshake_in_flight());
        if idle {
            self.links.initiate(id);
        }
    }

    fn set_neighbour(
        &mut self,
        id: TunnelId,
        neighbour: Option<([u8; 32], Arc<PeerShared>)>,
        now: Duration,
        tables: &mut Tables,
    ) {
        if let Some(overlay) = self.overlay.as_deref_mut() {
            overlay.set_neighbour(slot(id), neighbour, now, tables);
        }
    }
}

/// A tunnel's slot in the workers' tables: the same number.
fn slot(id: TunnelId) -> u16 {
    u16::try_from(id.0).unwrap_or(u16::MAX)
}

fn entry(spec: &PeerSpec, shared: &Arc<PeerShared>) -> PeerEntry {
    PeerEntry {
        shared: Arc::clone(shared),
        kind: spec.config.kind,
    }
}

/// The overlay neighbour a peer is: a rovy peer is one, a WireGuard peer none.
fn neighbour(spec: &PeerSpec, shared: &Arc<PeerShared>) -> Option<([u8; 32], Arc<PeerShared>)> {
    (spec.config.kind == PeerKind::Rovy).then(|| (spec.config.public_key.0, Arc::clone(shared)))
}
