//! The client's opening handshake request (RFC 6455 §4.1).

use bytes::{BufMut, BytesMut};
use http::header::{
    CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use tether_deflate::DeflateConfig;

use crate::accept_key::Key;
use crate::error::Error;
use crate::extension::parse_extensions;
use crate::field::{encode_headers, is_token};

/// What a client asks for: the `ws://` or `wss://` URI, subprotocols and extensions to offer,
/// and extra header fields (`Authorization`, `Origin`, `Cookie`, ...).
///
/// ```
/// use bytes::BytesMut;
/// use http::{header, HeaderValue};
/// use tether_handshake::{ClientRequest, Key};
///
/// let mut request = ClientRequest::new("wss://example.com:8443/chat?room=1".parse()?)?;
/// request
///     .subprotocol("chat.v2")
///     .header(header::ORIGIN, HeaderValue::from_static("https://example.com"));
/// assert_eq!((request.host(), request.port(), request.is_secure()), ("example.com", 8443, true));
///
/// let mut wire = BytesMut::new();
/// request.encode(&Key::from_bytes(*b"the sample nonce"), &mut wire)?;
/// let text = std::str::from_utf8(&wire)?;
/// assert!(text.starts_with("GET /chat?room=1 HTTP/1.1\r\nhost: example.com:8443\r\n"));
/// assert!(text.contains("sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
/// assert!(text.contains("sec-websocket-protocol: chat.v2\r\n"));
/// assert!(text.ends_with("origin: https://example.com\r\n\r\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientRequest {
    uri: Uri,
    host: String,
    port: u16,
    secure: bool,
    subprotocols: Vec<String>,
    extensions: Vec<String>,
    deflate: Option<DeflateConfig>,
    headers: HeaderMap,
}

/// Fields the handshake writes itself; callers may not add them as extra headers.
const RESERVED: [HeaderName; 8] = [
    HOST,
    UPGRADE,
    CONNECTION,
    SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION,
    SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_ACCEPT,
];

impl std::str::FromStr for ClientRequest {
    type Err = Error;

    /// Parses a `ws://` or `wss://` URL into a request, as [`ClientRequest::new`] does.
    ///
    /// ```
    /// let request: tether_handshake::ClientRequest = "ws://localhost:9001/echo".parse()?;
    /// assert_eq!(request.port(), 9001);
    /// # Ok::<(), tether_handshake::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Error> {
        let uri = s.parse::<Uri>().map_err(|_| Error::InvalidUri {
            reason: "not a valid uri",
        })?;
        ClientRequest::new(uri)
    }
}

