//! io_uring for the data path: one ring per worker, a pool of fixed-size packet buffers the
//! kernel reads into and writes from, and completions that hand each buffer back.
//!
//! Ownership of a buffer is a [`Buf`] token (neither `Copy` nor `Clone`): [`PacketRing::alloc`]
//! hands one out, an operation (`read`, `write`, `recv`, `send`) takes it for as long as the
//! kernel may touch the memory, and the operation's [`Completion`] gives it back. Only the holder
//! of a token can reach the bytes ([`PacketRing::buf_mut`]), so the kernel and our code never
//! share a buffer. Behind the tokens a state per buffer is checked as well, so even a token
//! misused on another ring cannot reach memory the kernel owns. Recycling is a stack of free
//! indices: no locks, no allocation.
//!
//! Files are registered with the ring once ([`PacketRing::new`]) and named by their slot in
//! that list; the ring holds its own reference to each, so no operation can land on a
//! descriptor number that was closed and reused.
//!
//! Every submission queue entry made here points only at the ring's own pool: a buffer and its
//! message slot (`msghdr`, `iovec`, socket address). The ring is sized for one operation per
//! buffer plus one poll per file, so the queues never overflow; dropping the ring cancels what
//! is still in flight and waits for it before the memory is freed.
//!
//! This module holds the buffer tokens, the operations and their completions; creating the
//! ring and its pool, and cancelling and draining before the pool is freed, are in
//! `lifecycle`, the one place that decides how long the kernel's memory lives.

mod lifecycle;

pub use lifecycle::{MAX_BUFFERS, probe};

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::ptr::NonNull;

use io_uring::{IoUring, opcode, squeue, types};

use super::udp::{
    CONTROL_LEN, ControlBuf, GSO_CMSG_SPACE, RecvMeta, SockAddr, gro_segment_size, sockaddr_from,
    write_gso_cmsg,
};

/// A buffer of a [`PacketRing`] held by the caller (see the module documentation).
#[derive(Debug)]
pub struct Buf(u32);

impl Buf {
    /// The buffer's index in its ring's pool.
    pub fn index(&self) -> usize {
        self.0 as usize
    }
}

/// A finished operation and the buffer it gives back.
#[derive(Debug)]
pub enum Completion {
    /// [`PacketRing::read`]: bytes read into the range asked for.
    Read {
        /// The buffer read into.
        buf: Buf,
        /// Bytes read, or the OS error.
        result: io::Result<usize>,
    },
    /// [`PacketRing::write`]: bytes written.
    Write {
        /// The buffer written from.
        buf: Buf,
        /// Bytes written, or the OS error.
        result: io::Result<usize>,
    },
    /// [`PacketRing::recv`]: one datagram (or, with GRO on, a super-buffer of them) at the
    /// start of the buffer.
    Recv {
        /// The file slot of the socket.
        file: u32,
        /// The buffer received into.
        buf: Buf,
        /// What arrived, or the OS error (`InvalidData` for a sender that is not IP).
        result: io::Result<RecvMeta>,
    },
    /// [`PacketRing::send`]: bytes sent.
    Send {
        /// The buffer sent from.
        buf: Buf,
        /// Bytes sent, or the OS error.
        result: io::Result<usize>,
    },
    /// [`PacketRing::poll_readable`]: the file is readable (or the poll failed).
    Poll {
        /// The file slot polled.
        file: u32,
        /// Readiness, or the OS error.
        result: io::Result<()>,
    },
}

/// What kind of operation a completion belongs to: the top byte of its `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    Read = 1,
    Write = 2,
    Recv = 3,
    Send = 4,
    Poll = 5,
    Cancel = 6,
}

impl Op {
    fn from_code(code: u64) -> Option<Op> {
        [
            Op::Read,
            Op::Write,
            Op::Recv,
            Op::Send,
            Op::Poll,
            Op::Cancel,
        ]
        .into_iter()
        .find(|op| *op as u64 == code)
    }
}

/// `user_data`: op in bits 48..56, file slot in 32..48, buffer index in 0..32. Unique per
/// operation in flight (a buffer has at most one, a file at most one poll), so it also names
/// the operation to cancel.
fn user_data(op: Op, file: u32, buf: u32) -> u64 {
    (op as u64) << 48 | u64::from(file & 0xffff) << 32 | u64::from(buf)
}

fn decode(user_data: u64) -> (Option<Op>, u32, u32) {
    (
        Op::from_code(user_data >> 48),
        (user_data >> 32) as u32 & 0xffff,
        user_data as u32,
    )
}

