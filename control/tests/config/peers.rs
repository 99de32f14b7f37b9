//! Errors in `[[peer]]` tables, alone and between peers.

use std::time::Duration;

use rovy_control::config::PeerKind;
use rovy_control::keys::PublicKey;

use crate::{NON_FC_PUBLIC, error, own_key, parse, peer_key, with_interface};

/// Peer tables after the interface; the first peer's first key is on line 4.
fn peers(tables: &str) -> String {
    with_interface(tables)
}

#[test]
fn peer_value_errors() {
    let key = peer_key(1);
    let cases = [
        (
            "[[peer]]\nkind = \"rovy\"\n".to_owned(),
            "peer[0].public_key: missing (every [[peer]] needs the peer's public key) \
             (line 3, column 1)",
        ),
        (
            "[[peer]]\npublic_key = \"not base64!\"\n".to_owned(),
            "peer[0].public_key: key is not base64 (a WireGuard key is 44 characters of standard \
             base64 ending in '='; input length 11) (line 4, column 14)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\nkind = \"WireGuard\"\n"),
            "peer[0].kind: \"WireGuard\" is not a peer kind (expected \"rovy\" or \"wireguard\") \
             (line 5, column 8)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\nendpoint = \"10.0.0.300:1312\"\n"),
            "peer[0].endpoint: \"10.0.0.300:1312\" is not an endpoint (\"10.0.0.300\" is neither \
             an IP address nor a host name) (line 5, column 12)",
        ),
        (
            format!(
                "[[peer]]\npublic_key = \"{key}\"\nallowed_ips = [\"10.0.0.1/32\", \"10.0.0.300/32\"]\n"
            ),
            "peer[0].allowed_ips: \"10.0.0.300/32\" is not an IP prefix (\"10.0.0.300\" is not an \
             IP address) (line 5, column 15)",
        ),
        (
            format!(
                "[[peer]]\npublic_key = \"{key}\"\npreshared_key_file = \"p\"\npreshared_key = \"x\"\n"
            ),
            "peer[0].preshared_key: set either preshared_key or preshared_key_file, not both \
             (line 6, column 17)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\npreshared_key = \"\"\n"),
            "peer[0].preshared_key: key is empty (line 5, column 17)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\npreshared_key_file = \"missing\"\n"),
            "peer[0].preshared_key_file: key file /nonexistent/missing: No such file or \
             directory (os error 2) (line 5, column 22)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\npersistent_keepalive = 65536\n"),
            "peer[0].persistent_keepalive: 65536 is out of range (0..=65535) (line 5, column 24)",
        ),
        (
            format!("[[peer]]\npublic_key = \"{key}\"\npersistent_keepalive = -1\n"),
            "peer[0].persistent_keepalive: -1 is out of range (0..=65535) (line 5, column 24)",
        ),
    ];
    for (tables, expected) in cases {
        assert_eq!(
            error(&peers(&tables)),
            format!("rovy0.toml: {expected}"),
            "{tables}"
        );
    }
    let edge = format!("[[peer]]\npublic_key = \"{key}\"\npersistent_keepalive = 65535\n");
    assert_eq!(
        parse(&peers(&edge)).unwrap().peers[0].persistent_keepalive,
        Some(Duration::from_secs(65535))
    );
}

#[test]
fn rovy_peer_without_fc_address_suggests_wireguard_kind() {
    let tables = format!("[[peer]]\npublic_key = \"{NON_FC_PUBLIC}\"\n");
    assert_eq!(
        error(&peers(&tables)),
        format!(
            "rovy0.toml: peer[0].public_key: {NON_FC_PUBLIC} has no fc00::/8 address, so it \
             cannot be a rovy peer; if it is a plain WireGuard peer, set kind = \"wireguard\" \
             (line 4, column 14)"
        )
    );
    let tables = format!("[[peer]]\npublic_key = \"{NON_FC_PUBLIC}\"\nkind = \"wireguard\"\n");
    assert_eq!(
        parse(&peers(&tables)).unwrap().peers[0].kind,
        PeerKind::WireGuard
    );
}

