//! The operating-system layer: TUN queues, UDP sockets with batched I/O and segmentation
//! offloads, interface configuration and policy routing rules over rtnetlink, CPU pinning and
//! network namespaces.
//!
//! This is the only module of the crate allowed to contain `unsafe` code. Everything here is a
//! thin wrapper over Linux system calls (through `libc`) that the data path needs and that the
//! standard library does not offer: `ioctl` on `/dev/net/tun`, `sendmmsg`/`recvmmsg` with
//! control messages, raw netlink sockets, `sched_setaffinity`, `unshare`, `prctl`/`mmap`/
//! `madvise` for secrets, and io_uring (through the `io-uring` crate, whose submissions are
//! `unsafe`). Each `unsafe` block
//! carries a `// SAFETY:` comment saying why the call is sound; every public function is safe,
//! takes or returns owned file descriptors ([`std::os::fd::OwnedFd`]) and reports failures as
//! [`std::io::Error`] whose message names the interface, address or core involved.
//!
//! Linux only; the functions that create or configure interfaces need `CAP_NET_ADMIN`.

pub mod affinity;
pub mod alloc_count;
pub mod ethtool;
pub mod netif;
mod netlink;
pub mod netns;
pub mod poll;
pub mod rule;
pub mod secret;
pub mod steer;
pub mod tun;
pub mod udp;
pub mod uring;

#[cfg(test)]
mod netif_tests;
#[cfg(test)]
mod test_packets;
#[cfg(test)]
mod tun_tests;
#[cfg(test)]
mod udp_tests;
#[cfg(test)]
mod uring_tests;

pub use affinity::{allowed_cores, available_cores, pin_current_thread};
pub use alloc_count::CountingAllocator;
pub use netif::{
    add_address, add_route, add_table_route, delete_link, delete_route, delete_table_route, index,
    set_mtu, set_tx_queue_len, set_up,
};
pub use netns::enter_new_netns_for_current_thread;
pub use poll::{Epoll, EventFd, Interest, SignalFd, block_signals};
pub use rule::{Rule, Selector, add_rule, delete_rule};
pub use secret::{SecretPage, is_dumpable, set_non_dumpable};
pub use steer::{steer_by_receiver_index, steered_index};
pub use tun::{TUN_VNET_HDR_LEN, Tun, TunOffloads, TunQueue};
pub use udp::{
    Datagram, MAX_BATCH, RecvBatch, RecvMeta, SendBatch, UdpSocketBuilder, enable_gro, probe_gso,
    set_mark,
};

use std::fmt::Display;
use std::io;

/// The last OS error (`errno`), prefixed with what we were doing, e.g. `"TUNSETIFF rovy0"`.
/// The [`io::ErrorKind`] is kept so callers can still tell "permission denied" from "exists".
fn last_os_error(context: impl Display) -> io::Error {
    with_context(io::Error::last_os_error(), context)
}

/// `err` with `context` prepended to its message, keeping its kind.
fn with_context(err: io::Error, context: impl Display) -> io::Error {
    io::Error::new(err.kind(), format!("{context}: {err}"))
}

/// Turns a libc return value into a result: `-1` becomes the last OS error with `context`.
fn check(ret: libc::c_int, context: impl Display) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(last_os_error(context))
    } else {
        Ok(ret)
    }
}
