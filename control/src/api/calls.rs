//! A local socket served on a thread of its own, so that no client, however slow or hostile,
//! holds up the control loop: the status API and WireGuard's userspace API both run on it.
//!
//! The thread owns every connection. It reads requests without blocking, many clients at once,
//! each given [`Limits::client_deadline`] to send its request and as long again to take the
//! answer; a [`Protocol`] says when the bytes so far are a request and answers what it can
//! itself (malformed requests, unknown paths). A request only the node can answer becomes a
//! [`Call`] on a bounded channel, and the control thread's wake-up eventfd is notified; the
//! control thread takes a bounded number of calls per turn ([`Calls::next_call`]), answers each
//! from its own state ([`Call::answer_with`]), and never touches a socket. The answer goes back
//! to this thread, which writes it as the client takes it.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rovy_dataplane::sys::{Epoll, EventFd, Interest};
use zeroize::Zeroizing;

use super::SocketFile;

/// Bytes written back to a client. Zeroized when dropped: a userspace API answer carries the
/// private key.
pub type Reply = Zeroizing<Vec<u8>>;

/// What the bytes a client has sent so far are.
#[derive(Debug)]
pub enum Parsed<Q> {
    /// Not a whole request yet.
    More,
    /// A request for the control thread.
    Call(Q),
    /// A reply the serving thread gives itself (a refused request): written, then the
    /// connection is closed.
    Reply(Reply),
}

/// Why a request got no answer from the control thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It ran past [`Protocol::MAX_REQUEST_LEN`].
    TooLong,
    /// The client hung up before it was whole.
    CutOff,
    /// It was not whole by the client's deadline.
    TimedOut,
    /// The control thread did not answer in time (or has stopped).
    NoAnswer,
}

/// A request/answer protocol over a stream socket, one request per connection.
pub trait Protocol: Send + 'static {
    /// What the control thread is asked.
    type Request: Send + 'static;
    /// What it answers.
    type Answer: Send + 'static;
    /// Longest request read.
    const MAX_REQUEST_LEN: usize;
    /// Reads what a client has sent so far.
    fn parse(&self, bytes: &[u8]) -> Parsed<Self::Request>;
    /// The reply that carries the control thread's answer.
    fn reply(&self, answer: Self::Answer) -> Reply;
    /// The reply to a request that got no answer.
    fn failed(&self, failure: Failure) -> Reply;
}

/// How long and how many clients a server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client has to send its request, and again to take the answer.
    pub client_deadline: Duration,
    /// How long a request waits for the control thread's answer.
    pub answer_deadline: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// A request for the control thread, and where its answer goes.
#[derive(Debug)]
pub struct Call<Q, A> {
    request: Q,
    connection: u64,
    answers: Sender<(u64, A)>,
    wake: Arc<EventFd>,
}

impl<Q, A> Call<Q, A> {
    /// Answers the call with what `answer` makes of its request, and wakes the serving thread
    /// to write it. An answer for a client that has gone is dropped there.
    pub fn answer_with(self, answer: impl FnOnce(Q) -> A) {
        let answer = answer(self.request);
        if self.answers.send((self.connection, answer)).is_ok() {
            self.wake.notify();
        }
    }
}

/// The control thread's end: the calls waiting for it.
#[derive(Debug)]
pub struct Calls<Q, A>(Receiver<Call<Q, A>>);

impl<Q, A> Calls<Q, A> {
    /// The next call waiting, if any. Never blocks.
    pub fn next_call(&self) -> Option<Call<Q, A>> {
        self.0.try_recv().ok()
    }

    /// Calls that never come: for a control loop tested without a socket.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Calls(mpsc::sync_channel(0).1)
    }
}

/// The calls of a server of protocol `P`.
pub type ProtocolCalls<P> = Calls<<P as Protocol>::Request, <P as Protocol>::Answer>;

/// A socket being served. Dropping it stops its thread, closes every connection and removes
/// the socket file.
#[derive(Debug)]
pub struct CallServer {
    socket: SocketFile,
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl CallServer {
    /// Serves `socket` with `protocol` on a new thread named `name`: each call goes to the
    /// returned [`Calls`], and `wake` is notified.
    pub fn start<P: Protocol>(
        socket: SocketFile,
        protocol: P,
        limits: Limits,
        name: &str,
        wake: Arc<EventFd>,
    ) -> io::Result<(CallServer, ProtocolCalls<P>)> {
        let listener = socket.listener().try_clone()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(EventFd::new()?);
        let answered = Arc::new(EventFd::new()?);
        let epoll = Epoll::new(64)?;
        epoll.add_readable(&listener, TOKEN_LISTENER)?;
        epoll.add_readable(&*stop, TOKEN_STOP)?;
        epoll.add_readable(&*answered, TOKEN_ANSWERED)?;
        let (calls_tx, calls) = mpsc::sync_channel(limits.max_connections.max(1));
        let (answers_tx, answers) = mpsc::channel();
        let serving = Serving {
            protocol,
            limits,
            listener,
            epoll,
            connections: HashMap::new(),
            next_token: TOKEN_FIRST_CONNECTION,
            accepting: true,
            accept_again: None,
            calls: calls_tx,
            control_wake: wake,
            answers_tx,
            answers,
            answered,
        };
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || serving.run())?;
        Ok((
            CallServer {
                socket,
                stop,
                thread: Some(thread),
            },
            Calls(calls),
        ))
    }

