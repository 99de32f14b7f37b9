//! The status API server, run by the control thread's epoll loop.
//!
//! The listener is non-blocking and registered in the caller's epoll set; when it is readable,
//! [`ApiServer::handle_ready`] serves every pending connection to completion on the spot. Each
//! connection gets [`CLIENT_DEADLINE`] to send its request and as long again to take the answer,
//! so a slow or hostile local client delays the data path's control work by a bounded amount.

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{PING_PATH, ROUTES_PATH, RouteList, STATUS_PATH, Status};

/// How long a client has to send its request, and again to take the answer.
pub const CLIENT_DEADLINE: Duration = Duration::from_millis(100);

/// Longest request head (request line and headers) read; a longer one is refused.
pub const MAX_REQUEST_HEAD_LEN: usize = 4096;

/// The socket is root-only: the status names every peer.
const SOCKET_MODE: u32 = 0o600;

/// Mode of a socket directory created on the way (`/run/rovy`).
const DIRECTORY_MODE: u32 = 0o755;

/// The node's listening status socket. Dropping it removes the socket file.
#[derive(Debug)]
pub struct ApiServer {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file bound, so that drop removes only this server's
    /// file, never one a later node bound at the same path.
    file_id: (u64, u64),
    /// Directories `bind` created, deepest first: removed on drop when empty, so a node in a
    /// namespace of its own leaves no `/run/rovy/netns/…` behind.
    created_dirs: Vec<PathBuf>,
}

impl ApiServer {
    /// Listens on `path`, creating its directory (mode 0755) if missing; the directories it
    /// created are removed again on drop if they are empty by then.
    ///
    /// A socket file left at `path` by a node that died is replaced; one a live node answers on
    /// is an error (`AddrInUse`, "another node is running on PATH"), as is anything at `path`
    /// that is not a socket. The socket is bound under a temporary name, made root-only, and
    /// only then linked at `path`, so nobody can connect before the mode is set and two nodes
    /// starting at once cannot both take the path.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let file_name = path.file_name().ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("{}: not a socket file path", path.display()),
            )
        })?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let created_dirs: Vec<PathBuf> = directory
            .ancestors()
            .take_while(|ancestor| !ancestor.as_os_str().is_empty() && !ancestor.exists())
            .map(Path::to_path_buf)
            .collect();
        DirBuilder::new()
            .recursive(true)
            .mode(DIRECTORY_MODE)
            .create(directory)
            .map_err(|error| with_context(error, &directory.display().to_string()))?;
        remove_stale_socket(path)?;

        let mut temporary_name = OsString::from(".");
        temporary_name.push(file_name);
        temporary_name.push(format!(".{}.binding", std::process::id()));
        let temporary = directory.join(temporary_name);
        remove_if_present(&temporary)?;
        let bound = bind_root_only(&temporary, path);
        let unlinked = remove_if_present(&temporary);
        let listener = bound?;
        unlinked?;

        let file_id = fs::symlink_metadata(path)
            .map(|metadata| (metadata.dev(), metadata.ino()))
            .map_err(|error| with_context(error, &path.display().to_string()))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            file_id,
            created_dirs,
        })
    }

    /// Where this server listens.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves every pending connection, then returns; call it when the listener is readable.
    /// `answers` builds each answer when a request asks for it.
    ///
    /// # Errors
    /// Accepting failed for a reason other than "nothing pending" (out of file descriptors,
    /// say); the connections left stay queued for the next call.
    pub fn handle_ready(&self, answers: &impl Answers) -> io::Result<()> {
        loop {
            match self.listener.accept() {
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
        self.listener.as_fd()
    }
}

impl AsRawFd for ApiServer {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let still_ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == self.file_id);
        if still_ours {
            let _ = fs::remove_file(&self.path);
        }
        for directory in &self.created_dirs {
            if fs::remove_dir(directory).is_err() {
                break;
            }
        }
    }
}

/// Removes a socket file nobody answers on; refuses a live socket or a file of another kind.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(with_context(error, &path.display().to_string())),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    match UnixStream::connect(path) {
        // The probe closes without a request, which a node's server ignores.
        Ok(_probe) => Err(another_node_error(path)),
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => remove_if_present(path),
        Err(error) => Err(with_context(error, &format!("probing {}", path.display()))),
    }
}

/// Binds at `temporary`, sets the socket's mode, and hard-links it at `path`; linking fails if
/// `path` exists, so a node that took the path meanwhile is never displaced.
fn bind_root_only(temporary: &Path, path: &Path) -> io::Result<UnixListener> {
    let temporary_name = temporary.display().to_string();
    let listener = UnixListener::bind(temporary).map_err(|e| with_context(e, &temporary_name))?;
    fs::set_permissions(temporary, fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(|error| with_context(error, &temporary_name))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| with_context(error, &temporary_name))?;
    fs::hard_link(temporary, path).map_err(|error| match error.kind() {
        ErrorKind::AlreadyExists => another_node_error(path),
        _ => with_context(error, &path.display().to_string()),
    })?;
    Ok(listener)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => {
            Err(with_context(error, &path.display().to_string()))
        }
        _ => Ok(()),
    }
}

fn another_node_error(path: &Path) -> io::Error {
    io::Error::new(
        ErrorKind::AddrInUse,
        format!("another node is running on {}", path.display()),
    )
}

fn with_context(error: io::Error, context: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{context}: {error}"))
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
