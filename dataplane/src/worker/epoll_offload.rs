//! The readiness backend's offload loops (see `offload` for the path itself): TUN frames are
//! read one per `read` into a super-buffer and sealed into a send area, whose GSO groups go
//! out with one `sendmmsg`; datagrams come in with one `recvmmsg` into super-buffers.
//!
//! A GSO send the kernel refuses is sent again one datagram per message; after `EIO` (the
//! device cannot segment) the worker stops grouping for good.

use std::os::fd::OwnedFd;

use super::offload::{GsoGroup, SealedSink, SocketOffloads, coalescer_for, gso_unsupported};
use super::{BATCH, ROUNDS_PER_WAKE, Worker, udp_addr};
use crate::DropReason;
use crate::buf::{PACKET_AT, buffer_len};
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::offload::{Coalescer, MAX_FRAME_LEN};
use crate::sys::TunQueue;
use crate::sys::{Datagram, RecvBatch, SendBatch};

use super::offload::{MAX_GSO_BYTES, super_buf_len};

/// Frames read from the TUN per round before the area is sent.
const FRAMES_PER_ROUND: usize = 16;
/// Receive buffers per `recvmmsg` with GRO on (each holds a whole super-buffer).
const GRO_RECVS: usize = 16;
/// Full GSO groups the send area holds.
const AREA_GROUPS: usize = 4;
/// Most groups in the area: a new group per datagram at worst; the area is sent when full.
const MAX_GROUPS: usize = 4 * BATCH;
/// Where the first datagram of the area starts: room before it for the headers a sealed
/// packet's space begins with (see [`crate::buf`]), whatever its encapsulation.
const AREA_LEAD: usize = PACKET_AT;

/// The offload path's preallocated buffers.
pub(super) struct OffloadIo {
    /// One frame read from the TUN.
    frame: Box<[u8]>,
    tx: AreaTx,
    recv_pool: Box<[u8]>,
    recv_len: usize,
    recvs: usize,
    recv: RecvBatch,
    coalescer: Coalescer,
}

/// Sealed datagrams waiting to go out, grouped for GSO.
struct AreaTx {
    area: Box<[u8]>,
    /// Where the next datagram starts (at least [`AREA_LEAD`]).
    cursor: usize,
    groups: Vec<GsoGroup>,
    gso: bool,
    send: SendBatch,
}

impl OffloadIo {
    /// Buffers for a worker whose TUN has `mtu`, using `offloads` on its sockets.
    pub(super) fn new(mtu: usize, offloads: SocketOffloads, tun: &TunQueue) -> Self {
        let (recv_len, recvs) = if offloads.gro {
            (super_buf_len(mtu), GRO_RECVS)
        } else {
            (buffer_len(mtu), BATCH)
        };
        OffloadIo {
            frame: vec![0; MAX_FRAME_LEN].into_boxed_slice(),
            tx: AreaTx {
                area: vec![0; AREA_LEAD + AREA_GROUPS * MAX_GSO_BYTES + buffer_len(mtu)]
                    .into_boxed_slice(),
                cursor: AREA_LEAD,
                groups: Vec::with_capacity(MAX_GROUPS),
                gso: offloads.gso,
                send: SendBatch::new(BATCH),
            },
            recv_pool: vec![0; recvs * recv_len].into_boxed_slice(),
            recv_len,
            recvs,
            recv: RecvBatch::new(recvs),
            coalescer: coalescer_for(tun),
        }
    }
}

/// The send area as a [`SealedSink`]: sent whenever it runs out of room.
struct AreaSink<'a> {
    worker: &'a Worker,
    tx: &'a mut AreaTx,
}

impl SealedSink for AreaSink<'_> {
    fn space(&mut self, need: usize, datagram_at: usize) -> Option<&mut [u8]> {
        let tx = &mut *self.tx;
        let room = |tx: &AreaTx| tx.area.len() - (tx.cursor - datagram_at.min(tx.cursor));
        if room(tx) < need || tx.groups.len() == tx.groups.capacity() {
            self.worker.send_area(tx);
        }
        tx.area.get_mut(tx.cursor.checked_sub(datagram_at)?..)
    }

    fn sealed(&mut self, len: usize, dst: LinkAddr) {
        let tx = &mut *self.tx;
        let joined = tx
            .groups
            .last_mut()
            .is_some_and(|group| group.push(len, dst, tx.gso));
        if !joined {
            let mut group = GsoGroup::empty(tx.cursor);
            group.push(len, dst, tx.gso);
            tx.groups.push(group);
        }
        tx.cursor += len;
    }
}

