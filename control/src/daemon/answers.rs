//! What the control thread answers its local API with: status, routes and peers, and the peer
//! commands (`rovy-fast peer connect|disconnect`), which change peers as any update does.

use std::time::Duration;

use super::peers::PeerSpec;
use super::status;
use super::{CALLS_PER_TURN, Control};
use crate::api::{
    self, ConnectRequest, DisconnectRequest, PeerList, PeerStatus, Refusal, RouteList, Status,
};
use crate::config::{Endpoint, PeerConfig, PeerKind};
use crate::keys::PublicKey;

/// The control thread's answers, as of `now`.
pub(super) struct NodeAnswers<'a> {
    pub control: &'a mut Control,
    pub now: Duration,
}

impl NodeAnswers<'_> {
    fn peer_status(&self, key: &PublicKey) -> Option<PeerStatus> {
        let c = &self.control;
        let target = key.to_string();
        status::peer_statuses(self.now, &c.book, &c.links)
            .into_iter()
            .find(|peer| peer.public_key == target)
    }
}

impl Control {
    /// Answers up to [`CALLS_PER_TURN`] of the local API's calls waiting; with more waiting,
    /// the loop comes back for them at once.
    pub(super) fn take_api_calls(&mut self) {
        for _ in 0..CALLS_PER_TURN {
            let Some(call) = self.api_calls.next_call() else {
                return;
            };
            let now = self.now();
            call.answer_with(|request| {
                api::answer(&mut NodeAnswers { control: self, now }, request)
            });
        }
        self.requests_wake.notify();
    }

    /// The node's status at `now`, for the API and metrics scrapes.
    pub(super) fn status_snapshot(&self, now: Duration) -> Status {
        self.status.snapshot(
            status::peer_statuses(now, &self.book, &self.links),
            &self.workers,
            &self.drops,
            self.overlay.as_ref(),
            self.handshake_counts,
        )
    }
}

impl api::Answers for NodeAnswers<'_> {
    fn status(&self) -> Status {
        self.control.status_snapshot(self.now)
    }

    fn routes(&self) -> RouteList {
        status::route_list(self.now, self.control.overlay.as_ref())
    }

    fn peers(&self) -> PeerList {
        PeerList {
            peers: status::peer_statuses(self.now, &self.control.book, &self.control.links),
        }
    }

    /// A rovy peer at an endpoint: added if new (no allowed IPs: its fc00 address is its
    /// route), else sent there at once. Dialled either way.
    fn connect(&mut self, request: ConnectRequest) -> Result<PeerStatus, Refusal> {
        let (key, addr) = request.target()?;
        let mut update = self.control.book.to_update();
        let at = update
            .peers
            .iter()
            .position(|spec| spec.config.public_key == key);
        let spec = match at {
            Some(at) => &mut update.peers[at],
            None => {
                update.peers.push(PeerSpec {
                    config: PeerConfig {
                        public_key: key,
                        kind: PeerKind::Rovy,
                        endpoint: None,
                        allowed_ips: Vec::new(),
                        preshared_key: None,
                        persistent_keepalive: None,
                    },
                    resolved: None,
                });
                update
                    .peers
                    .last_mut()
                    .ok_or_else(|| Refusal::Invalid("the peer could not be added".to_owned()))?
            }
        };
        spec.config.endpoint = Some(Endpoint::Addr(addr));
        spec.resolved = Some(addr);
        update.reset_endpoints.insert(key);
        let applied = self
            .control
            .update_peers(&update)
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        tracing::info!(
            "peer connect: {key} at {addr} ({})",
            if applied.added > 0 {
                "added"
            } else {
                "endpoint set"
            }
        );
        self.peer_status(&key)
            .ok_or_else(|| Refusal::Invalid("the peer could not be added".to_owned()))
    }

    /// Removes the peer named by PeerID or public key.
    fn disconnect(&mut self, request: DisconnectRequest) -> Result<PeerStatus, Refusal> {
        let key = request.key()?;
        let before = self
            .peer_status(&key)
            .ok_or_else(|| Refusal::NotFound(format!("{key} is not a peer of this node")))?;
        let mut update = self.control.book.to_update();
        update.peers.retain(|spec| spec.config.public_key != key);
        self.control
            .update_peers(&update)
            .map_err(|e| Refusal::Invalid(e.to_string()))?;
        tracing::info!("peer disconnect: {key} removed");
        Ok(before)
    }
}
