//! Network namespaces.
//!
//! Tests that create interfaces run in a namespace of their own so that nothing they create is
//! visible to the host and nothing is left behind when they fail: the namespace lives exactly as
//! long as the thread (and the sockets and TUN descriptors it opened) and is freed by the kernel
//! when the last of them goes away. No `ip netns` bookkeeping, no cleanup code.

use std::io;

use super::check;

/// Moves the calling thread (only it) into a new, empty network namespace with its loopback
/// interface down.
///
/// Other threads of the process keep their namespace: Linux keeps namespace membership per task
/// and `unshare` changes only the caller. Sockets, TUN devices and netlink requests created by
/// this thread afterwards live in the new namespace; child processes it spawns inherit it. There
/// is no way back for the thread, so call this on a thread made for the purpose.
///
/// Needs `CAP_SYS_ADMIN`.
pub fn enter_new_netns_for_current_thread() -> io::Result<()> {
    // SAFETY: unshare takes a flag word and touches no memory of ours. CLONE_NEWNET only
    // replaces the calling task's network namespace; file descriptors already open keep theirs.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    check(ret, "unshare(CLONE_NEWNET)").map(drop)
}
