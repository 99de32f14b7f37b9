//! The node's status snapshot for the local API: what was configured, plus live counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use rovy_dataplane::counters::WorkerCounters;

use crate::api::{PeerStatus, Status, WorkerStatus};
use crate::config::{Config, PeerKind};
use crate::protocol::{LinkEndpoint, TunnelId};

/// The parts of the status that do not change while the node runs.
pub struct StaticStatus {
    template: Status,
    /// The CPU each worker is pinned to, by worker index.
    worker_cores: Vec<usize>,
}

impl StaticStatus {
    /// Captures interface, identity, listeners, offloads in force, worker placement and peer
    /// configuration.
    pub fn new(
        config: &Config,
        backend: &str,
        listen: &[std::net::SocketAddr],
        offloads: &[&str],
        worker_cores: Vec<usize>,
    ) -> Self {
        let public = config.interface.private_key.public_key();
        let peers = config
            .peers
            .iter()
            .map(|p| PeerStatus {
                public_key: p.public_key.to_string(),
                kind: match p.kind {
                    PeerKind::Rovy => "rovy".into(),
                    PeerKind::WireGuard => "wireguard".into(),
                },
                endpoint: None,
                allowed_ips: p.allowed_ips.iter().map(ToString::to_string).collect(),
                last_handshake_secs_ago: None,
                rx_bytes: 0,
                tx_bytes: 0,
                persistent_keepalive: p.persistent_keepalive.map(|d| d.as_secs()),
            })
            .collect();
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
                peers,
            },
            worker_cores,
        }
    }

    /// The full snapshot at `now`. Drops counted by the control thread (handshakes refused,
    /// cookies demanded) are added to the totals, not to any worker.
    pub fn snapshot(
        &self,
        now: Duration,
        links: &LinkEndpoint,
        workers: &[Arc<WorkerCounters>],
        control: &WorkerCounters,
    ) -> Status {
        let mut status = self.template.clone();
        for (i, peer) in status.peers.iter_mut().enumerate() {
            if let Some(p) = links.tunnel(TunnelId(i)) {
                peer.endpoint = p.endpoint().map(|e| e.to_string());
                peer.last_handshake_secs_ago = p
                    .last_handshake()
                    .map(|at| now.saturating_sub(at).as_secs());
                (peer.rx_bytes, peer.tx_bytes) = p.shared().traffic();
            }
        }
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
        status
    }
}

fn named(counters: &WorkerCounters) -> BTreeMap<String, u64> {
    counters
        .drops()
        .nonzero()
        .map(|(name, n)| (name.to_owned(), n))
        .collect()
}
