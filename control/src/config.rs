//! The node's TOML configuration (DESIGN §4), parsed into a validated [`Config`].
//!
//! Every error names the file, the key path and what is wrong, and the line and column when the
//! value has one: `rovy0.toml: peer[2].allowed_ips: "10.0.0.300/32" is not an IP prefix (…)
//! (line 12, column 15)`. Peers are numbered from 0 in file order, as TOML indexes the `[[peer]]`
//! array. Unknown keys are errors, so a typo never silently falls back to a default.
//!
//! Key files are read while loading, so a config that loads is one the node can run with:
//! relative key file paths resolve against the config file's directory.

mod claims;
mod endpoint;
mod prefix;
mod reader;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroize;

use claims::PrefixClaims;
pub use endpoint::{Endpoint, parse_dial, parse_listen_address};
pub use prefix::IpPrefix;
use reader::{Field, Fields, Source};

use crate::keys::{
    self, GROUP_OR_OTHER_BITS, PresharedKey, PrivateKey, PublicKey, read_preshared_key_file,
    read_private_key_file,
};

pub const DEFAULT_INTERFACE_NAME: &str = "rovy0";
pub const DEFAULT_LISTEN_PORT: u16 = 1312;
pub const DEFAULT_MTU: u16 = 1420;

/// MTU of the TUN interface. At least 1280 because the interface always carries the fc00::/8
/// IPv6 overlay and IPv6 needs links of 1280 bytes; at most 9000, the common jumbo-frame size,
/// because packet buffers are fixed-size and sized for the largest MTU allowed.
pub const MTU_RANGE: RangeInclusive<u16> = 1280..=rovy_dataplane::buf::MAX_MTU as u16;
/// The least `mtu` with a rovy peer (see [`rovy_dataplane::buf::OVERLAY_MIN_MTU`]).
const OVERLAY_MIN_MTU: u16 = rovy_dataplane::buf::OVERLAY_MIN_MTU as u16;
const OVERLAY_OVERHEAD: u16 = rovy_dataplane::buf::OVERLAY_OVERHEAD as u16;

/// Worker threads, one per core.
pub const CORES_RANGE: RangeInclusive<u16> = 1..=256;

/// Linux's limit on an interface name (IFNAMSIZ less the terminating zero).
const MAX_INTERFACE_NAME_LEN: usize = 15;

/// Largest config file read; a config with thousands of peers stays far below it.
const MAX_CONFIG_LEN: usize = 4 << 20;
/// The permission bits a config file must not have: write access for group or others.
const GROUP_OR_OTHER_WRITE_BITS: u32 = 0o022;

const INTERFACE_KEYS: &[&str] = &[
    "name",
    "private_key_file",
    "private_key",
    "listen_port",
    "listen",
    "addresses",
    "mtu",
    "cores",
    "metrics",
    "routes",
    "fwmark",
];

const PEER_KEYS: &[&str] = &[
    "public_key",
    "kind",
    "endpoint",
    "allowed_ips",
    "preshared_key_file",
    "preshared_key",
    "persistent_keepalive",
];

#[derive(Debug)]
pub struct Config {
    pub interface: InterfaceConfig,
    pub peers: Vec<PeerConfig>,
}

#[derive(Debug)]
pub struct InterfaceConfig {
    pub name: String,
    pub private_key: PrivateKey,
    pub listen: Listen,
    /// Interface addresses as written (host bits kept: `10.20.0.1/24`), besides the derived fc00
    /// address, which is always added.
    pub addresses: Vec<IpPrefix>,
    pub mtu: u16,
    pub cores: Option<u16>,
    /// Where to serve Prometheus metrics (`metrics = "ADDR:PORT"`); off when absent.
    pub metrics: Option<std::net::SocketAddr>,
    /// Whether the peers' allowed IPs are routed into the TUN (`routes`, default true), as
    /// wg-quick adds routes; `routes = false` is wg-quick's `Table = off`.
    pub routes: bool,
    /// The firewall mark of the node's UDP packets (`fwmark`, as in wg; absent or 0: none until
    /// a default route needs one, see `daemon::routes`).
    pub fwmark: Option<u32>,
}

