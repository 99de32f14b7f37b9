//! UDP socket and batch tests on the loopback interface.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::{
    Datagram, MAX_BATCH, RecvBatch, SendBatch, UdpSocketBuilder, enable_gro, probe_gso, set_mark,
};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A bound data-path socket as a std socket, with a receive timeout so a test cannot hang.
fn bound(at: &str) -> UdpSocket {
    let socket = UdpSocket::from(UdpSocketBuilder::new().bind(addr(at)).unwrap());
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
}

/// Receives exactly `count` datagrams with `batch` into 2 KB buffers and returns
/// (payload, source, GRO segment size) for each.
fn receive(
    batch: &mut RecvBatch,
    socket: &UdpSocket,
    count: usize,
    buf_len: usize,
) -> Vec<(Vec<u8>, SocketAddr, Option<u16>)> {
    let mut storage = vec![vec![0u8; buf_len]; batch.capacity()];
    let mut out = Vec::new();
    while out.len() < count {
        let mut bufs: Vec<&mut [u8]> = storage.iter_mut().map(Vec::as_mut_slice).collect();
        let metas = batch.recv_batch(socket, &mut bufs).unwrap().to_vec();
        for (meta, buf) in metas.iter().zip(&storage) {
            assert!(!meta.truncated);
            out.push((buf[..meta.len].to_vec(), meta.src, meta.gro_segment_size));
        }
    }
    assert_eq!(out.len(), count, "no more than asked for");
    out
}

fn payload(i: usize) -> Vec<u8> {
    let mut payload = format!("datagram {i}:").into_bytes();
    payload.extend((0..i).map(|j| (i * 7 + j) as u8));
    payload
}

fn moves_100_datagrams(local: &str) {
    let receiver = bound(local);
    let to = receiver.local_addr().unwrap();
    let senders = [bound(local), bound(local)];
    let payloads: Vec<Vec<u8>> = (0..100).map(payload).collect();
    let mut send = SendBatch::new(MAX_BATCH);
    let mut expected = Vec::new();
    for (half, sender) in payloads.chunks(50).zip(&senders) {
        let msgs: Vec<Datagram<'_>> = half
            .iter()
            .map(|payload| Datagram {
                payload,
                dst: to,
                segment_size: None,
            })
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += send.send_batch(sender, &msgs[sent..]).unwrap();
        }
        let from = sender.local_addr().unwrap();
        expected.extend(half.iter().map(|payload| (payload.clone(), from, None)));
    }
    let mut recv = RecvBatch::new(MAX_BATCH);
    assert_eq!(receive(&mut recv, &receiver, 100, 2048), expected);
}

#[test]
fn batches_move_100_datagrams_with_contents_and_sources_over_ipv4() {
    moves_100_datagrams("127.0.0.1:0");
}

#[test]
fn batches_move_100_datagrams_with_contents_and_sources_over_ipv6() {
    moves_100_datagrams("[::1]:0");
}

#[test]
fn a_batch_larger_than_its_capacity_is_sent_in_part() {
    let receiver = bound("127.0.0.1:0");
    let sender = bound("127.0.0.1:0");
    let msgs = [b"one", b"two", b"six"].map(|payload| Datagram {
        payload,
        dst: receiver.local_addr().unwrap(),
        segment_size: None,
    });
    let mut send = SendBatch::new(2);
    assert_eq!(send.send_batch(&sender, &msgs).unwrap(), 2);
    assert_eq!(send.send_batch(&sender, &msgs[2..]).unwrap(), 1);
    assert_eq!(send.send_batch(&sender, &[]).unwrap(), 0);
    let mut recv = RecvBatch::new(2);
    let got: Vec<Vec<u8>> = receive(&mut recv, &receiver, 3, 16)
        .into_iter()
        .map(|(payload, _, _)| payload)
        .collect();
    assert_eq!(got, [b"one", b"two", b"six"]);
    assert!(recv.recv_batch(&receiver, &mut []).unwrap().is_empty());
}

#[test]
fn capacities_are_clamped_to_what_one_call_takes() {
    assert_eq!(RecvBatch::new(0).capacity(), 1);
    assert_eq!(SendBatch::new(5000).capacity(), 1024);
    assert_eq!(RecvBatch::new(MAX_BATCH).capacity(), 64);
}

#[test]
fn a_datagram_longer_than_its_buffer_is_reported_truncated() {
    let receiver = bound("127.0.0.1:0");
    let sender = bound("127.0.0.1:0");
    sender
        .send_to(&[9; 100], receiver.local_addr().unwrap())
        .unwrap();
    let mut small = [0u8; 10];
    let mut recv = RecvBatch::new(4);
    let metas = recv.recv_batch(&receiver, &mut [&mut small]).unwrap();
    assert_eq!(metas.len(), 1);
    assert!(metas[0].truncated);
    assert_eq!(metas[0].len, 10);
    assert_eq!(metas[0].src, sender.local_addr().unwrap());
    assert_eq!(small, [9; 10]);
}

