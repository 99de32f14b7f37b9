//! The node's local status API: the server on its Unix socket, the client, `rovy-fast status`,
//! and hostile local clients and servers.

mod common;
mod served;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Output};
use std::thread;

use common::{TempDir, fc_key};
use rovy_control::api::{
    Answers, ConnectRequest, DisconnectRequest, HandshakeCounts, LinkStatus, MAX_REQUEST_HEAD_LEN,
    PeerList, PeerStatus, Refusal, RouteList, RouteStatus, Status, WorkerStatus, fetch_status,
    render_routes, render_status,
};
use served::Served;

const BIN: &str = env!("CARGO_BIN_EXE_rovy-fast");

fn drops(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
    entries
        .iter()
        .map(|&(reason, count)| (reason.to_owned(), count))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|&item| item.to_owned()).collect()
}

/// A node with two workers, a rovy peer it has talked to and a wireguard peer it never heard.
fn sample_status() -> Status {
    let node = fc_key(1).public_key();
    let mut status = Status {
        interface: "rovy0".to_owned(),
        public_key: node.to_string(),
        address: node.address().map(|address| address.to_string()),
        backend: "uring".to_owned(),
        listen: strings(&["/ip4/0.0.0.0/udp/1312", "/ip6/::/udp/1312"]),
        offloads: strings(&["gso", "gro"]),
        workers: vec![
            WorkerStatus {
                core: 0,
                rx_packets: 1,
                tx_packets: 2048,
                rx_bytes: 1023,
                tx_bytes: 1536,
                tun_writes: 1,
                drops: drops(&[("bad_mac", 2), ("no_route", 0), ("replay", 5)]),
            },
            WorkerStatus {
                core: 1,
                rx_packets: 0,
                tx_packets: 1,
                rx_bytes: 3 << 19,
                tx_bytes: 0,
                tun_writes: 0,
                drops: drops(&[("bad_mac", 1), ("no_route", 0), ("short", 7)]),
            },
        ],
        drops: BTreeMap::new(),
        drops_total: 0,
        peers: vec![
            PeerStatus {
                public_key: fc_key(2).public_key().to_string(),
                kind: "rovy".to_owned(),
                endpoint: Some("192.0.2.1:1312".to_owned()),
                allowed_ips: strings(&["10.20.0.2/32", "fd00::2/128"]),
                last_handshake_secs_ago: Some(3725),
                rx_bytes: 1024,
                tx_bytes: 5 << 30,
                rx_packets: 8,
                tx_packets: 4 << 20,
                persistent_keepalive: Some(25),
            },
            PeerStatus {
                public_key: fc_key(3).public_key().to_string(),
                kind: "wireguard".to_owned(),
                endpoint: None,
                allowed_ips: Vec::new(),
                last_handshake_secs_ago: None,
                rx_bytes: 0,
                tx_bytes: 0,
                rx_packets: 0,
                tx_packets: 0,
                persistent_keepalive: None,
            },
        ],
        links: vec![LinkStatus {
            slot: 3,
            public_key: fc_key(2).public_key().to_string(),
            rtt_ms: Some(12),
        }],
        routes: 2,
        handshakes: HandshakeCounts {
            initiations_sent: 3,
            responses_sent: 1,
            received: 9,
            cookies_sent: 5,
        },
    };
    status.drops_from_workers();
    status
}

/// Two routes: the neighbour on slot 3, and a node two hops away through it.
fn sample_routes() -> RouteList {
    let route = |seed, label: &str, metric| {
        let key = fc_key(seed).public_key();
        RouteStatus {
            address: key.address().map(|a| a.to_string()),
            peer_id: key.peer_id(),
            public_key: key.to_string(),
            label: label.to_owned(),
            metric,
            next_hop: fc_key(2).public_key().to_string(),
            next_hop_slot: 3,
            age_secs: 4,
            seqno: Some(1_700_000_000),
            source: "announced".to_owned(),
            alternates: 0,
        }
    };
    RouteList {
        routes: vec![route(2, "3", 1), route(4, "3.7", 2)],
    }
}

/// A node that answers with fixed values.
struct Fixed<'a>(&'a Status);

impl Answers for Fixed<'_> {
    fn status(&self) -> Status {
        self.0.clone()
    }

    fn routes(&self) -> RouteList {
        sample_routes()
    }

    fn peers(&self) -> PeerList {
        PeerList {
            peers: self.0.peers.clone(),
        }
    }

    fn connect(&mut self, _: ConnectRequest) -> Result<PeerStatus, Refusal> {
        Err(Refusal::Invalid("a fixed node changes nothing".to_owned()))
    }

    fn disconnect(&mut self, _: DisconnectRequest) -> Result<PeerStatus, Refusal> {
        Err(Refusal::Invalid("a fixed node changes nothing".to_owned()))
    }
}

