//! UDP sockets for the data path: binding with the options the workers need, segmentation
//! offload probes, and batched receive/send (`recvmmsg`/`sendmmsg`) that allocates nothing per
//! call.
//!
//! Segmentation offloads cut the per-packet cost of the kernel's UDP stack:
//! - GSO (`UDP_SEGMENT`): one send of a super-buffer of equal-sized segments (the last may be
//!   shorter) leaves as that many datagrams; the kernel or the NIC does the cutting.
//! - GRO (`UDP_GRO`): consecutive datagrams of one flow arrive as one super-buffer with the
//!   segment size in a control message. A socket with GRO on needs receive buffers large
//!   enough for a super-buffer (64 KB), or the tail is cut off and reported as truncated.

use std::io;
use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{check, with_context};

/// A good batch size for the workers: large enough to amortise the system call, small enough
/// that a batch of 64 KB GRO buffers stays within the buffer pool.
pub const MAX_BATCH: usize = 64;

/// Most messages one `recvmmsg`/`sendmmsg` call takes (`UIO_MAXIOV`).
const MAX_MESSAGES: usize = libc::UIO_MAXIOV as usize;

/// Bytes of control buffer per message: room for a GRO or GSO message (`CMSG_SPACE(4)` = 24)
/// and, later, a packet-info message (`CMSG_SPACE(20)` = 40) beside it.
pub(super) const CONTROL_LEN: usize = 64;

/// Where a control message's payload starts (`CMSG_LEN(0)`).
// SAFETY: CMSG_LEN is pure arithmetic on sizes; it dereferences nothing.
const CMSG_DATA_OFFSET: usize = unsafe { libc::CMSG_LEN(0) } as usize;

/// Space one `UDP_SEGMENT` control message (a u16 payload) takes, with padding.
// SAFETY: CMSG_SPACE is pure arithmetic on sizes; it dereferences nothing.
pub(super) const GSO_CMSG_SPACE: usize = unsafe { libc::CMSG_SPACE(2) } as usize;

/// Options for a data-path UDP socket; [`UdpSocketBuilder::bind`] creates it.
///
/// IPv6 sockets are always `IPV6_V6ONLY`, so an IPv4 and an IPv6 listener can share a port.
#[derive(Debug, Clone, Copy, Default)]
pub struct UdpSocketBuilder {
    reuseport: bool,
    nonblocking: bool,
    recv_buffer: Option<usize>,
    send_buffer: Option<usize>,
    mark: u32,
}

impl UdpSocketBuilder {
    /// A blocking socket without `SO_REUSEPORT` and with the system's buffer sizes.
    pub fn new() -> Self {
        Self::default()
    }

    /// `SO_REUSEPORT`: several sockets, one per worker, bind the same address and the kernel
    /// spreads incoming flows over them by hash.
    pub fn reuseport(mut self, on: bool) -> Self {
        self.reuseport = on;
        self
    }

    /// `O_NONBLOCK`, for epoll or io_uring.
    pub fn nonblocking(mut self, on: bool) -> Self {
        self.nonblocking = on;
        self
    }

