//! The offload path both backends share, used when the TUN queue has a vnet header.
//!
//! Outbound, one TUN read returns a frame of up to 64 KB (a TSO/USO super-packet, or one plain
//! packet) with its [`VnetHdr`]. [`Worker::seal_frame`] cuts it into MTU packets with
//! [`Segmenter`], each written straight into the space where it is sealed, routes the first
//! and seals every one for that peer. The sealed datagrams go to a [`SealedSink`], which lays
//! those for one destination out back to back in a [`GsoGroup`]: every one of the same size
//! (`stride`; padding to 16 makes full segments equal), the last possibly shorter, so the
//! group leaves with one UDP GSO send.
//!
//! Inbound, a receive with UDP GRO on holds several datagrams back to back
//! ([`RecvMeta::gro_segment_size`]). [`Worker::open_received`] opens each in place and offers
//! its packet to a [`Coalescer`], which merges consecutive TCP segments of a flow into one
//! super-frame written to the TUN with one `write`; everything else is written as it is,
//! behind a zero vnet header that takes the place of the spent data header. The caller
//! flushes the coalescer at the end of every receive batch, so nothing waits longer than that.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use super::Worker;
use super::area::{AreaSink, AreaTx};
use super::dispatch::ReceivedSink;
use crate::DropReason;
use crate::buf::{MAX_MTU, PACKET_AT, buffer_len};
use crate::link_addr::LinkAddr;
use crate::offload::{Coalescer, GsoType, MAX_FRAME_LEN, Push, Segmenter, VNET_HDR_LEN, VnetHdr};
use crate::peer::Sealed;
use crate::pipeline::{Route, route};
use crate::sys::TunQueue;
use crate::sys::{RecvMeta, enable_gro, probe_gso};
use crate::wire::ip;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` before Linux 6.10).
pub const MAX_GSO_SEGMENTS: usize = 64;
/// Most bytes in one GSO send: a UDP payload within one 64 KB IPv4 packet.
pub const MAX_GSO_BYTES: usize = 65_535 - 20 - 8;
/// Flows the coalescer of one worker holds at once.
pub const COALESCED_FLOWS: usize = 8;

/// What the receive side of the offload path keeps across the datagrams of a batch: the
/// coalescer of delivered packets, and the area forwarded frames leave from.
pub(super) struct OffloadRx {
    pub(super) coalescer: Coalescer,
    forwards: AreaTx,
}

impl OffloadRx {
    /// For a worker writing to `tun` and sending with `offloads`: the coalescer merges TCP
    /// always, UDP over each family whose USO the TUN accepted (the same kernels take USO
    /// frames written to it).
    pub(super) fn new(tun: &TunQueue, mtu: usize, offloads: SocketOffloads) -> Self {
        let tun_offloads = tun.offloads();
        OffloadRx {
            coalescer: Coalescer::new(COALESCED_FLOWS)
                .merge_udp(tun_offloads.uso4, tun_offloads.uso6),
            forwards: AreaTx::new(mtu, offloads),
        }
    }
}

/// Size of a buffer that holds anything the offload path reads or lays out: a TUN frame of a
/// vnet header and a 64 KB packet, a GRO super-buffer, or a GSO group and room to seal one
/// more datagram after it.
pub fn super_buf_len(mtu: usize) -> usize {
    MAX_FRAME_LEN.max(MAX_GSO_BYTES + buffer_len(mtu))
}

/// The UDP offloads a worker uses on its sockets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOffloads {
    /// Segmentation on send (`UDP_SEGMENT`).
    pub gso: bool,
    /// Coalescing on receive (`UDP_GRO`), switched on by [`SocketOffloads::enable`].
    pub gro: bool,
}

impl SocketOffloads {
    /// Probes GSO and switches GRO on, on every socket; each counts as on only if every
    /// socket has it. Calling it again on the same sockets changes nothing.
    pub fn enable(sockets: &[Arc<OwnedFd>]) -> Self {
        let mut gso = !sockets.is_empty();
        let mut gro = !sockets.is_empty();
        for socket in sockets {
            gso &= probe_gso(&**socket);
            gro &= enable_gro(&**socket);
        }
        SocketOffloads { gso, gro }
    }
}

/// Sealed datagrams for one destination, back to back from `start`, for one GSO send: all but
/// the last are `stride` bytes; a shorter one ends the group. Empty when `count` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GsoGroup {
    /// Offset of the first datagram in its buffer.
    pub start: usize,
    /// Bytes of all the datagrams.
    pub len: usize,
    /// Size of every datagram but the last.
    pub stride: usize,
    /// Datagrams in the group.
    pub count: usize,
    /// Where they go.
    pub dst: LinkAddr,
    closed: bool,
}

impl GsoGroup {
    /// An empty group whose first datagram will be at `start`.
    pub fn empty(start: usize) -> Self {
        GsoGroup {
            start,
            len: 0,
            stride: 0,
            count: 0,
            dst: LinkAddr::Udp(SocketAddr::from(([0, 0, 0, 0], 0))),
            closed: false,
        }
    }

    /// Whether a full-sized datagram may still join (with segmentation allowed: `gso`).
    pub fn may_grow(&self, gso: bool) -> bool {
        self.count == 0
            || (gso
                && !self.closed
                && self.count < MAX_GSO_SEGMENTS
                && self.len + self.stride <= MAX_GSO_BYTES)
    }

    /// Adds a datagram of `len` bytes to `dst` that lies right after the group, if it may join.
    pub fn push(&mut self, len: usize, dst: LinkAddr, gso: bool) -> bool {
        if self.count == 0 {
            (self.len, self.stride, self.count, self.dst) = (len, len, 1, dst);
            return true;
        }
        if !self.may_grow(gso) || dst != self.dst || len > self.stride {
            return false;
        }
        self.len += len;
        self.count += 1;
        self.closed = len < self.stride;
        true
    }

    /// The `UDP_SEGMENT` size for the send: `None` for a lone datagram.
    pub fn segment_size(&self) -> Option<u16> {
        // A stride is one sealed datagram: below 64 KB.
        (self.count > 1).then_some(self.stride as u16)
    }

    /// The datagrams of the group, as ranges of its buffer.
    pub fn datagrams(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let end = self.start + self.len;
        (0..self.count).map(move |i| {
            let at = self.start + i * self.stride;
            at..(at + self.stride).min(end)
        })
    }
}

/// Where [`Worker::seal_frame`] seals datagrams.
pub trait SealedSink {
    /// Space of at least `need` bytes laid out as [`crate::buf`] says, for the next datagram,
    /// which will start at `datagram_at` of it: the sink places the space so that this is
    /// where its datagrams continue back to back. `None` when there is none (the datagram is
    /// dropped).
    fn space(&mut self, need: usize, datagram_at: usize) -> Option<&mut [u8]>;
    /// The datagram of `len` bytes for `dst` just sealed at `datagram_at` of the last space.
    fn sealed(&mut self, len: usize, dst: LinkAddr);
}

/// Whether a failed GSO send means the path cannot segment (the device cannot checksum), so
/// segmentation is to be switched off for good.
pub fn gso_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EIO)
}

impl Worker {
    /// Whether this worker runs the offload path: its TUN queue carries vnet headers.
    pub(super) fn offloading(&self) -> bool {
        self.tun.has_vnet_hdr()
    }

    /// Segments one frame read from the TUN and seals every segment into `sink` on the route
    /// of its destination (segments of one super-packet share it, so it is looked up once, from
    /// the frame's header, and decides the segment size: the overlay's MTU is smaller); a frame
    /// that cannot be routed or segmented is dropped with its reason, once per segment.
    pub(super) fn seal_frame(&self, now: Duration, frame: &[u8], sink: &mut impl SealedSink) {
        let mtu = self.dataplane.mtu();
        let need = buffer_len(mtu);
        let (hdr, packet) = match VnetHdr::parse(frame) {
            Ok(parsed) => parsed,
            Err(reason) => return self.drop_packet(reason),
        };
        let tables = self.dataplane.tables();
        let route = match ip::destination(packet).and_then(|dst| route(&tables, dst)) {
            Ok(route) => route,
            Err(DropReason::NoRoute) if hdr.gso_type == GsoType::None => {
                return self.reply_to(now, DropReason::NoRoute, packet);
            }
            Err(reason) => {
                let segments = Segmenter::new(&hdr, packet, mtu).map_or(1, |s| s.remaining());
                return (0..segments).for_each(|_| self.drop_packet(reason));
            }
        };
        let segment_mtu = match route {
            Route::Link(_) => mtu,
            Route::Overlay(_) => self.dataplane.overlay_mtu(),
        };
        let mut segmenter = match Segmenter::new(&hdr, packet, segment_mtu) {
            Ok(segmenter) => segmenter,
            Err(DropReason::BadLength) if segment_mtu < mtu => {
                return self.reply_to(now, DropReason::OverlayTooBig, packet);
            }
            Err(reason) => return self.drop_packet(reason),
        };
        let datagram_at = route.encap().datagram_at();
        loop {
            let left = segmenter.remaining();
            let Some(space) = sink.space(need, datagram_at) else {
                return (0..left).for_each(|_| self.drop_packet(DropReason::SendFailed));
            };
            let Some(plain) = space.get_mut(PACKET_AT..PACKET_AT + segment_mtu) else {
                return (0..left).for_each(|_| self.drop_packet(DropReason::BadLength));
            };
            let len = match segmenter.next_into(plain) {
                None => return,
                Some(Ok(len)) => len,
                Some(Err(reason)) => return self.drop_packet(reason),
            };
            match self.dataplane.seal(now, &tables, route, space, len) {
                Ok(Sealed::Datagram { len, dst, .. }) => sink.sealed(len, dst),
                Ok(Sealed::Staged { first }) => self.staged(first),
                Ok(Sealed::Reply { at, len }) if at >= VNET_HDR_LEN => {
                    space[at - VNET_HDR_LEN..at].fill(0);
                    self.write_tun(&space[at - VNET_HDR_LEN..at + len]);
                }
                Ok(Sealed::Reply { .. }) => self.drop_packet(DropReason::BadLength),
                Err(reason) => self.drop_packet(reason),
            }
        }
    }

    /// Answers the whole packet `packet`, refused for `reason`, with the ICMPv6 error the
    /// pipeline writes for it, behind a zero vnet header; counts the drop when none is due.
    fn reply_to(&self, now: Duration, reason: DropReason, packet: &[u8]) {
        let mut scratch = [0u8; PACKET_AT + MAX_MTU + VNET_HDR_LEN];
        let Some(copy) = scratch.get_mut(PACKET_AT..PACKET_AT + packet.len()) else {
            return self.drop_packet(reason);
        };
        copy.copy_from_slice(packet);
        let reply = ip::destination(packet).ok().and_then(|dst| {
            self.dataplane
                .icmp_reply(now, reason, dst, &mut scratch, packet.len())
        });
        match reply {
            Some(Sealed::Reply { at, len }) if at >= VNET_HDR_LEN => {
                scratch[at - VNET_HDR_LEN..at].fill(0);
                self.write_tun(&scratch[at - VNET_HDR_LEN..at + len]);
            }
            _ => self.drop_packet(reason),
        }
    }

    /// Opens in place every datagram of `buf` as `meta` describes it (one, or a GRO
    /// super-buffer of several) received on socket `socket`, and delivers the packets through
    /// `rx`; handshakes go to control, forwarded frames to `rx`'s area. Call
    /// [`Worker::flush_received`] after the batch.
    pub(super) fn open_received(
        &self,
        now: Duration,
        buf: &mut [u8],
        meta: &RecvMeta,
        socket: usize,
        rx: &mut OffloadRx,
    ) {
        if meta.truncated {
            return self.drop_truncated(meta.len);
        }
        let Some(data) = buf.get_mut(..meta.len) else {
            return self.drop_packet(DropReason::BadLength);
        };
        let size = meta.gro_segment_size.map_or(data.len(), usize::from).max(1);
        let src = LinkAddr::Udp(meta.src);
        let mut sink = Coalescing {
            coalescer: &mut rx.coalescer,
            forwards: rx.forwards.sink(self),
        };
        for datagram in data.chunks_mut(size) {
            self.dispatch(now, src, socket, datagram, &mut sink);
        }
    }

    /// Writes every super-frame the coalescer holds to the TUN, and sends the frames
    /// forwarded since the last flush.
    pub(super) fn flush_received(&self, rx: &mut OffloadRx) {
        rx.coalescer.flush(|frame| self.write_tun(frame));
        self.send_area(&mut rx.forwards);
    }
}

/// Delivery through the coalescer to a TUN queue with a vnet header; forwarded frames are
/// copied into the area, to leave in GSO groups per next link at the flush.
struct Coalescing<'a> {
    coalescer: &'a mut Coalescer,
    forwards: AreaSink<'a>,
}

impl ReceivedSink for Coalescing<'_> {
    /// Hands the opened packet at `datagram[at..at + len]` to the coalescer, or writes it at
    /// once behind a zero vnet header laid over the spent headers before it.
    fn deliver(&mut self, worker: &Worker, datagram: &mut [u8], at: usize, len: usize) {
        let (Some(start), Some(packet)) =
            (at.checked_sub(VNET_HDR_LEN), datagram.get(at..at + len))
        else {
            return worker.drop_packet(DropReason::InvalidInnerPacket);
        };
        if self
            .coalescer
            .push(packet, &mut |frame| worker.write_tun(frame))
            == Push::Held
        {
            return;
        }
        datagram[start..at].fill(0);
        worker.write_tun(&datagram[start..at + len]);
    }

    fn forward(
        &mut self,
        worker: &Worker,
        datagram: &mut [u8],
        at: usize,
        len: usize,
        dst: LinkAddr,
    ) {
        match datagram.get(at..at + len) {
            Some(sealed) => self.forwards.push_copy(sealed, dst),
            None => worker.drop_packet(DropReason::SendFailed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dst(port: u16) -> LinkAddr {
        LinkAddr::Udp(SocketAddr::from(([192, 0, 2, 1], port)))
    }

    #[test]
    fn a_group_takes_equal_datagrams_and_ends_with_a_shorter_one() {
        let mut group = GsoGroup::empty(100);
        assert_eq!(group.segment_size(), None);
        assert!(group.push(1452, dst(1), true));
        assert_eq!(group.segment_size(), None, "one datagram: no segmentation");
        assert!(group.push(1452, dst(1), true));
        assert!(!group.push(1453, dst(1), true), "longer than the stride");
        assert!(!group.push(1452, dst(2), true), "another destination");
        assert!(group.push(600, dst(1), true));
        assert!(!group.may_grow(true), "a short datagram ends the group");
        assert!(!group.push(600, dst(1), true));
        assert_eq!((group.len, group.count, group.stride), (3504, 3, 1452));
        assert_eq!(group.segment_size(), Some(1452));
        assert_eq!(
            group.datagrams().collect::<Vec<_>>(),
            [100..1552, 1552..3004, 3004..3604]
        );
    }

    #[test]
    fn a_group_stops_at_the_segment_and_byte_limits_and_without_gso() {
        let mut by_count = GsoGroup::empty(0);
        for _ in 0..MAX_GSO_SEGMENTS {
            assert!(by_count.push(96, dst(1), true));
        }
        assert!(!by_count.may_grow(true));
        assert!(!by_count.push(96, dst(1), true));

        let mut by_bytes = GsoGroup::empty(0);
        let fits = MAX_GSO_BYTES / 1452;
        for _ in 0..fits {
            assert!(by_bytes.push(1452, dst(1), true));
        }
        assert_eq!(fits, 45);
        assert!(!by_bytes.push(1452, dst(1), true));
        assert!(by_bytes.len <= MAX_GSO_BYTES);

        let mut plain = GsoGroup::empty(0);
        assert!(plain.may_grow(false));
        assert!(plain.push(1452, dst(1), false));
        assert!(!plain.may_grow(false));
        assert!(!plain.push(1452, dst(1), false));
    }

    #[test]
    fn buffers_hold_a_whole_frame_or_a_group_and_one_more_datagram() {
        assert_eq!(
            super_buf_len(1420),
            MAX_FRAME_LEN.max(65_507 + 48 + 1420 + 2 * 16 + 64)
        );
        assert!(super_buf_len(1420) >= VNET_HDR_LEN + 65_535);
        assert!(super_buf_len(9000) >= MAX_GSO_BYTES + buffer_len(9000));
    }
}
