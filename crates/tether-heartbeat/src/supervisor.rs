//! The supervisor: a spawned task that owns the transport, and the handle the application
//! keeps (send, receive, watch the state, take the events, steer reconnection).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::{Backoff, ReconnectConfig};
use crate::close::{CloseReason, Failure, Farewell};
use crate::config::KeepaliveConfig;
use crate::error::Error;
use crate::inbox::{inbox, InboxReceiver};
use crate::keepalive::Timing;
use crate::link::{run_link, Command, Ctx, End, Shared};
use crate::outbox::{Outbox, OutboxConfig};
use crate::probe::Probe;
use crate::responder::ResponderConfig;
use crate::retry::{Decision, DefaultRetryPolicy, RetryPolicy};
use crate::splitmix::splitmix64;
use crate::state::{Event, LinkState};
use crate::transport::Transport;

/// Commands in flight from the handle to the task; `Wake`s beyond it are redundant.
const COMMAND_CAPACITY: usize = 16;

/// Everything a supervisor is configured with.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::{KeepaliveConfig, SupervisorConfig};
///
/// let mut keepalive = KeepaliveConfig::default();
/// keepalive.set_interval(Duration::from_secs(5));
/// let mut config = SupervisorConfig::default();
/// config.set_keepalive(Some(keepalive)).set_inbound_capacity(16).set_seed(Some(1));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorConfig {
    keepalive: Option<KeepaliveConfig>,
    reconnect: ReconnectConfig,
    outbox: OutboxConfig,
    responder: ResponderConfig,
    close_grace: Duration,
    inbound_capacity: usize,
    inbound_bytes: usize,
    event_capacity: usize,
    seed: Option<u64>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            keepalive: Some(KeepaliveConfig::default()),
            reconnect: ReconnectConfig::default(),
            outbox: OutboxConfig::default(),
            responder: ResponderConfig::default(),
            close_grace: Duration::from_secs(1),
            inbound_capacity: 256,
            inbound_bytes: 1 << 20,
            event_capacity: 64,
            seed: None,
        }
    }
}

impl SupervisorConfig {
    /// Keepalive probing of the peer. Default on, with [`KeepaliveConfig::default`];
    /// `None` only answers the peer's probes (a server that leaves probing to clients).
    pub fn set_keepalive(&mut self, keepalive: Option<KeepaliveConfig>) -> &mut Self {
        self.keepalive = keepalive;
        self
    }

    /// The value set with [`set_keepalive`](Self::set_keepalive).
    pub fn keepalive(&self) -> Option<KeepaliveConfig> {
        self.keepalive
    }

    /// Reconnection of a client supervisor. Default [`ReconnectConfig::default`].
    pub fn set_reconnect(&mut self, reconnect: ReconnectConfig) -> &mut Self {
        self.reconnect = reconnect;
        self
    }

    /// The value set with [`set_reconnect`](Self::set_reconnect).
    pub fn reconnect(&self) -> ReconnectConfig {
        self.reconnect
    }

    /// Bounds of the outbox, which holds outbound messages until the transport takes
    /// them. Default [`OutboxConfig::default`].
    pub fn set_outbox(&mut self, outbox: OutboxConfig) -> &mut Self {
        self.outbox = outbox;
        self
    }

    /// The value set with [`set_outbox`](Self::set_outbox).
    pub fn outbox(&self) -> OutboxConfig {
        self.outbox
    }

    /// Limits on the peer's probes. Default [`ResponderConfig::default`].
    pub fn set_responder(&mut self, responder: ResponderConfig) -> &mut Self {
        self.responder = responder;
        self
    }

    /// The value set with [`set_responder`](Self::set_responder).
    pub fn responder(&self) -> ResponderConfig {
        self.responder
    }

    /// How long a closing connection may take to flush its close message and see the
    /// peer's end before the transport is dropped. Default 1 s (short: after a heartbeat
    /// death the peer is presumed gone).
    pub fn set_close_grace(&mut self, grace: Duration) -> &mut Self {
        self.close_grace = grace;
        self
    }

    /// The value set with [`set_close_grace`](Self::set_close_grace).
    pub fn close_grace(&self) -> Duration {
        self.close_grace
    }

    /// Inbound messages buffered for the application; when full, reading from the
    /// transport pauses (backpressure). Default 256; at least 1.
    pub fn set_inbound_capacity(&mut self, capacity: usize) -> &mut Self {
        self.inbound_capacity = capacity;
        self
    }

    /// The value set with [`set_inbound_capacity`](Self::set_inbound_capacity).
    pub fn inbound_capacity(&self) -> usize {
        self.inbound_capacity
    }

