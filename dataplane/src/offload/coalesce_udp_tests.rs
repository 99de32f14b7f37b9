//! Coalescing UDP into USO frames: which datagrams merge, and that splitting a frame the way
//! the kernel does gives back exactly the datagrams that went in.

use super::test_packets::{Flow, GSO_UDP_L4, NEEDS_CSUM, ones_sum, parse_checked, payload, vnet};
use super::{Coalescer, Push, Segmenter, VNET_HDR_LEN, VnetHdr};

/// Enough room for any segment in these tests.
const MTU: usize = 9000;

fn coalescer() -> Coalescer {
    Coalescer::new(4).merge_udp(true, true)
}

/// Pushes every packet, collecting what is emitted, then flushes.
fn coalesce(coalescer: &mut Coalescer, packets: &[Vec<u8>]) -> (Vec<Push>, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let pushes = packets
        .iter()
        .map(|packet| coalescer.push(packet, &mut |frame: &[u8]| frames.push(frame.to_vec())))
        .collect();
    coalescer.flush(|frame| frames.push(frame.to_vec()));
    (pushes, frames)
}

/// `count` datagrams of `size` bytes of `flow`, IPv4 identifications counting up.
fn datagrams(flow: &Flow, count: usize, size: usize) -> Vec<Vec<u8>> {
    payload(count * size)
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut flow = flow.clone();
            flow.ip_id = flow.ip_id.wrapping_add(i as u16);
            flow.udp(chunk)
        })
        .collect()
}

/// Splits a frame as the kernel would before delivery (our segmenter does the same as its
/// USO), returning the datagrams.
fn split(frame: &[u8]) -> Vec<Vec<u8>> {
    let (hdr, packet) = VnetHdr::parse(frame).unwrap();
    let mut segmenter = Segmenter::new(&hdr, packet, MTU).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0; MTU];
    while let Some(len) = segmenter.next_into(&mut buf) {
        out.push(buf[..len.unwrap()].to_vec());
    }
    out
}

/// Checks a USO frame's vnet header and partial checksum, independently of the module.
fn check_uso_header(frame: &[u8], flow: &Flow, gso_size: usize) {
    let (header, packet) = frame.split_at(VNET_HDR_LEN);
    let ip_len = flow.ip_header_len();
    let expected = vnet(
        NEEDS_CSUM,
        GSO_UDP_L4,
        (ip_len + 8) as u16,
        gso_size as u16,
        ip_len as u16,
        6,
    );
    assert_eq!(header, &expected[..], "vnet header");
    let udp_len = packet.len() - ip_len;
    assert_eq!(
        packet[ip_len + 4..ip_len + 6],
        (udp_len as u16).to_be_bytes(),
        "UDP length covers the whole payload"
    );
    let pseudo = ones_sum(&flow.pseudo_header(17, udp_len));
    assert_eq!(packet[ip_len + 6..ip_len + 8], pseudo.to_be_bytes());
}

#[test]
fn a_burst_becomes_one_uso_frame_that_splits_back_into_the_same_datagrams() {
    let mut v4_no_df = Flow::v4();
    v4_no_df.dont_fragment = false;
    for flow in [Flow::v4(), v4_no_df, Flow::v6()] {
        let mut packets = datagrams(&flow, 20, 1364);
        let mut tail_flow = flow.clone();
        tail_flow.ip_id = flow.ip_id.wrapping_add(20);
        packets.push(tail_flow.udp(&payload(100)));
        let (pushes, frames) = coalesce(&mut coalescer(), &packets);
        assert!(pushes.iter().all(|&p| p == Push::Held), "{pushes:?}");
        assert_eq!(frames.len(), 1, "the short last datagram ends the frame");
        check_uso_header(&frames[0], &flow, 1364);
        assert_eq!(split(&frames[0]), packets, "byte for byte, in order");
    }
}

#[test]
fn a_single_datagram_goes_out_unchanged() {
    let packet = Flow::v6().udp(&payload(1000));
    let (_, frames) = coalesce(&mut coalescer(), std::slice::from_ref(&packet));
    assert_eq!(frames, [[&[0u8; VNET_HDR_LEN][..], &packet].concat()]);
}

#[test]
fn udp_passes_through_unless_its_family_is_enabled() {
    let v4 = datagrams(&Flow::v4(), 3, 500);
    let v6 = datagrams(&Flow::v6(), 3, 500);
    let mut only_v6 = Coalescer::new(4).merge_udp(false, true);
    let (pushes, frames) = coalesce(&mut only_v6, &v4);
    assert!(pushes.iter().all(|&p| p == Push::PassThrough));
    assert!(frames.is_empty());
    let (pushes, frames) = coalesce(&mut only_v6, &v6);
    assert!(pushes.iter().all(|&p| p == Push::Held));
    assert_eq!(frames.len(), 1);
    let mut tcp_only = Coalescer::new(4);
    let (pushes, _) = coalesce(&mut tcp_only, &v6);
    assert!(pushes.iter().all(|&p| p == Push::PassThrough));
}

#[test]
fn a_longer_datagram_starts_a_new_frame() {
    let flow = Flow::v4();
    let mut packets = datagrams(&flow, 3, 600);
    let mut next = flow.clone();
    next.ip_id = flow.ip_id.wrapping_add(3);
    packets.push(next.udp(&payload(601)));
    let (_, frames) = coalesce(&mut coalescer(), &packets);
    assert_eq!(frames.len(), 2);
    check_uso_header(&frames[0], &flow, 600);
    assert_eq!(split(&frames[0]), packets[..3]);
    assert_eq!(frames[1][VNET_HDR_LEN..], packets[3][..]);
}

