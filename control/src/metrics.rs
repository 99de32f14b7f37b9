//! Prometheus metrics at `metrics = "ADDR:PORT"` (`GET /metrics`), in the OpenMetrics text
//! format of the `prometheus-client` crate, served over HTTP by `tiny_http` on a thread of its
//! own.
//!
//! Nothing is counted twice for metrics: counters stay where the data path keeps them (per
//! worker, per peer, on the control thread), and a scrape asks the control thread for the same
//! [`Status`] snapshot `rovy-fast status` gets, summed only then. The control thread answers
//! between two turns of its loop, so a scrape never touches a worker and a slow or hostile
//! client only ever holds the metrics thread.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use rovy_dataplane::sys::EventFd;

use crate::api::Status;

/// How long a scrape waits for the control thread's snapshot.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics of `status` in the OpenMetrics text format. `unix_now` (seconds since the epoch)
/// turns "seconds since the last handshake" into the timestamp WireGuard exporters publish.
pub fn render(status: &Status, unix_now: u64) -> String {
    let mut registry = Registry::with_prefix("rovy");
    registry.register_collector(Box::new(Snapshot {
        status: status.clone(),
        unix_now,
    }));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct Snapshot {
    status: Status,
    unix_now: u64,
}

/// Writes one metric family: `name` with `help`, one sample per `(labels, value)`.
fn family<L: prometheus_client::encoding::EncodeLabelSet, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one metric without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let kind = value.metric_type();
    value.encode(encoder.encode_descriptor(name, help, None, kind)?)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.status;
        let counter = MetricType::Counter;
        let gauge = MetricType::Gauge;
        let info = Info::new(vec![
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("backend", s.backend.clone()),
            ("offloads", s.offloads.join(",")),
            ("interface", s.interface.clone()),
            ("public_key", s.public_key.clone()),
        ]);
        info.encode(encoder.encode_descriptor(
            "node",
            "The node: version, worker backend, offloads in use.",
            None,
            info.metric_type(),
        )?)?;

        let peer = |p: &crate::api::PeerStatus| {
            vec![
                ("public_key", p.public_key.clone()),
                ("kind", p.kind.clone()),
            ]
        };
        type PeerField = fn(&crate::api::PeerStatus) -> u64;
        let peer_counters: [(&str, &str, PeerField); 4] = [
            (
                "peer_rx_bytes",
                "Plaintext bytes received from the peer.",
                |p| p.rx_bytes,
            ),
            ("peer_tx_bytes", "Plaintext bytes sent to the peer.", |p| {
                p.tx_bytes
            }),
            (
                "peer_rx_packets",
                "Data messages received from the peer (keepalives aside).",
                |p| p.rx_packets,
            ),
            (
                "peer_tx_packets",
                "Data messages sent to the peer (keepalives aside).",
                |p| p.tx_packets,
            ),
        ];
        for (name, help, field) in peer_counters {
            family(
                &mut encoder,
                name,
                help,
                counter,
                s.peers
                    .iter()
                    .map(|p| (peer(p), ConstCounter::new(field(p)))),
            )?;
        }
        family(
            &mut encoder,
            "peer_latest_handshake_seconds",
            "Unix time of the latest completed handshake with the peer (absent: none yet).",
            gauge,
            s.peers.iter().filter_map(|p| {
                let ago = p.last_handshake_secs_ago?;
                Some((
                    peer(p),
                    ConstGauge::new(self.unix_now.saturating_sub(ago) as i64),
                ))
            }),
        )?;

        let worker =
            |i: usize, core: usize| vec![("worker", i.to_string()), ("cpu", core.to_string())];
        type WorkerField = fn(&crate::api::WorkerStatus) -> u64;
        let worker_counters: [(&str, &str, WorkerField); 5] = [
            ("worker_rx_packets", "Datagrams the worker received.", |w| {
                w.rx_packets
            }),
            ("worker_tx_packets", "Datagrams the worker sent.", |w| {
                w.tx_packets
            }),
            ("worker_rx_bytes", "Bytes the worker received.", |w| {
                w.rx_bytes
            }),
            ("worker_tx_bytes", "Bytes the worker sent.", |w| w.tx_bytes),
            (
                "worker_tun_writes",
                "Writes to the TUN (a coalesced super-packet is one).",
                |w| w.tun_writes,
            ),
        ];
        for (name, help, field) in worker_counters {
            family(
                &mut encoder,
                name,
                help,
                counter,
                s.workers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (worker(i, w.core), ConstCounter::new(field(w)))),
            )?;
        }
        family(
            &mut encoder,
            "dropped_packets",
            "Packets dropped, by reason, summed over the workers and the control thread.",
            counter,
            s.drops
                .iter()
                .map(|(reason, n)| (vec![("reason", reason.clone())], ConstCounter::new(*n))),
        )?;

        let h = &s.handshakes;
        let rate_limited = s.drops.get("rate_limited").copied().unwrap_or(0);
        let totals: [(&str, &str, u64); 5] = [
            (
                "handshake_initiations_sent",
                "Handshake initiations sent (first tries and retries).",
                h.initiations_sent,
            ),
            (
                "handshake_responses_sent",
                "Handshake responses sent.",
                h.responses_sent,
            ),
            (
                "handshake_messages_received",
                "Handshake messages received and handled.",
                h.received,
            ),
            (
                "cookie_replies_sent",
                "Cookie replies sent instead of a response, under load.",
                h.cookies_sent,
            ),
            (
                "handshake_rate_limited",
                "Initiations refused by the per-source rate limit.",
                rate_limited,
            ),
        ];
        for (name, help, value) in totals {
            single(&mut encoder, name, help, ConstCounter::new(value))?;
        }
        let gauges: [(&str, &str, i64); 2] = [
            ("links", "Live overlay links.", s.links.len() as i64),
            (
                "routes",
                "Destinations the overlay routes to.",
                s.routes as i64,
            ),
        ];
        for (name, help, value) in gauges {
            single(&mut encoder, name, help, ConstGauge::new(value))?;
        }
        Ok(())
    }
}

