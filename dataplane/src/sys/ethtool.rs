//! The one ethtool question `rovy-fast tune` asks of an uplink: whether generic receive offload
//! is on. GRO lets the kernel hand a UDP socket with `UDP_GRO` a whole train of datagrams per
//! read, and that is where the node's receive side gets its packet rate. Asked with the legacy
//! `ETHTOOL_GGRO` command of `SIOCETHTOOL`, which every kernel since 2.6.30 answers for any
//! interface, without netlink's string sets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::check;
use super::netif::interface_name;

/// `ETHTOOL_GGRO` from `linux/ethtool.h`.
const ETHTOOL_GGRO: u32 = 0x2b;

/// `struct ethtool_value`: a command and its one value.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// Whether generic receive offload is on for interface `name` (in this thread's namespace).
pub fn gro_enabled(name: &str) -> io::Result<bool> {
    let context = format!("read GRO setting of {name}");
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GGRO,
        data: 0,
    };
    // SAFETY: an all-zero ifreq is a valid value of the plain C struct.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    request.ifr_name = interface_name(name)?;
    request.ifr_ifru.ifru_data = (&raw mut value).cast();
    // SAFETY: socket takes integers and returns a new descriptor or -1.
    let fd = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) },
        format_args!("{context}: socket"),
    )?;
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: request names the interface and points at `value`, both live for the call; the
    // kernel writes only `value.data`.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL, &raw mut request) };
    check(ret, &context)?;
    Ok(value.data != 0)
}