/// Sends `request` (then ends the stream, if `hang_up`) and reads the answer until the server
/// closes. A server that closes with part of an oversized request unread makes the read end in
/// a reset instead of an end of stream; what arrived before it is the answer.
fn exchange(path: &Path, request: &[u8], hang_up: bool) -> String {
    let mut stream = UnixStream::connect(path).unwrap();
    stream.write_all(request).unwrap();
    if hang_up {
        stream.shutdown(Shutdown::Write).unwrap();
    }
    read_answer(&mut stream)
}

fn read_answer(stream: &mut UnixStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(answer).unwrap()
}

fn text_answer(status_line: &str, extra_header: &str, body: &str) -> String {
    format!(
        "HTTP/1.0 {status_line}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         {extra_header}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn rovy(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn assert_fails(output: &Output, message: &str) {
    assert_eq!(
        std::str::from_utf8(&output.stderr).unwrap(),
        format!("rovy-fast: {message}\n")
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

#[test]
fn drops_sum_over_workers_leaving_out_zero_reasons() {
    let status = sample_status();
    assert_eq!(
        status.drops,
        drops(&[("bad_mac", 3), ("replay", 5), ("short", 7)])
    );
    assert_eq!(status.drops_total, 15);

    let mut saturated = status.clone();
    saturated.workers[1].drops = drops(&[("replay", u64::MAX)]);
    saturated.drops_from_workers();
    assert_eq!(
        saturated.drops,
        drops(&[("bad_mac", 2), ("replay", u64::MAX)])
    );
    assert_eq!(saturated.drops_total, u64::MAX);

    saturated.workers.clear();
    saturated.drops_from_workers();
    assert!(saturated.drops.is_empty());
    assert_eq!(saturated.drops_total, 0);
}

#[test]
fn status_round_trips_and_the_socket_is_root_only() {
    let dir = TempDir::new();
    let path = dir.path().join("run/rovy/rovy0.sock");
    let server = Served::bind(&path).unwrap();
    assert_eq!(server.path(), path);
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let created = dir.path().join("run/rovy");
    assert_eq!(
        mode(&created) & !0o755,
        0,
        "directory mode {:o}",
        mode(&created)
    );
    assert_eq!(
        fs::read_dir(&created).unwrap().count(),
        1,
        "temporary name left"
    );

    let status = sample_status();
    let fetched = server
        .while_serving(&mut Fixed(&status), || fetch_status(&path))
        .unwrap();
    assert_eq!(fetched, status);

    drop(server);
    assert!(!path.exists());
    assert!(
        !dir.path().join("run").exists(),
        "the directories bind created are removed once empty"
    );
    assert!(dir.path().exists(), "a directory that existed before stays");
}

#[test]
fn cli_prints_json_or_a_summary() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let socket = path.to_str().unwrap();
    let server = Served::bind(&path).unwrap();
    let status = sample_status();

    let output = server.while_serving(&mut Fixed(&status), || {
        rovy(&["status", "--socket", socket, "--json"])
    });
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'));
    assert_eq!(serde_json::from_str::<Status>(line).unwrap(), status);

    let output = server.while_serving(&mut Fixed(&status), || {
        rovy(&["status", "--socket", socket])
    });
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{}\n", render_status(&status))
    );
}

#[test]
fn route_list_prints_json_or_a_table() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let socket = path.to_str().unwrap();
    let server = Served::bind(&path).unwrap();
    let status = sample_status();

    let output = server.while_serving(&mut Fixed(&status), || {
        rovy(&["route", "list", "--socket", socket, "--json"])
    });
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let routes: RouteList = serde_json::from_str(stdout.trim_end()).unwrap();
    assert_eq!(routes, sample_routes());

    let output = server.while_serving(&mut Fixed(&status), || {
        rovy(&["route", "list", "--socket", socket])
    });
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let table = String::from_utf8(output.stdout).unwrap();
    assert_eq!(table, format!("{}\n", render_routes(&sample_routes())));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "a header and one line per route:\n{table}");
    assert!(lines[0].starts_with("address") && lines[0].contains("next hop"));
    let far = &sample_routes().routes[1];
    assert!(lines[2].contains(far.address.as_deref().unwrap()));
    assert!(lines[2].contains(" 3.7 ") && lines[2].contains(&far.peer_id));
    assert_eq!(
        render_routes(&RouteList { routes: Vec::new() }),
        "no routes"
    );
}