    /// Bytes of inbound messages (as the probe's `len` counts them) buffered for the
    /// application; once they reach this, reading from the transport pauses until the
    /// application receives (backpressure). Default 1 MiB; at least 1. The buffer holds at
    /// most this plus one message.
    pub fn set_inbound_bytes(&mut self, bytes: usize) -> &mut Self {
        self.inbound_bytes = bytes;
        self
    }

    /// The value set with [`set_inbound_bytes`](Self::set_inbound_bytes).
    pub fn inbound_bytes(&self) -> usize {
        self.inbound_bytes
    }

    /// Events buffered for the application; when full, new events are dropped and
    /// counted. Default 64; at least 1.
    pub fn set_event_capacity(&mut self, capacity: usize) -> &mut Self {
        self.event_capacity = capacity;
        self
    }

    /// The value set with [`set_event_capacity`](Self::set_event_capacity).
    pub fn event_capacity(&self) -> usize {
        self.event_capacity
    }

    /// Seed of the jitter and nonce generator. Default `None`: drawn from the OS.
    /// Fix it for reproducible tests.
    pub fn set_seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.seed = seed;
        self
    }

    /// The value set with [`set_seed`](Self::set_seed).
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// Checks every part, as [`Supervisor::connect`] and [`Supervisor::accept`] do before
    /// anything starts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first value out of range.
    pub fn validate(&self) -> Result<(), Error> {
        self.checked().map(drop)
    }

    /// Validates everything once; gives the keepalive in the form a link starts from.
    fn checked(&self) -> Result<Option<Timing>, Error> {
        self.reconnect.validate()?;
        self.outbox.validate()?;
        self.responder.validate()?;
        if self.inbound_capacity == 0 {
            return Err(Error::InvalidConfig {
                field: "inbound_capacity",
                problem: "must be at least 1",
            });
        }
        if self.inbound_bytes == 0 {
            return Err(Error::InvalidConfig {
                field: "inbound_bytes",
                problem: "must be at least 1",
            });
        }
        if self.event_capacity == 0 {
            return Err(Error::InvalidConfig {
                field: "event_capacity",
                problem: "must be at least 1",
            });
        }
        self.keepalive.as_ref().map(Timing::checked).transpose()
    }
}

/// The application's handle on a supervised connection.
///
/// Dropping it stops the supervisor task at once: the transport is dropped and no task
/// or timer is left behind. [`close`](Self::close) closes gracefully instead.
///
/// See the crate documentation for a client and a server talking through supervisors.
pub struct Supervisor<M> {
    shared: Arc<Shared<M>>,
    commands: mpsc::Sender<Command>,
    inbound: InboxReceiver<M>,
    events: Option<mpsc::Receiver<Event>>,
    state: watch::Receiver<LinkState>,
    len: fn(&M) -> usize,
    reconnects: bool,
    task: Option<JoinHandle<()>>,
}

impl<M> std::fmt::Debug for Supervisor<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("state", &*self.state.borrow())
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

