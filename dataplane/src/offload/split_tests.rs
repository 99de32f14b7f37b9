//! Segmentation: round trips through the coalescer, header and checksum rules, hostile input.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::test_packets::{
    ACK, CWR, ECE, FIN, Flow, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, NEEDS_CSUM, PSH, Parsed, ones_sum,
    parse_checked, payload, vnet,
};
use super::{Coalescer, Push, Segmenter, VNET_HDR_LEN, VnetHdr, complete_checksum};
use crate::DropReason;

const MTU: usize = 1420;

/// Splits `frame` (vnet header and packet) into owned packets.
fn split(frame: &[u8], mtu: usize) -> Result<Vec<Vec<u8>>, DropReason> {
    let (hdr, packet) = VnetHdr::parse(frame)?;
    let mut segmenter = Segmenter::new(&hdr, packet, mtu)?;
    let mut segments = Vec::new();
    let mut buf = vec![0xee; mtu];
    let expected = segmenter.remaining();
    while let Some(len) = segmenter.next_into(&mut buf) {
        segments.push(buf[..len?].to_vec());
        assert_eq!(segmenter.remaining(), expected - segments.len());
    }
    assert_eq!(segmenter.next_into(&mut buf), None, "stays finished");
    Ok(segments)
}

/// The coalescer's output for `packets`: `(frames, pass-through count)`.
fn coalesce(packets: &[Vec<u8>]) -> (Vec<Vec<u8>>, usize) {
    let mut coalescer = Coalescer::new(8);
    let mut frames = Vec::new();
    let mut passed = 0;
    for packet in packets {
        match coalescer.push(packet, &mut |frame: &[u8]| frames.push(frame.to_vec())) {
            Push::Held => {}
            Push::PassThrough => passed += 1,
        }
    }
    coalescer.flush(|frame| frames.push(frame.to_vec()));
    (frames, passed)
}

/// Payload sizes around the interesting boundaries for `gso` bytes per segment and at most
/// `max` bytes in all.
fn sizes(gso: usize, max: usize) -> Vec<usize> {
    let mut sizes = vec![
        1,
        2,
        gso - 1,
        gso,
        gso + 1,
        2 * gso,
        3 * gso - 7,
        44 * gso,
        max - 1,
        max,
    ];
    sizes.retain(|&len| (1..=max).contains(&len));
    sizes
}

fn check_tcp_round_trip(flow: &Flow, flags: u8) {
    let header_len = flow.tcp_header_len();
    let gso = MTU - header_len;
    let seq = 0xffff_f000; // wraps within the larger packets
    for len in sizes(gso, 65_535 - header_len) {
        let data = payload(len);
        let frame = flow.tcp_super(seq, flags, &data, gso as u16);
        let segments = split(&frame, MTU).unwrap();
        assert_eq!(segments.len(), len.div_ceil(gso), "len {len}");

        let mut joined = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let parsed = parse_checked(segment);
            let last = i + 1 == segments.len();
            assert_eq!(
                parsed.seq,
                seq.wrapping_add((i * gso) as u32),
                "len {len} seg {i}"
            );
            let expected_flags = if last { flags } else { flags & !(PSH | FIN) };
            assert_eq!(parsed.flags, expected_flags, "len {len} seg {i}");
            if !flow.is_v6() {
                assert_eq!(parsed.ip_id, flow.ip_id.wrapping_add(i as u16));
            }
            assert!(segment.len() <= MTU);
            joined.extend_from_slice(&parsed.payload);
        }
        assert_eq!(joined, data, "len {len}");

        let (frames, passed) = coalesce(&segments);
        if segments.len() == 1 {
            // Alone, a segment comes back as it went: a zero header and the packet.
            let expected = [&[0u8; VNET_HDR_LEN][..], &segments[0]].concat();
            if flags & PSH != 0 {
                assert_eq!((frames.len(), passed), (0, 1), "len {len}");
            } else {
                assert_eq!(frames, vec![expected], "len {len}");
            }
        } else {
            assert_eq!(passed, 0);
            assert_eq!(frames.len(), 1, "len {len}");
            assert_eq!(frames[0], frame, "len {len}: coalesced back byte for byte");
        }
    }
}

