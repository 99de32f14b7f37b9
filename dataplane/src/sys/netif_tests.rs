//! rtnetlink tests against the kernel: each runs in a network namespace of its own (needs
//! root).

use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::Command;

use super::test_packets::{in_new_netns, parse_udp, read_udp_to};
use super::{
    Rule, Selector, Tun, add_address, add_route, add_rule, add_table_route, delete_route,
    delete_rule, delete_table_route, set_mtu, set_tx_queue_len, set_up,
};

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn ip_addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn routes_beyond_the_address_prefix_carry_traffic_into_the_tun() {
    in_new_netns(|| {
        let tun = Tun::create("rf-route", 1, false).unwrap();
        let own = Ipv6Addr::new(0xfc89, 0x54a1, 0, 0, 0, 0, 0, 1);
        add_address("rf-route", own.into(), 128).unwrap();
        let err = add_route("rf-route", ip_addr("fc00::"), 8, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add route fc00::/8 via rf-route: Network is down (os error 100); \
             kernel says: Nexthop device is not up"
        );
        set_up("rf-route").unwrap();
        add_route("rf-route", ip_addr("fc00::"), 8, Some(1372)).unwrap();
        add_route("rf-route", ip_addr("10.77.0.0"), 16, None).unwrap();

        let v6 = ip(&["-6", "route", "show", "fc00::/8"]);
        assert!(
            v6.starts_with("fc00::/8 dev rf-route proto static ") && v6.contains(" mtu 1372 "),
            "{v6}"
        );
        let v4 = ip(&["route", "show", "10.77.0.0/16"]);
        assert_eq!(v4, "10.77.0.0/16 dev rf-route proto static scope link \n");

        let socket = UdpSocket::bind(SocketAddr::from((own, 0))).unwrap();
        let overlay_peer = SocketAddr::from((Ipv6Addr::new(0xfc12, 0, 0, 0, 0, 0, 0, 5), 9));
        socket.send_to(b"to the overlay", overlay_peer).unwrap();
        let udp = parse_udp(&read_udp_to(&tun, 0, overlay_peer)).unwrap();
        assert_eq!(udp.src, socket.local_addr().unwrap());
        assert_eq!(udp.payload, b"to the overlay");

        let err = add_route("rf-route", ip_addr("fc00::"), 8, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            err.to_string(),
            "add route fc00::/8 via rf-route: File exists (os error 17)"
        );
    });
}

