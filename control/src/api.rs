//! The node's local status API (DESIGN §4): what a running node reports about itself, the
//! server on `/run/rovy/NAME.sock` (see [`default_socket_path`] for nodes in other network
//! namespaces), and the client behind `rovy-fast status`.
//!
//! The socket is served on a thread of its own ([`calls`]): the control thread only answers
//! the requests it is handed, a bounded number per turn of its loop, and never touches a
//! client's connection, so no client can delay its timers.
//!
//! The protocol is HTTP/1.x over a Unix stream socket (requests parsed by `httparse`, bodies
//! by `Content-Length`), one request per connection, so `curl
//! --unix-socket /run/rovy/rovy0.sock http://node/v0/status` works as well as the CLI does:
//! - `GET /v0/status` → `200`, `application/json`: a [`Status`], serialized on one line;
//! - `GET /v0/route/list` → `200`, `application/json`: a [`RouteList`];
//! - `GET /v0/peer/list` → `200`, `application/json`: a [`PeerList`];
//! - `POST /v0/peer/connect` with a [`ConnectRequest`] → `200` and the peer's [`PeerStatus`],
//!   or `400` and why not;
//! - `POST /v0/peer/disconnect` with a [`DisconnectRequest`] → `200` and the [`PeerStatus`] of
//!   the peer removed, or `404`;
//! - `GET /v0/ping` → `200`, `text/plain`: `ok`;
//! - any other path → `404`, the other method → `405`, a malformed or oversized request → `400`,
//!   a request not complete within [`CLIENT_DEADLINE`] → `408`, a node that does not answer
//!   within [`API_LIMITS`]' answer deadline → `503`.
//!
//! The socket is root-only (mode 0600): the status names every peer, its endpoint and traffic,
//! and the peer commands change them.

pub mod calls;
mod client;
mod render;
pub mod request;
mod server;
mod socket_file;
mod socket_path;
pub mod uapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::keys::PublicKey;

pub use client::{
    FETCH_TIMEOUT, fetch_status, parse_response, peer_connect_command, peer_disconnect_command,
    peer_list_command, request_bytes, route_list_command, status_command,
};
pub use render::{render_peers, render_routes, render_status};
pub use request::{MAX_REQUEST_BODY_LEN, MAX_REQUEST_HEAD_LEN};
pub use server::{
    API_LIMITS, Answers, ApiAnswer, ApiCalls, ApiRequest, ApiServer, CLIENT_DEADLINE, Http, answer,
    serve,
};
pub use socket_file::SocketFile;
pub use socket_path::{NetnsName, default_socket_path};

/// Directory of the per-interface status sockets; nodes outside the initial network namespace
/// use a subdirectory (see [`default_socket_path`]).
pub const SOCKET_DIR: &str = "/run/rovy";

/// Request path of the node's [`Status`].
pub const STATUS_PATH: &str = "/v0/status";

/// Request path of the node's [`RouteList`].
pub const ROUTES_PATH: &str = "/v0/route/list";

/// Request path answered `ok` by a live node.
pub const PING_PATH: &str = "/v0/ping";

/// Request path of the node's [`PeerList`].
pub const PEERS_PATH: &str = "/v0/peer/list";

/// `POST` a [`ConnectRequest`] here to connect to a rovy peer.
pub const CONNECT_PATH: &str = "/v0/peer/connect";

/// `POST` a [`DisconnectRequest`] here to remove a peer.
pub const DISCONNECT_PATH: &str = "/v0/peer/disconnect";

/// A snapshot of a running node, as `GET /v0/status` returns it.
///
/// Keys are WireGuard's base64 form; addresses and endpoints are in the config's notation, so a
/// status reads like the config that made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// TUN interface name.
    pub interface: String,
    /// The node's public key.
    pub public_key: String,
    /// The node's fc00::/8 overlay address; `None` for a key that owns none.
    pub address: Option<String>,
    /// Worker I/O backend: `"uring"` or `"epoll"`.
    pub backend: String,
    /// UDP listen addresses.
    pub listen: Vec<String>,
    /// Offloads in use on the TUN and UDP sockets (e.g. `"gso"`, `"gro"`).
    pub offloads: Vec<String>,
    /// One entry per worker, in core order.
    pub workers: Vec<WorkerStatus>,
    /// Drops by reason summed over the workers, non-zero reasons only; see
    /// [`Status::drops_from_workers`].
    pub drops: BTreeMap<String, u64>,
    /// Sum of `drops`.
    pub drops_total: u64,
    /// Running peers by slot: at start the config's, in file order; a peer added later takes
    /// the first free slot.
    pub peers: Vec<PeerStatus>,
    /// Live rovy links, by slot.
    pub links: Vec<LinkStatus>,
    /// Destinations the node has a route to.
    pub routes: usize,
    /// The link handshakes the control thread has handled.
    #[serde(default)]
    pub handshakes: HandshakeCounts,
}

/// Link handshake messages counted by the control thread.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandshakeCounts {
    /// Initiations sent (first tries and retries).
    pub initiations_sent: u64,
    /// Responses sent to peers' initiations.
    pub responses_sent: u64,
    /// Handshake messages (initiations, responses, cookie replies) received and handled.
    pub received: u64,
    /// Cookie replies sent instead of a response while under load, by the workers and by
    /// control (the `cookie_required` drops).
    pub cookies_sent: u64,
}

/// Every running peer, as `GET /v0/peer/list` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerList {
    /// In slot order (config order for the configured peers).
    pub peers: Vec<PeerStatus>,
}

