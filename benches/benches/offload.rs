//! Costs of the software TUN offloads: splitting a 64 KB TCP super-packet into MTU-sized
//! segments, coalescing segments back into one, and the Internet checksum under both.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rovy_dataplane::offload::{
    Checksum, Coalescer, GsoType, Push, Segmenter, VNET_HDR_LEN, VnetHdr, checksum,
};

const MTU: usize = 1420;
/// IPv4 (20) and TCP with timestamps (32): what a Linux TCP flow carries.
const HEADER_LEN: usize = 52;
const MSS: usize = MTU - HEADER_LEN;
/// The largest super-packet the kernel hands a TUN: 47 full segments and a short one.
const SUPER_PACKET_LEN: usize = 65_535;

/// A TCPv4 super-packet as a TSO TUN delivers it: vnet header, headers with the pseudo-header
/// sum in the TCP checksum field, 64 KB of payload.
fn tcp_super_packet() -> Vec<u8> {
    let mut packet = vec![0u8; SUPER_PACKET_LEN];
    packet[..20].copy_from_slice(&[
        0x45, 0, 0xff, 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let ip_checksum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&ip_checksum.to_be_bytes());
    let tcp = &mut packet[20..HEADER_LEN];
    tcp[..12].copy_from_slice(&[0xa8, 0xca, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 1]);
    tcp[12..16].copy_from_slice(&[0x80, 0x10, 0x01, 0xf6]);
    tcp[20..].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]);
    for (i, byte) in packet[HEADER_LEN..].iter_mut().enumerate() {
        *byte = (i * 7) as u8;
    }
    let mut pseudo = Checksum::new();
    pseudo.add_bytes(&packet[12..20]);
    pseudo.add_u16(6);
    pseudo.add_u32((SUPER_PACKET_LEN - 20) as u32);
    packet[36..38].copy_from_slice(&pseudo.fold().to_be_bytes());
    let hdr = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        gso_type: GsoType::TcpV4,
        hdr_len: HEADER_LEN as u16,
        gso_size: MSS as u16,
        csum_start: 20,
        csum_offset: 16,
        ..VnetHdr::default()
    };
    [&hdr.to_bytes()[..], &packet].concat()
}

/// The segments of the super-packet, each a complete, valid TCP/IPv4 packet.
fn segments(frame: &[u8]) -> Vec<Vec<u8>> {
    let (hdr, packet) = VnetHdr::parse(frame).unwrap();
    let mut segmenter = Segmenter::new(&hdr, packet, MTU).unwrap();
    let mut buf = vec![0; MTU];
    let mut segments = Vec::new();
    while let Some(len) = segmenter.next_into(&mut buf) {
        segments.push(buf[..len.unwrap()].to_vec());
    }
    segments
}

fn split(c: &mut Criterion) {
    let mut group = c.benchmark_group("offload_split");
    let frame = tcp_super_packet();
    let (hdr, packet) = VnetHdr::parse(&frame).unwrap();
    let count = SUPER_PACKET_LEN.saturating_sub(HEADER_LEN).div_ceil(MSS);
    let mut bufs = vec![vec![0u8; 16 + MTU]; count];

    group.throughput(Throughput::Bytes(SUPER_PACKET_LEN as u64));
    group.bench_function(
        BenchmarkId::new("tcp4_super_packet", SUPER_PACKET_LEN),
        |b| {
            b.iter(|| {
                let mut segmenter = Segmenter::new(&hdr, black_box(packet), MTU).unwrap();
                for buf in &mut bufs {
                    let len = segmenter.next_into(&mut buf[16..]).unwrap().unwrap();
                    black_box(len);
                }
            })
        },
    );

    group.throughput(Throughput::Bytes(MTU as u64));
    let mut segmenter = Segmenter::new(&hdr, packet, MTU).unwrap();
    let mut buf = vec![0u8; 16 + MTU];
    group.bench_function(BenchmarkId::new("tcp4_segment", MTU), |b| {
        b.iter(|| match segmenter.next_into(&mut buf[16..]) {
            Some(len) => {
                black_box(len.unwrap());
            }
            None => segmenter = Segmenter::new(&hdr, black_box(packet), MTU).unwrap(),
        })
    });
    group.finish();
}

fn coalesce(c: &mut Criterion) {
    let mut group = c.benchmark_group("offload_coalesce");
    let all = segments(&tcp_super_packet());
    let batch = &all[..44];
    let mut coalescer = Coalescer::new(64);
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function(BenchmarkId::new("tcp4_segments", batch.len()), |b| {
        b.iter(|| {
            let mut emitted = 0;
            for segment in batch {
                let pushed = coalescer.push(black_box(segment), &mut |frame: &[u8]| {
                    emitted += frame.len();
                });
                assert_eq!(pushed, Push::Held);
            }
            coalescer.flush(|frame| emitted += frame.len());
            assert_eq!(emitted, VNET_HDR_LEN + HEADER_LEN + 44 * MSS);
        })
    });
    group.finish();
}

fn internet_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("offload_checksum");
    let data: Vec<u8> = (0..1400u32).map(|i| (i * 13) as u8).collect();
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function(BenchmarkId::new("checksum", data.len()), |b| {
        b.iter(|| checksum(black_box(&data)))
    });
    group.finish();
}

criterion_group!(benches, split, coalesce, internet_checksum);
criterion_main!(benches);