#[test]
fn cli_names_the_socket_nobody_listens_on() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let socket = path.to_str().unwrap();
    assert_fails(
        &rovy(&["status", "--socket", socket]),
        &format!("no node is listening on {socket} (is rovy-fast running? try --socket)"),
    );
    assert_fails(
        &rovy(&["status", "--interface", "rf-missing-node"]),
        "no node is listening on /run/rovy/rf-missing-node.sock (is rovy-fast running? try --socket)",
    );
    assert_fails(
        &rovy(&["status", "--interface", "../etc"]),
        r#""../etc" is not an interface name"#,
    );
}

#[test]
fn bad_requests_get_errors_and_the_server_keeps_serving() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let server = Served::bind(&path).unwrap();
    let status = sample_status();
    let bad_request = |why: &str| text_answer("400 Bad Request", "", &format!("{why}\n"));

    let pad = |len: usize| "a".repeat(len);
    let head_of = |len: usize| {
        let start = "GET /v0/ping HTTP/1.0\r\nX-Pad: ";
        format!("{start}{}\r\n\r\n", pad(len - start.len() - 4))
    };
    assert_eq!(head_of(MAX_REQUEST_HEAD_LEN).len(), MAX_REQUEST_HEAD_LEN);
    let cases: Vec<(Vec<u8>, bool, String)> = vec![
        (
            b"GET /v0/ping HTTP/1.0\r\n\r\n".to_vec(),
            false,
            text_answer("200 OK", "", "ok\n"),
        ),
        (
            b"GET /v0/ping HTTP/1.1\nHost: node\n\n".to_vec(),
            false,
            text_answer("200 OK", "", "ok\n"),
        ),
        (
            head_of(MAX_REQUEST_HEAD_LEN).into_bytes(),
            false,
            text_answer("200 OK", "", "ok\n"),
        ),
        (
            head_of(MAX_REQUEST_HEAD_LEN + 1).into_bytes(),
            false,
            bad_request("request head over 4096 bytes"),
        ),
        (
            format!("GET /v0/status HTTP/1.0\r\nX-Pad: {}", pad(8192)).into_bytes(),
            false,
            bad_request("request head over 4096 bytes"),
        ),
        (
            vec![0xff, 0x00, 0x13, 0x80, b'\n', b'\n'],
            false,
            bad_request("malformed request line"),
        ),
        (
            b"\x01\x02garbage".to_vec(),
            true,
            bad_request("malformed request line"),
        ),
        // Empty lines before a request line are skipped (RFC 9112 §2.2): this one never comes.
        (
            b"\r\n\r\n".to_vec(),
            false,
            text_answer("408 Request Timeout", "", "request incomplete\n"),
        ),
        (
            b"GET  /v0/status HTTP/1.0\r\n\r\n".to_vec(),
            false,
            bad_request("malformed request line"),
        ),
        (
            b"get /v0/status HTTP/1.0\r\n\r\n".to_vec(),
            false,
            bad_request("malformed request method"),
        ),
        (
            b"GET /v0/status HTTP/2.0\r\n\r\n".to_vec(),
            false,
            bad_request("unsupported HTTP version"),
        ),
        (
            b"POST /v0/status HTTP/1.0\r\n\r\n".to_vec(),
            false,
            text_answer(
                "405 Method Not Allowed",
                "Allow: GET\r\n",
                "only GET is served\n",
            ),
        ),
        (
            b"GET /v0/status?x=1 HTTP/1.0\r\n\r\n".to_vec(),
            false,
            text_answer("404 Not Found", "", "no such path\n"),
        ),
    ];
    for (request, hang_up, expected) in cases {
        let answer =
            server.while_serving(&mut Fixed(&status), || exchange(&path, &request, hang_up));
        assert_eq!(
            answer,
            expected,
            "request {:?}",
            String::from_utf8_lossy(&request)
        );
    }

    let answer = server.while_serving(&mut Fixed(&status), || {
        exchange(&path, b"GET /v0/status HTTP/1.0\r\n\r\n", false)
    });
    let body = serde_json::to_string(&status).unwrap();
    assert_eq!(
        answer,
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
    );
}

#[test]
fn stale_socket_is_replaced() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let server = Served::bind(&path).unwrap();
    let status = sample_status();
    let fetched = server
        .while_serving(&mut Fixed(&status), || fetch_status(&path))
        .unwrap();
    assert_eq!(fetched, status);
}

#[test]
fn live_socket_and_other_files_are_refused() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let server = Served::bind(&path).unwrap();

    let error = Served::bind(&path).err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(
        error.to_string(),
        format!("another node is running on {}", path.display())
    );
    let status = sample_status();
    let fetched = server
        .while_serving(&mut Fixed(&status), || fetch_status(&path))
        .unwrap();
    assert_eq!(fetched, status);

    let file = dir.file("rovy1.sock", "not a socket", 0o644);
    let error = Served::bind(&file).err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(
        error.to_string(),
        format!("{} exists and is not a socket", file.display())
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a socket");
}

