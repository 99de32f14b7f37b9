//! The sans-IO WireGuard protocol: an [`Endpoint`] (one static key, cookies, rate limit, the
//! receiver-index demux, admission) and one [`Tunnel`] per peer (handshake, timers, keepalives,
//! key rotation into the state it shares with the data path).
//!
//! The same code runs for links and, with another configuration, for upper sessions: an endpoint
//! is generic over the data path it drives ([`TunnelShared`]), which fixes the [`Address`] type
//! (a [`LinkAddr`](rovy_dataplane::link_addr::LinkAddr) for links); the Noise identifier and the [`Admission`] policy are its
//! [`EndpointConfig`].
//!
//! Datagrams go in through [`Endpoint::handle_datagram`] with the source address, `now` and the
//! caller's under-load signal; plaintext goes out through [`Endpoint::encapsulate`]. Timers are
//! quinn-style: [`Endpoint::poll_timeout`] is the earliest deadline of any tunnel,
//! [`Endpoint::handle_timeout`] fires the tunnels that are due, and [`Endpoint::poll_transmit`]
//! hands out the handshakes and keepalives they queued until it returns `None`. What the workers
//! did (their per-tunnel activity stamps) reaches the timers through
//! [`Endpoint::sync_activity`], which the caller runs on its tick.
//! Handshake messages are written into a caller-provided 148-byte buffer: nothing here
//! allocates per packet, and every rejection is a [`DropReason`](rovy_dataplane::DropReason) for the caller to count.

mod address;
mod data_path;
mod deadlines;
mod endpoint;
#[cfg(test)]
mod tests;
mod tunnel;

use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::wire::INITIATION_LEN;

pub use address::Address;
pub use data_path::{IndexDemux, TunnelShared};
pub use endpoint::{Admission, Endpoint, EndpointConfig, SLOT_REST};
pub use tunnel::{Tunnel, TunnelId};

/// The endpoint of a node's links: transport addresses, the workers' index table, and (with
/// [`EndpointConfig::link`]) WireGuard's identifier and the configured peers only.
pub type LinkEndpoint = Endpoint<PeerShared>;

/// Largest message an [`Endpoint`] writes into the caller's handshake buffer.
pub const HANDSHAKE_BUF_LEN: usize = INITIATION_LEN;

/// What a datagram handed to [`Endpoint::handle_datagram`] turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An initiation was accepted: send `out[..len]` (the response) back to the source.
    HandshakeResponse {
        /// The initiating peer's tunnel (new if the endpoint admits unknown keys).
        tunnel: TunnelId,
        /// Length of the response in `out`.
        len: usize,
    },
    /// Under load without a valid mac2: send `out[..COOKIE_REPLY_LEN]` back to the source;
    /// the message itself was not processed (count it as `DropReason::CookieRequired`).
    CookieReply,
    /// Our initiation was answered: a session is ready, flush packets queued for the peer.
    HandshakeComplete {
        /// The responding peer's tunnel.
        tunnel: TunnelId,
    },
    /// A cookie reply for our last handshake message to the peer (initiation or response) was
    /// stored; the next one we send it carries a valid mac2.
    CookieAccepted {
        /// The tunnel of the peer that sent it.
        tunnel: TunnelId,
    },
    /// Data decrypted in place: the plaintext is `packet[16..16 + len]`; `len == 0` is a
    /// keepalive.
    Data {
        /// The sending peer's tunnel.
        tunnel: TunnelId,
        /// Plaintext length (including WireGuard's zero padding).
        len: usize,
    },
}

/// A message [`Endpoint::poll_transmit`] wrote into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<A> {
    /// The tunnel it is for.
    pub tunnel: TunnelId,
    /// Where to send it.
    pub dst: A,
    /// Its length in the buffer.
    pub len: usize,
}

/// Why a tunnel could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddTunnelError {
    /// The key already has a tunnel.
    #[error("the peer is configured twice")]
    Duplicate,
    /// The key is this node's own.
    #[error("the peer's public key is this node's own")]
    OwnKey,
    /// More than 65536 tunnels, or more than the endpoint's admission allows.
    #[error("too many peers")]
    TooMany,
}
