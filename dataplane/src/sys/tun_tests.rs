//! TUN tests: each runs in a network namespace of its own (needs root).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::process::Command;
use std::time::Duration;

use super::test_packets::{in_new_netns, ipv4_udp, ipv6_udp, parse_udp, read_udp_to};
use super::{
    Datagram, SendBatch, TUN_VNET_HDR_LEN, Tun, TunOffloads, TunQueue, UdpSocketBuilder,
    add_address, delete_link, index, probe_gso, set_mtu, set_up,
};

const TUN_IP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PEER_IP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const TUN_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 1);
const PEER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x99, 0, 0, 0, 0, 0, 2);

/// `virtio_net_hdr` flag: the packet's checksum is partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`).
const VNET_NEEDS_CSUM: u8 = 1;
/// `virtio_net_hdr` GSO type of a UDP super-packet (`VIRTIO_NET_HDR_GSO_UDP_L4`).
const VNET_GSO_UDP_L4: u8 = 5;

/// Output of `ip -o ARGS`, which runs in the calling thread's namespace.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").arg("-o").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A TUN named `name` with `queues` queues, the test addresses, MTU 1420, up.
fn configured_tun(name: &str, queues: usize, vnet_hdr: bool) -> Vec<TunQueue> {
    let tun = Tun::create(name, queues, vnet_hdr).unwrap();
    set_mtu(name, 1420).unwrap();
    set_up(name).unwrap();
    add_address(name, TUN_IP4.into(), 24).unwrap();
    add_address(name, TUN_IP6.into(), 64).unwrap();
    tun
}

fn socket_with_timeout(addr: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
}

#[test]
fn two_queue_tun_gets_mtu_addresses_and_up() {
    in_new_netns(|| {
        let tun = configured_tun("rf-tun0", 2, false);
        assert_eq!(tun.len(), 2);
        assert!(tun.iter().all(|queue| queue.name() == "rf-tun0"));
        assert!(tun.iter().all(|queue| !queue.has_vnet_hdr()));
        assert!(
            tun.iter()
                .all(|queue| queue.offloads() == TunOffloads::NONE)
        );

        let link = ip(&["link", "show", "dev", "rf-tun0"]);
        assert!(link.contains(" mtu 1420 "), "{link}");
        assert!(
            link.contains("<POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP>"),
            "{link}"
        );
        let addrs = ip(&["addr", "show", "dev", "rf-tun0"]);
        assert!(addrs.contains("inet 10.99.0.1/24 "), "{addrs}");
        assert!(
            addrs.contains("inet6 fd00:99::1/64 scope global nodad"),
            "{addrs}"
        );
        assert!(index("rf-tun0").unwrap() > 1);
    });
}

#[test]
fn ipv4_udp_crosses_the_tun_both_ways() {
    in_new_netns(|| {
        let tun = configured_tun("rf-tun4", 2, false);

        // Kernel → TUN: a datagram to the peer side of the subnet is routed out of the TUN.
        let socket = socket_with_timeout(SocketAddr::from((TUN_IP4, 0)));
        let peer = SocketAddr::from((PEER_IP4, 9));
        socket.send_to(b"out through the tun", peer).unwrap();
        let packet = read_udp_to(&tun, 0, peer);
        assert_eq!(packet.len(), 20 + 8 + 19);
        assert_eq!(packet[9], 17, "protocol");
        let udp = parse_udp(&packet).unwrap();
        assert_eq!(udp.src, socket.local_addr().unwrap());
        assert_eq!(udp.dst, peer);
        assert_eq!(udp.payload, b"out through the tun");
        assert!(udp.checksum_ok);

        // TUN → kernel: only the datagram with a correct checksum is delivered.
        let from = SocketAddrV4::new(PEER_IP4, 5555);
        let SocketAddr::V4(to) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let mut corrupted = ipv4_udp(from, to, b"bad checksum");
        corrupted[26] ^= 0xff;
        assert_eq!(tun[1].write(&corrupted).unwrap(), corrupted.len());
        let good = ipv4_udp(from, to, b"in through the tun");
        assert_eq!(tun[0].write(&good).unwrap(), good.len());
        let mut buf = [0; 64];
        let (len, src) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"in through the tun");
        assert_eq!(src, SocketAddr::V4(from));
    });
}