    /// Receive buffer size in bytes. Set with `SO_RCVBUFFORCE` (past `net.core.rmem_max`,
    /// which needs `CAP_NET_ADMIN`), or `SO_RCVBUF` (capped at `rmem_max`) without the
    /// capability. The kernel doubles the value for its bookkeeping.
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = Some(bytes);
        self
    }

    /// Send buffer size in bytes, set like [`UdpSocketBuilder::recv_buffer`]
    /// (`SO_SNDBUFFORCE`, else `SO_SNDBUF`).
    pub fn send_buffer(mut self, bytes: usize) -> Self {
        self.send_buffer = Some(bytes);
        self
    }

    /// The firewall mark of every packet the socket sends (`SO_MARK`, needs `CAP_NET_ADMIN`);
    /// 0, the default, sets none. See [`set_mark`].
    pub fn mark(mut self, mark: u32) -> Self {
        self.mark = mark;
        self
    }

    /// Creates the socket and binds it to `addr` (port 0: the kernel picks one).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<OwnedFd> {
        let family = match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        let mut kind = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
        if self.nonblocking {
            kind |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: socket takes integers and returns a new descriptor or -1.
        let fd = check(
            unsafe { libc::socket(family, kind, libc::IPPROTO_UDP) },
            format_args!("create UDP socket for {addr}"),
        )?;
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let fd = socket.as_fd();
        let context = |what: &str| format!("UDP socket for {addr}: {what}");
        if addr.is_ipv6() {
            set_int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
                .map_err(|err| with_context(err, context("set IPV6_V6ONLY")))?;
        }
        if self.reuseport {
            set_int_option(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)
                .map_err(|err| with_context(err, context("set SO_REUSEPORT")))?;
        }
        if let Some(bytes) = self.recv_buffer {
            set_buffer_size(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, bytes).map_err(|err| {
                with_context(err, context(&format!("set receive buffer {bytes}")))
            })?;
        }
        if let Some(bytes) = self.send_buffer {
            set_buffer_size(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, bytes)
                .map_err(|err| with_context(err, context(&format!("set send buffer {bytes}"))))?;
        }
        if self.mark != 0 {
            set_mark(fd, self.mark)
                .map_err(|err| with_context(err, format_args!("UDP socket for {addr}")))?;
        }
        let (storage, len) = sockaddr_from(addr);
        // SAFETY: storage holds a sockaddr_in or sockaddr_in6 of `len` bytes, valid for the
        // call.
        let ret = unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) };
        check(ret, format_args!("bind UDP {addr}"))?;
        Ok(socket)
    }
}

/// Sets the firewall mark of the packets socket `fd` sends from now on (`SO_MARK`; 0 clears
/// it), which policy routing rules can match: a tunnel's own packets, marked, pass the rules
/// that send every other packet into the tunnel. Needs `CAP_NET_ADMIN`.
pub fn set_mark(fd: impl AsFd, mark: u32) -> io::Result<()> {
    // The kernel reads the option as an int and keeps its 32 bits as they are.
    set_int_option(
        fd.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_MARK,
        mark as libc::c_int,
    )
    .map_err(|err| with_context(err, format_args!("set SO_MARK {mark}")))
}

/// Whether this kernel segments UDP on send (`UDP_SEGMENT`, Linux 4.18). Sets the socket's
/// default segment size to 0 (off), so it changes nothing else; sends with a segment size use
/// [`Datagram::segment_size`]. A send can still fail with `EIO` when the outgoing device
/// cannot checksum: the caller then falls back to one datagram per segment.
pub fn probe_gso(fd: impl AsFd) -> bool {
    set_int_option(fd.as_fd(), libc::SOL_UDP, libc::UDP_SEGMENT, 0).is_ok()
}

/// Switches UDP receive coalescing on (`UDP_GRO`, Linux 5.0) and says whether the kernel
/// accepted it. From then on [`RecvBatch`] may return super-buffers with
/// [`RecvMeta::gro_segment_size`] set.
pub fn enable_gro(fd: impl AsFd) -> bool {
    set_int_option(fd.as_fd(), libc::SOL_UDP, libc::UDP_GRO, 1).is_ok()
}

/// What was received into one buffer by [`RecvBatch::recv_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The sender.
    pub src: SocketAddr,
    /// With GRO on: the datagram is a super-buffer of segments of this size (the last may be
    /// shorter). `None`: one datagram.
    pub gro_segment_size: Option<u16>,
    /// The datagram was longer than the buffer and was cut to fit (`MSG_TRUNC`).
    pub truncated: bool,
}

impl Default for RecvMeta {
    fn default() -> Self {
        Self {
            len: 0,
            src: SocketAddr::from(([0, 0, 0, 0], 0)),
            gro_segment_size: None,
            truncated: false,
        }
    }
}

