//! PacketRing tests over pipes, loopback UDP and an eventfd (no root needed).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};

use super::EventFd;
use super::uring::{Buf, Completion, PacketRing, probe};

/// Waits for and returns the next completion.
fn next(ring: &mut PacketRing) -> Completion {
    loop {
        if let Some(completion) = ring.completion() {
            return completion;
        }
        ring.submit_and_wait(1).unwrap();
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (reader, writer) = io::pipe().unwrap();
    (reader.into(), writer.into())
}

#[test]
fn probe_finds_every_opcode_on_this_kernel() {
    probe().unwrap();
}

#[test]
fn buffers_are_handed_out_once_and_come_back_on_release() {
    let mut ring = PacketRing::new(&[], 2, 64).unwrap();
    let first = ring.alloc().unwrap();
    let second = ring.alloc().unwrap();
    assert_ne!(first.index(), second.index());
    assert!(ring.alloc().is_none());
    assert_eq!(ring.buf_mut(&first).len(), 64);
    ring.release(first);
    assert_eq!(ring.free_buffers(), 1);
    let again = ring.alloc().unwrap();
    assert_eq!(ring.free_buffers(), 0);
    ring.release(again);
    ring.release(second);
    assert_eq!(ring.free_buffers(), 2);
}

#[test]
fn bad_sizes_and_bad_operations_are_refused() {
    for (buffers, buf_len) in [(0, 64), (super::uring::MAX_BUFFERS + 1, 64), (4, 0)] {
        let err = PacketRing::new(&[], buffers, buf_len).unwrap_err();
        assert_eq!(
            err.kind(),
            io::ErrorKind::InvalidInput,
            "{buffers} x {buf_len}"
        );
    }
    let (reader, _writer) = pipe();
    let mut ring = PacketRing::new(&[reader.as_fd()], 1, 64).unwrap();
    // Past the buffer's end, or on a file slot that was never registered: refused, and the
    // buffer goes back to the pool.
    let buf = ring.alloc().unwrap();
    let err = ring.read(0, buf, 10..65).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let buf = ring.alloc().unwrap();
    let err = ring.read(1, buf, 0..64).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        ring.poll_readable(1).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(ring.free_buffers(), 1);
}

#[test]
fn write_then_read_through_a_pipe_into_ranges_of_buffers() {
    let (reader, writer) = pipe();
    let mut ring = PacketRing::new(&[reader.as_fd(), writer.as_fd()], 2, 64).unwrap();
    let out = ring.alloc().unwrap();
    ring.buf_mut(&out)[8..13].copy_from_slice(b"hello");
    let out_index = out.index();
    ring.write(1, out, 8..13).unwrap();
    let Completion::Write { buf, result } = next(&mut ring) else {
        panic!("expected the write")
    };
    assert_eq!((buf.index(), result.unwrap()), (out_index, 5));
    ring.release(buf);

    let into = ring.alloc().unwrap();
    ring.buf_mut(&into).fill(0);
    ring.read(0, into, 4..64).unwrap();
    let Completion::Read { buf, result } = next(&mut ring) else {
        panic!("expected the read")
    };
    assert_eq!(result.unwrap(), 5);
    assert_eq!(&ring.buf_mut(&buf)[..10], b"\0\0\0\0hello\0");
}

#[test]
fn datagrams_go_out_and_come_in_with_their_sender() {
    let here = UdpSocket::bind("127.0.0.1:0").unwrap();
    let there = UdpSocket::bind("127.0.0.1:0").unwrap();
    let there_addr = there.local_addr().unwrap();
    let mut ring = PacketRing::new(&[here.as_fd()], 2, 32).unwrap();

    let out = ring.alloc().unwrap();
    ring.buf_mut(&out)[..10].copy_from_slice(b"a datagram");
    ring.send(0, out, 2..9, there_addr, None).unwrap();
    let Completion::Send { buf, result } = next(&mut ring) else {
        panic!("expected the send")
    };
    assert_eq!(result.unwrap(), 7);
    let err = ring.send(0, buf, 30..33, there_addr, None).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::InvalidInput,
        "range past the buffer"
    );
    let mut got = [0u8; 64];
    let (len, from) = there.recv_from(&mut got).unwrap();
    assert_eq!(
        (&got[..len], from),
        (&b"datagra"[..], here.local_addr().unwrap()),
        "the range is sent, not the buffer's start"
    );

    for (payload, truncated) in [(&[0x5a; 32][..], false), (&[0xa5; 40][..], true)] {
        let into = ring.alloc().unwrap();
        ring.recv(0, into).unwrap();
        there.send_to(payload, here.local_addr().unwrap()).unwrap();
        let Completion::Recv { file, buf, result } = next(&mut ring) else {
            panic!("expected the receive")
        };
        let meta = result.unwrap();
        assert_eq!(file, 0);
        assert_eq!(meta.src, there_addr);
        assert_eq!(meta.len, 32);
        assert_eq!(meta.truncated, truncated);
        assert_eq!(ring.buf_mut(&buf), &payload[..32]);
        ring.release(buf);
    }
}