impl ClientRequest {
    /// A request for `uri`, which must be `ws://` or `wss://` (any case) with a host
    /// (RFC 6455 §3). The port defaults to 80 for `ws` and 443 for `wss`.
    pub fn new(uri: Uri) -> Result<Self, Error> {
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(_) => {
                return Err(Error::InvalidUri {
                    reason: "the scheme must be ws or wss",
                })
            }
            None => {
                return Err(Error::InvalidUri {
                    reason: "the uri must be absolute (ws:// or wss://)",
                })
            }
        };
        let host = match uri.host() {
            Some(host) if !host.is_empty() => host,
            _ => {
                return Err(Error::InvalidUri {
                    reason: "the uri has no host",
                })
            }
        };
        // `Uri::host` keeps the brackets of an IPv6 literal; connecting wants it bare.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        Ok(ClientRequest {
            host: bare,
            port,
            secure,
            uri,
            subprotocols: Vec::new(),
            extensions: Vec::new(),
            deflate: None,
            headers: HeaderMap::new(),
        })
    }

    /// Offers a subprotocol, in order of preference (`Sec-WebSocket-Protocol`). Names must be
    /// distinct tokens (RFC 6455 §4.1 item 10); [`encode`](ClientRequest::encode) checks.
    pub fn subprotocol(&mut self, name: impl Into<String>) -> &mut Self {
        self.subprotocols.push(name.into());
        self
    }

    /// Offers an extension, with its parameters (`Sec-WebSocket-Extensions`), e.g.
    /// `"permessage-deflate; client_max_window_bits"`.
    pub fn extension(&mut self, offer: impl Into<String>) -> &mut Self {
        self.extensions.push(offer.into());
        self
    }

    /// Offers permessage-deflate (RFC 7692) as `config` wants it, after the other extension
    /// offers; `None` (the default) offers nothing. The handshake then checks the server's
    /// answer against it and reports the agreed parameters in
    /// [`ClientOutcome::deflate`](crate::ClientOutcome::deflate).
    ///
    /// ```
    /// use tether_handshake::{ClientRequest, DeflateConfig};
    /// let mut request: ClientRequest = "ws://localhost/".parse()?;
    /// request.set_deflate(Some(DeflateConfig::default()));
    /// assert_eq!(request.deflate(), Some(&DeflateConfig::default()));
    /// # Ok::<(), tether_handshake::Error>(())
    /// ```
    pub fn set_deflate(&mut self, config: Option<DeflateConfig>) -> &mut Self {
        self.deflate = config;
        self
    }

    /// See [`ClientRequest::set_deflate`].
    pub fn deflate(&self) -> Option<&DeflateConfig> {
        self.deflate.as_ref()
    }

    /// Appends an extra header field. The handshake's own fields (`Host`, `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`) are refused by [`encode`](ClientRequest::encode).
    pub fn header(&mut self, name: HeaderName, value: HeaderValue) -> &mut Self {
        self.headers.append(name, value);
        self
    }

    /// The URI asked for.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The host to connect to, without the brackets of an IPv6 literal.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port to connect to: the URI's, or 80 for `ws` and 443 for `wss`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URI is `wss://`, so the connection needs TLS.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The offered subprotocols, in order.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The offered extensions, in order.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Appends the request head, sent with `key`, to `dst`. Fails with
    /// [`Error::InvalidRequest`] if a subprotocol is not a token or is repeated, an extension
    /// offer is not a valid header value, or an extra header is one the handshake sets.
    pub fn encode(&self, key: &Key, dst: &mut BytesMut) -> Result<(), Error> {
        self.validate()?;
        let target = self.uri.path_and_query().map_or("/", |pq| pq.as_str());
        dst.put_slice(b"GET ");
        dst.put_slice(if target.is_empty() {
            b"/"
        } else {
            target.as_bytes()
        });
        dst.put_slice(b" HTTP/1.1\r\nhost: ");
        // RFC 6455 §4.1 item 4: the host, and the port when it is not the scheme's default.
        match self.uri.port_u16() {
            Some(port) if port != if self.secure { 443 } else { 80 } => {
                // `Uri::host` is the authority's host with IPv6 brackets kept.
                let host = self.uri.host().unwrap_or(&self.host);
                dst.put_slice(format!("{host}:{port}").as_bytes());
            }
            _ => dst.put_slice(self.uri.host().unwrap_or(&self.host).as_bytes()),
        }
        dst.put_slice(b"\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ");
        dst.put_slice(key.as_str().as_bytes());
        dst.put_slice(b"\r\nsec-websocket-version: 13\r\n");
        put_list(dst, b"sec-websocket-protocol: ", &self.subprotocols);
        let mut extensions = self.extensions.clone();
        extensions.extend(self.deflate.as_ref().map(DeflateConfig::offer));
        put_list(dst, b"sec-websocket-extensions: ", &extensions);
        encode_headers(&self.headers, dst);
        dst.put_slice(b"\r\n");
        Ok(())
    }

    fn validate(&self) -> Result<(), Error> {
        for (i, name) in self.subprotocols.iter().enumerate() {
            // RFC 6455 §4.1 item 10: "The elements that comprise this value MUST be non-empty
            // strings with characters in the range U+0021 to U+007E not including separator
            // characters ... and MUST all be unique strings."
            if !is_token(name) {
                return Err(Error::InvalidRequest {
                    reason: "a subprotocol is not a token",
                });
            }
            if self.subprotocols[..i].contains(name) {
                return Err(Error::InvalidRequest {
                    reason: "a subprotocol is offered twice",
                });
            }
        }
        for offer in &self.extensions {
            // RFC 6455 §9.1: each offer must be an extension with its parameters, so that the
            // server reads the list as it was meant.
            let parsed = parse_extensions(offer);
            if !parsed.is_ok_and(|list| !list.is_empty()) || HeaderValue::from_str(offer).is_err() {
                return Err(Error::InvalidRequest {
                    reason: "an extension offer is not a valid header value",
                });
            }
        }
        if RESERVED.iter().any(|name| self.headers.contains_key(name)) {
            return Err(Error::InvalidRequest {
                reason: "an extra header is one the handshake sets itself",
            });
        }
        Ok(())
    }
}

