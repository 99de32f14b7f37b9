//! An HTTP/1.x request as the API server reads it: the head parsed by `httparse`, then the
//! body its `Content-Length` announces, each bounded.

/// Longest request head (request line and headers) read; a longer one is refused.
pub const MAX_REQUEST_HEAD_LEN: usize = 4096;

/// Longest request body read: a peer to connect or disconnect is a line of JSON.
pub const MAX_REQUEST_BODY_LEN: usize = 16 << 10;

/// Headers read at most.
const MAX_HEADERS: usize = 32;

/// A complete request.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub target: String,
    pub body: Vec<u8>,
}

/// Why a request is refused, with the answer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Not a request we read: the reason.
    Malformed(&'static str),
    /// The head runs past [`MAX_REQUEST_HEAD_LEN`].
    HeadTooLong,
    /// The body announced is longer than [`MAX_REQUEST_BODY_LEN`].
    BodyTooLong,
}

impl RequestError {
    /// What the `400` answer says.
    pub fn message(self) -> String {
        match self {
            RequestError::Malformed(why) => why.to_owned(),
            RequestError::HeadTooLong => {
                format!("request head over {MAX_REQUEST_HEAD_LEN} bytes")
            }
            RequestError::BodyTooLong => {
                format!("request body over {MAX_REQUEST_BODY_LEN} bytes")
            }
        }
    }
}

/// Parses what a client sent so far: `Ok(None)` while the request is not complete.
pub fn parse(bytes: &[u8]) -> Result<Option<HttpRequest>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_REQUEST_HEAD_LEN => {
            return Err(RequestError::HeadTooLong);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(RequestError::Malformed(describe(error))),
    };
    if head_len > MAX_REQUEST_HEAD_LEN {
        return Err(RequestError::HeadTooLong);
    }
    let method = request.method.unwrap_or_default();
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(RequestError::Malformed("malformed request method"));
    }
    let mut body_len = 0;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::Malformed(
                "Transfer-Encoding is not served; send Content-Length",
            ));
        }
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(header.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or(RequestError::Malformed("malformed Content-Length"))?;
        }
    }
    if body_len > MAX_REQUEST_BODY_LEN {
        return Err(RequestError::BodyTooLong);
    }
    let Some(body) = bytes.get(head_len..head_len + body_len) else {
        return Ok(None);
    };
    Ok(Some(HttpRequest {
        method: method.to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        body: body.to_vec(),
    }))
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::Version => "unsupported HTTP version",
        httparse::Error::HeaderName | httparse::Error::HeaderValue => "malformed header",
        httparse::Error::TooManyHeaders => "too many headers",
        _ => "malformed request line",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_whole_once_its_body_is() {
        let full = b"POST /v0/peer/connect HTTP/1.0\r\nContent-Length: 4\r\n\r\n{\"a\"";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
        }
        let request = parse(full).unwrap().unwrap();
        assert_eq!(
            (request.method.as_str(), request.target.as_str()),
            ("POST", "/v0/peer/connect")
        );
        assert_eq!(request.body, b"{\"a\"");
        assert_eq!(
            parse(b"GET /v0/ping HTTP/1.1\nHost: node\n\n")
                .unwrap()
                .unwrap()
                .body,
            b""
        );
    }

    #[test]
    fn bad_heads_and_bodies_are_refused() {
        let cases: [(&[u8], RequestError); 6] = [
            (
                b"GET / HTTP/1.0\r\nContent-Length: x\r\n\r\n",
                RequestError::Malformed("malformed Content-Length"),
            ),
            (
                b"GET / HTTP/1.0\r\nContent-Length: -1\r\n\r\n",
                RequestError::Malformed("malformed Content-Length"),
            ),
            (
                b"POST / HTTP/1.0\r\nContent-Length: 99999999\r\n\r\n",
                RequestError::BodyTooLong,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                RequestError::Malformed("Transfer-Encoding is not served; send Content-Length"),
            ),
            (
                b"GET / HTTP/1.0\r\nBad Header\r\n\r\n",
                RequestError::Malformed("malformed header"),
            ),
            (
                b"GET / HTTP/3.0\r\n\r\n",
                RequestError::Malformed("unsupported HTTP version"),
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                parse(bytes),
                Err(error),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        let mut long = b"GET / HTTP/1.0\r\nX: ".to_vec();
        long.resize(MAX_REQUEST_HEAD_LEN, b'a');
        assert_eq!(parse(&long), Err(RequestError::HeadTooLong));
    }
}
