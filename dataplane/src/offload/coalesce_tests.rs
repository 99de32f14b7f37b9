//! Coalescing: which segments merge, what the emitted frames look like, order, capacity.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::test_packets::{
    ACK, CWR, ECE, FIN, Flow, GSO_TCPV4, GSO_TCPV6, NEEDS_CSUM, PSH, RST, SYN, URG, ones_sum,
    parse_checked, payload,
};
use super::{Coalescer, MAX_FRAME_LEN, Push, VNET_HDR_LEN};

/// A coalescer and everything it has emitted.
struct Harness {
    coalescer: Coalescer,
    frames: Vec<Vec<u8>>,
}

impl Harness {
    fn new(flows: usize) -> Self {
        Harness {
            coalescer: Coalescer::new(flows),
            frames: Vec::new(),
        }
    }

    fn push(&mut self, packet: &[u8]) -> Push {
        let frames = &mut self.frames;
        self.coalescer
            .push(packet, &mut |frame: &[u8]| frames.push(frame.to_vec()))
    }

    /// Pushes every packet, expecting each to be held.
    fn hold(&mut self, packets: &[Vec<u8>]) {
        for packet in packets {
            assert_eq!(self.push(packet), Push::Held);
        }
    }

    fn flush(&mut self) {
        let frames = &mut self.frames;
        self.coalescer.flush(|frame| frames.push(frame.to_vec()));
        assert_eq!(self.coalescer.held(), 0);
    }

    /// The frames emitted so far, taken.
    fn take(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.frames)
    }
}

/// `count` consecutive segments of `size` bytes starting at sequence number `seq`.
fn segments(flow: &Flow, seq: u32, count: usize, size: usize) -> Vec<Vec<u8>> {
    let data = payload(count * size);
    data.chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let mut flow = flow.clone();
            flow.ip_id = flow.ip_id.wrapping_add(i as u16);
            flow.tcp(seq.wrapping_add((i * size) as u32), ACK, chunk)
        })
        .collect()
}

/// Checks a coalesced frame completely, independently of the module: header fields, lengths,
/// the partial checksum (completing it must give a valid packet); returns what it carries.
fn check_super(frame: &[u8], flow: &Flow, gso_size: usize) -> Vec<u8> {
    let (header, packet) = frame.split_at(VNET_HDR_LEN);
    let ip_len = flow.ip_header_len();
    let gso_type = if flow.is_v6() { GSO_TCPV6 } else { GSO_TCPV4 };
    let le = |v: usize| (v as u16).to_le_bytes();
    let expected: Vec<u8> = [
        &[NEEDS_CSUM, gso_type][..],
        &le(flow.tcp_header_len()),
        &le(gso_size),
        &le(ip_len),
        &le(16),
        &[0, 0],
    ]
    .concat();
    assert_eq!(header, expected, "vnet header");
    // The field holds the pseudo-header sum over the whole TCP length.
    let pseudo = ones_sum(&flow.pseudo_header(6, packet.len() - ip_len));
    assert_eq!(packet[ip_len + 16..ip_len + 18], pseudo.to_be_bytes());
    let mut completed = packet.to_vec();
    let sum = !ones_sum(&completed[ip_len..]);
    completed[ip_len + 16..ip_len + 18].copy_from_slice(&sum.to_be_bytes());
    parse_checked(&completed).payload
}

/// The payload of a plain frame (zero header, complete packet).
fn check_plain(frame: &[u8]) -> Vec<u8> {
    assert_eq!(frame[..VNET_HDR_LEN], [0; VNET_HDR_LEN]);
    parse_checked(&frame[VNET_HDR_LEN..]).payload
}

fn joined(packets: &[Vec<u8>]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|p| parse_checked(p).payload)
        .collect()
}

#[test]
fn consecutive_segments_become_one_super_packet() {
    for flow in [Flow::v4(), Flow::v6()] {
        let mut harness = Harness::new(4);
        let packets = segments(&flow, 0xffff_ff00, 44, 1368);
        harness.hold(&packets);
        assert_eq!(harness.coalescer.held(), 1);
        assert!(harness.frames.is_empty());
        harness.flush();
        let frames = harness.take();
        assert_eq!(frames.len(), 1);
        assert_eq!(check_super(&frames[0], &flow, 1368), joined(&packets));
        assert_eq!(parse_checked(&packets[0]).seq, 0xffff_ff00);
        let ip_len = flow.ip_header_len();
        let seq = u32::from_be_bytes(
            frames[0][VNET_HDR_LEN + ip_len + 4..][..4]
                .try_into()
                .unwrap(),
        );
        assert_eq!(seq, 0xffff_ff00, "the first segment's sequence number");
    }
}

