//! The per-core worker: TUN → seal → UDP and UDP → open → TUN, in batches, on one pinned
//! thread. Two backends run the same pipeline: io_uring ([`Worker::run_uring`], in `uring`)
//! and, here, the readiness backend ([`Worker::run`]: epoll + `recvmmsg`/`sendmmsg`): one
//! `sendmmsg` per batch of sealed packets and one `recvmmsg` per batch of datagrams.
//!
//! A TUN queue without a vnet header moves one packet per `read` or `write`. With one, both
//! backends take the offload path (`offload`): up to 64 KB per TUN read, cut into segments
//! that leave with UDP GSO, and UDP GRO super-buffers whose TCP segments are coalesced into
//! one TUN write.
//!
//! Buffers are allocated once at start; the steady path allocates nothing. Handshake messages
//! pass the control link's [`HandshakeScreen`] (which answers cookies under load) and are
//! copied into fixed-size messages on a bounded queue to the control thread; when it is full
//! they are dropped and counted. Its fill level is the "under load" signal for cookies.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::DropReason;
use crate::buf::{PACKET_AT, buffer_len, packet_room};
use crate::control_queue::{FrameSender, HandshakeScreen, HandshakeSender};
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::peer::Sealed;
use crate::pipeline::Dataplane;
use crate::route::PeerSlot;
use crate::sys::{Datagram, Epoll, EventFd, RecvBatch, SendBatch, TunQueue};
use crate::wire::INITIATION_LEN;
use dispatch::PlainIo;
use epoll_offload::OffloadIo;

mod area;
mod dispatch;
mod epoll_offload;
mod offload;
mod uring;
mod uring_offload;

pub use offload::SocketOffloads;

/// Packets per batch.
pub const BATCH: usize = 64;
/// Batches taken from one readable fd before looking at the others again (fairness).
const ROUNDS_PER_WAKE: usize = 8;

const TOKEN_TUN: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_UDP: u64 = 2;

/// A handshake message on its way to control.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeMsg {
    /// Where it came from.
    pub src: LinkAddr,
    /// Which listen socket it arrived on (index into the listen list).
    pub socket: usize,
    /// Its length in `bytes`.
    pub len: usize,
    /// The message (handshake messages are at most 148 bytes).
    pub bytes: [u8; INITIATION_LEN],
}

/// Longest rovy frame handed to control: routing messages are written to fit the IPv6
/// minimum MTU, and a longer frame for control is dropped as [`DropReason::BadLength`].
pub const FRAME_MSG_MAX_LEN: usize = 1280;

/// A rovy frame on its way to control: a one-link routing message, or a routed frame whose
/// label ended at this node.
#[derive(Debug, Clone, Copy)]
pub struct FrameMsg {
    /// The configured peer whose link it came in on.
    pub peer: PeerSlot,
    /// Its length in `bytes` (with the link's padding).
    pub len: usize,
    /// The frame.
    pub bytes: [u8; FRAME_MSG_MAX_LEN],
}