#[test]
fn the_same_allowed_ip_on_two_peers_names_both() {
    let tables = format!(
        "[[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.0.0.0/24\"]\n\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.1.0.0/16\"]\n\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"fd00::/8\", \"10.0.0.77/24\"]\n",
        peer_key(1),
        peer_key(2),
        peer_key(3)
    );
    assert_eq!(
        error(&peers(&tables)),
        "rovy0.toml: peer[2].allowed_ips: 10.0.0.0/24 is already an allowed IP of peer[0] \
         (line 13, column 15)",
        "host bits cleared, the prefix is peer[0]'s"
    );
    // The same prefixes within one peer are fine, and so are disjoint ones across peers.
    let tables = format!(
        "[[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.0.0.0/24\", \"10.0.0.1/32\"]\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.0.1.0/24\", \"::/0\"]\n",
        peer_key(1),
        peer_key(2)
    );
    assert_eq!(parse(&peers(&tables)).unwrap().peers.len(), 2);
}

/// As in WireGuard: a default route through one peer beside host routes through others, and
/// nested prefixes in any order; the longest match picks the peer.
#[test]
fn overlapping_allowed_ips_of_different_peers_are_accepted() {
    let tables = format!(
        "[[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"0.0.0.0/0\", \"::/0\"]\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.9.0.7/32\", \"fd00::7/128\"]\n\
         [[peer]]\npublic_key = \"{}\"\nallowed_ips = [\"10.9.0.0/16\", \"10.9.0.8/32\"]\n",
        peer_key(1),
        peer_key(2),
        peer_key(3)
    );
    let config = parse(&peers(&tables)).unwrap();
    let allowed: Vec<Vec<String>> = config
        .peers
        .iter()
        .map(|peer| peer.allowed_ips.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        allowed,
        [
            vec!["0.0.0.0/0", "::/0"],
            vec!["10.9.0.7/32", "fd00::7/128"],
            vec!["10.9.0.0/16", "10.9.0.8/32"]
        ]
    );
}

#[test]
fn duplicate_own_and_low_order_peer_keys() {
    let key = peer_key(1);
    let twice = format!(
        "[[peer]]\npublic_key = \"{key}\"\n[[peer]]\npublic_key = \"{}\"\n[[peer]]\npublic_key = \"{key}\"\n",
        peer_key(2)
    );
    assert_eq!(
        error(&peers(&twice)),
        format!(
            "rovy0.toml: peer[2].public_key: {key} is already the key of peer[0] (line 8, column 14)"
        )
    );
    let own = own_key().public_key();
    assert_eq!(
        error(&peers(&format!("[[peer]]\npublic_key = \"{own}\"\n"))),
        format!(
            "rovy0.toml: peer[0].public_key: {own} is this node's own public key (line 4, column 14)"
        )
    );
    let zero = PublicKey([0; 32]);
    let low_order = format!("[[peer]]\npublic_key = \"{zero}\"\nkind = \"wireguard\"\n");
    assert_eq!(
        error(&peers(&low_order)),
        format!(
            "rovy0.toml: peer[0].public_key: {zero} is a low-order point; no handshake with it \
             can succeed (line 4, column 14)"
        )
    );
}

#[test]
fn a_rovy_peer_needs_an_mtu_the_overlay_fits_in() {
    let key = peer_key(1);
    let rovy = format!("mtu = 1327\n[[peer]]\npublic_key = \"{key}\"\n");
    assert_eq!(
        error(&peers(&rovy)),
        "rovy0.toml: interface.mtu: 1327 is below 1328, the least a link to a rovy peer needs: \
         overlay packets carry 48 bytes of frame and end-to-end session inside the link, and \
         IPv6 needs 1280 bytes of packet (raise mtu, or make every peer kind = \"wireguard\")"
    );
    let wireguard = format!("mtu = 1280\n[[peer]]\npublic_key = \"{key}\"\nkind = \"wireguard\"\n");
    assert_eq!(parse(&peers(&wireguard)).unwrap().interface.mtu, 1280);
    let enough = format!("mtu = 1328\n[[peer]]\npublic_key = \"{key}\"\n");
    assert_eq!(parse(&peers(&enough)).unwrap().interface.mtu, 1328);
    assert!(
        parse(&with_interface("mtu = 1280\n")).is_ok(),
        "no peer, no overlay"
    );
}
