//! The client side of the local API: `rovy-fast status`, `route list` and `peer …`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{
    CONNECT_PATH, ConnectRequest, DISCONNECT_PATH, DisconnectRequest, PEERS_PATH, PeerList,
    PeerStatus, ROUTES_PATH, RouteList, STATUS_PATH, Status, default_socket_path, render_peers,
    render_routes, render_status,
};
use crate::config::{Endpoint, parse_dial};
use crate::keys::PublicKey;

/// How long the whole exchange with a node may take, connecting included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest answer read; a status with thousands of peers stays far below it.
const MAX_RESPONSE_LEN: u64 = 16 << 20;

/// `rovy-fast status`: fetches the status of the node on `socket`, or on
/// `/run/rovy/INTERFACE.sock` when no socket is given, and returns what to print: the status as
/// the node sent it (one line of JSON) if `json`, else [`render_status`]'s summary.
///
/// # Errors
/// A one-line message: `interface` is not an interface name, or [`fetch_status`] failed.
pub fn status_command(
    socket: Option<PathBuf>,
    interface: &str,
    json: bool,
) -> Result<String, String> {
    let path = socket_for(socket, interface)?;
    let body = fetch(&path, STATUS_PATH)?;
    let status = parse_status(&path, &body)?;
    if json {
        as_text(&path, body)
    } else {
        Ok(render_status(&status))
    }
}

/// `rovy-fast route list`: the routes of the node on `socket` (or found by `interface`, as
/// for [`status_command`]): one line of JSON if `json`, else [`render_routes`]'s table.
///
/// # Errors
/// A one-line message, as [`status_command`]'s.
pub fn route_list_command(
    socket: Option<PathBuf>,
    interface: &str,
    json: bool,
) -> Result<String, String> {
    let path = socket_for(socket, interface)?;
    let body = fetch(&path, ROUTES_PATH)?;
    let routes: RouteList = serde_json::from_slice(&body).map_err(|error| {
        format!(
            "node on {} sent an unreadable route list: {error}",
            path.display()
        )
    })?;
    if json {
        as_text(&path, body)
    } else {
        Ok(render_routes(&routes))
    }
}

/// `rovy-fast peer list`: the peers of the node on `socket` (or found by `interface`): one
/// line of JSON if `json`, else [`render_peers`]'s table.
///
/// # Errors
/// A one-line message, as [`status_command`]'s.
pub fn peer_list_command(
    socket: Option<PathBuf>,
    interface: &str,
    json: bool,
) -> Result<String, String> {
    let path = socket_for(socket, interface)?;
    let body = fetch(&path, PEERS_PATH)?;
    let peers: PeerList = serde_json::from_slice(&body).map_err(|error| {
        format!(
            "node on {} sent an unreadable peer list: {error}",
            path.display()
        )
    })?;
    if json {
        as_text(&path, body)
    } else {
        Ok(render_peers(&peers))
    }
}

/// `rovy-fast peer connect TARGET [--key KEY]`: makes the node dial a rovy peer. `TARGET` is
/// a multiaddr naming the peer (`/ip4/…/udp/…/rovy/PEERID`) or an endpoint (`HOST:PORT`, or a
/// multiaddr without `/rovy/…`) with the peer's `key` (base64 or PeerID). Host names are
/// resolved here, so the node never waits for DNS. Prints the peer (JSON if `json`).
///
/// # Errors
/// A one-line message: the target or key is malformed, the host does not resolve, or the
/// node refused (its reason) or could not be asked.
pub fn peer_connect_command(
    socket: Option<PathBuf>,
    interface: &str,
    target: &str,
    key: Option<&str>,
    json: bool,
) -> Result<String, String> {
    let (endpoint, named) = parse_dial(target).map_err(|error| error.to_string())?;
    let key = match (named, key) {
        (Some(key), None) => key,
        (None, Some(text)) => parse_peer(text)?,
        (Some(_), Some(_)) => {
            return Err(format!("{target} names its peer already; leave out --key"));
        }
        (None, None) => {
            return Err(format!(
                "{target} names no peer: end it with /rovy/PEERID, or add --key PUBKEY"
            ));
        }
    };
    let addr = resolve(&endpoint)?;
    let path = socket_for(socket, interface)?;
    let request = ConnectRequest {
        public_key: key.to_string(),
        endpoint: addr.to_string(),
    };
    let body = post(&path, CONNECT_PATH, &request)?;
    let peer = parse_peer_status(&path, &body)?;
    if json {
        as_text(&path, body)
    } else {
        Ok(format!(
            "connecting to {} ({}) at {}",
            peer.public_key,
            key.peer_id(),
            peer.endpoint.as_deref().unwrap_or("-")
        ))
    }
}

