//! The io_uring backend's offload path (see `offload` for the path itself).
//!
//! The TUN is read with plain non-blocking `read`s when a poll on it fires: each frame is up to
//! 64 KB, so the system call is paid once per super-packet, and the frame lands in a buffer of
//! the worker's own, from which segments are sealed straight into ring buffers. Each ring
//! buffer holds one GSO group and goes out with one `sendmsg` once the group is full, ends, or
//! the completions at hand are all handled. Received super-buffers are opened in their ring
//! buffer and written to the TUN with plain `write`s (a TUN write does not block), coalesced.
//!
//! A GSO send the kernel refuses is sent again one datagram per send, as the readiness backend
//! does; after `EIO` (the device cannot segment) the worker stops grouping for good. The
//! datagrams are still in the group's buffer: each in turn is sent from its place there, so no
//! other buffer is taken from the pool the open group needs (a buffer carries one operation at
//! a time, hence one datagram after another). They may arrive behind datagrams
//! sent since, which the receiver's replay window takes.

use std::io;
use std::ops::Range;

use super::Worker;
use super::offload::{GsoGroup, OffloadRx, SealedSink, SocketOffloads, gso_unsupported};
use crate::DropReason;
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::offload::MAX_FRAME_LEN;
use crate::sys::TunQueue;
use crate::sys::uring::{Buf, PacketRing};

/// Frames read from the TUN each time its poll fires, before the other files get a turn.
const FRAMES_PER_POLL: usize = 16;

/// The offload path's state, allocated once.
pub(super) struct UringOffload {
    frame: Box<[u8]>,
    /// The receive side: coalescer, and the area forwarded frames leave from.
    pub(super) rx: OffloadRx,
    /// The group being laid out, in a buffer of its own.
    open: Option<(Buf, GsoGroup)>,
    /// The send in flight from each buffer, by buffer index.
    sends: Box<[GroupSend]>,
    gso: bool,
}

/// The group a buffer's send carries, so its completion is counted per datagram and a group
/// the kernel refused can go out again one datagram at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GroupSend {
    group: GsoGroup,
    /// `None` while the group goes out as one send; `Some(i)` once it goes out one datagram
    /// per send, datagram `i` in flight.
    alone: Option<usize>,
}

/// What one finished send of a [`GroupSend`] comes to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Settled {
    /// Datagrams that went out.
    sent: usize,
    /// Bytes that went out.
    bytes: usize,
    /// Datagrams lost.
    failed: usize,
    /// The device cannot segment: grouping is to be switched off.
    gso_unsupported: bool,
    /// The datagram to send next, on its own: its range in the buffer.
    next: Option<Range<usize>>,
}

impl GroupSend {
    /// The whole of `group` in one send.
    fn whole(group: GsoGroup) -> Self {
        GroupSend { group, alone: None }
    }

    /// Accounts for the send in flight completing with `result`, and moves on to the next
    /// datagram to send alone, if any: every datagram of a refused group of several, one at a
    /// time. Each datagram ends up counted once, as sent or as failed.
    fn settle(&mut self, result: &io::Result<usize>) -> Settled {
        let mut settled = Settled::default();
        let next = match (self.alone, result) {
            (None, Ok(bytes)) => {
                (settled.sent, settled.bytes) = (self.group.count, *bytes);
                return settled;
            }
            (None, Err(err)) if self.group.count > 1 => {
                settled.gso_unsupported = gso_unsupported(err);
                0
            }
            (None, Err(_)) => {
                settled.failed = self.group.count;
                return settled;
            }
            (Some(at), Ok(bytes)) => {
                (settled.sent, settled.bytes) = (1, *bytes);
                at + 1
            }
            (Some(at), Err(_)) => {
                settled.failed = 1;
                at + 1
            }
        };
        settled.next = self.group.datagrams().nth(next);
        self.alone = settled.next.is_some().then_some(next);
        settled
    }

