//! The server's sessions: the registry of attached and parked sessions, their expiry, and
//! the application's handler, called once per session (docs/sessions.md §7).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tether_handshake::{Accept, UpgradeRequest};
use tether_session::{Dropped, EndpointConfig, LostReason, Registry, RegistryConfig, SUBPROTOCOL};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::Error;
use crate::session::handler;
use crate::session::server_session::ServerSession;
use crate::session::state::Shared;
use crate::websocket::WebSocket;

/// Default for [`SessionServerConfig::set_handshake_timeout`]: docs/sessions.md §7.
pub const DEFAULT_SESSION_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits of a server's sessions.
///
/// ```
/// use std::time::Duration;
/// use tether::session::SessionServerConfig;
///
/// let mut config = SessionServerConfig::default();
/// config.registry_mut().set_resume_window(Duration::from_secs(30));
/// assert_eq!(config.endpoint().max_replay_bytes(), 1 << 20);
/// assert_eq!(config.endpoint().ack_bytes(), 256 << 10);
/// assert_eq!(config.handshake_timeout(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct SessionServerConfig {
    endpoint: EndpointConfig,
    registry: RegistryConfig,
    handshake_timeout: Duration,
}

impl Default for SessionServerConfig {
    fn default() -> Self {
        let mut endpoint = EndpointConfig::default();
        // docs/sessions.md §5: "1024 messages and 1 MiB per session on the server".
        endpoint.set_max_replay_bytes(1 << 20);
        // Its acks free a client's replay buffer (one session's), not the server's: as late
        // as the protocol allows, so fewer acks cost both sides less.
        endpoint.set_ack_bytes(tether_session::MAX_ACK_BYTES);
        SessionServerConfig {
            endpoint,
            registry: RegistryConfig::default(),
            handshake_timeout: DEFAULT_SESSION_HANDSHAKE_TIMEOUT,
        }
    }
}

impl SessionServerConfig {
    /// Each session's replay buffer and acknowledgements. Default: 1024 messages, 1 MiB,
    /// an ack every 32 messages or 256 KiB (the protocol's bounds: what it acknowledges is
    /// the client's to keep, so late acks cost the server nothing) or 200 ms.
    pub fn set_endpoint(&mut self, endpoint: EndpointConfig) -> &mut Self {
        self.endpoint = endpoint;
        self
    }

    /// The value set with [`set_endpoint`](Self::set_endpoint).
    pub fn endpoint(&self) -> &EndpointConfig {
        &self.endpoint
    }

    /// The endpoint configuration, to change one value.
    pub fn endpoint_mut(&mut self) -> &mut EndpointConfig {
        &mut self.endpoint
    }

    /// Resume window, parked sessions and bytes, remembered ids. Default:
    /// [`RegistryConfig::default`] (120 s, 10 000, 256 MiB, 10 000).
    pub fn set_registry(&mut self, registry: RegistryConfig) -> &mut Self {
        self.registry = registry;
        self
    }

    /// The value set with [`set_registry`](Self::set_registry).
    pub fn registry(&self) -> &RegistryConfig {
        &self.registry
    }

    /// The registry configuration, to change one value.
    pub fn registry_mut(&mut self) -> &mut RegistryConfig {
        &mut self.registry
    }

    /// How long a new connection may take to send `\0new` or `\0resume`; past it, close
    /// 1008. Default 10 s.
    pub fn set_handshake_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The value set with [`set_handshake_timeout`](Self::set_handshake_timeout).
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

type MakeHandler = dyn Fn(ServerSession) -> handler::Handler + Send + Sync;

/// A server's sessions, shared by every connection: hand each accepted connection that
/// selected `tether.session.v1` to [`attach`](Self::attach); the handler runs once per
/// session, with a [`ServerSession`] that outlives the connections. When the last clone is
/// dropped and no connection runs any more (the server stopped), every session still parked
/// ends: its handler's stream ends with [`SessionLost`](super::SessionLost) `unknown`.
///
/// ```
/// use tether::session::{Sessions, SessionServerConfig};
/// use tether::Server;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let sessions = Sessions::new(SessionServerConfig::default(), |mut session| async move {
///     // Echo: every message back, exactly once, across reconnects.
///     while let Some(Ok(message)) = session.recv().await {
///         if session.send(message).await.is_err() {
///             break;
///         }
///     }
///     session.end();
/// })?;
/// let mut server = Server::bind("127.0.0.1:0").await?;
/// server.decide(|request| Ok(tether::session::select(request)));
/// tokio::spawn(server.serve(move |ws, _| sessions.clone().attach(ws)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Sessions {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self.inner.registry();
        f.debug_struct("Sessions")
            .field("sessions", &registry.len())
            .field("parked", &registry.parked())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: SessionServerConfig,
    registry: Mutex<Registry<Arc<Shared>>>,
    /// Wakes the expiry task: the earliest deadline may have changed.
    changed: Arc<Notify>,
    handler: Box<MakeHandler>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.changed.notify_one();
        // The last handle is gone (the server stopped, every connection ended): the sessions
        // end with it, and each handler's stream says so rather than waiting for a resume
        // that cannot come. `unknown`: what a client resuming against a restarted server
        // hears.
        let registry = self
            .registry
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for session in registry.drain() {
            session.lose(LostReason::Unknown);
        }
    }
}

