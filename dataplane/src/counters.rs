//! Drop reasons and the plain per-core counters that count them.
//!
//! Packets are never logged one by one; each rejected packet bumps exactly one counter here.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet was dropped. Each variant is one counter, so the set is part of the
/// observable interface (`status`, metrics): add variants, do not repurpose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than the smallest valid message of its kind.
    Truncated,
    /// Length not valid for its message type (handshake messages have exact sizes; a routing
    /// message has nothing but the link's padding after its fields).
    BadLength,
    /// First byte is not a known message type, or reserved bytes are not zero.
    UnknownType,
    /// Data message for a receiver index we do not hold.
    UnknownIndex,
    /// Counter already seen or left of the replay window.
    Replayed,
    /// AEAD tag did not verify.
    AuthFailed,
    /// Session older than REJECT_AFTER_TIME.
    SessionExpired,
    /// Counter at or past REJECT_AFTER_MESSAGES.
    CounterExhausted,
    /// Handshake message whose mac1 did not verify (checked before any DH).
    InvalidMac1,
    /// Under load and no valid mac2: answered with a cookie reply instead.
    CookieRequired,
    /// Per-source handshake rate limit exceeded, or the node's ICMPv6 error rate (a PONG
    /// that would have become a Time Exceeded).
    RateLimited,
    /// Handshake message that failed Noise processing or names an unknown peer.
    HandshakeFailed,
    /// Initiation whose TAI64N timestamp is not newer than the last accepted one, or too soon.
    HandshakeReplayed,
    /// Cookie reply that does not match an outstanding handshake or fails to decrypt.
    InvalidCookieReply,
    /// Response or cookie reply for a handshake we are not waiting on.
    UnexpectedHandshake,
    /// Decrypted packet whose source address is not allowed for the sending peer.
    SourceNotAllowed,
    /// Plaintext that is neither IPv4, IPv6, a keepalive nor a rovy frame we understand.
    InvalidInnerPacket,
    /// No peer routes the destination of an outbound packet.
    NoRoute,
    /// Outbound packet for a peer with no usable session (queued handshake instead).
    NoSession,
    /// Outbound packet for a peer whose address is not known yet (it has to dial in first).
    NoEndpoint,
    /// A bounded queue between threads was full.
    QueueFull,
    /// The kernel refused or could not take an outgoing datagram or TUN write.
    SendFailed,
    /// A packet read from the TUN whose virtio header does not describe it: unknown GSO type,
    /// segment size zero or past the MTU, checksum or header offsets outside the packet, or a
    /// super-packet of a kind we cannot segment (e.g. IPv6 extension headers).
    InvalidOffload,
    /// A rovy frame shorter than the fixed layout of its kind.
    FrameTruncated,
    /// A routed frame whose label length is past 14, whose position is past its length, or
    /// that arrived with no label byte left to follow; or an UPDATE announcing a label longer
    /// than a label can be.
    BadLabel,
    /// A routed frame whose next hop is the link it came in on (only a PING may turn back).
    UTurn,
    /// A ROUTE_ERROR whose next hop is slot 0 or has no live link: errors about errors are
    /// never sent.
    DeadSlot,
    /// A rovy frame from a plain WireGuard peer, which only ever carries IP packets.
    FrameFromWireguardPeer,
    /// A first plaintext byte below 0x40 that names no frame kind, or a frame of another kind
    /// than the one expected.
    UnknownFrame,
    /// Handshake message whose Diffie-Hellman gave all zeros: a low-order public key as its
    /// ephemeral or static (refused as the kernel and wireguard-go do).
    LowOrderKey,
    /// A packet for a destination through the overlay that is longer than the overlay MTU
    /// (the link MTU less [`crate::buf::OVERLAY_OVERHEAD`]).
    OverlayTooBig,
    /// A PONG whose id this node did not give the PING it answers: not a reply to one of our
    /// traceroute probes.
    UnsolicitedPong,
    /// A PONG for one of this node's probes whose signature is not its replier's: a hop
    /// naming another node in traceroute.
    ForgedPong,
    /// A routing UPDATE entry whose origin proof does not verify: a seqno signed by someone
    /// other than the destination's key (one entry, not the whole message).
    OriginForged,
    /// A routing UPDATE entry for a seqno newer than any origin proof held, without one (the
    /// proof is asked for).
    OriginUnproven,
    /// A routing UPDATE entry whose proof was not verified because its link had used up its
    /// verification budget.
    OriginOverBudget,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 36] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::UnknownType,
        DropReason::UnknownIndex,
        DropReason::Replayed,
        DropReason::AuthFailed,
        DropReason::SessionExpired,
        DropReason::CounterExhausted,
        DropReason::InvalidMac1,
        DropReason::CookieRequired,
        DropReason::RateLimited,
        DropReason::HandshakeFailed,
        DropReason::HandshakeReplayed,
        DropReason::InvalidCookieReply,
        DropReason::UnexpectedHandshake,
        DropReason::SourceNotAllowed,
        DropReason::InvalidInnerPacket,
        DropReason::NoRoute,
        DropReason::NoSession,
        DropReason::NoEndpoint,
        DropReason::QueueFull,
        DropReason::SendFailed,
        DropReason::InvalidOffload,
        DropReason::FrameTruncated,
        DropReason::BadLabel,
        DropReason::UTurn,
        DropReason::DeadSlot,
        DropReason::FrameFromWireguardPeer,
        DropReason::UnknownFrame,
        DropReason::LowOrderKey,
        DropReason::OverlayTooBig,
        DropReason::UnsolicitedPong,
        DropReason::ForgedPong,
        DropReason::OriginForged,
        DropReason::OriginUnproven,
        DropReason::OriginOverBudget,
    ];

    /// Stable snake_case name used in status output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadLength => "bad_length",
            DropReason::UnknownType => "unknown_type",
            DropReason::UnknownIndex => "unknown_index",
            DropReason::Replayed => "replayed",
            DropReason::AuthFailed => "auth_failed",
            DropReason::SessionExpired => "session_expired",
            DropReason::CounterExhausted => "counter_exhausted",
            DropReason::InvalidMac1 => "invalid_mac1",
            DropReason::CookieRequired => "cookie_required",
            DropReason::RateLimited => "rate_limited",
            DropReason::HandshakeFailed => "handshake_failed",
            DropReason::HandshakeReplayed => "handshake_replayed",
            DropReason::InvalidCookieReply => "invalid_cookie_reply",
            DropReason::UnexpectedHandshake => "unexpected_handshake",
            DropReason::SourceNotAllowed => "source_not_allowed",
            DropReason::InvalidInnerPacket => "invalid_inner_packet",
            DropReason::NoRoute => "no_route",
            DropReason::NoSession => "no_session",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::QueueFull => "queue_full",
            DropReason::SendFailed => "send_failed",
            DropReason::InvalidOffload => "invalid_offload",
            DropReason::FrameTruncated => "frame_truncated",
            DropReason::BadLabel => "bad_label",
            DropReason::UTurn => "u_turn",
            DropReason::DeadSlot => "dead_slot",
            DropReason::FrameFromWireguardPeer => "frame_from_wireguard_peer",
            DropReason::UnknownFrame => "unknown_frame",
            DropReason::LowOrderKey => "low_order_key",
            DropReason::OverlayTooBig => "overlay_too_big",
            DropReason::UnsolicitedPong => "unsolicited_pong",
            DropReason::ForgedPong => "forged_pong",
            DropReason::OriginForged => "origin_forged",
            DropReason::OriginUnproven => "origin_unproven",
            DropReason::OriginOverBudget => "origin_over_budget",
        }
    }
}

