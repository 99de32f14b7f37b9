//! Both worker backends carry UDP through a real TUN pair both ways, hand handshakes to
//! control (or send back the reply their screen wrote), count what they drop and send a GSO
//! group the kernel refuses again one datagram at a time, the same way (needs root).
#![forbid(unsafe_code)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{A_UNDERLAY, B_APP, Backend, Stopped, TwoNodes, in_new_netns};
use rovy_dataplane::DropReason;
use rovy_dataplane::control_queue::{HandshakeScreen, Screened};
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::sys::{Datagram, SendBatch};

/// Sealed sizes of the round-trip payloads below: 32 bytes of header and tag around the inner
/// packet (28 bytes of IPv4 and UDP headers plus payload) padded to 16, but not past the MTU.
const PAYLOAD_LENS: [usize; 3] = [5, 1000, 1392];
const SEALED_BYTES: u64 = (32 + 48) + (32 + 1040) + (32 + 1420);

fn junk_at_a() -> [Vec<u8>; 4] {
    let mut initiation = vec![0x77; 148];
    initiation[..4].copy_from_slice(&1u32.to_le_bytes());
    let mut unknown_index = vec![0; 32];
    unknown_index[..4].copy_from_slice(&4u32.to_le_bytes());
    unknown_index[4..8].copy_from_slice(&0xdead_u32.to_le_bytes());
    [
        vec![4, 0, 0],
        b"\x09\0\0\0junk".to_vec(),
        unknown_index,
        initiation,
    ]
}

fn carries_counts_and_hands_over(backend: Backend, offloads: bool) {
    let [a, b] = in_new_netns(move || {
        let nodes = TwoNodes::start_with(backend, offloads);
        let junk_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in junk_at_a() {
            junk_socket.send_to(&datagram, A_UNDERLAY).unwrap();
        }
        let unrouted = SocketAddr::from(([10, 71, 1, 3], 9));
        nodes.a_app.send_to(b"nowhere", unrouted).unwrap();
        let mut buf = [0u8; 2048];
        for (i, len) in PAYLOAD_LENS.into_iter().enumerate() {
            let payload: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            nodes.round_trip(&payload, &mut buf);
        }
        let junk_src = junk_socket.local_addr().unwrap();
        let stopped = nodes.stop();
        let initiation = &stopped[0].handshakes;
        assert_eq!(initiation.len(), 1, "{backend:?}");
        assert_eq!(initiation[0].src, junk_src.into());
        assert_eq!(initiation[0].socket, 0);
        assert_eq!(
            &initiation[0].bytes[..initiation[0].len],
            &junk_at_a()[3][..]
        );
        stopped
    });
    let count = |s: &Stopped, reason| s.counters.drops().get(reason);
    assert_eq!(
        a.counters.tx_packets.load(Ordering::Relaxed),
        3,
        "{backend:?}, offloads {offloads}"
    );
    assert_eq!(a.counters.rx_packets.load(Ordering::Relaxed), 3 + 4);
    assert_eq!(a.counters.tx_bytes.load(Ordering::Relaxed), SEALED_BYTES);
    let junk_bytes: u64 = junk_at_a().iter().map(|j| j.len() as u64).sum();
    assert_eq!(
        a.counters.rx_bytes.load(Ordering::Relaxed),
        SEALED_BYTES + junk_bytes
    );
    assert_eq!(count(&a, DropReason::Truncated), 1);
    assert_eq!(count(&a, DropReason::UnknownType), 1);
    assert_eq!(count(&a, DropReason::UnknownIndex), 1);
    assert_eq!(count(&a, DropReason::NoRoute), 1);
    assert_eq!(a.counters.drops().total(), 4);

    assert_eq!(b.counters.tx_packets.load(Ordering::Relaxed), 3);
    assert_eq!(b.counters.rx_packets.load(Ordering::Relaxed), 3);
    assert_eq!(b.counters.tx_bytes.load(Ordering::Relaxed), SEALED_BYTES);
    assert_eq!(b.counters.rx_bytes.load(Ordering::Relaxed), SEALED_BYTES);
    assert_eq!(b.counters.drops().total(), 0);
    assert!(b.handshakes.is_empty());
}

