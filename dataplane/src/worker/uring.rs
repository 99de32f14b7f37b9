//! The io_uring backend of the worker: the same pipeline as the readiness backend, with the
//! system calls replaced by operations on one ring.
//!
//! Reads on the TUN and receives on every UDP socket are kept outstanding; each completion is
//! handled in place in its buffer and turned into the next operation on that same buffer: a TUN
//! packet is sealed and sent, a datagram is opened and written to the TUN. A buffer goes back
//! to the pool when its last operation completes, and the next round re-arms reads and receives
//! from the pool. Everything queued while handling completions goes to the kernel with one
//! `io_uring_enter` per loop iteration, which also waits for the next completion.
//!
//! With a vnet-header TUN the loop takes the offload path instead (`uring_offload`): larger
//! buffers, no TUN reads or writes on the ring, GSO sends and GRO receives.

use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;

use super::Worker;
use super::dispatch::ReceivedSink;
use super::offload::{SocketOffloads, super_buf_len};
use super::uring_offload::UringOffload;
use crate::DropReason;
use crate::buf::{PACKET_AT, buffer_len, packet_room};
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::peer::Sealed;
use crate::sys::RecvMeta;
use crate::sys::uring::{Buf, Completion, PacketRing};

/// TUN reads kept outstanding.
const TUN_READS: usize = 32;
/// Receives kept outstanding per UDP socket.
const RECVS_PER_SOCKET: usize = 32;
/// Buffers beyond the outstanding reads and receives: the sends and TUN writes in flight.
const SPARE_BUFFERS: usize = 64;
/// On the offload path (64 KB buffers): receives kept outstanding per UDP socket.
const OFFLOAD_RECVS_PER_SOCKET: usize = 16;
/// On the offload path: buffers for the GSO sends in flight.
const OFFLOAD_SPARE_BUFFERS: usize = 32;

/// Registered file slots: the TUN queue, the wake-up eventfd, then the sockets in order.
const TUN_FILE: u32 = 0;
const WAKE_FILE: u32 = 1;
pub(super) const FIRST_SOCKET_FILE: u32 = 2;

/// How many reads and receives are outstanding now, and how many to keep so.
struct Armed {
    tun_reads: usize,
    /// Per socket, by index.
    recvs: Vec<usize>,
    max_tun_reads: usize,
    max_recvs: usize,
}

impl Worker {
    /// Runs the io_uring loop until `shutdown` is set. Errors only for failures of the loop
    /// itself: the ring cannot be set up or entered, or the TUN fails for good.
    pub fn run_uring(self) -> io::Result<()> {
        let mtu = self.dataplane.mtu();
        let offloading = self.offloading();
        // A non-blocking file makes io_uring report EAGAIN instead of waiting for data; the
        // offload path reads the TUN itself when a poll says it is readable.
        self.tun.set_nonblocking(offloading)?;
        let mut files: Vec<BorrowedFd<'_>> = vec![self.tun.as_fd(), self.wake.as_fd()];
        files.extend(self.sockets.iter().map(|socket| socket.as_fd()));
        let sockets = self.sockets.len();
        let (mut armed, spare, buf_len) = if offloading {
            let armed = Armed::new(0, OFFLOAD_RECVS_PER_SOCKET, sockets);
            (armed, OFFLOAD_SPARE_BUFFERS, super_buf_len(mtu))
        } else {
            let armed = Armed::new(TUN_READS, RECVS_PER_SOCKET, sockets);
            (armed, SPARE_BUFFERS, buffer_len(mtu))
        };
        let buffers = armed.max_tun_reads + armed.max_recvs * sockets + spare;
        let mut ring = PacketRing::new(&files, buffers, buf_len)?;
        let mut offload = offloading.then(|| {
            let offloads = SocketOffloads::enable(&self.sockets);
            UringOffload::new(buffers, offloads, &self.tun, mtu)
        });
        ring.poll_readable(WAKE_FILE)?;
        if offloading {
            ring.poll_readable(TUN_FILE)?;
        }
        while !self.shutdown.load(Ordering::Relaxed) {
            self.arm(&mut ring, &mut armed)?;
            ring.submit_and_wait(1)?;
            while let Some(completion) = ring.completion() {
                self.complete(&mut ring, &mut armed, offload.as_mut(), completion)?;
            }
            if let Some(offload) = offload.as_mut() {
                self.flush_received(&mut offload.rx);
                self.send_open(&mut ring, offload);
            }
        }
        Ok(())
    }

    /// Tops up the outstanding TUN reads and receives from the free buffers, in turn, so a
    /// short pool is shared rather than taken by one side.
    fn arm(&self, ring: &mut PacketRing, armed: &mut Armed) -> io::Result<()> {
        let room = packet_room(ring.buf_len());
        loop {
            let mut armed_any = false;
            if armed.tun_reads < armed.max_tun_reads {
                let Some(buf) = ring.alloc() else {
                    return Ok(());
                };
                ring.read(TUN_FILE, buf, PACKET_AT..PACKET_AT + room)?;
                armed.tun_reads += 1;
                armed_any = true;
            }
            let max_recvs = armed.max_recvs;
            for (socket, recvs) in armed.recvs.iter_mut().enumerate() {
                if *recvs < max_recvs {
                    let Some(buf) = ring.alloc() else {
                        return Ok(());
                    };
                    ring.recv(FIRST_SOCKET_FILE + socket as u32, buf)?;
                    *recvs += 1;
                    armed_any = true;
                }
            }
            if !armed_any {
                return Ok(());
            }
        }
    }

