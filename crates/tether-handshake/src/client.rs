//! The client role, sans-IO: send the request, read and validate the response (RFC 6455 §4.1).

use bytes::{Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_LENGTH, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, TRANSFER_ENCODING,
    UPGRADE,
};
use http::{HeaderValue, Response, StatusCode, Version};
use tether_deflate::{DeflateConfig, DeflateParams, PERMESSAGE_DEFLATE};

use crate::accept_key::Key;
use crate::config::Config;
use crate::deflate::deflate_elements;
use crate::error::{BadResponse, Error, UnexpectedResponse};
use crate::extension::{parse_extension_header, parse_extensions};
use crate::field::{has_token, header_map, single};
use crate::head::{check_complete, header_slots, http_version, HeadBuffer};
use crate::request::ClientRequest;

/// What a successful client handshake agreed on.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClientOutcome {
    /// The server's 101 response (status, version and header fields).
    pub response: Response<()>,
    /// The subprotocol the server selected, one of those offered.
    pub subprotocol: Option<String>,
    /// The extensions the server selected, each with its parameters, in the server's order.
    pub extensions: Vec<String>,
    /// The permessage-deflate parameters agreed, when the request offered it
    /// ([`ClientRequest::set_deflate`]) and the server accepted; give them to the codec.
    pub deflate: Option<DeflateParams>,
    /// Bytes that followed the response head in the same reads: the server's first frames.
    /// Hand them to the frame decoder before reading more.
    pub leftover: BytesMut,
}

/// A client's opening handshake as a state machine over bytes.
///
/// 1. [`ClientHandshake::start`] writes the request into a buffer for the caller to send.
/// 2. Each chunk read from the server goes to [`receive`](ClientHandshake::receive), until it
///    returns the [`ClientOutcome`] or an error. A non-101 answer is an
///    [`Error::UnexpectedStatus`] holding its status, header fields and body prefix.
/// 3. If the server closes the connection first, [`receive_eof`](ClientHandshake::receive_eof)
///    says what that means.
///
/// ```
/// use bytes::BytesMut;
/// use tether_handshake::{ClientHandshake, ClientRequest, Config, Key};
///
/// let request = ClientRequest::new("ws://example.com/chat".parse()?)?;
/// let key = Key::from_bytes(*b"the sample nonce");
/// let mut to_send = BytesMut::new();
/// let mut handshake = ClientHandshake::start(&request, &key, &Config::default(), &mut to_send)?;
/// assert!(to_send.starts_with(b"GET /chat HTTP/1.1\r\n"));
///
/// // The response arrives in two pieces, followed by a frame in the same read.
/// assert!(handshake.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")?.is_none());
/// let outcome = handshake
///     .receive(b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x00")?
///     .expect("the head is complete");
/// assert_eq!(outcome.subprotocol, None);
/// assert_eq!(&outcome.leftover[..], b"\x81\x00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    state: State,
    accept: String,
    offered_subprotocols: Vec<String>,
    offered_extensions: Vec<String>,
    deflate: Option<DeflateConfig>,
    max_headers: usize,
    max_body_prefix: usize,
}

#[derive(Debug)]
enum State {
    ExpectResponse(HeadBuffer),
    /// A non-101 response: collecting up to `want` body bytes to report.
    ExpectBody {
        response: Box<UnexpectedResponse>,
        body: BytesMut,
        want: usize,
    },
    Finished,
}

impl ClientHandshake {
    /// Starts a handshake for `request` with `key`: appends the request to `dst` (see
    /// [`ClientRequest::encode`] for its errors).
    pub fn start(
        request: &ClientRequest,
        key: &Key,
        config: &Config,
        dst: &mut BytesMut,
    ) -> Result<Self, Error> {
        request.encode(key, dst)?;
        Ok(ClientHandshake {
            state: State::ExpectResponse(HeadBuffer::new(config.max_header_bytes())),
            accept: key.accept(),
            offered_subprotocols: request.subprotocols().to_vec(),
            // ClientRequest::encode checked that each offer is an extension list.
            offered_extensions: request
                .extensions()
                .iter()
                .filter_map(|offer| parse_extensions(offer).ok())
                .flatten()
                .map(|offer| offer.name().to_owned())
                .chain(request.deflate().map(|_| PERMESSAGE_DEFLATE.to_owned()))
                .collect(),
            deflate: request.deflate().cloned(),
            max_headers: config.max_headers(),
            max_body_prefix: config.max_body_prefix(),
        })
    }