#[test]
fn a_route_goes_only_from_the_interface_it_was_added_to() {
    in_new_netns(|| {
        let _tun = Tun::create("rf-del", 1, false).unwrap();
        set_up("rf-del").unwrap();
        ip(&["link", "set", "lo", "up"]);
        add_route("rf-del", ip_addr("10.77.0.0"), 16, None).unwrap();
        add_route("rf-del", ip_addr("fd77::"), 64, None).unwrap();
        ip(&["route", "add", "10.78.0.0/16", "dev", "lo"]);

        let err = delete_route("rf-del", ip_addr("10.78.0.0"), 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string()
                .starts_with("delete route 10.78.0.0/16 via rf-del: "),
            "{err}"
        );
        assert_eq!(
            ip(&["route", "show", "10.78.0.0/16"]),
            "10.78.0.0/16 dev lo scope link \n",
            "another interface's route stays"
        );

        delete_route("rf-del", ip_addr("10.77.0.0"), 16).unwrap();
        delete_route("rf-del", ip_addr("fd77::"), 64).unwrap();
        assert_eq!(ip(&["route", "show", "10.77.0.0/16"]), "");
        assert_eq!(ip(&["-6", "route", "show", "fd77::/64"]), "");
        let err = delete_route("rf-del", ip_addr("10.77.0.0"), 16).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn bad_prefixes_are_refused_with_the_reason() {
    let cases = [
        (
            "fc00::1",
            8,
            "add route fc00::1/8 via rf-x: address has bits set past the prefix length",
        ),
        (
            "10.77.0.1",
            16,
            "add route 10.77.0.1/16 via rf-x: address has bits set past the prefix length",
        ),
        (
            "10.77.128.0",
            17,
            "add route 10.77.128.0/17 via rf-x: interface rf-x: no such interface",
        ),
        (
            "10.77.128.0",
            16,
            "add route 10.77.128.0/16 via rf-x: address has bits set past the prefix length",
        ),
        (
            "10.0.0.0",
            33,
            "add route 10.0.0.0/33 via rf-x: prefix length above 32",
        ),
        (
            "::",
            129,
            "add route ::/129 via rf-x: prefix length above 128",
        ),
    ];
    for (addr, len, message) in cases {
        let err = in_new_netns(move || add_route("rf-x", ip_addr(addr), len, None).unwrap_err());
        assert_eq!(err.to_string(), message);
    }
    let err = add_address("rf-x", ip_addr("10.0.0.1"), 33).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "add address 10.0.0.1/33 to rf-x: prefix length above 32"
    );
}

#[test]
fn kernel_refusals_name_the_interface_and_the_request() {
    in_new_netns(|| {
        let _tun = Tun::create("rf-addr", 1, false).unwrap();
        add_address("rf-addr", ip_addr("10.99.0.1"), 24).unwrap();
        let err = add_address("rf-addr", ip_addr("10.99.0.1"), 24).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            err.to_string(),
            "add address 10.99.0.1/24 to rf-addr: File exists (os error 17); \
             kernel says: ipv4: Address already assigned"
        );

        let err = set_mtu("rf-addr", 70000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "set MTU 70000 on rf-addr: Invalid argument (os error 22); \
             kernel says: mtu greater than device maximum"
        );

        for err in [
            set_mtu("rf-none", 1400).unwrap_err(),
            set_up("rf-none").unwrap_err(),
            add_address("rf-none", ip_addr("fd00::1"), 64).unwrap_err(),
        ] {
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(
                err.to_string()
                    .ends_with("interface rf-none: no such interface"),
                "{err}"
            );
        }
    });
}

#[test]
fn the_transmit_queue_length_is_set_on_the_named_interface_only() {
    in_new_netns(|| {
        let _tun = Tun::create("rf-txq", 1, false).unwrap();
        set_tx_queue_len("rf-txq", 4096).unwrap();
        let shown = ip(&["-o", "link", "show", "dev", "rf-txq"]);
        assert!(shown.contains(" qlen 4096"), "{shown}");
        set_tx_queue_len("rf-txq", 500).unwrap();
        let shown = ip(&["-o", "link", "show", "dev", "rf-txq"]);
        assert!(shown.contains(" qlen 500"), "{shown}");

        let err = set_tx_queue_len("rf-none", 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            err.to_string(),
            "set transmit queue length 4096 on rf-none: interface rf-none: no such interface"
        );
    });
}

#[test]
fn a_tables_default_route_goes_only_from_that_table() {
    in_new_netns(|| {
        let _tun = Tun::create("rf-tab", 1, false).unwrap();
        set_up("rf-tab").unwrap();
        add_table_route("rf-tab", ip_addr("0.0.0.0"), 0, 51820).unwrap();
        add_table_route("rf-tab", ip_addr("::"), 0, 51820).unwrap();
        assert_eq!(
            ip(&["-4", "route", "show", "table", "51820"]),
            "default dev rf-tab proto static scope link \n"
        );
        let v6 = ip(&["-6", "route", "show", "table", "51820"]);
        assert!(v6.starts_with("default dev rf-tab proto static "), "{v6}");
        assert_eq!(
            ip(&["-4", "route", "show", "default"]),
            "",
            "main is left alone"
        );

        let err = add_table_route("rf-tab", ip_addr("0.0.0.0"), 0, 51820).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(
            err.to_string()
                .starts_with("add route 0.0.0.0/0 via rf-tab to table 51820: File exists"),
            "{err}"
        );
        let err = add_table_route("rf-tab", ip_addr("10.0.0.0"), 8, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add route 10.0.0.0/8 via rf-tab to table 0: table 0 is no table"
        );
        let err = delete_table_route("rf-tab", ip_addr("0.0.0.0"), 0, 51821).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "another table: {err}");

        delete_table_route("rf-tab", ip_addr("0.0.0.0"), 0, 51820).unwrap();
        delete_table_route("rf-tab", ip_addr("::"), 0, 51820).unwrap();
        assert_eq!(ip(&["-4", "route", "show", "table", "51820"]), "");
        assert_eq!(ip(&["-6", "route", "show", "table", "51820"]), "");
    });
}

#[test]
fn rules_are_added_once_and_deleted_without_touching_anyone_elses() {
    in_new_netns(|| {
        let rules = [
            Rule {
                v6: false,
                priority: 32764,
                selector: Selector::SuppressPrefixLen(0),
                table: 254,
            },
            Rule {
                v6: false,
                priority: 32765,
                selector: Selector::NotMarked(51820),
                table: 51820,
            },
            Rule {
                v6: true,
                priority: 32765,
                selector: Selector::NotMarked(0x8000_0001),
                table: 7,
            },
        ];
        for rule in &rules {
            add_rule(rule).unwrap();
        }
        let v4 = ip(&["-4", "rule", "show"]);
        assert!(
            v4.contains("32764:\tfrom all lookup main suppress_prefixlength 0 proto static\n"),
            "{v4}"
        );
        assert!(
            v4.contains("32765:\tnot from all fwmark 0xca6c lookup 51820 proto static\n"),
            "{v4}"
        );
        let v6 = ip(&["-6", "rule", "show"]);
        assert!(
            v6.contains("32765:\tnot from all fwmark 0x80000001 lookup 7 proto static\n"),
            "{v6}"
        );

        let err = add_rule(&rules[1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(
            err.to_string()
                .starts_with("add IPv4 rule 32765: not fwmark 0xca6c lookup 51820: File exists"),
            "{err}"
        );

        // The same rule added by someone else (without our protocol) stays when ours goes.
        ip(&[
            "-4", "rule", "add", "not", "fwmark", "51820", "table", "51820", "pref", "32765",
        ]);
        for rule in &rules {
            delete_rule(rule).unwrap();
        }
        let v4 = ip(&["-4", "rule", "show"]);
        assert!(!v4.contains("proto static"), "{v4}");
        assert!(!v4.contains("suppress_prefixlength"), "{v4}");
        assert!(
            v4.contains("32765:\tnot from all fwmark 0xca6c lookup 51820\n"),
            "{v4}"
        );
        assert!(!ip(&["-6", "rule", "show"]).contains("lookup 7"));
        let err = delete_rule(&rules[1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(
            ip(&["-4", "rule", "show"]).contains("fwmark 0xca6c lookup 51820\n"),
            "a second delete takes nothing"
        );
    });
}
