//! What can go wrong between the client and its proxy.

use std::time::Duration;

use http::StatusCode;
use tether_heartbeat::Failure;

/// A proxy could not be used or refused the tunnel; inside [`Error::Proxy`](crate::Error).
///
/// ```
/// use tether::ProxyError;
/// use tether::http::StatusCode;
///
/// let refused = ProxyError::Refused { status: StatusCode::PROXY_AUTHENTICATION_REQUIRED };
/// assert!(refused.is_auth());
/// assert_eq!(
///     refused.to_string(),
///     "the http proxy refused the tunnel: 407 Proxy Authentication Required"
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL (given, or from an environment variable) cannot be used. The password is
    /// never part of `url`.
    #[error("invalid proxy url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, its credentials replaced by `***`.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The HTTP proxy answered `CONNECT` with a status other than 2xx: 407 when it wants
    /// (other) credentials, 403 when its rules forbid the server, 502 or 503 when it cannot
    /// reach it.
    #[error("the http proxy refused the tunnel: {status}")]
    Refused {
        /// The status the proxy sent.
        status: StatusCode,
    },
    /// The HTTP proxy's answer to `CONNECT` was longer than
    /// [`MAX_CONNECT_RESPONSE`](crate::MAX_CONNECT_RESPONSE) bytes without ending.
    #[error("the http proxy's answer exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The HTTP proxy's answer was not an HTTP/1.x response, or bytes followed it before the
    /// tunnel was used.
    #[error("malformed answer from the http proxy: {0}")]
    Malformed(String),
    /// The SOCKS5 proxy refused the user name and password (RFC 1929 status not 0), or
    /// wants credentials and none were given.
    #[error("the socks5 proxy refused the credentials")]
    AuthFailed,
    /// The SOCKS5 proxy failed: its reply to `CONNECT` (RFC 1928 §6) or a protocol error.
    #[error("socks5 proxy: {0}")]
    Socks(String),
    /// The proxy connection and tunnel were not set up within the handshake timeout.
    #[error("the proxy tunnel was not set up within {0:?}")]
    Timeout(Duration),
    /// The connection to the proxy failed.
    #[error("proxy i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProxyError {
    /// Whether the proxy refused the credentials: HTTP 407, or 401 (tinyproxy's answer to
    /// wrong ones), or a SOCKS5 authentication failure.
    pub fn is_auth(&self) -> bool {
        match self {
            ProxyError::Refused { status } => {
                *status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
                    || *status == StatusCode::UNAUTHORIZED
            }
            ProxyError::AuthFailed => true,
            _ => false,
        }
    }

    /// What the error means to a reconnecting client: I/O errors and timeouts are retried,
    /// and so are 5xx answers (the proxy could not reach the server) and SOCKS failures;
    /// bad URLs, refused credentials and malformed answers are not.
    pub(crate) fn failure(&self) -> Failure {
        let retryable = match self {
            ProxyError::Io(io) => return Failure::Io(io.kind()),
            ProxyError::Timeout(_) => return Failure::Timeout,
            ProxyError::Refused { status } => status.is_server_error(),
            ProxyError::Socks(_) => true,
            _ => false,
        };
        Failure::Other {
            message: self.to_string(),
            retryable,
        }
    }
}

impl From<tokio_socks::Error> for ProxyError {
    fn from(err: tokio_socks::Error) -> Self {
        match err {
            tokio_socks::Error::Io(io) => ProxyError::Io(io),
            tokio_socks::Error::PasswordAuthFailure(_)
            | tokio_socks::Error::NoAcceptableAuthMethods => ProxyError::AuthFailed,
            other => ProxyError::Socks(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_retry_what_may_pass_and_not_refused_credentials() {
        let retryable = |err: ProxyError| match err.failure() {
            Failure::Other { retryable, .. } => retryable,
            Failure::Io(_) | Failure::Timeout => true,
            other => panic!("{other:?}"),
        };
        let refused = |code| ProxyError::Refused {
            status: StatusCode::from_u16(code).unwrap(),
        };
        assert!(retryable(refused(502)));
        assert!(retryable(refused(503)));
        assert!(!retryable(refused(407)));
        assert!(!retryable(refused(403)));
        assert!(!retryable(ProxyError::AuthFailed));
        assert!(!retryable(ProxyError::ResponseTooLarge { limit: 1 }));
        assert_eq!(
            ProxyError::Timeout(Duration::from_secs(1)).failure(),
            Failure::Timeout
        );
        let refused_io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            ProxyError::Io(refused_io).failure(),
            Failure::Io(std::io::ErrorKind::ConnectionRefused)
        );
        assert!(refused(401).is_auth() && !refused(403).is_auth());
    }
}
