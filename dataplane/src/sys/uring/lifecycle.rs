//! Setting a [`PacketRing`] up and tearing it down: probing the kernel, creating the ring,
//! registering its files and allocating the pool the kernel reads and writes; then cancelling
//! and draining whatever is still in flight, which must finish before that pool may be freed.
//!
//! Kept apart from the buffer and operation bookkeeping in the parent module because this is
//! where the pool's lifetime is decided: memory is leaked into raw pointers here and only
//! handed back to the allocator here, once the kernel is known to be done with it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use io_uring::{IoUring, opcode, types};

use super::{BufState, MsgSlot, Op, PacketRing, user_data};
use crate::sys::with_context;

/// The opcodes the data path submits, with their names for the error message.
const NEEDED_OPCODES: [(u8, &str); 6] = [
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::RecvMsg::CODE, "RECVMSG"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
];

/// Most buffers one ring manages (indices travel in 32 bits of `user_data`, the ring size is a
/// power of two the kernel caps at 32768 entries).
pub const MAX_BUFFERS: usize = 8192;

/// How long dropping a ring waits for cancelled operations, in 100 ms rounds, before it gives
/// up and leaks the pool rather than free memory the kernel might still write.
const DRAIN_ROUNDS: usize = 50;

/// Whether this kernel lets us use io_uring for the data path: a ring can be created (not
/// refused by `kernel.io_uring_disabled` or a seccomp filter) and supports every opcode the
/// workers submit. The error says which of these failed.
pub fn probe() -> io::Result<()> {
    let ring = IoUring::new(2).map_err(|err| with_context(err, "io_uring_setup"))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|err| with_context(err, "io_uring_register(PROBE)"))?;
    let missing: Vec<&str> = NEEDED_OPCODES
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("io_uring lacks {}", missing.join(", ")),
        ))
    }
}

impl PacketRing {
    /// A ring with `files` registered (slot `i` is `files[i]`) and `buffers` buffers of
    /// `buf_len` bytes, all free.
    ///
    /// Uses deferred, single-issuer task running where the kernel has it (Linux 6.1), so
    /// completions are processed only when this thread waits: the ring must be used by the
    /// thread that created it.
    pub fn new(files: &[BorrowedFd<'_>], buffers: usize, buf_len: usize) -> io::Result<Self> {
        if !(1..=MAX_BUFFERS).contains(&buffers) || buf_len == 0 || files.len() > 0xffff {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "io_uring packet ring: {buffers} buffers of {buf_len} bytes on {} files",
                    files.len()
                ),
            ));
        }
        let entries = u32::try_from((buffers + files.len()).next_power_of_two())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(entries)
            .or_else(|_| IoUring::builder().setup_coop_taskrun().build(entries))
            .or_else(|_| IoUring::new(entries))
            .map_err(|err| with_context(err, format_args!("io_uring_setup({entries})")))?;
        let raw: Vec<i32> = files.iter().map(AsRawFd::as_raw_fd).collect();
        if !raw.is_empty() {
            ring.submitter()
                .register_files(&raw)
                .map_err(|err| with_context(err, "io_uring_register(FILES)"))?;
        }
        let bytes = buffers
            .checked_mul(buf_len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let memory = NonNull::from(Box::leak(vec![0u8; bytes].into_boxed_slice()));
        let slots: Box<[MsgSlot]> = (0..buffers)
            // SAFETY: MsgSlot is plain data (integers, pointers, a union of socket addresses);
            // all-zero is a valid, empty value, and its pointers are set before any use.
            .map(|_| unsafe { std::mem::zeroed::<MsgSlot>() })
            .collect();
        let slots = NonNull::from(Box::leak(slots));
        Ok(PacketRing {
            ring,
            files: files.len() as u32,
            buf_len,
            memory,
            slots,
            states: vec![BufState::Free; buffers].into_boxed_slice(),
            free: (0..buffers as u32).rev().collect(),
            polled: vec![false; files.len()].into_boxed_slice(),
            in_flight: 0,
        })
    }

    /// Cancels every operation in flight and reaps completions until none is left. False if
    /// the kernel did not finish them in time.
    fn cancel_all(&mut self) -> bool {
        let targets = self.states.iter().filter_map(|state| match state {
            BufState::InFlight(data) => Some(*data),
            _ => None,
        });
        let polls = self
            .polled
            .iter()
            .enumerate()
            .filter(|(_, polled)| **polled)
            .map(|(file, _)| user_data(Op::Poll, file as u32, 0));
        let targets: Vec<u64> = targets.chain(polls).collect();
        for target in targets {
            let cancel = opcode::AsyncCancel::new(target)
                .build()
                .user_data(user_data(Op::Cancel, 0, 0));
            if self.push(&cancel).is_err() {
                return false;
            }
        }
        let timeout = types::Timespec::new().nsec(100_000_000);
        let args = types::SubmitArgs::new().timespec(&timeout);
        for _ in 0..DRAIN_ROUNDS {
            while self.completion().is_some() {}
            if self.in_flight == 0 {
                return true;
            }
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(err) if matches!(err.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        if self.in_flight > 0 && !self.cancel_all() {
            // The kernel may still write into the pool: leaking it is the only safe choice.
            return;
        }
        // SAFETY: both came from Box::leak in `new` and nothing is in flight, so neither the
        // kernel nor any reference of ours points into them any more.
        unsafe {
            drop(Box::from_raw(self.memory.as_ptr()));
            drop(Box::from_raw(self.slots.as_ptr()));
        }
    }
}
