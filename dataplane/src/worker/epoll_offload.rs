//! The readiness backend's offload loops (see `offload` for the path itself): TUN frames are
//! read one per `read` into a super-buffer and sealed into a send area, whose GSO groups go
//! out with one `sendmmsg` (see `area`); datagrams come in with one `recvmmsg` into
//! super-buffers.

use super::area::AreaTx;
use super::offload::{OffloadRx, SocketOffloads, super_buf_len};
use super::{BATCH, ROUNDS_PER_WAKE, Worker};
use crate::buf::buffer_len;
use crate::offload::MAX_FRAME_LEN;
use crate::sys::RecvBatch;
use crate::sys::TunQueue;

/// Frames read from the TUN per round before the area is sent.
const FRAMES_PER_ROUND: usize = 16;
/// Receive buffers per `recvmmsg` with GRO on (each holds a whole super-buffer).
const GRO_RECVS: usize = 16;
/// The offload path's preallocated buffers.
pub(super) struct OffloadIo {
    /// One frame read from the TUN.
    frame: Box<[u8]>,
    tx: AreaTx,
    recv_pool: Box<[u8]>,
    recv_len: usize,
    recvs: usize,
    recv: RecvBatch,
    rx: OffloadRx,
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
            tx: AreaTx::new(mtu, offloads),
            recv_pool: vec![0; recvs * recv_len].into_boxed_slice(),
            recv_len,
            recvs,
            recv: RecvBatch::new(recvs),
            rx: OffloadRx::new(tun, mtu, offloads),
        }
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
                        let mut sink = io.tx.sink(self);
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
                self.open_received(now, buf, meta, index, &mut io.rx);
            }
            self.flush_received(&mut io.rx);
            if received < io.recvs {
                return;
            }
        }
    }
}