/// `rovy-fast peer disconnect PEER`: removes the peer named by PeerID or public key from the
/// node. Prints the peer as it was (JSON if `json`).
///
/// # Errors
/// A one-line message: `peer` names no key, the node has no such peer, or it could not be
/// asked.
pub fn peer_disconnect_command(
    socket: Option<PathBuf>,
    interface: &str,
    peer: &str,
    json: bool,
) -> Result<String, String> {
    let key = parse_peer(peer)?;
    let path = socket_for(socket, interface)?;
    let request = DisconnectRequest {
        peer: key.to_string(),
    };
    let body = post(&path, DISCONNECT_PATH, &request)?;
    let gone = parse_peer_status(&path, &body)?;
    if json {
        as_text(&path, body)
    } else {
        Ok(format!(
            "disconnected {} ({})",
            gone.public_key,
            key.peer_id()
        ))
    }
}

/// A peer named by its PeerID (`bafzqai…`) or public key (base64).
fn parse_peer(text: &str) -> Result<PublicKey, String> {
    PublicKey::from_peer_id(text)
        .or_else(|_| text.parse::<PublicKey>())
        .map_err(|_| format!("{text:?} is neither a PeerID (bafzqai…) nor a public key"))
}

/// The first address `endpoint` resolves to.
fn resolve(endpoint: &Endpoint) -> Result<SocketAddr, String> {
    match endpoint {
        Endpoint::Addr(addr) => Ok(*addr),
        Endpoint::Host { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve {host}:{port}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host}:{port} resolves to no address")),
    }
}

fn parse_peer_status(path: &Path, body: &[u8]) -> Result<PeerStatus, String> {
    serde_json::from_slice(body).map_err(|error| {
        format!(
            "node on {} sent an unreadable peer: {error}",
            path.display()
        )
    })
}

/// The socket to ask: `socket`, or the default one of `interface` in this namespace.
fn socket_for(socket: Option<PathBuf>, interface: &str) -> Result<PathBuf, String> {
    match socket {
        Some(path) => Ok(path),
        None if interface.is_empty()
            || interface == "."
            || interface == ".."
            || interface.contains('/') =>
        {
            Err(format!("{interface:?} is not an interface name"))
        }
        None => Ok(default_socket_path(interface)),
    }
}

fn as_text(path: &Path, body: Vec<u8>) -> Result<String, String> {
    String::from_utf8(body).map_err(|_| format!("node on {}: answer is not UTF-8", path.display()))
}

/// Fetches the status of the node listening on `path`, within [`FETCH_TIMEOUT`].
///
/// # Errors
/// A one-line message naming `path`: nobody listens there, permission denied, the node did not
/// answer in time, answered with an error, or sent something that is not a status.
pub fn fetch_status(path: &Path) -> Result<Status, String> {
    let body = fetch(path, STATUS_PATH)?;
    parse_status(path, &body)
}

fn parse_status(path: &Path, body: &[u8]) -> Result<Status, String> {
    serde_json::from_slice(body).map_err(|error| {
        format!(
            "node on {} sent an unreadable status: {error}",
            path.display()
        )
    })
}

/// `GET target` from the node on `path`; returns the body of a `200` answer.
fn fetch(path: &Path, target: &str) -> Result<Vec<u8>, String> {
    exchange(path, &request_bytes(target, None))
}

/// `POST target` with `body` as JSON to the node on `path`; returns the body of a `200` answer.
fn post(path: &Path, target: &str, body: &impl serde::Serialize) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec(body).map_err(|error| error.to_string())?;
    exchange(path, &request_bytes(target, Some(&body)))
}

