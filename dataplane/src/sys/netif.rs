//! Interface configuration over rtnetlink: MTU, transmit queue length, up, addresses (IPv4 and IPv6), routes
//! (added and removed), deletion.
//!
//! Each call opens a `NETLINK_ROUTE` socket, sends one request with `NLM_F_ACK` and waits for
//! the kernel's answer, so a failure comes back as the kernel's errno, plus its extended-ack
//! text when it gives one (e.g. "Invalid prefix for given prefix length"), prefixed with what
//! was asked of which interface. The socket lives in the calling thread's network namespace.
//! These are start-up operations: they allocate freely and are not meant for the packet path.
//!
//! The messages are built by hand: a `nlmsghdr`, the family header (`ifinfomsg`, `ifaddrmsg`
//! or `rtmsg`), then attributes (`rtattr`: length, type, payload, padded to 4 bytes), all in
//! native byte order as the kernel expects.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{check, last_os_error, with_context};

/// Size of `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDR_LEN: usize = 16;
/// Extended-ack attribute carrying the kernel's error text (`NLMSGERR_ATTR_MSG`).
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Large enough for any acknowledgement: with `NETLINK_CAP_ACK` the kernel does not echo our
/// request back, only its header and the extended-ack attributes.
const RECV_BUF_LEN: usize = 8192;

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
    let mut request = route_request(libc::RTM_NEWROUTE, create, name, dst, prefix_len, &context)?;
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
    route_request(libc::RTM_DELROUTE, 0, name, dst, prefix_len, &context)?.send(&context)
}

/// A route request for the device route `dst/prefix_len` out of `name` in the main table.
fn route_request(
    msg_type: u16,
    extra_flags: u16,
    name: &str,
    dst: IpAddr,
    prefix_len: u8,
    context: &str,
) -> io::Result<Request> {
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
    let family = match dst {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    };
    let mut request = Request::new(msg_type, extra_flags);
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
    request.push(&[
        family as u8,
        prefix_len,
        0,
        0,
        libc::RT_TABLE_MAIN,
        libc::RTPROT_STATIC,
        libc::RT_SCOPE_LINK,
        libc::RTN_UNICAST,
    ]);
    request.push(&0u32.to_ne_bytes());
    request.push_attr(libc::RTA_DST, &bytes);
    request.push_attr(libc::RTA_OIF, &index_for(name, context)?.to_ne_bytes());
    Ok(request)
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

/// One rtnetlink request being built: header, family header, attributes.
struct Request {
    buf: Vec<u8>,
    msg_type: u16,
    flags: u16,
}

impl Request {
    fn new(msg_type: u16, extra_flags: u16) -> Self {
        Self {
            buf: vec![0; NLMSG_HDR_LEN],
            msg_type,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16 | extra_flags,
        }
    }

    /// Appends raw bytes of a family header; callers keep it 4-byte aligned.
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `struct ifinfomsg`: family, padding, device type, index, flags, change mask.
    fn push_ifinfomsg(&mut self, index: u32, flags: u32, change: u32) {
        self.push(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.push(&index.to_ne_bytes());
        self.push(&flags.to_ne_bytes());
        self.push(&change.to_ne_bytes());
    }

    /// A `struct rtattr` (length including its 4-byte header, type) and its payload, padded
    /// to 4 bytes.
    fn push_attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.push(&(len as u16).to_ne_bytes());
        self.push(&kind.to_ne_bytes());
        self.push(payload);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }

    /// Sends the request on a fresh socket and waits for the kernel's acknowledgement.
    fn send(mut self, context: &str) -> io::Result<()> {
        const SEQ: u32 = 1;
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[4..6].copy_from_slice(&self.msg_type.to_ne_bytes());
        self.buf[6..8].copy_from_slice(&self.flags.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&SEQ.to_ne_bytes());
        let socket = open_route_socket().map_err(|err| with_context(err, context))?;
        // SAFETY: sockaddr_nl is plain data; all-zero addresses the kernel (port id 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: buf and kernel are valid for the lengths given for the whole call.
        let sent = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                self.buf.as_ptr().cast(),
                self.buf.len(),
                0,
                (&raw const kernel).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(last_os_error(format!("{context}: netlink send")));
        }
        wait_for_ack(&socket, SEQ).map_err(|err| with_context(err, context))
    }
}

