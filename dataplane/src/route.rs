//! Cryptokey routing: which peer an outbound packet goes to (longest-prefix match of its
//! destination over every peer's allowed IPs) and whether a decrypted packet's source is one
//! its sender may use.
//!
//! The table is built once from configuration and then only read, so workers share it without
//! locks. Lookup probes one hash map per distinct prefix length present, longest first: a
//! handful of probes for real configurations, no allocation, no tree walk.

use std::collections::HashMap;
use std::net::IpAddr;

/// A peer's slot number in the node's peer table.
pub type PeerSlot = u16;

/// Why an entry could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Prefix length beyond 32 (IPv4) or 128 (IPv6).
    BadPrefixLength,
    /// The exact prefix is already routed to another peer.
    Duplicate,
}

#[derive(Debug, Default, Clone)]
struct Family {
    /// Prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// (prefix length, masked address bits) → peer.
    entries: HashMap<(u8, u128), PeerSlot>,
}

impl Family {
    fn insert(&mut self, bits: u128, len: u8, width: u8, peer: PeerSlot) -> Result<(), RouteError> {
        if len > width {
            return Err(RouteError::BadPrefixLength);
        }
        let key = (len, mask(bits, len, width));
        match self.entries.get(&key) {
            Some(existing) if *existing != peer => return Err(RouteError::Duplicate),
            Some(_) => return Ok(()),
            None => {}
        }
        self.entries.insert(key, peer);
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        Ok(())
    }

    fn lookup(&self, bits: u128, width: u8) -> Option<PeerSlot> {
        self.lengths
            .iter()
            .find_map(|&len| self.entries.get(&(len, mask(bits, len, width))).copied())
    }
}

/// Keeps the top `len` of `width` bits (addresses are right-aligned in the u128).
fn mask(bits: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let keep = u32::from(len);
        let shift = u32::from(width) - keep;
        (bits >> shift) << shift
    }
}

/// Allowed IPs of every peer, for both directions of cryptokey routing.
#[derive(Debug, Default, Clone)]
pub struct RoutingTable {
    v4: Family,
    v6: Family,
}

impl RoutingTable {
    /// An empty table.
    pub fn new() -> Self {
        RoutingTable::default()
    }

    /// Routes `addr/len` to `peer`. Host bits are ignored (as WireGuard does).
    pub fn insert(&mut self, addr: IpAddr, len: u8, peer: PeerSlot) -> Result<(), RouteError> {
        match addr {
            IpAddr::V4(a) => self.v4.insert(u128::from(u32::from(a)), len, 32, peer),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), len, 128, peer),
        }
    }

    /// The peer whose allowed IPs hold `dst` most specifically.
    pub fn lookup(&self, dst: IpAddr) -> Option<PeerSlot> {
        match dst {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a), 128),
        }
    }

    /// Whether a packet from `src` decrypted from `peer` may be delivered: `src` must route
    /// back to that same peer.
    pub fn allows_source(&self, peer: PeerSlot, src: IpAddr) -> bool {
        self.lookup(src) == Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_in_both_families() {
        let mut t = RoutingTable::new();
        t.insert(ip("10.0.0.0"), 8, 1).unwrap();
        t.insert(ip("10.20.0.0"), 16, 2).unwrap();
        t.insert(ip("10.20.0.7"), 32, 3).unwrap();
        t.insert(ip("0.0.0.0"), 0, 4).unwrap();
        t.insert(ip("fd00::"), 8, 5).unwrap();
        t.insert(ip("fd00:1::"), 32, 6).unwrap();
        assert_eq!(t.lookup(ip("10.20.0.7")), Some(3));
        assert_eq!(t.lookup(ip("10.20.0.8")), Some(2));
        assert_eq!(t.lookup(ip("10.99.0.1")), Some(1));
        assert_eq!(t.lookup(ip("192.0.2.1")), Some(4));
        assert_eq!(t.lookup(ip("fd00:1::5")), Some(6));
        assert_eq!(t.lookup(ip("fd00:2::5")), Some(5));
        assert_eq!(t.lookup(ip("2001:db8::1")), None, "no v6 default route");
    }

    #[test]
    fn host_bits_are_masked_and_lengths_checked() {
        let mut t = RoutingTable::new();
        t.insert(ip("10.1.2.3"), 24, 1).unwrap();
        assert_eq!(t.lookup(ip("10.1.2.200")), Some(1));
        assert_eq!(
            t.insert(ip("10.0.0.0"), 33, 1),
            Err(RouteError::BadPrefixLength)
        );
        assert_eq!(t.insert(ip("::"), 129, 1), Err(RouteError::BadPrefixLength));
        assert_eq!(t.insert(ip("10.1.2.0"), 24, 2), Err(RouteError::Duplicate));
        assert_eq!(t.insert(ip("10.1.2.0"), 24, 1), Ok(()));
    }

    #[test]
    fn source_must_route_back_to_its_sender() {
        let mut t = RoutingTable::new();
        t.insert(ip("10.0.0.2"), 32, 1).unwrap();
        t.insert(ip("10.0.0.0"), 24, 2).unwrap();
        assert!(t.allows_source(1, ip("10.0.0.2")));
        assert!(
            !t.allows_source(2, ip("10.0.0.2")),
            "more specific route belongs to peer 1"
        );
        assert!(t.allows_source(2, ip("10.0.0.3")));
        assert!(!t.allows_source(1, ip("192.0.2.1")));
    }

    #[test]
    fn matches_a_linear_scan_model() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut t = RoutingTable::new();
        let mut model: Vec<(u32, u8, PeerSlot)> = Vec::new();
        for peer in 0..200u16 {
            let len = rng.gen_range(8..=32u8);
            let addr =
                rng.gen_range(0x0a00_0000u32..0x0a10_0000) & (u32::MAX << (32 - u32::from(len)));
            if t.insert(IpAddr::from(addr.to_be_bytes()), len, peer)
                .is_ok()
                && !model.iter().any(|(a, l, _)| *a == addr && *l == len)
            {
                model.push((addr, len, peer));
            }
        }
        for _ in 0..20_000 {
            let dst: u32 = rng.gen_range(0x0a00_0000u32..0x0a10_0000);
            let expect = model
                .iter()
                .filter(|(a, l, _)| (dst & (u32::MAX << (32 - u32::from(*l)))) == *a)
                .max_by_key(|(_, l, _)| *l)
                .map(|(_, _, p)| *p);
            assert_eq!(
                t.lookup(IpAddr::from(dst.to_be_bytes())),
                expect,
                "dst {dst:x}"
            );
        }
    }
}