/// A scrape's request for a snapshot: where to send it.
pub type SnapshotRequest = Sender<Status>;

/// The control thread's end: scrapes waiting for a snapshot.
pub type SnapshotRequests = Receiver<SnapshotRequest>;

/// The metrics listener and its thread; dropping it stops both.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    /// Where it listens (the port the kernel chose, for port 0).
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` and serves `/metrics` from snapshots asked of the control thread: a
    /// request on the returned receiver, then a write to `wake`.
    pub fn start(addr: SocketAddr, wake: Arc<EventFd>) -> io::Result<(Self, SnapshotRequests)> {
        let server = tiny_http::Server::http(addr).map_err(|e| io::Error::other(e.to_string()))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("metrics listener has no IP address"))?;
        let server = Arc::new(server);
        let (ask, requests) = mpsc::sync_channel(1);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("rovy-metrics".into())
            .spawn(move || serve(&serving, &ask, &wake))?;
        Ok((
            MetricsServer {
                server,
                thread: Some(thread),
                addr,
            },
            requests,
        ))
    }
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, ask: &SyncSender<SnapshotRequest>, wake: &EventFd) {
    for request in server.incoming_requests() {
        let response = if request.url() != "/metrics" {
            text_response(404, "not found: metrics are at /metrics\n", "text/plain")
        } else if *request.method() != tiny_http::Method::Get {
            text_response(405, "only GET\n", "text/plain")
        } else {
            match snapshot(ask, wake) {
                Some(status) => {
                    let unix_now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |t| t.as_secs());
                    text_response(200, &render(&status, unix_now), CONTENT_TYPE)
                }
                None => text_response(503, "the node did not answer in time\n", "text/plain"),
            }
        };
        let _ = request.respond(response);
    }
}

fn snapshot(ask: &SyncSender<SnapshotRequest>, wake: &EventFd) -> Option<Status> {
    let (reply, answer) = mpsc::channel();
    ask.try_send(reply).ok()?;
    wake.notify();
    answer.recv_timeout(SNAPSHOT_WAIT).ok()
}

fn text_response(
    code: u16,
    body: &str,
    content_type: &str,
) -> tiny_http::Response<io::Cursor<Vec<u8>>> {
    let response = tiny_http::Response::from_string(body).with_status_code(code);
    match tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

#[cfg(test)]
mod tests;
