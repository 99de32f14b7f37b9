//! What a worker does with a received datagram, once for every backend: [`Worker::dispatch`]
//! opens it through the pipeline and acts on the verdict. This is the one place verdicts are
//! matched; each backend supplies only its I/O, as a [`ReceivedSink`] (the receive side's
//! counterpart of [`super::offload::SealedSink`]).

use std::time::Duration;

use super::Worker;
use crate::DropReason;
use crate::control_queue::Screened;
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::pipeline::Inbound;
use crate::sys::SendBatch;

/// The I/O a backend does for the verdicts that release bytes.
pub(super) trait ReceivedSink {
    /// Writes the IP packet at `datagram[at..at + len]` to the TUN (or hands it to the
    /// coalescer that will); counts what it writes or drops on `worker`.
    fn deliver(&mut self, worker: &Worker, datagram: &mut [u8], at: usize, len: usize);

    /// Sends the datagram at `datagram[at..at + len]`, sealed for another link, to `dst`;
    /// counts what it sends or drops on `worker`.
    fn forward(
        &mut self,
        worker: &Worker,
        datagram: &mut [u8],
        at: usize,
        len: usize,
        dst: LinkAddr,
    );
}

impl Worker {
    /// Counts the datagram received from `src` on socket `socket`, opens it in place and acts
    /// on the pipeline's verdict: deliver through `sink`, hand a handshake to control, or count
    /// the drop.
    pub(super) fn dispatch(
        &self,
        now: Duration,
        src: LinkAddr,
        socket: usize,
        datagram: &mut [u8],
        sink: &mut impl ReceivedSink,
    ) {
        WorkerCounters::add(&self.counters.rx_packets, 1);
        WorkerCounters::add(&self.counters.rx_bytes, datagram.len() as u64);
        match self.dataplane.inbound(now, src, datagram) {
            Ok(Inbound::Deliver { at, len }) => sink.deliver(self, datagram, at, len),
            Ok(Inbound::Forward { at, len, dst }) => sink.forward(self, datagram, at, len, dst),
            Ok(Inbound::Bounce { at, len, dst }) => {
                self.drop_packet(DropReason::DeadSlot);
                sink.forward(self, datagram, at, len, dst);
            }
            Ok(Inbound::Control { at, len, peer }) => match datagram.get(at..at + len) {
                Some(frame) => self.frame_to_control(peer, frame),
                None => self.drop_packet(DropReason::FrameTruncated),
            },
            Ok(Inbound::Keepalive) => {}
            Ok(Inbound::Handshake) => self.handshake(now, src, socket, datagram, sink),
            Err(reason) => self.drop_packet(reason),
        }
    }

    /// Shows a handshake message to the screen, then queues it for control, sends the reply
    /// the screen wrote over it back to `src`, or drops it.
    fn handshake(
        &self,
        now: Duration,
        src: LinkAddr,
        socket: usize,
        message: &mut [u8],
        sink: &mut impl ReceivedSink,
    ) {
        let queued = self.control.handshakes.queued();
        match self.control.screen.screen(now, &src, message, queued) {
            Screened::Queue => self.to_control(src, socket, message, false),
            Screened::QueueReserved => self.to_control(src, socket, message, true),
            Screened::Reply { len } => {
                self.drop_packet(DropReason::CookieRequired);
                sink.forward(self, message, 0, len, src);
            }
            Screened::Drop(reason) => self.drop_packet(reason),
        }
    }
}

/// The readiness backend without offloads: one `write` per packet to the worker's TUN queue,
/// and a forwarded frame sent at once from the buffer it was received and re-sealed in.
pub(super) struct PlainIo<'a> {
    pub(super) send: &'a mut SendBatch,
}

impl ReceivedSink for PlainIo<'_> {
    fn deliver(&mut self, worker: &Worker, datagram: &mut [u8], at: usize, len: usize) {
        match datagram.get(at..at + len) {
            Some(packet) => worker.write_tun(packet),
            None => worker.drop_packet(DropReason::InvalidInnerPacket),
        }
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
            Some(sealed) => worker.send_now(self.send, sealed, &dst),
            None => worker.drop_packet(DropReason::SendFailed),
        }
    }
}
