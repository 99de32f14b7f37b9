//! The control loop in-process: no interface, no sockets; workers are plain threads.

use super::*;
use crate::keys::PrivateKey;
use rovy_dataplane::control_queue::HandshakeSender;
use rovy_dataplane::wire::INITIATION_LEN;
use rovy_dataplane::worker::HandshakeMsg;

/// Everything [`Control::run`] is given besides the control state.
struct Loop {
    signals: SignalFd,
    wake: Arc<EventFd>,
    dir: std::path::PathBuf,
}

impl Loop {
    fn new(name: &str) -> Loop {
        let dir =
            std::env::temp_dir().join(format!("rovy-control-loop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Loop {
            // Never raised here: the loop only has to poll it.
            signals: SignalFd::new(&[libc::SIGUSR2]).unwrap(),
            wake: Arc::new(EventFd::new().unwrap()),
            dir,
        }
    }

    fn run(&self, control: &mut Control) -> Result<(), String> {
        control.run(&self.signals, &self.wake)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node without peers or sockets whose handshake queue holds `capacity` messages.
fn control(capacity: usize) -> (Control, HandshakeSender) {
    let key = PrivateKey::generate(&mut OsRng);
    let text = format!(
        "[interface]\nprivate_key = \"{}\"\n",
        key.to_base64().as_str()
    );
    let config = Config::from_toml_str(&text, "test.toml", std::path::Path::new(".")).unwrap();
    let (tx, rx) = handshake_queue(capacity);
    let links = LinkEndpoint::new(
        *key.as_bytes(),
        crate::protocol::EndpointConfig::link(),
        Duration::ZERO,
        &mut OsRng,
    );
    let dataplane = Arc::new(Dataplane::new(
        links.index_table(),
        Tables::new(RoutingTable::new(), Vec::new(), Vec::new()),
        1420,
    ));
    let (reloaded_tx, reloaded) = std::sync::mpsc::channel();
    let control = Control {
        links,
        book: PeerBook::default(),
        dataplane,
        reloader: reload::Reloader::new("test.toml".into()),
        reloaded_tx,
        reloaded,
        requests_wake: Arc::new(EventFd::new().unwrap()),
        api_calls: api::calls::Calls::none(),
        uapi_calls: None,
        origin: Instant::now(),
        handshakes: rx,
        handshake_counts: crate::api::HandshakeCounts::default(),
        scrapes: None,
        events: super::events::Events::new(),
        sockets: Vec::new(),
        socket_is_v6: Vec::new(),
        send: SendBatch::new(4),
        load: Arc::new(screen::Load::new(capacity / 8)),
        drops: Default::default(),
        workers: Vec::new(),
        status: status::StaticStatus::new(&config, "epoll", &[], &[], Vec::new()),
        mtu: 1420,
        threads: workers::WorkerThreads::default(),
        overlay: None,
        tun_routes: routes::TunRoutes::new(
            Box::new(routes::tests::Recorded::default()),
            "rf0",
            &[],
            false,
            None,
        ),
        interface: config.interface,
    };
    (control, tx)
}

/// A worker thread that runs `body`; its wake-up is never looked at.
fn spawn(
    control: &mut Control,
    wake: &Arc<EventFd>,
    body: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) {
    let worker_wake = Arc::new(EventFd::new().unwrap());
    control.threads.spawn(worker_wake, wake, body).unwrap();
}

#[test]
fn a_worker_that_fails_or_panics_ends_the_loop_naming_it_and_the_cause() {
    type WorkerEnd = fn() -> std::io::Result<()>;
    let cases: [(&str, WorkerEnd, &str); 3] = [
        (
            "fails",
            || Err(std::io::Error::other("epoll_wait: bad file descriptor")),
            "worker 1 failed: epoll_wait: bad file descriptor; node stopped",
        ),
        (
            "panics",
            || panic!("index out of bounds"),
            "worker 1 panicked: index out of bounds; node stopped",
        ),
        ("returns", || Ok(()), "worker 1 stopped; node stopped"),
    ];
    for (name, end, expected) in cases {
        let lp = Loop::new(name);
        let (mut control, _tx) = control(8);
        let shutdown = Arc::new(AtomicBool::new(false));
        let running = Arc::clone(&shutdown);
        // Worker 0 runs until told to stop; worker 1 ends on its own a little later.
        spawn(&mut control, &lp.wake, move || {
            while !running.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        spawn(&mut control, &lp.wake, move || {
            std::thread::sleep(Duration::from_millis(50));
            end()
        });
        assert_eq!(lp.run(&mut control), Err(expected.to_owned()), "{name}");
        control.threads.stop(&shutdown);
    }
}

/// An initiation-sized message with a wrong mac1: each one is handled as a counted drop.
fn junk_initiation() -> HandshakeMsg {
    let mut bytes = [0u8; INITIATION_LEN];
    bytes[0] = 1;
    HandshakeMsg {
        src: SocketAddr::from(([192, 0, 2, 7], 7)).into(),
        socket: 0,
        len: INITIATION_LEN,
        bytes,
    }
}

fn handled(control: &Control) -> u64 {
    control.drops.drops().get(DropReason::InvalidMac1)
}

#[test]
fn one_drain_handles_a_bounded_batch_and_reports_the_rest() {
    let (mut control, tx) = control(1024);
    for _ in 0..2 * HANDSHAKES_PER_TURN + 3 {
        tx.push(junk_initiation()).unwrap();
    }
    assert!(
        control.drain_handshakes(),
        "work left after the first batch"
    );
    assert_eq!(handled(&control), HANDSHAKES_PER_TURN as u64);
    assert_eq!(control.handshakes.queued(), HANDSHAKES_PER_TURN + 3);
    assert!(control.drain_handshakes());
    assert!(
        !control.drain_handshakes(),
        "the last three empty the queue"
    );
    assert_eq!(handled(&control), 2 * HANDSHAKES_PER_TURN as u64 + 3);
    assert!(!control.drain_handshakes());
}

/// A backlog far larger than one batch, queued while the loop sleeps and announced by one
/// wake-up only (workers wake control when the queue was empty), is worked off at once: the
/// loop does not wait a tick between batches. A worker that ends 300 ms in stops the loop;
/// twenty batches spaced by 100 ms ticks would take two seconds.
#[test]
fn the_loop_comes_back_for_a_backlog_without_waiting_for_a_tick() {
    let lp = Loop::new("backlog");
    let (mut control, tx) = control(4096);
    let total = 20 * HANDSHAKES_PER_TURN;
    for _ in 0..total {
        tx.push(junk_initiation()).unwrap();
    }
    lp.wake.notify();
    spawn(&mut control, &lp.wake, || {
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    });
    assert!(lp.run(&mut control).is_err());
    assert_eq!(handled(&control), total as u64);
}

/// The control loop answers a good API client and works through its handshake backlog while
/// stalled clients hold connections: the API thread keeps them, and their deadlines are far
/// beyond the test, so had the loop served the socket itself it could have done neither until
/// they gave up. A worker that asks for the status, waits a little and ends stops the loop.
#[test]
fn stalled_api_clients_hold_up_neither_the_loop_nor_other_clients() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let lp = Loop::new("api");
    let (mut control, tx) = control(4096);
    let patient = api::calls::Limits {
        client_deadline: Duration::from_secs(120),
        answer_deadline: Duration::from_secs(120),
        max_connections: 16,
    };
    let (server, calls) = api::serve(
        &lp.dir.join("api.sock"),
        patient,
        Arc::clone(&control.requests_wake),
    )
    .unwrap();
    control.api_calls = calls;
    let path = server.path().to_owned();
    let mut stalled: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    stalled[1].write_all(b"GET /v0/stat").unwrap();
    stalled[2]
        .write_all(b"POST /v0/peer/connect HTTP/1.0\r\nContent-Length: 50\r\n\r\n{")
        .unwrap();
    let total = 5 * HANDSHAKES_PER_TURN;
    for _ in 0..total {
        tx.push(junk_initiation()).unwrap();
    }
    lp.wake.notify();

    let (fetched_tx, fetched) = std::sync::mpsc::channel();
    spawn(&mut control, &lp.wake, move || {
        let _ = fetched_tx.send(api::fetch_status(&path));
        // Time for the backlog, as in the test above.
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    });
    assert!(lp.run(&mut control).is_err(), "the worker ended the loop");
    let status = fetched.recv().unwrap().unwrap();
    assert_eq!(
        status.public_key,
        control.interface.private_key.public_key().to_string()
    );
    assert_eq!(handled(&control), total as u64);
    for stream in &mut stalled {
        stream.set_nonblocking(true).unwrap();
        let read = stream.read(&mut [0u8; 1]);
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a stalled client was answered: {read:?}"
        );
    }
}
