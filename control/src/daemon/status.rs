//! The node's status snapshot for the local API: what was configured, plus live counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use rovy_dataplane::counters::WorkerCounters;

use super::overlay::Overlay;
use super::peers::PeerBook;
use crate::api::{
    HandshakeCounts, LinkStatus, PeerStatus, RouteList, RouteStatus, Status, WorkerStatus,
};
use crate::config::{Config, PeerKind};
use crate::keys::PublicKey;
use crate::protocol::LinkEndpoint;
use crate::routing::RouteSource;

/// The parts of the status that do not change while the node runs.
pub struct StaticStatus {
    template: Status,
    /// The CPU each worker is pinned to, by worker index.
    worker_cores: Vec<usize>,
}

impl StaticStatus {
    /// Captures interface, identity, listeners, offloads in force and worker placement.
    pub fn new(
        config: &Config,
        backend: &str,
        listen: &[std::net::SocketAddr],
        offloads: &[&str],
        worker_cores: Vec<usize>,
    ) -> Self {
        let public = config.interface.private_key.public_key();
        StaticStatus {
            template: Status {
                interface: config.interface.name.clone(),
                public_key: public.to_string(),
                address: public.address().map(|a| a.to_string()),
                backend: backend.to_owned(),
                listen: listen.iter().map(ToString::to_string).collect(),
                offloads: offloads.iter().map(|&name| name.to_owned()).collect(),
                workers: Vec::new(),
                drops: BTreeMap::new(),
                drops_total: 0,
                peers: Vec::new(),
                links: Vec::new(),
                routes: 0,
                handshakes: HandshakeCounts::default(),
            },
            worker_cores,
        }
    }

    /// The full snapshot with `peers` (see [`peer_statuses`]). Drops counted by the control
    /// thread (handshakes refused, cookies demanded) are added to the totals, not to any worker.
    pub fn snapshot(
        &self,
        peers: Vec<PeerStatus>,
        workers: &[Arc<WorkerCounters>],
        control: &WorkerCounters,
        overlay: Option<&Overlay>,
        handshakes: HandshakeCounts,
    ) -> Status {
        let mut status = self.template.clone();
        status.handshakes = handshakes;
        if let Some(overlay) = overlay {
            let router = overlay.router();
            status.links = router
                .links()
                .map(|(slot, key)| LinkStatus {
                    slot: slot.get(),
                    public_key: PublicKey(*key).to_string(),
                    rtt_ms: router.link_rtt(slot).map(|rtt| rtt.as_millis() as u64),
                })
                .collect();
            status.routes = router.destinations();
        }
        status.peers = peers;
        status.workers = workers
            .iter()
            .enumerate()
            .map(|(i, c)| WorkerStatus {
                core: self.worker_cores.get(i).copied().unwrap_or(i),
                rx_packets: c.rx_packets.load(Ordering::Relaxed),
                tx_packets: c.tx_packets.load(Ordering::Relaxed),
                rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
                tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
                tun_writes: c.tun_writes.load(Ordering::Relaxed),
                drops: named(c),
            })
            .collect();
        status.drops_from_workers();
        for (reason, count) in named(control) {
            *status.drops.entry(reason).or_default() += count;
            status.drops_total += count;
        }
        // Cookie replies go from the workers (under a flood) and from control; each is counted
        // as a cookie_required drop of the message it answers.
        status.handshakes.cookies_sent = status.drops.get("cookie_required").copied().unwrap_or(0);
        status
    }
}

/// Every running peer, in slot order: its settings and what its tunnel knows now.
pub fn peer_statuses(now: Duration, book: &PeerBook, links: &LinkEndpoint) -> Vec<PeerStatus> {
    book.iter()
        .map(|(id, spec)| {
            let config = &spec.config;
            let mut peer = PeerStatus {
                public_key: config.public_key.to_string(),
                kind: match config.kind {
                    PeerKind::Rovy => "rovy".into(),
                    PeerKind::WireGuard => "wireguard".into(),
                },
                endpoint: None,
                allowed_ips: config.allowed_ips.iter().map(ToString::to_string).collect(),
                last_handshake_secs_ago: None,
                rx_bytes: 0,
                tx_bytes: 0,
                rx_packets: 0,
                tx_packets: 0,
                persistent_keepalive: config.persistent_keepalive.map(|d| d.as_secs()),
            };
            if let Some(tunnel) = links.tunnel(id) {
                peer.endpoint = tunnel.endpoint().map(|e| e.to_string());
                peer.last_handshake_secs_ago = tunnel
                    .last_handshake()
                    .map(|at| now.saturating_sub(at).as_secs());
                (peer.rx_bytes, peer.tx_bytes) = tunnel.shared().traffic();
                (peer.rx_packets, peer.tx_packets) = tunnel.shared().packets();
            }
            peer
        })
        .collect()
}

/// Every route of `overlay` as `route list` shows it, by metric then address.
pub fn route_list(now: Duration, overlay: Option<&Overlay>) -> RouteList {
    let Some(overlay) = overlay else {
        return RouteList { routes: Vec::new() };
    };
    let router = overlay.router();
    let neighbour = |slot| {
        router
            .links()
            .find(|(s, _)| *s == slot)
            .map(|(_, key)| PublicKey(*key).to_string())
            .unwrap_or_default()
    };
    let mut routes: Vec<RouteStatus> = router
        .routes(now)
        .map(|info| {
            let key = PublicKey(*info.key);
            RouteStatus {
                address: key.address().map(|a| a.to_string()),
                peer_id: key.peer_id(),
                public_key: key.to_string(),
                label: info.route.label.to_string(),
                metric: info.route.metric,
                next_hop: neighbour(info.route.next_hop),
                next_hop_slot: info.route.next_hop.get(),
                age_secs: info.age.as_secs(),
                seqno: info.seqno,
                source: match info.route.source {
                    RouteSource::Announced => "announced".to_owned(),
                    RouteSource::ReturnPath => "return-path".to_owned(),
                },
                alternates: info.alternates().count(),
            }
        })
        .collect();
    routes.sort_by(|a, b| (a.metric, &a.address).cmp(&(b.metric, &b.address)));
    RouteList { routes }
}

fn named(counters: &WorkerCounters) -> BTreeMap<String, u64> {
    counters
        .drops()
        .nonzero()
        .map(|(name, n)| (name.to_owned(), n))
        .collect()
}
