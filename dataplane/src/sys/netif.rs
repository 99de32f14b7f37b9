//! Interface configuration over rtnetlink ([`super::netlink`]): MTU, transmit queue length,
//! up, addresses (IPv4 and IPv6), routes (added and removed, in the main table or another),
//! deletion.

use std::io;
use std::net::IpAddr;

use super::netlink::Request;
use super::with_context;

/// The kernel's index for interface `name`. Fails with [`io::ErrorKind::NotFound`] if there is
/// no such interface in this thread's network namespace.
pub fn index(name: &str) -> io::Result<u32> {
    let ifr_name = interface_name(name)?;
    // SAFETY: interface_name returns a NUL-terminated array (the name is at most 15 bytes of
    // 16), valid for the call.
    let index = unsafe { libc::if_nametoindex(ifr_name.as_ptr()) };
    if index == 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENODEV) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("interface {name}: no such interface"),
            ));
        }
        return Err(with_context(err, format!("interface {name}")));
    }
    Ok(index)
}

/// Sets the MTU of interface `name`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let context = format!("set MTU {mtu} on {name}");
    let mut request = Request::new(libc::RTM_NEWLINK, 0);
    request.push_ifinfomsg(index_for(name, &context)?, 0, 0);
    request.push_attr(libc::IFLA_MTU, &mtu.to_ne_bytes());
    request.send(&context)
}

/// Sets the transmit queue length of interface `name`: for a TUN, how many packets the kernel
/// holds for the reader before it drops them (`tx_dropped`).
pub fn set_tx_queue_len(name: &str, len: u32) -> io::Result<()> {
    let context = format!("set transmit queue length {len} on {name}");
    let mut request = Request::new(libc::RTM_NEWLINK, 0);
    request.push_ifinfomsg(index_for(name, &context)?, 0, 0);
    request.push_attr(libc::IFLA_TXQLEN, &len.to_ne_bytes());
    request.send(&context)
}

/// Brings interface `name` up (`IFF_UP`), leaving its other flags alone.
pub fn set_up(name: &str) -> io::Result<()> {
    let context = format!("set {name} up");
    let up = libc::IFF_UP as u32;
    let mut request = Request::new(libc::RTM_NEWLINK, 0);
    request.push_ifinfomsg(index_for(name, &context)?, up, up);
    request.send(&context)
}

/// Deletes interface `name`. For a TUN device the queues stay open but stop carrying packets.
pub fn delete_link(name: &str) -> io::Result<()> {
    let context = format!("delete interface {name}");
    let mut request = Request::new(libc::RTM_DELLINK, 0);
    request.push_ifinfomsg(index_for(name, &context)?, 0, 0);
    request.send(&context)
}

/// Adds `addr/prefix_len` to interface `name`; the kernel also adds the route for the prefix.
///
/// IPv6 addresses are added with `IFA_F_NODAD`, usable at once: no duplicate-address detection
/// on a link only we are on, so sockets can bind to it straight away. The kernel still installs
/// its local route from a work item a few milliseconds later, and on an interface that is down
/// only once it comes up (after a random delay of up to a second): add addresses after
/// [`set_up`]. Fails with [`io::ErrorKind::AlreadyExists`] if the interface already has the
/// address.
pub fn add_address(name: &str, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
    let context = format!("add address {addr}/{prefix_len} to {name}");
    check_prefix_len(addr, prefix_len, &context)?;
    let (family, flags) = match addr {
        IpAddr::V4(_) => (libc::AF_INET, 0),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IFA_F_NODAD),
    };
    let create = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    let mut request = Request::new(libc::RTM_NEWADDR, create);
    // struct ifaddrmsg: family, prefix length, flags (the low 8 bits; IFA_FLAGS has them
    // all), scope, interface index.
    request.push(&[
        family as u8,
        prefix_len,
        flags as u8,
        libc::RT_SCOPE_UNIVERSE,
    ]);
    request.push(&index_for(name, &context)?.to_ne_bytes());
    let bytes = ip_bytes(&addr);
    request.push_attr(libc::IFA_LOCAL, &bytes);
    request.push_attr(libc::IFA_ADDRESS, &bytes);
    request.push_attr(libc::IFA_FLAGS, &flags.to_ne_bytes());
    request.send(&context)
}

/// The route metric that holds its MTU (`include/uapi/linux/rtnetlink.h`; libc lacks it).
const RTAX_MTU: u16 = 2;

/// Routes `dst/prefix_len` out of interface `name` (a device route, no gateway), e.g. the
/// overlay's `fc00::/8`, carrying `mtu` as the route's MTU when given (the kernel sizes
/// packets and path MTU by it, below the device's). The interface must be up: IPv6 refuses a
/// route through a device that is down (`ENETDOWN`). `dst` must have no bits set past the
/// prefix. Fails with [`io::ErrorKind::AlreadyExists`] if the main table already has a route
/// for that prefix, rather than taking it over.
pub fn add_route(name: &str, dst: IpAddr, prefix_len: u8, mtu: Option<u32>) -> io::Result<()> {
    let context = format!("add route {dst}/{prefix_len} via {name}");
    let create = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    let route = Route::new(name, dst, prefix_len, MAIN_TABLE);
    let mut request = route.request(libc::RTM_NEWROUTE, create, &context)?;
    if let Some(mtu) = mtu {
        // RTA_METRICS nests attributes of its own: one RTAX_MTU (length 8, a u32).
        let mut metrics = [0u8; 8];
        metrics[..2].copy_from_slice(&8u16.to_ne_bytes());
        metrics[2..4].copy_from_slice(&RTAX_MTU.to_ne_bytes());
        metrics[4..].copy_from_slice(&mtu.to_ne_bytes());
        request.push_attr(libc::RTA_METRICS, &metrics);
    }
    request.send(&context)
}

