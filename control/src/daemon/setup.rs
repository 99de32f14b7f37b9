//! Start-up: the TUN interface, the UDP listeners and the configured peers (their endpoints
//! resolved), each failure turned into one line a person can act on.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use rovy_dataplane::buf::{OVERLAY_MIN_MTU, OVERLAY_OVERHEAD};
use rovy_dataplane::sys::{self, TunQueue, UdpSocketBuilder};
use rovy_dataplane::worker::SocketOffloads;

/// fc00::/8, where every rovy key has its address: routed into the TUN, to the overlay.
const OVERLAY_PREFIX: Ipv6Addr = Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0);

use super::peers::{PeerSpec, PeerUpdate};
use crate::config::{Config, Endpoint, Listen};

/// Socket buffers large enough to ride out scheduling hiccups at gigabit rates.
pub(crate) const SOCKET_BUFFER: usize = 4 << 20;
/// Packets the kernel queues on the TUN for the workers (its default is 500): at 100k packets
/// a second, 500 last 5 ms, less than a worker may wait for a core on a busy machine, and
/// every packet beyond them is dropped before we see it. 4096 ride out about 40 ms.
const TUN_TX_QUEUE_LEN: u32 = 4096;

/// The interface, configured and up. With `offloads`, its queues carry vnet headers and the
/// offloads the kernel accepts; a kernel that refuses vnet headers gets a plain TUN.
pub fn create_interface(
    config: &Config,
    queues: usize,
    offloads: bool,
) -> Result<Vec<TunQueue>, String> {
    let iface = &config.interface;
    let name = iface.name.as_str();
    let created = match sys::Tun::create(name, queues, offloads) {
        Err(e) if offloads && e.kind() != io::ErrorKind::AlreadyExists => {
            tracing::warn!("no TUN offloads on {name} ({e}); using a plain TUN");
            sys::Tun::create(name, queues, false)
        }
        other => other,
    };
    let tun = created.map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "cannot create interface {name}: permission denied (run as root, or grant CAP_NET_ADMIN)"
        ),
        _ => format!("cannot create interface {name}: {e}"),
    })?;
    let configure = || -> io::Result<()> {
        sys::set_mtu(name, u32::from(iface.mtu))?;
        sys::set_tx_queue_len(name, TUN_TX_QUEUE_LEN)?;
        sys::set_up(name)?;
        for prefix in &iface.addresses {
            sys::add_address(name, prefix.addr(), prefix.prefix_len())?;
        }
        if let Some(own) = iface.private_key.public_key().address() {
            // The address alone, and the overlay's route with the overlay's MTU: what goes
            // through the overlay carries a frame and a second session inside the link.
            sys::add_address(name, IpAddr::V6(own), 128)?;
            let mtu = usize::from(iface.mtu);
            let overlay_mtu = if mtu >= OVERLAY_MIN_MTU {
                mtu - OVERLAY_OVERHEAD
            } else {
                mtu
            };
            sys::add_route(name, OVERLAY_PREFIX.into(), 8, Some(overlay_mtu as u32))?;
        }
        Ok(())
    };
    configure().map_err(|e| format!("cannot configure interface {name}: {e}"))?;
    Ok(tun)
}

/// The offloads in force, by name, as the workers will use them: the TUN's (from its first
/// queue) and, on a TUN with vnet headers, UDP GSO and GRO as the first worker's sockets take
/// them (the workers enable the same again; it is idempotent).
pub fn offload_names(queues: &[TunQueue], sockets: &[Vec<Arc<OwnedFd>>]) -> Vec<&'static str> {
    let Some(queue) = queues.first().filter(|queue| queue.has_vnet_hdr()) else {
        return Vec::new();
    };
    let tun = queue.offloads();
    let udp = SocketOffloads::enable(sockets.first().map_or(&[][..], Vec::as_slice));
    [
        (tun.csum, "tun-csum"),
        (tun.tso4, "tun-tso4"),
        (tun.tso6, "tun-tso6"),
        (tun.uso4 && tun.uso6, "tun-uso"),
        (udp.gso, "udp-gso"),
        (udp.gro, "udp-gro"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The addresses to listen on.
pub fn listen_addresses(listen: &Listen) -> Vec<SocketAddr> {
    match listen {
        Listen::AllAddresses { port } => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), *port),
        ],
        Listen::Addresses(list) => list.clone(),
    }
}

/// The listen addresses actually bound, and each worker's sockets for them
/// (`sockets[worker][address]`).
pub struct Listeners {
    /// Addresses bound, in order.
    pub addrs: Vec<SocketAddr>,
    /// One SO_REUSEPORT socket per worker per address.
    pub sockets: Vec<Vec<Arc<OwnedFd>>>,
}

/// One SO_REUSEPORT socket per worker per listen address, with firewall mark `fwmark` if
/// given. A port some other process holds is refused up front (SO_REUSEPORT would otherwise
/// share it with any process of the same user). With `listen_port`, a host without IPv6 only
/// loses the IPv6 listener.
pub fn bind_sockets(
    listen: &Listen,
    workers: usize,
    fwmark: Option<u32>,
) -> Result<Listeners, String> {
    let mut addrs = Vec::new();
    for addr in listen_addresses(listen) {
        match UdpSocketBuilder::new().bind(addr) {
            Ok(probe) => {
                drop(probe);
                addrs.push(addr);
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "cannot listen on {addr}: the port is already in use"
                ));
            }
            Err(e) if matches!(listen, Listen::AllAddresses { .. }) && addr.is_ipv6() => {
                tracing::warn!("not listening on {addr}: {e}");
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    }
    if addrs.is_empty() {
        return Err("no address to listen on".into());
    }
    let mut per_worker = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut sockets = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            let fd = UdpSocketBuilder::new()
                .reuseport(true)
                .nonblocking(true)
                .recv_buffer(SOCKET_BUFFER)
                .send_buffer(SOCKET_BUFFER)
                .mark(fwmark.unwrap_or(0))
                .bind(*addr)
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            sockets.push(Arc::new(fd));
        }
        per_worker.push(sockets);
    }
    if workers > 1 {
        for (i, addr) in addrs.iter().enumerate() {
            if let Some(first) = per_worker.first().and_then(|w| w.get(i)) {
                sys::steer_by_receiver_index(&**first, workers)
                    .map_err(|e| format!("cannot steer {addr} across {workers} workers: {e}"))?;
            }
        }
    }
    Ok(Listeners {
        addrs,
        sockets: per_worker,
    })
}

/// Resolves a configured endpoint (host names at start and on reload, never on the control
/// thread).
fn resolve(endpoint: &Endpoint) -> Result<SocketAddr, String> {
    match endpoint {
        Endpoint::Addr(addr) => Ok(*addr),
        Endpoint::Host { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve endpoint {host}:{port}: {e}"))?
            .next()
            .ok_or_else(|| format!("endpoint {host}:{port} resolves to no address")),
    }
}

/// The configured peers as an update of the running ones, their endpoints resolved.
pub fn peer_update(config: &Config) -> Result<PeerUpdate, String> {
    let peers = config
        .peers
        .iter()
        .enumerate()
        .map(|(i, peer)| {
            let resolved = peer
                .endpoint
                .as_ref()
                .map(resolve)
                .transpose()
                .map_err(|e| format!("peer[{i}].endpoint: {e}"))?;
            Ok(PeerSpec {
                config: peer.clone(),
                resolved,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(PeerUpdate {
        peers,
        reset_endpoints: HashSet::new(),
    })
}
