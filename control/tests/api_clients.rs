//! Clients of the status API that are slow, stalled or hostile: each holds only its own
//! connection on the API thread, never the control side or another client.

mod served;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rovy_control::api::calls::Limits;
use rovy_control::api::{
    Answers, ConnectRequest, DisconnectRequest, HandshakeCounts, PeerList, PeerStatus, Refusal,
    RouteList, Status, fetch_status,
};
use served::Served;

/// A socket path of its own for test `name`; the server removes the file when it goes.
fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "rovy-api-clients-{}-{name}.sock",
        std::process::id()
    ))
}

/// A node with nothing but a name and a key.
fn sample_status() -> Status {
    Status {
        interface: "rovy0".to_owned(),
        public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        address: None,
        backend: "epoll".to_owned(),
        listen: Vec::new(),
        offloads: Vec::new(),
        workers: Vec::new(),
        drops: BTreeMap::new(),
        drops_total: 0,
        peers: Vec::new(),
        links: Vec::new(),
        routes: 0,
        handshakes: HandshakeCounts::default(),
    }
}

/// A node that answers with a fixed status and changes nothing.
struct Fixed<'a>(&'a Status);

impl Answers for Fixed<'_> {
    fn status(&self) -> Status {
        self.0.clone()
    }

    fn routes(&self) -> RouteList {
        RouteList { routes: Vec::new() }
    }

    fn peers(&self) -> PeerList {
        PeerList { peers: Vec::new() }
    }

    fn connect(&mut self, _: ConnectRequest) -> Result<PeerStatus, Refusal> {
        Err(Refusal::Invalid("a fixed node changes nothing".to_owned()))
    }

    fn disconnect(&mut self, _: DisconnectRequest) -> Result<PeerStatus, Refusal> {
        Err(Refusal::Invalid("a fixed node changes nothing".to_owned()))
    }
}

/// Reads until the server closes (or the read times out).
fn read_answer(stream: &mut UnixStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(answer).unwrap()
}

fn text_answer(status_line: &str, body: &str) -> String {
    format!(
        "HTTP/1.0 {status_line}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Limits whose deadlines no test reaches: a client only gets an answer the server did not
/// have to wait for.
const PATIENT: Limits = Limits {
    client_deadline: Duration::from_secs(120),
    answer_deadline: Duration::from_secs(120),
    max_connections: 16,
};

/// Most bytes a trickling client writes: 20 s worth.
const TRICKLE_MAX: usize = 400;

/// Writes `bytes` (over and over) one a time, 50 ms apart, until the server stops taking them,
/// `stop` is set or [`TRICKLE_MAX`] are written; returns how many it wrote.
fn trickle(path: &Path, bytes: &'static [u8], stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    let mut stream = UnixStream::connect(path).unwrap();
    thread::spawn(move || {
        let mut written = 0;
        for byte in bytes.iter().cycle().take(TRICKLE_MAX) {
            if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                break;
            }
            written += 1;
            thread::sleep(Duration::from_millis(50));
        }
        written
    })
}

/// Whether `stream` is open with nothing sent to it yet.
fn unanswered(stream: &mut UnixStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Stalled and hostile clients take none of the control side's time and do not queue a good
/// client behind them: with deadlines far beyond the test, a server that served one connection
/// after another (or on the control thread) could answer the good client only after the
/// stalled ones, and they are still connected and unanswered when it has its status.
#[test]
fn hostile_clients_hold_up_neither_the_control_side_nor_other_clients() {
    let path = socket_path("hostile");
    let server = Served::bind_with(&path, PATIENT).unwrap();
    let status = sample_status();

    let mut silent: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    let mut half_body = UnixStream::connect(&path).unwrap();
    half_body
        .write_all(b"POST /v0/peer/connect HTTP/1.0\r\nContent-Length: 100\r\n\r\n{\"pub")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(
        &path,
        b"GET /v0/status HTTP/1.0\r\nX-Slow: ",
        Arc::clone(&stop),
    );
    let mut garbage = UnixStream::connect(&path).unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n")
        .unwrap();
    let mut huge = UnixStream::connect(&path).unwrap();
    let mut head = b"GET /v0/status HTTP/1.0\r\n".to_vec();
    head.extend(std::iter::repeat_n(b"X-Huge: aaaaaaaaaaaaaaaa\r\n", 400).flatten());
    huge.write_all(&head).unwrap();

    let fetched = server.while_serving(&mut Fixed(&status), || fetch_status(&path));
    assert_eq!(fetched.unwrap(), status);

    for (name, stream) in [("garbage", &mut garbage), ("huge headers", &mut huge)] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let answer = read_answer(stream);
        assert!(
            answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
            "{name}: {answer:?}"
        );
    }
    for stream in silent.iter_mut().chain([&mut half_body]) {
        assert!(unanswered(stream), "a stalled client was answered early");
    }
    assert_eq!(
        server.answer_waiting(&mut Fixed(&status)),
        0,
        "no stalled request reached the control side"
    );
    stop.store(true, Ordering::Relaxed);
    assert!(
        trickler.join().unwrap() > 0,
        "the trickling client was still sending"
    );
}

/// A request is not whole by the client deadline: `408`, counted from the connection, so a
/// client trickling bytes gets it as one that sends nothing; none of them reaches the control
/// side.
#[test]
fn silent_and_slow_clients_time_out() {
    let path = socket_path("slow");
    let server = Served::bind(&path).unwrap();
    let status = sample_status();

    let mut silent = UnixStream::connect(&path).unwrap();
    let mut slow = UnixStream::connect(&path).unwrap();
    slow.write_all(b"GET /v0/sta").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = trickle(
        &path,
        b"GET /v0/status HTTP/1.0\r\nX-Slow: ",
        Arc::clone(&stop),
    );

    let timed_out = text_answer("408 Request Timeout", "request incomplete\n");
    assert_eq!(read_answer(&mut silent), timed_out);
    assert_eq!(read_answer(&mut slow), timed_out);
    // The trickler stops once the server closes on it, long before it has sent all it would.
    let written = trickler.join().unwrap();
    assert!(written < TRICKLE_MAX, "{written} bytes trickled in");
    assert_eq!(server.answer_waiting(&mut Fixed(&status)), 0);
    let fetched = server.while_serving(&mut Fixed(&status), || fetch_status(&path));
    assert_eq!(fetched.unwrap(), status);
}

/// Past `max_connections`, clients wait in the listen backlog and are served once a
/// connection closes.
#[test]
fn clients_past_the_limit_wait_their_turn() {
    let path = socket_path("limit");
    let limits = Limits {
        max_connections: 2,
        ..PATIENT
    };
    let server = Served::bind_with(&path, limits).unwrap();
    let status = sample_status();
    let first = UnixStream::connect(server.path()).unwrap();
    let _second = UnixStream::connect(&path).unwrap();

    let mut waiting = UnixStream::connect(&path).unwrap();
    waiting.write_all(b"GET /v0/ping HTTP/1.0\r\n\r\n").unwrap();
    // Every slot is held: nothing reaches the control side, nothing is answered.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(server.answer_waiting(&mut Fixed(&status)), 0);
    assert!(unanswered(&mut waiting));

    drop(first);
    waiting.set_nonblocking(false).unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let answer = server.while_serving(&mut Fixed(&status), || read_answer(&mut waiting));
    assert_eq!(answer, text_answer("200 OK", "ok\n"));
}
