//! Async helpers: the sans-IO handshakes run over a tokio `AsyncRead + AsyncWrite`.

use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::accept_key::Key;
use crate::client::{ClientHandshake, ClientOutcome};
use crate::config::Config;
use crate::error::Error;
use crate::rejection::Rejection;
use crate::request::ClientRequest;
use crate::server::{
    Accept, Incoming, PlainRequest, ServerHandshake, ServerOutcome, UpgradeRequest,
};

/// Bytes asked for per read. Anything read past the head is kept as leftover.
const READ_CHUNK: usize = 4096;

/// After a rejection, at most this many bytes of the client's input are read and discarded...
const LINGER_BYTES: usize = 64 * 1024;
/// ... for at most this long, so the answer is not lost to a connection reset.
const LINGER_TIME: Duration = Duration::from_secs(1);

/// A time limit for the async helpers when the caller has no better one: 10 seconds,
/// generous for a slow network, short enough that a peer holding a half-open handshake
/// (slowloris) costs little.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What [`server`] did with a connection.
#[derive(Debug)]
pub enum Served<S> {
    /// The handshake completed: the stream is a WebSocket now.
    WebSocket(S, ServerOutcome),
    /// The request was plain HTTP; nothing was written. The caller answers it.
    Plain(S, PlainRequest),
}

/// Runs the client handshake for `request` over `io` with a fresh random key: sends the
/// request, reads and validates the answer, all within `timeout` (`None`: no limit), else
/// fails with [`Error::Timeout`]. Returns the stream and what was agreed, including the bytes
/// read past the response head.
///
/// ```
/// use tether_handshake::{
///     client, server, Accept, ClientRequest, Config, Served, DEFAULT_HANDSHAKE_TIMEOUT,
/// };
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let (client_io, server_io) = tokio::io::duplex(4096);
/// let config = Config::default();
/// let serving = tokio::spawn(async move {
///     let timeout = Some(DEFAULT_HANDSHAKE_TIMEOUT);
///     server(server_io, &Config::default(), timeout, |_| {
///         Ok(Accept::new().with_subprotocol("chat"))
///     })
///     .await
/// });
/// let mut request = ClientRequest::new("ws://localhost/echo".parse()?)?;
/// request.subprotocol("chat");
/// let timeout = Some(DEFAULT_HANDSHAKE_TIMEOUT);
/// let (_stream, outcome) = client(client_io, &request, &config, timeout).await?;
/// assert_eq!(outcome.subprotocol.as_deref(), Some("chat"));
/// assert!(matches!(serving.await?, Ok(Served::WebSocket(..))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn client<S>(
    mut io: S,
    request: &ClientRequest,
    config: &Config,
    timeout: Option<Duration>,
) -> Result<(S, ClientOutcome), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = Key::random()?;
    with_timeout(timeout, async {
        let mut out = BytesMut::new();
        let mut handshake = ClientHandshake::start(request, &key, config, &mut out)?;
        io.write_all(&out).await?;
        io.flush().await?;
        let mut chunk = [0; READ_CHUNK];
        loop {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(handshake.receive_eof());
            }
            if let Some(outcome) = handshake.receive(&chunk[..n])? {
                return Ok((io, outcome));
            }
        }
    })
    .await
}