/// The queues to control (the handshake queue's fill level is control's "under load" signal).
#[derive(Debug, Clone)]
pub struct ControlLink {
    /// What looks at a handshake message before it is queued.
    pub screen: Arc<dyn HandshakeScreen>,
    /// Bounded queue of handshake messages.
    pub handshakes: HandshakeSender,
    /// Bounded queue of rovy frames for control.
    pub frames: FrameSender,
    /// Wakes the control loop.
    pub wake: Arc<EventFd>,
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct Worker {
    /// Shared routing and peers.
    pub dataplane: Arc<Dataplane>,
    /// This worker's TUN queue.
    pub tun: TunQueue,
    /// This worker's UDP sockets, one per listen address (SO_REUSEPORT siblings).
    pub sockets: Vec<Arc<OwnedFd>>,
    /// The family of each socket: true = IPv6.
    pub socket_is_v6: Vec<bool>,
    /// This worker's counters.
    pub counters: Arc<WorkerCounters>,
    /// Handshakes go here.
    pub control: ControlLink,
    /// Set to stop; `wake` makes the worker notice at once.
    pub shutdown: Arc<AtomicBool>,
    /// Wakes this worker.
    pub wake: Arc<EventFd>,
    /// The clock's origin, shared with control so `now` means the same everywhere.
    pub origin: Instant,
}

impl Worker {
    /// Runs until `shutdown` is set. Errors only for failures of the loop itself (epoll).
    pub fn run(self) -> io::Result<()> {
        let mut epoll = Epoll::new(2 + self.sockets.len())?;
        self.tun.set_nonblocking(true)?;
        epoll.add_readable(&self.tun, TOKEN_TUN)?;
        epoll.add_readable(&*self.wake, TOKEN_WAKE)?;
        for (i, socket) in self.sockets.iter().enumerate() {
            epoll.add_readable(&**socket, TOKEN_UDP + i as u64)?;
        }
        let mtu = self.dataplane.mtu();
        let mut io = if self.offloading() {
            let offloads = SocketOffloads::enable(&self.sockets);
            Io::Offload(Box::new(OffloadIo::new(mtu, offloads, &self.tun)))
        } else {
            let buf_len = buffer_len(mtu);
            Io::Plain(Box::new(BatchIo {
                pool: vec![0u8; BATCH * buf_len],
                buf_len,
                recv: RecvBatch::new(BATCH),
                send: SendBatch::new(BATCH),
                sealed: [None; BATCH],
            }))
        };
        let mut ready = [0u64; 16];
        while !self.shutdown.load(Ordering::Relaxed) {
            let mut n = 0;
            for token in epoll.wait(1000)? {
                if let Some(slot) = ready.get_mut(n) {
                    *slot = token;
                    n += 1;
                }
            }
            for &token in &ready[..n] {
                let socket = token.wrapping_sub(TOKEN_UDP) as usize;
                match (token, &mut io) {
                    (TOKEN_WAKE, _) => self.wake.drain(),
                    (TOKEN_TUN, Io::Plain(io)) => self.tun_to_udp(io),
                    (TOKEN_TUN, Io::Offload(io)) => self.tun_to_udp_offload(io),
                    (_, Io::Plain(io)) => self.udp_to_tun(io, socket),
                    (_, Io::Offload(io)) => self.udp_to_tun_offload(io, socket),
                }
            }
        }
        Ok(())
    }

    fn now(&self) -> std::time::Duration {
        self.origin.elapsed()
    }

    /// Reads TUN packets in batches, seals them, sends each batch with one `sendmmsg` per run
    /// of same-family destinations.
    fn tun_to_udp(&self, io: &mut BatchIo) {
        for _ in 0..ROUNDS_PER_WAKE {
            let now = self.now();
            let mut read = 0;
            let mut drained = false;
            while read < BATCH {
                let buf = io.buf(read);
                let room = packet_room(buf.len());
                match self.tun.read(&mut buf[PACKET_AT..PACKET_AT + room]) {
                    Ok(len) => {
                        io.sealed[read] = match self.dataplane.outbound(now, buf, len) {
                            Ok(Sealed::Datagram { at, len, dst }) => Some((at, len, dst)),
                            Ok(Sealed::Reply { at, len }) => {
                                self.write_tun(&buf[at..at + len]);
                                None
                            }
                            Ok(Sealed::Staged { first }) => {
                                self.staged(first);
                                None
                            }
                            Err(reason) => {
                                self.drop_packet(reason);
                                None
                            }
                        };
                        read += 1;
                    }
                    Err(_) => {
                        drained = true;
                        break;
                    }
                }
            }
            self.send_sealed(io, read);
            if drained {
                return;
            }
        }
    }