/// One datagram (or, with `segment_size`, one GSO super-buffer) for [`SendBatch::send_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The bytes to send.
    pub payload: &'a [u8],
    /// Where to.
    pub dst: SocketAddr,
    /// Send `payload` as consecutive datagrams of this many bytes (the last may be shorter)
    /// with one `UDP_SEGMENT` control message. At most 64 segments (128 from Linux 6.10).
    pub segment_size: Option<u16>,
}

/// An aligned control-message buffer (`cmsghdr` needs `size_t` alignment).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(super) struct ControlBuf(pub(super) [u8; CONTROL_LEN]);

/// Socket-address storage written by us (`v4`/`v6`) or by the kernel (`storage`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
    storage: libc::sockaddr_storage,
}

impl SockAddr {
    /// The IP socket address the kernel wrote here (`len` bytes), if it is one.
    pub(super) fn written(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        // SAFETY: every variant is plain data; reading the storage variant views the bytes the
        // kernel wrote without assuming a family.
        socket_addr_from(unsafe { &self.storage }, len)
    }
}

/// The arrays one `recvmmsg`/`sendmmsg` call needs, allocated once.
///
/// Between calls the headers still hold pointers into the previous call's buffers; they are
/// never read: every call rewrites all the entries it passes to the kernel first.
struct MessageArrays {
    headers: Box<[libc::mmsghdr]>,
    iovecs: Box<[libc::iovec]>,
    addrs: Box<[SockAddr]>,
    controls: Box<[ControlBuf]>,
}

// SAFETY: the raw pointers inside headers and iovecs are only dereferenced (by the kernel)
// during a `&mut self` call that has just set them from live borrows; outside calls they are
// inert data, so moving the arrays to another thread is sound.
unsafe impl Send for MessageArrays {}

impl MessageArrays {
    fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_MESSAGES);
        // SAFETY: mmsghdr, iovec and SockAddr are plain data (integers and pointers); all-zero
        // is a valid, empty value for each, and none is dereferenced before being set.
        let (header, iovec, addr) = unsafe {
            (
                std::mem::zeroed::<libc::mmsghdr>(),
                std::mem::zeroed::<libc::iovec>(),
                std::mem::zeroed::<SockAddr>(),
            )
        };
        Self {
            headers: vec![header; capacity].into_boxed_slice(),
            iovecs: vec![iovec; capacity].into_boxed_slice(),
            addrs: vec![addr; capacity].into_boxed_slice(),
            controls: vec![ControlBuf([0; CONTROL_LEN]); capacity].into_boxed_slice(),
        }
    }

    fn capacity(&self) -> usize {
        self.headers.len()
    }

    /// Points entry `i` at the buffer `base/len`, its address slot and, if `control_len` is
    /// not 0, its control buffer.
    fn set_entry(
        &mut self,
        i: usize,
        base: *mut u8,
        len: usize,
        name_len: usize,
        control_len: usize,
    ) {
        self.iovecs[i] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        let hdr = &mut self.headers[i].msg_hdr;
        hdr.msg_name = (&raw mut self.addrs[i]).cast();
        hdr.msg_namelen = name_len as libc::socklen_t;
        hdr.msg_iov = &raw mut self.iovecs[i];
        hdr.msg_iovlen = 1;
        hdr.msg_control = if control_len == 0 {
            std::ptr::null_mut()
        } else {
            (&raw mut self.controls[i]).cast()
        };
        hdr.msg_controllen = control_len;
        hdr.msg_flags = 0;
        self.headers[i].msg_len = 0;
    }
}

/// Receives up to its capacity of datagrams per system call into caller-owned buffers.
pub struct RecvBatch {
    arrays: MessageArrays,
    meta: Box<[RecvMeta]>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// Arrays for `capacity` messages per call (clamped to 1..=1024).
    pub fn new(capacity: usize) -> Self {
        let arrays = MessageArrays::new(capacity);
        let meta = vec![RecvMeta::default(); arrays.capacity()].into_boxed_slice();
        Self { arrays, meta }
    }

    /// Most messages one call receives.
    pub fn capacity(&self) -> usize {
        self.arrays.capacity()
    }

