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

use super::request::{self, HttpRequest, MAX_REQUEST_BODY_LEN, MAX_REQUEST_HEAD_LEN, RequestError};
use super::socket_file::SocketFile;
use super::{
    CONNECT_PATH, ConnectRequest, DISCONNECT_PATH, DisconnectRequest, PEERS_PATH, PING_PATH,
    PeerList, PeerStatus, ROUTES_PATH, Refusal, RouteList, STATUS_PATH, Status,
};

/// How long a client has to send its request, and again to take the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_millis(100);

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
    pub fn handle_ready(&self, answers: &mut impl Answers) -> io::Result<()> {
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
/// liveness probe, see [`SocketFile::bind`]) or the connection failed.
fn serve(mut stream: UnixStream, answers: &mut impl Answers) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let response = match read_request(&mut stream, Instant::now() + CLIENT_DEADLINE) {
        Ok(request) => respond(&request, answers),
        Err(ReadError::TimedOut) => Response::text(408, "Request Timeout", "request incomplete"),
        Err(ReadError::CutOff) => Response::text(400, "Bad Request", "request incomplete"),
        Err(ReadError::Refused(error)) => Response::text(400, "Bad Request", &error.message()),
        Err(ReadError::Closed | ReadError::Failed) => return,
    };
    let _ = write_all_by(
        &mut stream,
        &response.into_bytes(),
        Instant::now() + CLIENT_DEADLINE,
    );
    let _ = stream.shutdown(Shutdown::Both);
}

#[derive(Debug)]
enum ReadError {
    /// The client hung up without sending a byte.
    Closed,
    /// The request was not complete by the deadline.
    TimedOut,
    /// The client hung up before the request was complete.
    CutOff,
    /// The request is malformed or too long.
    Refused(RequestError),
    /// The connection failed; nobody is left to answer.
    Failed,
}

/// Reads one request (head and body) by `deadline`, never more than its limits allow.
fn read_request(stream: &mut UnixStream, deadline: Instant) -> Result<HttpRequest, ReadError> {
    let mut bytes = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        if !bytes.is_empty() {
            if let Some(request) = request::parse(&bytes).map_err(ReadError::Refused)? {
                return Ok(request);
            }
        }
        let room = (MAX_REQUEST_HEAD_LEN + MAX_REQUEST_BODY_LEN).saturating_sub(bytes.len());
        if room == 0 {
            return Err(ReadError::Refused(RequestError::BodyTooLong));
        }
        let remaining = time_left(deadline).ok_or(ReadError::TimedOut)?;
        stream
            .set_read_timeout(Some(remaining))
            .map_err(|_| ReadError::Failed)?;
        let want = room.min(chunk.len());
        let buffer = chunk.get_mut(..want).unwrap_or_default();
        match stream.read(buffer) {
            Ok(0) if bytes.is_empty() => return Err(ReadError::Closed),
            Ok(0) => return Err(ReadError::CutOff),
            Ok(read) => bytes.extend_from_slice(buffer.get(..read).unwrap_or_default()),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ReadError::TimedOut);
            }
            Err(_) => return Err(ReadError::Failed),
        }
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

/// Routes a request by method and path.
fn respond(request: &HttpRequest, answers: &mut impl Answers) -> Response {
    let method = match request.target.as_str() {
        STATUS_PATH | ROUTES_PATH | PEERS_PATH | PING_PATH => "GET",
        CONNECT_PATH | DISCONNECT_PATH => "POST",
        _ => return Response::text(404, "Not Found", "no such path"),
    };
    if request.method != method {
        let mut response = Response::text(
            405,
            "Method Not Allowed",
            &format!("only {method} is served"),
        );
        response.allow = Some(method);
        return response;
    }
    match request.target.as_str() {
        STATUS_PATH => Response::json(&answers.status()),
        ROUTES_PATH => Response::json(&answers.routes()),
        PEERS_PATH => Response::json(&answers.peers()),
        CONNECT_PATH => match serde_json::from_slice(&request.body) {
            Ok(connect) => Response::answer(answers.connect(connect)),
            Err(error) => Response::text(400, "Bad Request", &format!("malformed body: {error}")),
        },
        DISCONNECT_PATH => match serde_json::from_slice(&request.body) {
            Ok(disconnect) => Response::answer(answers.disconnect(disconnect)),
            Err(error) => Response::text(400, "Bad Request", &format!("malformed body: {error}")),
        },
        _ => Response::text(200, "OK", "ok"),
    }
}

/// What a node answers its API with: each built only when a request asks for it, so an idle
/// node builds nothing.
pub trait Answers {
    /// The node's status.
    fn status(&self) -> Status;
    /// The node's routes.
    fn routes(&self) -> RouteList;
    /// The node's peers.
    fn peers(&self) -> PeerList;
    /// Connects to a rovy peer (adds it, or gives it the endpoint): the peer as it is now.
    fn connect(&mut self, request: ConnectRequest) -> Result<PeerStatus, Refusal>;
    /// Removes a peer: the peer as it was.
    fn disconnect(&mut self, request: DisconnectRequest) -> Result<PeerStatus, Refusal>;
}

#[derive(Debug)]
struct Response {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// The method an `Allow` header names, which a 405 must carry.
    allow: Option<&'static str>,
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
                allow: None,
            },
            Err(error) => Response::text(500, "Internal Server Error", &error.to_string()),
        }
    }

    /// A change's answer: the peer as JSON, or why not.
    fn answer(result: Result<PeerStatus, Refusal>) -> Self {
        match result {
            Ok(peer) => Response::json(&peer),
            Err(Refusal::NotFound(why)) => Response::text(404, "Not Found", &why),
            Err(Refusal::Invalid(why)) => Response::text(400, "Bad Request", &why),
        }
    }

    /// A `text/plain` response whose body is `message` and a newline.
    fn text(code: u16, reason: &'static str, message: &str) -> Self {
        Self {
            code,
            reason,
            content_type: "text/plain",
            body: format!("{message}\n").into_bytes(),
            allow: None,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = self
            .allow
            .map(|method| format!("Allow: {method}\r\n"))
            .unwrap_or_default();
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