    fn send_sealed(&self, io: &mut BatchIo, count: usize) {
        let BatchIo {
            pool,
            buf_len,
            send,
            sealed,
            ..
        } = io;
        let buf_len = *buf_len;
        let mut start = 0;
        while start < count {
            let Some(first) = sealed[start..count].iter().position(Option::is_some) else {
                return;
            };
            start += first;
            let socket_of = |s: &Option<(usize, usize, LinkAddr)>| {
                s.and_then(|(_, _, dst)| self.udp_target(&dst))
                    .map(|(socket, _)| socket)
            };
            let socket = socket_of(&sealed[start]);
            let run = sealed[start..count]
                .iter()
                .take_while(|s| s.is_some() && socket_of(s) == socket)
                .count();
            let datagrams: [Datagram<'_>; BATCH] = std::array::from_fn(|i| {
                let (at, len, dst) = sealed
                    .get(start + i)
                    .copied()
                    .flatten()
                    .and_then(|(at, len, dst)| Some((at, len, self.udp_target(&dst)?.1)))
                    .unwrap_or((0, 0, SocketAddr::from(([0, 0, 0, 0], 0))));
                let at = (start + i).min(BATCH - 1) * buf_len + at;
                Datagram {
                    payload: pool.get(at..at + len).unwrap_or_default(),
                    dst,
                    segment_size: None,
                }
            });
            match socket.and_then(|socket| self.sockets.get(socket)) {
                Some(socket) => self.send_run(send, socket, &datagrams[..run]),
                None => (0..run).for_each(|_| self.drop_packet(DropReason::SendFailed)),
            }
            start += run;
        }
    }

