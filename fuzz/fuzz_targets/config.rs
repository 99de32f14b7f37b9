//! The config parser's text entry point (`Config::from_toml_str`): any text, no panic; an
//! accepted config keeps the rules it promises (interface name, MTU and core ranges, allowed IPs
//! in network form and never claimed by two peers, no peer twice or with our own key, rovy peers
//! with an overlay address, keepalives non-zero); and written back out as TOML it parses to the
//! same config.
#![no_main]

use std::fmt::Write as _;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rovy_control::config::{CORES_RANGE, Config, Listen, MTU_RANGE, PeerKind};

fuzz_target!(|text: &str| {
    // Key files named by the text resolve here, where there are none.
    let base = Path::new("/nonexistent-fuzz-config-dir");
    let Ok(config) = Config::from_toml_str(text, "fuzz.toml", base) else {
        return;
    };
    check_rules(&config);
    let written = to_toml(&config);
    let again = Config::from_toml_str(&written, "written.toml", base)
        .unwrap_or_else(|error| panic!("written config refused: {error}\n{written}"));
    assert_eq!(
        to_toml(&again),
        written,
        "config changed through a round trip"
    );
});

fn check_rules(config: &Config) {
    let interface = &config.interface;
    assert!(
        (1..=15).contains(&interface.name.len()),
        "name {:?}",
        interface.name
    );
    assert!(MTU_RANGE.contains(&interface.mtu));
    assert!(
        interface
            .cores
            .is_none_or(|cores| CORES_RANGE.contains(&cores))
    );
    if let Listen::Addresses(addresses) = &interface.listen {
        assert!(!addresses.is_empty());
    }
    let own = interface.private_key.public_key();
    for (i, peer) in config.peers.iter().enumerate() {
        assert_ne!(peer.public_key, own, "peer {i} has our own key");
        if peer.kind == PeerKind::Rovy {
            assert!(
                peer.public_key.address().is_some(),
                "rovy peer {i} without an address"
            );
        }
        assert!(peer.persistent_keepalive.is_none_or(|k| !k.is_zero()));
        for prefix in &peer.allowed_ips {
            assert_eq!(
                prefix.masked(),
                *prefix,
                "peer {i}: {prefix} keeps host bits"
            );
        }
        for (j, other) in config.peers[..i].iter().enumerate() {
            assert_ne!(peer.public_key, other.public_key, "peers {j} and {i}");
            // Prefixes of different peers may overlap (longest prefix wins), never repeat.
            for ours in &peer.allowed_ips {
                assert!(!other.allowed_ips.contains(ours), "{ours} twice");
            }
        }
    }
}

/// A TOML basic string holding `text`.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => write!(out, "\\u{:04X}", u32::from(c)).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list<T: ToString>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(|item| quoted(&item.to_string())).collect();
    format!("[{}]", items.join(", "))
}

/// Every setting of `config`, secrets inline, in the config file's syntax.
fn to_toml(config: &Config) -> String {
    let interface = &config.interface;
    let mut out = String::from("[interface]\n");
    writeln!(out, "name = {}", quoted(&interface.name)).unwrap();
    writeln!(
        out,
        "private_key = {}",
        quoted(&interface.private_key.to_base64())
    )
    .unwrap();
    match &interface.listen {
        Listen::AllAddresses { port } => writeln!(out, "listen_port = {port}").unwrap(),
        Listen::Addresses(addresses) => writeln!(out, "listen = {}", list(addresses)).unwrap(),
    }
    writeln!(out, "addresses = {}", list(&interface.addresses)).unwrap();
    writeln!(out, "mtu = {}", interface.mtu).unwrap();
    if let Some(cores) = interface.cores {
        writeln!(out, "cores = {cores}").unwrap();
    }
    for peer in &config.peers {
        out.push_str("\n[[peer]]\n");
        writeln!(out, "public_key = {}", quoted(&peer.public_key.to_string())).unwrap();
        let kind = match peer.kind {
            PeerKind::Rovy => "rovy",
            PeerKind::WireGuard => "wireguard",
        };
        writeln!(out, "kind = {}", quoted(kind)).unwrap();
        if let Some(endpoint) = &peer.endpoint {
            writeln!(out, "endpoint = {}", quoted(&endpoint.to_string())).unwrap();
        }
        writeln!(out, "allowed_ips = {}", list(&peer.allowed_ips)).unwrap();
        if let Some(psk) = &peer.preshared_key {
            writeln!(out, "preshared_key = {}", quoted(&psk.to_base64())).unwrap();
        }
        if let Some(keepalive) = peer.persistent_keepalive {
            writeln!(out, "persistent_keepalive = {}", keepalive.as_secs()).unwrap();
        }
    }
    out
}