#[test]
fn tcp_super_packets_split_and_coalesce_back_byte_for_byte() {
    let mut without_df = Flow::v4();
    without_df.dont_fragment = false;
    let mut with_ip_options = Flow::v4();
    with_ip_options.ip_options = vec![0x94, 4, 0, 0, 1, 1, 1, 0];
    let mut no_tcp_options = Flow::v6();
    no_tcp_options.tcp_options.clear();
    for flow in [
        Flow::v4(),
        Flow::v6(),
        without_df,
        with_ip_options,
        no_tcp_options,
    ] {
        check_tcp_round_trip(&flow, ACK);
        check_tcp_round_trip(&flow, ACK | PSH);
    }
}

#[test]
fn udp_super_packets_split_into_datagrams_with_their_own_length_and_checksum() {
    for flow in [Flow::v4(), Flow::v6()] {
        let header_len = flow.ip_header_len() + 8;
        for gso in [500, 1000, MTU - header_len] {
            for len in sizes(gso, 65_535 - header_len) {
                let data = payload(len);
                let segments = split(&flow.udp_super(&data, gso as u16), MTU).unwrap();
                assert_eq!(segments.len(), len.div_ceil(gso));
                let mut joined = Vec::new();
                for (i, segment) in segments.iter().enumerate() {
                    let parsed = parse_checked(segment);
                    if !flow.is_v6() {
                        assert_eq!(parsed.ip_id, flow.ip_id.wrapping_add(i as u16));
                    }
                    let expected_len = if i + 1 < segments.len() {
                        gso
                    } else {
                        len - i * gso
                    };
                    assert_eq!(parsed.payload.len(), expected_len);
                    joined.extend_from_slice(&parsed.payload);
                }
                assert_eq!(joined, data, "gso {gso} len {len}");
                // Datagrams are not coalesced: every one passes through.
                assert_eq!(coalesce(&segments), (vec![], segments.len()));
            }
        }
    }
}

#[test]
fn fin_and_psh_go_on_the_last_segment_cwr_on_the_first() {
    for flow in [Flow::v4(), Flow::v6()] {
        let gso = 1000;
        let mut frame = flow.tcp_super(7, ACK | PSH | FIN | CWR | ECE, &payload(2500), gso);
        frame[1] |= 0x80; // the ECN bit the kernel sets with CWR
        let flags: Vec<u8> = split(&frame, MTU)
            .unwrap()
            .iter()
            .map(|segment| parse_checked(segment).flags)
            .collect();
        assert_eq!(flags, [ACK | ECE | CWR, ACK | ECE, ACK | ECE | PSH | FIN]);
        let seqs: Vec<u32> = split(&frame, MTU)
            .unwrap()
            .iter()
            .map(|segment| parse_checked(segment).seq)
            .collect();
        assert_eq!(seqs, [7, 1007, 2007]);
    }
}

#[test]
fn ipv4_options_are_repeated_in_every_segment() {
    let mut flow = Flow::v4();
    flow.ip_options = vec![0x82, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0];
    let segments = split(&flow.tcp_super(1, ACK, &payload(3000), 1200), MTU).unwrap();
    assert_eq!(segments.len(), 3);
    for segment in &segments {
        assert_eq!(segment[0], 0x48, "IHL of 32 bytes kept");
        assert_eq!(segment[20..32], flow.ip_options[..]);
        parse_checked(segment);
    }
}