    /// Receives datagrams into `bufs` (one each, at most [`RecvBatch::capacity`]) with one
    /// `recvmmsg`, and describes them in order: entry `i` of the result is about `bufs[i]`.
    ///
    /// A blocking socket waits for the first datagram only, then takes what is queued
    /// (`MSG_WAITFORONE`); a non-blocking one fails with [`io::ErrorKind::WouldBlock`] when
    /// nothing is queued. Errors are the bare OS error: nothing is allocated here.
    pub fn recv_batch(&mut self, fd: impl AsFd, bufs: &mut [&mut [u8]]) -> io::Result<&[RecvMeta]> {
        let count = bufs.len().min(self.capacity());
        if count == 0 {
            return Ok(&[]);
        }
        for (i, buf) in bufs.iter_mut().take(count).enumerate() {
            self.arrays.set_entry(
                i,
                buf.as_mut_ptr(),
                buf.len(),
                size_of::<SockAddr>(),
                CONTROL_LEN,
            );
        }
        // SAFETY: the first `count` headers point at `count` live, exclusively borrowed
        // buffers (bufs), and at this batch's address and control slots, all valid for the
        // lengths given; the kernel writes only within them. No timeout pointer.
        let received = unsafe {
            libc::recvmmsg(
                fd.as_fd().as_raw_fd(),
                self.arrays.headers.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let received = usize::try_from(received).map_err(|_| io::Error::last_os_error())?;
        for i in 0..received {
            let header = &self.arrays.headers[i];
            let hdr = &header.msg_hdr;
            // SAFETY: the kernel wrote a socket address of msg_namelen bytes into the slot;
            // reading the storage variant views those bytes without assuming a family.
            let storage = unsafe { &self.arrays.addrs[i].storage };
            let src = socket_addr_from(storage, hdr.msg_namelen).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
            })?;
            let control_len = hdr.msg_controllen.min(CONTROL_LEN);
            self.meta[i] = RecvMeta {
                len: header.msg_len as usize,
                src,
                gro_segment_size: gro_segment_size(&self.arrays.controls[i].0[..control_len]),
                truncated: hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        Ok(&self.meta[..received])
    }
}

/// Sends up to its capacity of datagrams per system call from caller-owned buffers.
pub struct SendBatch {
    arrays: MessageArrays,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl SendBatch {
    /// Arrays for `capacity` messages per call (clamped to 1..=1024).
    pub fn new(capacity: usize) -> Self {
        Self {
            arrays: MessageArrays::new(capacity),
        }
    }

    /// Most messages one call sends.
    pub fn capacity(&self) -> usize {
        self.arrays.capacity()
    }

    /// Sends the first messages of `msgs` (at most [`SendBatch::capacity`]) with one
    /// `sendmmsg` and returns how many the kernel took; the caller sends the rest again.
    ///
    /// An error means the first message was not sent: the bare OS error (e.g.
    /// [`io::ErrorKind::WouldBlock`]; `EIO` for a GSO send the device cannot do;
    /// `EAFNOSUPPORT`/`EINVAL` for a destination of the other family), or
    /// [`io::ErrorKind::InvalidInput`] for a segment size of 0, checked before anything is
    /// sent.
    pub fn send_batch(&mut self, fd: impl AsFd, msgs: &[Datagram<'_>]) -> io::Result<usize> {
        let count = msgs.len().min(self.capacity());
        if count == 0 {
            return Ok(0);
        }
        if msgs[..count].iter().any(|msg| msg.segment_size == Some(0)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "GSO segment size 0",
            ));
        }
        for (i, msg) in msgs.iter().take(count).enumerate() {
            let (addr, name_len) = sockaddr_from(msg.dst);
            self.arrays.addrs[i] = addr;
            let control_len = match msg.segment_size {
                Some(size) => {
                    write_gso_cmsg(&mut self.arrays.controls[i], size);
                    GSO_CMSG_SPACE
                }
                None => 0,
            };
            // The kernel only reads from the payload on send; the iovec type is the same for
            // both directions, hence the mutable pointer.
            self.arrays.set_entry(
                i,
                msg.payload.as_ptr().cast_mut(),
                msg.payload.len(),
                name_len as usize,
                control_len,
            );
        }
        // SAFETY: the first `count` headers point at `count` payloads borrowed from msgs (live
        // for the call, only read by sendmmsg) and at this batch's address and control slots,
        // filled just above with valid lengths.
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_fd().as_raw_fd(),
                self.arrays.headers.as_mut_ptr(),
                count as libc::c_uint,
                0,
            )
        };
        usize::try_from(sent).map_err(|_| io::Error::last_os_error())
    }
}