/// A rovy peer to connect to: `POST /v0/peer/connect`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Its public key, base64.
    pub public_key: String,
    /// Where it listens: `IP:PORT` or `[IPV6]:PORT` (the CLI resolves host names first).
    pub endpoint: String,
}

impl ConnectRequest {
    /// The peer and where it listens, as the node takes them: a rovy node's key (one that owns
    /// an fc00::/8 address) and a literal socket address with a port. No I/O: the CLI resolved
    /// any host name before it sent the request.
    ///
    /// # Errors
    /// [`Refusal::Invalid`], saying which field is wrong.
    pub fn target(&self) -> Result<(PublicKey, SocketAddr), Refusal> {
        let key: PublicKey = self.public_key.parse().map_err(|e| {
            Refusal::Invalid(format!("{:?} is not a public key: {e}", self.public_key))
        })?;
        let addr: SocketAddr = self.endpoint.parse().map_err(|_| {
            Refusal::Invalid(format!(
                "{:?} is not an endpoint (IP:PORT or [IPV6]:PORT)",
                self.endpoint
            ))
        })?;
        if addr.port() == 0 {
            return Err(Refusal::Invalid("port 0 is not an endpoint".to_owned()));
        }
        if key.address().is_none() {
            return Err(Refusal::Invalid(format!(
                "{key} has no fc00::/8 address, so it is no rovy node; add a plain WireGuard \
                 peer with `wg set` or in the config"
            )));
        }
        Ok((key, addr))
    }
}

/// A peer to remove: `POST /v0/peer/disconnect`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DisconnectRequest {
    /// Its PeerID (`bafzqai…`) or public key (base64).
    pub peer: String,
}

impl DisconnectRequest {
    /// The key of the peer named.
    ///
    /// # Errors
    /// [`Refusal::Invalid`]: [`DisconnectRequest::peer`] is neither form of a key.
    pub fn key(&self) -> Result<PublicKey, Refusal> {
        PublicKey::from_peer_id(&self.peer)
            .or_else(|_| self.peer.parse::<PublicKey>())
            .map_err(|_| {
                Refusal::Invalid(format!(
                    "{:?} is neither a PeerID (bafzqai…) nor a public key",
                    self.peer
                ))
            })
    }
}

/// Why a node refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such peer (`404`).
    NotFound(String),
    /// The change is not one the node makes (`400`), and why.
    Invalid(String),
}

/// A live rovy link.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkStatus {
    /// The link's slot: the byte labels name it by at this node.
    pub slot: u8,
    /// The neighbour's public key.
    pub public_key: String,
    /// Round-trip time measured by HELLOs, once known.
    pub rtt_ms: Option<u64>,
}

/// Every destination the node routes to, as `GET /v0/route/list` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteList {
    /// One entry per destination, ordered by metric, then address.
    pub routes: Vec<RouteStatus>,
}

/// The route to one destination.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteStatus {
    /// The destination's fc00::/8 address.
    pub address: Option<String>,
    /// The destination's PeerID.
    pub peer_id: String,
    /// The destination's public key.
    pub public_key: String,
    /// The label, slots joined by dots (`3.7`).
    pub label: String,
    /// Hops.
    pub metric: u16,
    /// The neighbour the route starts with (its public key), and the link's slot.
    pub next_hop: String,
    pub next_hop_slot: u8,
    /// Seconds since the route was last refreshed.
    pub age_secs: u64,
    /// The origin's seqno the route carries (`None` for a way back learned from traffic).
    pub seqno: Option<u32>,
    /// `"announced"` or `"return-path"`.
    pub source: String,
    /// Other routes kept, through other first hops.
    pub alternates: usize,
}

/// Counters of one worker thread.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerStatus {
    /// The core the worker is pinned to.
    pub core: usize,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Frames written to the TUN (a coalesced super-packet is one).
    pub tun_writes: u64,
    /// Packets dropped, by reason.
    pub drops: BTreeMap<String, u64>,
}

/// What the node knows about one peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's public key.
    pub public_key: String,
    /// `"rovy"` or `"wireguard"`, as in the config.
    pub kind: String,
    /// Current endpoint (configured, or roamed to); `None` until the peer is heard from when
    /// none is configured.
    pub endpoint: Option<String>,
    pub allowed_ips: Vec<String>,
    /// Seconds since the latest completed handshake; `None` if there has been none.
    pub last_handshake_secs_ago: Option<u64>,
    /// Bytes received from and sent to the peer.
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Data messages (keepalives aside) received from and sent to the peer.
    #[serde(default)]
    pub rx_packets: u64,
    #[serde(default)]
    pub tx_packets: u64,
    /// Persistent keepalive interval in seconds, when configured.
    pub persistent_keepalive: Option<u64>,
}

impl Status {
    /// Sets [`Status::drops`] and [`Status::drops_total`] from the workers' counters: each
    /// reason summed over the workers, reasons that sum to zero left out. Sums saturate rather
    /// than wrap, so a status never shows fewer drops than happened.
    pub fn drops_from_workers(&mut self) {
        let mut drops = BTreeMap::new();
        for worker in &self.workers {
            for (reason, &count) in &worker.drops {
                if count != 0 {
                    let sum: &mut u64 = drops.entry(reason.clone()).or_default();
                    *sum = sum.saturating_add(count);
                }
            }
        }
        self.drops_total = drops
            .values()
            .fold(0, |total: u64, &count| total.saturating_add(count));
        self.drops = drops;
    }
}
