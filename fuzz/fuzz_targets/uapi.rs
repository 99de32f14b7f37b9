//! WireGuard's userspace API as its thread reads it (`request_end`, `parse_request` behind
//! `Uapi`): any bytes, no panic. A request ends at its first empty line and not before; what
//! has not ended waits, what is refused gets an `errno=-EINVAL` or `-EPROTO` line. `get=1` is
//! those bytes exactly; a `set=1` has one peer per `public_key` line and one allowed IP per
//! `allowed_ip` line after the peer's last `replace_allowed_ips` (which clears what came before
//! it, as in wireguard-go), host bits cleared, endpoints with a port; written back out as
//! `wg set` writes it, it parses to the same changes. And the changes made into a device, its `get=1`
//! answer (`format_device`) is one answer, ended by its one empty line, that never outgrows the
//! room reserved for it (so no copy of the private key is left behind a reallocation); its
//! counters read back as written, and its settings, sent back as a `set=1` (what `wg syncconf`
//! does with `wg showconf`), parse to the device again.
#![no_main]

use std::fmt::Write as _;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rovy_control::api::calls::{Parsed, Protocol};
use rovy_control::api::uapi::{
    Device, DevicePeer, Errno, Request, SetDevice, SetPeer, Uapi, format_device, parse_request,
    request_end,
};
use zeroize::Zeroizing;

fuzz_target!(|bytes: &[u8]| {
    let end = request_end(bytes);
    check_end(bytes, end);
    let served = Uapi.parse(bytes);
    let Some(end) = end else {
        return assert!(matches!(served, Parsed::More), "not ended, yet {served:?}");
    };
    let request = &bytes[..end];
    match (served, parse_request(request)) {
        (Parsed::Reply(reply), Err(errno)) => {
            assert!(
                matches!(errno, Errno::Invalid | Errno::Protocol),
                "{errno:?}"
            );
            assert_eq!(*reply, errno.reply().into_bytes());
            assert_eq!(errno.reply(), format!("errno=-{}\n\n", errno.code()));
        }
        (Parsed::Call(Request::Get), Ok(Request::Get)) => assert_eq!(request, b"get=1\n\n"),
        (Parsed::Call(Request::Set(set)), Ok(Request::Set(again))) => {
            assert_eq!(set, again);
            check_set(request, &set);
            check_device(&device_of(&set));
        }
        (served, parsed) => panic!("served as {served:?}, parsed as {parsed:?}"),
    }
});

/// The end is just past the first empty line: a leading newline, or the first `\n\n`.
fn check_end(bytes: &[u8], end: Option<usize>) {
    let first = if bytes.first() == Some(&b'\n') {
        Some(1)
    } else {
        (2..=bytes.len()).find(|&at| bytes[..at].ends_with(b"\n\n"))
    };
    assert_eq!(end, first);
}

fn check_set(request: &[u8], set: &SetDevice) {
    let text = std::str::from_utf8(request).expect("accepted bytes that are not text");
    // Per peer, the `allowed_ip` lines after its last `replace_allowed_ips`.
    let mut allowed = Vec::new();
    for line in text.strip_suffix("\n\n").unwrap().split('\n').skip(1) {
        match line.split_once('=').expect("accepted a line without =").0 {
            "public_key" => allowed.push(0),
            "replace_allowed_ips" => *allowed.last_mut().unwrap() = 0,
            "allowed_ip" => *allowed.last_mut().unwrap() += 1,
            _ => {}
        }
    }
    let parsed: Vec<usize> = set
        .peers
        .iter()
        .map(|peer| peer.allowed_ips.len())
        .collect();
    assert_eq!(parsed, allowed, "peers and their allowed IPs");
    for peer in &set.peers {
        assert!(peer.endpoint.is_none_or(|addr| addr.port() != 0));
        for prefix in &peer.allowed_ips {
            assert_eq!(prefix.masked(), *prefix, "{prefix} keeps host bits");
        }
    }
    let written = write_set(set);
    match parse_request(written.as_bytes()) {
        Ok(Request::Set(again)) => assert_eq!(&again, set, "changed through\n{written}"),
        other => panic!("{written:?} read back as {other:?}"),
    }
}

/// `set` as `wg set` and `wg syncconf` write it: device keys first, then each peer's.
fn write_set(set: &SetDevice) -> String {
    let mut out = String::from("set=1\n");
    if let Some(key) = &set.private_key {
        writeln!(out, "private_key={}", hex(key)).unwrap();
    }
    if let Some(port) = set.listen_port {
        writeln!(out, "listen_port={port}").unwrap();
    }
    if let Some(mark) = set.fwmark {
        writeln!(out, "fwmark={mark}").unwrap();
    }
    if set.replace_peers {
        out.push_str("replace_peers=true\n");
    }
    for peer in &set.peers {
        write_peer(&mut out, peer);
    }
    out.push('\n');
    out
}