/// One counter per [`DropReason`]; owned by a single core, read by control.
#[derive(Debug, Clone)]
pub struct DropCounters {
    counts: [u64; DropReason::ALL.len()],
}

// Written out: `Default` is derived for arrays of at most 32.
impl Default for DropCounters {
    fn default() -> Self {
        Self {
            counts: [0; DropReason::ALL.len()],
        }
    }
}

impl DropCounters {
    /// Counts one dropped packet.
    pub fn count(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    /// How many packets were dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Total over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `(name, count)` for every reason with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Per-worker traffic and drop counters: written by one worker with relaxed atomics (plain
/// stores on x86), read by the control thread for status.
#[derive(Debug)]
pub struct WorkerCounters {
    /// Datagrams received from the network.
    pub rx_packets: AtomicU64,
    /// Datagrams sent to the network.
    pub tx_packets: AtomicU64,
    /// Bytes of datagrams received.
    pub rx_bytes: AtomicU64,
    /// Bytes of datagrams sent.
    pub tx_bytes: AtomicU64,
    /// Frames written to the TUN: one per packet delivered, or one per coalesced
    /// super-packet, so `rx_packets / tun_writes` shows how much coalescing saves.
    pub tun_writes: AtomicU64,
    drops: [AtomicU64; DropReason::ALL.len()],
}

// Written out: `Default` is derived for arrays of at most 32.
impl Default for WorkerCounters {
    fn default() -> Self {
        Self {
            rx_packets: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            tun_writes: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerCounters {
    /// Counts one dropped packet.
    pub fn count_drop(&self, reason: DropReason) {
        self.count_drops(reason, 1);
    }

    /// Counts `n` packets dropped for the same reason.
    pub fn count_drops(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` to a traffic counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A copy of the drop counters.
    pub fn drops(&self) -> DropCounters {
        let mut copy = DropCounters::default();
        for (slot, count) in copy.counts.iter_mut().zip(&self.drops) {
            *slot = count.load(Ordering::Relaxed);
        }
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_discriminant_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?} out of order");
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len(), "names must be unique");
    }

    #[test]
    fn counts_by_reason() {
        let mut c = DropCounters::default();
        c.count(DropReason::Replayed);
        c.count(DropReason::Replayed);
        c.count(DropReason::AuthFailed);
        assert_eq!(c.get(DropReason::Replayed), 2);
        assert_eq!(c.total(), 3);
        let nz: Vec<_> = c.nonzero().collect();
        assert_eq!(nz, vec![("replayed", 2), ("auth_failed", 1)]);
    }
}
