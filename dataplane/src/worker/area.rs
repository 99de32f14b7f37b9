//! A send area: sealed datagrams laid out back to back in one preallocated buffer, grouped by
//! destination for UDP GSO, and sent with one `sendmmsg` per run of groups that leave from the
//! same socket. The readiness backend seals TUN traffic into one; both backends copy the frames
//! they forward into one, so forwarded packets also leave in GSO batches per next link.
//!
//! A GSO send the kernel refuses is sent again one datagram per message; after `EIO` (the
//! device cannot segment) the area stops grouping for good.

use std::os::fd::OwnedFd;

use super::offload::{GsoGroup, MAX_GSO_BYTES, SealedSink, SocketOffloads, gso_unsupported};
use super::{BATCH, Worker};
use crate::DropReason;
use crate::buf::{PACKET_AT, buffer_len};
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::sys::{Datagram, SendBatch};

/// What a datagram slot of a batch send is addressed to when it carries nothing (the slots
/// past a run's end; a run only holds groups whose address has a UDP socket).
const NOWHERE: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Full GSO groups an area holds.
const AREA_GROUPS: usize = 4;
/// Most groups in an area: a new group per datagram at worst; the area is sent when full.
const MAX_GROUPS: usize = 4 * BATCH;
/// Where the first datagram of the area starts: room before it for the headers a sealed
/// packet's space begins with (see [`crate::buf`]), whatever its encapsulation.
const AREA_LEAD: usize = PACKET_AT;

/// Sealed datagrams waiting to go out, grouped for GSO.
pub(super) struct AreaTx {
    area: Box<[u8]>,
    /// Where the next datagram starts (at least [`AREA_LEAD`]).
    cursor: usize,
    groups: Vec<GsoGroup>,
    gso: bool,
    send: SendBatch,
}

impl AreaTx {
    /// An empty area for datagrams of a link with `mtu`, grouping with GSO if `offloads` say
    /// the sockets can.
    pub(super) fn new(mtu: usize, offloads: SocketOffloads) -> Self {
        AreaTx {
            area: vec![0; AREA_LEAD + AREA_GROUPS * MAX_GSO_BYTES + buffer_len(mtu)]
                .into_boxed_slice(),
            cursor: AREA_LEAD,
            groups: Vec::with_capacity(MAX_GROUPS),
            gso: offloads.gso,
            send: SendBatch::new(BATCH),
        }
    }

    /// The area as a [`SealedSink`] for `worker`.
    pub(super) fn sink<'a>(&'a mut self, worker: &'a Worker) -> AreaSink<'a> {
        AreaSink { worker, tx: self }
    }
}

/// The send area as a [`SealedSink`]: sent whenever it runs out of room.
pub(super) struct AreaSink<'a> {
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

impl AreaSink<'_> {
    /// Copies the sealed datagram `datagram` for `dst` into the area (sending the area first
    /// if it is full).
    pub(super) fn push_copy(&mut self, datagram: &[u8], dst: LinkAddr) {
        let Some(space) = self.space(datagram.len(), 0) else {
            return self.worker.drop_packet(DropReason::SendFailed);
        };
        match space.get_mut(..datagram.len()) {
            Some(room) => room.copy_from_slice(datagram),
            None => return self.worker.drop_packet(DropReason::SendFailed),
        }
        self.sealed(datagram.len(), dst);
    }
}

impl Worker {
    /// Sends every group of the area, one `sendmmsg` per run of same-family destinations, and
    /// empties it.
    pub(super) fn send_area(&self, tx: &mut AreaTx) {
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
                    dst: group.dst.udp().unwrap_or(NOWHERE),
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
            dst: group.dst.udp().unwrap_or(NOWHERE),
            segment_size: None,
        });
        self.send_run(send, socket, &datagrams[..group.count.min(BATCH)]);
    }
}
