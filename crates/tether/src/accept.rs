//! The server role for one connection: `accept`, `accept_with`, `accept_or_plain`.

use bytes::BytesMut;
use tether_codec::Role;
use tether_handshake::{Accept, PlainRequest, Rejection, Served, UpgradeRequest};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::Config;
use crate::error::Error;
use crate::websocket::WebSocket;

/// What arrived on a server connection: a WebSocket, or a plain HTTP request to answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Accepted<S> {
    /// The Upgrade completed; the request it came with (path, headers). Boxed: a
    /// connection's state is several hundred bytes and would size every `Accepted`.
    WebSocket(Box<WebSocket<S>>, http::Request<()>),
    /// A plain HTTP request (no Upgrade); nothing was written. The caller answers it, for
    /// example with a [`Rejection`] carrying any status and body.
    Plain(S, PlainRequest),
}

/// Runs the server side of the opening handshake on `io` and accepts any valid WebSocket
/// request, with the default [`Config`]; no subprotocol is chosen.
///
/// # Errors
///
/// [`Error::Handshake`] for an invalid request (answered with 400, 426 or 431 first) or a
/// timeout; [`Error::NotWebSocket`] for a plain HTTP request (answered with 426).
pub async fn accept<S>(io: S) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(io, |_| Ok(Accept::new())).await
}

/// Like [`accept`], with `decide` choosing what to do with a valid request: accept it (with a
/// subprotocol, extensions, extra header fields) or turn it down with its own response (403
/// for a foreign `Origin`, 401...).
///
/// ```
/// use http::StatusCode;
/// use tether::{accept_with, Accept, ClientBuilder, Rejection};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let (client_io, server_io) = tokio::io::duplex(4096);
/// let server = tokio::spawn(accept_with(server_io, |request| {
///     if request.subprotocols().iter().any(|p| p == "chat") {
///         Ok(Accept::new().with_subprotocol("chat"))
///     } else {
///         Err(Rejection::new(StatusCode::FORBIDDEN))
///     }
/// }));
/// let ws = ClientBuilder::new().subprotocol("chat").handshake(client_io, "ws://a/").await?;
/// assert_eq!(ws.subprotocol(), Some("chat"));
/// assert_eq!(server.await??.subprotocol(), Some("chat"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// As for [`accept`]; [`Error::Handshake`] with
/// [`tether_handshake::Error::Rejected`] when `decide` turned the request down.
pub async fn accept_with<S, F>(io: S, decide: F) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Rejection>,
{
    match accept_or_plain(io, &Config::default(), decide).await? {
        Accepted::WebSocket(ws, _) => Ok(*ws),
        Accepted::Plain(mut io, _) => {
            let mut out = BytesMut::new();
            upgrade_required().encode(&mut out);
            io.write_all(&out).await?;
            io.shutdown().await?;
            Err(Error::NotWebSocket)
        }
    }
}

/// The general form: `config` for limits and timeouts, `decide` for the request, and plain
/// HTTP requests handed back with the stream.
///
/// # Errors
///
/// As for [`accept_with`], without [`Error::NotWebSocket`].
pub async fn accept_or_plain<S, F>(io: S, config: &Config, decide: F) -> Result<Accepted<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Rejection>,
{
    let decide =
        |request: &UpgradeRequest| Ok(negotiate_deflate(decide(request)?, request, config));
    // Boxed: the handshake's state (its read chunk, the timeout, the rejection path) is
    // about 20 KiB, and inline it would stay in every connection task for the connection's
    // whole life, idle or not. On the heap it is freed once the handshake is done.
    let handshake =
        tether_handshake::server(io, config.handshake(), config.handshake_timeout(), decide);
    match Box::pin(handshake).await? {
        Served::WebSocket(io, outcome) => {
            let ws = WebSocket::from_raw(
                io,
                Role::Server,
                config,
                outcome.leftover,
                outcome.subprotocol,
            )
            .with_deflate(outcome.deflate, config);
            Ok(Accepted::WebSocket(Box::new(ws), outcome.request))
        }
        Served::Plain(io, plain) => Ok(Accepted::Plain(io, plain)),
    }
}

/// `accept` with permessage-deflate added when `config` accepts one of the request's offers:
/// compression is the library's to negotiate, on top of what the application chose.
pub(crate) fn negotiate_deflate(
    accept: Accept,
    request: &UpgradeRequest,
    config: &Config,
) -> Accept {
    let deflate = config.deflate(Role::Server);
    match deflate.as_ref().and_then(|d| request.deflate_offer(d)) {
        Some(accepted) => accept.with_deflate(&accepted),
        None => accept,
    }
}

/// The answer to a plain HTTP request on a WebSocket-only endpoint (RFC 6455 §4.2.2 uses 426
/// with `Sec-WebSocket-Version` for a version mismatch; the same tells a plain client what
/// this endpoint speaks).
pub(crate) fn upgrade_required() -> Rejection {
    Rejection::new(http::StatusCode::UPGRADE_REQUIRED)
        .with_header(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        )
        .with_header(
            http::header::SEC_WEBSOCKET_VERSION,
            http::HeaderValue::from_static("13"),
        )
        .with_body("this endpoint speaks websocket only\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md, "Performance by construction": an idle connection holds almost nothing.
    /// The future a connection task awaits stays small; the handshake's state (a read chunk,
    /// the timeout, the rejection path) lives on the heap only while the handshake runs.
    #[test]
    fn accept_future_keeps_the_handshake_state_off_the_task() {
        let (io, _peer) = tokio::io::duplex(64);
        let accepting = accept(io);
        let size = std::mem::size_of_val(&accepting);
        assert!(size <= 1024, "accept future: {size} bytes");
    }
}
