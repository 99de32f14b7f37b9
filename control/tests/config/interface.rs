//! Errors in the document's shape and in `[interface]`.

use rovy_control::config::{Config, Listen};

use crate::common::TempDir;
use crate::{error, own_key, parse, peer_key, with_interface};

#[test]
fn syntax_and_shape_errors() {
    assert_eq!(
        error("[interface]\nname = \"rovy0\nmtu = 1420\n"),
        "rovy0.toml: invalid TOML: invalid basic string (line 2, column 14)"
    );
    assert_eq!(
        error("[interface\n"),
        "rovy0.toml: invalid TOML: invalid table header; expected `.`, `]` (line 1, column 11)"
    );
    assert_eq!(
        error(""),
        "rovy0.toml: interface: missing [interface] table"
    );
    assert_eq!(
        error(&with_interface("[peers]\n")),
        "rovy0.toml: peers: unknown key (expected [interface] and [[peer]] tables)"
    );
    assert_eq!(
        error(&with_interface("[peer]\npublic_key = \"x\"\n")),
        "rovy0.toml: peer: must be an array of tables: write [[peer]], not [peer]"
    );
    assert_eq!(
        error("interface = 5\n"),
        "rovy0.toml: interface: must be a table ([interface]), not an integer"
    );
}

#[test]
fn tables_nested_in_interface_or_peer_are_refused() {
    assert_eq!(
        error(&with_interface(
            "mtu.value = 1420
"
        )),
        "rovy0.toml: interface.mtu: must not be a table"
    );
    assert_eq!(
        error(&with_interface(
            "extra = { a = 1 }
"
        )),
        "rovy0.toml: interface.extra: unknown key (known keys: name, private_key_file, \
         private_key, listen_port, listen, addresses, mtu, cores, metrics, routes, fwmark)"
    );
    assert_eq!(
        error(&with_interface(
            "listen = [{ port = 1 }]
"
        )),
        "rovy0.toml: interface.listen: must not be an array with non-string items"
    );
    let peer = format!(
        "[[peer]]\npublic_key = \"{}\"\n[peer.endpoint]\n",
        peer_key(1)
    );
    assert_eq!(
        error(&with_interface(&peer)),
        "rovy0.toml: peer[0].endpoint: must not be a table"
    );
    // Arrays nested without tables reach the typed pass, which has their location.
    assert_eq!(
        error(&with_interface("listen = [[\"[::]:1\"]]\n")),
        "rovy0.toml: interface.listen: must be an array of strings, not an array with \
         non-string items (line 3, column 10)"
    );
}

#[test]
fn unknown_keys_and_wrong_types() {
    assert_eq!(
        error(&with_interface("mtu = 1420\nlisten_prot = 1312\n")),
        "rovy0.toml: interface.listen_prot: unknown key (known keys: name, private_key_file, \
         private_key, listen_port, listen, addresses, mtu, cores, metrics, routes, fwmark) (line 4, column 15)"
    );
    let peer = format!(
        "[[peer]]\npublic_key = \"{}\"\nallowed_ip = []\n",
        peer_key(1)
    );
    assert_eq!(
        error(&with_interface(&peer)),
        "rovy0.toml: peer[0].allowed_ip: unknown key (known keys: public_key, kind, endpoint, \
         allowed_ips, preshared_key_file, preshared_key, persistent_keepalive) (line 5, column 14)"
    );
    assert_eq!(
        error(&with_interface("listen_port = \"1312\"\n")),
        "rovy0.toml: interface.listen_port: must be an integer, not a string (line 3, column 15)"
    );
    assert_eq!(
        error(&with_interface("addresses = \"10.0.0.1/24\"\n")),
        "rovy0.toml: interface.addresses: must be an array of strings, not a string \
         (line 3, column 13)"
    );
    assert_eq!(
        error(&with_interface("addresses = [\"10.0.0.1/24\", 5]\n")),
        "rovy0.toml: interface.addresses: must be an array of strings, not an array with \
         non-string items (line 3, column 13)"
    );
    assert_eq!(
        error(&with_interface("name = [\"rovy0\"]\n")),
        "rovy0.toml: interface.name: must be a string, not an array of strings (line 3, column 8)"
    );
    assert_eq!(
        error(&with_interface("mtu = 1420.0\n")),
        "rovy0.toml: interface.mtu: must be an integer, not a float (line 3, column 7)"
    );
}

