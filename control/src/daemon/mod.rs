//! The node: `rovy-fast [--cores N] CONFIG` in the foreground.
//!
//! The main thread becomes the control thread: an epoll loop over signals, the workers'
//! wake-ups, the link endpoint's next timer deadline and a 100 ms tick, running the sans-IO
//! protocol core. Workers (one pinned thread per core, see `rovy_dataplane::worker`) carry the
//! data; they hand handshake messages over a bounded queue and publish activity that the tick
//! (or a wake-up) turns into timer events.

mod overlay;
mod setup;
mod status;
#[cfg(test)]
mod tests;
mod workers;

pub(crate) use overlay::ROUTING_MESSAGE_MAX_LEN;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use rovy_dataplane::DropReason;
use rovy_dataplane::control_queue::{HandshakeReceiver, bounded_queue, handshake_queue};
use rovy_dataplane::counters::WorkerCounters;
use rovy_dataplane::link_addr::LinkAddr;
use rovy_dataplane::pipeline::Dataplane;
use rovy_dataplane::sys::{self, Datagram, Epoll, EventFd, SendBatch, SignalFd};
use rovy_dataplane::tables::Tables;
use rovy_dataplane::worker::{ControlLink, Worker};

use crate::api::{self, ApiServer};
use crate::config::{Config, PeerKind};
use crate::cpus::{self, CpuList};
use crate::protocol::{HANDSHAKE_BUF_LEN, LinkEndpoint, Received, TunnelId};

/// Handshake messages waiting for control, at most (wireguard-go: 1024).
const HANDSHAKE_QUEUE: usize = 1024;
/// Capacity of the queue of rovy frames for control (routing messages, frames for this node).
const FRAME_QUEUE: usize = 256;
/// Past this many queued handshakes the node is under load and demands cookies.
const UNDER_LOAD_QUEUED: usize = HANDSHAKE_QUEUE / 8;
/// Once under load, stay so for this long (as wireguard-go and the kernel do).
const UNDER_LOAD_STICKY: Duration = Duration::from_secs(1);
/// How often the workers' activity is replayed into the timers. Timers themselves fire at their
/// deadlines; what waits for the tick is what the workers did (a reply that disarms a timer, data
/// that arms one, a rekey asked for on send), and all of that is measured in seconds.
const TICK: Duration = Duration::from_millis(100);
/// Handshake messages handled per loop turn. A flood of initiations with a valid mac1 (which
/// needs only our public key) must not keep timers, staged sends, the API and signals waiting;
/// while messages remain the loop comes back without sleeping.
const HANDSHAKES_PER_TURN: usize = 64;

const TOKEN_SIGNAL: u64 = 0;
const TOKEN_WAKE: u64 = 1;
const TOKEN_API: u64 = 2;

/// Which worker loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One io_uring per worker.
    Uring,
    /// epoll with recvmmsg/sendmmsg.
    Epoll,
}

impl Backend {
    /// The name used in logs and status.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Epoll => "epoll",
        }
    }

    /// [`Backend::Uring`] if this kernel allows it (see [`sys::uring::probe`]), else why not:
    /// io_uring may be missing, switched off (`kernel.io_uring_disabled`) or filtered by
    /// seccomp.
    pub fn probe_uring() -> Result<Backend, String> {
        sys::uring::probe()
            .map(|()| Backend::Uring)
            .map_err(|e| e.to_string())
    }
}

/// How to run the node, from the command line.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads (`--cores`), else one per `--cpus` entry, else the config's `cores`,
    /// else one per CPU the process may use.
    pub cores: Option<u16>,
    /// The CPU each worker is pinned to (`--cpus`), else the allowed CPUs in increasing order.
    pub cpus: Option<CpuList>,
    /// The backend to use.
    pub backend: Backend,
    /// Whether to use TUN and UDP segmentation offloads where the kernel accepts them.
    pub offloads: bool,
    /// The local API socket; default [`api::default_socket_path`].
    pub socket: Option<std::path::PathBuf>,
}

