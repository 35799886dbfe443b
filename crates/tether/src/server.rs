//! A small server: an accept loop with a callback per connection, graceful shutdown and an
//! optional rustls acceptor.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tether_handshake::{Accept, PlainRequest, Rejection, UpgradeRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::accept::{accept_config, upgrade_required, Accepted};
use crate::client::within;
use crate::config::Config;
use crate::error::Error;
use crate::transport::MaybeTls;
use crate::websocket::WebSocket;

/// Default for [`Server::grace_period`]: 10 seconds.
const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);

type Decide = Arc<dyn Fn(&UpgradeRequest) -> Result<Accept, Rejection> + Send + Sync>;
type Plain = Arc<dyn Fn(&PlainRequest) -> Rejection + Send + Sync>;

/// The WebSocket a [`Server`] hands to its callback.
pub type ServerSocket = WebSocket<MaybeTls<TcpStream>>;

/// A WebSocket server on a TCP listener: one task per connection, each running the handshake
/// (after TLS, if configured) and then the application's callback.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use tether::{connect, Message, Server};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// let server = Server::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", server.local_addr()?);
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let running = tokio::spawn(server.serve_until(
///     |mut ws, _conn| async move {
///         while let Some(Ok(message)) = ws.next().await {
///             if message.is_data() && ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///     },
///     async { let _ = stopped.await; },
/// ));
/// let mut ws = connect(&url).await?;
/// ws.send(Message::text("hi")).await?;
/// assert_eq!(ws.next().await.unwrap()?, Message::text("hi"));
/// ws.close(tether::CloseCode::NORMAL, "").await?;
/// stop.send(()).unwrap();
/// running.await??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    listener: TcpListener,
    config: Config,
    tls: Option<TlsAcceptor>,
    decide: Decide,
    plain: Plain,
    grace_period: Duration,
}

/// What a [`Server`] callback learns about its connection besides the WebSocket.
#[derive(Debug, Clone)]
pub struct Connection {
    peer_addr: SocketAddr,
    request: Arc<http::Request<()>>,
    shutdown: watch::Receiver<bool>,
}

impl Connection {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The Upgrade request (path, query, headers).
    pub fn request(&self) -> &http::Request<()> {
        &self.request
    }

    /// Completes when the server starts shutting down: the callback should then close its
    /// WebSocket (1001 going away) within the server's grace period.
    pub async fn shutdown(&self) {
        let mut shutdown = self.shutdown.clone();
        // An error means the server is gone, which is a shutdown too.
        let _ = shutdown.wait_for(|stop| *stop).await;
    }

    /// Whether the server started shutting down.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

impl Server {
    /// Listens on `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the address cannot be bound.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Server, Error> {
        Ok(Server::from_listener(TcpListener::bind(addr).await?))
    }

    /// Serves on a listener bound elsewhere.
    pub fn from_listener(listener: TcpListener) -> Server {
        Server {
            listener,
            config: Config::default(),
            tls: None,
            decide: Arc::new(|_| Ok(Accept::new())),
            plain: Arc::new(|_| upgrade_required()),
            grace_period: DEFAULT_GRACE_PERIOD,
        }
    }

    /// The address the server listens on.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the socket.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Limits and timeouts of every connection. Default: [`Config::default`].
    pub fn config(&mut self, config: Config) -> &mut Self {
        self.config = config;
        self
    }

    /// Serves `wss://`: every connection runs this rustls configuration first (within the
    /// handshake timeout). Default: plain `ws://`.
    pub fn tls(&mut self, tls: Arc<rustls::ServerConfig>) -> &mut Self {
        self.tls = Some(TlsAcceptor::from(tls));
        self
    }

    /// Decides on each valid Upgrade request: accept (choosing a subprotocol) or reject with
    /// a response. Default: accept every request, no subprotocol.
    pub fn decide(
        &mut self,
        decide: impl Fn(&UpgradeRequest) -> Result<Accept, Rejection> + Send + Sync + 'static,
    ) -> &mut Self {
        self.decide = Arc::new(decide);
        self
    }

    /// Answers plain HTTP requests (no Upgrade) with the returned response (any status,
    /// headers and body). Default: 426 Upgrade Required.
    pub fn plain_http(
        &mut self,
        answer: impl Fn(&PlainRequest) -> Rejection + Send + Sync + 'static,
    ) -> &mut Self {
        self.plain = Arc::new(answer);
        self
    }

    /// How long a graceful shutdown waits for running callbacks before aborting them.
    /// Default: 10 seconds.
    pub fn grace_period(&mut self, grace: Duration) -> &mut Self {
        self.grace_period = grace;
        self
    }

    /// Serves until the listener fails; see [`Server::serve_until`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if accepting fails for good.
    pub async fn serve<H, F>(self, handler: H) -> Result<(), Error>
    where
        H: Fn(ServerSocket, Connection) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.serve_until(handler, std::future::pending()).await
    }

    /// Accepts connections and runs `handler` for each WebSocket in its own task, until
    /// `shutdown` completes. Then it stops accepting, tells every connection
    /// ([`Connection::shutdown`]), waits for the callbacks up to the grace period and aborts
    /// those still running.
    ///
    /// Failed handshakes and TLS errors are logged (tracing, debug) and cost only their own
    /// connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if accepting fails for good (not for per-connection errors).
    pub async fn serve_until<H, F>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error>
    where
        H: Fn(ServerSocket, Connection) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let shared = Arc::new(PerConnection {
            config: self.config,
            tls: self.tls,
            decide: self.decide,
            plain: self.plain,
        });
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer_addr)) => {
                        let shared = shared.clone();
                        let handler = handler.clone();
                        let stopped = stopped.clone();
                        tasks.spawn(async move {
                            if let Some((ws, request)) = shared.open(tcp, peer_addr).await {
                                let conn = Connection {
                                    peer_addr,
                                    request: Arc::new(request),
                                    shutdown: stopped,
                                };
                                handler(ws, conn).await;
                            }
                        });
                    }
                    Err(err) if is_transient(&err) => {
                        tracing::debug!(error = %err, "accept failed; continuing");
                        if is_fd_shortage(&err) {
                            // Out of descriptors: give running connections a moment to end
                            // instead of spinning on accept.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    Err(err) => break Err(err.into()),
                },
            }
        };
        drop(self.listener);
        let _ = stop.send(true);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(self.grace_period, drain)
            .await
            .is_err()
        {
            tracing::debug!(
                running = tasks.len(),
                "grace period over; aborting connections"
            );
            tasks.shutdown().await;
        }
        result
    }
}