/// Where the node receives UDP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `listen_port` (or the default): every local address of both families, i.e. the IPv4
    /// and the IPv6 wildcard; kept apart from `Addresses` so a host without IPv6 can be tolerated.
    AllAddresses { port: u16 },
    /// `listen`: exactly these addresses.
    Addresses(Vec<SocketAddr>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    pub kind: PeerKind,
    pub endpoint: Option<Endpoint>,
    /// Plain IP routes through this peer. Host bits are cleared (`10.0.0.7/24` becomes
    /// `10.0.0.0/24`), as WireGuard does. No prefix is another peer's too; prefixes of
    /// different peers may overlap, and the longest match wins.
    pub allowed_ips: Vec<IpPrefix>,
    pub preshared_key: Option<PresharedKey>,
    /// `None` when off (absent or 0).
    pub persistent_keepalive: Option<Duration>,
}

/// What a peer is: a rovy node or a stock WireGuard peer (the dataplane's type, so the
/// workers and the config agree on it).
pub use rovy_dataplane::tables::PeerKind;

/// A configuration error: the file, the key path, what is wrong and, when known, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    key: Option<String>,
    location: Option<(usize, usize)>,
    problem: String,
}

impl ConfigError {
    /// The key path (`peer[2].allowed_ips`), if the error is about one key.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.problem)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Why an address, endpoint or prefix in the config is malformed; the message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressParseError(String);

impl Config {
    /// Reads and validates a config file and the key files it names. The file is refused if
    /// group or others can write it (whoever may edit it chooses the node's peers), and a file
    /// holding an inline secret (`private_key`, `preshared_key`) if they can access it at all.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let fail = |problem: String| ConfigError {
            file: file.clone(),
            key: None,
            location: None,
            problem,
        };
        let handle =
            std::fs::File::open(path).map_err(|error| fail(format!("cannot open: {error}")))?;
        let metadata = handle
            .metadata()
            .map_err(|error| fail(format!("cannot read: {error}")))?;
        if !metadata.is_file() {
            return Err(fail("is not a regular file".to_owned()));
        }
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & GROUP_OR_OTHER_WRITE_BITS != 0 {
            return Err(fail(format!(
                "is writable by group or others (mode {mode:04o}); run `chmod go-w {}`",
                keys::shell_quote(path)
            )));
        }
        let expected = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
        let bytes = keys::read_secret_bytes(handle, expected, MAX_CONFIG_LEN)
            .map_err(|error| fail(format!("cannot read: {error}")))?;
        if bytes.len() > MAX_CONFIG_LEN {
            return Err(fail(format!("is larger than {MAX_CONFIG_LEN} bytes")));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|error| fail(format!("is not UTF-8 text (byte {})", error.valid_up_to())))?;
        let loader = Loader {
            source: Source { file: &file, text },
            base_dir: path.parent().unwrap_or(Path::new("")),
            file_mode: Some(mode),
        };
        loader.config()
    }

    /// Parses and validates config text. `file_name` is what errors call the file; relative key
    /// file paths resolve against `base_dir`.
    pub fn from_toml_str(
        text: &str,
        file_name: &str,
        base_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let loader = Loader {
            source: Source {
                file: file_name,
                text,
            },
            base_dir,
            file_mode: None,
        };
        loader.config()
    }
}

struct Loader<'a> {
    source: Source<'a>,
    base_dir: &'a Path,
    /// Permission bits of the config file, when it is one.
    file_mode: Option<u32>,
}

/// A peer with the places in the file that cross-peer errors point at.
struct LocatedPeer {
    config: PeerConfig,
    path: String,
    key_span: Range<usize>,
    allowed_ips_span: Range<usize>,
}

