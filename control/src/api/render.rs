//! The human-readable forms of a [`Status`] (laid out like `wg show` so a WireGuard user reads
//! it at sight), of a [`RouteList`] and of a [`PeerList`].

use super::{PeerList, PeerStatus, RouteList, Status, WorkerStatus};
use crate::keys::PublicKey;

/// A multi-line summary of `status`, without a trailing newline: the interface, one block per
/// peer, one line per worker, and drops by reason.
#[must_use]
pub fn render_status(status: &Status) -> String {
    let mut lines = vec![
        format!("interface: {}", status.interface),
        format!("  public key: {}", status.public_key),
        format!(
            "  address: {}",
            status
                .address
                .as_deref()
                .unwrap_or("none (not an fc00::/8 key)")
        ),
        format!("  backend: {}", status.backend),
        format!("  listening on: {}", list_or(&status.listen, "none")),
        format!("  offloads: {}", list_or(&status.offloads, "none")),
    ];
    for peer in &status.peers {
        lines.push(String::new());
        peer_lines(peer, &mut lines);
    }
    lines.push(String::new());
    if status.links.is_empty() {
        lines.push("links: none".to_owned());
    } else {
        lines.push("links:".to_owned());
        lines.extend(status.links.iter().map(|link| {
            let rtt = link
                .rtt_ms
                .map_or_else(String::new, |ms| format!(", rtt {ms} ms"));
            format!("  slot {}: {}{rtt}", link.slot, link.public_key)
        }));
    }
    lines.push(format!("routes: {}", status.routes));
    lines.push(String::new());
    if status.workers.is_empty() {
        lines.push("workers: none".to_owned());
    } else {
        lines.push("workers:".to_owned());
        lines.extend(status.workers.iter().map(worker_line));
    }
    lines.push(String::new());
    if status.drops_total == 0 {
        lines.push("drops: none".to_owned());
    } else {
        lines.push(format!("drops: {} total", status.drops_total));
        lines.extend(
            status
                .drops
                .iter()
                .map(|(reason, count)| format!("  {reason}: {count}")),
        );
    }
    lines.join("\n")
}

/// `rovy-fast route list`: one line per destination, as a table for people.
pub fn render_routes(list: &RouteList) -> String {
    if list.routes.is_empty() {
        return "no routes".to_owned();
    }
    let header = ["address", "label", "metric", "next hop", "age", "peer id"].map(str::to_owned);
    let mut rows = vec![header];
    for route in &list.routes {
        rows.push([
            route.address.clone().unwrap_or_else(|| "-".to_owned()),
            route.label.clone(),
            route.metric.to_string(),
            format!("{} ({})", short_key(&route.next_hop), route.next_hop_slot),
            format!("{}s", route.age_secs),
            route.peer_id.clone(),
        ]);
    }
    table(&rows)
}

/// One line per peer, under a header: PeerID, public key, kind, endpoint, allowed IPs, latest
/// handshake and transfer.
#[must_use]
pub fn render_peers(list: &PeerList) -> String {
    if list.peers.is_empty() {
        return "no peers".to_owned();
    }
    let header = [
        "peer id",
        "public key",
        "kind",
        "endpoint",
        "allowed ips",
        "handshake",
        "received",
        "sent",
    ]
    .map(str::to_owned);
    let mut rows = vec![header];
    for peer in &list.peers {
        let peer_id = peer
            .public_key
            .parse::<PublicKey>()
            .map_or_else(|_| "-".to_owned(), |key| key.peer_id());
        rows.push([
            peer_id,
            peer.public_key.clone(),
            peer.kind.clone(),
            peer.endpoint.clone().unwrap_or_else(|| "-".to_owned()),
            list_or(&peer.allowed_ips, "-"),
            peer.last_handshake_secs_ago
                .map_or_else(|| "never".to_owned(), |secs| format!("{secs}s ago")),
            byte_size(peer.rx_bytes),
            byte_size(peer.tx_bytes),
        ]);
    }
    table(&rows)
}

/// `rows` as columns two spaces apart, each as wide as its widest cell, without trailing
/// spaces.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            row.iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first characters of a base64 key, enough to tell neighbours apart in a table.
fn short_key(key: &str) -> &str {
    key.get(..8).unwrap_or(key)
}

fn peer_lines(peer: &PeerStatus, lines: &mut Vec<String>) {
    lines.push(format!("peer: {}", peer.public_key));
    lines.push(format!("  kind: {}", peer.kind));
    if let Some(endpoint) = &peer.endpoint {
        lines.push(format!("  endpoint: {endpoint}"));
    }
    lines.push(format!(
        "  allowed ips: {}",
        list_or(&peer.allowed_ips, "(none)")
    ));
    lines.push(format!(
        "  latest handshake: {}",
        peer.last_handshake_secs_ago.map_or_else(
            || "never".to_owned(),
            |secs| format!("{} ago", duration_words(secs))
        )
    ));
    lines.push(format!(
        "  transfer: {} received, {} sent",
        byte_size(peer.rx_bytes),
        byte_size(peer.tx_bytes)
    ));
    if let Some(interval) = peer.persistent_keepalive {
        lines.push(format!(
            "  persistent keepalive: every {}",
            count_of(interval, "second")
        ));
    }
}

fn worker_line(worker: &WorkerStatus) -> String {
    let drops = worker
        .drops
        .values()
        .fold(0_u64, |total, &count| total.saturating_add(count));
    format!(
        "  core {}: rx {} ({}), tx {} ({}), {}, {}",
        worker.core,
        count_of(worker.rx_packets, "packet"),
        byte_size(worker.rx_bytes),
        count_of(worker.tx_packets, "packet"),
        byte_size(worker.tx_bytes),
        count_of(worker.tun_writes, "TUN write"),
        count_of(drops, "drop")
    )
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}

/// `1 second`, `2 seconds`.
fn count_of(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// `1 day, 2 hours, 5 seconds`, as `wg show` writes a handshake's age; `0 seconds` for none.
fn duration_words(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, unit) in UNITS {
        let count = rest / size;
        rest %= size;
        if count != 0 {
            parts.push(count_of(count, unit));
        }
    }
    if parts.is_empty() {
        count_of(0, "second")
    } else {
        parts.join(", ")
    }
}

/// `512 B`, `1.50 KiB`, `3.25 GiB`: binary units with two decimals, as `wg show` writes them.
fn byte_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {unit}")
    }
}