#[test]
fn plain_packets_pass_through_or_get_their_partial_checksum_completed() {
    for flow in [Flow::v4(), Flow::v6()] {
        let ip_len = flow.ip_header_len();
        for (packet, field) in [
            (flow.udp(&payload(333)), ip_len + 6),
            (flow.tcp(9, ACK, &payload(1000)), ip_len + 16),
        ] {
            let plain = [&[0u8; VNET_HDR_LEN][..], &packet].concat();
            assert_eq!(split(&plain, MTU).unwrap(), vec![packet.clone()]);

            // What the kernel gives with checksum offload: the pseudo-header sum in the field.
            let mut partial = packet.clone();
            let protocol = if flow.is_v6() { packet[6] } else { packet[9] };
            let pseudo = ones_sum(&flow.pseudo_header(protocol, packet.len() - ip_len));
            partial[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
            let header = vnet(NEEDS_CSUM, 0, 0, 0, ip_len as u16, (field - ip_len) as u16);
            let frame = [&header[..], &partial].concat();
            let segments = split(&frame, MTU).unwrap();
            assert_eq!(segments.len(), 1);
            parse_checked(&segments[0]);

            let (hdr, _) = VnetHdr::parse(&frame).unwrap();
            let mut in_place = partial.clone();
            complete_checksum(&hdr, &mut in_place).unwrap();
            assert_eq!(in_place, segments[0]);
            let mut untouched = packet.clone();
            complete_checksum(&VnetHdr::default(), &mut untouched).unwrap();
            assert_eq!(untouched, packet);
        }
    }
}

#[test]
fn a_completed_checksum_of_zero_is_sent_as_all_ones() {
    let flow = Flow::v4();
    let mut packet = flow.udp(&[0; 10]);
    // Make everything from the UDP header on sum to 0xffff with the field at zero.
    packet[26..28].fill(0);
    let sum = ones_sum(&packet[20..]);
    packet[36..38].copy_from_slice(&(!sum).to_be_bytes());
    assert_eq!(ones_sum(&packet[20..]), 0xffff);
    let header = vnet(NEEDS_CSUM, 0, 0, 0, 20, 6);
    let segments = split(&[&header[..], &packet].concat(), MTU).unwrap();
    assert_eq!(segments[0][26..28], [0xff, 0xff]);
}

#[test]
fn a_udp_segment_whose_checksum_comes_to_zero_carries_all_ones() {
    for flow in [Flow::v4(), Flow::v6()] {
        // Adjust the last word of the first datagram so that its checksum computes to 0: add
        // (ones'-complement) the checksum it has to that word.
        let mut data = payload(2000);
        let single = flow.udp(&data[..1000]);
        let at = flow.ip_header_len() + 6;
        let sum = u32::from(u16::from_be_bytes([single[at], single[at + 1]]))
            + u32::from(u16::from_be_bytes([data[998], data[999]]));
        let word = ((sum & 0xffff) + (sum >> 16)) as u16;
        data[998..1000].copy_from_slice(&word.to_be_bytes());
        let segments = split(&flow.udp_super(&data, 1000), MTU).unwrap();
        assert_eq!(segments[0][at..at + 2], [0xff, 0xff]);
        parse_checked(&segments[0]);
        assert_ne!(segments[1][at..at + 2], [0xff, 0xff]);
    }
}

#[test]
fn gso_size_must_be_nonzero_and_fit_the_mtu() {
    let flow = Flow::v4();
    let header_len = flow.tcp_header_len();
    let data = payload(5000);
    let fits = MTU - header_len;
    assert_eq!(
        split(&flow.tcp_super(1, ACK, &data, fits as u16), MTU)
            .unwrap()
            .len(),
        5000usize.div_ceil(fits)
    );
    for gso in [0, fits + 1, 9000, u16::MAX as usize] {
        let frame = flow.tcp_super(1, ACK, &data, gso as u16);
        assert_eq!(
            split(&frame, MTU),
            Err(DropReason::InvalidOffload),
            "gso {gso}"
        );
    }
    let udp = Flow::v6();
    let fits = MTU - 48;
    assert!(split(&udp.udp_super(&data, fits as u16), MTU).is_ok());
    assert_eq!(
        split(&udp.udp_super(&data, fits as u16 + 1), MTU),
        Err(DropReason::InvalidOffload)
    );
    assert_eq!(
        split(&udp.udp_super(&data, 0), MTU),
        Err(DropReason::InvalidOffload)
    );
}

#[test]
fn header_offsets_outside_the_packet_or_off_the_transport_header_are_refused() {
    let flow = Flow::v4();
    let frame = flow.tcp_super(1, ACK, &payload(3000), 1000);
    let packet_len = frame.len() - VNET_HDR_LEN;
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut frame = frame.clone();
        edit(&mut frame);
        split(&frame, MTU)
    };
    let set = |frame: &mut Vec<u8>, at: usize, value: u16| {
        frame[at..at + 2].copy_from_slice(&value.to_le_bytes());
    };
    // hdr_len may be anything up to the whole packet (the kernel reports its linear part).
    assert!(with(&|f| set(f, 2, packet_len as u16)).is_ok());
    assert!(with(&|f| set(f, 2, 0)).is_ok());
    assert_eq!(
        with(&|f| set(f, 2, packet_len as u16 + 1)),
        Err(DropReason::InvalidOffload)
    );
    assert_eq!(
        with(&|f| set(f, 2, u16::MAX)),
        Err(DropReason::InvalidOffload)
    );
    for start in [0, 19, 21, 52, u16::MAX] {
        assert_eq!(
            with(&|f| set(f, 6, start)),
            Err(DropReason::InvalidOffload),
            "start {start}"
        );
    }
    for offset in [0, 6, 15, 17, u16::MAX] {
        assert_eq!(
            with(&|f| set(f, 8, offset)),
            Err(DropReason::InvalidOffload),
            "offset {offset}"
        );
    }
    // Without NEEDS_CSUM the offsets are not used: the checksums are computed in full anyway.
    let unflagged = with(&|f| {
        f[0] = 0;
        set(f, 6, u16::MAX);
    });
    assert_eq!(unflagged, split(&frame, MTU));

    // A plain packet's checksum field must lie inside it, to the last byte.
    let packet = flow.udp(b"hello");
    for (start, offset, ok) in [
        (20, 6, true),
        (0, 31, true),
        (31, 0, true),
        (0, 32, false),
        (32, 0, false),
        (20, 13, false),
        (u16::MAX, u16::MAX, false),
    ] {
        let header = vnet(NEEDS_CSUM, 0, 0, 0, start, offset);
        let result = split(&[&header[..], &packet].concat(), MTU);
        assert_eq!(result.is_ok(), ok, "start {start} offset {offset}");
        if !ok {
            assert_eq!(result, Err(DropReason::InvalidOffload));
        }
    }
}