    /// Feeds bytes read from the server. Returns `Ok(None)` while more are needed,
    /// `Ok(Some(outcome))` once a valid 101 response has arrived, or the error that ends the
    /// handshake. After an outcome or error, further calls fail with [`Error::Finished`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<ClientOutcome>, Error> {
        let result = self.step(data);
        if !matches!(result, Ok(None)) {
            self.state = State::Finished;
        }
        result
    }

    /// Tells the handshake that the server closed the connection. Returns the error this
    /// means: [`Error::UnexpectedStatus`] with the body read so far if a non-101 response was
    /// being read (a body may end with the connection), otherwise [`Error::ConnectionClosed`].
    pub fn receive_eof(&mut self) -> Error {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ExpectBody {
                mut response, body, ..
            } => {
                response.body = body.freeze();
                Error::UnexpectedStatus(response)
            }
            State::ExpectResponse(_) => Error::ConnectionClosed,
            State::Finished => Error::Finished,
        }
    }

    fn step(&mut self, data: &[u8]) -> Result<Option<ClientOutcome>, Error> {
        match &mut self.state {
            State::Finished => Err(Error::Finished),
            State::ExpectBody { body, want, .. } => {
                let take = (*want - body.len()).min(data.len());
                body.extend_from_slice(&data[..take]);
                if body.len() < *want {
                    return Ok(None);
                }
                Err(self.receive_eof())
            }
            State::ExpectResponse(head) => {
                let Some(end) = head.push(data)? else {
                    return Ok(None);
                };
                let mut buf = head.take();
                let response = parse_response(&buf[..end], self.max_headers)?;
                let leftover = buf.split_off(end);
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    return self.validate(response, leftover).map(Some);
                }
                let want = body_length(&response)
                    .map_or(self.max_body_prefix, |len| len.min(self.max_body_prefix));
                let (parts, ()) = response.into_parts();
                self.state = State::ExpectBody {
                    response: Box::new(UnexpectedResponse {
                        status: parts.status,
                        headers: parts.headers,
                        body: Bytes::new(),
                    }),
                    body: BytesMut::new(),
                    want,
                };
                // Whatever followed the head is the start of the body.
                self.step(&leftover)
            }
        }
    }

    fn validate(&self, response: Response<()>, leftover: BytesMut) -> Result<ClientOutcome, Error> {
        let headers = response.headers();
        if response.version() != Version::HTTP_11 {
            return Err(BadResponse::Version.into());
        }
        // RFC 6455 §4.1 item 2: "If the response lacks an |Upgrade| header field or the
        // |Upgrade| header field contains a value that is not an ASCII case-insensitive match
        // for the value "websocket", the client MUST _Fail the WebSocket Connection_."
        let upgrade = single(headers, UPGRADE).map_err(|()| BadResponse::Upgrade)?;
        if !upgrade.is_some_and(|v| trimmed(v).eq_ignore_ascii_case(b"websocket")) {
            return Err(BadResponse::Upgrade.into());
        }
        // Item 3: "... the |Connection| header field doesn't contain a token that is an ASCII
        // case-insensitive match for the value "Upgrade" ..."
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(BadResponse::Connection.into());
        }
        // Item 4: the accept value, "ignoring any leading and trailing whitespace".
        let accept = single(headers, SEC_WEBSOCKET_ACCEPT).map_err(|()| BadResponse::Accept)?;
        if accept.is_none_or(|v| trimmed(v) != self.accept.as_bytes()) {
            return Err(BadResponse::Accept.into());
        }
        // Item 5: "... indicates the use of an extension that was not present in the client's
        // handshake ..., the client MUST _Fail the WebSocket Connection_."
        let selected = parse_extension_header(headers).map_err(BadResponse::Extensions)?;
        let offered = |e: &crate::Extension| {
            self.offered_extensions
                .iter()
                .any(|o| o.eq_ignore_ascii_case(e.name()))
        };
        if !selected.iter().all(offered) {
            return Err(BadResponse::Extension.into());
        }
        // RFC 7692 §7: a response that does not fit the offer fails the connection.
        let deflate = match &self.deflate {
            Some(config) => config.accept_response(deflate_elements(&selected))?,
            None => None,
        };
        let extensions = selected.iter().map(ToString::to_string).collect();
        // Item 6: a subprotocol "that was not present in the client's handshake". The server
        // selects one (RFC 6455 §4.2.2 step 5, /subprotocol/), so a list is invalid too.
        let subprotocol = match single(headers, SEC_WEBSOCKET_PROTOCOL) {
            Err(()) => return Err(BadResponse::Subprotocol.into()),
            Ok(None) => None,
            Ok(Some(value)) => {
                let name = value.to_str().map(str::trim).unwrap_or("");
                if !self.offered_subprotocols.iter().any(|o| o == name) {
                    return Err(BadResponse::Subprotocol.into());
                }
                Some(name.to_owned())
            }
        };
        Ok(ClientOutcome {
            response,
            subprotocol,
            extensions,
            deflate,
            leftover,
        })
    }
}

