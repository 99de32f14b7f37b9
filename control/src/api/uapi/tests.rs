//! Requests as `wg` writes them, hostile ones, and answers as `wg` reads them.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rovy_dataplane::sys::{Epoll, EventFd};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const KEY_A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
const KEY_B: &str = "ABababababababababababababababababababababababababababababababab";

fn set(lines: &str) -> Result<SetDevice, Errno> {
    let lines = lines.trim_end_matches('\n');
    match parse_request(format!("set=1\n{lines}\n\n").as_bytes())? {
        Request::Set(device) => Ok(device),
        Request::Get => panic!("a set request parsed as get"),
    }
}

#[test]
fn get_and_a_set_of_every_key_parse() {
    assert_eq!(parse_request(b"get=1\n\n"), Ok(Request::Get));
    let device = set(&format!(
        "private_key={KEY_A}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n\
         public_key={KEY_B}\nupdate_only=true\npreshared_key={KEY_A}\nendpoint=[fd00::2]:1312\n\
         persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=10.0.0.7/24\n\
         allowed_ip=fd00::/64\nprotocol_version=1\npublic_key={KEY_A}\nremove=true\n"
    ))
    .unwrap();
    assert_eq!(device.private_key.as_deref(), Some(&[1u8; 32]));
    assert_eq!(
        (device.listen_port, device.fwmark, device.replace_peers),
        (Some(51820), Some(0), true)
    );
    let [b, a] = device.peers.as_slice() else {
        panic!("{:?}", device.peers)
    };
    assert_eq!(b.public_key, [0xab; 32], "hex in either case");
    assert!(b.update_only && !b.remove && b.replace_allowed_ips);
    assert_eq!(b.preshared_key.as_deref(), Some(&[1u8; 32]));
    assert_eq!(b.endpoint, Some("[fd00::2]:1312".parse().unwrap()));
    assert_eq!(b.persistent_keepalive, Some(25));
    let allowed: Vec<String> = b.allowed_ips.iter().map(ToString::to_string).collect();
    assert_eq!(allowed, ["10.0.0.0/24", "fd00::/64"], "host bits cleared");
    assert!(a.remove && a.public_key == [1; 32]);
}

#[test]
fn hostile_requests_are_errnos() {
    let protocol: [&[u8]; 7] = [
        b"",
        b"\n",
        b"get=1\n",
        b"get=2\n\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"set=1\npublic_key=\xff\n\n",
        b"set=1\n\n\n",
    ];
    for bytes in protocol {
        let error = parse_request(bytes).unwrap_err();
        assert!(
            matches!(error, Errno::Protocol | Errno::Invalid),
            "{:?}: {error:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(parse_request(b"get=1\nx=1\n\n"), Err(Errno::Invalid));
    let invalid = [
        "listen_port=65536".to_owned(),
        "listen_port=-1".to_owned(),
        "listen_port=+1".to_owned(),
        "listen_port=".to_owned(),
        "fwmark=99999999999999999999999".to_owned(),
        "replace_peers=false".to_owned(),
        "private_key=01".to_owned(),
        format!("private_key={}", &KEY_A[1..]),
        format!("private_key={KEY_A}0"),
        format!("private_key={}g", &KEY_A[1..]),
        format!("private_key={}é", &KEY_A[2..]),
        "no equals sign".to_owned(),
        "endpoint=10.0.0.1:1".to_owned(),
        "unknown=1".to_owned(),
        format!("public_key={KEY_A}\nremove=yes"),
        format!("public_key={KEY_A}\nendpoint=10.0.0.1"),
        format!("public_key={KEY_A}\nendpoint=10.0.0.1:0"),
        format!("public_key={KEY_A}\nendpoint=host.example:1"),
        format!("public_key={KEY_A}\nendpoint=fd00::1:1"),
        format!("public_key={KEY_A}\npersistent_keepalive_interval=65536"),
        format!("public_key={KEY_A}\nallowed_ip=10.0.0.1/33"),
        format!("public_key={KEY_A}\nallowed_ip=::/129"),
        format!("public_key={KEY_A}\nallowed_ip=10.0.0.1"),
        format!("public_key={KEY_A}\nallowed_ip=10.0.0.1/"),
        format!("public_key={KEY_A}\nallowed_ip=10.0.0.256/32"),
        format!("public_key={KEY_A}\nprotocol_version=2"),
        format!("public_key={KEY_A}\nlisten_port=1"),
    ];
    for lines in invalid {
        assert_eq!(set(&lines).unwrap_err(), Errno::Invalid, "{lines:?}");
    }
}

#[test]
fn mutated_requests_never_panic_and_parse_only_when_well_formed() {
    let valid = format!(
        "set=1\nprivate_key={KEY_A}\nlisten_port=1\npublic_key={KEY_B}\nendpoint=10.0.0.2:5\n\
         allowed_ip=10.0.0.0/8\npersistent_keepalive_interval=5\n\n"
    );
    let mut rng = StdRng::seed_from_u64(11);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut bytes = valid.clone().into_bytes();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[at] = rng.r#gen(),
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.r#gen()),
            }
        }
        if let Ok(request) = parse_request(&bytes) {
            parsed += 1;
            assert!(request_end(&bytes) == Some(bytes.len()) || matches!(request, Request::Get));
        }
    }
    assert!(parsed > 0, "some mutations (a digit changed) still parse");
}

