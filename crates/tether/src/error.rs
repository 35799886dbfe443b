//! The facade's one error type.

use std::time::Duration;

use tether_heartbeat::Failure;

/// Everything that can go wrong with a connection, from opening to closing.
///
/// The layers' own errors are kept whole ([`Error::Protocol`], [`Error::Handshake`]) so a
/// caller can match on exactly what the peer did wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer violated RFC 6455 after the handshake (or a local send was refused); for a
    /// peer violation the close frame with the matching code was already queued.
    #[error("websocket protocol error: {0}")]
    Protocol(#[source] tether_codec::Error),
    /// The opening handshake failed (refused, invalid, timed out).
    #[error("opening handshake failed: {0}")]
    Handshake(#[from] tether_handshake::Error),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// rustls refused a TLS configuration. Failures of the TLS handshake itself arrive as
    /// [`Error::Io`] (tokio-rustls reports them so).
    #[error("tls error: {0}")]
    Tls(#[from] rustls::Error),
    /// The URL is not a valid `ws://` or `wss://` URL.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The URL's host cannot be used as a TLS server name.
    #[error("invalid tls server name {0:?}")]
    InvalidServerName(String),
    /// The TCP connect did not complete within the handshake timeout.
    #[error("tcp connect did not complete within {0:?}")]
    ConnectTimeout(Duration),
    /// The TLS handshake did not complete within the handshake timeout.
    #[error("tls handshake did not complete within {0:?}")]
    TlsTimeout(Duration),
    /// The connection is closed: a close frame was sent or received, or it failed. Nothing
    /// more can be sent.
    #[error("the connection is closed")]
    Closed,
    /// The peer closed the transport without a closing handshake (reported locally as close
    /// code 1006, RFC 6455 §7.1.5).
    #[error("connection closed without a closing handshake")]
    AbnormalClosure,
    /// The closing handshake did not finish within the close timeout; the transport was shut
    /// down anyway.
    #[error("closing handshake did not finish within {0:?}")]
    CloseTimeout(Duration),
    /// Nothing was received for the idle timeout ([`Config::set_idle_timeout`]); a close
    /// frame with 1001 (going away) was queued and the closing handshake goes on, bounded by
    /// the close timeout.
    ///
    /// [`Config::set_idle_timeout`]: crate::Config::set_idle_timeout
    #[error("nothing received for {0:?}")]
    IdleTimeout(Duration),
    /// A plain HTTP request arrived where a WebSocket upgrade was expected; it was answered
    /// with 426 Upgrade Required.
    #[error("plain http request instead of a websocket upgrade")]
    NotWebSocket,
    /// A [`Fanout`](crate::fanout::Fanout) subscriber fell more than `limit` bytes behind and was cut
    /// off: close its connection with [`Error::close_code`], 1013 (try again later).
    #[error("slow consumer: more than {limit} bytes behind the broadcast")]
    SlowConsumer {
        /// The backlog limit, in bytes.
        limit: usize,
    },
    /// The proxy could not be used or refused the tunnel (an HTTP status such as 407, a
    /// SOCKS5 authentication failure, a timeout...).
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy_error::ProxyError),
    /// A heartbeat supervisor refused its configuration.
    #[error("heartbeat: {0}")]
    Heartbeat(#[from] tether_heartbeat::Error),
    /// A session is over ([`SessionLost`](crate::session::SessionLost)), ended for sending,
    /// or refused a message or a configuration.
    #[error("session: {0}")]
    Session(#[from] tether_session::Error),
    /// The server did not select the subprotocol `tether.session.v1`: it does not speak
    /// sessions (docs/sessions.md §1).
    #[error("the server does not support sessions (tether.session.v1 not selected)")]
    NoSessions,
    /// Only text and binary messages travel on a session; control frames belong to each
    /// connection.
    #[error("a session carries text and binary messages only")]
    NotData,
}

impl From<tether_session::SessionLost> for Error {
    fn from(lost: tether_session::SessionLost) -> Self {
        Error::Session(tether_session::Error::Lost(lost))
    }
}

impl From<tether_codec::Error> for Error {
    fn from(err: tether_codec::Error) -> Self {
        match err {
            tether_codec::Error::Closed => Error::Closed,
            other => Error::Protocol(other),
        }
    }
}

impl Error {
    /// The close code that describes this error to the peer or the application: the code the
    /// peer was sent for a protocol violation, 1006 for an abnormal closure, 1013 (try again
    /// later) for a slow consumer, `None` otherwise.
    ///
    /// ```
    /// use tether::{CloseCode, Error};
    /// let err = Error::from(tether::codec::Error::InvalidUtf8);
    /// assert_eq!(err.close_code(), Some(CloseCode::INVALID_PAYLOAD));
    /// assert_eq!(Error::AbnormalClosure.close_code(), Some(CloseCode::ABNORMAL));
    /// ```
    pub fn close_code(&self) -> Option<tether_codec::CloseCode> {
        match self {
            Error::Protocol(err) => err.close_code(),
            Error::AbnormalClosure => Some(tether_codec::CloseCode::ABNORMAL),
            Error::SlowConsumer { .. } => Some(tether_codec::CloseCode::TRY_AGAIN_LATER),
            _ => None,
        }
    }
}

impl Error {
    /// What this error means to a reconnecting client: the [`Failure`] its retry policy
    /// decides on.
    ///
    /// Refused upgrades keep their HTTP status and `Retry-After` (in seconds); timeouts
    /// and I/O errors keep their kind; a connection that ended without a closing handshake
    /// is a close without code (1006). Errors that another attempt would meet again are not
    /// retryable: an invalid URL or TLS configuration, a certificate the TLS handshake
    /// refused, a server that is not a WebSocket server, a peer that violated the protocol.
    ///
    /// ```
    /// use tether::heartbeat::Failure;
    /// use tether::Error;
    ///
    /// assert_eq!(Error::AbnormalClosure.failure(), Failure::Closed { code: None });
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(Error::Io(refused).failure(), Failure::Io(std::io::ErrorKind::ConnectionRefused));
    /// assert!(matches!(
    ///     Error::from(tether::codec::Error::InvalidUtf8).failure(),
    ///     Failure::Other { retryable: false, .. }
    /// ));
    /// ```
    pub fn failure(&self) -> Failure {
        let fatal = || Failure::Other {
            message: self.to_string(),
            retryable: false,
        };
        match self {
            Error::Io(io) => io_failure(io).unwrap_or_else(fatal),
            Error::Handshake(handshake) => handshake_failure(handshake).unwrap_or_else(fatal),
            Error::ConnectTimeout(_)
            | Error::TlsTimeout(_)
            | Error::CloseTimeout(_)
            | Error::IdleTimeout(_) => Failure::Timeout,
            Error::AbnormalClosure | Error::Closed => Failure::Closed { code: None },
            Error::Proxy(proxy) => proxy.failure(),
            // A server cut this side off for reading too slowly: 1013, try again later.
            Error::SlowConsumer { .. } => Failure::Closed {
                code: Some(tether_codec::CloseCode::TRY_AGAIN_LATER.0),
            },
            Error::Protocol(_)
            | Error::Tls(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidServerName(_)
            | Error::NotWebSocket
            | Error::Heartbeat(_)
            | Error::Session(_)
            | Error::NoSessions
            | Error::NotData => fatal(),
        }
    }
}

/// An I/O error's failure; `None` (fatal) when it wraps a TLS error: a certificate that was
/// refused once is refused again.
fn io_failure(io: &std::io::Error) -> Option<Failure> {
    let tls = io
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    (!tls).then(|| Failure::Io(io.kind()))
}

/// A handshake error's failure; `None` (fatal) for answers that will not change.
fn handshake_failure(error: &tether_handshake::Error) -> Option<Failure> {
    use tether_handshake::Error as Handshake;
    match error {
        Handshake::UnexpectedStatus(response) => Some(Failure::Http {
            status: response.status.as_u16(),
            retry_after: retry_after(&response.headers),
        }),
        Handshake::Timeout(_) => Some(Failure::Timeout),
        Handshake::Io(io) => io_failure(io),
        Handshake::ConnectionClosed => Some(Failure::Closed { code: None }),
        Handshake::Random => Some(Failure::Other {
            message: error.to_string(),
            retryable: true,
        }),
        _ => None,
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); the HTTP-date form is ignored (the
/// backoff applies alone then).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_heartbeat::{Decision, DefaultRetryPolicy, RetryPolicy};

    #[test]
    fn codec_errors_map_to_facade_variants() {
        assert!(matches!(
            Error::from(tether_codec::Error::Closed),
            Error::Closed
        ));
        let err = Error::from(tether_codec::Error::MaskedFrame);
        assert!(matches!(
            err,
            Error::Protocol(tether_codec::Error::MaskedFrame)
        ));
        assert_eq!(
            err.close_code(),
            Some(tether_codec::CloseCode::PROTOCOL_ERROR)
        );
        assert_eq!(Error::Closed.close_code(), None);
    }

    fn decide(error: &Error) -> Decision {
        DefaultRetryPolicy::new(Duration::from_secs(5)).decide(&error.failure(), 1)
    }

    fn retry_after_of(value: &str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(value).unwrap(),
        );
        retry_after(&headers)
    }

    #[test]
    fn rfc9110_10_2_3_retry_after_is_read_as_delay_seconds_only() {
        assert_eq!(retry_after_of(" 9 "), Some(Duration::from_secs(9)));
        assert_eq!(retry_after_of("0"), Some(Duration::ZERO));
        // The HTTP-date form is not read: the backoff alone decides.
        assert_eq!(retry_after_of("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after_of("-1"), None);
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
    }

    #[test]
    fn transient_errors_retry_and_lasting_ones_do_not() {
        let retry = Decision::Retry { floor: None };
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(decide(&Error::Io(refused)), retry);
        assert_eq!(
            decide(&Error::ConnectTimeout(Duration::from_secs(1))),
            retry
        );
        assert_eq!(
            decide(&Error::Handshake(tether_handshake::Error::Timeout(
                Duration::from_secs(1)
            ))),
            retry
        );
        assert_eq!(
            decide(&Error::Handshake(tether_handshake::Error::ConnectionClosed)),
            retry
        );
        assert_eq!(decide(&Error::AbnormalClosure), retry);
        let bad_cert = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(decide(&Error::Io(bad_cert)), Decision::Fatal);
        assert_eq!(
            decide(&Error::from(tether_codec::Error::MaskedFrame)),
            Decision::Fatal
        );
        assert_eq!(decide(&Error::NotWebSocket), Decision::Fatal);
        assert_eq!(
            decide(&Error::InvalidServerName("a b".into())),
            Decision::Fatal
        );
    }
}
