//! Multi-queue TUN devices, optionally with the virtio-net header that carries segmentation
//! and checksum offloads.
//!
//! One device, several queues: every queue is its own file descriptor on `/dev/net/tun`
//! (`IFF_MULTI_QUEUE`), the kernel spreads outgoing flows over the queues by hash, and each
//! worker owns one queue. Packets are raw IP (`IFF_NO_PI`: no 4-byte protocol prefix).
//!
//! With `vnet_hdr` every packet read or written is preceded by a 12-byte
//! `virtio_net_hdr_v1` ([`TUN_VNET_HDR_LEN`]) in native byte order. Once offloads are on
//! ([`TunOffloads`]) the kernel may hand us TCP/UDP super-packets of up to 64 KB with a partial
//! checksum, described by that header, and accepts the same from us: the basis for moving many
//! packets per system call. Without offloads the header is still there, with no GSO and no
//! checksum flags.
//!
//! The device exists as long as one of its queues is open (it is not made persistent), so a
//! crashed daemon leaves no interface behind.

use std::ffi::c_int;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::netif::interface_name;
use super::{check, with_context};

/// Size of the `virtio_net_hdr_v1` that precedes every packet on a queue created with
/// `vnet_hdr`: flags, gso_type (u8 each), hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers (u16 each).
pub const TUN_VNET_HDR_LEN: usize = 12;

/// Most queues one TUN device may have (the kernel's `MAX_TAP_QUEUES`).
const MAX_QUEUES: usize = 256;

/// Creates TUN devices; the device itself is represented by its queues.
#[derive(Debug)]
pub enum Tun {}

/// Offloads the kernel accepted for a TUN device (`TUNSETOFFLOAD`), probed at creation.
///
/// Each one is a promise about what may cross the queue in either direction: with `csum`, packets
/// may carry a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`); with `tso4`/`tso6`, TCP
/// super-packets with a GSO header; with `uso4`/`uso6`, UDP super-packets. A caller that cannot
/// handle one turns it off with [`TunQueue::set_offloads`] and the kernel does that work itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunOffloads {
    /// Checksum offload (`TUN_F_CSUM`); every other offload requires it.
    pub csum: bool,
    /// TCP segmentation over IPv4 (`TUN_F_TSO4`).
    pub tso4: bool,
    /// TCP segmentation over IPv6 (`TUN_F_TSO6`).
    pub tso6: bool,
    /// UDP segmentation over IPv4 (`TUN_F_USO4`, Linux 6.2 and later).
    pub uso4: bool,
    /// UDP segmentation over IPv6 (`TUN_F_USO6`, Linux 6.2 and later).
    pub uso6: bool,
}

impl TunOffloads {
    /// Nothing offloaded: the kernel segments and checksums everything itself.
    pub const NONE: Self = Self {
        csum: false,
        tso4: false,
        tso6: false,
        uso4: false,
        uso6: false,
    };
    /// Checksum offload only.
    pub const CSUM: Self = Self {
        csum: true,
        ..Self::NONE
    };
    /// Checksum and TCP segmentation: what every kernel with vnet headers accepts.
    pub const TSO: Self = Self {
        tso4: true,
        tso6: true,
        ..Self::CSUM
    };
    /// Everything we can use: checksum, TCP and UDP segmentation.
    pub const ALL: Self = Self {
        uso4: true,
        uso6: true,
        ..Self::TSO
    };

    /// The `TUN_F_*` bits for `TUNSETOFFLOAD`.
    fn tun_flags(self) -> libc::c_uint {
        [
            (self.csum, libc::TUN_F_CSUM),
            (self.tso4, libc::TUN_F_TSO4),
            (self.tso6, libc::TUN_F_TSO6),
            (self.uso4, libc::TUN_F_USO4),
            (self.uso6, libc::TUN_F_USO6),
        ]
        .into_iter()
        .filter(|&(on, _)| on)
        .fold(0, |flags, (_, bit)| flags | bit)
    }
}