/// Removes the device route `dst/prefix_len` out of interface `name` from the main table, as
/// [`add_route`] adds it. Fails with [`io::ErrorKind::NotFound`] if there is no such route
/// (a route through another interface is never touched).
pub fn delete_route(name: &str, dst: IpAddr, prefix_len: u8) -> io::Result<()> {
    let context = format!("delete route {dst}/{prefix_len} via {name}");
    Route::new(name, dst, prefix_len, MAIN_TABLE)
        .request(libc::RTM_DELROUTE, 0, &context)?
        .send(&context)
}

/// Routes `dst/prefix_len` out of interface `name` in routing table `table` (1 to 2^32 - 1),
/// a table of its own that only policy rules send packets to (see [`super::rule`]): e.g. a
/// default route for the packets that are not the tunnel's own.
/// Fails with [`io::ErrorKind::AlreadyExists`] if `table` already has a route for that prefix.
pub fn add_table_route(name: &str, dst: IpAddr, prefix_len: u8, table: u32) -> io::Result<()> {
    let context = format!("add route {dst}/{prefix_len} via {name} to table {table}");
    let create = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    Route::new(name, dst, prefix_len, table)
        .request(libc::RTM_NEWROUTE, create, &context)?
        .send(&context)
}

/// Removes the device route `dst/prefix_len` out of interface `name` from `table`, as
/// [`add_table_route`] adds it. Fails with [`io::ErrorKind::NotFound`] if there is no such
/// route.
pub fn delete_table_route(name: &str, dst: IpAddr, prefix_len: u8, table: u32) -> io::Result<()> {
    let context = format!("delete route {dst}/{prefix_len} via {name} from table {table}");
    Route::new(name, dst, prefix_len, table)
        .request(libc::RTM_DELROUTE, 0, &context)?
        .send(&context)
}

/// The main routing table's number (`RT_TABLE_MAIN`).
const MAIN_TABLE: u32 = libc::RT_TABLE_MAIN as u32;

/// A device route: `dst/prefix_len` out of interface `name`, in routing table `table`.
struct Route<'a> {
    name: &'a str,
    dst: IpAddr,
    prefix_len: u8,
    table: u32,
}

impl<'a> Route<'a> {
    fn new(name: &'a str, dst: IpAddr, prefix_len: u8, table: u32) -> Self {
        Route {
            name,
            dst,
            prefix_len,
            table,
        }
    }

    /// A request of `msg_type` for this route, checked first.
    fn request(&self, msg_type: u16, extra_flags: u16, context: &str) -> io::Result<Request> {
        let (dst, prefix_len) = (self.dst, self.prefix_len);
        check_prefix_len(dst, prefix_len, context)?;
        let bytes = ip_bytes(&dst);
        let (full_bytes, rest_bits) = (usize::from(prefix_len / 8), prefix_len % 8);
        let host_bits_set = bytes.iter().enumerate().any(|(i, &byte)| match i {
            i if i < full_bytes => false,
            i if i == full_bytes => byte & (0xff >> rest_bits) != 0,
            _ => byte != 0,
        });
        if host_bits_set {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{context}: address has bits set past the prefix length"),
            ));
        }
        if self.table == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{context}: table 0 is no table"),
            ));
        }
        // The header's table field has 8 bits; a larger number goes in RTA_TABLE alone.
        let header_table = u8::try_from(self.table).unwrap_or(libc::RT_TABLE_UNSPEC);
        let mut request = Request::new(msg_type, extra_flags);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
        request.push(&[
            family(dst),
            prefix_len,
            0,
            0,
            header_table,
            libc::RTPROT_STATIC,
            libc::RT_SCOPE_LINK,
            libc::RTN_UNICAST,
        ]);
        request.push(&0u32.to_ne_bytes());
        request.push_attr(libc::RTA_DST, &bytes);
        request.push_attr(libc::RTA_OIF, &index_for(self.name, context)?.to_ne_bytes());
        if self.table != MAIN_TABLE {
            request.push_attr(libc::RTA_TABLE, &self.table.to_ne_bytes());
        }
        Ok(request)
    }
}

/// The address family byte of `addr` (`AF_INET`, `AF_INET6`).
pub(super) fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// [`index`], with `context` (the request being built) prepended to its error.
fn index_for(name: &str, context: &str) -> io::Result<u32> {
    index(name).map_err(|err| with_context(err, context))
}

/// `name` as the fixed, NUL-terminated array the kernel's interface calls take, checked the
/// way the kernel will check it so the error can say what is wrong.
pub(super) fn interface_name(name: &str) -> io::Result<[libc::c_char; libc::IFNAMSIZ]> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?}: {why}"),
        )
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(invalid("must be 1 to 15 bytes long"));
    }
    if name == "." || name == ".." {
        return Err(invalid("reserved name"));
    }
    if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(invalid("must not contain NUL, '/', ':' or whitespace"));
    }
    let mut out = [0; libc::IFNAMSIZ];
    for (slot, byte) in out.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    Ok(out)
}

fn check_prefix_len(addr: IpAddr, prefix_len: u8, context: &str) -> io::Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{context}: prefix length above {max}"),
        ));
    }
    Ok(())
}

fn ip_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}
