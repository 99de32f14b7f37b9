//! The node: `rovy-fast [--cores N] CONFIG` in the foreground.
//!
//! The main thread becomes the control thread: an epoll loop over signals, the workers'
//! wake-ups, the link endpoint's next timer deadline and a 100 ms tick, running the sans-IO
//! protocol core. Workers (one pinned thread per core, see `rovy_dataplane::worker`) carry the
//! data; they screen handshake messages (answering cookies under load, see `screen`), hand the
//! rest over a bounded queue and publish activity that the tick (or a wake-up) turns into timer
//! events.

mod answers;
mod events;
mod options;
mod overlay;
mod peers;
mod reload;
mod routes;
mod screen;
mod setup;
pub(crate) use setup::SOCKET_BUFFER;
mod status;
#[cfg(test)]
mod tests;
mod uapi;
mod workers;

use options::worker_cpus;
pub use options::{Backend, RunOptions};

/// What the `peer_set` fuzz target drives directly: how a `wg set` changes the running peers.
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use super::peers::{PeerSpec, PeerUpdate};
    pub use super::uapi::update_from_set;
}
pub(crate) use overlay::ROUTING_MESSAGE_MAX_LEN;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use rovy_dataplane::DropReason;
use rovy_dataplane::control_queue::{
    HandshakeReceiver, HandshakeScreen, bounded_queue, handshake_queue,
};
use rovy_dataplane::counters::WorkerCounters;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::pipeline::Dataplane;
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::sys::{self, Datagram, Epoll, EventFd, SendBatch, SignalFd};
use rovy_dataplane::tables::Tables;
use rovy_dataplane::worker::{ControlLink, Worker};

use crate::api;
use crate::config::{Config, InterfaceConfig};
use crate::cpus;
use crate::metrics::{MetricsServer, SnapshotRequests};
use crate::protocol::{EndpointConfig, HANDSHAKE_BUF_LEN, LinkEndpoint, Received};
use peers::{Applied, PeerBook, PeerError, PeerUpdate, Peers};

/// Handshake messages waiting for control, at most (wireguard-go: 1024).
const HANDSHAKE_QUEUE: usize = 1024;
/// Capacity of the queue of rovy frames for control (routing messages, frames for this node).
const FRAME_QUEUE: usize = 256;
/// Past this many queued handshakes the node is under load and demands cookies (for
/// [`screen::UNDER_LOAD_STICKY`] after, as wireguard-go and the kernel do).
const UNDER_LOAD_QUEUED: usize = HANDSHAKE_QUEUE / 8;
/// How often the workers' activity is replayed into the timers. Timers themselves fire at their
/// deadlines; what waits for the tick is what the workers did (a reply that disarms a timer, data
/// that arms one, a rekey asked for on send), and all of that is measured in seconds.
const TICK: Duration = Duration::from_millis(100);
/// Handshake messages handled per loop turn. A flood of initiations with a valid mac1 (which
/// needs only our public key) must not keep timers, staged sends, the API and signals waiting;
/// while messages remain the loop comes back without sleeping.
const HANDSHAKES_PER_TURN: usize = 64;

/// Calls from each API socket answered per loop turn: a client that asks again and again gets
/// turns, the timers and the data path's control work keep theirs.
const CALLS_PER_TURN: usize = 4;

const TOKEN_SIGNAL: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_REQUEST: u64 = 2;

