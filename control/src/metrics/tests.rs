use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use super::*;
use crate::api::{HandshakeCounts, LinkStatus, PeerStatus, WorkerStatus};

fn status() -> Status {
    let peer = |key: &str, kind: &str, handshake| PeerStatus {
        public_key: key.to_owned(),
        kind: kind.to_owned(),
        endpoint: None,
        allowed_ips: Vec::new(),
        last_handshake_secs_ago: handshake,
        rx_bytes: 1500,
        tx_bytes: 3000,
        rx_packets: 1,
        tx_packets: 2,
        persistent_keepalive: None,
    };
    let worker = |core, rx| WorkerStatus {
        core,
        rx_packets: rx,
        tx_packets: 7,
        rx_bytes: 100,
        tx_bytes: 200,
        tun_writes: 3,
        drops: BTreeMap::new(),
    };
    Status {
        interface: "rovy0".into(),
        public_key: "NODEKEY=".into(),
        address: None,
        backend: "uring".into(),
        listen: Vec::new(),
        offloads: vec!["gso".into(), "gro".into()],
        workers: vec![worker(2, 10), worker(3, 11)],
        drops: BTreeMap::from([("rate_limited".into(), 4), ("replayed".into(), 6)]),
        drops_total: 10,
        peers: vec![
            peer("PEERA=", "rovy", Some(30)),
            peer("PEERB=", "wireguard", None),
        ],
        links: vec![LinkStatus {
            slot: 1,
            public_key: "PEERA=".into(),
            rtt_ms: None,
        }],
        routes: 5,
        handshakes: HandshakeCounts {
            initiations_sent: 3,
            responses_sent: 1,
            received: 9,
            cookies_sent: 5,
        },
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn every_counter_of_the_snapshot_is_a_sample_with_its_labels() {
    let text = render(&status(), 1_000_000);
    let samples = lines(&text);
    for want in [
        r#"rovy_node_info{version="0.1.0",backend="uring",offloads="gso,gro",interface="rovy0",public_key="NODEKEY="} 1"#,
        r#"rovy_peer_rx_bytes_total{public_key="PEERA=",kind="rovy"} 1500"#,
        r#"rovy_peer_tx_bytes_total{public_key="PEERB=",kind="wireguard"} 3000"#,
        r#"rovy_peer_rx_packets_total{public_key="PEERA=",kind="rovy"} 1"#,
        r#"rovy_peer_tx_packets_total{public_key="PEERA=",kind="rovy"} 2"#,
        r#"rovy_peer_latest_handshake_seconds{public_key="PEERA=",kind="rovy"} 999970"#,
        r#"rovy_worker_rx_packets_total{worker="1",cpu="3"} 11"#,
        r#"rovy_worker_tun_writes_total{worker="0",cpu="2"} 3"#,
        r#"rovy_dropped_packets_total{reason="replayed"} 6"#,
        "rovy_handshake_initiations_sent_total 3",
        "rovy_handshake_responses_sent_total 1",
        "rovy_handshake_messages_received_total 9",
        "rovy_cookie_replies_sent_total 5",
        "rovy_handshake_rate_limited_total 4",
        "rovy_links 1",
        "rovy_routes 5",
    ] {
        assert!(samples.contains(&want), "missing {want} in\n{text}");
    }
    assert!(
        !text.contains(r#"rovy_peer_latest_handshake_seconds{public_key="PEERB=""#),
        "a peer never handshaken with has no timestamp"
    );
    assert!(text.contains("# TYPE rovy_peer_rx_bytes counter"));
    assert!(text.ends_with("# EOF\n"));
}

/// Sends `request` to `addr` and returns the whole answer.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_server_asks_the_control_thread_and_answers_only_get_metrics() {
    let wake = Arc::new(EventFd::new().unwrap());
    let (server, scrapes) = MetricsServer::start("127.0.0.1:0".parse().unwrap(), wake).unwrap();
    let control = std::thread::spawn(move || {
        for reply in scrapes.iter().take(1) {
            reply.send(status()).unwrap();
        }
    });
    let ok = exchange(
        server.addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("application/openmetrics-text"), "{ok}");
    assert!(ok.contains("rovy_routes 5"));
    control.join().unwrap();

    let missing = exchange(
        server.addr,
        "GET /status HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let post = exchange(
        server.addr,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let garbage = exchange(server.addr, "\x00\x01 nonsense\r\n\r\n");
    assert!(
        garbage.is_empty() || garbage.starts_with("HTTP/1.1 4"),
        "{garbage}"
    );
}

#[test]
fn a_control_thread_that_is_gone_gets_the_scrape_a_503() {
    let wake = Arc::new(EventFd::new().unwrap());
    let (server, scrapes) = MetricsServer::start("127.0.0.1:0".parse().unwrap(), wake).unwrap();
    drop(scrapes);
    let answer = exchange(
        server.addr,
        "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}
