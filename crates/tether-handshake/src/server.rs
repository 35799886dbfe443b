//! The server role, sans-IO: read and validate the request, let the application decide,
//! answer 101 (RFC 6455 §4.2).

use bytes::{BufMut, BytesMut};
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

use tether_deflate::{Accepted, DeflateConfig, DeflateParams};

use crate::accept_key::{accept_key, is_valid_key};
use crate::config::Config;
use crate::deflate::deflate_elements;
use crate::error::{BadRequest, Error};
use crate::extension::{parse_extension_header, parse_extensions, Extension};
use crate::field::{elements, encode_headers, has_token, header_map, is_token, single};
use crate::head::{check_complete, header_slots, http_version, HeadBuffer};

/// Reads a client's request as it arrives, in any number of pieces.
///
/// Feed each chunk read from the connection to [`receive`](ServerHandshake::receive) until it
/// returns what the request is:
/// - [`Incoming::Upgrade`]: a valid WebSocket handshake. Decide on it, then answer with
///   [`UpgradeRequest::accept`] or a [`Rejection`](crate::Rejection).
/// - [`Incoming::Plain`]: valid HTTP that does not ask for a WebSocket, for the caller to serve.
/// - an error: answer with [`Error::rejection`] and close.
///
/// ```
/// use bytes::BytesMut;
/// use tether_handshake::{Accept, Config, Incoming, ServerHandshake};
///
/// let mut handshake = ServerHandshake::new(&Config::default());
/// assert!(handshake.receive(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n")?.is_none());
/// let incoming = handshake.receive(
///     b"Upgrade: websocket\r\nConnection: Upgrade\r\n\
///       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///       Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n\x81\x80",
/// )?;
/// let Some(Incoming::Upgrade(request)) = incoming else { panic!("an upgrade") };
/// assert_eq!(request.request().uri().path(), "/chat");
/// assert_eq!(request.subprotocols(), ["chat", "superchat"]);
///
/// let mut answer = BytesMut::new();
/// let outcome = request.accept(&Accept::new().with_subprotocol("chat"), &mut answer)?;
/// assert!(answer.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// assert!(std::str::from_utf8(&answer)?.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
/// assert_eq!(outcome.subprotocol.as_deref(), Some("chat"));
/// assert_eq!(&outcome.leftover[..], b"\x81\x80");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ServerHandshake {
    head: HeadBuffer,
    max_headers: usize,
    finished: bool,
}

/// What a complete request turned out to be.
#[derive(Debug)]
pub enum Incoming {
    /// A valid WebSocket opening handshake, waiting for the application's decision.
    Upgrade(UpgradeRequest),
    /// Valid HTTP that does not ask for a WebSocket (no `websocket` in `Upgrade`, no
    /// `Sec-WebSocket-Key` or `-Version`): the caller may serve it as plain HTTP.
    Plain(PlainRequest),
}

/// A plain HTTP request handed back to the caller.
#[derive(Debug)]
#[non_exhaustive]
pub struct PlainRequest {
    /// The parsed request head.
    pub request: Request<()>,
    /// Bytes that followed the head (a body, or a pipelined request).
    pub leftover: BytesMut,
}

/// A valid WebSocket request (RFC 6455 §4.2.1) for the application to decide on.
#[derive(Debug)]
pub struct UpgradeRequest {
    request: Request<()>,
    subprotocols: Vec<String>,
    extensions: Vec<Extension>,
    leftover: BytesMut,
}

/// The application's yes to an [`UpgradeRequest`]: what it selects and adds to the 101.
///
/// ```
/// use http::{header, HeaderValue};
/// use tether_handshake::Accept;
///
/// let accept = Accept::new()
///     .with_subprotocol("chat")
///     .with_header(header::SET_COOKIE, HeaderValue::from_static("session=1"));
/// assert_eq!(accept.subprotocol(), Some("chat"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Accept {
    subprotocol: Option<String>,
    extensions: Vec<String>,
    deflate: Option<DeflateParams>,
    headers: HeaderMap,
}

