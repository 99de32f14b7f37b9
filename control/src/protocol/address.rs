//! What the protocol needs from the address a tunnel's messages come from and go to.
//!
//! An endpoint compares, stores and hands back addresses without looking inside, except for
//! the two things WireGuard's DoS defence binds to a source: the bytes a cookie is a MAC of,
//! and the group a flood of handshakes is rate-limited by. Links implement it for their
//! transport address; upper sessions will implement it for a route.

use std::fmt::Debug;
use std::hash::Hash;

use rovy_dataplane::link_addr::LinkAddr;

use crate::handshake::rate_limit::SourceGroup;

/// An address an [`super::Endpoint`] can be run over.
pub trait Address: Copy + Eq + Hash + Debug + Send + Sync + 'static {
    /// Runs `f` on the bytes a cookie binds a sender at this address to (WireGuard's
    /// `MAC(R, source)`): a valid mac2 proves the sender receives at exactly this address.
    fn with_cookie_input<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;

    /// The bucket handshakes from this address are rate-limited in under load.
    fn source_group(&self) -> SourceGroup;
}

/// A transport address: the cookie covers IP and port as the kernel's does, the rate limit
/// groups by IP (IPv6 by /64).
impl Address for LinkAddr {
    fn with_cookie_input<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.cookie_input().as_bytes())
    }

    fn source_group(&self) -> SourceGroup {
        match self.source_ip() {
            Some(ip) => SourceGroup::from(ip),
            // An overlay route: limited per route, its slots read as one number.
            None => SourceGroup::Other(
                self.cookie_input()
                    .as_bytes()
                    .iter()
                    .fold(0, |group, &b| group << 8 ^ u64::from(b)),
            ),
        }
    }
}
