//! `rovy-fast peer list|connect|disconnect` against a node that records what it is asked.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output};

mod served;

use rovy_control::api::{
    Answers, ConnectRequest, DisconnectRequest, PeerList, PeerStatus, Refusal, RouteList, Status,
    render_peers,
};
use rovy_control::keys::PublicKey;
use served::Served;

const BIN: &str = env!("CARGO_BIN_EXE_rovy-fast");

/// A peer's key; the CLI asks nothing more of it.
fn peer_key(seed: u8) -> PublicKey {
    PublicKey([seed; 32])
}

/// A directory of this test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("rovy-api-peers-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn peer(key: PublicKey, endpoint: Option<&str>) -> PeerStatus {
    PeerStatus {
        public_key: key.to_string(),
        kind: "rovy".to_owned(),
        endpoint: endpoint.map(str::to_owned),
        allowed_ips: vec!["10.20.0.2/32".to_owned()],
        last_handshake_secs_ago: Some(3),
        rx_bytes: 1024,
        tx_bytes: 3 << 20,
        rx_packets: 4,
        tx_packets: 2500,
        persistent_keepalive: None,
    }
}

/// A node with one peer that records the changes it is asked for and refuses keys of seed 9.
#[derive(Default)]
struct Recording {
    peers: Vec<PeerStatus>,
    connects: Vec<ConnectRequest>,
    disconnects: Vec<DisconnectRequest>,
}

impl Answers for Recording {
    fn status(&self) -> Status {
        unimplemented!("not asked in these tests")
    }

    fn routes(&self) -> RouteList {
        RouteList { routes: Vec::new() }
    }

    fn peers(&self) -> PeerList {
        PeerList {
            peers: self.peers.clone(),
        }
    }

    fn connect(&mut self, request: ConnectRequest) -> Result<PeerStatus, Refusal> {
        self.connects.push(request.clone());
        if request.public_key == peer_key(9).to_string() {
            return Err(Refusal::Invalid("too many peers".to_owned()));
        }
        let key: PublicKey = request.public_key.parse().unwrap();
        Ok(peer(key, Some(&request.endpoint)))
    }

    fn disconnect(&mut self, request: DisconnectRequest) -> Result<PeerStatus, Refusal> {
        self.disconnects.push(request.clone());
        self.peers
            .iter()
            .find(|p| p.public_key == request.peer)
            .cloned()
            .ok_or_else(|| Refusal::NotFound(format!("{} is not a peer", request.peer)))
    }
}

/// Runs `rovy-fast ARGS --socket SOCKET` while `node` answers on it.
fn rovy(node: &mut Recording, server: &Served, args: &[&str]) -> Output {
    let socket = server.path().to_str().unwrap().to_owned();
    server.while_serving(node, || {
        Command::new(BIN)
            .args(args)
            .args(["--socket", &socket])
            .output()
            .unwrap()
    })
}

fn stdout(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn node_with_a_peer(name: &str) -> (TempDir, Served, Recording) {
    let dir = TempDir::new(name);
    let server = Served::bind(&dir.0.join("rovy0.sock")).unwrap();
    let node = Recording {
        peers: vec![peer(peer_key(2), Some("192.0.2.2:1312"))],
        ..Recording::default()
    };
    (dir, server, node)
}

#[test]
fn peer_list_prints_a_table_or_json() {
    let (_dir, server, mut node) = node_with_a_peer("peer_list");
    let json = stdout(&rovy(&mut node, &server, &["peer", "list", "--json"]));
    let list: PeerList = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(list.peers, node.peers);
    let table = stdout(&rovy(&mut node, &server, &["peer", "list"]));
    assert_eq!(table, format!("{}\n", render_peers(&list)));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("peer id") && lines[0].contains("allowed ips"));
    let key = peer_key(2);
    for cell in [
        key.peer_id(),
        key.to_string(),
        "192.0.2.2:1312".to_owned(),
        "3s ago".to_owned(),
        "3.00 MiB".to_owned(),
    ] {
        assert!(
            lines[1].contains(&cell),
            "{cell} missing from {:?}",
            lines[1]
        );
    }
    assert_eq!(render_peers(&PeerList { peers: Vec::new() }), "no peers");
}

