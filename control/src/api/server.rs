//! The status API's protocol: HTTP/1.x requests parsed on the API thread (see
//! [`super::calls`]), answered there when they are refused and by the control thread when
//! they ask about the node.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rovy_dataplane::sys::EventFd;
use zeroize::Zeroizing;

use super::calls::{CallServer, Calls, Failure, Limits, Parsed, Protocol, Reply};
use super::request::{self, HttpRequest, MAX_REQUEST_BODY_LEN, MAX_REQUEST_HEAD_LEN};
use super::socket_file::SocketFile;
use super::{
    CONNECT_PATH, ConnectRequest, DISCONNECT_PATH, DisconnectRequest, PEERS_PATH, PING_PATH,
    PeerList, PeerStatus, ROUTES_PATH, Refusal, RouteList, STATUS_PATH, Status,
};

/// How long a client has to send its request, and again to take the answer. A slow client
/// holds only its own connection on the API thread.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(1);

/// How the API socket is served: [`CLIENT_DEADLINE`]; the control thread answers between two
/// turns of its loop, so 5 s without an answer means it is stuck; clients served at once.
pub const API_LIMITS: Limits = Limits {
    client_deadline: CLIENT_DEADLINE,
    answer_deadline: Duration::from_secs(5),
    max_connections: 64,
};

/// The node's API socket, served on a thread of its own. Dropping it stops the thread and
/// removes the socket file.
pub type ApiServer = CallServer;

/// What the API thread asks the control thread.
#[derive(Debug)]
pub enum ApiRequest {
    Status,
    Routes,
    Peers,
    Ping,
    Connect(ConnectRequest),
    Disconnect(DisconnectRequest),
}

/// The control thread's answer to an [`ApiRequest`].
#[derive(Debug)]
pub enum ApiAnswer {
    Status(Box<Status>),
    Routes(RouteList),
    Peers(PeerList),
    Ping,
    /// A peer changed, or why not.
    Peer(Result<PeerStatus, Refusal>),
}

/// The calls the control thread answers.
pub type ApiCalls = Calls<ApiRequest, ApiAnswer>;

/// Listens on `path` (see [`SocketFile::bind`]: root-only, a stale socket replaced, a live
/// node's refused) and serves it on a new thread with `limits` ([`API_LIMITS`] for a node),
/// notifying `wake` for each call.
pub fn serve(path: &Path, limits: Limits, wake: Arc<EventFd>) -> io::Result<(ApiServer, ApiCalls)> {
    let socket = SocketFile::bind(path)?;
    CallServer::start(socket, Http, limits, "rovy-api", wake)
}

/// Answers `request` from `answers`.
pub fn answer(answers: &mut impl Answers, request: ApiRequest) -> ApiAnswer {
    match request {
        ApiRequest::Status => ApiAnswer::Status(Box::new(answers.status())),
        ApiRequest::Routes => ApiAnswer::Routes(answers.routes()),
        ApiRequest::Peers => ApiAnswer::Peers(answers.peers()),
        ApiRequest::Ping => ApiAnswer::Ping,
        ApiRequest::Connect(connect) => ApiAnswer::Peer(answers.connect(connect)),
        ApiRequest::Disconnect(disconnect) => ApiAnswer::Peer(answers.disconnect(disconnect)),
    }
}

/// HTTP/1.x, one request per connection: the API socket's [`Protocol`], which reads requests
/// and refuses the malformed ones without I/O.
#[derive(Debug, Clone, Copy)]
pub struct Http;

impl Protocol for Http {
    type Request = ApiRequest;
    type Answer = ApiAnswer;
    const MAX_REQUEST_LEN: usize = MAX_REQUEST_HEAD_LEN + MAX_REQUEST_BODY_LEN;

    fn parse(&self, bytes: &[u8]) -> Parsed<ApiRequest> {
        match request::parse(bytes) {
            Ok(None) => Parsed::More,
            Ok(Some(request)) => match route(&request) {
                Ok(request) => Parsed::Call(request),
                Err(response) => Parsed::Reply(response.into_reply()),
            },
            Err(error) => {
                Parsed::Reply(Response::text(400, "Bad Request", &error.message()).into_reply())
            }
        }
    }

