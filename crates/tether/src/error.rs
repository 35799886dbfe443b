//! The facade's one error type.

use std::time::Duration;

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
    /// A plain HTTP request arrived where a WebSocket upgrade was expected; it was answered
    /// with 426 Upgrade Required.
    #[error("plain http request instead of a websocket upgrade")]
    NotWebSocket,
    /// A [`Fanout`](crate::Fanout) subscriber fell more than `limit` bytes behind and was cut
    /// off: close its connection with [`Error::close_code`], 1013 (try again later).
    #[error("slow consumer: more than {limit} bytes behind the broadcast")]
    SlowConsumer {
        /// The backlog limit, in bytes.
        limit: usize,
    },
    /// A heartbeat supervisor refused its configuration.
    #[error("heartbeat: {0}")]
    Heartbeat(#[from] tether_heartbeat::Error),
}

impl From<tether_codec::Error> for Error {
    fn from(err: tether_codec::Error) -> Self {
        match err {
            tether_codec::Error::Closed => Error::Closed,
            tether_codec::Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_errors_map_to_facade_variants() {
        assert!(matches!(
            Error::from(tether_codec::Error::Closed),
            Error::Closed
        ));
        let io = tether_codec::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(
            matches!(Error::from(io), Error::Io(err) if err.kind() == std::io::ErrorKind::BrokenPipe)
        );
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
}
