//! The offload segmenter with its vnet header: a frame as the TUN hands it (raw bytes, or a
//! super-packet built from the fuzzer's fields so that most inputs get past the header checks)
//! is either refused or cut into packets that each fit the MTU, re-parse as one whole IP packet
//! with the input's headers, carry valid IPv4 and TCP/UDP checksums, follow the kernel's rules
//! for IPv4 ids, TCP sequence numbers and flags, and whose payloads put together are the
//! input's payload.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::offload::{GsoType, Segmenter, VNET_HDR_LEN, VnetHdr};
use rovy_fuzz::packet::{
    CWR, ChecksumForm, FIN, PSH, Spec, UDP, be16, be32, headers, ip_checksum_ok,
    transport_checksum_ok,
};
use rovy_fuzz::sum::verifies;

#[derive(Debug, Arbitrary)]
enum Input {
    /// A frame of any bytes: vnet header, then the packet.
    Raw { mtu: u16, frame: Vec<u8> },
    /// A well-formed super-packet (or plain packet) and a header describing it.
    Built {
        spec: Spec,
        plain: bool,
        needs_csum: bool,
        gso_size: u16,
        mtu: u16,
        /// How many times `payload` is repeated: reaches 64 KB without 64 KB of input.
        repeat: u8,
        payload: Vec<u8>,
    },
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw { mtu, frame } => check(&frame, usize::from(mtu)),
        Input::Built {
            spec,
            plain,
            needs_csum,
            gso_size,
            mtu,
            repeat,
            payload,
        } => {
            let mut data = payload.repeat(1 + usize::from(repeat % 48));
            data.truncate(65_535 - spec.header_len());
            let form = if needs_csum {
                ChecksumForm::Partial
            } else {
                ChecksumForm::Full
            };
            let packet = spec.build(&data, form);
            let gso_type = match (plain, spec.udp, spec.v6) {
                (true, _, _) => GsoType::None,
                (false, true, _) => GsoType::UdpL4,
                (false, false, false) => GsoType::TcpV4,
                (false, false, true) => GsoType::TcpV6,
            };
            let hdr = VnetHdr {
                flags: if needs_csum { VnetHdr::F_NEEDS_CSUM } else { 0 },
                gso_type,
                ecn: false,
                hdr_len: spec.header_len() as u16,
                gso_size,
                csum_start: spec.ip_len() as u16,
                csum_offset: if spec.udp { 6 } else { 16 },
                num_buffers: 0,
            };
            let mtu = usize::from(mtu);
            let fits = if plain {
                packet.len() <= mtu
            } else {
                gso_size > 0 && !data.is_empty() && spec.header_len() + usize::from(gso_size) <= mtu
            };
            let accepted = Segmenter::new(&hdr, &packet, mtu).is_ok();
            assert_eq!(
                accepted, fits,
                "a well-formed frame is refused only when it cannot fit"
            );
            let mut frame = hdr.to_bytes().to_vec();
            frame.extend_from_slice(&packet);
            check(&frame, mtu);
        }
    }
});

/// Every property of a segmentation the kernel relies on.
fn check(frame: &[u8], mtu: usize) {
    let Ok((hdr, packet)) = VnetHdr::parse(frame) else {
        return;
    };
    assert_eq!(
        hdr.to_bytes()[..],
        frame[..VNET_HDR_LEN],
        "header round trip"
    );
    let Ok(mut segmenter) = Segmenter::new(&hdr, packet, mtu) else {
        return;
    };
    let expected = segmenter.remaining();
    let mut dst = vec![0u8; mtu];
    let mut out = Vec::new();
    while let Some(result) = segmenter.next_into(&mut dst) {
        let len = result.expect("a buffer of the MTU always holds the next segment");
        assert!(len <= mtu, "segment of {len} bytes over the MTU {mtu}");
        out.push(dst[..len].to_vec());
        assert!(out.len() <= expected, "more segments than announced");
    }
    assert_eq!(out.len(), expected);
    assert_eq!(segmenter.remaining(), 0);
    if hdr.gso_type == GsoType::None {
        check_plain(&hdr, packet, &out);
    } else {
        check_segments(&hdr, packet, &out);
    }
}