/// What a successful server handshake agreed on.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerOutcome {
    /// The client's request head (path, query, `Origin`, cookies, ...).
    pub request: Request<()>,
    /// The selected subprotocol.
    pub subprotocol: Option<String>,
    /// The selected extensions, each with its parameters.
    pub extensions: Vec<String>,
    /// The permessage-deflate parameters agreed ([`Accept::with_deflate`]); give them to the
    /// codec.
    pub deflate: Option<DeflateParams>,
    /// Bytes that followed the request head in the same reads: the client's first frames.
    /// Hand them to the frame decoder before reading more.
    pub leftover: BytesMut,
}

impl ServerHandshake {
    /// A handshake that reads a request within `config`'s header limits.
    pub fn new(config: &Config) -> Self {
        ServerHandshake {
            head: HeadBuffer::new(config.max_header_bytes()),
            max_headers: config.max_headers(),
            finished: false,
        }
    }

    /// Feeds bytes read from the client. Returns `Ok(None)` while the head is incomplete
    /// (nothing is parsed until its blank line has arrived), then what the request is, or the
    /// error to answer with. After a result or an error, further calls fail with
    /// [`Error::Finished`].
    pub fn receive(&mut self, data: &[u8]) -> Result<Option<Incoming>, Error> {
        if self.finished {
            return Err(Error::Finished);
        }
        let result = self.step(data);
        if !matches!(result, Ok(None)) {
            self.finished = true;
        }
        result
    }

    fn step(&mut self, data: &[u8]) -> Result<Option<Incoming>, Error> {
        let Some(end) = self.head.push(data)? else {
            return Ok(None);
        };
        let mut buf = self.head.take();
        let request = parse_request(&buf[..end], self.max_headers)?;
        let leftover = buf.split_off(end);
        classify(request, leftover).map(Some)
    }
}

/// What a parsed request is: plain HTTP, a valid WebSocket request, or the error to answer.
/// Shared by [`ServerHandshake`] and by heads another HTTP server parsed
/// ([`Incoming::from_head`]).
pub(crate) fn classify(request: Request<()>, leftover: BytesMut) -> Result<Incoming, Error> {
    if !asks_for_websocket(request.headers()) {
        return Ok(Incoming::Plain(PlainRequest { request, leftover }));
    }
    validate(&request)?;
    let subprotocols = elements(request.headers(), SEC_WEBSOCKET_PROTOCOL)
        .map(str::to_owned)
        .collect();
    // RFC 6455 §4.2.1 item 9: "Optionally, a |Sec-WebSocket-Extensions| header field, with
    // a list of values indicating which extensions the client would like to speak."
    let extensions = parse_extension_header(request.headers()).map_err(BadRequest::Extensions)?;
    Ok(Incoming::Upgrade(UpgradeRequest {
        request,
        subprotocols,
        extensions,
        leftover,
    }))
}

impl UpgradeRequest {
    /// The request head: method, URI (path and query), version, header fields.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The offered subprotocols, in the client's order of preference.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The offered extensions, each with its parameters, in the client's order (RFC 6455
    /// §9.1 grammar, checked: a malformed offer is answered 400).
    pub fn extensions(&self) -> &[Extension] {
        &self.extensions
    }

