//! The fc00::/8 address a key owns (DESIGN §1): the last 16 bytes of BLAKE2s-256 applied twice
//! to the X25519 public key. The address is the identity on the overlay, so every place that
//! turns a key into an address — the key file's `address`, the upper sessions' source check, the
//! Time Exceeded a traceroute hop is named in — derives it here.

use std::net::Ipv6Addr;

use blake2::{Blake2s256, Digest};

/// The first byte of every overlay address.
pub const OVERLAY_ADDRESS_PREFIX: u8 = 0xfc;

/// The address `key` would own, whether or not it starts with [`OVERLAY_ADDRESS_PREFIX`].
pub fn derive_unchecked(key: &[u8; 32]) -> Ipv6Addr {
    let digest = Blake2s256::digest(Blake2s256::digest(key));
    let mut address = [0u8; 16];
    address.copy_from_slice(&digest[16..32]);
    Ipv6Addr::from(address)
}

/// The overlay address of `key`, or `None` when its derivation falls outside fc00::/8 (such a
/// key can only be a plain WireGuard peer's).
pub fn derive(key: &[u8; 32]) -> Option<Ipv6Addr> {
    let address = derive_unchecked(key);
    is_overlay(&address).then_some(address)
}

/// Whether `addr` is in fc00::/8, where every rovy key has its address.
pub fn is_overlay(addr: &Ipv6Addr) -> bool {
    addr.octets()[0] == OVERLAY_ADDRESS_PREFIX
}