/// The signals the control thread takes: SIGHUP reloads the config, SIGINT and SIGTERM stop
/// the node.
const SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// Runs the node until SIGINT or SIGTERM (SIGHUP reloads its peers). Start-up failures are one
/// line for the user.
pub fn run(config: Config, options: RunOptions) -> Result<(), String> {
    let origin = Instant::now();
    let cores = worker_cpus(options.cpus.as_ref())?;
    let workers = options
        .cores
        .or(config.interface.cores.filter(|_| options.cpus.is_none()))
        .map_or(cores.len(), usize::from)
        .max(1);
    sys::block_signals(&SIGNALS).map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let signals =
        SignalFd::new(&SIGNALS).map_err(|e| format!("cannot set up signal handling: {e}"))?;

    let update = setup::peer_update(&config)?;
    let mut links = LinkEndpoint::new(
        *config.interface.private_key.as_bytes(),
        EndpointConfig::link(),
        origin.elapsed(),
        &mut OsRng,
    );
    let setup::Listeners {
        addrs: listen,
        sockets,
    } = setup::bind_sockets(&config.interface.listen, workers, config.interface.fwmark)?;
    let all_sockets: Vec<Arc<OwnedFd>> = sockets.iter().flatten().cloned().collect();
    links.steer_indices(workers);
    let socket_path = options
        .socket
        .clone()
        .unwrap_or_else(|| api::default_socket_path(&config.interface.name));
    let requests_wake = Arc::new(EventFd::new().map_err(|e| format!("eventfd: {e}"))?);
    let (api, api_calls) = api::serve(&socket_path, api::API_LIMITS, Arc::clone(&requests_wake))
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (give this node a socket of its own with --socket PATH, and ask it with \
                 `rovy-fast status --socket PATH`)"
            } else {
                ""
            };
            format!(
                "cannot open the API socket {}: {e}{hint}",
                socket_path.display()
            )
        })?;
    let uapi_path = api::uapi::default_uapi_path(&config.interface.name);
    let (uapi, uapi_calls) = match api::uapi::serve(&uapi_path, Arc::clone(&requests_wake)) {
        Ok((server, calls)) => (Some(server), Some(calls)),
        Err(e) => {
            tracing::warn!(
                "no WireGuard userspace API ({}: {e}); `wg` will not see {}",
                uapi_path.display(),
                config.interface.name
            );
            (None, None)
        }
    };
    let queues = setup::create_interface(&config, workers, options.offloads)?;
    let name = config.interface.name.clone();
    let offloads = setup::offload_names(&queues, &sockets);
    let worker_cores: Vec<usize> = (0..workers).map(|i| cores[i % cores.len()]).collect();
    let static_status = status::StaticStatus::new(
        &config,
        options.backend.name(),
        &listen,
        &offloads,
        worker_cores.clone(),
    );

    let upper = overlay::upper_endpoint(*config.interface.private_key.as_bytes(), origin.elapsed());
    let mut dataplane = Dataplane::new(
        links.index_table(),
        Tables::new(RoutingTable::new(), Vec::new(), Vec::new()),
        usize::from(config.interface.mtu),
    )
    .with_upper_index(upper.index_table());
    if let Some(own) = config.interface.private_key.public_key().address() {
        dataplane = dataplane.with_own_address(own);
    }
    let dataplane = Arc::new(dataplane);
    let control_wake = Arc::new(EventFd::new().map_err(|e| format!("eventfd: {e}"))?);
    let (metrics, scrapes) = match config.interface.metrics {
        None => (None, None),
        Some(addr) => {
            let (server, scrapes) = MetricsServer::start(addr, Arc::clone(&control_wake))
                .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
            (Some(server), Some(scrapes))
        }
    };
    let (tx, rx) = handshake_queue(HANDSHAKE_QUEUE);
    let load = Arc::new(screen::Load::new(UNDER_LOAD_QUEUED));
    let link_screen = Arc::new(screen::LinkScreen::new(
        links.cookie_checker().share(),
        Arc::clone(&load),
    ));
    let (frames_tx, frames_rx) = bounded_queue(FRAME_QUEUE);
    let shutdown = Arc::new(AtomicBool::new(false));
    let control_sockets = sockets.first().cloned().unwrap_or_default();
    let socket_is_v6: Vec<bool> = listen.iter().map(SocketAddr::is_ipv6).collect();

    let mut threads = workers::WorkerThreads::default();
    let mut counters_all = Vec::with_capacity(workers);
    for (i, (tun, sockets)) in queues.into_iter().zip(sockets).enumerate() {
        let wake = Arc::new(EventFd::new().map_err(|e| format!("eventfd: {e}"))?);
        let counters = Arc::new(WorkerCounters::default());
        counters_all.push(Arc::clone(&counters));
        let core = worker_cores[i];
        let worker = Worker {
            dataplane: Arc::clone(&dataplane),
            tun,
            sockets,
            socket_is_v6: socket_is_v6.clone(),
            counters: Arc::clone(&counters),
            control: ControlLink {
                screen: Arc::clone(&link_screen) as Arc<dyn HandshakeScreen>,
                handshakes: tx.clone(),
                frames: frames_tx.clone(),
                wake: Arc::clone(&control_wake),
            },
            shutdown: Arc::clone(&shutdown),
            wake: Arc::clone(&wake),
            origin,
        };
        let backend = options.backend;
        let run_worker = move || {
            if let Err(e) = sys::pin_current_thread(core) {
                tracing::warn!("worker {i} not pinned to core {core}: {e}");
            }
            match backend {
                Backend::Uring => worker.run_uring(),
                Backend::Epoll => worker.run(),
            }
        };
        if let Err(e) = threads.spawn(wake, &control_wake, run_worker) {
            threads.stop(&shutdown);
            return Err(e);
        }
    }
    drop(tx);

    let drops = Arc::new(WorkerCounters::default());
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let mut overlay = overlay::Overlay::new(
        frames_rx,
        Arc::clone(&dataplane),
        Arc::clone(&drops),
        upper,
        config.interface.private_key.as_bytes(),
        unix_secs,
        origin.elapsed(),
    );
    // The configured peers join as any peer added later does (and are dialled if they have an
    // endpoint); the workers see them from their first packet on.
    let mut book = PeerBook::default();
    let mut tun_routes = routes::TunRoutes::new(
        Box::new(routes::KernelRoutes::new(&name, all_sockets)),
        &name,
        &config.interface.addresses,
        config.interface.routes,
        config.interface.fwmark,
    );
    let started = Peers {
        book: &mut book,
        links: &mut links,
        dataplane: &dataplane,
        overlay: Some(&mut overlay),
        routes: Some(&mut tun_routes),
    }
    .update(
        &update,
        &config.interface.private_key,
        config.interface.mtu,
        origin.elapsed(),
    );
    if let Err(e) = started {
        threads.stop(&shutdown);
        return Err(e.to_string());
    }
    let listening: Vec<String> = listen.iter().map(ToString::to_string).collect();
    tracing::info!(
        "ready: {name} up, backend {}, {workers} worker(s) on CPU {}, listening on {}, {} peer(s), offloads: {}",
        options.backend.name(),
        cpus::describe(&worker_cores),
        listening.join(" "),
        book.count(),
        if offloads.is_empty() {
            "none".to_owned()
        } else {
            offloads.join(" ")
        }
    );

    let (reloaded_tx, reloaded) = std::sync::mpsc::channel();
    let mut control = Control {
        links,
        book,
        dataplane,
        reloader: reload::Reloader::new(options.config_path.clone()),
        reloaded_tx,
        reloaded,
        requests_wake,
        api_calls,
        uapi_calls,
        origin,
        handshakes: rx,
        sockets: control_sockets,
        socket_is_v6,
        send: SendBatch::new(4),
        load,
        drops,
        handshake_counts: api::HandshakeCounts::default(),
        workers: counters_all,
        status: static_status,
        mtu: usize::from(config.interface.mtu),
        threads,
        overlay: Some(overlay),
        tun_routes,
        interface: config.interface,
        scrapes,
        events: events::Events::new(),
    };
    let result = control.run(&signals, &control_wake);
    drop(api);
    drop(uapi);
    drop(metrics);
    control.threads.stop(&shutdown);
    drop(control);
    let _ = sys::delete_link(&name);
    tracing::info!("{name} down");
    result
}