/// Accepts an upgrade, selecting `tether.session.v1` when the client offered it: the
/// [`Server::decide`](crate::Server::decide) of a server with sessions.
pub fn select(request: &UpgradeRequest) -> Accept {
    let offered = request.subprotocols().iter().any(|p| p == SUBPROTOCOL);
    if offered {
        Accept::new().with_subprotocol(SUBPROTOCOL)
    } else {
        Accept::new()
    }
}

impl Sessions {
    /// Sessions with these limits; `handler` is called once per new session. The future it
    /// returns runs in the task of the connection that carries the session (as a plain
    /// WebSocket loop runs in its connection's), and in a task of its own while no
    /// connection does. A handler that panics ends its session as if it returned (its
    /// [`ServerSession`] dropped: `end` after what it sent); the connection goes on.
    /// Must be called within a tokio runtime (it spawns the expiry task).
    ///
    /// # Errors
    ///
    /// [`Error::Session`] for an invalid configuration.
    pub fn new<H, F>(config: SessionServerConfig, handler: H) -> Result<Sessions, Error>
    where
        H: Fn(ServerSession) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        config.endpoint.validate()?;
        let registry = Registry::new(config.registry)?;
        let inner = Arc::new(Inner {
            config,
            registry: Mutex::new(registry),
            changed: Arc::new(Notify::new()),
            handler: Box::new(move |session| Box::pin(handler(session))),
        });
        tokio::spawn(expire(Arc::downgrade(&inner), Arc::clone(&inner.changed)));
        Ok(Sessions { inner })
    }

    /// Runs one connection's part of a session: waits for `\0new` or `\0resume`, answers,
    /// then carries the session until the connection ends (the session is then parked for
    /// the resume window) or the session does. A connection without the subprotocol is
    /// closed with 1008.
    pub async fn attach<S>(self, ws: WebSocket<S>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        crate::session::accepted::serve(&self.inner, ws).await;
    }

    /// Sessions known now: attached and parked.
    pub fn len(&self) -> usize {
        self.inner.registry().len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sessions parked now (no connection, waiting for a resume).
    pub fn parked(&self) -> usize {
        self.inner.registry().parked()
    }
}

impl Inner {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry<Arc<Shared>>> {
        // The registry's methods leave it consistent at every return.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The application's handler for a new session, for its first connection to run.
    pub(crate) fn handler(&self, shared: Arc<Shared>) -> handler::Handler {
        (self.handler)(ServerSession::new(shared))
    }

    /// The registry let these sessions go: each ends, lost, for its application.
    pub(crate) fn drop_sessions(&self, dropped: Vec<Dropped<Arc<Shared>>>) {
        for Dropped {
            session, reason, ..
        } in dropped
        {
            let lost = session.lose(reason);
            tracing::info!(%lost, "session dropped");
        }
    }

    /// The expiry deadline may have moved.
    pub(crate) fn changed(&self) {
        self.changed.notify_one();
    }
}

/// Drops parked sessions whose resume window passed, until the sessions are gone.
async fn expire(inner: Weak<Inner>, changed: Arc<Notify>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let dropped = strong.registry().handle_timeout(Instant::now().into_std());
        strong.drop_sessions(dropped);
        let deadline = strong.registry().poll_timeout();
        drop(strong);
        let wake = changed.notified();
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(Instant::from_std(at)) => {}
                    () = wake => {}
                }
            }
            None => wake.await,
        }
    }
}
