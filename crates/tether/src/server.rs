//! A small server: an accept loop with a callback per connection, graceful shutdown and an
//! optional rustls acceptor.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tether_handshake::{Accept, PlainRequest, Rejection, UpgradeRequest};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::accept::{accept_or_plain, upgrade_required, Accepted};
use crate::accept_error::{AcceptBackoff, AcceptFailure};
use crate::config::Config;
use crate::deadline::within;
use crate::error::Error;
use crate::load::{
    overloaded_answer, refuse, ServerStats, DEFAULT_MAX_CONNECTIONS, DEFAULT_RETRY_AFTER,
    REFUSAL_SLOTS,
};
use crate::origin::AllowedOrigins;
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
/// # What a client can cost it
///
/// Every cost is bounded by default: at most [`max_connections`](Server::max_connections)
/// connections (900) with cheap, bounded 503 refusals over it; each connection within its
/// [`Config`] (handshake timeout for TLS and the Upgrade, header bytes and count, message and
/// frame size, write buffer, close timeout, and the idle timeout when set there); accept
/// errors pause the loop instead of ending it. [`stats`](Server::stats) shows the counts.
///
/// # Origin
///
/// By default every `Origin` is accepted, which is right for servers that do not trust
/// cookies; a server that authenticates browsers by cookie must list its origins with
/// [`allow_origins`](Server::allow_origins) (cross-site WebSocket hijacking).
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
    max_connections: usize,
    retry_after: Duration,
    stats: ServerStats,
    origins: Option<AllowedOrigins>,
}

/// What a [`Server`] callback learns about its connection besides the WebSocket.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    peer_addr: SocketAddr,
    request: Arc<http::Request<()>>,
    shutdown: watch::Receiver<bool>,
}

impl ConnectionInfo {
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
            max_connections: DEFAULT_MAX_CONNECTIONS,
            retry_after: DEFAULT_RETRY_AFTER,
            stats: ServerStats::default(),
            origins: None,
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