/// Runs the server handshake over `io`, within `timeout` (`None`: no limit), else fails with
/// [`Error::Timeout`].
///
/// Reads the request; if it is a valid WebSocket request, calls `decide` with it, which
/// returns an [`Accept`] (subprotocol, extensions, extra header fields) or its own
/// [`Rejection`] (403 for a foreign origin, 401, a redirect). `decide` runs on the task that
/// drives the handshake and must not block; it runs inside the handshake timeout. On accept
/// it writes the 101 and returns [`Served::WebSocket`]; a plain HTTP request is returned
/// untouched as [`Served::Plain`].
///
/// On a rejection or an invalid request it writes the error response ([`Error::rejection`]:
/// 400, 426, 431, 500), shuts the stream down, reads and discards what the client is still
/// sending (at most 64 KiB for at most a second, so the close does not reset the connection
/// before the answer is read) and returns the error ([`Error::Rejected`] for the
/// application's own). On timeout or I/O error it drops the stream.
pub async fn server<S, F>(
    mut io: S,
    config: &Config,
    timeout: Option<Duration>,
    decide: F,
) -> Result<Served<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest) -> Result<Accept, Rejection>,
{
    with_timeout(timeout, async {
        let mut handshake = ServerHandshake::new(config);
        let mut chunk = [0; READ_CHUNK];
        let request = loop {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                return Err(Error::ConnectionClosed);
            }
            match handshake.receive(&chunk[..n]) {
                Ok(None) => {}
                Ok(Some(Incoming::Plain(plain))) => return Ok(Served::Plain(io, plain)),
                Ok(Some(Incoming::Upgrade(request))) => break request,
                Err(err) => return Err(refuse(&mut io, err).await),
            }
        };
        let accept = match decide(&request) {
            Ok(accept) => accept,
            Err(rejection) => {
                tracing::debug!(status = %rejection.status(), "application rejected a websocket request");
                send_rejection(&mut io, &rejection).await?;
                return Err(Error::Rejected {
                    status: rejection.status(),
                });
            }
        };
        let mut out = BytesMut::new();
        match request.accept(&accept, &mut out) {
            Ok(outcome) => {
                io.write_all(&out).await?;
                io.flush().await?;
                Ok(Served::WebSocket(io, outcome))
            }
            Err(err) => Err(refuse(&mut io, err).await),
        }
    })
    .await
}

/// Sends the response `err` deserves, if any, and returns `err`. A failure to send is not
/// reported: the handshake has failed already, for the reason in `err`.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, err: Error) -> Error {
    tracing::debug!(error = %err, "refusing a websocket request");
    if let Some(rejection) = err.rejection() {
        let _ = send_rejection(io, &rejection).await;
    }
    err
}

