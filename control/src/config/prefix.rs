//! IP prefixes (`10.20.0.0/24`, `fd00::/64`) for interface addresses and allowed IPs.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::AddressParseError;

/// An IP address with a prefix length no longer than the family allows. The address may have
/// bits set past the prefix (an interface address like `10.20.0.1/24` needs them); see
/// [`IpPrefix::masked`] for the network form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// `None` when `len` is longer than the address family (32 or 128).
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        (len <= max_len(addr)).then_some(Self { addr, len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The same prefix with every bit past the prefix length cleared.
    pub fn masked(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(
                (u128::from(u32::from(v4)) & self.mask()) as u32,
            )),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & self.mask())),
        };
        Self {
            addr,
            len: self.len,
        }
    }

    /// Whether `ip` is of the same family and agrees with this prefix on its first `len` bits.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (bits(self.addr), bits(ip)) {
            ((ours, our_max), (theirs, their_max)) if our_max == their_max => {
                (ours ^ theirs) & self.mask() == 0
            }
            _ => false,
        }
    }

    /// The prefix's first and last address as integers (IPv4 in the low 32 bits).
    pub fn first_last(&self) -> (u128, u128) {
        let (addr, _) = bits(self.addr);
        let mask = self.mask();
        let host = match self.addr {
            IpAddr::V4(_) => u128::from(u32::MAX) & !mask,
            IpAddr::V6(_) => !mask,
        };
        (addr & mask, (addr & mask) | host)
    }

    /// Whether some address lies in both prefixes: the shorter one contains the other's address.
    pub fn overlaps(&self, other: &IpPrefix) -> bool {
        if self.len <= other.len {
            self.contains(other.addr)
        } else {
            other.contains(self.addr)
        }
    }

    fn mask(&self) -> u128 {
        let max = max_len(self.addr);
        if self.len == 0 {
            0
        } else {
            let ones = u128::MAX << (128 - u32::from(self.len));
            ones >> (128 - u32::from(max))
        }
    }
}

