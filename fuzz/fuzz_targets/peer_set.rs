//! A `wg set` applied to the running peers (`update_from_set`, what the node does with a
//! parsed `set=1` before planning it), against what wireguard-go does with one:
//! - no key twice, and no allowed IP on two peers (given none was): one given to a peer is
//!   taken from every other;
//! - a peer the set never names is unchanged (gone, with `replace_peers`); one whose last
//!   change is `remove` is gone; one named without `update_only` after its last removal is there;
//!   `update_only` never creates a peer;
//! - a peer keeps the kind it runs with (`wg` cannot name one), and a new one is plain WireGuard;
//! - the last change naming a peer decides each field it sets (a zero key or interval means
//!   none), an endpoint it sets is to be gone to now, and its allowed IPs are the peer's unless a
//!   later change gives them to another; after `replace_allowed_ips` the peer has only what that
//!   change listed; no allowed IP comes from nowhere;
//! - applying the same set again changes nothing but the order of peers and of allowed IPs
//!   (unless it has `update_only`).
#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_control::api::uapi::{SetDevice, SetPeer};
use rovy_control::config::{Endpoint, IpPrefix, PeerConfig, PeerKind};
use rovy_control::daemon::fuzzing::{PeerSpec, PeerUpdate, update_from_set};
use rovy_control::keys::{PresharedKey, PublicKey};
use zeroize::Zeroizing;

/// Six keys, so changes often name the same peer.
const KEYS: u8 = 6;

#[derive(Debug, Arbitrary)]
struct Input {
    running: Vec<Running>,
    replace_peers: bool,
    changes: Vec<Change>,
}

#[derive(Debug, Arbitrary)]
struct Running {
    key: u8,
    rovy: bool,
    allowed: Vec<u8>,
    psk: Option<u8>,
    endpoint: Option<u8>,
    keepalive: Option<u16>,
}

#[derive(Debug, Arbitrary)]
struct Change {
    key: u8,
    remove: bool,
    update_only: bool,
    psk: Option<u8>,
    endpoint: Option<u8>,
    keepalive: Option<u16>,
    replace_allowed_ips: bool,
    allowed: Vec<u8>,
}

fn key(index: u8) -> PublicKey {
    PublicKey([index % KEYS + 1; 32])
}

/// Ten prefixes, nested and disjoint, of both families.
fn prefix(index: u8) -> IpPrefix {
    let (addr, len) = match index % 10 {
        0 => (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
        1 => (IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16),
        2 => (IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), 32),
        3 => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        4 => (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 24),
        5 => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        6 => (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
            32,
        ),
        7 => (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0)),
            48,
        ),
        8 => (IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)), 128),
        _ => (IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)), 64),
    };
    IpPrefix::new(addr, len).expect("a valid prefix length")
}

fn endpoint(index: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, index)), 51820)
}

/// A zero key or interval means none, as in `wg set`.
fn psk_of(byte: u8) -> Option<PresharedKey> {
    (byte != 0).then(|| PresharedKey::from_bytes([byte; 32]))
}

fn keepalive_of(seconds: u16) -> Option<Duration> {
    (seconds != 0).then(|| Duration::from_secs(u64::from(seconds)))
}

/// The running peers: keys once each, and no allowed IP on two of them (as `plan` keeps them).
fn running(list: &[Running]) -> PeerUpdate {
    let mut update = PeerUpdate::default();
    let mut taken = HashSet::new();
    for peer in list.iter().take(usize::from(KEYS)) {
        let public_key = key(peer.key);
        if update
            .peers
            .iter()
            .any(|s| s.config.public_key == public_key)
        {
            continue;
        }
        let mut allowed_ips = Vec::new();
        for &p in peer.allowed.iter().take(4) {
            if taken.insert(prefix(p)) {
                allowed_ips.push(prefix(p));
            }
        }
        let resolved = peer.endpoint.map(endpoint);
        update.peers.push(PeerSpec {
            config: PeerConfig {
                public_key,
                kind: if peer.rovy {
                    PeerKind::Rovy
                } else {
                    PeerKind::WireGuard
                },
                endpoint: resolved.map(Endpoint::Addr),
                allowed_ips,
                preshared_key: peer.psk.and_then(psk_of),
                persistent_keepalive: peer.keepalive.and_then(keepalive_of),
            },
            resolved,
        });
    }
    update
}

fn set_of(input: &Input) -> SetDevice {
    SetDevice {
        replace_peers: input.replace_peers,
        peers: input
            .changes
            .iter()
            .take(12)
            .map(|change| SetPeer {
                public_key: key(change.key).0,
                remove: change.remove,
                update_only: change.update_only,
                preshared_key: change.psk.map(|byte| Zeroizing::new([byte; 32])),
                endpoint: change.endpoint.map(endpoint),
                persistent_keepalive: change.keepalive,
                replace_allowed_ips: change.replace_allowed_ips,
                allowed_ips: change.allowed.iter().take(4).map(|&p| prefix(p)).collect(),
            })
            .collect(),
        ..SetDevice::default()
    }
}

