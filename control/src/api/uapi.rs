//! WireGuard's cross-platform userspace API, the text protocol `wg` speaks to wireguard-go and
//! boringtun over `/var/run/wireguard/NAME.sock`: so `wg show`, `wg showconf`, `wg set` and
//! `wg syncconf` work against a rovy-fast node.
//!
//! A request is `get=1` or `set=1` and, for `set`, `key=value` lines, ended by an empty line.
//! `get` is answered with the device's `key=value` lines, `set` with nothing, both followed by
//! `errno=N` and an empty line. Keys are hex. This module parses requests into
//! [`Request`]s and writes [`Device`]s, with no I/O: every malformed input is an [`Errno`],
//! never a panic. [`serve`] runs the socket on a thread of its own.

mod serve;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::config::IpPrefix;

pub use serve::{Answer, Call, Calls, UAPI_LIMITS, Uapi, UapiServer, default_uapi_path, serve};

/// Where `wg` looks for userspace interfaces.
pub const UAPI_DIR: &str = "/var/run/wireguard";

/// Largest request read: `set` for thousands of peers with their allowed IPs fits.
pub const MAX_REQUEST_LEN: usize = 4 << 20;

/// Why a request failed, as the errno `wg` reports (it prints `strerror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// A malformed or unknown key or value, or a change the node refused (`EINVAL`).
    Invalid,
    /// Not `get=1` or `set=1`, or no end to the request (`EPROTO`).
    Protocol,
    /// A change a running rovy-fast cannot make: another private key or listen port, or
    /// another fwmark while default routes rest on the one it has (`EOPNOTSUPP`).
    Unsupported,
    /// The node did not answer in time (`EIO`).
    Io,
}

impl Errno {
    /// The errno number.
    pub fn code(self) -> i32 {
        match self {
            Errno::Invalid => libc::EINVAL,
            Errno::Protocol => libc::EPROTO,
            Errno::Unsupported => libc::EOPNOTSUPP,
            Errno::Io => libc::EIO,
        }
    }

    /// The reply line. As wireguard-go writes it, the number is negated: `wg` turns the value
    /// back into its errno by negating it (`errno=-22` reads "Invalid argument").
    pub fn reply(self) -> String {
        format!("errno=-{}\n\n", self.code())
    }
}

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `get=1`: the device and its peers.
    Get,
    /// `set=1`: changes.
    Set(SetDevice),
}

/// The changes of a `set=1` request, in the order given.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SetDevice {
    /// `private_key`: the all-zero key means none.
    pub private_key: Option<Zeroizing<[u8; 32]>>,
    pub listen_port: Option<u16>,
    pub fwmark: Option<u32>,
    /// `replace_peers=true`: peers not named in this request go.
    pub replace_peers: bool,
    pub peers: Vec<SetPeer>,
}

/// The changes to one peer, from its `public_key` line to the next.
#[derive(Debug, PartialEq, Eq)]
pub struct SetPeer {
    pub public_key: [u8; 32],
    /// `remove=true`.
    pub remove: bool,
    /// `update_only=true`: change the peer if it exists, never create it.
    pub update_only: bool,
    /// `preshared_key`: the all-zero key means none.
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
    pub endpoint: Option<SocketAddr>,
    /// `persistent_keepalive_interval` in seconds; 0 = off.
    pub persistent_keepalive: Option<u16>,
    /// `replace_allowed_ips=true`: the peer's allowed IPs are the ones listed after it.
    pub replace_allowed_ips: bool,
    /// `allowed_ip` lines, host bits cleared.
    pub allowed_ips: Vec<IpPrefix>,
}

impl SetPeer {
    fn new(public_key: [u8; 32]) -> Self {
        SetPeer {
            public_key,
            remove: false,
            update_only: false,
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            replace_allowed_ips: false,
            allowed_ips: Vec::new(),
        }
    }
}

/// Where a request ends in `bytes`: after its empty line. `None` while it has not ended.
pub fn request_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\n") {
        return Some(1);
    }
    bytes
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|at| at + 2)
}

/// Parses one request: its lines up to and including the empty line that ends it.
pub fn parse_request(bytes: &[u8]) -> Result<Request, Errno> {
    let text = std::str::from_utf8(bytes).map_err(|_| Errno::Protocol)?;
    let body = text.strip_suffix("\n\n").ok_or(Errno::Protocol)?;
    let mut lines = body.split('\n');
    match lines.next() {
        Some("get=1") if lines.next().is_none() => Ok(Request::Get),
        Some("get=1") => Err(Errno::Invalid),
        Some("set=1") => parse_set(lines).map(Request::Set),
        _ => Err(Errno::Protocol),
    }
}