#[test]
fn epoll_backend_carries_counts_and_hands_over() {
    carries_counts_and_hands_over(Backend::Epoll, false);
}

#[test]
fn uring_backend_carries_counts_and_hands_over() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    carries_counts_and_hands_over(Backend::Uring, false);
}

#[test]
fn epoll_offload_path_carries_counts_and_hands_over() {
    carries_counts_and_hands_over(Backend::Epoll, true);
}

#[test]
fn uring_offload_path_carries_counts_and_hands_over() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    carries_counts_and_hands_over(Backend::Uring, true);
}

/// Sends each payload from A's application as one GSO send of `segment`-byte datagrams (A
/// seals them as one GSO send too, and B receives them as GRO buffers), and checks that B's
/// application receives exactly those datagrams, in order.
fn send_bursts(nodes: &TwoNodes, payloads: &[Vec<u8>], segment: usize) {
    let mut send = SendBatch::new(1);
    for payload in payloads {
        let datagram = Datagram {
            payload,
            dst: B_APP,
            segment_size: Some(segment as u16),
        };
        send.send_batch(&nodes.a_app, &[datagram]).unwrap();
    }
    let payload = payloads.concat();
    let mut buf = [0u8; 2048];
    for (i, expected) in payload.chunks(segment).enumerate() {
        let (len, from) = nodes.b_app.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], expected, "datagram {i}");
        assert_eq!(from, nodes.a_app.local_addr().unwrap());
    }
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Datagrams in the burst below.
const BURST: usize = 40;

/// A burst of 40 datagrams of 1200 bytes arrives whole. Where B's TUN takes USO frames, B
/// writes it with one TUN write instead of one per datagram.
fn udp_burst_is_coalesced_and_arrives_whole(backend: Backend) {
    let (b, b_uso) = in_new_netns(move || {
        let nodes = TwoNodes::start_with(backend, true);
        nodes.round_trip(b"first", &mut [0u8; 64]);
        let burst: Vec<u8> = (0..BURST * 1200).map(|i| (i * 7 + i / 251) as u8).collect();
        send_bursts(&nodes, &[burst], 1200);
        let b_uso = nodes.b_offloads.uso4;
        let [_, b] = nodes.stop();
        (b, b_uso)
    });
    assert_eq!(count(&b.counters.rx_packets), 1 + BURST as u64);
    assert_eq!(b.counters.drops().total(), 0);
    // The round trip's first packet, then the burst.
    let expected_writes = if b_uso { 2 } else { 1 + BURST as u64 };
    assert_eq!(
        count(&b.counters.tun_writes),
        expected_writes,
        "{backend:?}, USO {b_uso}"
    );
}

/// Bursts of small datagrams sent back to back (B may receive all 256 in one batch) arrive
/// whole: coalesced frames stay within the kernel's limit on datagrams per USO frame (or B's
/// TUN would refuse them, counted as `send_failed`).
fn small_udp_bursts_arrive_whole(backend: Backend) {
    let b = in_new_netns(move || {
        let nodes = TwoNodes::start_with(backend, true);
        nodes.round_trip(b"first", &mut [0u8; 64]);
        let bursts: Vec<Vec<u8>> = (0..4)
            .map(|burst| (0..64 * 20).map(|i| (i % 253 + burst) as u8).collect())
            .collect();
        send_bursts(&nodes, &bursts, 20);
        let [_, b] = nodes.stop();
        b
    });
    assert_eq!(count(&b.counters.rx_packets), 1 + 4 * 64);
    assert_eq!(b.counters.drops().total(), 0, "{:?}", b.counters.drops());
}

#[test]
fn epoll_offload_path_coalesces_udp_bursts() {
    udp_burst_is_coalesced_and_arrives_whole(Backend::Epoll);
    small_udp_bursts_arrive_whole(Backend::Epoll);
}

#[test]
fn uring_offload_path_coalesces_udp_bursts() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    udp_burst_is_coalesced_and_arrives_whole(Backend::Uring);
    small_udp_bursts_arrive_whole(Backend::Uring);
}