#[test]
fn gso_type_must_match_the_packet() {
    let data = payload(3000);
    let v4 = Flow::v4();
    let v6 = Flow::v6();
    let mut tcp_as_v6 = v4.tcp_super(1, ACK, &data, 1000);
    tcp_as_v6[1] = GSO_TCPV6;
    let mut tcp_as_v4 = v6.tcp_super(1, ACK, &data, 1000);
    tcp_as_v4[1] = GSO_TCPV4;
    let mut udp_as_tcp = v4.udp_super(&data, 1000);
    udp_as_tcp[1] = GSO_TCPV4;
    udp_as_tcp[8] = 16;
    let mut tcp_as_udp = v6.tcp_super(1, ACK, &data, 1000);
    tcp_as_udp[1] = GSO_UDP_L4;
    tcp_as_udp[8] = 6;
    // IPv6 with a hop-by-hop options header before TCP.
    let mut extension = v6.tcp_super(1, ACK, &data, 1000);
    let at = VNET_HDR_LEN + 40;
    extension.splice(at..at, [6, 0, 1, 4, 0, 0, 0, 0]);
    extension[VNET_HDR_LEN + 6] = 0;
    let payload_len =
        u16::from_be_bytes([extension[VNET_HDR_LEN + 4], extension[VNET_HDR_LEN + 5]]) + 8;
    extension[VNET_HDR_LEN + 4..VNET_HDR_LEN + 6].copy_from_slice(&payload_len.to_be_bytes());
    extension[6] = 48;
    for frame in [tcp_as_v6, tcp_as_v4, udp_as_tcp, tcp_as_udp, extension] {
        assert_eq!(split(&frame, MTU), Err(DropReason::InvalidOffload));
    }
}