fn put_list(dst: &mut BytesMut, name: &[u8], values: &[String]) {
    if values.is_empty() {
        return;
    }
    dst.put_slice(name);
    dst.put_slice(values.join(", ").as_bytes());
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;

    fn encode(request: &ClientRequest) -> String {
        let mut wire = BytesMut::new();
        request
            .encode(&Key::from_bytes([7; 16]), &mut wire)
            .unwrap();
        String::from_utf8(wire.to_vec()).unwrap()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn rfc6455_4_1_host_carries_port_only_when_not_default() {
        let cases = [
            ("ws://a.test/", "host: a.test\r\n", 80),
            ("ws://a.test:80/", "host: a.test\r\n", 80),
            ("ws://a.test:8080/", "host: a.test:8080\r\n", 8080),
            ("wss://a.test/", "host: a.test\r\n", 443),
            ("wss://a.test:443/", "host: a.test\r\n", 443),
            ("wss://a.test:80/", "host: a.test:80\r\n", 80),
            ("ws://[::1]:9001/", "host: [::1]:9001\r\n", 9001),
        ];
        for (input, host, port) in cases {
            let request = ClientRequest::new(uri(input)).unwrap();
            assert!(encode(&request).contains(host), "{input}");
            assert_eq!(request.port(), port, "{input}");
        }
        assert_eq!(
            ClientRequest::new(uri("ws://[::1]:9001/")).unwrap().host(),
            "::1"
        );
    }

    #[test]
    fn rfc6455_4_1_path_and_query_form_the_target() {
        let text = encode(&ClientRequest::new(uri("ws://a.test/x/y?z=1&w")).unwrap());
        assert!(text.starts_with("GET /x/y?z=1&w HTTP/1.1\r\n"));
        let text = encode(&ClientRequest::new(uri("ws://a.test")).unwrap());
        assert!(text.starts_with("GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn rfc6455_3_scheme_must_be_ws_or_wss() {
        for bad in ["http://a.test/", "/relative"] {
            assert!(
                matches!(ClientRequest::new(uri(bad)), Err(Error::InvalidUri { .. })),
                "{bad}"
            );
        }
        assert!(ClientRequest::new(uri("WSS://a.test/"))
            .unwrap()
            .is_secure());
    }

    #[test]
    fn rfc6455_4_1_subprotocols_must_be_unique_tokens() {
        let mut request = ClientRequest::new(uri("ws://a.test/")).unwrap();
        request.subprotocol("a").subprotocol("b");
        assert!(encode(&request).contains("sec-websocket-protocol: a, b\r\n"));
        request.subprotocol("a");
        let mut wire = BytesMut::new();
        let err = request.encode(&Key::from_bytes([0; 16]), &mut wire);
        assert!(matches!(err, Err(Error::InvalidRequest { .. })));

        let mut request = ClientRequest::new(uri("ws://a.test/")).unwrap();
        request.subprotocol("a b");
        let err = request.encode(&Key::from_bytes([0; 16]), &mut wire);
        assert!(matches!(err, Err(Error::InvalidRequest { .. })));
    }

    #[test]
    fn extra_headers_are_sent_but_reserved_ones_refused() {
        let mut request = ClientRequest::new(uri("ws://a.test/")).unwrap();
        request
            .header(AUTHORIZATION, HeaderValue::from_static("Bearer t"))
            .extension("permessage-deflate; client_max_window_bits");
        let text = encode(&request);
        assert!(text.contains("authorization: Bearer t\r\n"));
        assert!(text
            .contains("sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n"));

        request.header(SEC_WEBSOCKET_KEY, HeaderValue::from_static("x"));
        let err = request.encode(&Key::from_bytes([0; 16]), &mut BytesMut::new());
        assert!(matches!(err, Err(Error::InvalidRequest { .. })));
    }
}