impl<M: Send + 'static> Supervisor<M> {
    /// Spawns a reconnecting client: `connect` opens a transport (it maps its own errors
    /// to a [`Failure`] that says whether to retry), the default retry policy decides,
    /// and the outbox is flushed as soon as a connection is open.
    ///
    /// Must be called within a tokio runtime.
    pub fn connect<T, E, P, C, CFut>(
        config: &SupervisorConfig,
        probe: P,
        connect: C,
    ) -> Result<Self, Error>
    where
        T: Transport<M, E>,
        E: std::error::Error + Send + 'static,
        P: Probe<M>,
        C: FnMut() -> CFut + Send + 'static,
        CFut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let policy = DefaultRetryPolicy::new(config.reconnect.restart_floor);
        Self::connect_with(config, probe, connect, |t| async move { Ok(t) }, policy)
    }

    /// Like [`connect`](Self::connect), with an `on_connected` hook and a retry policy.
    ///
    /// The hook gets each new transport before anything from the outbox is written
    /// (to authenticate or resubscribe) and hands it back; an error from it counts as a
    /// failed attempt.
    pub fn connect_with<T, E, P, C, CFut, H, HFut, R>(
        config: &SupervisorConfig,
        probe: P,
        connect: C,
        on_connected: H,
        policy: R,
    ) -> Result<Self, Error>
    where
        T: Transport<M, E>,
        E: std::error::Error + Send + 'static,
        P: Probe<M>,
        C: FnMut() -> CFut + Send + 'static,
        CFut: Future<Output = Result<T, Failure>> + Send + 'static,
        H: FnMut(T) -> HFut + Send + 'static,
        HFut: Future<Output = Result<T, Failure>> + Send + 'static,
        R: RetryPolicy,
    {
        let (handle, ctx) = Self::parts(config, probe, true)?;
        let reconnect = config.reconnect;
        let task = tokio::spawn(run_client(ctx, reconnect, connect, on_connected, policy));
        Ok(handle.with_task(task))
    }

    /// Spawns a supervisor for one accepted transport (the server side): it answers the
    /// peer's probes at once, strikes peers that probe too often, probes the peer if the
    /// keepalive is on, and closes the connection when the peer is dead. It never
    /// reconnects.
    ///
    /// Must be called within a tokio runtime.
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use tether_heartbeat::{Supervisor, SupervisorConfig, StringProbe};
    /// use tokio_util::codec::{Framed, LinesCodec};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (server_io, client_io) = tokio::io::duplex(1024);
    /// let mut config = SupervisorConfig::default();
    /// config.set_keepalive(None); // answer probes, do not send any
    /// let server_io = Framed::new(server_io, LinesCodec::new());
    /// let _server = Supervisor::accept(&config, StringProbe::default(), server_io).unwrap();
    ///
    /// // A browser-like peer sends the agreed message; the answer comes at once.
    /// let mut peer = Framed::new(client_io, LinesCodec::new());
    /// peer.send("ping 42").await.unwrap();
    /// assert_eq!(peer.next().await.unwrap().unwrap(), "pong 42");
    /// # }
    /// ```
    pub fn accept<T, E, P>(config: &SupervisorConfig, probe: P, transport: T) -> Result<Self, Error>
    where
        T: Transport<M, E>,
        E: std::error::Error + Send + 'static,
        P: Probe<M>,
    {
        let (handle, ctx) = Self::parts(config, probe, false)?;
        let task = tokio::spawn(run_accepted(ctx, transport));
        Ok(handle.with_task(task))
    }

    fn parts<P: Probe<M>>(
        config: &SupervisorConfig,
        probe: P,
        reconnects: bool,
    ) -> Result<(Self, Ctx<M, P>), Error> {
        let keepalive = config.checked()?;
        let mut rng = config.seed.unwrap_or_else(rand::random);
        let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (inbound_tx, inbound_rx) = inbox(config.inbound_capacity, config.inbound_bytes);
        let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
        let initial = if reconnects {
            LinkState::Connecting { attempt: 0 }
        } else {
            LinkState::Open(crate::keepalive::Health::Healthy)
        };
        let (state_tx, state_rx) = watch::channel(initial);
        let shared = Arc::new(Shared::new(Outbox::new(&config.outbox), event_tx, state_tx));
        let ctx = Ctx {
            probe,
            shared: Arc::clone(&shared),
            commands: command_rx,
            inbound: inbound_tx,
            keepalive,
            responder: config.responder,
            close_grace: config.close_grace,
            rng: splitmix64(&mut rng),
        };
        let handle = Supervisor {
            shared,
            commands: command_tx,
            inbound: inbound_rx,
            events: Some(event_rx),
            state: state_rx,
            len: P::len,
            reconnects,
            task: None,
        };
        Ok((handle, ctx))
    }

    fn with_task(mut self, task: JoinHandle<()>) -> Self {
        self.task = Some(task);
        self
    }

    /// Accepts `message` into the outbox, waiting while it is full: it is written as
    /// soon as the link can take it, after every message accepted before it. This is the
    /// backpressure a producer wants (a pipe into a reconnecting client, say): it goes
    /// as fast as the link, and waits through a reconnection instead of losing messages.
    ///
    /// Errors: [`Error::MessageTooLarge`] for a message over the outbox's byte bound
    /// (it could never fit), [`Error::Closed`] once the supervisor stopped (also while
    /// waiting).
    ///
    /// Cancel safety: if the future is dropped before it completes, `message` was not
    /// accepted and is dropped with it; nothing else changes. To keep the message across a
    /// `select!`, wait with [`ready`](Self::ready) (which holds nothing) and then
    /// [`try_send`](Self::try_send).
    ///
    /// With [`Overflow::DropOldest`](crate::Overflow::DropOldest) it never waits: old
    /// messages make room, as with [`try_send`](Self::try_send).
    pub async fn send(&self, mut message: M) -> Result<(), Error> {
        // Room now (the usual case): pushed without setting up a wait. A full outbox
        // refuses it whole (a dropping one has room by definition, as `ready` says).
        match self.push(message) {
            Err((Error::OutboxFull { .. }, back)) => message = back,
            Err((error, _)) => return Err(error),
            Ok(()) => return Ok(()),
        }
        loop {
            self.ready(&message).await?;
            // Another sender on this handle may have taken the room meanwhile: then wait
            // again. `ready` said the message fits, so only `OutboxFull` can repeat.
            match self.push(message) {
                Err((Error::OutboxFull { .. }, back)) => message = back,
                Err((error, _)) => return Err(error),
                Ok(()) => return Ok(()),
            }
        }
    }

    /// Waits until the outbox has room for `message` (it is not consumed). Cancel safe:
    /// it holds nothing. Then [`try_send`](Self::try_send) accepts the message unless
    /// another sender took the room first. The future does not borrow the supervisor, so
    /// it can wait in one `select!` with [`recv`](Self::recv).
    ///
    /// Errors as [`send`](Self::send).
    pub fn ready(&self, message: &M) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let len = (self.len)(message);
        wait_outbox(
            self.shared.clone(),
            self.state.clone(),
            move |outbox, now| outbox.has_room(now, len),
        )
    }

    /// Waits until every message accepted so far has been handed to the transport (the
    /// outbox is empty), through reconnections if need be. Cancel safe, and like
    /// [`ready`](Self::ready) it does not borrow the supervisor.
    ///
    /// Errors: [`Error::Closed`] if the supervisor stopped first.
    pub fn flushed(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        wait_outbox(self.shared.clone(), self.state.clone(), |outbox, _| {
            Ok(outbox.is_empty())
        })
    }

    fn check_open(&self) -> Result<(), Error> {
        check_open(&self.state)
    }

    /// Accepts `message` into the outbox if it has room now, without waiting.
    ///
    /// A full outbox refuses it with [`Error::OutboxFull`] (or, with
    /// [`Overflow::DropOldest`](crate::Overflow::DropOldest), drops the oldest messages
    /// and reports them in an [`Event::OutboxOverflow`]). After the supervisor stopped,
    /// [`Error::Closed`].
    pub fn try_send(&self, message: M) -> Result<(), Error> {
        self.push(message).map_err(|(error, _)| {
            if matches!(error, Error::OutboxFull { .. }) {
                self.shared.emit(Event::OutboxOverflow { messages: 1 });
            }
            error
        })
    }

    /// Pushes `message` into the outbox, or gives it back with the reason it was refused.
    fn push(&self, message: M) -> Result<(), (Error, M)> {
        if let Err(error) = self.check_open() {
            return Err((error, message));
        }
        let len = (self.len)(&message);
        let dropped = self
            .shared
            .outbox()
            .try_push(Instant::now().into_std(), message, len)?;
        if dropped > 0 {
            self.shared
                .emit(Event::OutboxOverflow { messages: dropped });
        }
        // A full command queue already holds a wake-up for the task.
        let _ = self.commands.try_send(Command::Wake);
        Ok(())
    }

    /// The next inbound application message; `None` once the supervisor stopped and
    /// everything received was read.
    pub async fn recv(&mut self) -> Option<M> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Bytes of inbound messages waiting to be received (bounded by
    /// [`SupervisorConfig::inbound_bytes`] plus one message).
    pub fn inbound_bytes(&self) -> usize {
        self.inbound.bytes()
    }

    /// A receiver of the state, starting with the current one.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    /// Takes the event receiver (only the first call gets it).
    pub fn events(&mut self) -> Option<mpsc::Receiver<Event>> {
        self.events.take()
    }

    /// Events dropped because the event channel was full.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events_dropped()
    }

    /// Messages waiting in the outbox.
    pub fn outbox_len(&self) -> usize {
        self.shared.outbox().len()
    }

    /// Closes the current connection (gracefully) and connects again at once, skipping
    /// any backoff wait.
    pub async fn reconnect_now(&self) -> Result<(), Error> {
        self.command(Command::ReconnectNow).await
    }

    /// Closes the current connection (gracefully) and stays disconnected until
    /// [`resume`](Self::resume). The outbox keeps accepting messages.
    pub async fn pause(&self) -> Result<(), Error> {
        self.command(Command::Pause).await
    }

    /// Connects again after [`pause`](Self::pause).
    pub async fn resume(&self) -> Result<(), Error> {
        self.command(Command::Resume).await
    }

    /// Closes gracefully (close message, short grace) and waits for the task to end.
    /// Returns the reason the supervisor stopped with.
    ///
    /// The close message carries [`CloseReason::Local`]'s farewell and text
    /// ([`Farewell::Normal`]); [`close_with`](Self::close_with) chooses them.
    pub async fn close(self) -> CloseReason {
        self.stop(Command::Close(None)).await
    }

    /// Like [`close`](Self::close), with this farewell and text in the close message:
    /// [`Farewell::GoingAway`] when a server shuts down, say (for WebSocket, 1001, RFC 6455
    /// §7.4.1).
    ///
    /// The probe builds the message ([`Probe::close`]); when it cannot (for WebSocket, a
    /// text over 123 bytes), the transport is dropped after the grace without one. The
    /// supervisor stops with [`CloseReason::Local`] all the same.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tether_heartbeat::{CloseReason, Farewell, Inbound, Probe, Supervisor, SupervisorConfig};
    /// use tether_heartbeat::StringProbe;
    /// use tokio_util::codec::{Framed, LinesCodec};
    ///
    /// /// The text probe, with a close message of its own: `close <farewell> <text>`.
    /// struct Lines(StringProbe);
    ///
    /// impl Probe<String> for Lines {
    ///     fn probe(&mut self, nonce: u64) -> String { self.0.probe(nonce) }
    ///     fn classify(&mut self, message: &String) -> Inbound { self.0.classify(message) }
    ///     fn answer(&mut self, probe: &String) -> Option<String> { self.0.answer(probe) }
    ///     fn close(&mut self, farewell: Farewell, text: &str) -> Option<String> {
    ///         Some(format!("close {farewell:?} {text}"))
    ///     }
    ///     fn len(message: &String) -> usize { message.len() }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let (server_io, client_io) = tokio::io::duplex(1024);
    /// let mut config = SupervisorConfig::default();
    /// config.set_keepalive(None);
    /// let server_io = Framed::new(server_io, LinesCodec::new());
    /// let server = Supervisor::accept(&config, Lines(StringProbe::default()), server_io).unwrap();
    ///
    /// let mut peer = Framed::new(client_io, LinesCodec::new());
    /// let reason = server.close_with(Farewell::GoingAway, "server shutting down").await;
    /// assert_eq!(reason, CloseReason::Local);
    /// let close = peer.next().await.unwrap().unwrap();
    /// assert_eq!(close, "close GoingAway server shutting down");
    /// # }
    /// ```
    pub async fn close_with(self, farewell: Farewell, text: &str) -> CloseReason {
        self.stop(Command::Close(Some((farewell, text.into()))))
            .await
    }

    /// Starts a graceful close and returns at once, keeping the handle: keep calling
    /// [`recv`](Self::recv), which still yields the messages that arrive before the
    /// peer's answer to the close (or the close grace ends), then `None`; the final
    /// state says why the supervisor stopped. This is how a client that has said all it
    /// had to say waits for the last replies: [`flushed`](Self::flushed), then
    /// `start_close`, then read to the end.
    ///
    /// Messages still in the outbox are not sent. A second call does nothing; neither
    /// does a call after the supervisor stopped.
    pub async fn start_close(&self) {
        // An error means the task already ended: nothing left to close.
        let _ = self.commands.send(Command::Close(None)).await;
    }

    async fn stop(mut self, command: Command) -> CloseReason {
        // Nobody will receive any more: what arrives while closing is dropped, and a full
        // inbound queue does not hold the close up.
        self.inbound.close();
        // A send error means the task already ended; its final state says why.
        let _ = self.commands.send(command).await;
        if let Some(task) = self.task.take() {
            // A join error is a cancellation or a panic; either way the task is gone.
            let _ = task.await;
        }
        match &*self.state.borrow() {
            LinkState::Closed(reason) => reason.clone(),
            _ => CloseReason::Local,
        }
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        if !self.reconnects {
            return Err(Error::NotReconnecting);
        }
        if self.commands.send(command).await.is_err() {
            let reason = match &*self.state.borrow() {
                LinkState::Closed(reason) => reason.clone(),
                _ => CloseReason::Local,
            };
            return Err(Error::Closed { reason });
        }
        Ok(())
    }
}