/// The control thread's state.
struct Control {
    links: LinkEndpoint,
    /// The running peers' settings, by slot.
    book: PeerBook,
    dataplane: Arc<Dataplane>,
    origin: Instant,
    handshakes: HandshakeReceiver,
    sockets: Vec<Arc<OwnedFd>>,
    socket_is_v6: Vec<bool>,
    send: SendBatch,
    /// "Under load", shared with the workers' screens.
    load: Arc<screen::Load>,
    /// Drops decided on the control thread (handshakes, routing frames).
    drops: Arc<WorkerCounters>,
    /// Link handshake messages handled and sent.
    handshake_counts: api::HandshakeCounts,
    workers: Vec<Arc<WorkerCounters>>,
    status: status::StaticStatus,
    /// The TUN MTU, for sealing staged packets.
    mtu: usize,
    /// The workers; one that ends stops the node.
    threads: workers::WorkerThreads,
    /// Routing over the rovy links; taken out while it runs a turn, which sends through
    /// this control thread's sockets.
    overlay: Option<overlay::Overlay>,
    /// The kernel routes into the TUN for the peers' allowed IPs (none with `routes = false`),
    /// and the sockets' firewall mark.
    tun_routes: routes::TunRoutes,
    /// The running `[interface]`: what a reloaded config may not change.
    interface: InterfaceConfig,
    reloader: reload::Reloader,
    /// Configs read again, from the reload threads.
    reloaded_tx: Sender<Result<reload::Loaded, String>>,
    reloaded: Receiver<Result<reload::Loaded, String>>,
    /// Woken by the threads that hand the control thread work (reloads, the API sockets).
    requests_wake: Arc<EventFd>,
    /// Requests from the local API.
    api_calls: api::ApiCalls,
    /// Requests from WireGuard's userspace API, when it is served.
    uapi_calls: Option<api::uapi::Calls>,
    /// Metrics scrapes waiting for a snapshot, when metrics are on.
    scrapes: Option<SnapshotRequests>,
    /// What the log has said about peers and load.
    events: events::Events,
}

