//! The heartbeat's entry points: supervised clients and server connections.
//!
//! [`connect_supervised`] and [`ClientBuilder::connect_supervised`] open a reconnecting
//! client over TCP (and TLS); [`ClientBuilder::supervise_with`] over any byte stream;
//! [`WebSocket::supervise`] hands one accepted connection to a supervisor (the server turns
//! keepalive on per connection). Each connection runs as a [`Supervised`] transport, whose
//! errors tell the supervisor's retry policy what they mean ([`Error::failure`]).

use std::future::Future;

use tether_codec::Message;
use tether_heartbeat::{Failure, Probe, Supervisor, SupervisorConfig};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::ClientBuilder;
use crate::error::Error;
use crate::probe::PingProbe;
use crate::supervised::Supervised;
use crate::websocket::WebSocket;

/// Opens a supervised client to `url` with the default [`ClientBuilder`] and the
/// [`PingProbe`]: it probes the server, measures round trips, declares it dead when the
/// answers stop, and reconnects with backoff, all as `config` says.
///
/// The first connection is opened by the supervisor's task, so this returns at once; watch
/// [`Supervisor::state`] or the [`events`](Supervisor::events) to see it open. Messages
/// sent before are kept in the outbox and go out, in order, once it is.
///
/// Must be called within a tokio runtime.
///
/// ```
/// use std::time::Duration;
/// use tether::heartbeat::{Event, KeepaliveConfig, SupervisorConfig};
/// use tether::{connect_supervised, Message, Server, SinkExt, StreamExt};
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
/// let server = Server::bind("127.0.0.1:0").await?;
/// let url = format!("ws://{}/", server.local_addr()?);
/// tokio::spawn(server.serve(|mut ws, _conn| async move {
///     while let Some(Ok(message)) = ws.next().await {
///         if message.is_data() && ws.send(message).await.is_err() {
///             break;
///         }
///     }
/// }));
///
/// let mut config = SupervisorConfig::default();
/// config.set_keepalive(Some(KeepaliveConfig::with_interval(Duration::from_millis(50), None)));
/// let mut client = connect_supervised(&url, &config)?;
/// let mut events = client.events().unwrap();
/// client.send(Message::text("hello")).await?;
/// assert_eq!(client.recv().await, Some(Message::text("hello")));
/// // The server's WebSocket answers the probes by itself: round trips are measured.
/// loop {
///     if let Some(Event::ProbeAcked { rtt: Some(rtt), .. }) = events.recv().await {
///         assert!(rtt < Duration::from_secs(1));
///         break;
///     }
/// }
/// client.close().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::InvalidUrl`] for a URL that cannot open a WebSocket, [`Error::Heartbeat`] for
/// an invalid `config`. Failures to connect are the supervisor's business: it retries
/// those its policy calls retryable and otherwise ends in
/// [`LinkState::Closed`](tether_heartbeat::LinkState::Closed) with the reason.
pub fn connect_supervised(
    url: &str,
    config: &SupervisorConfig,
) -> Result<Supervisor<Message>, Error> {
    ClientBuilder::new().connect_supervised(url, config, PingProbe::new())
}

impl ClientBuilder {
    /// Like [`connect_supervised`], with this builder's headers, subprotocols, limits and
    /// TLS roots for every connection, and the probe of your choice.
    ///
    /// # Errors
    ///
    /// As for [`connect_supervised`].
    pub fn connect_supervised<P: Probe<Message>>(
        &self,
        url: &str,
        config: &SupervisorConfig,
        probe: P,
    ) -> Result<Supervisor<Message>, Error> {
        self.request(url)?;
        let builder = self.clone();
        let url = url.to_owned();
        let connect = move || {
            let builder = builder.clone();
            let url = url.clone();
            async move {
                match builder.connect(&url).await {
                    Ok(ws) => Ok(Supervised(ws)),
                    Err(error) => Err(logged_failure(&url, &error)),
                }
            }
        };
        Ok(Supervisor::connect(config, probe, connect)?)
    }

    /// A supervised client over byte streams that `open` provides (a TCP connection through
    /// a proxy, an in-memory pipe, a TLS stream set up elsewhere): each connection runs the
    /// Upgrade for `url` over a fresh stream from `open`. No TLS is added.
    ///
    /// # Errors
    ///
    /// As for [`connect_supervised`].
    pub fn supervise_with<S, P, F, Fut>(
        &self,
        url: &str,
        config: &SupervisorConfig,
        probe: P,
        mut open: F,
    ) -> Result<Supervisor<Message>, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        P: Probe<Message>,
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = std::io::Result<S>> + Send + 'static,
    {
        self.request(url)?;
        let builder = self.clone();
        let url = url.to_owned();
        let connect = move || {
            let opening = open();
            let builder = builder.clone();
            let url = url.clone();
            async move {
                let upgraded = match opening.await {
                    Ok(io) => builder.handshake(io, &url).await,
                    Err(error) => Err(Error::Io(error)),
                };
                upgraded
                    .map(Supervised)
                    .map_err(|error| logged_failure(&url, &error))
            }
        };
        Ok(Supervisor::connect(config, probe, connect)?)
    }
}

impl<S> WebSocket<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Hands this connection to a supervisor that never reconnects: the server side of the
    /// heartbeat. It answers the peer's probes at once (agreed text pings through `probe`;
    /// Ping frames are answered by the WebSocket), strikes a peer that probes too often
    /// and closes it with 1008, and, when `config` has a keepalive, probes the peer and
    /// closes it with 1011 when it stops answering, so a silent client is reaped within
    /// a bound.
    ///
    /// ```
    /// use tether::heartbeat::SupervisorConfig;
    /// use tether::{accept, ClientBuilder, Message, SinkExt, StreamExt, TextProbe};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let (client_io, server_io) = tokio::io::duplex(4096);
    /// let server = tokio::spawn(async move {
    ///     let mut config = SupervisorConfig::default();
    ///     config.set_keepalive(None); // answer probes, send none
    ///     let ws = accept(server_io).await?;
    ///     let mut supervised = ws.supervise(&config, TextProbe::default())?;
    ///     let first = supervised.recv().await;
    ///     Ok::<_, tether::Error>(first)
    /// });
    /// let mut ws = ClientBuilder::new().handshake(client_io, "ws://localhost/").await?;
    /// ws.send(Message::text("ping 42")).await?;
    /// assert_eq!(ws.next().await.unwrap()?, Message::text("pong 42"));
    /// ws.send(Message::text("hello")).await?;
    /// assert_eq!(server.await??, Some(Message::text("hello")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Heartbeat`] for an invalid `config`.
    pub fn supervise<P: Probe<Message>>(
        self,
        config: &SupervisorConfig,
        probe: P,
    ) -> Result<Supervisor<Message>, Error> {
        Ok(Supervisor::accept(config, probe, Supervised(self))?)
    }
}

/// A client connection that failed or could not open, logged once where it happened.
pub(crate) fn logged_failure(url: &str, error: &Error) -> Failure {
    let failure = error.failure();
    tracing::debug!(%url, %error, %failure, "supervised connection failed");
    failure
}