/// The segment size in a `UDP_GRO` control message among `control`, if there is one.
pub(super) fn gro_segment_size(mut control: &[u8]) -> Option<u16> {
    let level_at = offset_of!(libc::cmsghdr, cmsg_level);
    let type_at = offset_of!(libc::cmsghdr, cmsg_type);
    while control.len() >= CMSG_DATA_OFFSET {
        let len = usize::from_ne_bytes(control.get(..size_of::<usize>())?.try_into().ok()?);
        let level = i32::from_ne_bytes(control.get(level_at..level_at + 4)?.try_into().ok()?);
        let kind = i32::from_ne_bytes(control.get(type_at..type_at + 4)?.try_into().ok()?);
        if len < CMSG_DATA_OFFSET {
            return None;
        }
        if level == libc::SOL_UDP && kind == libc::UDP_GRO {
            let data = control.get(CMSG_DATA_OFFSET..CMSG_DATA_OFFSET + 4)?;
            let size = i32::from_ne_bytes(data.try_into().ok()?);
            return u16::try_from(size).ok();
        }
        control = control.get(len.next_multiple_of(size_of::<usize>())..)?;
    }
    None
}

/// Writes one `UDP_SEGMENT` control message carrying `size` at the start of `control`.
pub(super) fn write_gso_cmsg(control: &mut ControlBuf, size: u16) {
    let bytes = &mut control.0;
    let len = CMSG_DATA_OFFSET + size_of::<u16>();
    let level_at = offset_of!(libc::cmsghdr, cmsg_level);
    let type_at = offset_of!(libc::cmsghdr, cmsg_type);
    bytes[..size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
    bytes[level_at..level_at + 4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
    bytes[type_at..type_at + 4].copy_from_slice(&libc::UDP_SEGMENT.to_ne_bytes());
    bytes[CMSG_DATA_OFFSET..len].copy_from_slice(&size.to_ne_bytes());
}

/// `addr` as the kernel's socket address, and its length.
pub(super) fn sockaddr_from(addr: SocketAddr) -> (SockAddr, libc::socklen_t) {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; all-zero is valid and zeroes sin_zero.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            (SockAddr { v4: sin }, len)
        }
        SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain data; all-zero is valid.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            let len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            (SockAddr { v6: sin6 }, len)
        }
    }
}

/// The IP socket address the kernel wrote into `storage` (`len` bytes), if it is one.
fn socket_addr_from(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, which is smaller than
            // sockaddr_storage and no more aligned.
            let sin = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddrV4::new(ip, u16::from_be(sin.sin_port)).into())
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(&raw const *storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            let flowinfo = u32::from_be(sin6.sin6_flowinfo);
            Some(SocketAddrV6::new(ip, port, flowinfo, sin6.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// Sets a buffer size with the capability-bypassing option, or the capped one without it.
fn set_buffer_size(
    fd: BorrowedFd<'_>,
    forced: libc::c_int,
    capped: libc::c_int,
    bytes: usize,
) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "larger than 2^31 - 1 bytes"))?;
    match set_int_option(fd, libc::SOL_SOCKET, forced, value) {
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
            set_int_option(fd, libc::SOL_SOCKET, capped, value)
        }
        other => other,
    }
}

/// `setsockopt` of one int, returning the bare OS error.
fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is one int, valid for the call.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