/// A GSO send the kernel refuses goes out again one datagram at a time: the burst arrives
/// whole and each datagram is counted once. Here the kernel refuses because a segment is
/// longer than the underlay's MTU, which a datagram sent on its own may be (it is fragmented).
fn refused_gso_sends_go_out_one_datagram_at_a_time(backend: Backend) {
    let [a, b] = in_new_netns(move || {
        let nodes = TwoNodes::start_with(backend, true);
        nodes.round_trip(b"first", &mut [0u8; 64]);
        rovy_dataplane::sys::set_mtu("lo", 1000).unwrap();
        let burst: Vec<u8> = (0..BURST * 1200)
            .map(|i| (i * 13 + i / 241) as u8)
            .collect();
        send_bursts(&nodes, &[burst], 1200);
        nodes.stop()
    });
    assert_eq!(
        a.counters.drops().total(),
        0,
        "{backend:?}: {:?}",
        a.counters.drops()
    );
    assert_eq!(count(&a.counters.tx_packets), 1 + BURST as u64);
    assert_eq!(count(&b.counters.rx_packets), 1 + BURST as u64);
}

#[test]
fn epoll_offload_path_resends_refused_gso_sends() {
    refused_gso_sends_go_out_one_datagram_at_a_time(Backend::Epoll);
}

#[test]
fn uring_offload_path_resends_refused_gso_sends() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    refused_gso_sends_go_out_one_datagram_at_a_time(Backend::Uring);
}

/// A screen that answers every initiation with a 64-byte reply (type 3, as a cookie reply)
/// and drops everything else as if its mac1 were wrong.
#[derive(Debug)]
struct AnswerInitiations;

const SCREEN_REPLY: [u8; 4] = [3, 0, 0, 0x5c];

impl HandshakeScreen for AnswerInitiations {
    fn screen(&self, _: Duration, _: &LinkAddr, message: &mut [u8], _: usize) -> Screened {
        let kind = message.first().copied();
        match (kind, message.get_mut(..64)) {
            (Some(1), Some(reply)) => {
                reply.fill(0x33);
                reply[..4].copy_from_slice(&SCREEN_REPLY);
                Screened::Reply { len: 64 }
            }
            _ => Screened::Drop(DropReason::InvalidMac1),
        }
    }
}

/// What the screen decides is done by the worker: its replies go back to the sender from the
/// listen socket, its drops are counted, and nothing it answered or dropped reaches control.
fn screened_handshakes_are_answered_or_dropped(backend: Backend, offloads: bool) {
    let [a, _] = in_new_netns(move || {
        let nodes = TwoNodes::start_screened(backend, offloads, Arc::new(AnswerInitiations));
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut initiation = [0x77u8; 148];
        initiation[..4].copy_from_slice(&1u32.to_le_bytes());
        let mut response = [0x55u8; 92];
        response[..4].copy_from_slice(&2u32.to_le_bytes());
        for _ in 0..3 {
            sender.send_to(&initiation, A_UNDERLAY).unwrap();
            sender.send_to(&response, A_UNDERLAY).unwrap();
        }
        let mut buf = [0u8; 256];
        for _ in 0..3 {
            let (len, from) = sender.recv_from(&mut buf).unwrap();
            assert_eq!(
                (len, from),
                (64, A_UNDERLAY),
                "{backend:?}, offloads {offloads}"
            );
            assert_eq!(buf[..4], SCREEN_REPLY);
            assert!(buf[4..64].iter().all(|&b| b == 0x33));
        }
        let stopped = nodes.stop();
        assert!(stopped[0].handshakes.is_empty());
        stopped
    });
    let drops = a.counters.drops();
    assert_eq!(drops.get(DropReason::CookieRequired), 3);
    assert_eq!(drops.get(DropReason::InvalidMac1), 3);
    assert_eq!(drops.total(), 6);
}

#[test]
fn epoll_backends_send_the_screens_replies() {
    screened_handshakes_are_answered_or_dropped(Backend::Epoll, false);
    screened_handshakes_are_answered_or_dropped(Backend::Epoll, true);
}

#[test]
fn uring_backends_send_the_screens_replies() {
    rovy_dataplane::sys::uring::probe().expect("io_uring on the test machine");
    screened_handshakes_are_answered_or_dropped(Backend::Uring, false);
    screened_handshakes_are_answered_or_dropped(Backend::Uring, true);
}
