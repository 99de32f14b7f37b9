//! Two data-path nodes wired back to back, for tests that run real workers (needs root).
//!
//! Node A's TUN `rf-ua` (10.71.1.1/24) lives in one fresh network namespace with both nodes'
//! UDP sockets on loopback; node B's TUN `rf-ub` (10.71.1.2/24) lives in a second one. An
//! application socket on A's side sends to 10.71.1.2: the kernel routes it out of `rf-ua`,
//! worker A seals it to B's UDP socket, worker B opens it and writes it into `rf-ub`, where
//! 10.71.1.2 is local, so it reaches the application socket on B's side; replies go back the
//! same way. The sessions are installed by hand (matching keys and indices), no handshake.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rovy_dataplane::control_queue::{
    HandshakeReceiver, HandshakeScreen, QueueAll, bounded_queue, handshake_queue,
};
use rovy_dataplane::counters::WorkerCounters;
use rovy_dataplane::crypto::SymmetricKey;
use rovy_dataplane::index::IndexTable;
use rovy_dataplane::peer::PeerShared;
use rovy_dataplane::pipeline::Dataplane;
use rovy_dataplane::route::RoutingTable;
use rovy_dataplane::session::Session;
use rovy_dataplane::sys::{self, EventFd, Tun, TunOffloads, TunQueue, UdpSocketBuilder};
use rovy_dataplane::tables::{PeerKind, Tables};
use rovy_dataplane::worker::{ControlLink, HandshakeMsg, Worker};

pub const A_INNER: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 1);
pub const B_INNER: Ipv4Addr = Ipv4Addr::new(10, 71, 1, 2);
pub const A_UNDERLAY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5001);
const B_UNDERLAY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5002);
/// Where B's application socket listens.
pub const B_APP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(B_INNER), 7000);
const MTU: usize = 1420;
const A_TO_B_KEY: [u8; 32] = [0xab; 32];
const B_TO_A_KEY: [u8; 32] = [0xba; 32];
const A_INDEX: u32 = 0x1111;
const B_INDEX: u32 = 0x2222;

/// Which worker loop to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Epoll,
    Uring,
}

/// A running worker and what it takes to stop it.
struct Running {
    thread: JoinHandle<std::io::Result<()>>,
    shutdown: Arc<AtomicBool>,
    wake: Arc<EventFd>,
    counters: Arc<WorkerCounters>,
    handshakes: HandshakeReceiver,
}

/// What a worker did, once stopped.
pub struct Stopped {
    pub counters: Arc<WorkerCounters>,
    /// The handshake messages it handed to control, in order.
    pub handshakes: Vec<HandshakeMsg>,
}

/// Both nodes, running, and an application socket on each side.
pub struct TwoNodes {
    /// Bound to 10.71.1.1 on A's side, with a 2 s read timeout.
    pub a_app: UdpSocket,
    /// Bound to [`B_APP`] on B's side, with a 2 s read timeout.
    pub b_app: UdpSocket,
    /// What B's TUN accepted (all off without offloads).
    pub b_offloads: TunOffloads,
    workers: [Running; 2],
}

/// Runs `body` on a thread of its own in a fresh network namespace with `lo` up and IPv6 off
/// (so the kernel's own IPv6 chatter never reaches a TUN), and returns its result.
pub fn in_new_netns<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        sys::enter_new_netns_for_current_thread().expect("unshare(CLONE_NEWNET) (run as root)");
        std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1").unwrap();
        std::fs::write("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1").unwrap();
        sys::set_up("lo").unwrap();
        body()
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A one-queue TUN `name` at `addr`/24, MTU 1420, up; with `vnet_hdr`, with every offload
/// the kernel accepts (the workers then take the offload path).
fn tun(name: &str, addr: Ipv4Addr, vnet_hdr: bool) -> TunQueue {
    let queue = Tun::create(name, 1, vnet_hdr).unwrap().remove(0);
    sys::set_mtu(name, MTU as u32).unwrap();
    sys::set_up(name).unwrap();
    sys::add_address(name, addr.into(), 24).unwrap();
    queue
}

fn app_socket(addr: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
}

/// A data plane whose only peer (slot 0, at `endpoint`) owns `inner` and holds `session`,
/// which we receive on as `local_index`.
fn dataplane(inner: Ipv4Addr, endpoint: SocketAddr, session: Session) -> Arc<Dataplane> {
    let local_index = session.local_index();
    let peer = Arc::new(PeerShared::new(0, Some(endpoint.into())));
    peer.install(session);
    let index = Arc::new(IndexTable::new());
    index.insert(local_index, Arc::clone(&peer));
    let mut routes = RoutingTable::new();
    routes.insert(inner.into(), 32, 0).unwrap();
    Arc::new(Dataplane::new(
        index,
        Tables::new(routes, vec![peer], vec![PeerKind::Rovy]),
        MTU,
    ))
}

