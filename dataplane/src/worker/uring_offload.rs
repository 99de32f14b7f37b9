//! The io_uring backend's offload path (see `offload` for the path itself).
//!
//! The TUN is read with plain non-blocking `read`s when a poll on it fires: each frame is up to
//! 64 KB, so the system call is paid once per super-packet, and the frame lands in a buffer of
//! the worker's own, from which segments are sealed straight into ring buffers. Each ring
//! buffer holds one GSO group and goes out with one `sendmsg` once the group is full, ends, or
//! the completions at hand are all handled. Received super-buffers are opened in their ring
//! buffer and written to the TUN with plain `write`s (a TUN write does not block), coalesced.
//!
//! A GSO send that fails with `EIO` (the device cannot segment) loses its group and switches
//! grouping off for the worker; every later group is a single datagram.

use std::net::SocketAddr;

use super::Worker;
use super::offload::{GsoGroup, SealedSink, SocketOffloads, coalescer_for, gso_unsupported};
use crate::DropReason;
use crate::counters::WorkerCounters;
use crate::offload::{Coalescer, MAX_FRAME_LEN};
use crate::sys::TunQueue;
use crate::sys::uring::{Buf, PacketRing};

/// Frames read from the TUN each time its poll fires, before the other files get a turn.
const FRAMES_PER_POLL: usize = 16;

/// The offload path's state, allocated once.
pub(super) struct UringOffload {
    frame: Box<[u8]>,
    pub(super) coalescer: Coalescer,
    /// The group being laid out, in a buffer of its own.
    open: Option<(Buf, GsoGroup)>,
    /// Datagrams in the send in flight from each buffer, by buffer index.
    in_flight: Box<[usize]>,
    gso: bool,
}

impl UringOffload {
    /// State for a ring of `buffers` buffers, using `offloads` on the sockets.
    pub(super) fn new(buffers: usize, offloads: SocketOffloads, tun: &TunQueue) -> Self {
        UringOffload {
            frame: vec![0; MAX_FRAME_LEN].into_boxed_slice(),
            coalescer: coalescer_for(tun),
            open: None,
            in_flight: vec![0; buffers].into_boxed_slice(),
            gso: offloads.gso,
        }
    }
}

/// The open group as a [`SealedSink`].
struct RingSink<'a> {
    worker: &'a Worker,
    ring: &'a mut PacketRing,
    offload: &'a mut UringOffload,
}

impl SealedSink for RingSink<'_> {
    fn space(&mut self, need: usize) -> Option<&mut [u8]> {
        let gso = self.offload.gso;
        let buf_len = self.ring.buf_len();
        if let Some((_, group)) = &self.offload.open {
            if !group.may_grow(gso) || group.len + need > buf_len {
                self.worker.send_open(self.ring, self.offload);
            }
        }
        if self.offload.open.is_none() {
            self.offload.open = Some((self.ring.alloc()?, GsoGroup::empty(0)));
        }
        let (buf, group) = self.offload.open.as_ref()?;
        self.ring.buf_mut(buf).get_mut(group.len..)
    }

    fn sealed(&mut self, len: usize, dst: SocketAddr) {
        let gso = self.offload.gso;
        let Some((buf, group)) = self.offload.open.as_mut() else {
            return;
        };
        let at = group.len;
        if group.push(len, dst, gso) {
            return;
        }
        // It cannot join (another destination, or longer): the group goes out without it and
        // it starts the next one in a buffer of its own.
        let moved = self.ring.alloc().and_then(|next| {
            match self.ring.copy_between(buf, at..at + len, &next) {
                Ok(()) => Some(next),
                Err(_) => {
                    self.ring.release(next);
                    None
                }
            }
        });
        self.worker.send_open(self.ring, self.offload);
        match moved {
            Some(next) => {
                let mut group = GsoGroup::empty(0);
                group.push(len, dst, gso);
                self.offload.open = Some((next, group));
            }
            None => self.worker.drop_packet(DropReason::SendFailed),
        }
    }
}

impl Worker {
    /// Reads the frames the TUN has (a few at most), sealing each into ring buffers.
    pub(super) fn read_tun_frames(&self, ring: &mut PacketRing, offload: &mut UringOffload) {
        let now = self.now();
        for _ in 0..FRAMES_PER_POLL {
            let Ok(len) = self.tun.read(&mut offload.frame) else {
                return;
            };
            let frame = std::mem::take(&mut offload.frame);
            let mut sink = RingSink {
                worker: self,
                ring,
                offload,
            };
            self.seal_frame(now, frame.get(..len).unwrap_or_default(), &mut sink);
            offload.frame = frame;
        }
    }

    /// Sends the open group, if it holds any datagram, from the socket of its family.
    pub(super) fn send_open(&self, ring: &mut PacketRing, offload: &mut UringOffload) {
        let Some((buf, group)) = offload.open.take() else {
            return;
        };
        let drop_all = || (0..group.count).for_each(|_| self.drop_packet(DropReason::SendFailed));
        if group.count == 0 {
            return ring.release(buf);
        }
        let Some(socket) = self.socket_index_for(group.dst.is_ipv6()) else {
            ring.release(buf);
            return drop_all();
        };
        if let Some(count) = offload.in_flight.get_mut(buf.index()) {
            *count = group.count;
        }
        let file = super::uring::FIRST_SOCKET_FILE + socket as u32;
        if ring
            .send(file, buf, group.len, group.dst, group.segment_size())
            .is_err()
        {
            drop_all();
        }
    }

    /// Counts a finished send of the offload path and gives its buffer back.
    pub(super) fn sent(
        &self,
        ring: &mut PacketRing,
        offload: &mut UringOffload,
        buf: Buf,
        result: std::io::Result<usize>,
    ) {
        let count = offload.in_flight.get(buf.index()).copied().unwrap_or(1);
        match result {
            Ok(bytes) => {
                WorkerCounters::add(&self.counters.tx_packets, count as u64);
                WorkerCounters::add(&self.counters.tx_bytes, bytes as u64);
            }
            Err(err) => {
                if count > 1 && gso_unsupported(&err) {
                    offload.gso = false;
                }
                (0..count).for_each(|_| self.drop_packet(DropReason::SendFailed));
            }
        }
        ring.release(buf);
    }
}