    /// Accepts WebSocket requests only from these origins (`scheme://host[:port]`, as
    /// browsers send them, compared without ASCII case); a request from another origin is
    /// answered `403 Forbidden` before [`Server::decide`] sees it. A request without `Origin`
    /// passes: it does not come from a browser. Default: every origin.
    ///
    /// The default suits servers that do not rely on cookies or other credentials a browser
    /// adds by itself (public feeds, token-authenticated APIs). A server that authenticates
    /// browsers by cookie needs this list: otherwise any web page a logged-in visitor opens
    /// can open a WebSocket to it with the visitor's cookies and act as them (cross-site
    /// WebSocket hijacking). Non-browser clients can send any `Origin`, so this protects
    /// browser users, not the server against other clients.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let mut server = tether::Server::bind("127.0.0.1:0").await?;
    /// server.allow_origins(["https://app.example", "http://localhost:8080"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn allow_origins(
        &mut self,
        origins: impl IntoIterator<Item = impl Into<String>>,
    ) -> &mut Self {
        self.origins = Some(AllowedOrigins::new(origins));
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

    /// Most connections served at once. Default: 900.
    ///
    /// A connection counts from accept (before TLS and the handshake) until its callback
    /// returns, so the limit bounds the sockets, tasks and buffers that connections hold,
    /// half-open handshakes and slowloris clients included (the handshake timeout of
    /// [`Config::set_handshake_timeout`] then frees their places). The default stays under
    /// the common limit of 1024 descriptors per process with room for the rest of the
    /// process; raise it together with `ulimit -n`.
    ///
    /// Over the limit the server refuses rather than stops accepting, because a client left
    /// in the kernel's backlog only learns of the overload from its own timeout, while a
    /// refused one learns at once and when to come back. The refusal is cheap and bounded:
    /// the fixed answer `503 Service Unavailable` with [`Retry-After`](Server::retry_after)
    /// is written without reading the request and without a handshake, by one of at most 32
    /// refusal tasks, each done within a second. When all 32 are busy (a flood), the server
    /// stops accepting until one is free: the flood waits in the kernel's backlog and costs
    /// no memory here. A TLS server closes refused connections without an answer (an HTTP
    /// answer would need the TLS handshake the limit is there to avoid).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let mut server = tether::Server::bind("127.0.0.1:0").await?;
    /// server.max_connections(10_000).retry_after(std::time::Duration::from_secs(30));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_connections(&mut self, limit: usize) -> &mut Self {
        self.max_connections = limit;
        self
    }

    /// The `Retry-After` of the 503 answer over [`Server::max_connections`], rounded up to
    /// whole seconds. Default: 5 seconds.
    pub fn retry_after(&mut self, delay: Duration) -> &mut Self {
        self.retry_after = delay;
        self
    }

    /// Live counts of this server's connections (current, peak, refused), readable while
    /// it serves.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// Serves until the listener becomes unusable; see [`Server::serve_until`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the listener is unusable (EBADF, ENOTSOCK, EINVAL).
    pub async fn serve<H, F>(self, handler: H) -> Result<(), Error>
    where
        H: Fn(ServerSocket, ConnectionInfo) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        self.serve_until(handler, std::future::pending()).await
    }

    /// Accepts connections and runs `handler` for each WebSocket in its own task, until
    /// `shutdown` completes. Then it stops accepting, tells every connection
    /// ([`ConnectionInfo::shutdown`]), waits for the callbacks up to the grace period and aborts
    /// those still running.
    ///
    /// Failed handshakes and TLS errors are logged (tracing, debug) and cost only their own
    /// connection. Over [`Server::max_connections`] connections are refused (503). A failed
    /// accept never ends serving unless the listener itself is unusable: a failure that
    /// belongs to one connection (ECONNABORTED, EPERM...) is logged at debug and skipped, a
    /// shortage (EMFILE, ENFILE, ENOBUFS, ENOMEM, or an unknown error) is logged as a warning
    /// and pauses accepting for 10 ms, doubling up to 1 s while it lasts.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the listener is unusable (EBADF, ENOTSOCK, EINVAL); never for
    /// per-connection errors.
    pub async fn serve_until<H, F>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error>
    where
        H: Fn(ServerSocket, ConnectionInfo) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Tasks {
            open: JoinSet::new(),
            refusing: JoinSet::new(),
            max_connections: self.max_connections,
            answer: (self.tls.is_none()).then(|| overloaded_answer(self.retry_after)),
            stats: self.stats,
        };
        let shared = Arc::new(PerConnection {
            config: self.config,
            tls: self.tls,
            decide: self.decide,
            plain: self.plain,
            origins: self.origins,
        });
        let mut backoff = AcceptBackoff::new();
        let mut paused: Option<Instant> = None;
        tokio::pin!(shutdown);
        let result = loop {
            let room = paused.is_none() && tasks.has_room();
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                Some(_) = tasks.open.join_next(), if !tasks.open.is_empty() => tasks.recount(),
                Some(_) = tasks.refusing.join_next(), if !tasks.refusing.is_empty() => {
                    tasks.recount();
                }
                () = tokio::time::sleep_until(paused.unwrap_or_else(Instant::now)),
                    if paused.is_some() => paused = None,
                accepted = self.listener.accept(), if room => match accepted {
                    Ok((tcp, peer_addr)) => {
                        backoff.reset();
                        tasks.reap();
                        if tasks.at_limit() {
                            tasks.refuse(tcp, peer_addr);
                        } else {
                            let shared = shared.clone();
                            let (handler, stopped) = (handler.clone(), stopped.clone());
                            tasks.open.spawn(async move {
                                if let Some((ws, request)) = shared.open(tcp, peer_addr).await {
                                    let request = Arc::new(request);
                                    let shutdown = stopped;
                                    handler(ws, ConnectionInfo { peer_addr, request, shutdown }).await;
                                }
                            });
                            tasks.recount();
                        }
                    }
                    Err(err) => match after_accept_error(err, &mut backoff) {
                        Ok(pause) => paused = pause,
                        Err(err) => break Err(err),
                    },
                },
            }
        };
        drop(self.listener);
        let _ = stop.send(true);
        tasks.finish(self.grace_period).await;
        result
    }
}