fn open_route_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    let fd = check(fd, "open NETLINK_ROUTE socket")?;
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    for option in [libc::NETLINK_CAP_ACK, libc::NETLINK_EXT_ACK] {
        let on: libc::c_int = 1;
        // SAFETY: the option value is one int, valid for the call. Failure is harmless (an
        // older kernel echoes our request and gives no error text), so the result is ignored.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_NETLINK,
                option,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    Ok(socket)
}

/// Reads datagrams from the kernel until the `NLMSG_ERROR` answering `seq` arrives; an error
/// code of 0 is the acknowledgement, anything else the errno of the refusal.
fn wait_for_ack(socket: &OwnedFd, seq: u32) -> io::Result<()> {
    let mut buf = vec![0u8; RECV_BUF_LEN];
    loop {
        // SAFETY: sockaddr_nl is plain data; the kernel fills it in.
        let mut from: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        let mut from_len = size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: buf, from and from_len are valid and exclusively borrowed for the call; the
        // kernel writes at most buf.len() bytes and from_len bytes respectively.
        let received = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut from_len,
            )
        };
        let received = usize::try_from(received).map_err(|_| last_os_error("netlink receive"))?;
        if from.nl_pid != 0 {
            continue;
        }
        if let Some(result) = find_ack(buf.get(..received).unwrap_or_default(), seq) {
            return result;
        }
    }
}

/// Looks through one datagram of netlink messages for the answer to `seq`.
fn find_ack(mut datagram: &[u8], seq: u32) -> Option<io::Result<()>> {
    while datagram.len() >= NLMSG_HDR_LEN {
        let len = read_u32(datagram, 0)? as usize;
        let msg_type = read_u16(datagram, 4)?;
        let flags = read_u16(datagram, 6)?;
        let msg_seq = read_u32(datagram, 8)?;
        if len < NLMSG_HDR_LEN || len > datagram.len() {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed netlink answer",
            )));
        }
        let message = &datagram[..len];
        if i32::from(msg_type) == libc::NLMSG_ERROR && msg_seq == seq {
            return Some(parse_error_message(message, flags));
        }
        datagram = datagram.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

/// `struct nlmsgerr` (negative errno, then the header of our request, capped) followed, when
/// `NLM_F_ACK_TLVS` is set, by extended-ack attributes.
fn parse_error_message(message: &[u8], flags: u16) -> io::Result<()> {
    let errno = read_u32(message, NLMSG_HDR_LEN).map(|raw| raw as i32);
    let Some(errno) = errno else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated netlink error message",
        ));
    };
    if errno == 0 {
        return Ok(());
    }
    let err = io::Error::from_raw_os_error(errno.saturating_neg());
    let text = (flags & libc::NLM_F_ACK_TLVS as u16 != 0)
        .then(|| {
            let echoed = read_u32(message, NLMSG_HDR_LEN + 4)? as usize;
            let echoed = if flags & libc::NLM_F_CAPPED as u16 != 0 {
                NLMSG_HDR_LEN
            } else {
                echoed
            };
            extended_ack_text(message.get(NLMSG_HDR_LEN + 4 + echoed.next_multiple_of(4)..)?)
        })
        .flatten();
    // rtnetlink's "no such object" (a route to delete that is not there) is ESRCH, which std
    // does not sort under NotFound.
    let kind = if errno.saturating_neg() == libc::ESRCH {
        io::ErrorKind::NotFound
    } else {
        err.kind()
    };
    Err(match text {
        Some(text) => io::Error::new(kind, format!("{err}; kernel says: {text}")),
        None if kind != err.kind() => io::Error::new(kind, err.to_string()),
        None => err,
    })
}

