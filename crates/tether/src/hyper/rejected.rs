//! Why an upgrade request was turned down, and the HTTP answer it gets.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use tether_handshake::Rejection;

use crate::accept::upgrade_required;

/// An upgrade request turned down before any WebSocket exists, with the answer it deserves:
/// the same statuses as [`Server`](crate::Server) and `tether serve` send for the same
/// request. Turn it into a response with [`Rejected::into_response`] (with the `axum`
/// feature it is also axum's `IntoResponse`).
///
/// ```
/// use tether::hyper::Rejected;
///
/// let response = Rejected::NotWebSocket.into_response();
/// assert_eq!(response.status(), 426);
/// assert_eq!(response.headers()["upgrade"], "websocket");
/// assert_eq!(response.headers()["sec-websocket-version"], "13");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// The request is not a valid opening handshake (RFC 6455 §4.2.1) or breaks a header
    /// limit: 400, 426 with `Sec-WebSocket-Version: 13` for another version, 431; 500 when
    /// the application's [`Accept`](crate::Accept) does not fit the request.
    #[error(transparent)]
    Handshake(#[from] tether_handshake::Error),
    /// The request does not ask for a WebSocket at all: 426 with `Upgrade: websocket`.
    #[error("the request does not ask for a websocket")]
    NotWebSocket,
    /// The application turned the request down with its own response (403, 401, ...).
    #[error("rejected by the application with status {}", .0.status())]
    Application(Rejection),
    /// The request is valid but the HTTP server cannot hand over its connection (a hyper
    /// connection served without `with_upgrades()`, or a protocol without Upgrade): 500.
    #[error("the http server cannot upgrade this connection")]
    NotUpgradable,
}

impl Rejected {
    /// The response to send: status, header fields and a one-line `text/plain` body.
    pub fn rejection(&self) -> Rejection {
        match self {
            Rejected::Handshake(error) => error
                .rejection()
                .unwrap_or_else(|| Rejection::new(StatusCode::INTERNAL_SERVER_ERROR)),
            Rejected::NotWebSocket => upgrade_required(),
            Rejected::Application(rejection) => rejection.clone(),
            Rejected::NotUpgradable => Rejection::new(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The status of [`rejection`](Rejected::rejection).
    pub fn status(&self) -> StatusCode {
        match self {
            Rejected::Application(rejection) => rejection.status(),
            other => other.rejection().status(),
        }
    }

    /// The response as hyper sends it.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        self.rejection().to_response().map(Full::new)
    }
}
