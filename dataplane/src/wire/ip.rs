//! The few fields of inner IPv4/IPv6 packets the data path reads: version, length, source and
//! destination. Everything else passes through untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::DropReason;

/// Addresses and true length of an inner IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Length from the IP header: the packet without WireGuard's padding.
    pub len: usize,
}

/// The destination of the IP packet at the start of `buf`, from its header alone (no length
/// check): what routing needs, also of a TSO super-packet, whose length field the segmenter
/// does not rely on.
pub fn destination(buf: &[u8]) -> Result<IpAddr, DropReason> {
    match buf.first().map(|b| b >> 4) {
        Some(4) => buf
            .get(16..20)
            .and_then(|a| <[u8; 4]>::try_from(a).ok())
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        Some(6) => buf
            .get(24..40)
            .and_then(|a| <[u8; 16]>::try_from(a).ok())
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
    .ok_or(DropReason::InvalidInnerPacket)
}

/// The hop limit of the IPv6 packet at the start of `buf`; `None` for anything else.
pub fn ipv6_hop_limit(buf: &[u8]) -> Option<u8> {
    match buf {
        [first, _, _, _, _, _, _, limit, ..] if first >> 4 == 6 => Some(*limit),
        _ => None,
    }
}

/// Parses the header of the IP packet at the start of `buf` (which may carry padding after
/// it). Rejects anything that is not IPv4/IPv6 or whose header length exceeds `buf`.
pub fn parse(buf: &[u8]) -> Result<IpInfo, DropReason> {
    let first = *buf.first().ok_or(DropReason::InvalidInnerPacket)?;
    let (src, dst, len) = match first >> 4 {
        4 => {
            let h: &[u8; 20] = buf
                .get(..20)
                .and_then(|h| h.try_into().ok())
                .ok_or(DropReason::InvalidInnerPacket)?;
            let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if len < 20 {
                return Err(DropReason::InvalidInnerPacket);
            }
            (IpAddr::V4(src), IpAddr::V4(dst), len)
        }
        6 => {
            let h: &[u8; 40] = buf
                .get(..40)
                .and_then(|h| h.try_into().ok())
                .ok_or(DropReason::InvalidInnerPacket)?;
            let src: [u8; 16] = h[8..24]
                .try_into()
                .map_err(|_| DropReason::InvalidInnerPacket)?;
            let dst: [u8; 16] = h[24..40]
                .try_into()
                .map_err(|_| DropReason::InvalidInnerPacket)?;
            let len = 40 + usize::from(u16::from_be_bytes([h[4], h[5]]));
            (
                IpAddr::V6(Ipv6Addr::from(src)),
                IpAddr::V6(Ipv6Addr::from(dst)),
                len,
            )
        }
        _ => return Err(DropReason::InvalidInnerPacket),
    };
    if len > buf.len() {
        return Err(DropReason::InvalidInnerPacket);
    }
    Ok(IpInfo { src, dst, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(total: u16) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(total)];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p
    }

    #[test]
    fn ipv4_and_ipv6_headers() {
        let mut p = v4(60);
        p.extend_from_slice(&[0; 4]); // padding
        let info = parse(&p).unwrap();
        assert_eq!(info.len, 60);
        assert_eq!(info.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(info.dst, "10.0.0.2".parse::<IpAddr>().unwrap());

        let mut p6 = vec![0u8; 48];
        p6[0] = 0x60;
        p6[4..6].copy_from_slice(&8u16.to_be_bytes());
        p6[8] = 0xfc;
        p6[24] = 0xfd;
        let info = parse(&p6).unwrap();
        assert_eq!(info.len, 48);
        assert_eq!(info.src, "fc00::".parse::<IpAddr>().unwrap());
        assert_eq!(info.dst, "fd00::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn destination_reads_the_header_alone() {
        let mut super_packet = v4(60);
        super_packet[2..4].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            destination(&super_packet),
            Ok("10.0.0.2".parse::<IpAddr>().unwrap()),
            "a length field the segmenter ignores does not matter"
        );
        let mut p6 = vec![0u8; 40];
        p6[0] = 0x60;
        p6[24] = 0xfc;
        assert_eq!(destination(&p6), Ok("fc00::".parse::<IpAddr>().unwrap()));
        for cut in [0, 19, 39] {
            let packet = if cut < 20 {
                &super_packet[..cut]
            } else {
                &p6[..cut]
            };
            assert_eq!(destination(packet), Err(DropReason::InvalidInnerPacket));
        }
        assert_eq!(
            destination(&[0x50; 40]),
            Err(DropReason::InvalidInnerPacket)
        );
    }

    #[test]
    fn rejects_every_truncation_bad_version_and_lying_lengths() {
        let p = v4(40);
        for len in 0..40 {
            assert_eq!(
                parse(&p[..len]),
                Err(DropReason::InvalidInnerPacket),
                "len {len}"
            );
        }
        let mut bad = p.clone();
        bad[0] = 0x55;
        assert!(parse(&bad).is_err());
        let mut short = p.clone();
        short[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert!(parse(&short).is_err(), "total length below the header");
        let mut p6 = vec![0u8; 40];
        p6[0] = 0x60;
        p6[4..6].copy_from_slice(&1u16.to_be_bytes());
        assert!(parse(&p6).is_err(), "payload length beyond the buffer");
    }
}