#[test]
fn a_single_segment_goes_out_unchanged_with_a_zero_header() {
    let flow = Flow::v4();
    let packet = flow.tcp(5, ACK, &payload(100));
    let mut harness = Harness::new(1);
    harness.hold(std::slice::from_ref(&packet));
    harness.flush();
    assert_eq!(
        harness.take(),
        vec![[&[0u8; VNET_HDR_LEN][..], &packet].concat()]
    );
}

#[test]
fn a_shorter_or_psh_segment_ends_the_super_packet_at_once() {
    let flow = Flow::v6();
    let mut harness = Harness::new(2);
    let mut packets = segments(&flow, 0, 3, 1000);
    packets.push(flow.tcp(3000, ACK, &payload(10)));
    harness.hold(&packets);
    assert_eq!(harness.coalescer.held(), 0, "emitted with the short one");
    let frames = harness.take();
    assert_eq!(frames.len(), 1);
    assert_eq!(check_super(&frames[0], &flow, 1000), joined(&packets));

    let mut packets = segments(&flow, 0, 2, 1000);
    packets.push(flow.tcp(2000, ACK | PSH, &payload(1000)));
    harness.hold(&packets);
    let frames = harness.take();
    assert_eq!(frames.len(), 1);
    check_super(&frames[0], &flow, 1000);
    let flags = frames[0][VNET_HDR_LEN + 40 + 13];
    assert_eq!(flags, ACK | PSH, "PSH carried to the merged header");

    // PSH on a first segment: nothing could join it, so it is not held.
    assert_eq!(
        harness.push(&flow.tcp(9, ACK | PSH, b"x")),
        Push::PassThrough
    );
    assert_eq!(harness.coalescer.held(), 0);
}

#[test]
fn a_longer_segment_or_a_gap_starts_a_new_super_packet() {
    let flow = Flow::v4();
    let mut harness = Harness::new(2);
    let first = segments(&flow, 100, 2, 500);
    harness.hold(&first);
    let longer = flow.tcp(1100, ACK, &payload(501));
    harness.hold(std::slice::from_ref(&longer));
    let frames = harness.take();
    assert_eq!(
        frames.len(),
        1,
        "the first two went out before the longer one"
    );
    assert_eq!(check_super(&frames[0], &flow, 500), joined(&first));

    let gap = flow.tcp(1601 + 1, ACK, &payload(501));
    harness.hold(std::slice::from_ref(&gap));
    assert_eq!(
        harness
            .take()
            .iter()
            .map(|f| check_plain(f))
            .collect::<Vec<_>>(),
        vec![parse_checked(&longer).payload]
    );
    let retransmit = flow.tcp(1100, ACK, &payload(501));
    harness.hold(std::slice::from_ref(&retransmit));
    harness.flush();
    let payloads: Vec<_> = harness.take().iter().map(|f| check_plain(f)).collect();
    assert_eq!(
        payloads,
        vec![
            parse_checked(&gap).payload,
            parse_checked(&retransmit).payload
        ]
    );
}

#[test]
fn segments_with_other_flags_or_no_payload_flush_their_flow_first_and_pass() {
    let flow = Flow::v4();
    for flags in [
        ACK | FIN,
        ACK | SYN,
        ACK | RST,
        ACK | URG,
        ACK | ECE,
        ACK | CWR,
        PSH,
        0,
    ] {
        let mut harness = Harness::new(2);
        let held = segments(&flow, 0, 3, 1000);
        harness.hold(&held);
        let other = segments(&Flow::v6(), 0, 2, 1000);
        harness.hold(&other);
        assert_eq!(
            harness.push(&flow.tcp(3000, flags, b"tail")),
            Push::PassThrough,
            "{flags:#x}"
        );
        let frames = harness.take();
        assert_eq!(
            frames.len(),
            1,
            "only the same flow is flushed ({flags:#x})"
        );
        assert_eq!(check_super(&frames[0], &flow, 1000), joined(&held));
        assert_eq!(harness.coalescer.held(), 1);
    }
    let mut harness = Harness::new(2);
    harness.hold(&segments(&flow, 0, 2, 1000));
    assert_eq!(
        harness.push(&flow.tcp(2000, ACK, b"")),
        Push::PassThrough,
        "pure ACK"
    );
    assert_eq!(harness.take().len(), 1);
}