/// Starts a worker on its own thread.
fn start(
    backend: Backend,
    dataplane: Arc<Dataplane>,
    tun: TunQueue,
    underlay: SocketAddr,
    origin: Instant,
    screen: Arc<dyn HandshakeScreen>,
) -> Running {
    let socket = UdpSocketBuilder::new()
        .nonblocking(true)
        .bind(underlay)
        .unwrap();
    let (handshakes, rx) = handshake_queue(16);
    let (frames, _) = bounded_queue(16);
    let shutdown = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(EventFd::new().unwrap());
    let counters = Arc::new(WorkerCounters::default());
    let worker = Worker {
        dataplane,
        tun,
        sockets: vec![Arc::new(socket)],
        socket_is_v6: vec![false],
        counters: Arc::clone(&counters),
        control: ControlLink {
            screen,
            handshakes,
            frames,
            wake: Arc::new(EventFd::new().unwrap()),
        },
        shutdown: Arc::clone(&shutdown),
        wake: Arc::clone(&wake),
        origin,
    };
    let thread = std::thread::spawn(move || match backend {
        Backend::Epoll => worker.run(),
        Backend::Uring => worker.run_uring(),
    });
    Running {
        thread,
        shutdown,
        wake,
        counters,
        handshakes: rx,
    }
}

impl TwoNodes {
    /// Sets up both nodes in the calling thread's namespace (A's side, see [`in_new_netns`])
    /// and a second one for B's TUN, and starts both workers on `backend`, with TUN and UDP
    /// offloads if `offloads`. Both queue every handshake message for control.
    pub fn start_with(backend: Backend, offloads: bool) -> TwoNodes {
        Self::start_screened(backend, offloads, Arc::new(QueueAll))
    }

    /// As [`TwoNodes::start_with`], with A's handshake messages shown to `screen_a` first.
    pub fn start_screened(
        backend: Backend,
        offloads: bool,
        screen_a: Arc<dyn HandshakeScreen>,
    ) -> TwoNodes {
        let (b_tun, b_app) = std::thread::spawn(move || {
            sys::enter_new_netns_for_current_thread().unwrap();
            std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1").unwrap();
            (tun("rf-ub", B_INNER, offloads), app_socket(B_APP))
        })
        .join()
        .unwrap();
        let a_tun = tun("rf-ua", A_INNER, offloads);
        let a_app = app_socket(SocketAddr::from((A_INNER, 0)));

        let a_session = Session::new(
            A_INDEX,
            B_INDEX,
            SymmetricKey::from_bytes(A_TO_B_KEY),
            SymmetricKey::from_bytes(B_TO_A_KEY),
            true,
            Duration::ZERO,
        );
        let b_session = Session::new(
            B_INDEX,
            A_INDEX,
            SymmetricKey::from_bytes(B_TO_A_KEY),
            SymmetricKey::from_bytes(A_TO_B_KEY),
            false,
            Duration::ZERO,
        );
        let origin = Instant::now();
        let a = dataplane(B_INNER, B_UNDERLAY, a_session);
        let b = dataplane(A_INNER, A_UNDERLAY, b_session);
        TwoNodes {
            a_app,
            b_app,
            b_offloads: b_tun.offloads(),
            workers: [
                start(backend, a, a_tun, A_UNDERLAY, origin, screen_a),
                start(backend, b, b_tun, B_UNDERLAY, origin, Arc::new(QueueAll)),
            ],
        }
    }

    /// Sends `payload` from A's application socket to B's and back, and checks that it
    /// arrives intact, from the right address, each way. `buf` must hold the payload.
    pub fn round_trip(&self, payload: &[u8], buf: &mut [u8]) {
        self.a_app.send_to(payload, B_APP).unwrap();
        let (len, from) = self.b_app.recv_from(buf).unwrap();
        assert_eq!(&buf[..len], payload);
        assert_eq!(from, self.a_app.local_addr().unwrap());
        self.b_app.send_to(&buf[..len], from).unwrap();
        let (len, from) = self.a_app.recv_from(buf).unwrap();
        assert_eq!(&buf[..len], payload);
        assert_eq!(from, B_APP);
    }

    /// Stops both workers, checks that they ended without error and returns what they did,
    /// A's first.
    pub fn stop(self) -> [Stopped; 2] {
        for worker in &self.workers {
            worker.shutdown.store(true, Ordering::Relaxed);
            worker.wake.notify();
        }
        self.workers.map(|worker| {
            worker.thread.join().unwrap().unwrap();
            Stopped {
                counters: worker.counters,
                handshakes: std::iter::from_fn(|| worker.handshakes.pop()).collect(),
            }
        })
    }
}