/// A plain packet comes out once, as it went in but for its completed checksum.
fn check_plain(hdr: &VnetHdr, packet: &[u8], out: &[Vec<u8>]) {
    let [whole] = out else {
        panic!("a plain packet is one packet")
    };
    if !hdr.needs_csum() {
        assert_eq!(whole, packet);
        return;
    }
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    assert_eq!(whole[..field], packet[..field]);
    assert_eq!(whole[field + 2..], packet[field + 2..]);
    // The field held the pseudo-header sum; with the completed value the whole sums to ones.
    assert!(
        verifies(be16(packet, field), &whole[start..]),
        "partial checksum not completed"
    );
}

fn check_segments(hdr: &VnetHdr, packet: &[u8], out: &[Vec<u8>]) {
    let input = headers(packet).expect("an accepted super-packet has whole headers");
    let header_len = input.header_len;
    let ip_len = input.ip_len;
    let gso_size = usize::from(hdr.gso_size);
    let tcp = input.protocol != UDP;
    assert_eq!(tcp, matches!(hdr.gso_type, GsoType::TcpV4 | GsoType::TcpV6));
    if tcp {
        assert_eq!(input.v6, hdr.gso_type == GsoType::TcpV6);
    }
    let mut payload = Vec::new();
    let last = out.len() - 1;
    for (i, seg) in out.iter().enumerate() {
        let h = headers(seg).expect("every segment is one whole IP packet");
        assert_eq!(h, input, "segment {i} headers");
        assert!(ip_checksum_ok(seg, &h), "segment {i}: IPv4 header checksum");
        assert!(
            transport_checksum_ok(seg, &h),
            "segment {i}: transport checksum"
        );
        let body = &seg[header_len..];
        assert!(
            !body.is_empty() && body.len() <= gso_size,
            "segment {i}: payload size"
        );
        if i < last {
            assert_eq!(body.len(), gso_size, "only the last segment is short");
        }
        // Fields that are rewritten per segment; everything else is copied.
        // IPv6: payload length. IPv4: total length, identification, header checksum.
        let mut changed = Vec::new();
        if input.v6 {
            changed.push(4..6);
        } else {
            let id = be16(packet, 4).wrapping_add(i as u16);
            assert_eq!(be16(seg, 4), id, "segment {i}: IPv4 id");
            changed.extend([2..4, 4..6, 10..12]);
        }
        let l4 = ip_len;
        if tcp {
            let seq = be32(packet, l4 + 4).wrapping_add(payload.len() as u32);
            assert_eq!(be32(seg, l4 + 4), seq, "segment {i}: sequence number");
            let (flags, orig) = (seg[l4 + 13], packet[l4 + 13]);
            let keep_last = if i == last { FIN | PSH } else { 0 };
            let keep_first = if i == 0 { CWR } else { 0 };
            let per_segment = FIN | PSH | CWR;
            assert_eq!(
                flags & !per_segment,
                orig & !per_segment,
                "segment {i}: flags"
            );
            assert_eq!(
                flags & (FIN | PSH),
                orig & keep_last,
                "segment {i}: FIN/PSH"
            );
            assert_eq!(flags & CWR, orig & keep_first, "segment {i}: CWR");
            changed.extend([l4 + 4..l4 + 8, l4 + 13..l4 + 14, l4 + 16..l4 + 18]);
        } else {
            assert_eq!(
                usize::from(be16(seg, l4 + 4)),
                seg.len() - ip_len,
                "UDP length"
            );
            // Length and checksum.
            changed.push(l4 + 4..l4 + 8);
        }
        let mut copied = seg[..header_len].to_vec();
        let mut original = packet[..header_len].to_vec();
        for range in changed {
            copied[range.clone()].fill(0);
            original[range].fill(0);
        }
        assert_eq!(copied, original, "segment {i}: headers not copied");
        payload.extend_from_slice(body);
    }
    assert_eq!(
        payload,
        packet[header_len..],
        "payloads do not reassemble to the input's"
    );
}
