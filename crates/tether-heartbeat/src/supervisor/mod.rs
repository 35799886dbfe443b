//! The supervisor: a spawned task that owns the transport, and the handle the application
//! keeps (send, receive, watch the state, take the events, steer reconnection).
//!
//! This file holds the handle; `config` what it is configured with, `task` the spawned task
//! (one link at a time, and the client's waits, retries and pauses between links).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::close::{CloseReason, Failure, Farewell};
use crate::error::Error;
use crate::inbox::{inbox, InboxReceiver};
use crate::link::{Command, Ctx, Shared};
use crate::outbox::Outbox;
use crate::probe::Probe;
use crate::retry::{DefaultRetryPolicy, RetryPolicy};
use crate::splitmix::splitmix64;
use crate::state::{Event, LinkState};
use crate::transport::Transport;

/// Commands in flight from the handle to the task; `Wake`s beyond it are redundant.
const COMMAND_CAPACITY: usize = 16;

mod config;
mod task;

use self::task::{run_accepted, run_client};
#[cfg(test)]
mod tests;

pub use config::SupervisorConfig;

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
