//! One rtnetlink request and its acknowledgement, for the interface, route and rule calls
//! ([`super::netif`], [`super::rule`]).
//!
//! Each request opens a `NETLINK_ROUTE` socket, sends one message with `NLM_F_ACK` and waits for
//! the kernel's answer, so a failure comes back as the kernel's errno, plus its extended-ack
//! text when it gives one (e.g. "Invalid prefix for given prefix length"), prefixed with what
//! was asked. The socket lives in the calling thread's network namespace. These are start-up
//! and reconfiguration operations: they allocate freely and are not meant for the packet path.
//!
//! The messages are built by hand: a `nlmsghdr`, the family header (`ifinfomsg`, `ifaddrmsg`,
//! `rtmsg` or `fib_rule_hdr`), then attributes (`rtattr`: length, type, payload, padded to 4
//! bytes), all in native byte order as the kernel expects.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{check, last_os_error, with_context};

/// Size of `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDR_LEN: usize = 16;
/// Extended-ack attribute carrying the kernel's error text (`NLMSGERR_ATTR_MSG`).
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Large enough for any acknowledgement: with `NETLINK_CAP_ACK` the kernel does not echo our
/// request back, only its header and the extended-ack attributes.
const RECV_BUF_LEN: usize = 8192;

/// One rtnetlink request being built: header, family header, attributes.
pub(super) struct Request {
    buf: Vec<u8>,
    msg_type: u16,
    flags: u16,
}

impl Request {
    pub(super) fn new(msg_type: u16, extra_flags: u16) -> Self {
        Self {
            buf: vec![0; NLMSG_HDR_LEN],
            msg_type,
            flags: (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16 | extra_flags,
        }
    }

    /// Appends raw bytes of a family header; callers keep it 4-byte aligned.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// `struct ifinfomsg`: family, padding, device type, index, flags, change mask.
    pub(super) fn push_ifinfomsg(&mut self, index: u32, flags: u32, change: u32) {
        self.push(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.push(&index.to_ne_bytes());
        self.push(&flags.to_ne_bytes());
        self.push(&change.to_ne_bytes());
    }

    /// A `struct rtattr` (length including its 4-byte header, type) and its payload, padded
    /// to 4 bytes.
    pub(super) fn push_attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.push(&(len as u16).to_ne_bytes());
        self.push(&kind.to_ne_bytes());
        self.push(payload);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }

    /// Sends the request on a fresh socket and waits for the kernel's acknowledgement.
    pub(super) fn send(mut self, context: &str) -> io::Result<()> {
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