/// Sends `rejection`, ends our side of the stream, then briefly reads and discards what the
/// client is still sending: closing a TCP socket with unread input resets the connection,
/// and the reset can destroy the answer before the client has read it.
async fn send_rejection<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    rejection: &Rejection,
) -> Result<(), Error> {
    let mut out = BytesMut::new();
    rejection.encode(&mut out);
    io.write_all(&out).await?;
    io.shutdown().await?;
    let drain = async {
        let mut chunk = [0; READ_CHUNK];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    Ok(())
}

async fn with_timeout<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(Error::Timeout(limit))),
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    const VALID: &[u8] =
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    const DEFAULT: Option<Duration> = Some(DEFAULT_HANDSHAKE_TIMEOUT);

    fn secs(timeout: u64) -> Option<Duration> {
        Some(Duration::from_secs(timeout))
    }

    /// The server helper with the defaults, accepting every request.
    async fn accept_all<S: AsyncRead + AsyncWrite + Unpin>(io: S) -> Result<Served<S>, Error> {
        server(io, &Config::default(), DEFAULT, |_| Ok(Accept::new())).await
    }

    #[tokio::test(start_paused = true)]
    async fn silent_client_times_out() {
        let (_client, server_io) = duplex(1024);
        let result = server(
            server_io,
            &Config::default(),
            secs(5),
            |_| Ok(Accept::new()),
        )
        .await;
        assert!(matches!(result, Err(Error::Timeout(d)) if d == Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn slowloris_client_times_out_at_the_deadline() {
        let (mut client_io, server_io) = duplex(1024);
        let start = tokio::time::Instant::now();
        let serving = tokio::spawn(async move {
            server(
                server_io,
                &Config::default(),
                secs(5),
                |_| Ok(Accept::new()),
            )
            .await
        });
        // One byte a second, never a blank line: the deadline holds for the whole handshake,
        // not per read.
        let trickle = async {
            for byte in b"GET / HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                if client_io.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            result = serving => {
                assert!(matches!(result.unwrap(), Err(Error::Timeout(_))));
                assert_eq!(start.elapsed(), Duration::from_secs(5));
            }
            () = trickle => panic!("the server never gave up"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn silent_server_times_out() {
        let (client_io, _server) = duplex(1024);
        let request = ClientRequest::new("ws://a/".parse().unwrap()).unwrap();
        let result = client(client_io, &request, &Config::default(), secs(3)).await;
        assert!(matches!(result, Err(Error::Timeout(_))));
    }

    // Paused clock: the server lingers after a rejection while the client keeps its side open.
    #[tokio::test(start_paused = true)]
    async fn invalid_request_is_answered_and_closed() {
        let (mut client_io, server_io) = duplex(4096);
        let version_8 = std::str::from_utf8(VALID)
            .unwrap()
            .replace("Version: 13", "Version: 8");
        client_io.write_all(version_8.as_bytes()).await.unwrap();
        let result = accept_all(server_io).await;
        assert!(matches!(result, Err(Error::UnsupportedVersion { .. })));
        let mut answer = String::new();
        client_io.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{answer}"
        );
        assert!(answer.contains("sec-websocket-version: 13\r\n"));
    }

    #[tokio::test]
    async fn application_rejection_is_sent_and_reported() {
        let (client_io, server_io) = duplex(4096);
        let serving = tokio::spawn(async move {
            server(server_io, &Config::default(), DEFAULT, |request| {
                assert_eq!(request.origin().unwrap(), "https://evil.test");
                Err(Rejection::new(StatusCode::FORBIDDEN).with_body("foreign origin\n"))
            })
            .await
        });
        let mut request = ClientRequest::new("ws://a/".parse().unwrap()).unwrap();
        request.header(
            http::header::ORIGIN,
            http::HeaderValue::from_static("https://evil.test"),
        );
        let result = client(client_io, &request, &Config::default(), DEFAULT).await;
        let Err(Error::UnexpectedStatus(response)) = result else {
            panic!("expected a 403, got {result:?}");
        };
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert_eq!(&response.body[..], b"foreign origin\n");
        let served = serving.await.unwrap();
        assert!(matches!(
            served,
            Err(Error::Rejected {
                status: StatusCode::FORBIDDEN
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn rejection_drains_what_the_client_is_still_sending() {
        // A tiny pipe: the client can only finish writing its 40 KB if the server reads it all,
        // including the 24 KB past the point where it gave up.
        let (mut client_io, server_io) = duplex(1024);
        let serving = tokio::spawn(async move { accept_all(server_io).await });
        let huge = format!("GET / HTTP/1.1\r\nX-Huge: {}", "h".repeat(40 * 1024));
        client_io.write_all(huge.as_bytes()).await.unwrap();
        client_io.shutdown().await.unwrap();
        let mut answer = String::new();
        client_io.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        assert!(matches!(
            serving.await.unwrap(),
            Err(Error::HeadTooLarge { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn invalid_accept_is_answered_with_500() {
        let (mut client_io, server_io) = duplex(4096);
        client_io.write_all(VALID).await.unwrap();
        let result = server(server_io, &Config::default(), DEFAULT, |_| {
            Ok(Accept::new().with_subprotocol("never-offered"))
        })
        .await;
        assert!(matches!(result, Err(Error::InvalidAccept { .. })));
        let mut answer = String::new();
        client_io.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn plain_request_is_returned_with_the_stream() {
        let (mut client_io, server_io) = duplex(4096);
        client_io
            .write_all(b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let served = server(
            server_io,
            &Config::default(),
            DEFAULT,
            |_| -> Result<Accept, Rejection> { panic!("not a websocket request") },
        )
        .await;
        let Ok(Served::Plain(mut io, plain)) = served else {
            panic!("expected plain http, got {served:?}");
        };
        assert_eq!(plain.request.uri().path(), "/page");
        // The stream is still usable for the caller's own answer.
        io.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0; 17];
        client_io.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    }

    #[tokio::test]
    async fn client_closed_early_is_connection_closed() {
        let (mut client_io, server_io) = duplex(4096);
        client_io.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        drop(client_io);
        let result = accept_all(server_io).await;
        assert!(matches!(result, Err(Error::ConnectionClosed)));
    }
}