    fn reply(&self, answer: ApiAnswer) -> Reply {
        let response = match answer {
            ApiAnswer::Status(status) => Response::json(&status),
            ApiAnswer::Routes(routes) => Response::json(&routes),
            ApiAnswer::Peers(peers) => Response::json(&peers),
            ApiAnswer::Ping => Response::text(200, "OK", "ok"),
            ApiAnswer::Peer(result) => Response::answer(result),
        };
        response.into_reply()
    }

    fn failed(&self, failure: Failure) -> Reply {
        let response = match failure {
            Failure::TooLong => Response::text(
                400,
                "Bad Request",
                &request::RequestError::BodyTooLong.message(),
            ),
            Failure::CutOff => Response::text(400, "Bad Request", "request incomplete"),
            Failure::TimedOut => Response::text(408, "Request Timeout", "request incomplete"),
            Failure::NoAnswer => Response::text(
                503,
                "Service Unavailable",
                "the node did not answer in time",
            ),
        };
        response.into_reply()
    }
}

/// Routes a request by method and path: what to ask the control thread, or the answer to a
/// request it need not see.
fn route(request: &HttpRequest) -> Result<ApiRequest, Response> {
    let method = match request.target.as_str() {
        STATUS_PATH | ROUTES_PATH | PEERS_PATH | PING_PATH => "GET",
        CONNECT_PATH | DISCONNECT_PATH => "POST",
        _ => return Err(Response::text(404, "Not Found", "no such path")),
    };
    if request.method != method {
        let mut response = Response::text(
            405,
            "Method Not Allowed",
            &format!("only {method} is served"),
        );
        response.allow = Some(method);
        return Err(response);
    }
    Ok(match request.target.as_str() {
        STATUS_PATH => ApiRequest::Status,
        ROUTES_PATH => ApiRequest::Routes,
        PEERS_PATH => ApiRequest::Peers,
        CONNECT_PATH => ApiRequest::Connect(json_body(&request.body)?),
        DISCONNECT_PATH => ApiRequest::Disconnect(json_body(&request.body)?),
        _ => ApiRequest::Ping,
    })
}

/// A request body as a JSON object, which is UTF-8 throughout. The text is checked first:
/// reading bytes, `serde_json` skips the fields it ignores without checking them. So is the
/// object: serde also reads a struct from an array of its fields in order, a form the API does
/// not have.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    let malformed =
        |why: &str| Response::text(400, "Bad Request", &format!("malformed body: {why}"));
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(malformed("not a JSON object"));
    }
    serde_json::from_str(text).map_err(|error| malformed(&error.to_string()))
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

    fn into_reply(self) -> Reply {
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
        Zeroizing::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bytes: &[u8]) -> String {
        match Http.parse(bytes) {
            Parsed::Reply(reply) => String::from_utf8_lossy(&reply).into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_even_in_a_field_ignored() {
        for body in [
            &b"{\"peer\":\"x\",\"endpoint\":\"1\x9e\"}"[..],
            b"{\"peer\":\"x\",\"other\":[\"\xff\"]}",
            b"{\"peer\":\"\xc3\"}",
        ] {
            let mut request = format!(
                "POST {DISCONNECT_PATH} HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(body);
            let reply = refusal(&request);
            assert!(
                reply.starts_with("HTTP/1.0 400 Bad Request\r\n")
                    && reply.ends_with("\r\n\r\nmalformed body: not UTF-8\n"),
                "{reply}"
            );
        }
    }

    #[test]
    fn a_body_must_be_an_object_not_the_fields_in_an_array() {
        for body in ["[\"peer\"]", "\r\n [\"peer\"]", "\"peer\"", "7"] {
            let request = format!(
                "POST {DISCONNECT_PATH} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let reply = refusal(request.as_bytes());
            assert!(
                reply.starts_with("HTTP/1.0 400 Bad Request\r\n")
                    && reply.ends_with("\r\n\r\nmalformed body: not a JSON object\n"),
                "{reply}"
            );
        }
    }
}