#[test]
fn interface_value_errors() {
    let cases = [
        (
            "name = \"a-very-long-ifname\"\n",
            "interface.name: \"a-very-long-ifname\" is longer than 15 bytes, Linux's limit \
             (line 3, column 8)",
        ),
        (
            "name = \"\"\n",
            "interface.name: must not be empty (line 3, column 8)",
        ),
        (
            "name = \"rovy/0\"\n",
            "interface.name: \"rovy/0\" is not an interface name (no '/', ':', whitespace or \
             control characters; not \".\" or \"..\") (line 3, column 8)",
        ),
        (
            "name = \"rovy 0\"\n",
            "interface.name: \"rovy 0\" is not an interface name (no '/', ':', whitespace or \
             control characters; not \".\" or \"..\") (line 3, column 8)",
        ),
        (
            "name = \"..\"\n",
            "interface.name: \"..\" is not an interface name (no '/', ':', whitespace or \
             control characters; not \".\" or \"..\") (line 3, column 8)",
        ),
        (
            "listen_port = 0\n",
            "interface.listen_port: 0 is out of range (1..=65535) (line 3, column 15)",
        ),
        (
            "listen_port = 65536\n",
            "interface.listen_port: 65536 is out of range (1..=65535) (line 3, column 15)",
        ),
        (
            "listen_port = 1312\nlisten = [\"[::]:1312\"]\n",
            "interface.listen: set either listen_port or listen, not both (line 4, column 10)",
        ),
        (
            "listen = []\n",
            "interface.listen: must name at least one address (line 3, column 10)",
        ),
        (
            "listen = [\"example.org:1312\"]\n",
            "interface.listen: \"example.org:1312\" is not a listen address (expected ADDR:PORT, \
             [IPV6]:PORT, /ip4/ADDR/udp/PORT or /ip6/ADDR/udp/PORT) (line 3, column 10)",
        ),
        (
            "listen = [\"0.0.0.0:1\", \"/ip4/0.0.0.0/udp/1\"]\n",
            "interface.listen: 0.0.0.0:1 is listed twice (line 3, column 10)",
        ),
        (
            "addresses = [\"10.20.0.1/24\", \"10.20.0.1/40\"]\n",
            "interface.addresses: \"10.20.0.1/40\" is not an IP prefix (length 40 is longer than \
             32) (line 3, column 13)",
        ),
        (
            "mtu = 1279\n",
            "interface.mtu: 1279 is out of range (1280..=9000) (line 3, column 7)",
        ),
        (
            "mtu = 9001\n",
            "interface.mtu: 9001 is out of range (1280..=9000) (line 3, column 7)",
        ),
        (
            "cores = 0\n",
            "interface.cores: 0 is out of range (1..=256) (line 3, column 9)",
        ),
        (
            "cores = 257\n",
            "interface.cores: 257 is out of range (1..=256) (line 3, column 9)",
        ),
        (
            "cores = -1\n",
            "interface.cores: -1 is out of range (1..=256) (line 3, column 9)",
        ),
        (
            "metrics = \"localhost:9586\"\n",
            "interface.metrics: \"localhost:9586\" is not an address and port (write e.g. \
             \"127.0.0.1:9586\" or \"[::1]:9586\") (line 3, column 11)",
        ),
        (
            "metrics = 9586\n",
            "interface.metrics: must be a string, not an integer (line 3, column 11)",
        ),
    ];
    for (rest, expected) in cases {
        assert_eq!(
            error(&with_interface(rest)),
            format!("rovy0.toml: {expected}"),
            "{rest}"
        );
    }
    // Values at the edges of their ranges are accepted.
    let edges = parse(&with_interface(
        "name = \"abcdefghijklmno\"\nlisten_port = 65535\nmtu = 9000\ncores = 256\n",
    ))
    .unwrap();
    assert_eq!(edges.interface.name, "abcdefghijklmno");
    assert_eq!(edges.interface.mtu, 9000);
    assert_eq!(edges.interface.cores, Some(256));
    assert_eq!(edges.interface.listen, Listen::AllAddresses { port: 65535 });
    assert_eq!(
        parse(&with_interface("mtu = 1280\n"))
            .unwrap()
            .interface
            .mtu,
        1280
    );
}

