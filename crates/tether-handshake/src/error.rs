//! The crate's one error type and the HTTP status each server-side failure answers with.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::extension::BadExtension;
use crate::rejection::Rejection;

/// Everything that can go wrong during an opening handshake, in either role.
///
/// Server-side failures know the HTTP answer they deserve: [`Error::status`] gives the status
/// code and [`Error::rejection`] the whole error response (the async [`server`](crate::server)
/// helper sends it before closing). Client-side failures carry what the server said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP head (start line, header fields and the blank line) is longer than
    /// [`Config::set_max_header_bytes`](crate::Config::set_max_header_bytes). A server answers 431.
    #[error("http head longer than the limit of {limit} bytes")]
    HeadTooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The HTTP head has more header fields than
    /// [`Config::set_max_headers`](crate::Config::set_max_headers). A server answers 431.
    #[error("more than the limit of {limit} header fields")]
    TooManyHeaders {
        /// The configured limit, in header fields.
        limit: usize,
    },
    /// The bytes are not a well-formed HTTP/1.x head. A server answers 400.
    #[error("malformed http head: {reason}")]
    Malformed {
        /// What was wrong, in a few words.
        reason: &'static str,
    },
    /// The request is well-formed HTTP but not a valid WebSocket opening handshake
    /// (RFC 6455 §4.2.1). A server answers 400 with the reason as its one-line body.
    #[error("bad websocket request: {0}")]
    BadRequest(#[from] BadRequest),
    /// The request asks for a `Sec-WebSocket-Version` other than 13, or none (RFC 6455 §4.2.2).
    /// A server answers 426 with `Sec-WebSocket-Version: 13`.
    #[error("sec-websocket-version must be 13")]
    UnsupportedVersion {
        /// The version the client asked for, if it sent one that is readable text.
        offered: Option<String>,
    },
    /// The application turned the request down with its own response.
    #[error("request rejected by the application with status {status}")]
    Rejected {
        /// The status the application answered with.
        status: StatusCode,
    },
    /// The application's [`Accept`](crate::Accept) is not a valid answer to this request (a
    /// subprotocol or extension the client did not offer, or a reserved header). A server
    /// answers 500: the fault is on its side.
    #[error("invalid accept from the application: {reason}")]
    InvalidAccept {
        /// What was wrong, in a few words.
        reason: &'static str,
    },
    /// The server answered with a status other than 101 Switching Protocols
    /// (RFC 6455 §4.1: "the client handles the response per HTTP procedures").
    #[error("server answered {} instead of 101 switching protocols", .0.status)]
    UnexpectedStatus(Box<UnexpectedResponse>),
    /// The server answered 101 but the response is not a valid WebSocket handshake answer
    /// (RFC 6455 §4.1: "the client MUST _Fail the WebSocket Connection_").
    #[error("bad websocket response: {0}")]
    BadResponse(#[from] BadResponse),
    /// The server accepted our permessage-deflate offer with an answer that does not fit it;
    /// RFC 7692 §7: the client "MUST _Fail the WebSocket Connection_".
    #[error("bad permessage-deflate response: {0}")]
    Deflate(#[from] tether_deflate::NegotiationError),
    /// The URI given to [`ClientRequest::new`](crate::ClientRequest::new) cannot open a
    /// WebSocket.
    #[error("invalid websocket uri: {reason}")]
    InvalidUri {
        /// What was wrong, in a few words.
        reason: &'static str,
    },
    /// The [`ClientRequest`](crate::ClientRequest) cannot be sent as it is (a subprotocol that
    /// is not a token, a duplicate, or an extra header that the handshake itself sets).
    #[error("invalid client request: {reason}")]
    InvalidRequest {
        /// What was wrong, in a few words.
        reason: &'static str,
    },
    /// The system random number generator failed to produce a key.
    #[error("system random number generator failed")]
    Random,
    /// The peer closed the connection before the handshake completed.
    #[error("connection closed before the handshake completed")]
    ConnectionClosed,
    /// The handshake did not complete within the timeout given to the async
    /// [`client`](crate::client) or [`server`](crate::server) helper.
    #[error("handshake did not complete within {0:?}")]
    Timeout(Duration),
    /// The handshake already produced its outcome; it takes no more input.
    #[error("handshake already finished")]
    Finished,
    /// Reading from or writing to the underlying stream failed.
    #[error("i/o error during the handshake")]
    Io(#[from] std::io::Error),
}

/// Why a request is not a valid WebSocket opening handshake (RFC 6455 §4.2.1). Each message
/// is the one-line reason a server sends in its 400 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadRequest {
    /// The method is not GET.
    #[error("the method must be GET")]
    Method,
    /// The HTTP version is older than 1.1.
    #[error("http/1.1 or later is required")]
    Version,
    /// The request target is not a valid URI.
    #[error("the request target is not a valid uri")]
    Target,
    /// No `Host` header field, or more than one.
    #[error("exactly one host header is required")]
    Host,
    /// No `Upgrade` header field with the `websocket` token.
    #[error("the upgrade header must contain websocket")]
    Upgrade,
    /// No `Connection` header field with the `upgrade` token.
    #[error("the connection header must contain upgrade")]
    Connection,
    /// `Sec-WebSocket-Key` missing, repeated, or not the base64 form of exactly 16 bytes.
    #[error("sec-websocket-key must be the base64 form of 16 bytes")]
    Key,
    /// A `Sec-WebSocket-Protocol` element is not a token.
    #[error("sec-websocket-protocol must be a list of tokens")]
    Subprotocol,
    /// `Sec-WebSocket-Extensions` does not follow RFC 6455 §9.1.
    #[error("bad sec-websocket-extensions: {0}")]
    Extensions(BadExtension),
}

/// Why a 101 response is not a valid answer to our request (RFC 6455 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadResponse {
    /// The HTTP version is not 1.1.
    #[error("the response must be http/1.1")]
    Version,
    /// `Upgrade` is missing or not `websocket`.
    #[error("the upgrade header must be websocket")]
    Upgrade,
    /// `Connection` is missing or lacks the `upgrade` token.
    #[error("the connection header must contain upgrade")]
    Connection,
    /// `Sec-WebSocket-Accept` is missing, repeated, or does not match our key.
    #[error("sec-websocket-accept does not match the key")]
    Accept,
    /// The selected subprotocol was not offered, or several were selected.
    #[error("the server selected a subprotocol that was not offered")]
    Subprotocol,
    /// The server uses an extension that was not offered.
    #[error("the server selected an extension that was not offered")]
    Extension,
    /// `Sec-WebSocket-Extensions` does not follow RFC 6455 §9.1.
    #[error("bad sec-websocket-extensions: {0}")]
    Extensions(BadExtension),
}

/// A response other than 101, as far as the client read it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnexpectedResponse {
    /// The status line's code, e.g. 401 or 302.
    pub status: StatusCode,
    /// All header fields (e.g. `WWW-Authenticate`, `Location`).
    pub headers: HeaderMap,
    /// The first bytes of the body, at most
    /// [`Config::set_max_body_prefix`](crate::Config::set_max_body_prefix) of them, raw (not de-chunked).
    pub body: Bytes,
}