/// An error once the supervisor stopped.
fn check_open(state: &watch::Receiver<LinkState>) -> Result<(), Error> {
    match &*state.borrow() {
        LinkState::Closed(reason) => Err(Error::Closed {
            reason: reason.clone(),
        }),
        _ => Ok(()),
    }
}

/// Waits until `ready` says so, looking again whenever the outbox changes or the
/// supervisor stops.
async fn wait_outbox<M>(
    shared: Arc<Shared<M>>,
    state: watch::Receiver<LinkState>,
    mut ready: impl FnMut(&mut Outbox<M>, std::time::Instant) -> Result<bool, Error>,
) -> Result<(), Error> {
    loop {
        let changed = shared.outbox_room();
        tokio::pin!(changed);
        // Enabled before looking, so a change between the look and the wait wakes us.
        changed.as_mut().enable();
        check_open(&state)?;
        if ready(&mut shared.outbox(), Instant::now().into_std())? {
            return Ok(());
        }
        changed.await;
    }
}

/// The inbound application messages, as a stream (the same as [`Supervisor::recv`]).
impl<M> futures_core::Stream for Supervisor<M> {
    type Item = M;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<M>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Outbound application messages, as a sink: the same as [`Supervisor::try_send`], so one loop
/// can drive a supervised connection and a bare one alike.
///
/// `poll_ready` is ready at once (the outbox refuses what does not fit with
/// [`Error::OutboxFull`], it never waits); `poll_flush` too, since the supervisor's task
/// writes as soon as the transport takes. `poll_close` does not close the connection:
/// [`Supervisor::close`] does, and says why it ended.
impl<M: Send + 'static> futures_sink::Sink<M> for Supervisor<M> {
    type Error = Error;