#[test]
fn private_key_errors() {
    let key = own_key().to_base64();
    assert_eq!(
        error("[interface]\nname = \"rovy0\"\n"),
        "rovy0.toml: interface: needs private_key_file (or private_key) (line 1, column 1)"
    );
    assert_eq!(
        error(&format!(
            "[interface]\nprivate_key_file = \"k\"\nprivate_key = \"{}\"\n",
            key.as_str()
        )),
        "rovy0.toml: interface.private_key: set either private_key or private_key_file, not both \
         (line 3, column 15)"
    );
    assert_eq!(
        error("[interface]\nprivate_key = \"AAAA\"\n"),
        "rovy0.toml: interface.private_key: key is 3 bytes long, not 32 (line 2, column 15)"
    );

    let dir = TempDir::new();
    dir.file("open.key", key.as_str(), 0o644);
    dir.file("empty.key", "", 0o600);
    let from_file = |name: &str| {
        Config::from_toml_str(
            &format!("[interface]\nprivate_key_file = \"{name}\"\n"),
            "rovy0.toml",
            dir.path(),
        )
        .unwrap_err()
        .to_string()
    };
    let open = dir.path().join("open.key");
    assert_eq!(
        from_file("open.key"),
        format!(
            "rovy0.toml: interface.private_key_file: key file {0} is accessible by group or \
             others (mode 0644); run `chmod 600 {0}` (line 2, column 20)",
            open.display()
        )
    );
    assert_eq!(
        from_file("empty.key"),
        format!(
            "rovy0.toml: interface.private_key_file: key file {}: key is empty (line 2, column 20)",
            dir.path().join("empty.key").display()
        )
    );
    assert_eq!(
        from_file("missing.key"),
        format!(
            "rovy0.toml: interface.private_key_file: key file {}: No such file or directory \
             (os error 2) (line 2, column 20)",
            dir.path().join("missing.key").display()
        )
    );
}

#[test]
fn metrics_take_an_address_and_port_and_are_off_by_default() {
    let on = parse(&with_interface("metrics = \"[::1]:9586\"\n")).unwrap();
    assert_eq!(on.interface.metrics, Some("[::1]:9586".parse().unwrap()));
    let off = parse(&with_interface("")).unwrap();
    assert_eq!(off.interface.metrics, None);
}

#[test]
fn routes_into_the_tun_are_on_unless_turned_off() {
    assert!(parse(&with_interface("")).unwrap().interface.routes);
    assert!(
        parse(&with_interface("routes = true\n"))
            .unwrap()
            .interface
            .routes
    );
    assert!(
        !parse(&with_interface("routes = false\n"))
            .unwrap()
            .interface
            .routes
    );
    let error = error(&with_interface("routes = \"off\"\n"));
    assert!(
        error.starts_with("rovy0.toml: interface.routes: must be true or false, not a string"),
        "{error}"
    );
}

#[test]
fn fwmark_is_a_32_bit_mark_and_0_is_none() {
    let mark = |extra: &str| parse(&with_interface(extra)).unwrap().interface.fwmark;
    assert_eq!(mark(""), None);
    assert_eq!(mark("fwmark = 0\n"), None, "0 is wg's off");
    assert_eq!(mark("fwmark = 51820\n"), Some(51820));
    assert_eq!(mark("fwmark = 0xca6c\n"), Some(0xca6c));
    assert_eq!(mark("fwmark = 4294967295\n"), Some(u32::MAX));
    assert_eq!(
        error(&with_interface("fwmark = 4294967296\n")),
        "rovy0.toml: interface.fwmark: 4294967296 is out of range (0..=4294967295) \
         (line 3, column 10)"
    );
    assert_eq!(
        error(&with_interface("fwmark = \"off\"\n")),
        "rovy0.toml: interface.fwmark: must be an integer, not a string (line 3, column 10)"
    );
}