impl Loader<'_> {
    fn config(&self) -> Result<Config, ConfigError> {
        let (interface_fields, peer_fields) = self.source.parse(INTERFACE_KEYS, PEER_KEYS)?;
        let interface = self.interface(interface_fields)?;
        let own_key = interface.private_key.public_key();
        let mut peers: Vec<LocatedPeer> = Vec::with_capacity(peer_fields.len());
        let mut peer_by_key = HashMap::new();
        let mut claims = PrefixClaims::default();
        for fields in peer_fields {
            let peer = self.peer(fields)?;
            self.check_against_others(
                &interface.private_key,
                own_key,
                &peers,
                &peer_by_key,
                &claims,
                &peer,
            )?;
            peer_by_key.insert(peer.config.public_key, peer.path.clone());
            for prefix in &peer.config.allowed_ips {
                claims.claim(*prefix, peers.len());
            }
            peers.push(peer);
        }
        let rovy_peer = peers.iter().any(|p| p.config.kind == PeerKind::Rovy);
        if rovy_peer && interface.mtu < OVERLAY_MIN_MTU {
            return Err(ConfigError {
                file: self.source.file.to_owned(),
                key: Some("interface.mtu".to_owned()),
                location: None,
                problem: format!(
                    "{} is below {OVERLAY_MIN_MTU}, the least a link to a rovy peer needs: \
                     overlay packets carry {OVERLAY_OVERHEAD} bytes of frame and end-to-end \
                     session inside the link, and IPv6 needs {} bytes of packet (raise mtu, \
                     or make every peer kind = \"wireguard\")",
                    interface.mtu,
                    OVERLAY_MIN_MTU - OVERLAY_OVERHEAD
                ),
            });
        }
        Ok(Config {
            interface,
            peers: peers.into_iter().map(|peer| peer.config).collect(),
        })
    }

    fn interface(&self, mut fields: Fields) -> Result<InterfaceConfig, ConfigError> {
        let source = &self.source;
        fields.reject_unknown(source, INTERFACE_KEYS)?;
        let name = match fields.string(source, "name")? {
            None => DEFAULT_INTERFACE_NAME.to_owned(),
            Some(name) => {
                check_interface_name(&name.value).map_err(|why| source.error_at(&name, why))?;
                name.value
            }
        };
        let private_key = self.private_key(&mut fields)?;
        let listen = self.listen(&mut fields)?;
        let addresses = match fields.strings(source, "addresses")? {
            None => Vec::new(),
            Some(list) => self.prefixes(&list)?,
        };
        let mtu = fields
            .integer_in(source, "mtu", MTU_RANGE)?
            .map_or(DEFAULT_MTU, |mtu| mtu.value);
        let cores = fields
            .integer_in(source, "cores", CORES_RANGE)?
            .map(|cores| cores.value);
        let metrics = match fields.string(source, "metrics")? {
            None => None,
            Some(field) => Some(field.value.parse().map_err(|_| {
                source.error_at(
                    &field,
                    format!(
                        "{:?} is not an address and port (write e.g. \"127.0.0.1:9586\" or \"[::1]:9586\")",
                        field.value
                    ),
                )
            })?),
        };
        let routes = fields
            .boolean(source, "routes")?
            .is_none_or(|routes| routes.value);
        let fwmark = fields
            .integer_in(source, "fwmark", 0..=u32::MAX)?
            .and_then(|mark| (mark.value != 0).then_some(mark.value));
        Ok(InterfaceConfig {
            name,
            private_key,
            listen,
            addresses,
            mtu,
            cores,
            metrics,
            routes,
            fwmark,
        })
    }

    fn private_key(&self, fields: &mut Fields) -> Result<PrivateKey, ConfigError> {
        let source = &self.source;
        let from_file = fields.string(source, "private_key_file")?;
        let inline = fields.string(source, "private_key")?;
        match (from_file, inline) {
            (Some(_), Some(inline)) => Err(source.error_at(
                &inline,
                "set either private_key or private_key_file, not both",
            )),
            (None, None) => Err(source.error(
                Some(fields.path()),
                Some(fields.span()),
                "needs private_key_file (or private_key)",
            )),
            (Some(file), None) => read_private_key_file(&self.base_dir.join(&file.value))
                .map_err(|error| source.error_at(&file, error.to_string())),
            (None, Some(inline)) => self.inline_secret(inline, PrivateKey::from_base64),
        }
    }

    fn preshared_key(&self, fields: &mut Fields) -> Result<Option<PresharedKey>, ConfigError> {
        let source = &self.source;
        let from_file = fields.string(source, "preshared_key_file")?;
        let inline = fields.string(source, "preshared_key")?;
        match (from_file, inline) {
            (Some(_), Some(inline)) => Err(source.error_at(
                &inline,
                "set either preshared_key or preshared_key_file, not both",
            )),
            (None, None) => Ok(None),
            (Some(file), None) => read_preshared_key_file(&self.base_dir.join(&file.value))
                .map(Some)
                .map_err(|error| source.error_at(&file, error.to_string())),
            (None, Some(inline)) => self
                .inline_secret(inline, PresharedKey::from_base64)
                .map(Some),
        }
    }

    /// Parses a secret written in the config itself, refusing it when the config file is open
    /// to group or others, and wipes the text afterwards.
    fn inline_secret<K>(
        &self,
        mut field: Field<String>,
        parse: impl FnOnce(&str) -> Result<K, keys::KeyParseError>,
    ) -> Result<K, ConfigError> {
        let file = self.source.file;
        if let Some(mode) = self
            .file_mode
            .filter(|mode| mode & GROUP_OR_OTHER_BITS != 0)
        {
            field.value.zeroize();
            return Err(self.source.error_at(
                &field,
                format!(
                    "{file} holds a secret but is accessible by group or others (mode {mode:04o}); \
                     run `chmod 600 {}` or move the key to a key file",
                    keys::shell_quote(Path::new(file))
                ),
            ));
        }
        let parsed = parse(&field.value);
        field.value.zeroize();
        parsed.map_err(|error| self.source.error_at(&field, error.to_string()))
    }

    fn listen(&self, fields: &mut Fields) -> Result<Listen, ConfigError> {
        let source = &self.source;
        let port = fields.integer_in(source, "listen_port", 1..=u16::MAX)?;
        let list = fields.strings(source, "listen")?;
        match (port, list) {
            (Some(_), Some(list)) => {
                Err(source.error_at(&list, "set either listen_port or listen, not both"))
            }
            (port, None) => Ok(Listen::AllAddresses {
                port: port.map_or(DEFAULT_LISTEN_PORT, |port| port.value),
            }),
            (None, Some(list)) => {
                if list.value.is_empty() {
                    return Err(source.error_at(&list, "must name at least one address"));
                }
                let mut addresses: Vec<SocketAddr> = Vec::with_capacity(list.value.len());
                for text in &list.value {
                    let address = parse_listen_address(text)
                        .map_err(|error| source.error_at(&list, error.to_string()))?;
                    if addresses.contains(&address) {
                        return Err(source.error_at(&list, format!("{address} is listed twice")));
                    }
                    addresses.push(address);
                }
                Ok(Listen::Addresses(addresses))
            }
        }
    }

    fn prefixes(&self, list: &Field<Vec<String>>) -> Result<Vec<IpPrefix>, ConfigError> {
        list.value
            .iter()
            .map(|text| {
                text.parse::<IpPrefix>()
                    .map_err(|error| self.source.error_at(list, error.to_string()))
            })
            .collect()
    }

    fn peer(&self, mut fields: Fields) -> Result<LocatedPeer, ConfigError> {
        let source = &self.source;
        fields.reject_unknown(source, PEER_KEYS)?;
        let key_field = fields.string(source, "public_key")?.ok_or_else(|| {
            source.error(
                Some(&format!("{}.public_key", fields.path())),
                Some(fields.span()),
                "missing (every [[peer]] needs the peer's public key)",
            )
        })?;
        let public_key = key_field
            .value
            .parse::<PublicKey>()
            .map_err(|error| source.error_at(&key_field, error.to_string()))?;
        let kind = match fields.string(source, "kind")? {
            None => PeerKind::Rovy,
            Some(kind) => match kind.value.as_str() {
                "rovy" => PeerKind::Rovy,
                "wireguard" => PeerKind::WireGuard,
                other => {
                    return Err(source.error_at(
                        &kind,
                        format!(r#"{other:?} is not a peer kind (expected "rovy" or "wireguard")"#),
                    ));
                }
            },
        };
        if kind == PeerKind::Rovy && public_key.address().is_none() {
            return Err(source.error_at(
                &key_field,
                format!(
                    "{public_key} has no fc00::/8 address, so it cannot be a rovy peer; \
                     if it is a plain WireGuard peer, set kind = \"wireguard\""
                ),
            ));
        }
        let endpoint = match fields.string(source, "endpoint")? {
            None => None,
            Some(endpoint) => Some(
                endpoint
                    .value
                    .parse::<Endpoint>()
                    .map_err(|error| source.error_at(&endpoint, error.to_string()))?,
            ),
        };
        let (allowed_ips, allowed_ips_span) = match fields.strings(source, "allowed_ips")? {
            None => (Vec::new(), fields.span()),
            Some(list) => {
                let prefixes = self.prefixes(&list)?;
                (prefixes.iter().map(IpPrefix::masked).collect(), list.span)
            }
        };
        let preshared_key = self.preshared_key(&mut fields)?;
        let persistent_keepalive = fields
            .integer_in(source, "persistent_keepalive", 0..=u16::MAX)?
            .and_then(|seconds| (seconds.value != 0).then_some(seconds.value))
            .map(|seconds| Duration::from_secs(u64::from(seconds)));
        Ok(LocatedPeer {
            config: PeerConfig {
                public_key,
                kind,
                endpoint,
                allowed_ips,
                preshared_key,
                persistent_keepalive,
            },
            path: fields.path().to_owned(),
            key_span: key_field.span,
            allowed_ips_span,
        })
    }

    /// Rules between a peer and the rest: not our own key, a key we can agree with, no key twice,
    /// no allowed IP given to two peers (WireGuard would silently move the prefix to the later
    /// peer; here that is an error). Prefixes of different peers may overlap, as in WireGuard:
    /// the longest one that matches picks the peer (`0.0.0.0/0` beside `/32`s).
    fn check_against_others(
        &self,
        private_key: &PrivateKey,
        own_key: PublicKey,
        earlier: &[LocatedPeer],
        peer_by_key: &HashMap<PublicKey, String>,
        claims: &PrefixClaims,
        peer: &LocatedPeer,
    ) -> Result<(), ConfigError> {
        let key = peer.config.public_key;
        let key_error = |problem: String| {
            self.source.error(
                Some(&format!("{}.public_key", peer.path)),
                Some(peer.key_span.clone()),
                problem,
            )
        };
        if key == own_key {
            return Err(key_error(format!("{key} is this node's own public key")));
        }
        if !private_key.agrees_with(&key) {
            return Err(key_error(format!(
                "{key} is a low-order point; no handshake with it can succeed"
            )));
        }
        if let Some(other) = peer_by_key.get(&key) {
            return Err(key_error(format!("{key} is already the key of {other}")));
        }
        for ours in &peer.config.allowed_ips {
            if let Some(owner) = claims.owner(ours) {
                let other = earlier
                    .get(owner)
                    .map_or("another peer", |o| o.path.as_str());
                return Err(self.source.error(
                    Some(&format!("{}.allowed_ips", peer.path)),
                    Some(peer.allowed_ips_span.clone()),
                    format!("{ours} is already an allowed IP of {other}"),
                ));
            }
        }
        Ok(())
    }
}

/// Linux's rules for an interface name (`dev_valid_name`).
fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.len() > MAX_INTERFACE_NAME_LEN {
        return Err(format!(
            "{name:?} is longer than {MAX_INTERFACE_NAME_LEN} bytes, Linux's limit"
        ));
    }
    let bad_char = |c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control();
    if name == "." || name == ".." || name.chars().any(bad_char) {
        return Err(format!(
            r#"{name:?} is not an interface name (no '/', ':', whitespace or control characters; not "." or "..")"#
        ));
    }
    Ok(())
}
