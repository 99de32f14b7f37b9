//! Config parsing and validation through the public API: valid configs and loading here, one
//! test per kind of error, with the exact message users see, in `interface` and `peers`.

#[path = "../common/mod.rs"]
mod common;
mod interface;
mod peers;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{TempDir, fc_key};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rovy_control::config::{Config, Endpoint, IpPrefix, Listen, PeerKind};
use rovy_control::keys::{PrivateKey, PublicKey};

/// A key whose derived address does not start with 0xfc (RFC 7748's Alice).
pub(crate) const NON_FC_PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

pub(crate) fn own_key() -> PrivateKey {
    fc_key(100)
}

pub(crate) fn peer_key(seed: u64) -> String {
    fc_key(seed).public_key().to_string()
}

/// `[interface]` with an inline own key on line 2, then `rest` from line 3 on.
pub(crate) fn with_interface(rest: &str) -> String {
    format!(
        "[interface]\nprivate_key = \"{}\"\n{rest}",
        own_key().to_base64().as_str()
    )
}

pub(crate) fn parse(text: &str) -> Result<Config, String> {
    Config::from_toml_str(text, "rovy0.toml", Path::new("/nonexistent")).map_err(|e| e.to_string())
}

pub(crate) fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("accepted: {config:?}"),
        Err(message) => message,
    }
}

pub(crate) fn prefix(text: &str) -> IpPrefix {
    text.parse().unwrap()
}

#[test]
fn full_example_loads_with_key_files() {
    let dir = TempDir::new();
    dir.file(
        "private.key",
        &format!("{}\n", own_key().to_base64().as_str()),
        0o600,
    );
    dir.file(
        "psk",
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n",
        0o600,
    );
    let rovy_peer = peer_key(1);
    let text = format!(
        r#"# rovy0.toml
[interface]
name = "rovy0"
private_key_file = "private.key"
listen_port = 1312
addresses = ["10.20.0.1/24", "fd20::1/64"]
mtu = 1420
cores = 2

[[peer]]
public_key = "{rovy_peer}"
kind = "rovy"
endpoint = "192.0.2.1:1312"
allowed_ips = ["10.20.0.2/32"]
preshared_key_file = "psk"
persistent_keepalive = 25

[[peer]]
public_key = "{NON_FC_PUBLIC}"
kind = "wireguard"
endpoint = "/dns/gateway.example/udp/51820"
allowed_ips = ["10.30.7.9/16", "fd30::/48"]
persistent_keepalive = 0
"#
    );
    let config_path = dir.file("rovy0.toml", &text, 0o600);
    let config = Config::load(&config_path).unwrap();

    let interface = &config.interface;
    assert_eq!(interface.name, "rovy0");
    assert_eq!(interface.private_key.as_bytes(), own_key().as_bytes());
    assert_eq!(interface.listen, Listen::AllAddresses { port: 1312 });
    assert_eq!(
        interface.addresses,
        [prefix("10.20.0.1/24"), prefix("fd20::1/64")]
    );
    assert_eq!(interface.mtu, 1420);
    assert_eq!(interface.cores, Some(2));

    let [first, second] = config.peers.as_slice() else {
        panic!("{:?}", config.peers)
    };
    assert_eq!(first.public_key, rovy_peer.parse::<PublicKey>().unwrap());
    assert_eq!(first.kind, PeerKind::Rovy);
    assert_eq!(
        first.endpoint,
        Some(Endpoint::Addr("192.0.2.1:1312".parse().unwrap()))
    );
    assert_eq!(first.allowed_ips, [prefix("10.20.0.2/32")]);
    assert_eq!(first.preshared_key.as_ref().unwrap().as_bytes(), &[1; 32]);
    assert_eq!(first.persistent_keepalive, Some(Duration::from_secs(25)));

    assert_eq!(second.public_key.to_string(), NON_FC_PUBLIC);
    assert_eq!(second.kind, PeerKind::WireGuard);
    assert_eq!(
        second.endpoint,
        Some(Endpoint::Host {
            host: "gateway.example".to_owned(),
            port: 51820
        })
    );
    // Host bits are cleared, as WireGuard does.
    assert_eq!(
        second.allowed_ips,
        [prefix("10.30.0.0/16"), prefix("fd30::/48")]
    );
    assert!(second.preshared_key.is_none());
    assert_eq!(second.persistent_keepalive, None);
}

#[test]
fn defaults_fill_in_what_is_not_written() {
    let config = parse(&with_interface("")).unwrap();
    let interface = &config.interface;
    assert_eq!(interface.name, "rovy0");
    assert_eq!(interface.listen, Listen::AllAddresses { port: 1312 });
    assert!(interface.addresses.is_empty());
    assert_eq!(interface.mtu, 1420);
    assert_eq!(interface.cores, None);
    assert!(config.peers.is_empty());

    let peer = format!("[[peer]]\npublic_key = \"{}\"\n", peer_key(1));
    let config = parse(&with_interface(&peer)).unwrap();
    let peer = &config.peers[0];
    assert_eq!(peer.kind, PeerKind::Rovy);
    assert_eq!(peer.endpoint, None);
    assert!(peer.allowed_ips.is_empty());
    assert!(peer.preshared_key.is_none());
    assert_eq!(peer.persistent_keepalive, None);
}

