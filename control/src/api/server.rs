//! The status API server, run by the control thread's epoll loop.
//!
//! The listener is non-blocking and registered in the caller's epoll set; when it is readable,
//! [`ApiServer::handle_ready`] serves every pending connection to completion on the spot. Each
//! connection gets [`CLIENT_DEADLINE`] to send its request and as long again to take the answer,
//! so a slow or hostile local client delays the data path's control work by a bounded amount.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::socket_file::SocketFile;
use super::{PING_PATH, ROUTES_PATH, RouteList, STATUS_PATH, Status};

/// How long a client has to send its request, and again to take the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_millis(100);

/// Longest request head (request line and headers) read; a longer one is refused.
pub const MAX_REQUEST_HEAD_LEN: usize = 4096;

/// The node's listening status socket. Dropping it removes the socket file.
#[derive(Debug)]
pub struct ApiServer {
    socket: SocketFile,
}

impl ApiServer {
    /// Listens on `path` (see [`SocketFile::bind`]: root-only, a stale socket replaced, a live
    /// node's refused).
    pub fn bind(path: &Path) -> io::Result<Self> {
        let socket = SocketFile::bind(path)?;
        socket.listener().set_nonblocking(true)?;
        Ok(Self { socket })
    }

    /// Where this server listens.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// Serves every pending connection, then returns; call it when the listener is readable.
    /// `answers` builds each answer when a request asks for it.
    ///
    /// # Errors
    /// Accepting failed for a reason other than "nothing pending" (out of file descriptors,
    /// say); the connections left stay queued for the next call.
    pub fn handle_ready(&self, answers: &impl Answers) -> io::Result<()> {
        loop {
            match self.socket.listener().accept() {
                Ok((stream, _)) => serve(stream, answers),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                Err(error) => return Err(error),
            }
        }
    }
}

impl AsFd for ApiServer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.listener().as_fd()
    }
}

impl AsRawFd for ApiServer {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.listener().as_raw_fd()
    }
}

/// Answers one connection, or closes it silently if the client sent nothing and hung up (a
/// liveness probe, see [`remove_stale_socket`]) or the connection failed.
fn serve(mut stream: UnixStream, answers: &impl Answers) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let response = match read_request_head(&mut stream, Instant::now() + CLIENT_DEADLINE) {
        Ok(head) => respond(&head, answers),
        Err(HeadError::TimedOut) => Response::text(408, "Request Timeout", "request incomplete"),
        Err(HeadError::TooLong) => Response::text(
            400,
            "Bad Request",
            &format!("request head over {MAX_REQUEST_HEAD_LEN} bytes"),
        ),
        Err(HeadError::Closed | HeadError::Failed) => return,
    };
    let _ = write_all_by(
        &mut stream,
        &response.into_bytes(),
        Instant::now() + CLIENT_DEADLINE,
    );
    let _ = stream.shutdown(Shutdown::Both);
}

#[derive(Debug)]
enum HeadError {
    /// The client hung up without sending a byte.
    Closed,
    /// The head was not complete by the deadline.
    TimedOut,
    /// No blank line within [`MAX_REQUEST_HEAD_LEN`] bytes.
    TooLong,
    /// The connection failed; nobody is left to answer.
    Failed,
}

/// Reads up to the blank line ending the request head (or the client's end of stream), never
/// more than [`MAX_REQUEST_HEAD_LEN`] bytes, by `deadline`. Returns the head without its
/// terminating blank line.
fn read_request_head(stream: &mut UnixStream, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        let room = MAX_REQUEST_HEAD_LEN.saturating_sub(head.len());
        if room == 0 {
            return Err(HeadError::TooLong);
        }
        let remaining = time_left(deadline).ok_or(HeadError::TimedOut)?;
        stream
            .set_read_timeout(Some(remaining))
            .map_err(|_| HeadError::Failed)?;
        let want = room.min(chunk.len());
        let buffer = chunk.get_mut(..want).unwrap_or_default();
        match stream.read(buffer) {
            Ok(0) if head.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Ok(head),
            Ok(read) => head.extend_from_slice(buffer.get(..read).unwrap_or_default()),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(HeadError::TimedOut);
            }
            Err(_) => return Err(HeadError::Failed),
        }
    }
}

/// Where the head's terminating blank line starts: `\r\n\r\n`, or `\n\n` from a hand-typed
/// request.
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|window| window == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|window| window == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Time until `deadline`, or `None` if it has passed (a zero timeout would mean "block").
fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

fn write_all_by(stream: &mut UnixStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let remaining = time_left(deadline).ok_or(ErrorKind::TimedOut)?;
        stream.set_write_timeout(Some(remaining))?;
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(written) => bytes = bytes.get(written..).unwrap_or_default(),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Routes a request by its first line: `METHOD SP TARGET SP HTTP/1.x`. Headers are ignored.
fn respond(head: &[u8], answers: &impl Answers) -> Response {
    let line = head.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Response::text(400, "Bad Request", "request line is not text");
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text(400, "Bad Request", "malformed request line");
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Response::text(400, "Bad Request", "malformed request method");
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Response::text(400, "Bad Request", "unsupported HTTP version");
    }
    if method != "GET" {
        let mut response = Response::text(405, "Method Not Allowed", "only GET is served");
        response.allow_get = true;
        return response;
    }
    match target {
        STATUS_PATH => Response::json(&answers.status()),
        ROUTES_PATH => Response::json(&answers.routes()),
        PING_PATH => Response::text(200, "OK", "ok"),
        _ => Response::text(404, "Not Found", "no such path"),
    }
}

/// What a node answers its API with: each built only when a request asks for it, so an idle
/// node builds nothing.
pub trait Answers {
    /// The node's status.
    fn status(&self) -> Status;
    /// The node's routes.
    fn routes(&self) -> RouteList;
}

#[derive(Debug)]
struct Response {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// Adds `Allow: GET`, which a 405 must carry.
    allow_get: bool,
}

impl Response {
    /// A `200` with `value` as JSON.
    fn json(value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response {
                code: 200,
                reason: "OK",
                content_type: "application/json",
                body,
                allow_get: false,
            },
            Err(error) => Response::text(500, "Internal Server Error", &error.to_string()),
        }
    }

    /// A `text/plain` response whose body is `message` and a newline.
    fn text(code: u16, reason: &'static str, message: &str) -> Self {
        Self {
            code,
            reason,
            content_type: "text/plain",
            body: format!("{message}\n").into_bytes(),
            allow_get: false,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = if self.allow_get { "Allow: GET\r\n" } else { "" };
        let mut bytes = format!(
            "HTTP/1.0 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}\
             Connection: close\r\n\r\n",
            self.code,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}
