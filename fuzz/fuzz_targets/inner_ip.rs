//! Inner IP parsing (`wire::ip::parse`): any bytes, no panic; what it accepts is what a plain
//! reading of the IPv4/IPv6 header says: the version nibble picks the family, the length field
//! gives the length, which never exceeds the buffer, and the addresses are the header's.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rovy_dataplane::DropReason;
use rovy_dataplane::wire::ip::{IpInfo, parse};

fn be16(buf: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([buf[at], buf[at + 1]]))
}

/// RFC 791 / RFC 8200 read directly.
fn reference(buf: &[u8]) -> Option<IpInfo> {
    let (src, dst, len) = match buf.first()? >> 4 {
        4 if buf.len() >= 20 => {
            let at = |i: usize| Ipv4Addr::new(buf[i], buf[i + 1], buf[i + 2], buf[i + 3]);
            let len = be16(buf, 2);
            if len < 20 {
                return None;
            }
            (IpAddr::V4(at(12)), IpAddr::V4(at(16)), len)
        }
        6 if buf.len() >= 40 => {
            let at = |i: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&buf[i..i + 16]).unwrap());
            (IpAddr::V6(at(8)), IpAddr::V6(at(24)), 40 + be16(buf, 4))
        }
        _ => return None,
    };
    (len <= buf.len()).then_some(IpInfo { src, dst, len })
}

fuzz_target!(|buf: &[u8]| {
    let parsed = parse(buf);
    match parsed {
        Ok(info) => {
            assert!(info.len <= buf.len(), "length past the buffer");
            let version = buf[0] >> 4;
            assert_eq!(info.src.is_ipv4(), version == 4);
            assert_eq!(info.dst.is_ipv6(), version == 6);
            assert!(info.len >= if version == 4 { 20 } else { 40 });
        }
        Err(reason) => assert_eq!(reason, DropReason::InvalidInnerPacket),
    }
    assert_eq!(parsed.ok(), reference(buf));
});
