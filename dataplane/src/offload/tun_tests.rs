//! The kernel's side of the contract (needs root; runs in a network namespace of its own): a
//! TUN with TSO hands us super-packets that split into valid segments, and it takes the
//! coalescer's super-packets as one TCP stream. The test plays the TCP peer by hand.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::test_packets::{ACK, Flow, SYN, parse_checked, payload};
use super::{Coalescer, GsoType, Push, Segmenter, VNET_HDR_LEN, VnetHdr};
use crate::sys::{Tun, TunQueue, add_address, enter_new_netns_for_current_thread, set_mtu, set_up};

const TUN_IP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PEER_IP4: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const MTU: usize = 1420;
/// The MSS we announce: a full segment is exactly one MTU.
const MSS: usize = MTU - 40;
const PEER_ISN: u32 = 0x7fff_fff0;

/// Runs `body` on a thread of its own inside a new network namespace.
fn in_new_netns(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(|| {
        enter_new_netns_for_current_thread().expect("unshare(CLONE_NEWNET) (run tests as root)");
        body();
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// Reads frames until one carries TCP to the peer and `wanted` accepts it; returns the
/// frame. Panics after two seconds.
fn read_tcp(tun: &TunQueue, wanted: &mut dyn FnMut(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = vec![0; VNET_HDR_LEN + 65_536];
    while Instant::now() < deadline {
        match tun.read(&mut buf) {
            Ok(len) => {
                let packet = &buf[VNET_HDR_LEN..len];
                let to_peer = packet.len() > 20
                    && packet[0] == 0x45
                    && packet[9] == 6
                    && packet[16..20] == PEER_IP4.octets();
                if to_peer && wanted(&buf[..len]) {
                    return buf[..len].to_vec();
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(err) => panic!("read from the TUN: {err}"),
        }
    }
    panic!("no matching TCP packet came out of the TUN");
}

/// Connects the peer to `listener` through the TUN by hand; returns the server's stream, the
/// server's next sequence number, and the peer's flow for data.
fn handshake(tun: &TunQueue, listener: &TcpListener) -> (TcpStream, u32, Flow) {
    let mut flow = Flow::between(PEER_IP4.into(), TUN_IP4.into());
    flow.dst_port = listener.local_addr().unwrap().port();
    flow.window = u16::MAX;
    flow.ack = 0;
    flow.tcp_options = [2, 4]
        .into_iter()
        .chain((MSS as u16).to_be_bytes())
        .collect();
    let syn = flow.tcp(PEER_ISN, SYN, b"");
    tun.write(&[&[0u8; VNET_HDR_LEN][..], &syn].concat())
        .unwrap();

    let syn_ack = read_tcp(tun, &mut |frame| frame[VNET_HDR_LEN + 33] == SYN | ACK);
    let tcp = &syn_ack[VNET_HDR_LEN + 20..];
    assert_eq!(tcp[8..12], PEER_ISN.wrapping_add(1).to_be_bytes());
    let server_next = u32::from_be_bytes(tcp[4..8].try_into().unwrap()).wrapping_add(1);

    flow.ack = server_next;
    flow.tcp_options.clear();
    let ack = flow.tcp(PEER_ISN.wrapping_add(1), ACK, b"");
    tun.write(&[&[0u8; VNET_HDR_LEN][..], &ack].concat())
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Err(err) => panic!("the handshake through the TUN did not complete: {err}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    (stream, server_next, flow)
}

#[test]
fn the_kernel_takes_coalesced_super_packets_and_its_own_split_into_valid_segments() {
    in_new_netns(|| {
        let tun = Tun::create("rf-offload", 1, true).unwrap();
        set_mtu("rf-offload", MTU as u32).unwrap();
        set_up("rf-offload").unwrap();
        add_address("rf-offload", TUN_IP4.into(), 24).unwrap();
        assert!(tun[0].offloads().tso4, "TSO is as old as vnet headers");
        let tun = &tun[0];
        tun.set_nonblocking(true).unwrap();
        let listener = TcpListener::bind((TUN_IP4, 0)).unwrap();
        let (mut stream, server_next, mut flow) = handshake(tun, &listener);

        // Into the kernel: 40 segments of 1000 bytes, coalesced into one written frame.
        let sent = payload(40_000);
        let mut coalescer = Coalescer::new(4);
        let mut frames = Vec::new();
        for (i, chunk) in sent.chunks(1000).enumerate() {
            flow.ip_id = i as u16;
            let seq = PEER_ISN.wrapping_add(1 + (i * 1000) as u32);
            let segment = flow.tcp(seq, ACK, chunk);
            let pushed = coalescer.push(&segment, &mut |frame: &[u8]| frames.push(frame.to_vec()));
            assert_eq!(pushed, Push::Held);
        }
        coalescer.flush(|frame| frames.push(frame.to_vec()));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            VnetHdr::parse(&frames[0]).unwrap().0.gso_type,
            GsoType::TcpV4
        );
        assert_eq!(tun.write(&frames[0]).unwrap(), frames[0].len());
        let mut received = vec![0; sent.len()];
        stream.read_exact(&mut received).unwrap();
        assert!(
            received == sent,
            "the stream carries the coalesced bytes in order"
        );

        // Out of the kernel: its TSO super-packets, split by us, carry the stream intact.
        let written = payload(60_000);
        stream.write_all(&written).unwrap();
        let mut offered = vec![None; written.len()];
        let mut super_packets = 0;
        let mut segment_buf = vec![0; MTU];
        // The initial congestion window: ten full segments.
        let first_flight = MSS * 10;
        while offered[..first_flight].iter().any(Option::is_none) {
            let frame = read_tcp(tun, &mut |frame| frame.len() > VNET_HDR_LEN + 40);
            let (hdr, packet) = VnetHdr::parse(&frame).unwrap();
            super_packets += usize::from(hdr.gso_type == GsoType::TcpV4);
            let mut segmenter = Segmenter::new(&hdr, packet, MTU).unwrap();
            while let Some(len) = segmenter.next_into(&mut segment_buf) {
                let segment = parse_checked(&segment_buf[..len.unwrap()]);
                assert!(segment.payload.len() <= MSS);
                let offset = segment.seq.wrapping_sub(server_next) as usize;
                for (i, byte) in segment.payload.iter().enumerate() {
                    offered[offset + i] = Some(*byte);
                }
            }
        }
        let flight: Vec<u8> = offered[..first_flight].iter().map(|b| b.unwrap()).collect();
        assert!(
            flight == written[..first_flight],
            "the split segments carry the stream"
        );
        assert!(super_packets > 0, "the kernel used TSO towards the TUN");
    });
}