#[test]
fn drop_leaves_a_later_nodes_socket_alone() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let first = Served::bind(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let second = Served::bind(&path).unwrap();
    drop(first);
    assert!(path.exists());

    let status = sample_status();
    let fetched = second
        .while_serving(&mut Fixed(&status), || fetch_status(&path))
        .unwrap();
    assert_eq!(fetched, status);
    drop(second);
    assert!(!path.exists());
}

/// Serves one connection with `answer` after reading the request head.
fn fake_node_answering(path: &Path, answer: &[u8]) -> Result<Status, String> {
    let listener = UnixListener::bind(path).unwrap();
    let result = thread::scope(|scope| {
        scope.spawn(|| {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            assert_eq!(head, b"GET /v0/status HTTP/1.0\r\n\r\n");
            stream.write_all(answer).unwrap();
        });
        fetch_status(path)
    });
    fs::remove_file(path).unwrap();
    result
}

#[test]
fn client_rejects_bad_answers() {
    let dir = TempDir::new();
    let path = dir.path().join("rovy0.sock");
    let on = |why: &str| format!("node on {}: {why}", path.display());

    assert_eq!(
        fake_node_answering(
            &path,
            &text_answer("404 Not Found", "", "no such path\n").into_bytes()
        ),
        Err(on("answered 404 Not Found: no such path"))
    );
    assert_eq!(
        fake_node_answering(&path, b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n{}"),
        Err(on("answer truncated or overlong: 2 bytes of 100"))
    );
    assert_eq!(
        fake_node_answering(&path, b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n{}"),
        Err(on(r#"malformed header "Content-Length: x""#))
    );
    assert_eq!(
        fake_node_answering(&path, b"SSH-2.0-OpenSSH\r\n\r\n"),
        Err(on(r#"malformed status line "SSH-2.0-OpenSSH""#))
    );
    assert_eq!(
        fake_node_answering(&path, b"HTTP/1.0 200 OK\r\n"),
        Err(on("malformed answer (no end of head)"))
    );
    let error =
        fake_node_answering(&path, b"HTTP/1.0 200 OK\r\n\r\n{\"interface\":1}").unwrap_err();
    assert!(
        error.starts_with(&format!(
            "node on {} sent an unreadable status: ",
            path.display()
        )),
        "{error}"
    );
}

#[test]
fn render_reads_like_wg_show() {
    let status = sample_status();
    let expected = format!(
        "interface: rovy0
  public key: {node}
  address: {address}
  backend: uring
  listening on: /ip4/0.0.0.0/udp/1312, /ip6/::/udp/1312
  offloads: gso, gro

peer: {rovy_peer}
  kind: rovy
  endpoint: 192.0.2.1:1312
  allowed ips: 10.20.0.2/32, fd00::2/128
  latest handshake: 1 hour, 2 minutes, 5 seconds ago
  transfer: 1.00 KiB received, 5.00 GiB sent
  persistent keepalive: every 25 seconds

peer: {wireguard_peer}
  kind: wireguard
  allowed ips: (none)
  latest handshake: never
  transfer: 0 B received, 0 B sent

links:
  slot 3: {rovy_peer}, rtt 12 ms
routes: 2

workers:
  core 0: rx 1 packet (1023 B), tx 2048 packets (1.50 KiB), 1 TUN write, 7 drops
  core 1: rx 0 packets (1.50 MiB), tx 1 packet (0 B), 0 TUN writes, 8 drops

drops: 15 total
  bad_mac: 3
  replay: 5
  short: 7",
        node = status.public_key,
        address = status.address.as_deref().unwrap(),
        rovy_peer = status.peers[0].public_key,
        wireguard_peer = status.peers[1].public_key,
    );
    assert_eq!(render_status(&status), expected);

    let mut quiet = status;
    quiet.address = None;
    quiet.listen.clear();
    quiet.offloads.clear();
    quiet.peers.clear();
    quiet.workers.clear();
    quiet.peers.push(PeerStatus {
        last_handshake_secs_ago: Some(0),
        ..sample_status().peers[1].clone()
    });
    quiet.drops_from_workers();
    let rendered = render_status(&quiet);
    for line in [
        "  address: none (not an fc00::/8 key)",
        "  listening on: none",
        "  offloads: none",
        "  latest handshake: 0 seconds ago",
        "workers: none\n\ndrops: none",
    ] {
        assert!(rendered.contains(line), "{line:?} missing from\n{rendered}");
    }
}