/// The request the CLI sends: `GET target`, or `POST target` with `json` as its body.
#[must_use]
pub fn request_bytes(target: &str, json: Option<&[u8]>) -> Vec<u8> {
    let Some(body) = json else {
        return format!("GET {target} HTTP/1.0\r\n\r\n").into_bytes();
    };
    let mut request = format!(
        "POST {target} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Sends `request` to the node on `path` and returns the body of a `200` answer, all within
/// [`FETCH_TIMEOUT`].
fn exchange(path: &Path, request: &[u8]) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + FETCH_TIMEOUT;
    let mut stream = connect(path)?;
    let timed_out = || {
        format!(
            "node on {} did not answer within {} s",
            path.display(),
            FETCH_TIMEOUT.as_secs()
        )
    };
    let io_error = |error: io::Error| match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
        _ => format!("{}: {error}", path.display()),
    };

    let remaining = time_left(deadline).ok_or_else(timed_out)?;
    stream
        .set_write_timeout(Some(remaining))
        .map_err(io_error)?;
    stream.write_all(request).map_err(io_error)?;
    let mut response = Vec::new();
    let mut limited = (&stream).take(MAX_RESPONSE_LEN + 1);
    let mut chunk = [0_u8; 16 << 10];
    loop {
        let remaining = time_left(deadline).ok_or_else(timed_out)?;
        stream.set_read_timeout(Some(remaining)).map_err(io_error)?;
        match limited.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => response.extend_from_slice(chunk.get(..read).unwrap_or_default()),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error(error)),
        }
    }
    if response.len() as u64 > MAX_RESPONSE_LEN {
        return Err(format!(
            "node on {} sent more than {MAX_RESPONSE_LEN} bytes",
            path.display()
        ));
    }
    parse_response(&response).map_err(|why| format!("node on {}: {why}", path.display()))
}

/// Connects within [`FETCH_TIMEOUT`]. A Unix socket connect blocks only while the listener's
/// queue is full, but then it blocks for as long as the node does not accept, so it runs on a
/// helper thread that is abandoned on timeout.
fn connect(path: &Path) -> Result<UnixStream, String> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let target = path.to_owned();
    thread::Builder::new()
        .name("rovy-api-connect".to_owned())
        .spawn(move || {
            let _ = sender.send(UnixStream::connect(target));
        })
        .map_err(|error| format!("cannot start a thread: {error}"))?;
    match receiver.recv_timeout(FETCH_TIMEOUT) {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(match error.kind() {
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => format!(
                "no node is listening on {} (is rovy-fast running? try --socket)",
                path.display()
            ),
            ErrorKind::PermissionDenied => format!(
                "{}: permission denied (the status socket is root-only)",
                path.display()
            ),
            _ => format!("{}: {error}", path.display()),
        }),
        Err(_) => Err(format!(
            "node on {} did not accept a connection within {} s",
            path.display(),
            FETCH_TIMEOUT.as_secs()
        )),
    }
}

fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// Splits an HTTP/1.x response; returns the body of a `200`, whole (as `Content-Length`
/// says, when sent), or the node's error as a message.
///
/// # Errors
/// The node's answer was not a `200` (its code, reason and first line), or not a response.
pub fn parse_response(response: &[u8]) -> Result<Vec<u8>, String> {
    let head_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or("malformed answer (no end of head)")?;
    let (head, body) = response.split_at(head_end);
    let body = body.get(4..).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| "malformed answer (head is not text)")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("malformed status line {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("malformed status line {status_line:?}"));
    }
    let reason = parts.next().unwrap_or_default();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("malformed header {line:?}"));
        };
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("malformed header {line:?}"))?;
            if body.len() != length {
                return Err(format!(
                    "answer truncated or overlong: {} bytes of {length}",
                    body.len()
                ));
            }
        }
    }
    if code != "200" {
        let message = String::from_utf8_lossy(body);
        let message = message.lines().next().unwrap_or_default();
        return Err(format!("answered {code} {reason}: {message}"));
    }
    Ok(body.to_vec())
}
