//! Steering each peer's data to one worker: a classic BPF program on the SO_REUSEPORT group
//! picks the socket (= worker) from the receiver index in the data message, so the control thread
//! can give every peer a home worker by choosing its indices ([`steered_index`]).
//!
//! Why: without it the kernel hashes the sender's address, and two peers land on one worker half
//! of the time. The TUN then follows, because a multi-queue TUN sends a flow's packets to the
//! queue that last wrote packets of that flow, which is the home worker's queue.
//!
//! For UDP the program sees the datagram payload at offset 0 (the kernel pulls the UDP header
//! first). Byte 4 is the lowest byte of the little-endian receiver index of a data message; the
//! program returns `byte % workers`. Handshake messages carry a random sender index there and
//! land on any worker, which is fine: they are handed to the control thread.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

use super::check;

/// Offset of the receiver index in a data message.
const RECEIVER_INDEX_OFFSET: u32 = 4;

/// Attaches the steering program to the reuseport group of `fd` (any member; the program serves
/// the whole group, whose sockets are numbered in bind order). `workers` must be the group size.
pub fn steer_by_receiver_index(fd: impl AsFd, workers: usize) -> io::Result<()> {
    let n = u32::try_from(workers)
        .ok()
        .filter(|n| (1..=256).contains(n))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "1..=256 workers"))?;
    let mut program = [
        // A = payload[4] (the low byte of the little-endian receiver index)
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: RECEIVER_INDEX_OFFSET,
        },
        // A = A % workers
        libc::sock_filter {
            code: (libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: n,
        },
        // return A: the socket index in the group
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_A) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, which outlives the call; the kernel copies it.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&raw const fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    check(ret, "SO_ATTACH_REUSEPORT_CBPF").map(drop)
}

/// `candidate` changed only in its lowest byte so that the steering program sends data
/// messages carrying it to `worker` of `workers`.
pub fn steered_index(candidate: u32, worker: usize, workers: usize) -> u32 {
    let n = workers.clamp(1, 256) as u32;
    let w = worker as u32 % n;
    let low = candidate & 0xff;
    let mut steered = low - low % n + w;
    if steered > 0xff {
        steered -= n;
    }
    (candidate & !0xff) | steered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::UdpSocketBuilder;
    use std::net::UdpSocket;
    use std::os::fd::OwnedFd;

    #[test]
    fn steered_indices_select_their_worker() {
        for workers in [1usize, 2, 3, 7, 64, 256] {
            for worker in 0..workers {
                for candidate in [0u32, 0xff, 0x1234_56ff, 0xdead_beef, u32::MAX] {
                    let idx = steered_index(candidate, worker, workers);
                    assert_eq!(idx & !0xff, candidate & !0xff, "high bytes kept");
                    assert_eq!((idx & 0xff) as usize % workers, worker);
                }
            }
        }
    }

    #[test]
    fn data_messages_reach_the_socket_their_index_names() {
        // Three sockets in one reuseport group on loopback; each datagram must arrive on the
        // socket its receiver index is steered to.
        let bind = |addr: &str| {
            UdpSocketBuilder::new()
                .reuseport(true)
                .bind(addr.parse().unwrap())
                .unwrap()
        };
        let first = bind("127.0.0.1:0");
        let port = UdpSocket::from(first.try_clone().unwrap())
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let sockets: Vec<OwnedFd> = vec![first, bind(&addr), bind(&addr)];
        steer_by_receiver_index(&sockets[0], 3).unwrap();
        let dst: std::net::SocketAddr = addr.parse().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for worker in [2usize, 0, 1, 2] {
            let idx = steered_index(0xabcd_ef00, worker, 3);
            let mut msg = [4u8, 0, 0, 0, 0, 0, 0, 0];
            msg[4..8].copy_from_slice(&idx.to_le_bytes());
            sender.send_to(&msg, dst).unwrap();
            let receiver = UdpSocket::from(sockets[worker].try_clone().unwrap());
            receiver
                .set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, _) = receiver.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg, "worker {worker}");
        }
    }
}