fn write_peer(out: &mut String, peer: &SetPeer) {
    writeln!(out, "public_key={}", hex(&peer.public_key)).unwrap();
    if peer.remove {
        out.push_str("remove=true\n");
    }
    if peer.update_only {
        out.push_str("update_only=true\n");
    }
    if let Some(psk) = &peer.preshared_key {
        writeln!(out, "preshared_key={}", hex(psk)).unwrap();
    }
    if let Some(endpoint) = peer.endpoint {
        writeln!(out, "endpoint={endpoint}").unwrap();
    }
    if let Some(seconds) = peer.persistent_keepalive {
        writeln!(out, "persistent_keepalive_interval={seconds}").unwrap();
    }
    if peer.replace_allowed_ips {
        out.push_str("replace_allowed_ips=true\n");
    }
    for prefix in &peer.allowed_ips {
        writeln!(out, "allowed_ip={prefix}").unwrap();
    }
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A device with the settings `set` names (its removed peers too), and counters drawn from
/// each peer's key so that every field of the answer varies.
fn device_of(set: &SetDevice) -> Device {
    let peers = set
        .peers
        .iter()
        .map(|peer| {
            let word =
                |at: usize| u64::from_le_bytes(peer.public_key[at..at + 8].try_into().unwrap());
            DevicePeer {
                public_key: peer.public_key,
                preshared_key: peer.preshared_key.clone(),
                endpoint: peer.endpoint,
                last_handshake: (word(0) & 1 == 1)
                    .then(|| Duration::new(word(8), (word(16) % 1_000_000_000) as u32)),
                rx_bytes: word(16),
                tx_bytes: word(24),
                persistent_keepalive: peer.persistent_keepalive.unwrap_or(0),
                allowed_ips: peer.allowed_ips.clone(),
            }
        })
        .collect();
    Device {
        private_key: Box::new(set.private_key.clone().unwrap_or_default()),
        listen_port: set.listen_port.unwrap_or(0),
        fwmark: set.fwmark.unwrap_or(0),
        peers,
    }
}

fn check_device(device: &Device) {
    let answer = format_device(device);
    let room = 256
        + device
            .peers
            .iter()
            .map(|peer| 512 + 64 * peer.allowed_ips.len())
            .sum::<usize>();
    assert!(answer.len() <= room, "the answer outgrew its room");
    assert_eq!(request_end(answer.as_bytes()), Some(answer.len()));
    let settings = answer
        .strip_suffix("errno=0\n\n")
        .expect("no errno=0 at the end");
    let mut counters = Vec::new();
    let mut sent = String::from("set=1\n");
    for line in settings.lines() {
        let (key, value) = line.split_once('=').expect("a line without =");
        match key {
            "last_handshake_time_sec" | "last_handshake_time_nsec" | "tx_bytes" | "rx_bytes" => {
                counters.push(value.parse::<u64>().expect("a counter that is no number"));
            }
            _ => writeln!(sent, "{line}").unwrap(),
        }
    }
    sent.push('\n');
    let written: Vec<u64> = device
        .peers
        .iter()
        .flat_map(|peer| {
            let at = peer.last_handshake.unwrap_or_default();
            [
                at.as_secs(),
                u64::from(at.subsec_nanos()),
                peer.tx_bytes,
                peer.rx_bytes,
            ]
        })
        .collect();
    assert_eq!(counters, written);
    let expected = SetDevice {
        private_key: Some(Zeroizing::new(**device.private_key)),
        listen_port: Some(device.listen_port),
        // Written only when set, as WireGuard does.
        fwmark: (device.fwmark != 0).then_some(device.fwmark),
        replace_peers: false,
        peers: device
            .peers
            .iter()
            .map(|peer| SetPeer {
                public_key: peer.public_key,
                remove: false,
                update_only: false,
                preshared_key: peer.preshared_key.clone(),
                endpoint: peer.endpoint,
                persistent_keepalive: Some(peer.persistent_keepalive),
                replace_allowed_ips: false,
                allowed_ips: peer.allowed_ips.clone(),
            })
            .collect(),
    };
    match parse_request(sent.as_bytes()) {
        Ok(Request::Set(again)) => assert_eq!(again, expected, "get answer read back\n{sent}"),
        other => panic!("get answer {sent:?} sent back as set: {other:?}"),
    }
}