/// Parses a complete response head (`head` ends with its blank line).
fn parse_response(head: &[u8], max_headers: usize) -> Result<Response<()>, Error> {
    let mut slots = header_slots(head.len(), max_headers);
    let mut parsed = httparse::Response::new(&mut slots);
    check_complete(parsed.parse(head), max_headers)?;
    let malformed = |reason| Error::Malformed { reason };
    let code = parsed.code.ok_or(malformed("missing status code"))?;
    let status = StatusCode::from_u16(code).map_err(|_| malformed("invalid status code"))?;
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = http_version(parsed.version);
    *response.headers_mut() = header_map(parsed.headers)?;
    Ok(response)
}

/// The body length a response announces, if it announces one we can trust.
fn body_length(response: &Response<()>) -> Option<usize> {
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Some(0);
    }
    if response.headers().contains_key(TRANSFER_ENCODING) {
        return None;
    }
    let value = single(response.headers(), CONTENT_LENGTH).ok()??;
    value.to_str().ok()?.trim().parse().ok()
}

fn trimmed(value: &HeaderValue) -> &[u8] {
    value.as_bytes().trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn start(configure: impl FnOnce(&mut ClientRequest)) -> ClientHandshake {
        let mut request = ClientRequest::new("ws://example.com/".parse().unwrap()).unwrap();
        configure(&mut request);
        let key = Key::from_bytes(*b"the sample nonce");
        ClientHandshake::start(&request, &key, &Config::default(), &mut BytesMut::new()).unwrap()
    }

    fn response(extra: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        )
    }

    fn bad(response: &str) -> Option<BadResponse> {
        let offer = |r: &mut ClientRequest| {
            r.subprotocol("chat")
                .extension("permessage-deflate; client_max_window_bits");
        };
        match start(offer).receive(response.as_bytes()) {
            Err(Error::BadResponse(why)) => Some(why),
            Ok(Some(_)) => None,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rfc6455_4_1_valid_response() {
        let outcome = start(|_| {})
            .receive(response("").as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(outcome.response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(outcome.subprotocol, None);
        assert!(outcome.extensions.is_empty());
    }

    #[test]
    fn rfc6455_4_1_item_2_upgrade_must_be_websocket() {
        let lowercase = response("").replace("Upgrade: websocket", "upgrade: WebSocket");
        assert_eq!(bad(&lowercase), None);
        let wrong = response("").replace("Upgrade: websocket", "Upgrade: h2c");
        assert_eq!(bad(&wrong), Some(BadResponse::Upgrade));
        let missing = response("").replace("Upgrade: websocket\r\n", "");
        assert_eq!(bad(&missing), Some(BadResponse::Upgrade));
    }

    #[test]
    fn rfc6455_4_1_item_3_connection_must_contain_upgrade() {
        let list = response("").replace("Connection: Upgrade", "Connection: keep-alive, upgrade");
        assert_eq!(bad(&list), None);
        let repeated = response("").replace(
            "Connection: Upgrade",
            "Connection: keep-alive\r\nCONNECTION: Upgrade",
        );
        assert_eq!(bad(&repeated), None);
        let missing = response("").replace("Connection: Upgrade", "Connection: close");
        assert_eq!(bad(&missing), Some(BadResponse::Connection));
    }

    #[test]
    fn rfc6455_4_1_item_4_accept_must_match_the_key() {
        let padded = response("").replace(ACCEPT, &format!("  {ACCEPT} "));
        assert_eq!(bad(&padded), None);
        let wrong = response("").replace(ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert_eq!(bad(&wrong), Some(BadResponse::Accept));
        let missing = response("").replace(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n"), "");
        assert_eq!(bad(&missing), Some(BadResponse::Accept));
    }

    #[test]
    fn rfc6455_4_1_item_5_extensions_only_from_the_offer() {
        assert_eq!(
            bad(&response(
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            )),
            None
        );
        let foreign = response("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n");
        assert_eq!(bad(&foreign), Some(BadResponse::Extension));
        let malformed = response("Sec-WebSocket-Extensions: permessage-deflate;\r\n");
        assert!(matches!(
            bad(&malformed),
            Some(BadResponse::Extensions(
                crate::BadExtension::ExpectedToken { .. }
            ))
        ));
    }

    #[test]
    fn rfc6455_4_1_item_6_subprotocol_only_from_the_offer() {
        let outcome = start(|r| {
            r.subprotocol("chat");
        })
        .receive(response("Sec-WebSocket-Protocol: chat\r\n").as_bytes())
        .unwrap()
        .unwrap();
        assert_eq!(outcome.subprotocol.as_deref(), Some("chat"));
        assert_eq!(
            bad(&response("Sec-WebSocket-Protocol: other\r\n")),
            Some(BadResponse::Subprotocol)
        );
        let two = response("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n");
        assert_eq!(bad(&two), Some(BadResponse::Subprotocol));
        // None offered, one selected.
        let err = start(|_| {}).receive(response("Sec-WebSocket-Protocol: chat\r\n").as_bytes());
        assert!(matches!(
            err,
            Err(Error::BadResponse(BadResponse::Subprotocol))
        ));
    }

    #[test]
    fn rfc6455_4_1_response_must_be_http_1_1() {
        let old = response("").replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert_eq!(bad(&old), Some(BadResponse::Version));
    }

    #[test]
    fn rfc6455_4_1_item_1_other_status_carries_status_headers_and_body() {
        let mut handshake = start(|_| {});
        let head = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 10\r\n\r\nlog";
        assert!(handshake.receive(head.as_bytes()).unwrap().is_none());
        match handshake.receive(b" in now and more") {
            Err(Error::UnexpectedStatus(response)) => {
                assert_eq!(response.status, StatusCode::UNAUTHORIZED);
                assert_eq!(response.headers["www-authenticate"], "Bearer");
                assert_eq!(&response.body[..], b"log in now");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(handshake.receive(b"x"), Err(Error::Finished)));
    }

    #[test]
    fn body_prefix_at_the_limit_and_one_past_it() {
        let mut config = Config::default();
        config.set_max_body_prefix(4);
        let key = Key::from_bytes([1; 16]);
        let request = ClientRequest::new("ws://a.test/".parse().unwrap()).unwrap();
        for (body, kept) in [("abcd", "abcd"), ("abcde", "abcd")] {
            let mut handshake =
                ClientHandshake::start(&request, &key, &config, &mut BytesMut::new()).unwrap();
            // No Content-Length: the body runs to the end of the connection.
            let redirect = format!("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n{body}");
            let result = handshake.receive(redirect.as_bytes());
            let Err(Error::UnexpectedStatus(response)) = result else {
                panic!("expected the response at once, got {result:?}");
            };
            assert_eq!(response.status, StatusCode::FOUND);
            assert_eq!(&response.body[..], kept.as_bytes());
        }
    }

    #[test]
    fn body_until_close_is_reported_at_eof() {
        let mut handshake = start(|_| {});
        let head = "HTTP/1.1 503 Service Unavailable\r\n\r\nbusy";
        assert!(handshake.receive(head.as_bytes()).unwrap().is_none());
        match handshake.receive_eof() {
            Error::UnexpectedStatus(response) => assert_eq!(&response.body[..], b"busy"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn eof_before_the_head_is_connection_closed() {
        let mut handshake = start(|_| {});
        assert!(handshake.receive(b"HTTP/1.1 101").unwrap().is_none());
        assert!(matches!(handshake.receive_eof(), Error::ConnectionClosed));
    }

    #[test]
    fn response_head_limit_applies_to_the_client() {
        let mut config = Config::default();
        config.set_max_header_bytes(32);
        let request = ClientRequest::new("ws://a.test/".parse().unwrap()).unwrap();
        let mut handshake = ClientHandshake::start(
            &request,
            &Key::from_bytes([1; 16]),
            &config,
            &mut BytesMut::new(),
        )
        .unwrap();
        let err = handshake.receive(response("").as_bytes());
        assert!(matches!(err, Err(Error::HeadTooLarge { limit: 32 })));
    }
}