#[test]
fn nonblocking_sockets_report_would_block() {
    let socket = UdpSocketBuilder::new()
        .nonblocking(true)
        .bind(addr("127.0.0.1:0"))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = RecvBatch::new(1)
        .recv_batch(&socket, &mut [&mut buf])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn v4_and_v6_wildcards_share_a_port_and_reuseport_shares_an_address() {
    let v6 = bound("[::]:0");
    let port = v6.local_addr().unwrap().port();
    let _v4 = bound(&format!("0.0.0.0:{port}"));

    let builder = UdpSocketBuilder::new().reuseport(true);
    let first = builder.bind(addr("127.0.0.1:0")).unwrap();
    let shared = UdpSocket::from(first).local_addr().unwrap();
    let first = builder.bind(shared).unwrap();
    let _second = builder.bind(shared).unwrap();
    let err = UdpSocketBuilder::new().bind(shared).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert_eq!(
        err.to_string(),
        format!("bind UDP {shared}: Address already in use (os error 98)")
    );
    drop(first);
}

#[test]
fn a_v6_socket_does_not_send_to_v4() {
    let v6 = bound("[::1]:0");
    let msgs = [Datagram {
        payload: b"x",
        dst: addr("127.0.0.1:9"),
        segment_size: None,
    }];
    assert!(SendBatch::new(1).send_batch(&v6, &msgs).is_err());
}

fn socket_int_option(fd: &OwnedFd, name: libc::c_int) -> libc::c_int {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writing for the call; the kernel writes one int.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    assert_eq!(ret, 0, "{}", io::Error::last_os_error());
    value
}

#[test]
fn buffer_sizes_are_set_past_the_system_limit_with_the_capability() {
    let socket = UdpSocketBuilder::new()
        .recv_buffer(16 << 20)
        .send_buffer(8 << 20)
        .bind(addr("127.0.0.1:0"))
        .unwrap();
    // The kernel doubles what it is given; running as root, rmem_max does not cap it.
    assert_eq!(socket_int_option(&socket, libc::SO_RCVBUF), 32 << 20);
    assert_eq!(socket_int_option(&socket, libc::SO_SNDBUF), 16 << 20);

    let err = UdpSocketBuilder::new()
        .recv_buffer(1 << 31)
        .bind(addr("127.0.0.1:0"))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        err.to_string(),
        "UDP socket for 127.0.0.1:0: set receive buffer 2147483648: larger than 2^31 - 1 bytes"
    );
}

#[test]
fn the_firewall_mark_is_set_at_bind_and_changed_later() {
    let unmarked = UdpSocketBuilder::new().bind(addr("127.0.0.1:0")).unwrap();
    assert_eq!(socket_int_option(&unmarked, libc::SO_MARK), 0);
    let marked = UdpSocketBuilder::new()
        .mark(51820)
        .bind(addr("[::1]:0"))
        .unwrap();
    assert_eq!(socket_int_option(&marked, libc::SO_MARK), 51820);
    set_mark(&marked, 0xffff_fffe).unwrap();
    assert_eq!(
        socket_int_option(&marked, libc::SO_MARK) as u32,
        0xffff_fffe
    );
    set_mark(&marked, 0).unwrap();
    assert_eq!(socket_int_option(&marked, libc::SO_MARK), 0);
}

/// 3500 bytes whose segments of 1000 are filled with 'a', 'b', 'c' and (500 of) 'd'.
fn super_buffer() -> Vec<u8> {
    (0..3500u32).map(|i| b'a' + (i / 1000) as u8).collect()
}

#[test]
fn gso_sends_one_super_buffer_as_several_datagrams() {
    let receiver = bound("127.0.0.1:0");
    let sender = bound("127.0.0.1:0");
    let supported = probe_gso(&sender);
    println!("UDP GSO (UDP_SEGMENT) supported: {supported}");
    let payload = super_buffer();
    let msgs = [Datagram {
        payload: &payload,
        dst: receiver.local_addr().unwrap(),
        segment_size: Some(1000),
    }];
    let mut send = SendBatch::new(4);
    if !supported {
        assert!(send.send_batch(&sender, &msgs).is_err());
        return;
    }
    assert_eq!(send.send_batch(&sender, &msgs).unwrap(), 1);
    let got = receive(&mut RecvBatch::new(8), &receiver, 4, 2048);
    let from = sender.local_addr().unwrap();
    let expected: Vec<_> = payload
        .chunks(1000)
        .map(|segment| (segment.to_vec(), from, None))
        .collect();
    assert_eq!(got, expected);

    let zero = [Datagram {
        segment_size: Some(0),
        ..msgs[0]
    }];
    let err = send.send_batch(&sender, &zero).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "GSO segment size 0");
}

#[test]
fn gro_receives_a_super_buffer_with_its_segment_size() {
    let receiver = bound("127.0.0.1:0");
    let sender = bound("127.0.0.1:0");
    let gro = enable_gro(&receiver);
    println!("UDP GRO (UDP_GRO) supported: {gro}");
    if !(gro && probe_gso(&sender)) {
        return;
    }
    let payload = super_buffer();
    let to = receiver.local_addr().unwrap();
    let msgs = [
        Datagram {
            payload: &payload,
            dst: to,
            segment_size: Some(1000),
        },
        Datagram {
            payload: b"single",
            dst: to,
            segment_size: None,
        },
    ];
    assert_eq!(SendBatch::new(2).send_batch(&sender, &msgs).unwrap(), 2);
    let from = sender.local_addr().unwrap();
    let got = receive(&mut RecvBatch::new(2), &receiver, 2, 65536);
    assert_eq!(
        got,
        [
            (payload, from, Some(1000)),
            (b"single".to_vec(), from, None)
        ]
    );
}
