//! The userspace API socket, served on a thread of its own so that no client, however slow,
//! holds up the control loop: the thread reads and parses a request, hands it to the control
//! thread as a [`Call`] (and wakes it), waits for the answer and writes it. The control thread
//! only builds a [`Device`] or applies a change, one call per wake-up.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rovy_dataplane::sys::{Epoll, EventFd};
use zeroize::Zeroizing;

use super::{
    Device, Errno, MAX_REQUEST_LEN, Request, UAPI_DIR, format_device, parse_request, request_end,
};
use crate::api::SocketFile;

/// How long a client has to send its request, and again to take the answer (`wg` writes its
/// request at once and reads at once).
const CLIENT_DEADLINE: Duration = Duration::from_secs(1);

/// How long a request waits for the control thread's answer before it is answered `EIO`.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// A request for the control thread, and where its answer goes.
#[derive(Debug)]
pub struct Call {
    pub request: Request,
    pub answer: SyncSender<Answer>,
}

/// The control thread's answer to a [`Call`].
#[derive(Debug)]
pub enum Answer {
    /// To `get=1`.
    Device(Device),
    /// To `set=1`: done, or why not.
    Set(Result<(), Errno>),
}

/// Where `wg` looks for interface `name`.
pub fn default_uapi_path(name: &str) -> PathBuf {
    Path::new(UAPI_DIR).join(format!("{name}.sock"))
}

/// The running userspace API. Dropping it stops its thread and removes the socket file.
#[derive(Debug)]
pub struct UapiServer {
    socket: SocketFile,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl UapiServer {
    /// Where it listens.
    pub fn path(&self) -> &Path {
        self.socket.path()
    }
}

impl Drop for UapiServer {
    fn drop(&mut self) {
        self.stop.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Listens on `path` (root-only, see [`SocketFile::bind`]) and serves it on a new thread,
/// handing each request to `calls` and waking `wake`.
pub fn serve(path: &Path, calls: SyncSender<Call>, wake: Arc<EventFd>) -> io::Result<UapiServer> {
    let socket = SocketFile::bind(path)?;
    let listener = socket.listener().try_clone()?;
    listener.set_nonblocking(true)?;
    let stop = Arc::new(EventFd::new()?);
    let mut epoll = Epoll::new(2)?;
    epoll.add_readable(&listener, 0)?;
    epoll.add_readable(&*stop, 1)?;
    let thread = std::thread::Builder::new()
        .name("rovy-uapi".to_owned())
        .spawn(move || {
            while let Ok(mut tokens) = epoll.wait(-1) {
                if tokens.any(|token| token == 1) {
                    return;
                }
                accept_all(&listener, &calls, &wake);
            }
        })?;
    Ok(UapiServer {
        socket,
        stop,
        thread: Some(thread),
    })
}

/// Serves every connection waiting, one after the other.
fn accept_all(listener: &UnixListener, calls: &SyncSender<Call>, wake: &EventFd) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => handle(stream, calls, wake),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            // Nothing waiting, or out of file descriptors: the next readiness tries again.
            Err(_) => return,
        }
    }
}

/// Answers one client. A client that connects and hangs up (as `wg` does to see whether an
/// interface is there) gets nothing.
fn handle(mut stream: UnixStream, calls: &SyncSender<Call>, wake: &EventFd) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let reply = match read_request(&mut stream, Instant::now() + CLIENT_DEADLINE) {
        Ok(None) => return,
        Ok(Some(bytes)) => match parse_request(&bytes) {
            Ok(request) => ask(request, calls, wake),
            Err(errno) => Zeroizing::new(errno.reply()),
        },
        Err(errno) => Zeroizing::new(errno.reply()),
    };
    let _ = stream.set_write_timeout(Some(CLIENT_DEADLINE));
    let _ = stream.write_all(reply.as_bytes());
}

/// Hands `request` to the control thread and turns its answer into the reply text.
fn ask(request: Request, calls: &SyncSender<Call>, wake: &EventFd) -> Zeroizing<String> {
    let (answer, answered) = mpsc::sync_channel(1);
    match calls.try_send(Call { request, answer }) {
        Ok(()) => wake.notify(),
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            return Zeroizing::new(Errno::Io.reply());
        }
    }
    match answered.recv_timeout(ANSWER_DEADLINE) {
        Ok(Answer::Device(device)) => format_device(&device),
        Ok(Answer::Set(Ok(()))) => Zeroizing::new("errno=0\n\n".to_owned()),
        Ok(Answer::Set(Err(errno))) => Zeroizing::new(errno.reply()),
        Err(_) => Zeroizing::new(Errno::Io.reply()),
    }
}

/// Reads one request by `deadline`: `Ok(None)` if the client sent nothing and hung up, the
/// request's bytes up to its empty line, or the errno for a request that is too long, never
/// ends, or is cut off.
fn read_request(
    stream: &mut UnixStream,
    deadline: Instant,
) -> Result<Option<Zeroizing<Vec<u8>>>, Errno> {
    let mut bytes = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        if let Some(end) = request_end(&bytes) {
            bytes.truncate(end);
            return Ok(Some(bytes));
        }
        if bytes.len() > MAX_REQUEST_LEN {
            return Err(Errno::Invalid);
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(Errno::Protocol)?;
        stream.set_read_timeout(Some(left)).map_err(|_| Errno::Io)?;
        match stream.read(&mut chunk[..]) {
            Ok(0) if bytes.is_empty() => return Ok(None),
            Ok(0) => return Err(Errno::Protocol),
            Ok(read) => bytes.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Errno::Protocol),
        }
    }
}