impl Control {
    /// Runs until SIGINT/SIGTERM (`Ok`) or until a worker ends (`Err` naming it and why).
    fn run(&mut self, signals: &SignalFd, wake: &EventFd) -> Result<(), String> {
        let mut epoll = Epoll::new(4).map_err(|e| format!("epoll: {e}"))?;
        epoll
            .add_readable(signals, TOKEN_SIGNAL)
            .and_then(|()| epoll.add_readable(wake, TOKEN_WAKE))
            .and_then(|()| epoll.add_readable(&*self.requests_wake, TOKEN_REQUEST))
            .map_err(|e| format!("epoll: {e}"))?;
        let mut backlog = false;
        let mut next_tick = Duration::ZERO;
        loop {
            let timeout = if backlog {
                0
            } else {
                self.wait_millis(next_tick)
            };
            let tokens: Vec<u64> = epoll
                .wait(timeout)
                .map_err(|e| format!("control loop: {e}"))?
                .collect();
            if tokens.contains(&TOKEN_SIGNAL) {
                while let Some(signal) = signals.read() {
                    if signal == libc::SIGHUP {
                        self.request_reload();
                    } else {
                        return Ok(());
                    }
                }
            }
            if tokens.contains(&TOKEN_REQUEST) {
                self.requests_wake.drain();
                self.take_reloads();
                self.take_api_calls();
                self.take_uapi_calls();
            }
            if let Some(ended) = self.threads.ended() {
                return Err(ended);
            }
            let woken = tokens.contains(&TOKEN_WAKE);
            if woken {
                wake.drain();
            }
            let now = self.now();
            // A worker's wake-up may be a first staged packet asking for a handshake.
            let synced = woken || now >= next_tick;
            if synced {
                self.links.sync_activity(&mut OsRng);
                self.events.check_peers(now, &self.links);
                let under_load = self.under_load(now);
                self.events.load(under_load, self.handshakes.queued());
                next_tick = now + TICK;
            }
            // Sessions appear only through handshakes handled here or keys a worker confirmed
            // (seen when synced): a turn that only fires timers has no staged packet to send.
            let sessions_may_be_new = synced || backlog;
            backlog = self.drain_handshakes();
            self.transmit();
            if sessions_may_be_new {
                self.send_staged();
            }
            self.overlay_turn();
            self.answer_scrapes();
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Gives every waiting metrics scrape the status snapshot.
    fn answer_scrapes(&self) {
        let Some(scrapes) = &self.scrapes else {
            return;
        };
        while let Ok(reply) = scrapes.try_recv() {
            let _ = reply.send(self.status_snapshot(self.now()));
        }
    }

    /// How long the loop may sleep: until the tick at `next_tick` or the endpoint's next timer
    /// deadline, whichever is first, rounded up to whole milliseconds (so a deadline is never
    /// woken for early and slept past in a spin).
    fn wait_millis(&mut self, next_tick: Duration) -> i32 {
        let until = self
            .links
            .poll_timeout()
            .map_or(next_tick, |deadline| deadline.min(next_tick));
        let wait = until.saturating_sub(self.now());
        i32::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    }

    fn under_load(&self, now: Duration) -> bool {
        self.load.under_load(now, self.handshakes.queued())
    }

    /// Handles up to [`HANDSHAKES_PER_TURN`] queued handshake messages; returns whether more
    /// are waiting (the workers wake control only when the queue was empty, so the loop must
    /// come back for them itself).
    fn drain_handshakes(&mut self) -> bool {
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        for _ in 0..HANDSHAKES_PER_TURN {
            let Some(mut msg) = self.handshakes.pop() else {
                return false;
            };
            let now = self.now();
            let under_load = self.under_load(now);
            self.handshake_counts.received += 1;
            let packet = &mut msg.bytes[..msg.len];
            match self
                .links
                .handle_datagram(now, msg.src, packet, under_load, &mut OsRng, &mut out)
            {
                Ok(Received::HandshakeResponse { len, tunnel }) => {
                    self.events.handshake_completed(now, &self.links, tunnel);
                    self.handshake_counts.responses_sent += 1;
                    self.send_to(msg.socket, msg.src, &out[..len]);
                }
                Ok(Received::CookieReply) => {
                    self.drops.count_drop(DropReason::CookieRequired);
                    self.send_to(msg.socket, msg.src, &out[..64]);
                }
                Ok(Received::HandshakeComplete { tunnel }) => {
                    self.events.handshake_completed(now, &self.links, tunnel);
                }
                Ok(_) => {}
                Err(reason) => {
                    self.events.refused(now, msg.src, reason);
                    self.drops.count_drop(reason);
                }
            }
        }
        self.handshakes.queued() > 0
    }

    /// Fires the timers that are due and sends what they and the handshakes asked for.
    fn transmit(&mut self) {
        let mut out = [0u8; HANDSHAKE_BUF_LEN];
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = self.now();
        self.links.handle_timeout(now, &mut OsRng);
        while let Some(t) = self.links.poll_transmit(now, wall, &mut OsRng, &mut out) {
            if rovy_dataplane::wire::message_type(&out[..t.len])
                == Ok(rovy_dataplane::wire::MessageType::Initiation)
            {
                self.handshake_counts.initiations_sent += 1;
            }
            self.send_by_family(t.dst, &out[..t.len]);
        }
        let dropped = self.links.take_staged_dropped();
        self.drops.count_drops(DropReason::NoSession, dropped);
    }

    /// Seals and sends the packets staged for every peer that has a session now (after a
    /// handshake completed here, or a responder's keypair was confirmed by a worker).
    fn send_staged(&mut self) {
        let now = self.now();
        let staged: Vec<_> = self
            .links
            .tunnels()
            .filter(|(_, t)| t.shared().staged_len() > 0)
            .map(|(_, t)| Arc::clone(t.shared()))
            .collect();
        for shared in staged {
            shared.send_staged(now, self.mtu, |datagram, dst| {
                self.send_by_family(dst, datagram);
            });
        }
    }

    /// Lets the overlay run: links, routing frames, routing timers and messages.
    fn overlay_turn(&mut self) {
        let Some(mut overlay) = self.overlay.take() else {
            return;
        };
        let now = self.now();
        overlay.turn(now, |dst, bytes| self.send_by_family(dst, bytes));
        self.overlay = Some(overlay);
    }

    /// Makes the running peers `update`'s (see [`peers`]): all of it, or nothing.
    fn update_peers(&mut self, update: &PeerUpdate) -> Result<Applied, PeerError> {
        let now = self.now();
        Peers {
            book: &mut self.book,
            links: &mut self.links,
            dataplane: &self.dataplane,
            overlay: self.overlay.as_mut(),
            routes: Some(&mut self.tun_routes),
        }
        .update(update, &self.interface.private_key, self.interface.mtu, now)
    }

    /// Sends `bytes` to `dst` from the first UDP socket of its address family.
    fn send_by_family(&mut self, dst: LinkAddr, bytes: &[u8]) {
        let Some(addr) = dst.udp() else {
            return self.drops.count_drop(DropReason::SendFailed);
        };
        let socket = self
            .socket_is_v6
            .iter()
            .position(|v6| *v6 == addr.is_ipv6());
        match socket {
            Some(socket) => self.send_to(socket, dst, bytes),
            None => self.drops.count_drop(DropReason::SendFailed),
        }
    }

    /// Sends `bytes` to the UDP endpoint `dst` from socket `socket`.
    fn send_to(&mut self, socket: usize, dst: LinkAddr, bytes: &[u8]) {
        let (Some(fd), Some(dst)) = (self.sockets.get(socket), dst.udp()) else {
            return self.drops.count_drop(DropReason::SendFailed);
        };
        let datagram = [Datagram {
            payload: bytes,
            dst,
            segment_size: None,
        }];
        if self.send.send_batch(&**fd, &datagram).is_err() {
            self.drops.count_drop(DropReason::SendFailed);
        }
    }
}