    /// The first permessage-deflate offer `config` accepts (RFC 7692 §7.1: offers are tried in
    /// the client's order of preference, malformed ones skipped), or `None` to decline. Pass
    /// it to [`Accept::with_deflate`].
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tether_handshake::{Accept, DeflateConfig, Incoming, ServerHandshake};
    ///
    /// let mut handshake = ServerHandshake::new(&Default::default());
    /// let Some(Incoming::Upgrade(request)) = handshake.receive(
    ///     b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    ///       Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    /// )? else { unreachable!() };
    /// let accepted = request.deflate_offer(&DeflateConfig::default()).unwrap();
    /// let mut answer = BytesMut::new();
    /// let outcome = request.accept(&Accept::new().with_deflate(&accepted), &mut answer)?;
    /// assert!(std::str::from_utf8(&answer)?.contains("sec-websocket-extensions: permessage-deflate\r\n"));
    /// assert_eq!(outcome.deflate.as_ref(), Some(accepted.params()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deflate_offer(&self, config: &DeflateConfig) -> Option<Accepted> {
        config.accept_offer(deflate_elements(&self.extensions))
    }

    /// The `Origin` header field, if any (RFC 6455 §4.2.2 /origin/: the server may refuse
    /// foreign origins with 403).
    pub fn origin(&self) -> Option<&HeaderValue> {
        self.request.headers().get(http::header::ORIGIN)
    }

    /// Appends the 101 Switching Protocols answer to `dst` and returns what was agreed.
    /// Fails with [`Error::InvalidAccept`] (answer 500) if `accept` selects a subprotocol or
    /// extension the client did not offer, or adds a field the handshake sets itself.
    pub fn accept(self, accept: &Accept, dst: &mut BytesMut) -> Result<ServerOutcome, Error> {
        let fields = self.answer_fields(accept)?;
        dst.put_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        encode_headers(&fields, dst);
        dst.put_slice(b"\r\n");
        Ok(self.outcome(accept))
    }

    /// The header fields of the 101 that answers this request with `accept`, after checking
    /// that `accept` selects only what the client offered and sets no reserved field.
    pub(crate) fn answer_fields(&self, accept: &Accept) -> Result<HeaderMap, Error> {
        if let Some(chosen) = &accept.subprotocol {
            if !self.subprotocols.contains(chosen) {
                return Err(Error::InvalidAccept {
                    reason: "the subprotocol was not offered",
                });
            }
        }
        for chosen in &accept.extensions {
            let offered = match parse_extensions(chosen).as_deref() {
                Ok([one]) => self
                    .extensions
                    .iter()
                    .any(|o| o.name().eq_ignore_ascii_case(one.name())),
                _ => false,
            };
            if !offered {
                return Err(Error::InvalidAccept {
                    reason: "the extension was not offered",
                });
            }
        }
        let reserved = [
            UPGRADE,
            CONNECTION,
            SEC_WEBSOCKET_ACCEPT,
            SEC_WEBSOCKET_PROTOCOL,
            SEC_WEBSOCKET_EXTENSIONS,
        ];
        if reserved
            .iter()
            .any(|name| accept.headers.contains_key(name))
        {
            return Err(Error::InvalidAccept {
                reason: "a header is one the handshake sets itself",
            });
        }
        let invalid = |_| Error::InvalidAccept {
            reason: "a selected value is not a valid header value",
        };
        // validate() checked that there is exactly one key.
        let key = self
            .request
            .headers()
            .get(SEC_WEBSOCKET_KEY)
            .map_or(&b""[..], |v| v.as_bytes().trim_ascii());
        let mut fields = HeaderMap::with_capacity(5 + accept.headers.len());
        fields.insert(UPGRADE, HeaderValue::from_static("websocket"));
        fields.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        // An accept key is base64: always a valid header value.
        let accept_value = HeaderValue::from_str(&accept_key(key)).map_err(invalid)?;
        fields.insert(SEC_WEBSOCKET_ACCEPT, accept_value);
        if let Some(chosen) = &accept.subprotocol {
            fields.insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(chosen).map_err(invalid)?,
            );
        }
        if !accept.extensions.is_empty() {
            let list = HeaderValue::from_str(&accept.extensions.join(", ")).map_err(invalid)?;
            fields.insert(SEC_WEBSOCKET_EXTENSIONS, list);
        }
        for (name, value) in &accept.headers {
            fields.append(name, value.clone());
        }
        Ok(fields)
    }

    /// What was agreed, once the answer is built.
    pub(crate) fn outcome(self, accept: &Accept) -> ServerOutcome {
        ServerOutcome {
            request: self.request,
            subprotocol: accept.subprotocol.clone(),
            extensions: accept.extensions.clone(),
            deflate: accept.deflate,
            leftover: self.leftover,
        }
    }
}