    fn poll_ready(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(self: std::pin::Pin<&mut Self>, message: M) -> Result<(), Error> {
        self.try_send(message)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl<M> Supervisor<M> {
    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<M>> {
        self.inbound.poll_recv(cx)
    }
}

impl<M> Drop for Supervisor<M> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run_accepted<T, M, E, P>(mut ctx: Ctx<M, P>, transport: T)
where
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
{
    let reason = match run_link(&mut ctx, transport).await {
        End::Failed(Failure::Local(reason)) => reason,
        End::Failed(failure) => CloseReason::Ended(Box::new(failure)),
        End::Close | End::ReconnectNow | End::Pause | End::HandleDropped => CloseReason::Local,
    };
    ctx.shared.set_state(LinkState::Closed(reason));
}

/// What the client does after a wait or a link.
enum Next {
    Connect,
    Failed(Failure),
    Pause,
    Stop(CloseReason),
}

async fn run_client<T, M, E, P, C, CFut, H, HFut, R>(
    mut ctx: Ctx<M, P>,
    config: ReconnectConfig,
    mut connect: C,
    mut on_connected: H,
    mut policy: R,
) where
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
    P: Probe<M>,
    C: FnMut() -> CFut,
    CFut: Future<Output = Result<T, Failure>>,
    H: FnMut(T) -> HFut,
    HFut: Future<Output = Result<T, Failure>>,
    R: RetryPolicy,
{
    let mut backoff = Backoff::new(&config, splitmix64(&mut ctx.rng));
    let mut outage = Outage::default();
    let mut paused = false;
    let reason = loop {
        if paused {
            ctx.shared.set_state(LinkState::Paused);
            match wait_for_resume(&mut ctx).await {
                Next::Stop(reason) => break reason,
                _ => paused = false,
            }
        }
        ctx.shared.set_state(LinkState::Connecting {
            attempt: backoff.attempt(),
        });
        let attempt = async {
            let transport = connect().await?;
            on_connected(transport).await
        };
        let next = match with_commands(&mut ctx, attempt).await {
            Err(next) => next,
            Ok(Err(failure)) => Next::Failed(failure),
            Ok(Ok(transport)) => serve_link(&mut ctx, &mut backoff, &mut outage, transport).await,
        };
        let now = Instant::now();
        let failure = match next {
            Next::Stop(reason) => break reason,
            Next::Connect => {
                outage.begin(now);
                continue;
            }
            Next::Pause => {
                outage.begin(now);
                paused = true;
                continue;
            }
            Next::Failed(failure) => failure,
        };
        let since = outage.begin(now);
        match retry_after(
            &mut ctx,
            &config,
            &mut backoff,
            &mut policy,
            failure,
            now - since,
        )
        .await
        {
            Ok(pause) => paused = pause,
            Err(reason) => break reason,
        }
    };
    tracing::info!(%reason, "supervisor stopped");
    ctx.shared.set_state(LinkState::Closed(reason));
}

/// When the client lost its connection, and whether it ever had one (a first connection is
/// `Connected`, a later one `Reconnected` with the downtime).
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    ever_connected: bool,
}

impl Outage {
    /// The outage started at `now`, unless it had already started; returns its start.
    fn begin(&mut self, now: Instant) -> Instant {
        *self.since.get_or_insert(now)
    }

    /// Connected at `now`: the event to emit, and the outage is over.
    fn end(&mut self, now: Instant, attempts: u32) -> Event {
        let event = match self.since.take() {
            Some(since) if self.ever_connected => Event::Reconnected {
                downtime: now - since,
                attempts,
            },
            _ => Event::Connected,
        };
        self.ever_connected = true;
        event
    }
}

/// A connection is up: announces it, runs the link until it ends, and says what the client
/// does next.
async fn serve_link<T, M, E, P>(
    ctx: &mut Ctx<M, P>,
    backoff: &mut Backoff,
    outage: &mut Outage,
    transport: T,
) -> Next
where
    P: Probe<M>,
    T: Transport<M, E>,
    M: Send + 'static,
    E: std::error::Error + 'static,
{
    let now = Instant::now();
    backoff.on_connected(now.into_std());
    ctx.shared.emit(outage.end(now, backoff.attempt()));
    let end = run_link(ctx, transport).await;
    backoff.on_disconnected(Instant::now().into_std());
    match end {
        End::Failed(failure) => Next::Failed(failure),
        End::ReconnectNow => Next::Connect,
        End::Pause => Next::Pause,
        End::Close | End::HandleDropped => Next::Stop(CloseReason::Local),
    }
}

/// After `failure`, `down` into an outage: asks the policy, checks the retry budget, then
/// waits out the backoff while answering commands. `Ok(paused)` to connect again (or to
/// pause first), `Err` with the reason the supervisor stops.
async fn retry_after<M, P, R: RetryPolicy>(
    ctx: &mut Ctx<M, P>,
    config: &ReconnectConfig,
    backoff: &mut Backoff,
    policy: &mut R,
    failure: Failure,
    down: Duration,
) -> Result<bool, CloseReason> {
    tracing::debug!(%failure, "connection lost or attempt failed");
    ctx.shared.emit(Event::Disconnected(failure.clone()));
    let floor = match policy.decide(&failure, backoff.attempt() + 1) {
        Decision::Fatal => return Err(CloseReason::Fatal(Box::new(failure))),
        Decision::Retry { floor } => floor,
    };
    let out_of_retries = config
        .max_retries
        .is_some_and(|max| backoff.attempt() >= max);
    let out_of_time = config.max_elapsed.is_some_and(|max| down >= max);
    if out_of_retries || out_of_time {
        return Err(CloseReason::RetriesExhausted(Box::new(failure)));
    }
    let attempt = backoff.attempt() + 1;
    let delay = backoff.next_delay(floor);
    ctx.shared
        .set_state(LinkState::Reconnecting { attempt, delay });
    ctx.shared.emit(Event::Reconnecting { attempt, delay });
    match with_commands(ctx, tokio::time::sleep(delay)).await {
        Ok(()) | Err(Next::Connect) | Err(Next::Failed(_)) => Ok(false),
        Err(Next::Pause) => Ok(true),
        Err(Next::Stop(reason)) => Err(reason),
    }
}

/// Runs `work` while answering commands; a command that interrupts it wins.
async fn with_commands<M, P, F: Future>(ctx: &mut Ctx<M, P>, work: F) -> Result<F::Output, Next> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Ok(output),
            command = ctx.commands.recv() => match command {
                None | Some(Command::Close(_)) => return Err(Next::Stop(CloseReason::Local)),
                Some(Command::ReconnectNow) => return Err(Next::Connect),
                Some(Command::Pause) => return Err(Next::Pause),
                Some(Command::Wake | Command::Resume) => {}
            },
        }
    }
}