/// Logs a failed accept and says what to do: `Ok(None)` accept again now, `Ok(Some(t))`
/// pause until `t`, `Err` stop serving.
fn after_accept_error(
    err: std::io::Error,
    backoff: &mut AcceptBackoff,
) -> Result<Option<Instant>, Error> {
    match AcceptFailure::of(&err) {
        AcceptFailure::Connection => {
            tracing::debug!(error = %err, "accept failed for one connection");
            Ok(None)
        }
        AcceptFailure::Shortage => {
            let pause = backoff.pause();
            tracing::warn!(error = %err, ?pause, "accept failed; pausing");
            Ok(Some(Instant::now() + pause))
        }
        AcceptFailure::Listener => {
            tracing::error!(error = %err, "listener unusable; stopping");
            Err(err.into())
        }
    }
}

/// The accept loop's tasks: connections counted against the limit, and refusals in flight.
struct Tasks {
    open: JoinSet<()>,
    refusing: JoinSet<()>,
    max_connections: usize,
    /// The 503 answer, or `None` on a TLS server (answering would need the TLS handshake the
    /// limit is there to avoid: the connection is closed unanswered).
    answer: Option<Bytes>,
    stats: ServerStats,
}

impl Tasks {
    /// Whether an accepted connection can be served or refused; when neither, the loop
    /// leaves new connections in the kernel's backlog.
    fn has_room(&self) -> bool {
        self.open.len() < self.max_connections || self.refusing.len() < REFUSAL_SLOTS
    }

    /// Removes the tasks that have ended but were not joined yet, so that a place freed
    /// just now is not refused.
    fn reap(&mut self) {
        while self.open.try_join_next().is_some() {}
        while self.refusing.try_join_next().is_some() {}
        self.recount();
    }

    /// Whether a new connection is over the limit.
    fn at_limit(&self) -> bool {
        self.open.len() >= self.max_connections
    }

    /// Refuses `tcp`: a 503 written by a task of its own, bounded in time, or on a TLS server
    /// an immediate close.
    fn refuse(&mut self, tcp: TcpStream, peer: SocketAddr) {
        tracing::debug!(%peer, limit = self.max_connections, "at the connection limit; refusing");
        self.stats.count_refused();
        if let Some(answer) = &self.answer {
            self.refusing.spawn(refuse(tcp, answer.clone()));
            self.recount();
        }
    }

    /// Publishes the counts after a task was added or reaped.
    fn recount(&self) {
        self.stats.set_connections(self.open.len());
        self.stats.set_refusing(self.refusing.len());
    }

    /// After the loop: refusals are dropped (aborted), connections get the grace period.
    async fn finish(mut self, grace_period: Duration) {
        self.refusing.shutdown().await;
        let drain = async { while self.open.join_next().await.is_some() {} };
        if tokio::time::timeout(grace_period, drain).await.is_err() {
            tracing::debug!(
                running = self.open.len(),
                "grace period over; aborting connections"
            );
            self.open.shutdown().await;
        }
        self.recount();
    }
}

/// What every connection task needs from the server.
struct PerConnection {
    config: Config,
    tls: Option<TlsAcceptor>,
    decide: Decide,
    plain: Plain,
    origins: Option<AllowedOrigins>,
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
        let decide = |request: &UpgradeRequest| {
            if let Some(origins) = &self.origins {
                origins.check(request)?;
            }
            (self.decide)(request)
        };
        // Boxed so that the handshake's buffers are freed when it is done instead of staying
        // in the connection task's state for the connection's lifetime.
        let accepting = Box::pin(accept_or_plain(io, &self.config, |request| decide(request)));
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

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .field("config", &self.config)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}