/// A peer the set never names: gone with `replace_peers`, else as it was, less the allowed IPs
/// the set gave to others.
fn check_unnamed(set: &SetDevice, was: Option<&PeerSpec>, now: Option<&PeerSpec>, k: &PublicKey) {
    let (Some(was), false) = (was, set.replace_peers) else {
        return assert!(now.is_none(), "{k}: never named, yet there");
    };
    let now = now.unwrap_or_else(|| panic!("{k}: never named, yet gone"));
    assert_eq!(
        (&now.config.kind, &now.config.endpoint, &now.resolved),
        (&was.config.kind, &was.config.endpoint, &was.resolved),
        "{k}: never named, yet changed"
    );
    assert_eq!(
        now.config.preshared_key, was.config.preshared_key,
        "{k}: psk changed"
    );
    assert_eq!(
        now.config.persistent_keepalive,
        was.config.persistent_keepalive
    );
    let given: HashSet<IpPrefix> = set
        .peers
        .iter()
        .filter(|c| !c.remove)
        .flat_map(|c| c.allowed_ips.iter().copied())
        .collect();
    for p in &was.config.allowed_ips {
        if !given.contains(p) {
            assert!(
                now.config.allowed_ips.contains(p),
                "{k}: lost {p}, given to nobody"
            );
        }
    }
    for p in &now.config.allowed_ips {
        assert!(
            was.config.allowed_ips.contains(p),
            "{k}: gained {p}, never named"
        );
    }
}

/// The peers in key order, each with its allowed IPs in one order: both are sets (the order of
/// peers only says which slot a new one gets; allowed IPs match by longest prefix).
fn sorted(mut peers: Vec<PeerSpec>) -> Vec<PeerSpec> {
    for spec in &mut peers {
        spec.config
            .allowed_ips
            .sort_by_key(|p| (p.addr(), p.prefix_len()));
    }
    peers.sort_by_key(|spec| spec.config.public_key);
    peers
}

fn find<'a>(update: &'a PeerUpdate, key: &PublicKey) -> Option<&'a PeerSpec> {
    update.peers.iter().find(|s| s.config.public_key == *key)
}

fuzz_target!(|input: Input| {
    let before = running(&input.running);
    let set = set_of(&input);
    let after = update_from_set(&before, set_of(&input));

    let mut keys = HashSet::new();
    let mut owned = HashSet::new();
    for spec in &after.peers {
        assert!(keys.insert(spec.config.public_key), "a key twice");
        for p in &spec.config.allowed_ips {
            assert!(owned.insert(*p), "{p} on two peers");
        }
    }
    let offered: HashSet<IpPrefix> = before
        .peers
        .iter()
        .flat_map(|s| s.config.allowed_ips.iter().copied())
        .chain(set.peers.iter().flat_map(|c| c.allowed_ips.iter().copied()))
        .collect();
    assert!(owned.is_subset(&offered), "an allowed IP from nowhere");

    for index in 0..KEYS {
        let k = key(index);
        let was = find(&before, &k);
        let now = find(&after, &k);
        let named: Vec<(usize, &SetPeer)> = set
            .peers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.public_key == k.0)
            .collect();
        if let Some(spec) = now {
            let kind = was.map_or(PeerKind::WireGuard, |s| s.config.kind);
            assert_eq!(spec.config.kind, kind, "{k}: kind");
        }
        let Some(&(at, last)) = named.last() else {
            check_unnamed(&set, was, now, &k);
            continue;
        };
        let since_removal = named.iter().rev().take_while(|(_, c)| !c.remove);
        let created = since_removal.clone().any(|(_, c)| !c.update_only);
        if last.remove {
            assert!(now.is_none(), "{k}: removed last, yet there");
            continue;
        }
        if created {
            assert!(now.is_some(), "{k}: named, yet not there");
        }
        if !created && (set.replace_peers || was.is_none() || named.iter().any(|(_, c)| c.remove)) {
            assert!(now.is_none(), "{k}: update_only created it");
        }
        let Some(spec) = now else { continue };
        if let Some(psk) = &last.preshared_key {
            assert_eq!(spec.config.preshared_key, psk_of(psk[0]), "{k}: psk");
        }
        if let Some(addr) = last.endpoint {
            assert_eq!(spec.resolved, Some(addr), "{k}: endpoint");
            assert_eq!(spec.config.endpoint, Some(Endpoint::Addr(addr)));
            assert!(
                after.reset_endpoints.contains(&k),
                "{k}: endpoint not reset"
            );
        }
        if let Some(seconds) = last.persistent_keepalive {
            assert_eq!(
                spec.config.persistent_keepalive,
                keepalive_of(seconds),
                "{k}: keepalive"
            );
        }
        let taken_later: HashSet<IpPrefix> = set.peers[at + 1..]
            .iter()
            .filter(|c| c.public_key != k.0 && !c.remove)
            .flat_map(|c| c.allowed_ips.iter().copied())
            .collect();
        for p in &last.allowed_ips {
            if !taken_later.contains(p) {
                assert!(spec.config.allowed_ips.contains(p), "{k}: lost {p}");
            }
        }
        if last.replace_allowed_ips {
            for p in &spec.config.allowed_ips {
                assert!(last.allowed_ips.contains(p), "{k}: kept {p} past a replace");
            }
        }
    }

    // Not with `update_only`: one that found no peer the first time finds the peer a later
    // change created, in wireguard-go too.
    if set.peers.iter().any(|c| c.update_only) {
        return;
    }
    let again = update_from_set(&after, set);
    assert_eq!(
        sorted(again.peers),
        sorted(after.peers),
        "a second application changed peers"
    );
    assert_eq!(again.reset_endpoints, after.reset_endpoints);
});
