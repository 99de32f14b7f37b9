//! Policy routing rules over rtnetlink ([`super::netlink`]), the `ip rule` kind: the two a full
//! tunnel needs, as wg-quick adds them. Packets without the tunnel's firewall mark look up the
//! tunnel's own table (whose default route leads into the TUN), and before that the main table
//! is asked for everything but its default route, so the routes of the local networks still win.
//!
//! A rule is added with `NLM_F_EXCL` (an identical one already there is an error, not a second
//! copy) and carries `proto static`, which the kernel compares on deletion: deleting one of
//! these rules never takes a rule someone else added without that protocol.

use std::fmt;
use std::io;

use super::netlink::Request;

/// `struct fib_rule_hdr`'s action: look the packet up in the rule's table (`FR_ACT_TO_TBL`).
const FR_ACT_TO_TBL: u8 = 1;
/// The rule matches the packets its selectors do not (`FIB_RULE_INVERT`).
const FIB_RULE_INVERT: u32 = 0x2;
/// Rule attributes (`include/uapi/linux/fib_rules.h`; libc lacks them).
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;

/// What a [`Rule`] selects, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Packets whose firewall mark is not exactly `mark` (`not fwmark MARK`).
    NotMarked(u32),
    /// Every packet, but a route found in the table with a prefix of this many bits or fewer
    /// does not count (`suppress_prefixlength LEN`): with 0 the table is asked for everything
    /// except its default route.
    SuppressPrefixLen(u8),
}

/// One policy routing rule: `priority` (lower is asked first), the packets it selects, and the
/// table it sends them to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// An IPv6 rule, else IPv4 (each family has its own rules).
    pub v6: bool,
    pub priority: u32,
    pub selector: Selector,
    /// The routing table (1 to 2^32 - 1; 254 is the main table).
    pub table: u32,
}

impl fmt::Display for Rule {
    /// As `ip rule` shows it, with the family first: `IPv4 rule 32765: not fwmark 0xca6c
    /// lookup 51820`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.v6 { "IPv6" } else { "IPv4" };
        write!(f, "{family} rule {}: ", self.priority)?;
        if let Selector::NotMarked(mark) = self.selector {
            write!(f, "not fwmark {mark:#x} ")?;
        }
        match self.table {
            MAIN_TABLE => f.write_str("lookup main")?,
            table => write!(f, "lookup {table}")?,
        }
        if let Selector::SuppressPrefixLen(len) = self.selector {
            write!(f, " suppress_prefixlength {len}")?;
        }
        Ok(())
    }
}

/// The main routing table's number (`RT_TABLE_MAIN`).
const MAIN_TABLE: u32 = libc::RT_TABLE_MAIN as u32;

/// Adds `rule`. Fails with [`io::ErrorKind::AlreadyExists`] if an identical rule is there
/// already (whoever added it), rather than adding a second copy.
pub fn add_rule(rule: &Rule) -> io::Result<()> {
    let context = format!("add {rule}");
    let create = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    request(libc::RTM_NEWRULE, create, rule, &context)?.send(&context)
}

/// Deletes `rule`, as [`add_rule`] added it. Fails with [`io::ErrorKind::NotFound`] if there
/// is no such rule.
pub fn delete_rule(rule: &Rule) -> io::Result<()> {
    let context = format!("delete {rule}");
    request(libc::RTM_DELRULE, 0, rule, &context)?.send(&context)
}

fn request(msg_type: u16, extra_flags: u16, rule: &Rule, context: &str) -> io::Result<Request> {
    if rule.table == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{context}: table 0 is no table"),
        ));
    }
    let family = if rule.v6 {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    let flags = match rule.selector {
        Selector::NotMarked(_) => FIB_RULE_INVERT,
        Selector::SuppressPrefixLen(_) => 0,
    };
    // The header's table field has 8 bits; a larger number goes in FRA_TABLE alone.
    let header_table = u8::try_from(rule.table).unwrap_or(libc::RT_TABLE_UNSPEC);
    let mut request = Request::new(msg_type, extra_flags);
    // struct fib_rule_hdr: family, dst_len, src_len, tos, table, two reserved bytes, action,
    // flags (u32).
    request.push(&[family as u8, 0, 0, 0, header_table, 0, 0, FR_ACT_TO_TBL]);
    request.push(&flags.to_ne_bytes());
    request.push_attr(FRA_PRIORITY, &rule.priority.to_ne_bytes());
    request.push_attr(FRA_TABLE, &rule.table.to_ne_bytes());
    request.push_attr(FRA_PROTOCOL, &[libc::RTPROT_STATIC]);
    match rule.selector {
        Selector::NotMarked(mark) => {
            request.push_attr(FRA_FWMARK, &mark.to_ne_bytes());
            request.push_attr(FRA_FWMASK, &u32::MAX.to_ne_bytes());
        }
        Selector::SuppressPrefixLen(len) => {
            request.push_attr(FRA_SUPPRESS_PREFIXLEN, &u32::from(len).to_ne_bytes());
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_ip_rule_shows_them() {
        let not_marked = Rule {
            v6: false,
            priority: 32765,
            selector: Selector::NotMarked(51820),
            table: 51820,
        };
        assert_eq!(
            not_marked.to_string(),
            "IPv4 rule 32765: not fwmark 0xca6c lookup 51820"
        );
        let suppress = Rule {
            v6: true,
            priority: 32764,
            selector: Selector::SuppressPrefixLen(0),
            table: 254,
        };
        assert_eq!(
            suppress.to_string(),
            "IPv6 rule 32764: lookup main suppress_prefixlength 0"
        );
    }
}