impl Tun {
    /// Creates the TUN interface `name` with `queues` queues and returns them; with `vnet_hdr`,
    /// also sets the 12-byte virtio header and switches on every offload the kernel accepts
    /// (see [`TunQueue::offloads`]).
    ///
    /// Never attaches to an existing interface: the first queue is opened with `IFF_TUN_EXCL`,
    /// so if any interface called `name` exists (a stale TUN, another program's device, a NIC)
    /// this fails with [`io::ErrorKind::AlreadyExists`] rather than sharing its traffic. The
    /// following queues attach to the device the first one just created.
    ///
    /// Needs `CAP_NET_ADMIN`. The device disappears when the last queue is dropped.
    pub fn create(name: &str, queues: usize, vnet_hdr: bool) -> io::Result<Vec<TunQueue>> {
        let ifr_name = interface_name(name)?;
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("create TUN {name}: {queues} queues asked, 1 to {MAX_QUEUES} possible"),
            ));
        }
        let mut flags = libc::IFF_TUN | libc::IFF_NO_PI | libc::IFF_MULTI_QUEUE;
        if vnet_hdr {
            flags |= libc::IFF_VNET_HDR;
        }

        let first = open_queue(&ifr_name, flags | libc::IFF_TUN_EXCL).map_err(|err| {
            if err.raw_os_error() == Some(libc::EBUSY) {
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "create TUN {name}: an interface with this name already exists \
                         (not attaching to a device we did not create)"
                    ),
                )
            } else {
                with_context(err, format!("create TUN {name}"))
            }
        })?;
        let offloads = if vnet_hdr {
            set_vnet_hdr_size(first.fd.as_fd(), name)?;
            probe_offloads(first.fd.as_fd(), name)?
        } else {
            TunOffloads::NONE
        };

        let mut all = Vec::with_capacity(queues);
        let real_name = first.name;
        all.push(TunQueue {
            fd: first.fd,
            name: real_name.clone(),
            vnet_hdr,
            offloads,
        });
        let real_ifr_name = interface_name(&real_name)?;
        for queue in 1..queues {
            let opened = open_queue(&real_ifr_name, flags).map_err(|err| {
                with_context(err, format!("attach queue {queue} to TUN {real_name}"))
            })?;
            all.push(TunQueue {
                fd: opened.fd,
                name: real_name.clone(),
                vnet_hdr,
                offloads,
            });
        }
        Ok(all)
    }
}

/// One queue of a TUN device: a file descriptor that reads the packets the kernel routes to the
/// interface and writes packets the kernel receives from it.
///
/// Blocking by default; [`TunQueue::set_nonblocking`] makes it usable with epoll or io_uring.
/// `read` and `write` return the bare OS error (no message allocated on the packet path; a
/// non-blocking queue with nothing to read reports [`io::ErrorKind::WouldBlock`]).
#[derive(Debug)]
pub struct TunQueue {
    fd: OwnedFd,
    name: String,
    vnet_hdr: bool,
    offloads: TunOffloads,
}

impl TunQueue {
    /// The interface name, as the kernel registered it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether every packet carries a [`TUN_VNET_HDR_LEN`]-byte virtio header.
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// The offloads in force for the device, as probed at creation or last set through this
    /// queue. All off without a vnet header.
    pub fn offloads(&self) -> TunOffloads {
        self.offloads
    }