#[test]
fn ipv6_udp_crosses_the_tun_both_ways() {
    in_new_netns(|| {
        let tun = configured_tun("rf-tun6", 1, false);
        // Bindable at once: the address was added without duplicate-address detection.
        let socket = socket_with_timeout(SocketAddr::from((TUN_IP6, 0)));
        let peer = SocketAddr::from((PEER_IP6, 9));
        socket.send_to(b"v6 out", peer).unwrap();
        let packet = read_udp_to(&tun, 0, peer);
        assert_eq!(packet.len(), 40 + 8 + 6);
        let udp = parse_udp(&packet).unwrap();
        assert_eq!(udp.src, socket.local_addr().unwrap());
        assert_eq!(udp.payload, b"v6 out");
        assert!(udp.checksum_ok);

        let from = SocketAddrV6::new(PEER_IP6, 6666, 0, 0);
        let SocketAddr::V6(to) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let mut corrupted = ipv6_udp(from, to, b"bad checksum");
        corrupted[47] ^= 0xff;
        // The kernel installs the local route of a new IPv6 address from a work item, a few
        // milliseconds after the request is acknowledged: until then, packets to it are
        // dropped, so keep offering the pair.
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0; 64];
        let received = (0..40).find_map(|_| {
            tun[0].write(&corrupted).unwrap();
            tun[0].write(&ipv6_udp(from, to, b"v6 in")).unwrap();
            socket.recv_from(&mut buf).ok()
        });
        let (len, src) = received.expect("nothing delivered in 2 s");
        assert_eq!(&buf[..len], b"v6 in");
        assert_eq!(src, SocketAddr::V6(from));
    });
}

#[test]
fn creating_over_an_existing_interface_is_refused() {
    in_new_netns(|| {
        let _ours = Tun::create("rf-excl", 1, false).unwrap();
        for name in ["rf-excl", "lo"] {
            let err = Tun::create(name, 2, false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(
                err.to_string(),
                format!(
                    "create TUN {name}: an interface with this name already exists \
                     (not attaching to a device we did not create)"
                )
            );
        }
    });
}

#[test]
fn delete_link_removes_the_interface_and_so_does_dropping_the_queues() {
    in_new_netns(|| {
        let tun = Tun::create("rf-del", 2, false).unwrap();
        assert!(index("rf-del").is_ok());
        delete_link("rf-del").unwrap();
        let err = index("rf-del").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), "interface rf-del: no such interface");
        let mut buf = [0; 64];
        let err = tun[0].read(&mut buf).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADFD));
        let err = delete_link("rf-del").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);

        let tun = Tun::create("rf-drop", 3, false).unwrap();
        assert!(index("rf-drop").is_ok());
        drop(tun);
        assert_eq!(
            index("rf-drop").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    });
}

