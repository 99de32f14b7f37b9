//! The userspace API socket, served on a thread of its own like the status API (see
//! [`crate::api::calls`]): that thread reads and parses a request and hands it to the control
//! thread as a [`Call`], which only builds a [`Device`] or applies a change.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::sys::EventFd;
use zeroize::Zeroizing;

use super::{
    Device, Errno, MAX_REQUEST_LEN, Request, UAPI_DIR, format_device, parse_request, request_end,
};
use crate::api::SocketFile;
use crate::api::calls::{self, CallServer, Failure, Limits, Parsed, Protocol, Reply};

/// How the socket is served: `wg` writes its request at once and reads at once; a request of
/// up to [`MAX_REQUEST_LEN`] is buffered per client, so few are served at once.
pub const UAPI_LIMITS: Limits = Limits {
    client_deadline: Duration::from_secs(1),
    answer_deadline: Duration::from_secs(5),
    max_connections: 8,
};

/// A request for the control thread, and where its answer goes.
pub type Call = calls::Call<Request, Answer>;

/// The calls the control thread answers.
pub type Calls = calls::Calls<Request, Answer>;

/// The running userspace API. Dropping it stops its thread and removes the socket file.
pub type UapiServer = CallServer;

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

/// Listens on `path` (root-only, see [`SocketFile::bind`]) and serves it on a new thread,
/// handing each request to the returned [`Calls`] and waking `wake`.
pub fn serve(path: &Path, wake: Arc<EventFd>) -> io::Result<(UapiServer, Calls)> {
    let socket = SocketFile::bind(path)?;
    CallServer::start(socket, Uapi, UAPI_LIMITS, "rovy-uapi", wake)
}

/// `get=1` / `set=1` requests ended by an empty line, answered with `errno=`: the socket's
/// [`Protocol`], which reads requests and refuses the malformed ones without I/O.
#[derive(Debug, Clone, Copy)]
pub struct Uapi;

impl Protocol for Uapi {
    type Request = Request;
    type Answer = Answer;
    const MAX_REQUEST_LEN: usize = MAX_REQUEST_LEN;

    fn parse(&self, bytes: &[u8]) -> Parsed<Request> {
        let Some(end) = request_end(bytes) else {
            return Parsed::More;
        };
        match parse_request(bytes.get(..end).unwrap_or(bytes)) {
            Ok(request) => Parsed::Call(request),
            Err(errno) => Parsed::Reply(errno_reply(errno)),
        }
    }

    fn reply(&self, answer: Answer) -> Reply {
        match answer {
            Answer::Device(device) => {
                let mut text = format_device(&device);
                // Moves the buffer out, so the one copy of the key stays zeroized on drop.
                Zeroizing::new(std::mem::take(&mut *text).into_bytes())
            }
            Answer::Set(Ok(())) => Zeroizing::new(b"errno=0\n\n".to_vec()),
            Answer::Set(Err(errno)) => errno_reply(errno),
        }
    }

    fn failed(&self, failure: Failure) -> Reply {
        errno_reply(match failure {
            Failure::TooLong => Errno::Invalid,
            Failure::CutOff | Failure::TimedOut => Errno::Protocol,
            Failure::NoAnswer => Errno::Io,
        })
    }
}

fn errno_reply(errno: Errno) -> Reply {
    Zeroizing::new(errno.reply().into_bytes())
}