#[test]
fn replace_allowed_ips_drops_the_ones_listed_before_it() {
    // As wireguard-go applies it: line by line, so it clears what came before.
    let device = set(&format!(
        "public_key={KEY_A}\nallowed_ip=10.0.0.1/32\nreplace_allowed_ips=true\n\
         allowed_ip=10.0.0.2/32\npublic_key={KEY_B}\nallowed_ip=10.0.0.3/32\n"
    ))
    .unwrap();
    let allowed: Vec<Vec<String>> = device
        .peers
        .iter()
        .map(|peer| peer.allowed_ips.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(allowed, [vec!["10.0.0.2/32"], vec!["10.0.0.3/32"]]);
    assert!(device.peers[0].replace_allowed_ips && !device.peers[1].replace_allowed_ips);
}

#[test]
fn a_request_ends_at_its_empty_line() {
    assert_eq!(request_end(b"get=1\n"), None);
    assert_eq!(request_end(b"get=1\n\n"), Some(7));
    assert_eq!(request_end(b"set=1\na=b\n\nmore"), Some(11));
    assert_eq!(request_end(b"\n"), Some(1));
}

fn device() -> Device {
    Device {
        private_key: Box::new(Zeroizing::new([1; 32])),
        listen_port: 1312,
        fwmark: 51820,
        peers: vec![
            DevicePeer {
                public_key: [0xab; 32],
                preshared_key: Some(Zeroizing::new([2; 32])),
                endpoint: Some("[fd00::2]:51820".parse().unwrap()),
                last_handshake: Some(Duration::new(1_700_000_000, 5)),
                rx_bytes: 10,
                tx_bytes: 20,
                persistent_keepalive: 25,
                allowed_ips: vec!["10.0.0.0/24".parse().unwrap()],
            },
            DevicePeer {
                public_key: [0xcd; 32],
                preshared_key: None,
                endpoint: None,
                last_handshake: None,
                rx_bytes: 0,
                tx_bytes: 0,
                persistent_keepalive: 0,
                allowed_ips: Vec::new(),
            },
        ],
    }
}

#[test]
fn a_device_is_written_as_wg_reads_it() {
    let ab = "ab".repeat(32);
    let cd = "cd".repeat(32);
    let expected = format!(
        "private_key={}\nlisten_port=1312\nfwmark=51820\n\
         public_key={ab}\npreshared_key={}\nprotocol_version=1\nendpoint=[fd00::2]:51820\n\
         last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\ntx_bytes=20\n\
         rx_bytes=10\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\n\
         public_key={cd}\nprotocol_version=1\nlast_handshake_time_sec=0\n\
         last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\n\
         errno=0\n\n",
        "01".repeat(32),
        "02".repeat(32)
    );
    assert_eq!(*format_device(&device()), expected);
    let unmarked = Device {
        fwmark: 0,
        ..device()
    };
    assert_eq!(
        *format_device(&unmarked),
        expected.replace("fwmark=51820\n", ""),
        "no mark, no line"
    );
    assert_eq!(Errno::Invalid.reply(), "errno=-22\n\n");
}

/// A control thread that answers `get` with [`device`] and refuses every `set`, until `stop`.
fn answer_calls(calls: Calls, wake: &EventFd, stop: &AtomicBool) {
    let mut epoll = Epoll::new(1).unwrap();
    epoll.add_readable(wake, 0).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let _ = epoll.wait(10).unwrap().count();
        wake.drain();
        while let Some(call) = calls.next_call() {
            call.answer_with(|request| match request {
                Request::Get => Answer::Device(device()),
                Request::Set(_) => Answer::Set(Err(Errno::Unsupported)),
            });
        }
    }
}

fn exchange(path: &Path, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_socket_is_root_only_and_serves_every_kind_of_client() {
    let dir = std::env::temp_dir().join(format!("rovy-uapi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("wireguard/rf0.sock");
    let wake = Arc::new(EventFd::new().unwrap());
    let (server, calls) = serve(&path, Arc::clone(&wake)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let control = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || answer_calls(calls, &wake, &stop))
    };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // `wg` checks an interface is there by connecting and hanging up.
    drop(UnixStream::connect(&path).unwrap());
    assert_eq!(
        exchange(&path, b"get=1\n\n"),
        *format_device(&device()),
        "get"
    );
    assert_eq!(exchange(&path, b"set=1\nfwmark=1\n\n"), "errno=-95\n\n");
    assert_eq!(exchange(&path, b"set=1\nbogus\n\n"), "errno=-22\n\n");
    assert_eq!(exchange(&path, b"nonsense\n\n"), "errno=-71\n\n");
    let mut cut_off = UnixStream::connect(&path).unwrap();
    cut_off.write_all(b"set=1\npublic_key=").unwrap();
    cut_off.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    cut_off.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "errno=-71\n\n");

    let start = Instant::now();
    let mut silent = UnixStream::connect(&path).unwrap();
    silent.write_all(b"get=1\n").unwrap();
    let mut answer = String::new();
    silent.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "errno=-71\n\n", "a request that never ends");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(exchange(&path, b"get=1\n\n"), *format_device(&device()));

    drop(server);
    assert!(!path.exists(), "the socket file goes with the server");
    stop.store(true, Ordering::Relaxed);
    control.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