    /// Reads one packet (with its virtio header if the queue has one) into `buf` and returns
    /// its length. A packet longer than `buf` is cut to fit without any sign but its IP length
    /// field, so size buffers for the MTU, or for 64 KB plus the header with offloads on.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the kernel writes at most buf.len() bytes into buf, which is valid and
        // exclusively borrowed for the duration of the call.
        let ret = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        byte_count(ret)
    }

    /// Writes one packet (preceded by its virtio header if the queue has one) and returns the
    /// number of bytes the kernel took, which is all of them on success.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: the kernel reads at most buf.len() bytes from buf, valid for the call.
        let ret = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        byte_count(ret)
    }

    /// Switches `O_NONBLOCK` on or off for this queue only.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        let context = || format!("set O_NONBLOCK on a queue of TUN {}", self.name);
        // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
        let flags = check(
            unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GETFL) },
            context(),
        )?;
        let flags = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        // SAFETY: F_SETFL takes an int of flags and touches no memory of ours.
        let ret = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_SETFL, flags) };
        check(ret, context()).map(drop)
    }

    /// Sets the device's offloads (they apply to every queue) and records them on this queue
    /// only: change them before handing the queues out, or tell the other queues' owners.
    /// Fails with [`io::ErrorKind::InvalidInput`] if the queue has no vnet header or the kernel
    /// refuses the combination (TSO and USO need `csum`; USO needs Linux 6.2).
    pub fn set_offloads(&mut self, offloads: TunOffloads) -> io::Result<()> {
        if !self.vnet_hdr && offloads != TunOffloads::NONE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TUN {}: offloads need a vnet header", self.name),
            ));
        }
        set_offload(self.fd.as_fd(), offloads).map_err(|err| {
            with_context(
                err,
                format!("TUNSETOFFLOAD {offloads:?} on TUN {}", self.name),
            )
        })?;
        self.offloads = offloads;
        Ok(())
    }
}

impl AsFd for TunQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TunQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<TunQueue> for OwnedFd {
    fn from(queue: TunQueue) -> Self {
        queue.fd
    }
}

/// A queue file descriptor with the name the kernel gave its device.
struct OpenedQueue {
    fd: OwnedFd,
    name: String,
}

/// Opens `/dev/net/tun` and binds the descriptor to the device with `TUNSETIFF`, whose
/// failure is returned bare so the caller can tell `EBUSY` apart.
fn open_queue(ifr_name: &[libc::c_char; libc::IFNAMSIZ], flags: c_int) -> io::Result<OpenedQueue> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|err| with_context(err, "open /dev/net/tun"))?;
    let fd = OwnedFd::from(file);
    // SAFETY: ifreq is plain old data (a name array and a union of integers and pointers);
    // all-zero is its conventional initial value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name = *ifr_name;
    // The TUN flags fit in the 16-bit ifr_flags; IFF_TUN_EXCL is its top bit.
    ifr.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes back one struct ifreq, which `ifr` is, for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = ifr
        .ifr_name
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(ifr.ifr_name.len());
    let bytes: Vec<u8> = ifr.ifr_name[..len].iter().map(|&c| c as u8).collect();
    Ok(OpenedQueue {
        fd,
        name: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Sets the virtio header size to 12 bytes (`virtio_net_hdr_v1` with `num_buffers`), the
/// layout that carries UDP segmentation; the kernel's default of 10 lacks the last field.
fn set_vnet_hdr_size(fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let size = TUN_VNET_HDR_LEN as c_int;
    // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) };
    check(ret, format!("TUNSETVNETHDRSZ {size} on TUN {name}")).map(drop)
}

/// Switches on the largest set of offloads the kernel accepts, trying checksum, then TSO, then
/// USO; a kernel that does not know a flag refuses the whole request with `EINVAL` and keeps
/// the previous setting, so the last accepted set is the one in force.
fn probe_offloads(fd: BorrowedFd<'_>, name: &str) -> io::Result<TunOffloads> {
    let mut accepted = TunOffloads::NONE;
    for candidate in [TunOffloads::CSUM, TunOffloads::TSO, TunOffloads::ALL] {
        match set_offload(fd, candidate) {
            Ok(()) => accepted = candidate,
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => break,
            Err(err) => {
                return Err(with_context(
                    err,
                    format!("TUNSETOFFLOAD {candidate:?} on TUN {name}"),
                ));
            }
        }
    }
    Ok(accepted)
}

fn set_offload(fd: BorrowedFd<'_>, offloads: TunOffloads) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value, not through a pointer.
    let ret = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            libc::c_ulong::from(offloads.tun_flags()),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A `read`/`write` return value as a byte count, or the bare OS error.
fn byte_count(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}
