//! The control loop in-process: no interface, no sockets; workers are plain threads.

use super::*;
use crate::keys::PrivateKey;
use rovy_dataplane::handshake_queue::HandshakeSender;

/// Everything [`Control::run`] is given besides the control state.
struct Loop {
    signals: SignalFd,
    wake: Arc<EventFd>,
    api: ApiServer,
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
            api: ApiServer::bind(&dir.join("api.sock")).unwrap(),
            dir,
        }
    }

    fn run(&self, control: &mut Control) -> Result<(), String> {
        control.run(&self.signals, &self.wake, &self.api)
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
    let control = Control {
        protocol: Protocol::new(*key.as_bytes(), Duration::ZERO, &mut OsRng),
        origin: Instant::now(),
        handshakes: rx,
        sockets: Vec::new(),
        socket_is_v6: Vec::new(),
        send: SendBatch::new(4),
        under_load_until: None,
        drops: WorkerCounters::default(),
        workers: Vec::new(),
        status: status::StaticStatus::new(&config, "epoll", &[], &[], Vec::new()),
        mtu: 1420,
        threads: workers::WorkerThreads::default(),
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