#[test]
fn header_fields_that_must_match_keep_segments_apart() {
    type Edit = fn(&mut Flow);
    let edits: [(&str, Edit); 8] = [
        ("ack", |f| f.ack += 1),
        ("ttl", |f| f.ttl -= 1),
        ("tos", |f| f.tos = 0x02),
        ("tcp options", |f| f.tcp_options[11] ^= 1),
        ("ip options", |f| f.ip_options = vec![1, 1, 1, 0]),
        ("dont fragment", |f| f.dont_fragment = false),
        ("source port", |f| f.src_port += 1),
        ("destination", |f| f.dst = "10.9.8.6".parse().unwrap()),
    ];
    for (name, edit) in edits {
        let flow = Flow::v4();
        let mut other = flow.clone();
        edit(&mut other);
        other.ip_id = flow.ip_id.wrapping_add(2);
        let mut harness = Harness::new(4);
        harness.hold(&segments(&flow, 0, 2, 1000));
        harness.hold(&[other.tcp(2000, ACK, &payload(1000))]);
        harness.flush();
        assert_eq!(harness.take().len(), 2, "{name}");
    }
    // The window may change: the latest one is kept.
    let flow = Flow::v6();
    let mut wider = flow.clone();
    wider.window = 9000;
    let mut harness = Harness::new(1);
    harness.hold(&[
        flow.tcp(0, ACK, &payload(800)),
        wider.tcp(800, ACK, &payload(800)),
    ]);
    harness.flush();
    let frames = harness.take();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames[0][VNET_HDR_LEN + 40 + 14..][..2],
        9000u16.to_be_bytes()
    );
}

#[test]
fn ipv4_identification_must_count_up_without_dont_fragment_only() {
    for dont_fragment in [true, false] {
        let mut flow = Flow::v4();
        flow.dont_fragment = dont_fragment;
        let mut harness = Harness::new(2);
        let mut packets = segments(&flow, 0, 2, 1000);
        let mut jumped = flow.clone();
        jumped.ip_id = flow.ip_id.wrapping_add(7);
        packets.push(jumped.tcp(2000, ACK, &payload(1000)));
        harness.hold(&packets);
        harness.flush();
        let expected = if dont_fragment { 1 } else { 2 };
        assert_eq!(harness.take().len(), expected, "DF {dont_fragment}");
    }
}

#[test]
fn bad_checksums_pass_through_for_the_kernel_to_drop() {
    let flow = Flow::v4();
    let mut bad_tcp = flow.tcp(0, ACK, &payload(1000));
    bad_tcp[500] ^= 1;
    let mut bad_ip = flow.tcp(0, ACK, &payload(1000));
    bad_ip[8] -= 1; // TTL changed, header checksum not
    let mut harness = Harness::new(2);
    for packet in [bad_tcp, bad_ip] {
        assert_eq!(harness.push(&packet), Push::PassThrough);
    }
    assert_eq!(harness.coalescer.held(), 0);
}

#[test]
fn anything_but_tcp_passes_through_untouched() {
    let v4 = Flow::v4();
    let mut fragment = v4.tcp(0, ACK, &payload(100));
    fragment[6] = 0x20; // More Fragments
    let mut extension = Flow::v6().tcp(0, ACK, &payload(100));
    extension[6] = 0; // hop-by-hop options "header"
    let mut icmp = v4.udp(b"ping");
    icmp[9] = 1;
    let packets = [
        v4.udp(&payload(1000)),
        Flow::v6().udp(&payload(1000)),
        fragment,
        extension,
        icmp,
        vec![],
        vec![0x45],
        vec![0x60; 39],
        payload(1500),
    ];
    let mut harness = Harness::new(2);
    harness.hold(&segments(&v4, 0, 2, 1000));
    for packet in &packets {
        assert_eq!(harness.push(packet), Push::PassThrough);
    }
    assert!(harness.frames.is_empty(), "the held flow is not disturbed");
    assert_eq!(harness.coalescer.held(), 1);
}