fn max_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// The address as an integer, and how many of its low bits are used.
fn bits(addr: IpAddr) -> (u128, u8) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parses `ADDRESS/LENGTH`; a bare address means the host prefix (/32 or /128), as in
/// WireGuard's allowed IPs.
impl FromStr for IpPrefix {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |why: String| AddressParseError(format!("{text:?} is not an IP prefix{why}"));
        let (addr_text, len_text) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| fail(format!(" ({addr_text:?} is not an IP address)")))?;
        let len = match len_text {
            None => max_len(addr),
            Some(len) => {
                let digits =
                    !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
                let len = digits
                    .then(|| len.parse::<u8>().ok())
                    .flatten()
                    .ok_or_else(|| fail(format!(" ({len:?} is not a prefix length)")))?;
                if len > max_len(addr) {
                    return Err(fail(format!(
                        " (length {len} is longer than {})",
                        max_len(addr)
                    )));
                }
                len
            }
        };
        Ok(Self { addr, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> IpPrefix {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_displays() {
        assert_eq!(prefix("10.20.0.1/24").to_string(), "10.20.0.1/24");
        assert_eq!(prefix("10.20.0.1/24").prefix_len(), 24);
        assert_eq!(prefix("10.20.0.1").to_string(), "10.20.0.1/32");
        assert_eq!(prefix("fd00::1").to_string(), "fd00::1/128");
        assert_eq!(prefix("::/0").to_string(), "::/0");
        assert_eq!(prefix("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(IpPrefix::new(ip("10.0.0.0"), 33), None);
        assert_eq!(IpPrefix::new(ip("fd00::"), 128), Some(prefix("fd00::/128")));
    }

    #[test]
    fn rejects_malformed_prefixes_with_reasons() {
        let error = |text: &str| text.parse::<IpPrefix>().unwrap_err().to_string();
        assert_eq!(
            error("10.0.0.300/32"),
            r#""10.0.0.300/32" is not an IP prefix ("10.0.0.300" is not an IP address)"#
        );
        assert_eq!(
            error("10.0.0.1/33"),
            r#""10.0.0.1/33" is not an IP prefix (length 33 is longer than 32)"#
        );
        assert_eq!(
            error("fd00::/129"),
            r#""fd00::/129" is not an IP prefix (length 129 is longer than 128)"#
        );
        for bad_len in ["", "+8", "-1", "0x8", "1000", "256", " 8"] {
            assert_eq!(
                error(&format!("10.0.0.0/{bad_len}")),
                format!(
                    r#""10.0.0.0/{bad_len}" is not an IP prefix ({bad_len:?} is not a prefix length)"#
                )
            );
        }
        assert!("".parse::<IpPrefix>().is_err());
        assert!("10.0.0.0/8/8".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn masks_host_bits() {
        assert_eq!(prefix("10.20.3.4/16").masked(), prefix("10.20.0.0/16"));
        assert_eq!(prefix("10.20.3.4/0").masked(), prefix("0.0.0.0/0"));
        assert_eq!(prefix("10.20.3.4/32").masked(), prefix("10.20.3.4/32"));
        assert_eq!(prefix("10.20.3.5/31").masked(), prefix("10.20.3.4/31"));
        assert_eq!(
            prefix("fd12:3456:ffff::1/33").masked(),
            prefix("fd12:3456:8000::/33")
        );
        assert_eq!(
            prefix("fd12:3456:ffff::1/32").masked(),
            prefix("fd12:3456::/32")
        );
        assert_eq!(prefix("fd12:b456::1/17").masked(), prefix("fd12:8000::/17"));
        assert_eq!(prefix("fd12:3456::1/17").masked(), prefix("fd12::/17"));
        assert_eq!(prefix("fd12::1/128").masked(), prefix("fd12::1/128"));
        assert_eq!(prefix("fd12::1/0").masked(), prefix("::/0"));
    }

    #[test]
    fn contains_respects_length_and_family() {
        let net = prefix("10.20.0.0/24");
        assert!(net.contains(ip("10.20.0.0")));
        assert!(net.contains(ip("10.20.0.255")));
        assert!(!net.contains(ip("10.20.1.0")));
        assert!(!net.contains(ip("::ffff:10.20.0.1")));
        assert!(prefix("0.0.0.0/0").contains(ip("255.255.255.255")));
        assert!(!prefix("0.0.0.0/0").contains(ip("::")));
        assert!(prefix("::/0").contains(ip("fc00::1")));
        assert!(prefix("fc00::/8").contains(ip("fcff::1")));
        assert!(!prefix("fc00::/8").contains(ip("fd00::1")));
        assert!(prefix("10.0.0.7/32").contains(ip("10.0.0.7")));
        assert!(!prefix("10.0.0.7/32").contains(ip("10.0.0.6")));
        // Host bits past the prefix do not matter.
        assert!(prefix("10.20.0.99/24").contains(ip("10.20.0.1")));
    }

    #[test]
    fn first_and_last_address() {
        assert_eq!(
            prefix("10.0.0.77/24").first_last(),
            (0x0a00_0000, 0x0a00_00ff)
        );
        assert_eq!(prefix("0.0.0.0/0").first_last(), (0, u128::from(u32::MAX)));
        assert_eq!(
            prefix("192.0.2.1/32").first_last(),
            (0xc000_0201, 0xc000_0201)
        );
        assert_eq!(prefix("::/0").first_last(), (0, u128::MAX));
        let fd = u128::from(0xfd00u16) << 112;
        assert_eq!(
            prefix("fd00::5/64").first_last(),
            (fd, fd | u128::from(u64::MAX))
        );
    }

    #[test]
    fn overlaps_is_symmetric() {
        let cases = [
            ("10.0.0.0/24", "10.0.0.5/32", true),
            ("10.0.0.0/24", "10.0.1.0/24", false),
            ("10.0.0.0/23", "10.0.1.0/24", true),
            ("0.0.0.0/0", "192.0.2.1/32", true),
            ("0.0.0.0/0", "::/0", false),
            ("fd00::/64", "fd00::1:0:0:0:1/128", false),
            ("fd00::/48", "fd00::1:0:0:0:1/128", true),
            ("10.0.0.1/32", "10.0.0.1/32", true),
        ];
        for (a, b, expected) in cases {
            assert_eq!(prefix(a).overlaps(&prefix(b)), expected, "{a} {b}");
            assert_eq!(prefix(b).overlaps(&prefix(a)), expected, "{b} {a}");
        }
    }
}