impl Error {
    /// The HTTP status a server answers with when reading or deciding on a request failed with
    /// this error, or `None` for errors that get no answer (I/O, timeout, client side).
    ///
    /// ```
    /// use tether_handshake::{BadRequest, Error};
    /// use http::StatusCode;
    ///
    /// assert_eq!(Error::from(BadRequest::Key).status(), Some(StatusCode::BAD_REQUEST));
    /// assert_eq!(Error::HeadTooLarge { limit: 16 }.status(),
    ///            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    /// assert_eq!(Error::ConnectionClosed.status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::HeadTooLarge { .. } | Error::TooManyHeaders { .. } => {
                Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            }
            Error::Malformed { .. } | Error::BadRequest(_) => Some(StatusCode::BAD_REQUEST),
            Error::UnsupportedVersion { .. } => Some(StatusCode::UPGRADE_REQUIRED),
            Error::Rejected { status } => Some(*status),
            Error::InvalidAccept { .. } => Some(StatusCode::INTERNAL_SERVER_ERROR),
            _ => None,
        }
    }

    /// The error response a server sends for this error: the [`status`](Error::status), a
    /// one-line reason as body, and for 426 the `Sec-WebSocket-Version: 13` header field.
    /// `None` when [`status`](Error::status) is `None` or the application already answered
    /// ([`Error::Rejected`]).
    ///
    /// ```
    /// use tether_handshake::Error;
    ///
    /// let rejection = Error::UnsupportedVersion { offered: Some("8".into()) }.rejection().unwrap();
    /// assert_eq!(rejection.status().as_u16(), 426);
    /// assert_eq!(rejection.headers()["sec-websocket-version"], "13");
    /// ```
    pub fn rejection(&self) -> Option<Rejection> {
        if matches!(self, Error::Rejected { .. }) {
            return None;
        }
        let status = self.status()?;
        let reason = match self {
            Error::BadRequest(bad) => bad.to_string(),
            Error::Malformed { reason } => format!("malformed http request: {reason}"),
            Error::InvalidAccept { .. } => "internal server error".to_owned(),
            other => other.to_string(),
        };
        let rejection = Rejection::new(status).with_body(format!("{reason}\n"));
        Some(if status == StatusCode::UPGRADE_REQUIRED {
            rejection.with_header(
                http::header::SEC_WEBSOCKET_VERSION,
                http::HeaderValue::from_static("13"),
            )
        } else {
            rejection
        })
    }

    /// Maps an httparse error to ours: a full header array is a limit, the rest is malformed.
    pub(crate) fn from_httparse(err: httparse::Error, max_headers: usize) -> Self {
        let reason = match err {
            httparse::Error::TooManyHeaders => return Error::TooManyHeaders { limit: max_headers },
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status code",
            httparse::Error::Token => "invalid token",
            httparse::Error::Version => "invalid http version",
        };
        Error::Malformed { reason }
    }
}