async fn wait_for_resume<M, P>(ctx: &mut Ctx<M, P>) -> Next {
    loop {
        match ctx.commands.recv().await {
            None | Some(Command::Close(_)) => return Next::Stop(CloseReason::Local),
            Some(Command::Resume | Command::ReconnectNow) => return Next::Connect,
            Some(Command::Wake | Command::Pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use tokio_util::codec::{Framed, LinesCodec};

    use super::*;
    use crate::close::code;
    use crate::probe::{Inbound, StringProbe};

    /// The text probe with a close message: `close <code> <text>`, with the RFC 6455 code
    /// the facade sends for each farewell.
    struct Lines(StringProbe);

    impl Probe<String> for Lines {
        fn probe(&mut self, nonce: u64) -> String {
            self.0.probe(nonce)
        }
        fn classify(&mut self, message: &String) -> Inbound {
            self.0.classify(message)
        }
        fn answer(&mut self, probe: &String) -> Option<String> {
            self.0.answer(probe)
        }
        fn close(&mut self, farewell: Farewell, text: &str) -> Option<String> {
            let code = match farewell {
                Farewell::Normal => code::NORMAL,
                Farewell::GoingAway => code::GOING_AWAY,
                Farewell::Policy => code::POLICY_VIOLATION,
                Farewell::Unresponsive => code::INTERNAL_ERROR,
                Farewell::TryAgainLater => code::TRY_AGAIN_LATER,
            };
            Some(format!("close {code} {text}"))
        }
        fn len(message: &String) -> usize {
            message.len()
        }
    }

    /// A server-side supervisor closed by `close`, and the first line its peer reads.
    async fn closed_by<F>(close: impl FnOnce(Supervisor<String>) -> F) -> (CloseReason, String)
    where
        F: Future<Output = CloseReason>,
    {
        let (server_io, client_io) = tokio::io::duplex(1024);
        let mut config = SupervisorConfig::default();
        config.set_seed(Some(3));
        let server_io = Framed::new(server_io, LinesCodec::new());
        let server = Supervisor::accept(&config, Lines(StringProbe::default()), server_io).unwrap();
        let mut peer = Framed::new(client_io, LinesCodec::new());
        let reason = close(server).await;
        let line = peer.next().await.unwrap().unwrap();
        (reason, line)
    }

    #[tokio::test(start_paused = true)]
    async fn rfc6455_7_4_1_close_with_sends_the_given_code_and_text() {
        let (reason, line) = closed_by(|s| async move {
            s.close_with(Farewell::GoingAway, "server shutting down")
                .await
        })
        .await;
        assert_eq!(reason, CloseReason::Local);
        assert_eq!(line, "close 1001 server shutting down");
    }

    #[tokio::test(start_paused = true)]
    async fn close_sends_normal_closure() {
        let (reason, line) = closed_by(Supervisor::close).await;
        assert_eq!(reason, CloseReason::Local);
        assert_eq!(line, "close 1000 closing");
    }

    /// A server-side supervisor with `inbound_bytes` set to 10 whose peer sent `lines`
    /// (unread so far), and the peer.
    async fn unread(
        lines: &[&str],
    ) -> (
        Supervisor<String>,
        Framed<tokio::io::DuplexStream, LinesCodec>,
    ) {
        let (server_io, client_io) = tokio::io::duplex(1024);
        let mut config = SupervisorConfig::default();
        config
            .set_keepalive(None)
            .set_inbound_bytes(10)
            .set_seed(Some(3));
        let server_io = Framed::new(server_io, LinesCodec::new());
        let server = Supervisor::accept(&config, StringProbe::default(), server_io).unwrap();
        let mut peer = Framed::new(client_io, LinesCodec::new());
        for line in lines {
            futures::SinkExt::send(&mut peer, line.to_string())
                .await
                .unwrap();
        }
        // The paused clock advances only once every task waits: the link read what it may.
        tokio::time::sleep(Duration::from_millis(1)).await;
        (server, peer)
    }

    #[tokio::test(start_paused = true)]
    async fn inbound_bytes_at_the_limit_pause_reading() {
        let (mut server, _peer) = unread(&["aaaaa", "bbbbb", "ccccc"]).await;
        // Two lines make 10 bytes, the limit: the third is left to the transport.
        assert_eq!(server.inbound_bytes(), 10);
        assert_eq!(server.recv().await.as_deref(), Some("aaaaa"));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(server.inbound_bytes(), 10);
        assert_eq!(server.recv().await.as_deref(), Some("bbbbb"));
        assert_eq!(server.recv().await.as_deref(), Some("ccccc"));
        assert_eq!(server.inbound_bytes(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn inbound_bytes_one_message_past_the_limit_pause_reading() {
        let (mut server, _peer) = unread(&["aaaa", "bbbb", "cccc", "dddd"]).await;
        // 8 bytes are below the limit, so a third line is read: 12, one message past it.
        assert_eq!(server.inbound_bytes(), 12);
        assert_eq!(server.recv().await.as_deref(), Some("aaaa"));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(server.inbound_bytes(), 12);
        for line in ["bbbb", "cccc", "dddd"] {
            assert_eq!(server.recv().await.as_deref(), Some(line));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn as_a_sink_it_sends_through_the_outbox() {
        let (mut server, mut peer) = unread(&[]).await;
        futures::SinkExt::send(&mut server, "hello".to_string())
            .await
            .unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), "hello");
        let reason = server.close().await;
        assert_eq!(reason, CloseReason::Local);
        let mut closed = Supervisor::<String>::accept(
            &SupervisorConfig::default(),
            StringProbe::default(),
            Framed::new(tokio::io::duplex(64).0, LinesCodec::new()),
        )
        .unwrap();
        closed
            .state()
            .wait_for(|s| matches!(s, LinkState::Closed(_)))
            .await
            .unwrap();
        assert!(matches!(
            futures::SinkExt::send(&mut closed, "late".to_string()).await,
            Err(Error::Closed { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn close_with_while_reconnecting_stops_at_once() {
        let mut config = SupervisorConfig::default();
        config.set_seed(Some(5));
        let client =
            Supervisor::<String>::connect(&config, Lines(StringProbe::default()), || async {
                Err::<Framed<tokio::io::DuplexStream, LinesCodec>, _>(Failure::Timeout)
            })
            .unwrap();
        let mut state = client.state();
        state
            .wait_for(|s| matches!(s, LinkState::Reconnecting { .. }))
            .await
            .unwrap();
        let started = Instant::now();
        let reason = client.close_with(Farewell::GoingAway, "bye").await;
        assert_eq!(reason, CloseReason::Local);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