/// A CQE result as a count or the OS error (no allocation either way).
fn count(result: i32) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::from_raw_os_error(result.saturating_neg()))
}

/// Where a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BufState {
    /// On the free stack.
    Free,
    /// With the caller, behind its [`Buf`].
    Held,
    /// In an operation with this `user_data`.
    InFlight(u64),
}

/// The message header of one buffer's `recvmsg`/`sendmsg`, pointing at its own `iovec`,
/// address and control buffer (a `UDP_GRO` segment size received, a `UDP_SEGMENT` one sent).
/// Lives in the pool next to its buffer, so the kernel may read and write it while the
/// operation runs.
#[repr(C)]
struct MsgSlot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    addr: SockAddr,
    control: ControlBuf,
}

/// One io_uring with a pool of packet buffers (see the module documentation).
pub struct PacketRing {
    ring: IoUring,
    files: u32,
    buf_len: usize,
    /// `count * buf_len` bytes from a leaked `Box<[u8]>`; freed by `Drop` once nothing is in
    /// flight. Only reached through raw pointers, so no reference ever covers a buffer the
    /// kernel owns.
    memory: NonNull<[u8]>,
    /// One message slot per buffer, from a leaked `Box<[MsgSlot]>`, same rules as `memory`.
    slots: NonNull<[MsgSlot]>,
    states: Box<[BufState]>,
    free: Vec<u32>,
    /// Whether a poll is armed on each file slot.
    polled: Box<[bool]>,
    /// Submitted operations (cancellations included) whose completion is not yet reaped.
    in_flight: usize,
}