#[test]
fn a_send_to_an_unreachable_family_fails_with_the_os_error() {
    let here = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut ring = PacketRing::new(&[here.as_fd()], 1, 32).unwrap();
    let out = ring.alloc().unwrap();
    ring.send(
        0,
        out,
        0..4,
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 9)),
        None,
    )
    .unwrap();
    let Completion::Send { result, .. } = next(&mut ring) else {
        panic!("expected the send")
    };
    let err = result.unwrap_err().raw_os_error();
    assert!(
        matches!(err, Some(libc::EAFNOSUPPORT | libc::EINVAL)),
        "{err:?}"
    );
}

#[test]
fn a_poll_fires_once_per_arming() {
    let wake = EventFd::new().unwrap();
    let mut ring = PacketRing::new(&[wake.as_fd()], 1, 8).unwrap();
    ring.poll_readable(0).unwrap();
    ring.poll_readable(0).unwrap();
    wake.notify();
    let Completion::Poll { file, result } = next(&mut ring) else {
        panic!("expected the poll")
    };
    assert_eq!(file, 0);
    result.unwrap();
    ring.submit_and_wait(0).unwrap();
    assert!(
        ring.completion().is_none(),
        "one poll armed, one completion"
    );
}

#[test]
fn dropping_a_ring_with_operations_in_flight_cancels_them() {
    let (mut reader, mut writer) = io::pipe().unwrap();
    let wake = EventFd::new().unwrap();
    let mut ring = PacketRing::new(&[reader.as_fd(), wake.as_fd()], 4, 16).unwrap();
    let bufs: Vec<Buf> = (0..4).map_while(|_| ring.alloc()).collect();
    for buf in bufs {
        ring.read(0, buf, 0..16).unwrap();
    }
    ring.poll_readable(1).unwrap();
    ring.submit_and_wait(0).unwrap();
    drop(ring);
    // None of the reads took the bytes written after the drop.
    writer.write_all(b"late").unwrap();
    drop(writer);
    let mut left = Vec::new();
    reader.read_to_end(&mut left).unwrap();
    assert_eq!(left, b"late");
}

#[test]
fn a_gso_send_leaves_as_segments_and_gro_brings_them_back_as_one_buffer() {
    let here = UdpSocket::bind("127.0.0.1:0").unwrap();
    let there = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(super::probe_gso(&here) && super::enable_gro(&there));
    let there_addr = there.local_addr().unwrap();
    let mut ring = PacketRing::new(&[here.as_fd(), there.as_fd()], 3, 8192).unwrap();
    let payload: Vec<u8> = (0..3500u32).map(|i| (i / 1000) as u8 + b'a').collect();

    let into = ring.alloc().unwrap();
    ring.recv(1, into).unwrap();
    let out = ring.alloc().unwrap();
    ring.buf_mut(&out)[..payload.len()].copy_from_slice(&payload);
    ring.send(0, out, 0..payload.len(), there_addr, Some(1000))
        .unwrap();
    let mut received = None;
    while received.is_none() {
        match next(&mut ring) {
            Completion::Send { buf, result } => {
                assert_eq!(result.unwrap(), payload.len());
                ring.release(buf);
            }
            Completion::Recv { buf, result, .. } => received = Some((buf, result.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (buf, meta) = received.unwrap();
    assert_eq!(meta.src, here.local_addr().unwrap());
    assert_eq!(meta.gro_segment_size, Some(1000));
    assert_eq!(&ring.buf_mut(&buf)[..meta.len], &payload[..]);

    let err = ring.send(0, buf, 0..10, there_addr, Some(0)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(ring.free_buffers(), 3, "the refused buffer is free again");
}

#[test]
fn copy_between_moves_bytes_from_one_held_buffer_to_another() {
    let mut ring = PacketRing::new(&[], 3, 16).unwrap();
    let from = ring.alloc().unwrap();
    let to = ring.alloc().unwrap();
    ring.buf_mut(&from).copy_from_slice(b"0123456789abcdef");
    ring.buf_mut(&to).fill(b'.');
    ring.copy_between(&from, 4..10, &to).unwrap();
    assert_eq!(ring.buf_mut(&to), b"456789..........");
    let refused = [
        ring.copy_between(&from, 4..17, &to),
        ring.copy_between(&from, 0..4, &from),
    ];
    for result in refused {
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