#[test]
fn peer_connect_takes_a_multiaddr_or_an_endpoint_and_a_key() {
    let (_dir, server, mut node) = node_with_a_peer("connect");
    let key = peer_key(3);
    let multiaddr = format!("/ip4/192.0.2.3/udp/1312/rovy/{}", key.peer_id());
    let out = stdout(&rovy(&mut node, &server, &["peer", "connect", &multiaddr]));
    assert_eq!(
        out,
        format!(
            "connecting to {key} ({}) at 192.0.2.3:1312\n",
            key.peer_id()
        )
    );
    let v6 = format!("/ip6/fd00::3/udp/9/rovy/{}", key.peer_id());
    stdout(&rovy(&mut node, &server, &["peer", "connect", &v6]));
    let peer_id = key.peer_id();
    let args = [
        "peer",
        "connect",
        "localhost:1312",
        "--key",
        &peer_id,
        "--json",
    ];
    let json = stdout(&rovy(&mut node, &server, &args));
    let connected: PeerStatus = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(connected.public_key, key.to_string());
    let base64 = key.to_string();
    let args = ["peer", "connect", "/ip4/192.0.2.3/udp/7", "--key", &base64];
    stdout(&rovy(&mut node, &server, &args));
    let asked: Vec<(&str, &str)> = node
        .connects
        .iter()
        .map(|c| (c.public_key.as_str(), c.endpoint.as_str()))
        .collect();
    assert_eq!(asked.len(), 4);
    assert!(asked.iter().all(|(k, _)| *k == base64), "{asked:?}");
    let endpoints: Vec<&str> = asked.iter().map(|(_, e)| *e).collect();
    assert_eq!(endpoints[0], "192.0.2.3:1312");
    assert_eq!(endpoints[1], "[fd00::3]:9");
    assert!(
        ["127.0.0.1:1312", "[::1]:1312"].contains(&endpoints[2]),
        "localhost is resolved by the CLI: {}",
        endpoints[2]
    );
    assert_eq!(endpoints[3], "192.0.2.3:7");
}

#[test]
fn peer_connect_says_what_is_wrong() {
    let (_dir, server, mut node) = node_with_a_peer("connect_errors");
    let key = peer_key(3).to_string();
    let named = format!("/ip4/192.0.2.3/udp/1/rovy/{}", peer_key(3).peer_id());
    let cases: [(Vec<&str>, String); 4] = [
        (
            vec!["192.0.2.3:1312"],
            "rovy-fast: 192.0.2.3:1312 names no peer: end it with /rovy/PEERID, or add --key PUBKEY\n".to_owned(),
        ),
        (
            vec![&named, "--key", &key],
            format!("rovy-fast: {named} names its peer already; leave out --key\n"),
        ),
        (
            vec!["192.0.2.3:1312", "--key", "nonsense"],
            "rovy-fast: \"nonsense\" is neither a PeerID (bafzqai…) nor a public key\n".to_owned(),
        ),
        (
            vec!["/ip4/192.0.2.3/tcp/1"],
            "rovy-fast: \"/ip4/192.0.2.3/tcp/1\" is not an endpoint (expected HOST:PORT, \
             [IPV6]:PORT, /ip4/ADDR/udp/PORT, /ip6/ADDR/udp/PORT or /dns/HOST/udp/PORT)\n"
                .to_owned(),
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["peer", "connect"];
        full.extend(&args);
        assert_eq!(
            stderr(&rovy(&mut node, &server, &full)),
            expected,
            "{args:?}"
        );
    }
    assert!(
        node.connects.is_empty(),
        "nothing malformed reaches the node"
    );
    let refused = peer_key(9).to_string();
    let args = ["peer", "connect", "192.0.2.9:1", "--key", &refused];
    let error = stderr(&rovy(&mut node, &server, &args));
    assert!(
        error.ends_with(": answered 400 Bad Request: too many peers\n"),
        "{error}"
    );
}

#[test]
fn peer_disconnect_names_the_peer_by_peer_id_or_key() {
    let (_dir, server, mut node) = node_with_a_peer("disconnect");
    let key = peer_key(2);
    let out = stdout(&rovy(
        &mut node,
        &server,
        &["peer", "disconnect", &key.peer_id()],
    ));
    assert_eq!(out, format!("disconnected {key} ({})\n", key.peer_id()));
    let base64 = key.to_string();
    let json = stdout(&rovy(
        &mut node,
        &server,
        &["peer", "disconnect", &base64, "--json"],
    ));
    let gone: PeerStatus = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(gone, node.peers[0]);
    assert_eq!(node.disconnects.len(), 2);
    assert!(node.disconnects.iter().all(|d| d.peer == base64));
    let stranger = peer_key(4);
    let error = stderr(&rovy(
        &mut node,
        &server,
        &["peer", "disconnect", &stranger.peer_id()],
    ));
    assert!(
        error.ends_with(&format!(
            ": answered 404 Not Found: {stranger} is not a peer\n"
        )),
        "{error}"
    );
}

/// A request straight to the socket, as `curl` would send it.
fn raw(node: &mut Recording, server: &Served, path: &Path, request: &[u8]) -> String {
    server.while_serving(node, || {
        let mut stream = UnixStream::connect(path).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
}

#[test]
fn peer_changes_take_post_with_a_json_body() {
    let (_dir, server, mut node) = node_with_a_peer("post");
    let path = server.path().to_owned();
    let answer = raw(
        &mut node,
        &server,
        &path,
        b"GET /v0/peer/connect HTTP/1.0\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.0 405 Method Not Allowed\r\n")
            && answer.contains("Allow: POST\r\n"),
        "{answer}"
    );
    let answer = raw(
        &mut node,
        &server,
        &path,
        b"POST /v0/peer/connect HTTP/1.0\r\nContent-Length: 3\r\n\r\n{x}",
    );
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("malformed body: "), "{answer}");
    let answer = raw(
        &mut node,
        &server,
        &path,
        b"POST /v0/peer/list HTTP/1.0\r\n\r\n",
    );
    assert!(answer.contains("Allow: GET\r\n"), "{answer}");
    assert!(node.connects.is_empty());
}