fn parse_set<'a>(lines: impl Iterator<Item = &'a str>) -> Result<SetDevice, Errno> {
    let mut device = SetDevice::default();
    for line in lines {
        let (key, value) = line.split_once('=').ok_or(Errno::Invalid)?;
        if key == "public_key" {
            device.peers.push(SetPeer::new(*hex_key(value)?));
            continue;
        }
        let Some(peer) = device.peers.last_mut() else {
            match key {
                "private_key" => device.private_key = Some(hex_key(value)?),
                "listen_port" => device.listen_port = Some(number(value)?),
                "fwmark" => device.fwmark = Some(number(value)?),
                "replace_peers" => device.replace_peers = flag(value)?,
                _ => return Err(Errno::Invalid),
            }
            continue;
        };
        match key {
            "remove" => peer.remove = flag(value)?,
            "update_only" => peer.update_only = flag(value)?,
            "preshared_key" => peer.preshared_key = Some(hex_key(value)?),
            "endpoint" => peer.endpoint = Some(endpoint(value)?),
            "persistent_keepalive_interval" => peer.persistent_keepalive = Some(number(value)?),
            // Applied where it stands, as wireguard-go does: the ones listed before it go too.
            "replace_allowed_ips" => {
                peer.replace_allowed_ips = flag(value)?;
                peer.allowed_ips.clear();
            }
            "allowed_ip" => peer.allowed_ips.push(prefix(value)?),
            "protocol_version" if value == "1" => {}
            _ => return Err(Errno::Invalid),
        }
    }
    Ok(device)
}

/// A 32-byte key in hex (either case).
fn hex_key(value: &str) -> Result<Zeroizing<[u8; 32]>, Errno> {
    let digits = value.as_bytes();
    if digits.len() != 64 {
        return Err(Errno::Invalid);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
        let nibble = |c: u8| char::from(c).to_digit(16).ok_or(Errno::Invalid);
        *byte = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
    }
    Ok(key)
}

/// A decimal number of type `T`, digits only.
fn number<T: std::str::FromStr>(value: &str) -> Result<T, Errno> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Errno::Invalid);
    }
    value.parse().map_err(|_| Errno::Invalid)
}

/// `true`; WireGuard's setters take nothing else.
fn flag(value: &str) -> Result<bool, Errno> {
    match value {
        "true" => Ok(true),
        _ => Err(Errno::Invalid),
    }
}

/// `IP:PORT` or `[IPV6]:PORT`, a literal address (`wg` resolves names before it sends them).
fn endpoint(value: &str) -> Result<SocketAddr, Errno> {
    let addr: SocketAddr = value.parse().map_err(|_| Errno::Invalid)?;
    if addr.port() == 0 {
        return Err(Errno::Invalid);
    }
    Ok(addr)
}

/// `IP/LEN`, host bits cleared.
fn prefix(value: &str) -> Result<IpPrefix, Errno> {
    let (addr, len) = value.split_once('/').ok_or(Errno::Invalid)?;
    let addr: IpAddr = addr.parse().map_err(|_| Errno::Invalid)?;
    IpPrefix::new(addr, number(len)?)
        .map(|p| p.masked())
        .ok_or(Errno::Invalid)
}

/// The device as `get=1` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Boxed, so that handing the device to the API thread moves a pointer, not the key.
    pub private_key: Box<Zeroizing<[u8; 32]>>,
    pub listen_port: u16,
    /// The firewall mark of the node's packets; 0 for none (not written, as WireGuard does).
    pub fwmark: u32,
    pub peers: Vec<DevicePeer>,
}

/// One peer as `get=1` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePeer {
    pub public_key: [u8; 32],
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
    /// Where its packets go now.
    pub endpoint: Option<SocketAddr>,
    /// The latest completed handshake, as time since the Unix epoch.
    pub last_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Seconds; 0 = off.
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpPrefix>,
}

/// The answer to `get=1`: the device's lines, `errno=0` and the empty line.
pub fn format_device(device: &Device) -> Zeroizing<String> {
    // Room for every line up front: a string that grew would leave a copy of the private key
    // in the memory it moved out of.
    let room = 256
        + device
            .peers
            .iter()
            .map(|peer| 512 + 64 * peer.allowed_ips.len())
            .sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(room));
    let line = &mut *out;
    key_line(line, "private_key", &device.private_key);
    let _ = writeln!(line, "listen_port={}", device.listen_port);
    if device.fwmark != 0 {
        let _ = writeln!(line, "fwmark={}", device.fwmark);
    }
    for peer in &device.peers {
        key_line(line, "public_key", &peer.public_key);
        if let Some(psk) = &peer.preshared_key {
            key_line(line, "preshared_key", psk);
        }
        let _ = writeln!(line, "protocol_version=1");
        if let Some(endpoint) = peer.endpoint {
            let _ = writeln!(line, "endpoint={endpoint}");
        }
        let at = peer.last_handshake.unwrap_or_default();
        let _ = writeln!(line, "last_handshake_time_sec={}", at.as_secs());
        let _ = writeln!(line, "last_handshake_time_nsec={}", at.subsec_nanos());
        let _ = writeln!(line, "tx_bytes={}", peer.tx_bytes);
        let _ = writeln!(line, "rx_bytes={}", peer.rx_bytes);
        let _ = writeln!(
            line,
            "persistent_keepalive_interval={}",
            peer.persistent_keepalive
        );
        for allowed in &peer.allowed_ips {
            let _ = writeln!(line, "allowed_ip={allowed}");
        }
    }
    line.push_str("errno=0\n\n");
    out
}

/// `name=HEX` and a newline, written straight into `out` (no copy of a secret elsewhere).
fn key_line(out: &mut String, name: &str, bytes: &[u8; 32]) {
    out.push_str(name);
    out.push('=');
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out.push('\n');
}
