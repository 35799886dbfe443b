//! Requests another HTTP server already parsed (hyper, axum, ...): the same validation and
//! the same answers as a head read by [`ServerHandshake`](crate::ServerHandshake), with the
//! 101 built as an [`http::Response`] for that server to send.

use bytes::BytesMut;
use http::{Request, Response, StatusCode};

use crate::config::Config;
use crate::error::Error;
use crate::server::{classify, Accept, Incoming, ServerOutcome, UpgradeRequest};

impl Incoming {
    /// Classifies a request head that an HTTP server has already parsed, by the rules
    /// [`ServerHandshake::receive`](crate::ServerHandshake::receive) applies to one it reads
    /// itself: [`Incoming::Upgrade`] for a valid WebSocket request (RFC 6455 §4.2.1),
    /// [`Incoming::Plain`] for one that does not ask for a WebSocket, or the error whose
    /// [`rejection`](Error::rejection) is the answer (400, 426 with `Sec-WebSocket-Version`,
    /// 431).
    ///
    /// `config`'s header limits apply to the head as it would be written on the wire (request
    /// line, one `name: value` line per field, blank line); the server that parsed it has its
    /// own limits, which bound what it read before this. Nothing followed the head here, so
    /// the leftover is empty: the server hands the bytes after it over with its upgraded IO.
    ///
    /// ```
    /// use http::Request;
    /// use tether_handshake::{Config, Error, Incoming};
    ///
    /// let head = Request::get("/chat")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "8")
    ///     .body(())?;
    /// let err = Incoming::from_head(head, &Config::default()).unwrap_err();
    /// assert!(matches!(err, Error::UnsupportedVersion { .. }));
    /// assert_eq!(err.rejection().unwrap().status().as_u16(), 426);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_head(head: Request<()>, config: &Config) -> Result<Incoming, Error> {
        if head.headers().len() > config.max_headers() {
            return Err(Error::TooManyHeaders {
                limit: config.max_headers(),
            });
        }
        if wire_len(&head) > config.max_header_bytes() {
            return Err(Error::HeadTooLarge {
                limit: config.max_header_bytes(),
            });
        }
        classify(head, BytesMut::new())
    }
}

impl UpgradeRequest {
    /// Builds the 101 Switching Protocols answer as an [`http::Response`] (`Upgrade`,
    /// `Connection`, `Sec-WebSocket-Accept`, the selected subprotocol and extensions, the
    /// extra fields of `accept`) and returns what was agreed. The same checks as
    /// [`accept`](UpgradeRequest::accept): [`Error::InvalidAccept`] (answer 500) if `accept`
    /// selects what the client did not offer or sets a reserved field.
    ///
    /// ```
    /// use http::Request;
    /// use tether_handshake::{Accept, Config, Incoming};
    ///
    /// let head = Request::get("/chat")
    ///     .header("host", "example.com")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "Upgrade")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-protocol", "chat")
    ///     .body(())?;
    /// let Incoming::Upgrade(request) = Incoming::from_head(head, &Config::default())? else {
    ///     unreachable!("a valid upgrade")
    /// };
    /// let (response, outcome) = request.accept_response(&Accept::new().with_subprotocol("chat"))?;
    /// assert_eq!(response.status(), 101);
    /// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    /// assert_eq!(outcome.subprotocol.as_deref(), Some("chat"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_response(self, accept: &Accept) -> Result<(Response<()>, ServerOutcome), Error> {
        let fields = self.answer_fields(accept)?;
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *response.headers_mut() = fields;
        Ok((response, self.outcome(accept)))
    }
}

/// The length of `head` written as HTTP/1.1: `METHOD SP target SP HTTP/1.1 CRLF`, one
/// `name: value CRLF` per field, and the blank line.
fn wire_len(head: &Request<()>) -> usize {
    let target = head
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    let start_line = head.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let fields: usize = head
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    start_line + fields + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BadRequest;

    fn upgrade_head() -> http::request::Builder {
        Request::get("/chat")
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
    }

    #[test]
    fn rfc6455_4_2_1_parsed_heads_get_the_same_validation() {
        let post = upgrade_head().method("POST").body(()).unwrap();
        let err = Incoming::from_head(post, &Config::default()).unwrap_err();
        assert!(matches!(err, Error::BadRequest(BadRequest::Method)));
        assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));

        let plain = Request::get("/").header("host", "a").body(()).unwrap();
        assert!(matches!(
            Incoming::from_head(plain, &Config::default()),
            Ok(Incoming::Plain(_))
        ));
    }

    #[test]
    fn parsed_head_limits_at_and_past_the_limit() {
        let head = upgrade_head().body(()).unwrap();
        let len = wire_len(&head);
        let count = head.headers().len();
        let mut config = Config::default();
        config.set_max_header_bytes(len).set_max_headers(count);
        assert!(Incoming::from_head(head.clone(), &config).is_ok());

        config.set_max_header_bytes(len - 1);
        let err = Incoming::from_head(head.clone(), &config).unwrap_err();
        assert_eq!(
            err.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );

        config.set_max_header_bytes(len).set_max_headers(count - 1);
        let err = Incoming::from_head(head, &config).unwrap_err();
        assert!(matches!(err, Error::TooManyHeaders { .. }));
    }

    #[test]
    fn wire_len_matches_the_bytes_a_client_sends() {
        let wire = "GET /chat?x=1 HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\n\r\n";
        let head = Request::get("/chat?x=1")
            .header("host", "a")
            .header("upgrade", "websocket")
            .body(())
            .unwrap();
        assert_eq!(wire_len(&head), wire.len());
    }

    #[test]
    fn rfc6455_4_2_2_response_fields_match_the_wire_answer() {
        let Ok(Incoming::Upgrade(request)) =
            Incoming::from_head(upgrade_head().body(()).unwrap(), &Config::default())
        else {
            panic!("a valid upgrade");
        };
        let (response, _) = request.accept_response(&Accept::new()).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["upgrade"], "websocket");
        assert_eq!(response.headers()["connection"], "Upgrade");
        assert!(!response.headers().contains_key("sec-websocket-protocol"));
        let bad = Accept::new().with_subprotocol("chat");
        let Ok(Incoming::Upgrade(request)) =
            Incoming::from_head(upgrade_head().body(()).unwrap(), &Config::default())
        else {
            panic!("a valid upgrade");
        };
        assert!(matches!(
            request.accept_response(&bad),
            Err(Error::InvalidAccept { .. })
        ));
    }
}