/// The `NLMSGERR_ATTR_MSG` string among extended-ack attributes, if any.
fn extended_ack_text(mut attrs: &[u8]) -> Option<String> {
    while attrs.len() >= 4 {
        let len = usize::from(read_u16(attrs, 0)?);
        let kind = read_u16(attrs, 2)?;
        let payload = attrs.get(4..len)?;
        if kind == NLMSGERR_ATTR_MSG {
            let text = payload.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink message: header (`len` computed unless given) and payload.
    fn message(msg_type: i32, flags: i32, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = (NLMSG_HDR_LEN + payload.len()) as u32;
        let mut out = len.to_ne_bytes().to_vec();
        out.extend_from_slice(&(msg_type as u16).to_ne_bytes());
        out.extend_from_slice(&(flags as u16).to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An `nlmsgerr` payload: errno and the (capped) header of the request it answers.
    fn error_payload(errno: i32) -> Vec<u8> {
        let mut out = errno.to_ne_bytes().to_vec();
        out.extend_from_slice(&message(i32::from(libc::RTM_NEWLINK), 0, 1, &[])[..]);
        out
    }

    #[test]
    fn an_error_code_of_zero_is_the_acknowledgement() {
        let ack = message(libc::NLMSG_ERROR, 0, 7, &error_payload(0));
        assert!(find_ack(&ack, 7).unwrap().is_ok());
        assert!(find_ack(&ack, 8).is_none(), "answer to another request");
    }

    #[test]
    fn the_answer_may_follow_other_messages() {
        let mut datagram = message(i32::from(libc::RTM_NEWLINK), 0, 3, &[1, 2, 3]);
        datagram.resize(datagram.len().next_multiple_of(4), 0);
        datagram.extend(message(
            libc::NLMSG_ERROR,
            0,
            3,
            &error_payload(-libc::EEXIST),
        ));
        let err = find_ack(&datagram, 3).unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(err.to_string(), "File exists (os error 17)");
    }

    #[test]
    fn extended_ack_text_is_appended() {
        let mut payload = error_payload(-libc::EINVAL);
        let text = b"mtu less than device minimum\0";
        payload.extend_from_slice(&((4 + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        let flags = libc::NLM_F_CAPPED | libc::NLM_F_ACK_TLVS;
        let err = find_ack(&message(libc::NLMSG_ERROR, flags, 1, &payload), 1)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "Invalid argument (os error 22); kernel says: mtu less than device minimum"
        );
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let truncated = message(libc::NLMSG_ERROR, 0, 1, &[0, 0]);
        let err = find_ack(&truncated, 1).unwrap().unwrap_err();
        assert_eq!(err.to_string(), "truncated netlink error message");

        let mut too_long = message(libc::NLMSG_ERROR, 0, 1, &error_payload(0));
        too_long[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        let mut too_short = too_long.clone();
        too_short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        for datagram in [too_long, too_short] {
            let err = find_ack(&datagram, 1).unwrap().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(err.to_string(), "malformed netlink answer");
        }
        assert!(find_ack(&[0; 15], 1).is_none(), "shorter than a header");

        let flags = libc::NLM_F_CAPPED | libc::NLM_F_ACK_TLVS;
        let mut bad_attr = error_payload(-libc::EINVAL);
        bad_attr.extend_from_slice(&[200, 0, 1, 0, b'x']);
        let err = find_ack(&message(libc::NLMSG_ERROR, flags, 1, &bad_attr), 1)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.to_string(), "Invalid argument (os error 22)");
    }

    #[test]
    fn requests_are_laid_out_as_the_kernel_reads_them() {
        let mut request = Request::new(libc::RTM_NEWLINK, 0);
        request.push_ifinfomsg(7, 1, 1);
        request.push_attr(libc::IFLA_IFNAME, b"rf0\0x");
        let mut expected = vec![0; NLMSG_HDR_LEN];
        expected.extend_from_slice(&[0, 0, 0, 0]);
        for field in [7u32, 1, 1] {
            expected.extend_from_slice(&field.to_ne_bytes());
        }
        expected.extend_from_slice(&9u16.to_ne_bytes());
        expected.extend_from_slice(&libc::IFLA_IFNAME.to_ne_bytes());
        expected.extend_from_slice(b"rf0\0x\0\0\0");
        assert_eq!(request.buf, expected);
        assert_eq!(
            request.flags,
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16
        );
    }
}