impl Worker {
    /// Reads TUN frames, seals their segments into the area and sends it after each round.
    pub(super) fn tun_to_udp_offload(&self, io: &mut OffloadIo) {
        for _ in 0..ROUNDS_PER_WAKE {
            let now = self.now();
            let mut drained = false;
            for _ in 0..FRAMES_PER_ROUND {
                match self.tun.read(&mut io.frame) {
                    Ok(len) => {
                        let mut sink = AreaSink {
                            worker: self,
                            tx: &mut io.tx,
                        };
                        self.seal_frame(now, io.frame.get(..len).unwrap_or_default(), &mut sink);
                    }
                    Err(_) => {
                        drained = true;
                        break;
                    }
                }
            }
            self.send_area(&mut io.tx);
            if drained {
                return;
            }
        }
    }

    /// Receives (GRO) datagrams from socket `index`, opens them and writes their packets to
    /// the TUN, coalesced, flushing after every batch.
    pub(super) fn udp_to_tun_offload(&self, io: &mut OffloadIo, index: usize) {
        let Some(socket) = self.sockets.get(index) else {
            return;
        };
        for _ in 0..ROUNDS_PER_WAKE {
            let mut chunks = io.recv_pool.chunks_mut(io.recv_len);
            let mut bufs: [&mut [u8]; BATCH] =
                std::array::from_fn(|_| chunks.next().unwrap_or_default());
            let Ok(metas) = io.recv.recv_batch(&**socket, &mut bufs[..io.recvs]) else {
                return;
            };
            let received = metas.len();
            let now = self.now();
            for (meta, buf) in metas.iter().zip(bufs.iter_mut()) {
                self.open_received(now, buf, meta, index, &mut io.coalescer);
            }
            self.flush_coalesced(&mut io.coalescer);
            if received < io.recvs {
                return;
            }
        }
    }

    /// Sends every group of the area, one `sendmmsg` per run of same-family destinations, and
    /// empties it.
    fn send_area(&self, tx: &mut AreaTx) {
        let mut start = 0;
        while let Some(first) = tx.groups.get(start) {
            let socket = self.udp_target(&first.dst).map(|(socket, _)| socket);
            let run = tx.groups[start..]
                .iter()
                .take_while(|group| self.udp_target(&group.dst).map(|(s, _)| s) == socket)
                .count();
            let groups = &tx.groups[start..start + run];
            match socket.and_then(|socket| self.sockets.get(socket)) {
                Some(socket) => {
                    self.send_groups(&mut tx.send, socket, &tx.area, groups, &mut tx.gso)
                }
                None => groups.iter().for_each(|group| {
                    (0..group.count).for_each(|_| self.drop_packet(DropReason::SendFailed))
                }),
            }
            start += run;
        }
        tx.groups.clear();
        tx.cursor = AREA_LEAD;
    }

    fn send_groups(
        &self,
        send: &mut SendBatch,
        socket: &OwnedFd,
        area: &[u8],
        groups: &[GsoGroup],
        gso: &mut bool,
    ) {
        let mut next = 0;
        while next < groups.len() {
            let chunk = &groups[next..groups.len().min(next + BATCH)];
            let datagrams: [Datagram<'_>; BATCH] = std::array::from_fn(|i| {
                let group = chunk.get(i).copied().unwrap_or(GsoGroup::empty(0));
                Datagram {
                    payload: area
                        .get(group.start..group.start + group.len)
                        .unwrap_or_default(),
                    dst: udp_addr(&group.dst),
                    segment_size: group.segment_size(),
                }
            });
            let result = send.send_batch(socket, &datagrams[..chunk.len()]);
            match result {
                Ok(n) if n > 0 => {
                    for group in &chunk[..n] {
                        WorkerCounters::add(&self.counters.tx_packets, group.count as u64);
                        WorkerCounters::add(&self.counters.tx_bytes, group.len as u64);
                    }
                    next += n;
                }
                _ => {
                    let head = chunk[0];
                    if head.count > 1 {
                        if result.as_ref().is_err_and(gso_unsupported) {
                            *gso = false;
                        }
                        self.send_one_by_one(send, socket, area, &head);
                    } else {
                        self.drop_packet(DropReason::SendFailed);
                    }
                    next += 1;
                }
            }
        }
    }

    /// Sends the datagrams of a group the kernel would not segment, one message each.
    fn send_one_by_one(
        &self,
        send: &mut SendBatch,
        socket: &OwnedFd,
        area: &[u8],
        group: &GsoGroup,
    ) {
        let mut ranges = group.datagrams();
        let datagrams: [Datagram<'_>; BATCH] = std::array::from_fn(|_| Datagram {
            payload: ranges
                .next()
                .and_then(|range| area.get(range))
                .unwrap_or_default(),
            dst: udp_addr(&group.dst),
            segment_size: None,
        });
        self.send_run(send, socket, &datagrams[..group.count.min(BATCH)]);
    }
}