    /// Datagrams not yet counted, the one in flight included.
    fn unsettled(&self) -> usize {
        self.group.count - self.alone.unwrap_or(0)
    }
}

impl UringOffload {
    /// State for a ring of `buffers` buffers, using `offloads` on the sockets of a link with
    /// `mtu`.
    pub(super) fn new(
        buffers: usize,
        offloads: SocketOffloads,
        tun: &TunQueue,
        mtu: usize,
    ) -> Self {
        UringOffload {
            frame: vec![0; MAX_FRAME_LEN].into_boxed_slice(),
            rx: OffloadRx::new(tun, mtu, offloads),
            open: None,
            sends: vec![GroupSend::whole(GsoGroup::empty(0)); buffers].into_boxed_slice(),
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
    fn space(&mut self, need: usize, datagram_at: usize) -> Option<&mut [u8]> {
        let gso = self.offload.gso;
        let buf_len = self.ring.buf_len();
        if let Some((_, group)) = &self.offload.open {
            let end = group.start + group.len;
            if !group.may_grow(gso) || end < datagram_at || end - datagram_at + need > buf_len {
                self.worker.send_open(self.ring, self.offload);
            }
        }
        if self.offload.open.is_none() {
            self.offload.open = Some((self.ring.alloc()?, GsoGroup::empty(datagram_at)));
        }
        let (buf, group) = self.offload.open.as_ref()?;
        let space_at = (group.start + group.len).checked_sub(datagram_at)?;
        self.ring.buf_mut(buf).get_mut(space_at..)
    }

    fn sealed(&mut self, len: usize, dst: LinkAddr) {
        let gso = self.offload.gso;
        let Some((buf, group)) = self.offload.open.as_mut() else {
            return;
        };
        let at = group.start + group.len;
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
        let Some((socket, dst)) = self.udp_target(&group.dst) else {
            ring.release(buf);
            return drop_all();
        };
        if let Some(send) = offload.sends.get_mut(buf.index()) {
            *send = GroupSend::whole(group);
        }
        let file = super::uring::FIRST_SOCKET_FILE + socket as u32;
        let range = group.start..group.start + group.len;
        if ring
            .send(file, buf, range, dst, group.segment_size())
            .is_err()
        {
            drop_all();
        }
    }

    /// Counts a finished send of the offload path, then sends the next datagram of a refused
    /// group from the same buffer, or gives the buffer back.
    pub(super) fn sent(
        &self,
        ring: &mut PacketRing,
        offload: &mut UringOffload,
        buf: Buf,
        result: io::Result<usize>,
    ) {
        // Every buffer has an entry: `sends` is as long as the pool.
        let Some(send) = offload.sends.get_mut(buf.index()) else {
            return ring.release(buf);
        };
        let settled = send.settle(&result);
        WorkerCounters::add(&self.counters.tx_packets, settled.sent as u64);
        WorkerCounters::add(&self.counters.tx_bytes, settled.bytes as u64);
        (0..settled.failed).for_each(|_| self.drop_packet(DropReason::SendFailed));
        if settled.gso_unsupported {
            offload.gso = false;
        }
        let Some(range) = settled.next else {
            return ring.release(buf);
        };
        let unsettled = send.unsettled();
        let target = self.udp_target(&send.group.dst);
        let sent = match target {
            Some((socket, dst)) => {
                let file = super::uring::FIRST_SOCKET_FILE + socket as u32;
                ring.send(file, buf, range, dst, None).is_ok()
            }
            None => {
                ring.release(buf);
                false
            }
        };
        if !sent {
            (0..unsettled).for_each(|_| self.drop_packet(DropReason::SendFailed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: LinkAddr = LinkAddr::Udp(std::net::SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        51820,
    ));

    fn failure(errno: i32) -> io::Result<usize> {
        Err(io::Error::from_raw_os_error(errno))
    }

    /// A group of datagrams of `lens` laid out from the start of a buffer, each filled with
    /// its own number, and the buffer.
    fn laid_out(lens: &[usize]) -> (GroupSend, Vec<u8>) {
        let mut group = GsoGroup::empty(0);
        let mut buf = vec![0xee; 8192];
        for (i, len) in lens.iter().enumerate() {
            buf[group.len..group.len + len].fill(i as u8);
            assert!(group.push(*len, DST, true));
        }
        (GroupSend::whole(group), buf)
    }

    /// Completes the sends of `send` with `results` in turn, as the worker does, sending each
    /// datagram to resend from its range of `buf`. Returns every completion's [`Settled`] and
    /// the bytes of each datagram resent.
    fn drive(
        send: &mut GroupSend,
        buf: &[u8],
        results: &[io::Result<usize>],
    ) -> (Vec<Settled>, Vec<Vec<u8>>) {
        let mut settles = Vec::new();
        let mut resent = Vec::new();
        for result in results {
            let settled = send.settle(result);
            if let Some(range) = settled.next.clone() {
                resent.push(buf[range].to_vec());
            }
            settles.push(settled);
        }
        (settles, resent)
    }

    #[test]
    fn a_group_sent_whole_counts_every_datagram_once() {
        let (mut send, _) = laid_out(&[1452, 1452, 600]);
        let settled = send.settle(&Ok(3504));
        let expected = Settled {
            sent: 3,
            bytes: 3504,
            ..Settled::default()
        };
        assert_eq!(settled, expected);
    }

    #[test]
    fn a_group_the_device_cannot_segment_goes_out_one_datagram_at_a_time() {
        let (mut send, buf) = laid_out(&[1452, 1452, 600]);
        let results = [
            failure(libc::EIO),
            Ok(1452),
            failure(libc::ENOBUFS),
            Ok(600),
        ];
        let (settles, resent) = drive(&mut send, &buf, &results);

        assert!(settles[0].gso_unsupported);
        assert_eq!((settles[0].sent, settles[0].failed), (0, 0));
        let next: Vec<_> = settles.iter().map(|s| s.next.clone()).collect();
        assert_eq!(
            next,
            [Some(0..1452), Some(1452..2904), Some(2904..3504), None]
        );
        assert_eq!(
            resent,
            [vec![0; 1452], vec![1; 1452], vec![2; 600]],
            "each datagram intact at the front, none overwritten before its turn"
        );
        let sent: usize = settles.iter().map(|s| s.sent).sum();
        let bytes: usize = settles.iter().map(|s| s.bytes).sum();
        let failed: usize = settles.iter().map(|s| s.failed).sum();
        assert_eq!((sent, bytes, failed), (2, 2052, 1));
    }

    #[test]
    fn a_refused_group_is_resent_but_keeps_grouping_on_unless_it_is_eio() {
        let (mut send, buf) = laid_out(&[1000, 1000]);
        let results = [failure(libc::ENOBUFS), Ok(1000), Ok(1000)];
        let (settles, resent) = drive(&mut send, &buf, &results);
        assert!(settles.iter().all(|s| !s.gso_unsupported));
        assert_eq!(resent, [vec![0; 1000], vec![1; 1000]]);
        assert_eq!(settles.iter().map(|s| s.sent).sum::<usize>(), 2);
        assert_eq!(settles[2].next, None);
    }

    #[test]
    fn a_lone_datagram_that_fails_is_counted_and_not_resent() {
        let (mut send, _) = laid_out(&[1452]);
        let settled = send.settle(&failure(libc::EIO));
        let expected = Settled {
            failed: 1,
            ..Settled::default()
        };
        assert_eq!(
            settled, expected,
            "one datagram says nothing about segmentation"
        );
    }

    #[test]
    fn datagrams_left_to_count_include_the_one_in_flight() {
        let (mut send, _) = laid_out(&[500, 500, 500]);
        assert_eq!(send.unsettled(), 3);
        send.settle(&failure(libc::EIO));
        assert_eq!(send.unsettled(), 3, "datagram 0 is in flight again");
        send.settle(&Ok(500));
        assert_eq!(send.unsettled(), 2);
    }
}