#[test]
fn when_every_slot_is_taken_the_oldest_flow_goes_first() {
    let mut harness = Harness::new(2);
    let flows: Vec<Flow> = (0..3)
        .map(|i| {
            let mut flow = Flow::v4();
            flow.src_port = 1000 + i;
            flow
        })
        .collect();
    for flow in &flows {
        harness.hold(&segments(flow, 0, 2, 700));
    }
    let frames = harness.take();
    assert_eq!(frames.len(), 1);
    check_super(&frames[0], &flows[0], 700);
    assert_eq!(frames[0][VNET_HDR_LEN + 20..][..2], 1000u16.to_be_bytes());
    harness.flush();
    let ports: Vec<u16> = harness
        .take()
        .iter()
        .map(|frame| u16::from_be_bytes([frame[VNET_HDR_LEN + 20], frame[VNET_HDR_LEN + 21]]))
        .collect();
    assert_eq!(ports, [1001, 1002], "oldest first");
    assert_eq!(
        Coalescer::new(0).push(&flows[0].tcp(0, ACK, b"x"), &mut |_: &[u8]| {}),
        Push::Held,
        "at least one slot"
    );
}

#[test]
fn super_packets_stop_at_64_kilobytes() {
    for flow in [Flow::v4(), Flow::v6()] {
        let size = 1368;
        let packets = segments(&flow, 0, 60, size);
        let mut harness = Harness::new(1);
        harness.hold(&packets);
        harness.flush();
        let frames = harness.take();
        let fit = (65_535 - flow.tcp_header_len()) / size;
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0].len(),
            VNET_HDR_LEN + flow.tcp_header_len() + fit * size
        );
        assert!(frames.iter().all(|frame| frame.len() <= MAX_FRAME_LEN));
        let mut carried = check_super(&frames[0], &flow, size);
        carried.extend(check_super(&frames[1], &flow, size));
        assert_eq!(carried, joined(&packets));
    }
    // One IPv6 packet may be longer than any super-packet we build: it passes through.
    let flow = Flow::v6();
    let largest = flow.tcp(0, ACK, &payload(65_535 - flow.tcp_header_len()));
    let too_large = flow.tcp(0, ACK, &payload(65_535 + 40 - flow.tcp_header_len()));
    let mut harness = Harness::new(1);
    assert_eq!(harness.push(&too_large), Push::PassThrough);
    assert_eq!(harness.push(&largest), Push::Held);
}

#[test]
fn interleaved_flows_are_coalesced_separately() {
    let a = Flow::v4();
    let b = Flow::v6();
    let pa = segments(&a, 0, 10, 1200);
    let pb = segments(&b, 77, 10, 1100);
    let mut harness = Harness::new(4);
    for (x, y) in pa.iter().zip(&pb) {
        harness.hold(&[x.clone(), y.clone()]);
    }
    harness.flush();
    let frames = harness.take();
    assert_eq!(frames.len(), 2);
    assert_eq!(check_super(&frames[0], &a, 1200), joined(&pa));
    assert_eq!(check_super(&frames[1], &b, 1100), joined(&pb));
}

#[test]
fn random_packets_never_panic_and_frames_stay_bounded() {
    let mut rng = StdRng::seed_from_u64(7);
    let flow = Flow::v4();
    let valid = segments(&flow, 0, 4, 1000);
    let mut coalescer = Coalescer::new(3);
    let mut check =
        |frame: &[u8]| assert!(frame.len() <= MAX_FRAME_LEN && frame.len() > VNET_HDR_LEN);
    for round in 0..30_000 {
        let mut packet = valid[round % valid.len()].clone();
        for _ in 0..rng.gen_range(0..3) {
            let at = rng.gen_range(0..80);
            packet[at] = rng.r#gen();
        }
        packet.truncate(rng.gen_range(0..=packet.len()));
        coalescer.push(&packet, &mut check);
        if round % 64 == 0 {
            coalescer.flush(&mut check);
        }
    }
}