impl Accept {
    /// Accepts with no subprotocol, no extensions and no extra header fields.
    pub fn new() -> Self {
        Accept::default()
    }

    /// Selects one of the offered subprotocols (`Sec-WebSocket-Protocol` in the 101).
    pub fn with_subprotocol(mut self, name: impl Into<String>) -> Self {
        self.subprotocol = Some(name.into());
        self
    }

    /// Selects one of the offered extensions, with the parameters the server agrees to.
    pub fn with_extension(mut self, extension: impl Into<String>) -> Self {
        self.extensions.push(extension.into());
        self
    }

    /// Accepts permessage-deflate: its response goes into `Sec-WebSocket-Extensions` and its
    /// parameters into [`ServerOutcome::deflate`]. `accepted` comes from
    /// [`UpgradeRequest::deflate_offer`].
    pub fn with_deflate(mut self, accepted: &Accepted) -> Self {
        self.extensions.push(accepted.response().to_owned());
        self.deflate = Some(*accepted.params());
        self
    }

    /// Adds a header field to the 101 (e.g. `Set-Cookie`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The selected subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }
}

/// Whether the request tries to open a WebSocket at all; if not, it is plain HTTP.
fn asks_for_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, UPGRADE, "websocket")
        || headers.contains_key(SEC_WEBSOCKET_KEY)
        || headers.contains_key(SEC_WEBSOCKET_VERSION)
}

/// RFC 6455 §4.2.1: "If the server, while reading the handshake, finds that the client did not
/// send a handshake that matches the description below ..., the server MUST stop processing
/// the client's handshake and return an HTTP response with an appropriate error code (such as
/// 400 Bad Request)."
fn validate(request: &Request<()>) -> Result<(), Error> {
    let headers = request.headers();
    // Item 1: "An HTTP/1.1 or higher GET request".
    if request.method() != Method::GET {
        return Err(BadRequest::Method.into());
    }
    if request.version() < Version::HTTP_11 {
        return Err(BadRequest::Version.into());
    }
    // Item 2: "A |Host| header field containing the server's authority."
    if !matches!(single(headers, HOST), Ok(Some(_))) {
        return Err(BadRequest::Host.into());
    }
    // Item 3: "An |Upgrade| header field containing the value "websocket", treated as an
    // ASCII case-insensitive value."
    if !has_token(headers, UPGRADE, "websocket") {
        return Err(BadRequest::Upgrade.into());
    }
    // Item 4: "A |Connection| header field that includes the token "Upgrade", treated as an
    // ASCII case-insensitive value."
    if !has_token(headers, CONNECTION, "upgrade") {
        return Err(BadRequest::Connection.into());
    }
    // Item 6 and §4.2.2 /version/: "If this version does not match a version understood by
    // the server, the server MUST abort ... and instead send an appropriate HTTP error code
    // (such as 426 Upgrade Required) and a |Sec-WebSocket-Version| header field". Checked
    // before the key: older drafts sent keys in other forms.
    let version = single(headers, SEC_WEBSOCKET_VERSION).unwrap_or(None);
    if version.is_none_or(|v| v.as_bytes().trim_ascii() != b"13") {
        return Err(Error::UnsupportedVersion {
            offered: version.and_then(|v| v.to_str().ok()).map(str::to_owned),
        });
    }
    // Item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded ... value that, when
    // decoded, is 16 bytes in length."
    match single(headers, SEC_WEBSOCKET_KEY) {
        Ok(Some(key)) if is_valid_key(key.as_bytes().trim_ascii()) => {}
        _ => return Err(BadRequest::Key.into()),
    }
    // Item 8: a list of subprotocols; §4.1 requires each to be a token.
    if !elements(headers, SEC_WEBSOCKET_PROTOCOL).all(is_token) {
        return Err(BadRequest::Subprotocol.into());
    }
    Ok(())
}