    fn send_run(&self, send: &mut SendBatch, socket: &OwnedFd, datagrams: &[Datagram<'_>]) {
        let mut sent = 0;
        while sent < datagrams.len() {
            match send.send_batch(socket, &datagrams[sent..]) {
                Ok(n) if n > 0 => {
                    let bytes: usize = datagrams[sent..sent + n]
                        .iter()
                        .map(|d| d.payload.len())
                        .sum();
                    WorkerCounters::add(&self.counters.tx_packets, n as u64);
                    WorkerCounters::add(&self.counters.tx_bytes, bytes as u64);
                    sent += n;
                }
                _ => {
                    // The kernel refused the head of the batch: count it and go on with the rest.
                    self.drop_packet(DropReason::SendFailed);
                    sent += 1;
                }
            }
        }
    }

    /// The UDP side of a link address: the index of the first socket of its family, and the
    /// socket address to send to; `None` when this worker has no socket of that family.
    fn udp_target(&self, dst: &LinkAddr) -> Option<(usize, SocketAddr)> {
        let addr = dst.udp()?;
        let v6 = addr.is_ipv6();
        let socket = self.socket_is_v6.iter().position(|is_v6| *is_v6 == v6)?;
        Some((socket, addr))
    }

    /// Receives datagrams in batches from socket `index`, opens them and writes the packets
    /// to the TUN; handshakes go to control.
    fn udp_to_tun(&self, io: &mut BatchIo, index: usize) {
        let Some(socket) = self.sockets.get(index) else {
            return;
        };
        for _ in 0..ROUNDS_PER_WAKE {
            let buf_len = io.buf_len;
            let mut chunks = io.pool.chunks_mut(buf_len);
            let mut bufs: [&mut [u8]; BATCH] =
                std::array::from_fn(|_| chunks.next().unwrap_or_default());
            let Ok(metas) = io.recv.recv_batch(&**socket, &mut bufs) else {
                return;
            };
            let received = metas.len();
            let now = self.now();
            for (meta, buf) in metas.iter().zip(bufs.iter_mut()) {
                if meta.truncated {
                    self.drop_truncated(meta.len);
                    continue;
                }
                let datagram = &mut buf[..meta.len];
                let mut sink = PlainIo { send: &mut io.send };
                self.dispatch(now, LinkAddr::Udp(meta.src), index, datagram, &mut sink);
            }
            if received < BATCH {
                return;
            }
        }
    }

    /// Counts a datagram the kernel truncated (longer than our buffers) as received and dropped.
    fn drop_truncated(&self, len: usize) {
        WorkerCounters::add(&self.counters.rx_packets, 1);
        WorkerCounters::add(&self.counters.rx_bytes, len as u64);
        self.drop_packet(DropReason::BadLength);
    }

    /// Sends one sealed datagram to `dst` at once, from the socket of its family.
    fn send_now(&self, send: &mut SendBatch, payload: &[u8], dst: &LinkAddr) {
        let Some((socket, addr)) = self.udp_target(dst) else {
            return self.drop_packet(DropReason::SendFailed);
        };
        let datagram = [Datagram {
            payload,
            dst: addr,
            segment_size: None,
        }];
        match self.sockets.get(socket) {
            Some(socket) => self.send_run(send, socket, &datagram),
            None => self.drop_packet(DropReason::SendFailed),
        }
    }

    /// Writes one frame (a packet, or a vnet header and a packet) to the TUN and counts it.
    fn write_tun(&self, frame: &[u8]) {
        match self.tun.write(frame) {
            Ok(_) => WorkerCounters::add(&self.counters.tun_writes, 1),
            Err(_) => self.drop_packet(DropReason::SendFailed),
        }
    }

    /// Copies the rovy frame `frame` from configured peer `peer` onto the frame queue.
    fn frame_to_control(&self, peer: PeerSlot, frame: &[u8]) {
        let mut msg = FrameMsg {
            peer,
            len: frame.len(),
            bytes: [0; FRAME_MSG_MAX_LEN],
        };
        let Some(slot) = msg.bytes.get_mut(..frame.len()) else {
            return self.drop_packet(DropReason::BadLength);
        };
        slot.copy_from_slice(frame);
        match self.control.frames.push(msg) {
            Ok(true) => self.control.wake.notify(),
            Ok(false) => {}
            Err(reason) => self.drop_packet(reason),
        }
    }

    /// Copies a handshake message onto the queue to control; `reserved`: it may take the part
    /// of the queue kept for senders that proved their address.
    fn to_control(&self, src: LinkAddr, socket: usize, message: &[u8], reserved: bool) {
        let mut msg = HandshakeMsg {
            src,
            socket,
            len: message.len(),
            bytes: [0; INITIATION_LEN],
        };
        let Some(slot) = msg.bytes.get_mut(..message.len()) else {
            self.drop_packet(DropReason::BadLength);
            return;
        };
        slot.copy_from_slice(message);
        let queued = if reserved {
            self.control.handshakes.push_reserved(msg)
        } else {
            self.control.handshakes.push(msg)
        };
        match queued {
            Ok(was_empty) => {
                if was_empty {
                    self.control.wake.notify();
                }
            }
            Err(reason) => self.drop_packet(reason),
        }
    }

    /// A packet was staged for a peer without a session; the first one wakes control so the
    /// handshake it asked for starts at once.
    fn staged(&self, first: bool) {
        if first {
            self.control.wake.notify();
        }
    }

    fn drop_packet(&self, reason: DropReason) {
        self.counters.count_drop(reason);
        if reason == DropReason::NoSession {
            self.control.wake.notify();
        }
    }
}

/// The readiness backend's buffers, for the path its TUN queue takes.
enum Io {
    Plain(Box<BatchIo>),
    Offload(Box<OffloadIo>),
}

/// The worker's preallocated buffers without offloads.
struct BatchIo {
    pool: Vec<u8>,
    buf_len: usize,
    recv: RecvBatch,
    send: SendBatch,
    /// Per buffer of the batch: where its datagram starts, its length, its destination.
    sealed: [Option<(usize, usize, LinkAddr)>; BATCH],
}

impl BatchIo {
    fn buf(&mut self, i: usize) -> &mut [u8] {
        let at = i * self.buf_len;
        &mut self.pool[at..at + self.buf_len]
    }
}