    /// Where it listens.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.socket.path()
    }
}

impl Drop for CallServer {
    fn drop(&mut self) {
        self.stop.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

const TOKEN_LISTENER: u64 = 0;
const TOKEN_STOP: u64 = 1;
const TOKEN_ANSWERED: u64 = 2;
const TOKEN_FIRST_CONNECTION: u64 = 3;

/// Bytes read from one client per readiness, so one fast client cannot starve the others.
const READ_PER_TURN: usize = 64 << 10;

/// How long accepting pauses after it failed for want of resources (file descriptors).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Where one connection is.
enum State {
    /// Reading its request: the bytes so far.
    Reading(Zeroizing<Vec<u8>>),
    /// Its call is with the control thread.
    Waiting,
    /// Writing the reply: what is left from `sent` on.
    Writing { reply: Reply, sent: usize },
}

struct Connection {
    stream: UnixStream,
    state: State,
    /// When the current state runs out.
    deadline: Instant,
}

/// The serving thread's state.
struct Serving<P: Protocol> {
    protocol: P,
    limits: Limits,
    listener: UnixListener,
    epoll: Epoll,
    connections: HashMap<u64, Connection>,
    next_token: u64,
    /// Whether the listener is watched (not while every connection slot is taken, or after
    /// accepting failed).
    accepting: bool,
    /// When to try accepting again after a failure.
    accept_again: Option<Instant>,
    calls: SyncSender<Call<P::Request, P::Answer>>,
    control_wake: Arc<EventFd>,
    answers_tx: Sender<(u64, P::Answer)>,
    answers: Receiver<(u64, P::Answer)>,
    answered: Arc<EventFd>,
}

impl<P: Protocol> Serving<P> {
    fn run(mut self) {
        loop {
            let timeout = self.timeout_ms(Instant::now());
            let tokens: Vec<u64> = match self.epoll.wait(timeout) {
                Ok(tokens) => tokens.collect(),
                Err(_) => return,
            };
            for token in tokens {
                match token {
                    TOKEN_STOP => return,
                    TOKEN_LISTENER => self.accept(),
                    TOKEN_ANSWERED => self.take_answers(),
                    connection => self.ready(connection),
                }
            }
            self.expire(Instant::now());
        }
    }

    /// Milliseconds until the first deadline (rounded up), or -1 for none.
    fn timeout_ms(&self, now: Instant) -> i32 {
        let first = self
            .connections
            .values()
            .map(|c| c.deadline)
            .chain(self.accept_again)
            .min();
        first.map_or(-1, |at| {
            let wait = at.saturating_duration_since(now);
            i32::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        })
    }

    fn accept(&mut self) {
        while self.connections.len() < self.limits.max_connections {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) => {}
                Err(_) => {
                    // Out of file descriptors, say: the listener stays readable, so watching
                    // it would spin. Try again a little later.
                    self.accept_again = Some(Instant::now() + ACCEPT_PAUSE);
                    break;
                }
            }
        }
        self.watch_listener();
    }

    fn admit(&mut self, stream: UnixStream) {
        let token = self.next_token;
        if stream.set_nonblocking(true).is_err()
            || self.epoll.add(&stream, token, Interest::Readable).is_err()
        {
            return;
        }
        self.next_token += 1;
        let connection = Connection {
            stream,
            state: State::Reading(Zeroizing::new(Vec::new())),
            deadline: Instant::now() + self.limits.client_deadline,
        };
        self.connections.insert(token, connection);
    }

    /// Watches the listener while there is room for a connection and accepting has not failed
    /// lately.
    fn watch_listener(&mut self) {
        let want =
            self.connections.len() < self.limits.max_connections && self.accept_again.is_none();
        if want != self.accepting {
            let interest = if want {
                Interest::Readable
            } else {
                Interest::Neither
            };
            if self
                .epoll
                .modify(&self.listener, TOKEN_LISTENER, interest)
                .is_ok()
            {
                self.accepting = want;
            }
        }
    }

    fn take_answers(&mut self) {
        self.answered.drain();
        while let Ok((token, answer)) = self.answers.try_recv() {
            let waiting = self
                .connections
                .get(&token)
                .is_some_and(|c| matches!(c.state, State::Waiting));
            if waiting {
                let reply = self.protocol.reply(answer);
                self.write(token, reply);
            }
        }
    }