/// Parses a complete request head (`head` ends with its blank line).
fn parse_request(head: &[u8], max_headers: usize) -> Result<Request<()>, Error> {
    let mut slots = header_slots(head.len(), max_headers);
    let mut parsed = httparse::Request::new(&mut slots);
    check_complete(parsed.parse(head), max_headers)?;
    let malformed = |reason| Error::Malformed { reason };
    let method = parsed.method.ok_or(malformed("missing method"))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| malformed("invalid method"))?;
    let target = parsed.path.ok_or(malformed("missing request target"))?;
    let uri = Uri::try_from(target).map_err(|_| BadRequest::Target)?;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = http_version(parsed.version);
    *request.headers_mut() = header_map(parsed.headers)?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    const VALID: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    /// The valid request with the line starting `prefix` replaced by `line` (or dropped when
    /// `line` is empty).
    fn with_line(prefix: &str, line: &str) -> String {
        let mut out = String::new();
        for l in VALID.split_inclusive("\r\n") {
            if l.to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
            {
                if !line.is_empty() {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            } else {
                out.push_str(l);
            }
        }
        out
    }

    fn receive(request: &str) -> Result<Option<Incoming>, Error> {
        ServerHandshake::new(&Config::default()).receive(request.as_bytes())
    }

    fn upgrade(request: &str) -> UpgradeRequest {
        match receive(request) {
            Ok(Some(Incoming::Upgrade(upgrade))) => upgrade,
            other => panic!("expected an upgrade, got {other:?}"),
        }
    }

    fn status_of(request: &str) -> StatusCode {
        match receive(request) {
            Err(err) => err.status().expect("a server-side error has a status"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn rfc6455_4_2_1_valid_request_is_an_upgrade() {
        let request = upgrade(VALID);
        assert_eq!(request.request().uri(), "/chat?x=1");
        assert_eq!(request.request().headers()[HOST], "example.com");
        assert!(request.subprotocols().is_empty());
        assert!(request.leftover.is_empty());
    }

    #[test]
    fn rfc6455_4_2_1_item_1_method_must_be_get() {
        let post = VALID.replacen("GET", "POST", 1);
        assert!(matches!(
            receive(&post),
            Err(Error::BadRequest(BadRequest::Method))
        ));
        assert_eq!(status_of(&post), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rfc6455_4_2_1_item_1_http_1_1_or_later() {
        let old = VALID.replacen("HTTP/1.1", "HTTP/1.0", 1);
        assert!(matches!(
            receive(&old),
            Err(Error::BadRequest(BadRequest::Version))
        ));
        let h2 = VALID.replacen("HTTP/1.1", "HTTP/2.0", 1);
        assert!(matches!(receive(&h2), Err(Error::Malformed { .. })));
        assert_eq!(status_of(&h2), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn rfc6455_4_2_1_item_2_host_required_once() {
        let none = with_line("Host:", "");
        assert!(matches!(
            receive(&none),
            Err(Error::BadRequest(BadRequest::Host))
        ));
        let twice = with_line("Host:", "Host: a\r\nHost: b");
        assert!(matches!(
            receive(&twice),
            Err(Error::BadRequest(BadRequest::Host))
        ));
    }

    #[test]
    fn rfc6455_4_2_1_item_3_upgrade_must_contain_websocket() {
        let wrong = with_line("Upgrade:", "Upgrade: h2c");
        assert!(matches!(
            receive(&wrong),
            Err(Error::BadRequest(BadRequest::Upgrade))
        ));
        let missing = with_line("Upgrade:", "");
        assert_eq!(status_of(&missing), StatusCode::BAD_REQUEST);
        // Case-insensitive, and one token of a list.
        upgrade(&with_line("Upgrade:", "upgrade: h2c, WebSocket"));
    }

    #[test]
    fn rfc6455_4_2_1_item_4_connection_must_contain_upgrade_token() {
        let missing = with_line("Connection:", "Connection: keep-alive");
        assert!(matches!(
            receive(&missing),
            Err(Error::BadRequest(BadRequest::Connection))
        ));
        let not_a_token = with_line("Connection:", "Connection: upgraded");
        assert!(matches!(
            receive(&not_a_token),
            Err(Error::BadRequest(BadRequest::Connection))
        ));
        // Comma-separated and repeated lines, any case.
        upgrade(&with_line("Connection:", "connection: keep-alive, UPGRADE"));
        upgrade(&with_line(
            "Connection:",
            "Connection: keep-alive\r\nConnection: upgrade",
        ));
    }

    #[test]
    fn rfc6455_4_2_1_item_5_key_must_decode_to_16_bytes() {
        for line in [
            "",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE=",
            "Sec-WebSocket-Key: not base64 at all!!!!!!",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ] {
            let request = with_line("Sec-WebSocket-Key:", line);
            assert!(matches!(receive(&request), Err(Error::BadRequest(BadRequest::Key))), "{line}");
            assert_eq!(status_of(&request), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn rfc6455_4_2_2_other_versions_get_426_with_version_13() {
        for line in [
            "Sec-WebSocket-Version: 8",
            "",
            "Sec-WebSocket-Version: 13, 8",
        ] {
            let request = with_line("Sec-WebSocket-Version:", line);
            let err = receive(&request).unwrap_err();
            assert!(matches!(err, Error::UnsupportedVersion { .. }), "{line}");
            let rejection = err.rejection().unwrap();
            assert_eq!(rejection.status(), StatusCode::UPGRADE_REQUIRED);
            assert_eq!(rejection.headers()[SEC_WEBSOCKET_VERSION], "13");
        }
    }

    #[test]
    fn rfc6455_4_1_subprotocols_must_be_tokens() {
        let request = with_line(
            "Sec-WebSocket-Version:",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b c",
        );
        assert!(matches!(
            receive(&request),
            Err(Error::BadRequest(BadRequest::Subprotocol))
        ));
    }

    #[test]
    fn header_names_in_any_case() {
        let shouting = VALID
            .replace("Host:", "HOST:")
            .replace("Upgrade:", "UPGRADE:")
            .replace("Connection:", "cOnNeCtIoN:")
            .replace("Sec-WebSocket-Key:", "SEC-WEBSOCKET-KEY:")
            .replace("Sec-WebSocket-Version:", "sec-websocket-version:");
        upgrade(&shouting);
    }

    #[test]
    fn plain_http_is_handed_back() {
        let page = "GET /index.html HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\nbody";
        match receive(page) {
            Ok(Some(Incoming::Plain(plain))) => {
                assert_eq!(plain.request.uri().path(), "/index.html");
                assert_eq!(&plain.leftover[..], b"body");
            }
            other => panic!("expected plain http, got {other:?}"),
        }
        // An Upgrade to something else is not a WebSocket attempt either.
        let h2c = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
        assert!(matches!(receive(h2c), Ok(Some(Incoming::Plain(_)))));
    }

    #[test]
    fn rfc7230_3_5_one_empty_line_before_the_request_line_is_ignored() {
        upgrade(&format!("\r\n{VALID}"));
    }

    #[test]
    fn generous_header_limit_still_parses_and_counts() {
        let mut config = Config::default();
        config.set_max_headers(usize::MAX);
        let incoming = ServerHandshake::new(&config).receive(VALID.as_bytes());
        assert!(matches!(incoming, Ok(Some(Incoming::Upgrade(_)))));
    }

    #[test]
    fn rfc7230_malformed_heads_get_400() {
        for bad in [
            "GET / HTTP/1.1\r\nHost a\r\n\r\n",
            "GET  HTTP/1.1\r\n\r\n",
            "\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "G\x00T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status_of(bad), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn header_count_at_the_limit_and_one_past_it() {
        // The valid request has five fields.
        let mut config = Config::default();
        config.set_max_headers(5);
        assert!(ServerHandshake::new(&config)
            .receive(VALID.as_bytes())
            .is_ok());
        config.set_max_headers(4);
        let err = ServerHandshake::new(&config)
            .receive(VALID.as_bytes())
            .unwrap_err();
        assert!(matches!(err, Error::TooManyHeaders { limit: 4 }));
        assert_eq!(
            err.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn header_bytes_at_the_limit_and_one_past_it() {
        let mut config = Config::default();
        config.set_max_header_bytes(VALID.len());
        let mut handshake = ServerHandshake::new(&config);
        assert!(handshake
            .receive(format!("{VALID}extra").as_bytes())
            .is_ok());
        config.set_max_header_bytes(VALID.len() - 1);
        let err = ServerHandshake::new(&config)
            .receive(VALID.as_bytes())
            .unwrap_err();
        assert!(matches!(err, Error::HeadTooLarge { .. }));
        assert_eq!(
            err.status(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn leftover_keeps_bytes_after_the_head() {
        let request = upgrade(&format!("{VALID}\u{1}\u{2}"));
        let outcome = request
            .accept(&Accept::new(), &mut BytesMut::new())
            .unwrap();
        assert_eq!(&outcome.leftover[..], b"\x01\x02");
    }

    #[test]
    fn finished_handshake_takes_no_more_input() {
        let mut handshake = ServerHandshake::new(&Config::default());
        assert!(handshake.receive(VALID.as_bytes()).is_ok());
        assert!(matches!(handshake.receive(b"x"), Err(Error::Finished)));
        let mut failed = ServerHandshake::new(&Config::default());
        assert!(failed.receive(b"\x00\r\n\r\n").is_err());
        assert!(matches!(
            failed.receive(VALID.as_bytes()),
            Err(Error::Finished)
        ));
    }

    #[test]
    fn rfc6455_4_2_2_accept_selects_only_what_was_offered() {
        let offered = with_line(
            "Sec-WebSocket-Version:",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        );
        let mut answer = BytesMut::new();
        let err = upgrade(&offered).accept(&Accept::new().with_subprotocol("other"), &mut answer);
        assert!(matches!(err, Err(Error::InvalidAccept { .. })));
        let err = upgrade(&offered).accept(&Accept::new().with_extension("x-foo"), &mut answer);
        assert!(matches!(err, Err(Error::InvalidAccept { .. })));
        let err = upgrade(&offered).accept(
            &Accept::new().with_header(SEC_WEBSOCKET_ACCEPT, HeaderValue::from_static("x")),
            &mut answer,
        );
        assert!(matches!(&err, Err(Error::InvalidAccept { .. })));
        assert_eq!(
            err.unwrap_err().status(),
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert!(
            answer.is_empty(),
            "nothing is written for an invalid accept"
        );

        let accept = Accept::new()
            .with_subprotocol("superchat")
            .with_extension("permessage-deflate")
            .with_header(http::header::SET_COOKIE, HeaderValue::from_static("a=b"));
        let outcome = upgrade(&offered).accept(&accept, &mut answer).unwrap();
        assert_eq!(outcome.subprotocol.as_deref(), Some("superchat"));
        assert_eq!(outcome.extensions, ["permessage-deflate"]);
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(text.contains("sec-websocket-protocol: superchat\r\n"));
        assert!(text.contains("sec-websocket-extensions: permessage-deflate\r\n"));
        assert!(text.ends_with("set-cookie: a=b\r\n\r\n"));
    }

    #[test]
    fn rfc6455_9_1_extension_offers_are_parsed_across_lines() {
        let offered = with_line(
            "Sec-WebSocket-Version:",
            "Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\"\r\n\
             Sec-WebSocket-Extensions: x-two",
        );
        let request = upgrade(&offered);
        let names: Vec<_> = request.extensions().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            names,
            ["permessage-deflate; client_max_window_bits=10", "x-two"]
        );
    }

    #[test]
    fn rfc6455_9_1_malformed_extension_offer_is_answered_400() {
        let malformed = with_line(
            "Sec-WebSocket-Version:",
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: x; a=\"b,c\", y",
        );
        assert!(matches!(
            receive(&malformed),
            Err(Error::BadRequest(BadRequest::Extensions(
                crate::BadExtension::ValueNotToken { .. }
            )))
        ));
        assert_eq!(status_of(&malformed), StatusCode::BAD_REQUEST);
    }
}
