//! The local API's requests as its thread reads them (`request::parse`, then `Http`'s routing
//! to a call): any bytes, no panic. A request read is the bytes sent: its method, target and
//! body are where an independent reading of the head puts them, the body as long as the last
//! `Content-Length` says, and nothing after it counts; one byte less is not yet a request. A
//! head past `MAX_REQUEST_HEAD_LEN` or an announced body past `MAX_REQUEST_BODY_LEN` is refused,
//! and what is still incomplete always fits in what the server buffers. Every path and method
//! gets the answer the API's table gives it; a body that is not JSON, or not UTF-8 (even in a
//! field ignored), gets the `400`. Every refusal, the node's refusals of the fields of a peer
//! command included, is a well-formed `HTTP/1.0` answer that the CLI reads back as the same
//! one-line message. A call re-encoded as the CLI sends it reads back as the same call, and the
//! peer command's fields, when the node takes them, are in canonical form and mean to the CLI
//! what they mean to the node.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::api::calls::{Parsed, Protocol};
use rovy_control::api::request::{self, HttpRequest, RequestError};
use rovy_control::api::{
    ApiAnswer, ApiRequest, CONNECT_PATH, ConnectRequest, DISCONNECT_PATH, DisconnectRequest, Http,
    MAX_REQUEST_BODY_LEN, MAX_REQUEST_HEAD_LEN, PEERS_PATH, PING_PATH, ROUTES_PATH, Refusal,
    STATUS_PATH, parse_response, request_bytes,
};
use rovy_control::config::{Endpoint, parse_dial};

fuzz_target!(|bytes: &[u8]| {
    let head = read_head(bytes);
    let served = Http.parse(bytes);
    match request::parse(bytes) {
        Ok(None) => {
            assert!(matches!(served, Parsed::More), "incomplete, yet {served:?}");
            check_incomplete(bytes, head.as_ref());
        }
        Err(error) => {
            assert_oversize_is_this(bytes, head.as_ref(), error);
            let Parsed::Reply(reply) = served else {
                panic!("refused with {error:?}, yet {served:?}");
            };
            assert_eq!(answer_of(&reply), (400, error.message()));
        }
        Ok(Some(request)) => {
            let head = head.unwrap_or_else(|| panic!("read without a head: {request:?}"));
            check_request(bytes, &head, &request);
            check_route(&request, served);
        }
    }
});

/// The head as RFC 9112 reads it, written out without `httparse`: where the request line
/// starts (after empty lines), where the first empty line after it ends, and its header lines.
struct Head<'a> {
    start: usize,
    end: usize,
    headers: Vec<(&'a [u8], &'a [u8])>,
}

impl Head<'_> {
    /// The value of the last header named `name`, trimmed.
    fn last(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| trim(value))
    }

    /// The body length announced, if the announcement is digits.
    fn content_length(&self) -> Option<usize> {
        match self.last("content-length") {
            None => Some(0),
            Some(value) if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(value).ok()?.parse().ok()
            }
            Some(_) => None,
        }
    }
}

fn read_head(bytes: &[u8]) -> Option<Head<'_>> {
    let mut start = 0;
    loop {
        match bytes.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) => start += 1,
            _ => break,
        }
    }
    let mut lines = Vec::new();
    let mut at = start;
    loop {
        let newline = at + bytes.get(at..)?.iter().position(|&b| b == b'\n')?;
        let line = &bytes[at..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at = newline + 1;
        if line.is_empty() && !lines.is_empty() {
            break;
        }
        lines.push(line);
    }
    let headers = lines[1..]
        .iter()
        .map(|line| {
            let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
            (&line[..colon], line.get(colon + 1..).unwrap_or_default())
        })
        .collect();
    Some(Head {
        start,
        end: at,
        headers,
    })
}

fn trim(value: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let from = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let to = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(from, |at| at + 1);
    &value[from..to]
}

/// Not yet a request: it still fits in what the server reads, and nothing read so far is over
/// a limit.
fn check_incomplete(bytes: &[u8], head: Option<&Head>) {
    assert!(bytes.len() < MAX_REQUEST_HEAD_LEN + MAX_REQUEST_BODY_LEN);
    let Some(head) = head else {
        assert!(bytes.len() < MAX_REQUEST_HEAD_LEN, "an endless head waits");
        return;
    };
    assert!(head.end <= MAX_REQUEST_HEAD_LEN, "a long head waits");
    let announced = head.content_length().expect("a malformed length waits");
    assert!(announced <= MAX_REQUEST_BODY_LEN, "a long body waits");
    assert!(bytes.len() < head.end + announced, "whole, yet waits");
}

/// A head or body over its limit is refused as such, unless it was malformed anyway.
fn assert_oversize_is_this(bytes: &[u8], head: Option<&Head>, error: RequestError) {
    let head_too_long = head.map_or(bytes.len() >= MAX_REQUEST_HEAD_LEN, |head| {
        head.end > MAX_REQUEST_HEAD_LEN
    });
    if head_too_long {
        assert!(
            matches!(
                error,
                RequestError::HeadTooLong | RequestError::Malformed(_)
            ),
            "{error:?}"
        );
    }
    if error == RequestError::BodyTooLong {
        let announced = head.and_then(Head::content_length);
        assert!(announced.is_some_and(|len| len > MAX_REQUEST_BODY_LEN));
    }
}