    /// A connection is ready for what its state waits for (or hung up).
    fn ready(&mut self, token: u64) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        match &mut connection.state {
            State::Reading(bytes) => {
                let read = read_some(&mut connection.stream, bytes, P::MAX_REQUEST_LEN);
                self.progress(token, read);
            }
            // Watched for nothing: this is a hang-up, and nobody is left to answer.
            State::Waiting => self.close(token),
            State::Writing { .. } => self.flush(token),
        }
    }

    /// What to do after reading: parse, refuse, hand the call on, or wait for more.
    fn progress(&mut self, token: u64, read: ReadEnd) {
        let Some(connection) = self.connections.get(&token) else {
            return;
        };
        let State::Reading(bytes) = &connection.state else {
            return;
        };
        if matches!(read, ReadEnd::Failed) || (matches!(read, ReadEnd::Closed) && bytes.is_empty())
        {
            // A liveness probe (connect and hang up), or a broken connection.
            return self.close(token);
        }
        match self.protocol.parse(bytes) {
            Parsed::Call(request) => self.call(token, request),
            Parsed::Reply(reply) => self.write(token, reply),
            Parsed::More if matches!(read, ReadEnd::Closed) => {
                let reply = self.protocol.failed(Failure::CutOff);
                self.write(token, reply);
            }
            Parsed::More if bytes.len() >= P::MAX_REQUEST_LEN => {
                let reply = self.protocol.failed(Failure::TooLong);
                self.write(token, reply);
            }
            Parsed::More => {}
        }
    }

    /// Hands `request` to the control thread; the connection waits for the answer.
    fn call(&mut self, token: u64, request: P::Request) {
        let call = Call {
            request,
            connection: token,
            answers: self.answers_tx.clone(),
            wake: Arc::clone(&self.answered),
        };
        match self.calls.try_send(call) {
            Ok(()) => self.control_wake.notify(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let reply = self.protocol.failed(Failure::NoAnswer);
                return self.write(token, reply);
            }
        }
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        connection.state = State::Waiting;
        connection.deadline = Instant::now() + self.limits.answer_deadline;
        if self
            .epoll
            .modify(&connection.stream, token, Interest::Neither)
            .is_err()
        {
            self.close(token);
        }
    }

    /// Starts writing `reply` to the connection.
    fn write(&mut self, token: u64, reply: Reply) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        connection.state = State::Writing { reply, sent: 0 };
        connection.deadline = Instant::now() + self.limits.client_deadline;
        if self
            .epoll
            .modify(&connection.stream, token, Interest::Writable)
            .is_err()
        {
            return self.close(token);
        }
        self.flush(token);
    }

    /// Writes what the socket takes of the reply; closes the connection when it is all sent
    /// or the client is gone.
    fn flush(&mut self, token: u64) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let State::Writing { reply, sent } = &mut connection.state else {
            return;
        };
        loop {
            let Some(rest) = reply.get(*sent..).filter(|rest| !rest.is_empty()) else {
                let _ = connection.stream.shutdown(Shutdown::Both);
                return self.close(token);
            };
            match connection.stream.write(rest) {
                Ok(0) => return self.close(token),
                Ok(written) => *sent += written,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.close(token),
            }
        }
    }

    /// Deals with every connection whose deadline has passed.
    fn expire(&mut self, now: Instant) {
        if self.accept_again.is_some_and(|at| at <= now) {
            self.accept_again = None;
            self.watch_listener();
        }
        let due: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(token, _)| *token)
            .collect();
        for token in due {
            let failure = match self.connections.get(&token).map(|c| &c.state) {
                Some(State::Reading(_)) => Failure::TimedOut,
                Some(State::Waiting) => Failure::NoAnswer,
                Some(State::Writing { .. }) | None => {
                    self.close(token);
                    continue;
                }
            };
            let reply = self.protocol.failed(failure);
            self.write(token, reply);
        }
    }

    fn close(&mut self, token: u64) {
        // Closing the stream takes it out of the epoll set.
        self.connections.remove(&token);
        self.watch_listener();
    }
}

/// How a read ended.
enum ReadEnd {
    /// The socket has nothing more for now (or the request is as long as it may be).
    Pending,
    /// The client ended its stream.
    Closed,
    /// The connection failed.
    Failed,
}

/// Reads what `stream` has, up to [`READ_PER_TURN`] and never past `max` bytes in all.
fn read_some(stream: &mut UnixStream, bytes: &mut Vec<u8>, max: usize) -> ReadEnd {
    let mut chunk = Zeroizing::new([0u8; 4096]);
    let mut this_turn = 0;
    while this_turn < READ_PER_TURN {
        let room = max.saturating_sub(bytes.len()).min(chunk.len());
        if room == 0 {
            return ReadEnd::Pending;
        }
        match stream.read(&mut chunk[..room]) {
            Ok(0) => return ReadEnd::Closed,
            Ok(read) => {
                bytes.extend_from_slice(&chunk[..read]);
                this_turn += read;
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => return ReadEnd::Pending,
            Err(_) => return ReadEnd::Failed,
        }
    }
    ReadEnd::Pending
}
