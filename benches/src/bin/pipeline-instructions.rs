//! Drives packets through the in-memory pipeline (seal on node A, open on node B) for
//! `scripts/callgrind-pipeline.sh`, which counts the instructions under callgrind: a figure that
//! does not move with machine load, so CI can catch per-packet regressions without timing.
//!
//! Usage: `pipeline-instructions PACKETS SIZE`.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::buf::{PACKET_AT, buffer_len};
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::peer::{PeerShared, Sealed};
use rovy_dataplane::pipeline::{Dataplane, Inbound};
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::tables::{PeerKind, Tables};

const MTU: usize = 1420;
const A_INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const UNDER: LinkAddr = LinkAddr::Udp(SocketAddr::new(
    std::net::IpAddr::V4(Ipv4Addr::new(10, 8, 0, 1)),
    1,
));

fn node(peer_inner: Ipv4Addr, session: Session) -> Result<Dataplane, String> {
    let local = session.local_index();
    let peer = Arc::new(PeerShared::new(0, Some(UNDER)));
    peer.install(session);
    let index = Arc::new(IndexTable::new());
    index.insert(local, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    routes
        .insert(peer_inner.into(), 32, 0)
        .map_err(|e| format!("{e:?}"))?;
    Ok(Dataplane::new(
        index,
        Tables::new(routes, vec![peer], vec![PeerKind::Rovy]),
        MTU,
    ))
}

fn run(packets: u64, size: usize) -> Result<(), String> {
    if !(20..=MTU).contains(&size) {
        return Err(format!("SIZE must be 20..={MTU}"));
    }
    let key = |b| SymmetricKey::from_bytes([b; 32]);
    let a = node(
        B_INNER,
        Session::new(1, 2, key(1), key(2), true, Duration::ZERO),
    )?;
    let b = node(
        A_INNER,
        Session::new(2, 1, key(2), key(1), true, Duration::ZERO),
    )?;
    let mut ip = vec![0x5au8; size];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    ip[12..16].copy_from_slice(&A_INNER.octets());
    ip[16..20].copy_from_slice(&B_INNER.octets());
    let mut buf = vec![0u8; buffer_len(MTU)];
    let now = Duration::from_secs(1);
    for _ in 0..packets {
        buf[PACKET_AT..PACKET_AT + size].copy_from_slice(&ip);
        let sealed = a
            .outbound(now, &mut buf, size)
            .map_err(|r| format!("seal: {r:?}"))?;
        let Sealed::Datagram { at, len, .. } = sealed else {
            return Err("seal: staged, no session".to_owned());
        };
        match b.inbound(now, UNDER, &mut buf[at..at + len]) {
            Ok(Inbound::Deliver { len, .. }) if len == size => {}
            other => return Err(format!("open: {other:?}")),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match (args.get(1), args.get(2)) {
        (Some(p), Some(s)) => p.parse::<u64>().ok().zip(s.parse::<usize>().ok()),
        _ => None,
    };
    let Some((packets, size)) = parsed else {
        eprintln!("usage: pipeline-instructions PACKETS SIZE");
        return ExitCode::from(2);
    };
    match run(packets, size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline-instructions: {e}");
            ExitCode::FAILURE
        }
    }
}
