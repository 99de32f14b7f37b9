//! What a worker does with a received datagram, once for every backend: [`Worker::dispatch`]
//! opens it through the pipeline and acts on the verdict. This is the one place verdicts are
//! matched; each backend supplies only its I/O, as a [`ReceivedSink`] (the receive side's
//! counterpart of [`super::offload::SealedSink`]).

use std::time::Duration;

use super::Worker;
use crate::counters::WorkerCounters;
use crate::link_addr::LinkAddr;
use crate::pipeline::Inbound;

/// The I/O a backend does for the verdicts that release bytes.
pub(super) trait ReceivedSink {
    /// Writes the IP packet at `datagram[at..at + len]` to the TUN (or hands it to the
    /// coalescer that will); counts what it writes or drops on `worker`.
    fn deliver(&mut self, worker: &Worker, datagram: &mut [u8], at: usize, len: usize);
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
            Ok(Inbound::Keepalive) => {}
            Ok(Inbound::Handshake) => self.to_control(src, socket, datagram),
            Err(reason) => self.drop_packet(reason),
        }
    }
}

/// Delivery by one `write` per packet to the worker's TUN queue (no vnet header).
pub(super) struct TunWrites;

impl ReceivedSink for TunWrites {
    fn deliver(&mut self, worker: &Worker, datagram: &mut [u8], at: usize, len: usize) {
        match datagram.get(at..at + len) {
            Some(packet) => worker.write_tun(packet),
            None => worker.drop_packet(crate::DropReason::InvalidInnerPacket),
        }
    }
}