impl std::fmt::Debug for PacketRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketRing")
            .field("files", &self.files)
            .field("buffers", &self.states.len())
            .field("buf_len", &self.buf_len)
            .field("free", &self.free.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl PacketRing {
    /// Bytes per buffer.
    pub fn buf_len(&self) -> usize {
        self.buf_len
    }

    /// Buffers on the free stack.
    pub fn free_buffers(&self) -> usize {
        self.free.len()
    }

    /// A free buffer, if there is one. Its contents are whatever its last use left.
    pub fn alloc(&mut self) -> Option<Buf> {
        let index = self.free.pop()?;
        self.states[index as usize] = BufState::Held;
        Some(Buf(index))
    }

    /// Puts `buf` back on the free stack.
    pub fn release(&mut self, buf: Buf) {
        let index = buf.0 as usize;
        if self.states.get(index) == Some(&BufState::Held) {
            self.states[index] = BufState::Free;
            self.free.push(buf.0);
        }
    }

    /// The whole of `buf` (empty for a token that is not this ring's to give).
    pub fn buf_mut(&mut self, buf: &Buf) -> &mut [u8] {
        let index = buf.0 as usize;
        if self.states.get(index) != Some(&BufState::Held) {
            return &mut [];
        }
        // SAFETY: buffer `index` lies within the pool (states has one entry per buffer) and is
        // Held, so no operation of the kernel covers it; `&mut self` keeps any other reference
        // into the pool from existing while this one lives.
        unsafe { std::slice::from_raw_parts_mut(self.buf_ptr(index), self.buf_len) }
    }

    /// Copies `range` of `from` to the start of `to`, two buffers held by the caller. Fails
    /// with [`io::ErrorKind::InvalidInput`] for a token that is not held, the same buffer
    /// twice, or a range outside the buffer.
    pub fn copy_between(&mut self, from: &Buf, range: Range<usize>, to: &Buf) -> io::Result<()> {
        let held = |buf: &Buf| self.states.get(buf.index()) == Some(&BufState::Held);
        if !held(from)
            || !held(to)
            || from.0 == to.0
            || range.start > range.end
            || range.end > self.buf_len
        {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: both buffers lie within the pool, are Held (no operation of the kernel
        // covers them) and are distinct, so the ranges do not overlap; the range was checked
        // to lie within a buffer, and `&mut self` keeps any other reference out of the pool.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.buf_ptr(from.index()).add(range.start),
                self.buf_ptr(to.index()),
                range.end - range.start,
            );
        }
        Ok(())
    }

    /// Reads from file slot `file` into `range` of `buf`, as `read(2)` does.
    pub fn read(&mut self, file: u32, buf: Buf, range: Range<usize>) -> io::Result<()> {
        let index = self.begin(&buf, file, &range)?;
        let len = (range.end - range.start) as u32;
        let entry = opcode::Read::new(
            types::Fixed(file),
            self.buf_ptr(index).wrapping_add(range.start),
            len,
        )
        .offset(u64::MAX)
        .build();
        self.submit_op(buf, Op::Read, file, entry)
    }

    /// Writes `range` of `buf` to file slot `file`, as `write(2)` does.
    pub fn write(&mut self, file: u32, buf: Buf, range: Range<usize>) -> io::Result<()> {
        let index = self.begin(&buf, file, &range)?;
        let len = (range.end - range.start) as u32;
        let entry = opcode::Write::new(
            types::Fixed(file),
            self.buf_ptr(index).wrapping_add(range.start).cast_const(),
            len,
        )
        .offset(u64::MAX)
        .build();
        self.submit_op(buf, Op::Write, file, entry)
    }

    /// Receives one datagram from socket slot `file` into the whole of `buf`.
    pub fn recv(&mut self, file: u32, buf: Buf) -> io::Result<()> {
        let index = self.begin(&buf, file, &(0..self.buf_len))?;
        let slot = self.set_msg(
            index,
            0..self.buf_len,
            size_of::<SockAddr>() as libc::socklen_t,
            CONTROL_LEN,
        );
        let entry = opcode::RecvMsg::new(types::Fixed(file), slot).build();
        self.submit_op(buf, Op::Recv, file, entry)
    }

    /// Sends `buf[range]` to `dst` from socket slot `file`: as one datagram,
    /// or with `segment_size` as consecutive datagrams of that size, the last possibly shorter
    /// (UDP GSO, see [`super::udp::Datagram::segment_size`]). A segment size of 0 is refused
    /// with [`io::ErrorKind::InvalidInput`] and the buffer goes back to the free stack.
    pub fn send(
        &mut self,
        file: u32,
        buf: Buf,
        range: Range<usize>,
        dst: SocketAddr,
        segment_size: Option<u16>,
    ) -> io::Result<()> {
        if segment_size == Some(0) {
            self.release(buf);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "GSO segment size 0",
            ));
        }
        let index = self.begin(&buf, file, &range)?;
        let (addr, name_len) = sockaddr_from(dst);
        let control_len = segment_size.map_or(0, |_| GSO_CMSG_SPACE);
        let slot = self.set_msg(index, range, name_len, control_len);
        // SAFETY: the slot belongs to buffer `index`, which `begin` checked is ours (Held), so
        // the kernel is not using it; we write through the raw pointer without a reference.
        unsafe {
            let slot = self.slot_ptr(index);
            (*slot).addr = addr;
            if let Some(size) = segment_size {
                write_gso_cmsg(&mut (*slot).control, size);
            }
        }
        let entry = opcode::SendMsg::new(types::Fixed(file), slot.cast_const()).build();
        self.submit_op(buf, Op::Send, file, entry)
    }

    /// Arms a one-shot poll for readability on file slot `file`. At most one per file: asking
    /// again while one is armed changes nothing.
    pub fn poll_readable(&mut self, file: u32) -> io::Result<()> {
        let Some(polled) = self.polled.get(file as usize).copied() else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        if polled {
            return Ok(());
        }
        let entry = opcode::PollAdd::new(types::Fixed(file), libc::POLLIN as u32)
            .build()
            .user_data(user_data(Op::Poll, file, 0));
        self.push(&entry)?;
        self.polled[file as usize] = true;
        Ok(())
    }

    /// Submits everything queued and waits until at least `want` completions are ready. An
    /// interrupted wait returns early without error.
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        match self.ring.submit_and_wait(want) {
            Err(err) if matches!(err.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The next completion, if one is ready.
    pub fn completion(&mut self) -> Option<Completion> {
        loop {
            let cqe = self.ring.completion().next()?;
            self.in_flight = self.in_flight.saturating_sub(1);
            let (op, file, index) = decode(cqe.user_data());
            let result = cqe.result();
            let op = match op {
                Some(Op::Poll) => {
                    if let Some(polled) = self.polled.get_mut(file as usize) {
                        *polled = false;
                    }
                    let result = count(result).map(drop);
                    return Some(Completion::Poll { file, result });
                }
                Some(Op::Cancel) | None => continue,
                Some(op) => op,
            };
            let Some(state) = self.states.get_mut(index as usize) else {
                continue;
            };
            if *state != BufState::InFlight(cqe.user_data()) {
                continue;
            }
            *state = BufState::Held;
            let buf = Buf(index);
            return Some(match op {
                Op::Read => Completion::Read {
                    buf,
                    result: count(result),
                },
                Op::Write => Completion::Write {
                    buf,
                    result: count(result),
                },
                Op::Send => Completion::Send {
                    buf,
                    result: count(result),
                },
                _ => Completion::Recv {
                    file,
                    result: count(result).and_then(|len| self.recv_meta(index as usize, len)),
                    buf,
                },
            });
        }
    }

    /// What the kernel wrote into the message slot of buffer `index` for a datagram of `len`.
    fn recv_meta(&self, index: usize, len: usize) -> io::Result<RecvMeta> {
        // SAFETY: the receive into buffer `index` has completed (its state is Held again), so
        // the kernel no longer writes its slot; we copy the fields out by value.
        let (name_len, flags, addr, control_len, control) = unsafe {
            let slot = self.slot_ptr(index);
            let hdr = &raw const (*slot).hdr;
            (
                (*hdr).msg_namelen,
                (*hdr).msg_flags,
                (*slot).addr,
                (*hdr).msg_controllen,
                (*slot).control,
            )
        };
        let src = addr
            .written(name_len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(RecvMeta {
            len,
            src,
            gro_segment_size: gro_segment_size(&control.0[..control_len.min(CONTROL_LEN)]),
            truncated: flags & libc::MSG_TRUNC != 0,
        })
    }

    /// Checks that `buf` is held and `range` and `file` are valid, and returns its index. On
    /// error the buffer goes back to the free stack.
    fn begin(&mut self, buf: &Buf, file: u32, range: &Range<usize>) -> io::Result<usize> {
        let index = buf.0 as usize;
        if self.states.get(index) != Some(&BufState::Held) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        if file >= self.files || range.start > range.end || range.end > self.buf_len {
            self.states[index] = BufState::Free;
            self.free.push(buf.0);
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        Ok(index)
    }

    /// Queues `entry` as `op` on `buf`; on failure the buffer goes back to the free stack.
    fn submit_op(&mut self, buf: Buf, op: Op, file: u32, entry: squeue::Entry) -> io::Result<()> {
        let index = buf.0 as usize;
        let data = user_data(op, file, buf.0);
        self.states[index] = BufState::InFlight(data);
        match self.push(&entry.user_data(data)) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.states[index] = BufState::Free;
                self.free.push(buf.0);
                Err(err)
            }
        }
    }

    /// Puts `entry` on the submission queue, flushing the queue to the kernel first if it is
    /// full (which the sizing rules out in normal operation).
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        for _ in 0..2 {
            // SAFETY: every entry built by this type points only into the pool, at the buffer
            // and message slot of a buffer marked InFlight (or at nothing: polls, cancels).
            // That memory stays allocated and untouched by our code until the operation's
            // completion is reaped, and Drop waits for every completion before freeing it.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.in_flight += 1;
                return Ok(());
            }
            self.ring.submit()?;
        }
        Err(io::Error::from(io::ErrorKind::WouldBlock))
    }

    /// Points the message header of buffer `index` at `range` of its buffer (checked by
    /// `begin` to lie within it), its address
    /// (`name_len` bytes), its `iovec` and `control_len` bytes of its control buffer (none
    /// for 0), and returns it.
    fn set_msg(
        &mut self,
        index: usize,
        range: Range<usize>,
        name_len: libc::socklen_t,
        control_len: usize,
    ) -> *mut libc::msghdr {
        let base = self.buf_ptr(index).wrapping_add(range.start);
        let len = range.end - range.start;
        let slot = self.slot_ptr(index);
        // SAFETY: slot `index` is within the slot array and belongs to a buffer we hold, so the
        // kernel is not using it; the fields are written through the raw pointer and point at
        // the slot's own iovec and address, which stay put (the slot array never moves).
        unsafe {
            (*slot).iov = libc::iovec {
                iov_base: base.cast(),
                iov_len: len,
            };
            let hdr = &raw mut (*slot).hdr;
            (*hdr).msg_name = (&raw mut (*slot).addr).cast();
            (*hdr).msg_namelen = name_len;
            (*hdr).msg_iov = &raw mut (*slot).iov;
            (*hdr).msg_iovlen = 1;
            (*hdr).msg_control = if control_len == 0 {
                std::ptr::null_mut()
            } else {
                (&raw mut (*slot).control).cast()
            };
            (*hdr).msg_controllen = control_len;
            (*hdr).msg_flags = 0;
            hdr
        }
    }

    fn buf_ptr(&self, index: usize) -> *mut u8 {
        self.memory
            .cast::<u8>()
            .as_ptr()
            .wrapping_add(index * self.buf_len)
    }

    fn slot_ptr(&self, index: usize) -> *mut MsgSlot {
        self.slots.cast::<MsgSlot>().as_ptr().wrapping_add(index)
    }
}