fn check_request(bytes: &[u8], head: &Head, request: &HttpRequest) {
    let HttpRequest {
        method,
        target,
        body,
    } = request;
    assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()));
    let line = format!("{method} {target} HTTP/1.");
    assert!(
        bytes[head.start..].starts_with(line.as_bytes()),
        "{line:?} is not the request line"
    );
    assert!(head.end <= MAX_REQUEST_HEAD_LEN);
    assert!(head.last("transfer-encoding").is_none());
    assert_eq!(head.content_length(), Some(body.len()));
    assert!(body.len() <= MAX_REQUEST_BODY_LEN);
    let whole = head.end + body.len();
    assert_eq!(&bytes[head.end..whole], body.as_slice());
    let again = request::parse(&bytes[..whole]).ok().flatten();
    assert_eq!(
        again.as_ref(),
        Some(request),
        "the bytes after the body counted"
    );
    assert_eq!(request::parse(&bytes[..whole - 1]), Ok(None));
}

/// The API's table: the method each path is served with.
fn method_of(path: &str) -> Option<&'static str> {
    match path {
        STATUS_PATH | ROUTES_PATH | PEERS_PATH | PING_PATH => Some("GET"),
        CONNECT_PATH | DISCONNECT_PATH => Some("POST"),
        _ => None,
    }
}

fn check_route(request: &HttpRequest, served: Parsed<ApiRequest>) {
    let Some(method) = method_of(&request.target) else {
        let Parsed::Reply(reply) = served else {
            panic!("no such path, yet {served:?}")
        };
        return assert_eq!(answer_of(&reply), (404, "no such path".to_owned()));
    };
    if request.method != method {
        let Parsed::Reply(reply) = served else {
            panic!("not {method}, yet {served:?}")
        };
        let allow = format!("\r\nAllow: {method}\r\n");
        assert!(reply.windows(allow.len()).any(|w| w == allow.as_bytes()));
        return assert_eq!(answer_of(&reply), (405, format!("only {method} is served")));
    }
    let json = serde_json::from_slice::<serde_json::Value>(&request.body);
    let call = match served {
        Parsed::Call(call) => call,
        Parsed::Reply(reply) => {
            assert_eq!(method, "POST", "a GET refused");
            let (code, message) = answer_of(&reply);
            assert_eq!(code, 400);
            if std::str::from_utf8(&request.body).is_err() {
                return assert_eq!(message, "malformed body: not UTF-8");
            }
            return assert!(message.starts_with("malformed body: "), "{message}");
        }
        Parsed::More => panic!("a whole request waits"),
    };
    if method == "POST" {
        assert!(
            json.is_ok_and(|value| value.is_object()),
            "not JSON, yet {call:?}"
        );
    }
    let resent = match &call {
        ApiRequest::Connect(connect) => {
            check_connect(connect);
            request_bytes(CONNECT_PATH, Some(&serde_json::to_vec(connect).unwrap()))
        }
        ApiRequest::Disconnect(disconnect) => {
            check_disconnect(disconnect);
            request_bytes(
                DISCONNECT_PATH,
                Some(&serde_json::to_vec(disconnect).unwrap()),
            )
        }
        _ => request_bytes(&request.target, None),
    };
    let Parsed::Call(again) = Http.parse(&resent) else {
        panic!("the CLI's request for {call:?} refused");
    };
    assert_eq!(
        format!("{again:?}"),
        format!("{call:?}"),
        "changed on the way"
    );
}

/// The node takes a peer's key and endpoint only in canonical form, and the endpoint the CLI
/// sends for it; its refusals are one-line answers.
fn check_connect(connect: &ConnectRequest) {
    match connect.target() {
        Ok((key, addr)) => {
            assert_eq!(key.to_string(), connect.public_key);
            assert!(key.address().is_some());
            assert_ne!(addr.port(), 0);
            assert_eq!(addr.to_string().parse(), Ok(addr));
            assert_eq!(
                parse_dial(&addr.to_string()),
                Ok((Endpoint::Addr(addr), None))
            );
            let sent = ConnectRequest {
                public_key: key.to_string(),
                endpoint: addr.to_string(),
            };
            assert_eq!(sent.target(), Ok((key, addr)));
        }
        Err(refusal) => check_refusal(refusal),
    }
}

fn check_disconnect(disconnect: &DisconnectRequest) {
    match disconnect.key() {
        Ok(key) => assert!(key.to_string() == disconnect.peer || key.peer_id() == disconnect.peer),
        Err(refusal) => check_refusal(refusal),
    }
}

fn check_refusal(refusal: Refusal) {
    let Refusal::Invalid(why) = &refusal else {
        panic!("parsing found no peer: {refusal:?}");
    };
    let why = why.clone();
    let reply = Http.reply(ApiAnswer::Peer(Err(refusal)));
    assert_eq!(answer_of(&reply), (400, why));
}

/// The code and message of a `text/plain` refusal, checked to be a well-formed answer that the
/// CLI reads as that message.
fn answer_of(reply: &[u8]) -> (u16, String) {
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of head")
        + 4;
    let head = std::str::from_utf8(&reply[..end]).expect("head not text");
    let body = std::str::from_utf8(&reply[end..]).expect("body not text");
    let mut lines = head.trim_end().split("\r\n");
    let status = lines.next().unwrap();
    let (code, reason) = status
        .strip_prefix("HTTP/1.0 ")
        .and_then(|rest| rest.split_once(' '))
        .unwrap_or_else(|| panic!("status line {status:?}"));
    let headers: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").unwrap()).collect();
    assert!(headers.contains(&("Content-Type", "text/plain")), "{head}");
    assert!(headers.contains(&("Connection", "close")), "{head}");
    let length = body.len().to_string();
    assert!(headers.contains(&("Content-Length", &length)), "{head}");
    let message = body
        .strip_suffix('\n')
        .expect("no newline after the message");
    assert!(
        !message.contains(['\n', '\r']),
        "message of more lines: {message:?}"
    );
    assert_eq!(
        parse_response(reply),
        Err(format!("answered {code} {reason}: {message}"))
    );
    (code.parse().unwrap(), message.to_owned())
}