/// What every connection task needs from the server.
struct PerConnection {
    config: Config,
    tls: Option<TlsAcceptor>,
    decide: Decide,
    plain: Plain,
}

impl PerConnection {
    /// TLS, handshake, plain HTTP answer: the WebSocket and its request, or `None` after
    /// logging why not.
    async fn open(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
    ) -> Option<(ServerSocket, http::Request<()>)> {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %err, "set_nodelay failed");
        }
        let io = match &self.tls {
            Some(acceptor) => {
                let timeout = self.config.handshake_timeout();
                match within(timeout, Box::pin(acceptor.accept(tcp)), Error::TlsTimeout).await {
                    Ok(Ok(tls)) => MaybeTls::ServerTls(Box::new(tls)),
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "tls handshake failed");
                        return None;
                    }
                    Err(err) => {
                        tracing::debug!(%peer, error = %err, "tls handshake failed");
                        return None;
                    }
                }
            }
            None => MaybeTls::Plain(tcp),
        };
        let decide = &self.decide;
        // Boxed so that the handshake's buffers are freed when it is done instead of staying
        // in the connection task's state for the connection's lifetime.
        let accepting = Box::pin(accept_config(io, &self.config, |request| decide(request)));
        match accepting.await {
            Ok(Accepted::WebSocket(ws, request)) => {
                tracing::debug!(%peer, path = request.uri().path(), "websocket opened");
                Some((*ws, request))
            }
            Ok(Accepted::Plain(mut io, request)) => {
                let mut out = BytesMut::new();
                (self.plain)(&request).encode(&mut out);
                if let Err(err) = async {
                    io.write_all(&out).await?;
                    io.shutdown().await
                }
                .await
                {
                    tracing::debug!(%peer, error = %err, "answering plain http failed");
                }
                None
            }
            Err(err) => {
                tracing::debug!(%peer, error = %err, "websocket handshake failed");
                None
            }
        }
    }
}

/// Accept errors that concern one connection or a passing shortage, not the listener.
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) || is_fd_shortage(err)
}

/// EMFILE or ENFILE: the process or the system is out of file descriptors.
fn is_fd_shortage(err: &std::io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| code == 23 || code == 24)
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