#[test]
fn listen_takes_multiaddrs_and_host_port() {
    let config = parse(&with_interface(
        r#"listen = ["/ip4/0.0.0.0/udp/1312", "/ip6/::/udp/1312", "127.0.0.1:9", "[::1]:10"]"#,
    ))
    .unwrap();
    let expected: Vec<SocketAddr> = ["0.0.0.0:1312", "[::]:1312", "127.0.0.1:9", "[::1]:10"]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
    assert_eq!(config.interface.listen, Listen::Addresses(expected));
}

#[test]
fn relative_key_files_resolve_against_the_config_directory() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    dir.file("keys/own", own_key().to_base64().as_str(), 0o400);
    let path = dir.file(
        "node.toml",
        "[interface]\nprivate_key_file = \"keys/own\"\n",
        0o644,
    );
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.interface.private_key.as_bytes(),
        own_key().as_bytes()
    );
}

#[test]
fn inline_secrets_need_a_private_config_file() {
    let dir = TempDir::new();
    let text = with_interface("");
    let open = dir.file("open.toml", &text, 0o640);
    let shown = open.display();
    assert_eq!(
        Config::load(&open).unwrap_err().to_string(),
        format!(
            "{shown}: interface.private_key: {shown} holds a secret but is accessible by group or \
             others (mode 0640); run `chmod 600 {shown}` or move the key to a key file \
             (line 2, column 15)"
        )
    );
    let private = dir.file("private.toml", &text, 0o600);
    assert!(Config::load(&private).is_ok());

    let psk_inline = format!(
        "{}[[peer]]\npublic_key = \"{}\"\npreshared_key = \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\"\n",
        "[interface]\nprivate_key_file = \"own.key\"\n",
        peer_key(1)
    );
    dir.file("own.key", own_key().to_base64().as_str(), 0o600);
    let open_psk = dir.file("psk.toml", &psk_inline, 0o604);
    let error = Config::load(&open_psk).unwrap_err();
    assert_eq!(error.key(), Some("peer[0].preshared_key"));
}

#[test]
fn config_writable_by_group_or_others_is_refused() {
    let dir = TempDir::new();
    dir.file("own.key", own_key().to_base64().as_str(), 0o600);
    let text = "[interface]\nprivate_key_file = \"own.key\"\n";
    for mode in [0o664, 0o646, 0o622] {
        let path = dir.file("writable.toml", text, mode);
        let shown = path.display();
        assert_eq!(
            Config::load(&path).unwrap_err().to_string(),
            format!(
                "{shown}: is writable by group or others (mode {mode:04o}); \
                 run `chmod go-w {shown}`"
            )
        );
    }
    let readable = dir.file("readable.toml", text, 0o644);
    assert!(
        Config::load(&readable).is_ok(),
        "a config without secrets may be read by all"
    );
}

#[test]
fn load_reports_unreadable_files() {
    let dir = TempDir::new();
    let missing = dir.path().join("missing.toml");
    assert_eq!(
        Config::load(&missing).unwrap_err().to_string(),
        format!(
            "{}: cannot open: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        Config::load(dir.path()).unwrap_err().to_string(),
        format!("{}: is not a regular file", dir.path().display())
    );
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"[interface]\nname = \"\xff\"\n").unwrap();
    assert_eq!(
        Config::load(&binary).unwrap_err().to_string(),
        format!("{}: is not UTF-8 text (byte 20)", binary.display())
    );
}

/// Hostile input: thousands of small mutations of a valid config must each give a config or an
/// error, never a panic.
#[test]
fn mutated_configs_never_panic() {
    let key = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
    let peer = peer_key(1);
    let valid = format!(
        "[interface]\nname = \"rovy0\"\nprivate_key = \"{key}\"\n\
         listen = [\"/ip4/0.0.0.0/udp/1312\"]\naddresses = [\"10.20.0.1/24\"]\nmtu = 1420\n\
         cores = 2\n\n[[peer]]\npublic_key = \"{peer}\"\n\
         endpoint = \"192.0.2.1:1312\"\nallowed_ips = [\"10.20.0.2/32\"]\n\
         preshared_key = \"{key}\"\npersistent_keepalive = 25\n"
    );
    assert!(parse(&valid).is_ok());
    let alphabet = b"[]\"=./:0123456789abcfx \n#{},'\\-";
    let mut rng = StdRng::seed_from_u64(1);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut bytes = valid.clone().into_bytes();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..bytes.len());
            let byte = alphabet[rng.gen_range(0..alphabet.len())];
            match rng.gen_range(0..3) {
                0 => bytes[at] = byte,
                1 => drop(bytes.remove(at)),
                _ => bytes.insert(at, byte),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        match parse(&text) {
            Ok(_) => accepted += 1,
            Err(message) => {
                assert!(message.starts_with("rovy0.toml: "), "{message}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}