    fn complete(
        &self,
        ring: &mut PacketRing,
        armed: &mut Armed,
        offload: Option<&mut UringOffload>,
        completion: Completion,
    ) -> io::Result<()> {
        match completion {
            Completion::Read { buf, result } => {
                armed.tun_reads = armed.tun_reads.saturating_sub(1);
                match result {
                    Ok(len) => self.seal_and_send(ring, buf, len)?,
                    Err(err) => {
                        ring.release(buf);
                        if !is_transient(&err) {
                            return Err(io::Error::new(
                                err.kind(),
                                format!("read TUN {}: {err}", self.tun.name()),
                            ));
                        }
                    }
                }
            }
            Completion::Recv { file, buf, result } => {
                let socket = file.saturating_sub(FIRST_SOCKET_FILE) as usize;
                if let Some(recvs) = armed.recvs.get_mut(socket) {
                    *recvs = recvs.saturating_sub(1);
                }
                match (result, offload) {
                    (Ok(meta), Some(offload)) => {
                        let now = self.now();
                        let data = ring.buf_mut(&buf);
                        self.open_received(now, data, &meta, socket, &mut offload.rx);
                        ring.release(buf);
                    }
                    (Ok(meta), None) => self.open_and_deliver(ring, socket, buf, meta)?,
                    (Err(_), _) => ring.release(buf),
                }
            }
            Completion::Send { buf, result } if offload.is_some() => {
                if let Some(offload) = offload {
                    self.sent(ring, offload, buf, result);
                }
            }
            Completion::Send { buf, result } => {
                match result {
                    Ok(bytes) => {
                        WorkerCounters::add(&self.counters.tx_packets, 1);
                        WorkerCounters::add(&self.counters.tx_bytes, bytes as u64);
                    }
                    Err(_) => self.drop_packet(DropReason::SendFailed),
                }
                ring.release(buf);
            }
            Completion::Write { buf, result } => {
                if result.is_err() {
                    self.drop_packet(DropReason::SendFailed);
                }
                ring.release(buf);
            }
            Completion::Poll { file: TUN_FILE, .. } => {
                if let Some(offload) = offload {
                    self.read_tun_frames(ring, offload);
                }
                ring.poll_readable(TUN_FILE)?;
            }
            Completion::Poll { .. } => {
                self.wake.drain();
                ring.poll_readable(WAKE_FILE)?;
            }
        }
        Ok(())
    }

    /// Seals the TUN packet of `len` bytes read into `buf` and sends it from the socket of its
    /// destination's family.
    fn seal_and_send(&self, ring: &mut PacketRing, buf: Buf, len: usize) -> io::Result<()> {
        let sealed = self.dataplane.outbound(self.now(), ring.buf_mut(&buf), len);
        match sealed {
            Ok(Sealed::Staged { first }) => self.staged(first),
            Ok(Sealed::Reply { at, len }) => {
                WorkerCounters::add(&self.counters.tun_writes, 1);
                return ring.write(TUN_FILE, buf, at..at + len);
            }
            Ok(Sealed::Datagram { at, len, dst }) => match self.udp_target(&dst) {
                Some((socket, dst)) => {
                    let file = FIRST_SOCKET_FILE + socket as u32;
                    return ring.send(file, buf, at..at + len, dst, None);
                }
                None => self.drop_packet(DropReason::SendFailed),
            },
            Err(reason) => self.drop_packet(reason),
        }
        ring.release(buf);
        Ok(())
    }

    /// Opens the datagram received into `buf` on socket `socket` and writes its packet to the
    /// TUN from the same buffer; handshakes go to control.
    fn open_and_deliver(
        &self,
        ring: &mut PacketRing,
        socket: usize,
        buf: Buf,
        meta: RecvMeta,
    ) -> io::Result<()> {
        let now = self.now();
        let mut io = RingIo::default();
        match ring.buf_mut(&buf).get_mut(..meta.len) {
            Some(datagram) if !meta.truncated => {
                self.dispatch(now, LinkAddr::Udp(meta.src), socket, datagram, &mut io);
            }
            _ => self.drop_truncated(meta.len),
        }
        match io.0 {
            Some(RingOp::Write(range)) => {
                WorkerCounters::add(&self.counters.tun_writes, 1);
                ring.write(TUN_FILE, buf, range)
            }
            Some(RingOp::Send(range, dst)) => match self.udp_target(&dst) {
                Some((socket, dst)) => {
                    ring.send(FIRST_SOCKET_FILE + socket as u32, buf, range, dst, None)
                }
                None => {
                    self.drop_packet(DropReason::SendFailed);
                    ring.release(buf);
                    Ok(())
                }
            },
            None => {
                ring.release(buf);
                Ok(())
            }
        }
    }
}

/// The io_uring backend without offloads works from the ring buffer the datagram was received
/// into: the verdict's range is written to the TUN, or sent to the next link, by the caller once
/// the pipeline is done with the buffer.
#[derive(Default)]
struct RingIo(Option<RingOp>);

enum RingOp {
    Write(Range<usize>),
    Send(Range<usize>, LinkAddr),
}

impl ReceivedSink for RingIo {
    fn deliver(&mut self, _: &Worker, _: &mut [u8], at: usize, len: usize) {
        self.0 = Some(RingOp::Write(at..at + len));
    }

    fn forward(&mut self, _: &Worker, _: &mut [u8], at: usize, len: usize, dst: LinkAddr) {
        self.0 = Some(RingOp::Send(at..at + len, dst));
    }
}

impl Armed {
    fn new(max_tun_reads: usize, max_recvs: usize, sockets: usize) -> Self {
        Armed {
            tun_reads: 0,
            recvs: vec![0; sockets],
            max_tun_reads,
            max_recvs,
        }
    }
}

/// Errors after which a TUN read is simply tried again.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::EINTR | libc::ECANCELED | libc::ENOBUFS | libc::ENOMEM)
    )
}
