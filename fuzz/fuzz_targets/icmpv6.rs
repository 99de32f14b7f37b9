//! ICMPv6 errors about overlay packets (`write_error`): any offending bytes and any output
//! buffer, no panic. An error is written exactly when RFC 4443 §2.4 allows one (an IPv6 packet,
//! whole or cut short no sooner than its quote, the first 1232 bytes; from a unicast source; to
//! a unicast destination unless the error is Packet Too Big; and not itself an ICMPv6 error,
//! which the harness finds by walking the extension headers itself within the quote) and the
//! buffer holds the headers. What is written is at most 1280 bytes and within the buffer, and
//! parses as an IPv6 packet from the node to the offending source carrying ICMPv6 of the right
//! type, code and word, quoting the offending packet from its start as far as room allows,
//! with a checksum that verifies under the harness's own RFC 1071 sum.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use rovy_dataplane::wire::icmpv6::{Icmpv6Error, write_error};
use rovy_fuzz::packet::be16;
use rovy_fuzz::sum::{ones_sum, verifies};

const MAX_ERROR_LEN: usize = 1280;
const ICMPV6: u8 = 58;
/// IPv6 header, then the ICMPv6 header (type, code, checksum, word).
const QUOTE_AT: usize = 48;

#[derive(Debug, Arbitrary)]
enum Error {
    TimeExceeded,
    NoRoute,
    PacketTooBig(u32),
}

#[derive(Debug, Arbitrary)]
struct Input {
    error: Error,
    source: [u8; 16],
    /// Make the offending bytes a sound IPv6 header with this first next header (by index),
    /// its payload length agreeing with the bytes; or leave them as they are.
    shape: Option<u8>,
    /// Size of the output buffer.
    out_len: u16,
    offending: Vec<u8>,
}

/// RFC 8200 §4 extension headers, then the upper-layer header: `Some(true)` if the packet is,
/// or may be, an ICMPv6 error (type below 128, or too short to show a type); `Some(false)` if
/// it is not (another upper layer, a later fragment, ESP or no next header); `None` when a
/// truncated extension header hides the answer.
fn is_icmpv6_error(packet: &[u8]) -> Option<bool> {
    let mut next = packet[6];
    let mut at = 40;
    loop {
        let rest = packet.get(at..)?;
        let len = match next {
            ICMPV6 => return Some(rest.first().is_none_or(|&kind| kind < 128)),
            0 | 43 | 60 => (usize::from(*rest.get(1)?) + 1) * 8,
            44 => {
                let offset = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) >> 3;
                if offset != 0 {
                    return Some(false);
                }
                8
            }
            51 => (usize::from(*rest.get(1)?) + 2) * 4,
            _ => return Some(false),
        };
        if rest.len() < len {
            return None;
        }
        next = rest[0];
        at += len;
    }
}

fn shape(offending: &mut Vec<u8>, next_header: u8) {
    const NEXT: [u8; 9] = [0, 43, 44, 60, 51, ICMPV6, 6, 17, 59];
    offending.resize(offending.len().max(40), 0);
    offending[0] = 0x60 | (offending[0] & 0x0f);
    let payload = (offending.len() - 40).min(usize::from(u16::MAX)) as u16;
    offending[4..6].copy_from_slice(&payload.to_be_bytes());
    offending[6] = NEXT[usize::from(next_header) % NEXT.len()];
}

fuzz_target!(|input: Input| {
    let mut offending = input.offending;
    if let Some(next_header) = input.shape {
        shape(&mut offending, next_header);
    }
    let error = match input.error {
        Error::TimeExceeded => Icmpv6Error::TimeExceeded,
        Error::NoRoute => Icmpv6Error::NoRoute,
        Error::PacketTooBig(mtu) => Icmpv6Error::PacketTooBig { mtu },
    };
    let source = Ipv6Addr::from(input.source);
    let mut out = vec![0x5a; usize::from(input.out_len) % 2048];
    let written = write_error(error, source, &offending, &mut out);

    // When RFC 4443 lets an error go, read from the bytes directly. The packet may be cut
    // short after its quote (a traceroute PING carries no more of its probe), not before.
    let stated = |bytes: &[u8]| 40 + usize::from(be16(bytes, 4));
    let whole = offending.len() >= 40
        && offending[0] >> 4 == 6
        && stated(&offending).min(MAX_ERROR_LEN - QUOTE_AT) <= offending.len();
    let allowed = whole && {
        let len = stated(&offending);
        let to = Ipv6Addr::from(<[u8; 16]>::try_from(&offending[8..24]).unwrap());
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&offending[24..40]).unwrap());
        let too_big = matches!(error, Icmpv6Error::PacketTooBig { .. });
        !to.is_unspecified()
            && !to.is_multicast()
            && (too_big || !dst.is_multicast())
            // Only the quote is read: the walk must find the upper layer within it (a
            // traceroute PING carries no more of its probe).
            && is_icmpv6_error(&offending[..len.min(MAX_ERROR_LEN - QUOTE_AT)]) == Some(false)
    };
    let Some(total) = written else {
        assert!(
            !allowed || out.len() < QUOTE_AT,
            "no error for an offending packet that may have one"
        );
        return;
    };
    assert!(allowed, "answered what RFC 4443 forbids answering");
    assert!(total <= MAX_ERROR_LEN && total <= out.len() && total >= QUOTE_AT);
    let packet_len = stated(&offending);
    let quote_len = packet_len
        .min(MAX_ERROR_LEN - QUOTE_AT)
        .min(out.len() - QUOTE_AT);
    assert_eq!(total, QUOTE_AT + quote_len, "quoted less than room allows");
    assert!(
        out[total..].iter().all(|&b| b == 0x5a),
        "wrote past the error"
    );

    let packet = &out[..total];
    assert_eq!(packet[0] >> 4, 6);
    assert_eq!(usize::from(be16(packet, 4)), total - 40, "payload length");
    assert_eq!(packet[6], ICMPV6);
    assert_eq!(packet[7], 64, "hop limit");
    assert_eq!(&packet[8..24], &source.octets());
    assert_eq!(
        &packet[24..40],
        &offending[8..24],
        "to the offending source"
    );
    let (kind, word) = match error {
        Icmpv6Error::NoRoute => (1, [0; 4]),
        Icmpv6Error::PacketTooBig { mtu } => (2, mtu.to_be_bytes()),
        Icmpv6Error::TimeExceeded => (3, [0; 4]),
    };
    assert_eq!((packet[40], packet[41]), (kind, 0));
    assert_eq!(&packet[44..48], &word);
    assert_eq!(&packet[QUOTE_AT..], &offending[..quote_len]);

    // RFC 8200 §8.1 pseudo-header: source, destination, upper-layer length, next header.
    let mut pseudo = packet[8..40].to_vec();
    pseudo.extend_from_slice(&((total - 40) as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, ICMPV6]);
    assert!(
        verifies(ones_sum(&pseudo), &packet[40..]),
        "ICMPv6 checksum does not verify"
    );
});