/// The CPUs to pin workers to, in worker order (worker `i` takes the `i mod len`-th): the
/// `--cpus` list after checking this process may run on each, else the allowed CPUs. Never
/// empty.
fn worker_cpus(list: Option<&CpuList>) -> Result<Vec<usize>, String> {
    let allowed = sys::allowed_cores().unwrap_or_default();
    let Some(list) = list else {
        return Ok(if allowed.is_empty() { vec![0] } else { allowed });
    };
    match list.first_not_in(&allowed) {
        Some(cpu) => Err(format!(
            "--cpus {list}: this process may not run on CPU {cpu} (it may use {})",
            cpus::describe(&allowed)
        )),
        None => Ok(list.ids().to_vec()),
    }
}

/// Runs the node until SIGINT or SIGTERM. Start-up failures are one line for the user.
pub fn run(config: Config, options: RunOptions) -> Result<(), String> {
    let origin = Instant::now();
    let cores = worker_cpus(options.cpus.as_ref())?;
    let workers = options
        .cores
        .or(config.interface.cores.filter(|_| options.cpus.is_none()))
        .map_or(cores.len(), usize::from)
        .max(1);
    sys::block_signals(&[libc::SIGINT, libc::SIGTERM])
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let signals = SignalFd::new(&[libc::SIGINT, libc::SIGTERM])
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;

    let (mut links, routes) = setup::links_and_routes(&config, origin.elapsed())?;
    let setup::Listeners {
        addrs: listen,
        sockets,
    } = setup::bind_sockets(&config.interface.listen, workers)?;
    links.steer_indices(workers);
    let socket_path = options
        .socket
        .clone()
        .unwrap_or_else(|| api::default_socket_path(&config.interface.name));
    let api = ApiServer::bind(&socket_path).map_err(|e| {
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

    let peers = links
        .tunnels()
        .map(|(_, t)| Arc::clone(t.shared()))
        .collect();
    let kinds = config.peers.iter().map(|p| p.kind).collect();
    let upper = overlay::upper_endpoint(*config.interface.private_key.as_bytes(), origin.elapsed());
    let mut dataplane = Dataplane::new(
        links.index_table(),
        Tables::new(routes, peers, kinds),
        usize::from(config.interface.mtu),
    )
    .with_upper_index(upper.index_table());
    if let Some(own) = config.interface.private_key.public_key().address() {
        dataplane = dataplane.with_own_address(own);
    }
    let dataplane = Arc::new(dataplane);
    let control_wake = Arc::new(EventFd::new().map_err(|e| format!("eventfd: {e}"))?);
    let (tx, rx) = handshake_queue(HANDSHAKE_QUEUE);
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
                eprintln!("rovy-fast: worker {i} not pinned to core {core}: {e}");
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

    let dialing: Vec<_> = links
        .tunnels()
        .filter(|(_, t)| t.endpoint().is_some())
        .map(|(id, _)| id)
        .collect();
    for id in dialing {
        links.initiate(id);
    }
    let listening: Vec<String> = listen.iter().map(ToString::to_string).collect();
    eprintln!(
        "rovy-fast: ready: {name} up, backend {}, {workers} worker(s) on CPU {}, listening on {}, {} peer(s), offloads: {}",
        options.backend.name(),
        cpus::describe(&worker_cores),
        listening.join(" "),
        links.tunnel_count(),
        if offloads.is_empty() {
            "none".to_owned()
        } else {
            offloads.join(" ")
        }
    );

    let drops = Arc::new(WorkerCounters::default());
    let neighbours = config
        .peers
        .iter()
        .zip(dataplane.tables().peers.iter())
        .map(|(peer, shared)| {
            (
                peer.public_key.0,
                Arc::clone(shared),
                peer.kind == PeerKind::Rovy,
            )
        })
        .collect();
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs());
    let overlay = overlay::Overlay::new(
        neighbours,
        frames_rx,
        Arc::clone(&dataplane),
        Arc::clone(&drops),
        upper,
        unix_secs,
        origin.elapsed(),
    );
    let mut control = Control {
        links,
        origin,
        handshakes: rx,
        sockets: control_sockets,
        socket_is_v6,
        send: SendBatch::new(4),
        under_load_until: None,
        drops,
        workers: counters_all,
        status: static_status,
        mtu: usize::from(config.interface.mtu),
        threads,
        overlay: Some(overlay),
    };
    let result = control.run(&signals, &control_wake, &api);
    drop(api);
    control.threads.stop(&shutdown);
    drop(control);
    let _ = sys::delete_link(&name);
    eprintln!("rovy-fast: {name} down");
    result
}

/// What the control thread answers its API with, as of `now`.
struct NodeAnswers<'a> {
    control: &'a Control,
    now: Duration,
}

