//! The coalescer round trip: TCP segments and UDP datagrams of a few flows (in order, so they
//! merge, or not; with good or broken checksums) go through the coalescer, and every frame it
//! emits goes back through the segmenter, as the kernel would cut it. What comes out is, flow by
//! flow and in order, the same payloads at the same sequence numbers as what went in, every
//! packet valid; merged frames carry the header the kernel needs, within its limits.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::offload::{Coalescer, GsoType, MAX_FRAME_LEN, Push, Segmenter, VnetHdr};
use rovy_fuzz::packet::{
    ACK, ChecksumForm, PSH, Spec, UDP, be16, be32, flow_key, headers, ip_checksum_ok, pseudo_sum,
    transport_checksum_ok,
};

/// The kernel's limit on datagrams in one USO frame written to a TUN.
const MAX_UDP_SEGMENTS: usize = 64;

#[derive(Debug, Arbitrary)]
struct Input {
    flows: u8,
    udp_v4: bool,
    udp_v6: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
struct Step {
    spec: Spec,
    /// Continue the flow where its last packet ended (next sequence number and IPv4 id, the
    /// flow's first headers, ACK with or without PSH): what merges.
    in_order: bool,
    payload_len: u16,
    fill: u8,
    /// Flip a payload byte after the checksum was computed.
    corrupt: bool,
}

/// A flow's first packet and where its next in-order packet continues.
struct FlowState {
    template: Spec,
    next_seq: u32,
    next_id: u16,
}

fuzz_target!(|input: Input| {
    let mut coalescer =
        Coalescer::new(1 + usize::from(input.flows % 4)).merge_udp(input.udp_v4, input.udp_v6);
    let mut flows: HashMap<(bool, bool, u8), FlowState> = HashMap::new();
    let mut sent = Vec::new();
    let mut written = Vec::new();
    for step in input.steps.iter().take(96) {
        let packet = build(step, &mut flows);
        let mut frames = Vec::new();
        let push = coalescer.push(&packet, &mut |frame: &[u8]| frames.push(frame.to_vec()));
        for frame in frames {
            written.extend(resegment(&frame));
        }
        if push == Push::PassThrough {
            written.push(packet.clone());
        }
        sent.push(packet);
    }
    let mut frames = Vec::new();
    coalescer.flush(|frame| frames.push(frame.to_vec()));
    assert_eq!(coalescer.held(), 0);
    for frame in frames {
        written.extend(resegment(&frame));
    }
    assert_eq!(
        by_flow(&written),
        by_flow(&sent),
        "flows changed on the way through"
    );
});

fn build(step: &Step, flows: &mut HashMap<(bool, bool, u8), FlowState>) -> Vec<u8> {
    let key = (step.spec.v6, step.spec.udp, step.spec.flow % 4);
    let payload: Vec<u8> = (0..usize::from(step.payload_len % 1461))
        .map(|i| step.fill.wrapping_add(i as u8))
        .collect();
    let state = flows.entry(key).or_insert(FlowState {
        template: step.spec,
        next_seq: step.spec.seq,
        next_id: step.spec.ip_id,
    });
    let mut spec = step.spec;
    if step.in_order {
        spec = Spec {
            seq: state.next_seq,
            ip_id: state.next_id,
            flags: ACK | (step.spec.flags & PSH),
            window: step.spec.window,
            ..state.template
        };
    }
    state.next_seq = spec.seq.wrapping_add(payload.len() as u32);
    state.next_id = spec.ip_id.wrapping_add(1);
    let mut packet = spec.build(&payload, ChecksumForm::Full);
    if step.corrupt && !payload.is_empty() {
        *packet.last_mut().unwrap() ^= 0xff;
    }
    packet
}

/// The packets a frame from the coalescer stands for, checked as the kernel would take it.
fn resegment(frame: &[u8]) -> Vec<Vec<u8>> {
    assert!(frame.len() <= MAX_FRAME_LEN);
    let (hdr, packet) = VnetHdr::parse(frame).expect("the coalescer writes valid vnet headers");
    if hdr.gso_type == GsoType::None {
        assert_eq!(
            hdr,
            VnetHdr::default(),
            "a single packet goes out with a zero header"
        );
        return vec![packet.to_vec()];
    }
    let h = headers(packet).expect("a merged frame is one whole IP packet");
    assert!(ip_checksum_ok(packet, &h), "merged IPv4 header checksum");
    assert!(hdr.needs_csum());
    assert_eq!(usize::from(hdr.csum_start), h.ip_len);
    assert_eq!(usize::from(hdr.hdr_len), h.header_len);
    let field = h.ip_len + usize::from(hdr.csum_offset);
    let l4_len = packet.len() - h.ip_len;
    assert_eq!(
        be16(packet, field),
        pseudo_sum(packet, h.v6, l4_len),
        "partial checksum form"
    );
    if h.protocol == UDP {
        assert_eq!(hdr.gso_type, GsoType::UdpL4);
        assert_eq!(
            usize::from(be16(packet, h.ip_len + 4)),
            l4_len,
            "UDP length of the whole"
        );
    } else {
        let want = if h.v6 { GsoType::TcpV6 } else { GsoType::TcpV4 };
        assert_eq!(hdr.gso_type, want);
    }
    let mut segmenter =
        Segmenter::new(&hdr, packet, 65_535).expect("the kernel's segmentation takes the frame");
    let mut dst = vec![0u8; 65_535];
    let mut out = Vec::new();
    while let Some(len) = segmenter.next_into(&mut dst) {
        out.push(dst[..len.expect("fits")].to_vec());
    }
    assert!(out.len() >= 2, "a merged frame holds two packets or more");
    if h.protocol == UDP {
        assert!(
            out.len() <= MAX_UDP_SEGMENTS,
            "{} datagrams in one USO frame",
            out.len()
        );
    }
    for seg in &out {
        let sh = headers(seg).expect("segment parses");
        assert!(ip_checksum_ok(seg, &sh) && transport_checksum_ok(seg, &sh));
    }
    out
}

/// Per flow (or the bytes themselves, for what is not TCP or UDP), in order: sequence number
/// (TCP) and payload.
fn by_flow(packets: &[Vec<u8>]) -> HashMap<Vec<u8>, Vec<(u32, Vec<u8>)>> {
    let mut flows: HashMap<Vec<u8>, Vec<(u32, Vec<u8>)>> = HashMap::new();
    for packet in packets {
        let entry = match headers(packet) {
            Some(h) => {
                let seq = if h.protocol == UDP {
                    0
                } else {
                    be32(packet, h.ip_len + 4)
                };
                (flow_key(packet, &h), (seq, packet[h.header_len..].to_vec()))
            }
            None => (packet.clone(), (0, Vec::new())),
        };
        flows.entry(entry.0).or_default().push(entry.1);
    }
    flows
}