#[test]
fn datagrams_that_may_not_merge_flush_their_flow_first_and_pass() {
    let flow = Flow::v4();
    let held = datagrams(&flow, 2, 500);
    let mut next = flow.clone();
    next.ip_id = flow.ip_id.wrapping_add(2);
    let mut bad_checksum = next.udp(&payload(500));
    bad_checksum[27] ^= 1;
    let mut no_checksum = next.udp(&payload(500));
    no_checksum[26..28].fill(0);
    let mut udp_len_short = next.udp(&payload(500));
    udp_len_short[25] -= 1;
    let empty = next.udp(&[]);
    for odd in [bad_checksum, no_checksum, udp_len_short, empty] {
        let mut coalescer = coalescer();
        let mut frames = Vec::new();
        for packet in &held {
            assert_eq!(
                coalescer.push(packet, &mut |f: &[u8]| frames.push(f.to_vec())),
                Push::Held
            );
        }
        let push = coalescer.push(&odd, &mut |f: &[u8]| frames.push(f.to_vec()));
        assert_eq!(push, Push::PassThrough);
        assert_eq!(frames.len(), 1, "the held datagrams go first");
        assert_eq!(split(&frames[0]), held);
        assert_eq!(coalescer.held(), 0);
    }
}

#[test]
fn header_fields_and_flows_keep_datagrams_apart() {
    let flow = Flow::v4();
    let first = datagrams(&flow, 2, 500);
    let mut next = flow.clone();
    next.ip_id = flow.ip_id.wrapping_add(2);
    let mut other_port = next.clone();
    other_port.src_port += 1;
    let mut other_ttl = next.clone();
    other_ttl.ttl -= 1;
    let mut other_tos = next.clone();
    other_tos.tos = 0x10;
    let mut no_df_gap = flow.clone();
    no_df_gap.dont_fragment = false;
    let no_df_first = datagrams(&no_df_gap, 2, 500);
    no_df_gap.ip_id = flow.ip_id.wrapping_add(3);
    for (start, odd) in [
        (&first, other_port.udp(&payload(500))),
        (&first, other_ttl.udp(&payload(500))),
        (&first, other_tos.udp(&payload(500))),
        (&no_df_first, no_df_gap.udp(&payload(500))),
    ] {
        let packets = [start.clone(), vec![odd.clone()]].concat();
        let (pushes, frames) = coalesce(&mut coalescer(), &packets);
        assert!(pushes.iter().all(|&p| p == Push::Held));
        let carried: Vec<Vec<u8>> = frames.iter().flat_map(|f| split(f)).collect();
        assert_eq!(carried, packets, "nothing lost or reordered");
        assert_eq!(
            frames.len(),
            2,
            "the odd datagram is a flow or frame of its own"
        );
        assert_eq!(frames[1][VNET_HDR_LEN..], odd[..]);
    }
}

#[test]
fn dont_fragment_datagrams_merge_whatever_their_identification() {
    let flow = Flow::v4();
    let mut packets = datagrams(&flow, 2, 500);
    let mut jumped = flow.clone();
    jumped.ip_id = 7;
    packets.push(jumped.udp(&payload(500)));
    let (_, frames) = coalesce(&mut coalescer(), &packets);
    assert_eq!(frames.len(), 1);
    let split = split(&frames[0]);
    let payloads = |packets: &[Vec<u8>]| -> Vec<Vec<u8>> {
        packets.iter().map(|p| parse_checked(p).payload).collect()
    };
    assert_eq!(payloads(&split), payloads(&packets));
}

#[test]
fn frames_stop_at_64_kilobytes() {
    let flow = Flow::v6();
    let packets = datagrams(&flow, 100, 1392);
    let (_, frames) = coalesce(&mut coalescer(), &packets);
    assert!(frames.len() >= 3);
    for frame in &frames {
        assert!(frame.len() - VNET_HDR_LEN <= 65_535);
    }
    let carried: Vec<Vec<u8>> = frames.iter().flat_map(|f| split(f)).collect();
    assert_eq!(carried, packets);
}

#[test]
fn frames_stop_at_64_datagrams_as_the_kernel_requires() {
    let flow = Flow::v4();
    let mut no_df = flow.clone();
    no_df.dont_fragment = false;
    for flow in [flow, no_df] {
        let packets = datagrams(&flow, 150, 36);
        let (_, frames) = coalesce(&mut coalescer(), &packets);
        let counts: Vec<usize> = frames.iter().map(|f| split(f).len()).collect();
        assert_eq!(counts, [64, 64, 22]);
        let carried: Vec<Vec<u8>> = frames.iter().flat_map(|f| split(f)).collect();
        assert_eq!(carried, packets);
    }
}

#[test]
fn tcp_and_udp_of_the_same_addresses_and_ports_are_separate_flows() {
    let flow = Flow::v4();
    let udp = datagrams(&flow, 3, 700);
    let tcp: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut f = flow.clone();
            f.ip_id = flow.ip_id.wrapping_add(i as u16);
            f.tcp(1000 + i * 700, super::test_packets::ACK, &payload(700))
        })
        .collect();
    let interleaved: Vec<Vec<u8>> = udp
        .iter()
        .zip(&tcp)
        .flat_map(|(u, t)| [u.clone(), t.clone()])
        .collect();
    let (pushes, frames) = coalesce(&mut coalescer(), &interleaved);
    assert!(pushes.iter().all(|&p| p == Push::Held));
    assert_eq!(frames.len(), 2);
    assert_eq!(split(&frames[0]), udp);
}