#[test]
fn bad_names_and_queue_counts_are_refused_before_any_system_call() {
    let cases = [
        ("", 1, "interface name \"\": must be 1 to 15 bytes long"),
        (
            "sixteen-bytes-xx",
            1,
            "interface name \"sixteen-bytes-xx\": must be 1 to 15 bytes long",
        ),
        ("..", 1, "interface name \"..\": reserved name"),
        (
            "rf/0",
            1,
            "interface name \"rf/0\": must not contain NUL, '/', ':' or whitespace",
        ),
        (
            "rf 0",
            1,
            "interface name \"rf 0\": must not contain NUL, '/', ':' or whitespace",
        ),
        (
            "rf-q",
            0,
            "create TUN rf-q: 0 queues asked, 1 to 256 possible",
        ),
        (
            "rf-q",
            257,
            "create TUN rf-q: 257 queues asked, 1 to 256 possible",
        ),
    ];
    for (name, queues, message) in cases {
        let err = Tun::create(name, queues, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn fifteen_byte_names_fit() {
    in_new_netns(|| {
        let tun = Tun::create("rf-fifteen-byte", 1, false).unwrap();
        assert_eq!(tun[0].name(), "rf-fifteen-byte");
    });
}

#[test]
fn offloads_need_a_vnet_header() {
    in_new_netns(|| {
        let mut tun = Tun::create("rf-novnet", 1, false).unwrap();
        let err = tun[0].set_offloads(TunOffloads::ALL).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "TUN rf-novnet: offloads need a vnet header"
        );
        tun[0].set_offloads(TunOffloads::NONE).unwrap();
    });
}

/// The 12-byte virtio header at the start of `packet`: (flags, gso_type, gso_size,
/// csum_start, csum_offset).
fn vnet_header(packet: &[u8]) -> (u8, u8, u16, u16, u16) {
    let u16_at = |at: usize| u16::from_ne_bytes([packet[at], packet[at + 1]]);
    (packet[0], packet[1], u16_at(4), u16_at(6), u16_at(8))
}

/// Sends 4000 bytes as four GSO segments of 1000 towards the TUN's peer address.
fn send_gso(socket: &std::os::fd::OwnedFd, peer: SocketAddr) -> io::Result<usize> {
    let payload: Vec<u8> = (0..4000u32).map(|i| (i / 1000) as u8 + b'a').collect();
    let msgs = [Datagram {
        payload: &payload,
        dst: peer,
        segment_size: Some(1000),
    }];
    SendBatch::new(1).send_batch(socket, &msgs)
}

#[test]
fn vnet_header_tun_probes_offloads_and_segments_accordingly() {
    in_new_netns(|| {
        let mut tun = configured_tun("rf-vnet", 2, true);
        let probed = tun[0].offloads();
        println!("TUN offloads accepted by this kernel: {probed:?}");
        assert!(
            tun.iter()
                .all(|queue| queue.has_vnet_hdr() && queue.offloads() == probed)
        );
        assert!(probed.csum, "TUN_F_CSUM is as old as vnet headers");
        assert!(probed.csum || !(probed.tso4 || probed.tso6 || probed.uso4 || probed.uso6));
        assert_eq!(probed.uso4, probed.uso6, "probed as a pair");
        assert!(!probed.uso4 || probed.tso4, "USO is tried after TSO");

        // Writing: a zeroed virtio header (no GSO, checksum complete) and a packet.
        let socket = socket_with_timeout(SocketAddr::from((TUN_IP4, 0)));
        let SocketAddr::V4(to) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let from = SocketAddrV4::new(PEER_IP4, 7777);
        let frame = [
            &[0u8; TUN_VNET_HDR_LEN][..],
            &ipv4_udp(from, to, b"vnet in"),
        ]
        .concat();
        assert_eq!(tun[1].write(&frame).unwrap(), frame.len());
        let mut buf = [0; 64];
        let (len, src) = socket.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], src), (&b"vnet in"[..], SocketAddr::V4(from)));

        // Reading: with checksum offload the kernel leaves the UDP checksum partial.
        let peer = SocketAddr::from((PEER_IP4, 9));
        socket.send_to(b"vnet out", peer).unwrap();
        let frame = read_udp_to(&tun, TUN_VNET_HDR_LEN, peer);
        let udp = parse_udp(&frame[TUN_VNET_HDR_LEN..]).unwrap();
        assert_eq!(udp.payload, b"vnet out");
        assert_eq!(vnet_header(&frame), (VNET_NEEDS_CSUM, 0, 0, 20, 6));
        assert!(
            !udp.checksum_ok,
            "partial: only the pseudo-header sum is filled in"
        );

        let gso_socket = UdpSocketBuilder::new()
            .bind(SocketAddr::from((TUN_IP4, 0)))
            .unwrap();
        assert!(probe_gso(&gso_socket));
        let segment = |frame: &[u8]| parse_udp(&frame[TUN_VNET_HDR_LEN..]).unwrap().payload;

        // With USO the UDP super-packet reaches us whole, described by the header.
        if probed.uso4 {
            assert_eq!(send_gso(&gso_socket, peer).unwrap(), 1);
            let frame = read_udp_to(&tun, TUN_VNET_HDR_LEN, peer);
            assert_eq!(frame.len(), TUN_VNET_HDR_LEN + 20 + 8 + 4000);
            assert_eq!(
                vnet_header(&frame),
                (VNET_NEEDS_CSUM, VNET_GSO_UDP_L4, 1000, 20, 6)
            );
            assert_eq!(segment(&frame)[999..1001], *b"ab");
        }

        // Without USO the kernel segments, and still leaves checksums to us.
        tun[0].set_offloads(TunOffloads::TSO).unwrap();
        assert_eq!(tun[0].offloads(), TunOffloads::TSO);
        assert_eq!(send_gso(&gso_socket, peer).unwrap(), 1);
        for expected in [b'a', b'b', b'c', b'd'] {
            let frame = read_udp_to(&tun, TUN_VNET_HDR_LEN, peer);
            assert_eq!(vnet_header(&frame), (VNET_NEEDS_CSUM, 0, 0, 20, 6));
            assert_eq!(segment(&frame), vec![expected; 1000]);
        }

        // Without checksum offload the kernel segments and checksums in software (kernels
        // before that fallback refuse a GSO send through such a device with EIO).
        tun[0].set_offloads(TunOffloads::NONE).unwrap();
        match send_gso(&gso_socket, peer) {
            Ok(sent) => {
                assert_eq!(sent, 1);
                for expected in [b'a', b'b', b'c', b'd'] {
                    let frame = read_udp_to(&tun, TUN_VNET_HDR_LEN, peer);
                    assert_eq!(vnet_header(&frame), (0, 0, 0, 0, 0));
                    let udp = parse_udp(&frame[TUN_VNET_HDR_LEN..]).unwrap();
                    assert_eq!(udp.payload, vec![expected; 1000]);
                    assert!(udp.checksum_ok);
                }
            }
            Err(err) => assert_eq!(err.raw_os_error(), Some(libc::EIO)),
        }
    });
}