#[test]
fn malformed_ip_and_transport_headers_are_refused() {
    let flow = Flow::v4();
    let mut frame = flow.tcp_super(1, ACK, &payload(3000), 1000);
    frame[2..4].fill(0); // hdr_len 0: let the headers themselves be judged
    let header_len = VNET_HDR_LEN + flow.tcp_header_len();
    // Every truncation: the IP length no longer matches.
    for len in VNET_HDR_LEN..frame.len() {
        assert_eq!(
            split(&frame[..len], MTU),
            Err(DropReason::InvalidInnerPacket),
            "len {len}"
        );
    }
    // Truncations that fix the IP length up: the TCP header is cut, or there is no payload.
    for len in VNET_HDR_LEN + 20..=header_len {
        let mut cut = frame[..len].to_vec();
        cut[VNET_HDR_LEN + 2..VNET_HDR_LEN + 4]
            .copy_from_slice(&((len - VNET_HDR_LEN) as u16).to_be_bytes());
        let expected = if len == header_len {
            DropReason::InvalidOffload
        } else {
            DropReason::InvalidInnerPacket
        };
        assert_eq!(split(&cut, MTU), Err(expected), "len {len}");
    }
    let edits: [(usize, u8); 6] = [
        (0, 0x44),  // IHL below 5
        (0, 0x55),  // version 5
        (0, 0x65),  // version 6 in an IPv4 header: the payload length does not match
        (6, 0x20),  // More Fragments
        (7, 0x01),  // fragment offset
        (32, 0x40), // TCP data offset below 5
    ];
    for (at, value) in edits {
        let mut bad = frame.clone();
        bad[VNET_HDR_LEN + at] = value;
        assert_eq!(
            split(&bad, MTU),
            Err(DropReason::InvalidInnerPacket),
            "byte {at} = {value:#x}"
        );
    }
    let mut long_tcp_header = frame.clone();
    long_tcp_header[VNET_HDR_LEN + 32] = 0xf0; // 60 bytes of TCP header, taken from payload
    assert_eq!(
        split(&long_tcp_header, MTU).unwrap()[0].len(),
        20 + 60 + 1000
    );

    let mut tiny = flow.tcp_super(1, ACK, b"x", 1000);
    tiny[2..4].fill(0);
    tiny[VNET_HDR_LEN] = 0x4f; // IHL of 60 bytes, past the end of the 53-byte packet
    assert_eq!(split(&tiny, MTU), Err(DropReason::InvalidInnerPacket));
}

#[test]
fn plain_packets_over_the_mtu_and_short_buffers_are_refused() {
    let packet = Flow::v4().udp(&payload(MTU - 28 + 1));
    let frame = [&[0u8; VNET_HDR_LEN][..], &packet].concat();
    assert_eq!(split(&frame, MTU), Err(DropReason::BadLength));
    assert_eq!(split(&frame, MTU + 1).unwrap(), vec![packet]);

    let frame = Flow::v6().tcp_super(1, ACK, &payload(4000), 1000);
    let (hdr, packet) = VnetHdr::parse(&frame).unwrap();
    let mut segmenter = Segmenter::new(&hdr, packet, MTU).unwrap();
    assert_eq!(segmenter.remaining(), 4);
    let mut small = [0u8; 1000];
    assert_eq!(
        segmenter.next_into(&mut small),
        Some(Err(DropReason::BadLength))
    );
    assert_eq!(segmenter.remaining(), 0);
    assert_eq!(segmenter.next_into(&mut small), None);
}

/// Random frames and random corruptions of valid ones never panic, and whatever comes out is
/// at most one MTU per packet and fits the buffer.
#[test]
fn hostile_frames_never_panic() {
    let mut rng = StdRng::seed_from_u64(4);
    let valid = [
        Flow::v4().tcp_super(1, ACK | PSH, &payload(6000), 1000),
        Flow::v6().tcp_super(1, ACK, &payload(6000), 1300),
        Flow::v4().udp_super(&payload(3000), 700),
        Flow::v6().udp_super(&payload(3000), 1000),
    ];
    let mut buf = vec![0u8; MTU];
    for round in 0..40_000 {
        let frame: Vec<u8> = if round % 4 == 0 {
            let len = rng.gen_range(0..200);
            (0..len).map(|_| rng.r#gen()).collect()
        } else {
            let mut frame = valid[round % valid.len()].clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..VNET_HDR_LEN + 80);
                frame[at] = rng.r#gen();
            }
            frame.truncate(rng.gen_range(frame.len() - 50..=frame.len()));
            frame
        };
        let Ok((hdr, packet)) = VnetHdr::parse(&frame) else {
            continue;
        };
        let Ok(mut segmenter) = Segmenter::new(&hdr, packet, MTU) else {
            continue;
        };
        while let Some(result) = segmenter.next_into(&mut buf) {
            assert!(result.unwrap() <= MTU);
        }
    }
}

#[test]
fn parsed_is_what_the_test_builder_wrote() {
    // The independent reader agrees with the builder, so the other tests mean something.
    let flow = Flow::v4();
    let packet = flow.tcp(77, ACK | PSH, b"abc");
    assert_eq!(
        parse_checked(&packet),
        Parsed {
            seq: 77,
            flags: ACK | PSH,
            window: 502,
            ip_id: 0xfffe,
            payload: b"abc".to_vec()
        }
    );
}