impl api::Answers for NodeAnswers<'_> {
    fn status(&self) -> api::Status {
        let c = self.control;
        c.status
            .snapshot(self.now, &c.links, &c.workers, &c.drops, c.overlay.as_ref())
    }

    fn routes(&self) -> api::RouteList {
        status::route_list(self.now, self.control.overlay.as_ref())
    }
}

/// The control thread's state.
struct Control {
    links: LinkEndpoint,
    origin: Instant,
    handshakes: HandshakeReceiver,
    sockets: Vec<Arc<OwnedFd>>,
    socket_is_v6: Vec<bool>,
    send: SendBatch,
    under_load_until: Option<Duration>,
    /// Drops decided on the control thread (handshakes, routing frames).
    drops: Arc<WorkerCounters>,
    workers: Vec<Arc<WorkerCounters>>,
    status: status::StaticStatus,
    /// The TUN MTU, for sealing staged packets.
    mtu: usize,
    /// The workers; one that ends stops the node.
    threads: workers::WorkerThreads,
    /// Routing over the rovy links; taken out while it runs a turn, which sends through
    /// this control thread's sockets.
    overlay: Option<overlay::Overlay>,
}

impl Control {
    /// Runs until SIGINT/SIGTERM (`Ok`) or until a worker ends (`Err` naming it and why).
    fn run(&mut self, signals: &SignalFd, wake: &EventFd, api: &ApiServer) -> Result<(), String> {
        let mut epoll = Epoll::new(4).map_err(|e| format!("epoll: {e}"))?;
        epoll
            .add_readable(signals, TOKEN_SIGNAL)
            .and_then(|()| epoll.add_readable(wake, TOKEN_WAKE))
            .and_then(|()| epoll.add_readable(api, TOKEN_API))
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
            if tokens.contains(&TOKEN_SIGNAL) && signals.read().is_some() {
                return Ok(());
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
            if tokens.contains(&TOKEN_API) {
                let answers = NodeAnswers {
                    control: self,
                    now: self.now(),
                };
                if let Err(e) = api.handle_ready(&answers) {
                    eprintln!("rovy-fast: API socket: {e}");
                }
            }
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
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

    fn under_load(&mut self, now: Duration) -> bool {
        if self.handshakes.queued() > UNDER_LOAD_QUEUED {
            self.under_load_until = Some(now + UNDER_LOAD_STICKY);
        }
        self.under_load_until.is_some_and(|until| now < until)
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
            let packet = &mut msg.bytes[..msg.len];
            match self
                .links
                .handle_datagram(now, msg.src, packet, under_load, &mut OsRng, &mut out)
            {
                Ok(Received::HandshakeResponse { len, .. }) => {
                    self.send_to(msg.socket, msg.src, &out[..len]);
                }
                Ok(Received::CookieReply) => {
                    self.drops.count_drop(DropReason::CookieRequired);
                    self.send_to(msg.socket, msg.src, &out[..64]);
                }
                Ok(_) => {}
                Err(reason) => self.drops.count_drop(reason),
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
            self.send_by_family(t.dst, &out[..t.len]);
        }
        let dropped = self.links.take_staged_dropped();
        self.drops.count_drops(DropReason::NoSession, dropped);
    }

    /// Seals and sends the packets staged for every peer that has a session now (after a
    /// handshake completed here, or a responder's keypair was confirmed by a worker).
    fn send_staged(&mut self) {
        let now = self.now();
        for i in 0..self.links.tunnel_count() {
            let Some(tunnel) = self.links.tunnel(TunnelId(i)) else {
                continue;
            };
            let shared = Arc::clone(tunnel.shared());
            if shared.staged_len() > 0 {
                shared.send_staged(now, self.mtu, |datagram, dst| {
                    self.send_by_family(dst, datagram);
                });
            }
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
