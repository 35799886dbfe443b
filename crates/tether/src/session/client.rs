//! The client's session: one stream of messages each way that survives reconnects, over the
//! heartbeat supervisor (docs/sessions.md §4, §8, §11).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use tether_codec::Message;
use tether_heartbeat::{
    DefaultRetryPolicy, Event, LinkState, Overflow, Supervisor, SupervisorConfig,
};
use tether_session::{
    Client, EndpointConfig, Error as SessionError, SessionId, SessionLost, SUBPROTOCOL,
};
use tokio::sync::{mpsc, watch};

use crate::client::ClientBuilder;
use crate::error::Error;
use crate::session::attach::{attach, SessionPolicy};
use crate::session::link::ReadNow;
use crate::session::reading::{Route, SessionProbe};
use crate::session::shared::{Shared, State};
use crate::supervise::logged_failure;

/// The counts of a session, from this side (docs/sessions.md §2, "Counting").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Counts {
    /// Data messages this side numbered and sent (or is about to write).
    pub sent: u64,
    /// Of those, how many the peer acknowledged.
    pub acked: u64,
    /// Data messages received from the peer, each delivered once, in order.
    pub received: u64,
}

/// A client session (`tether.session.v1`): messages sent on it arrive exactly once and in
/// order across any number of reconnects, or the session ends with a typed [`SessionLost`].
///
/// Built on the heartbeat supervisor: Ping frames probe the server, a dead link is
/// dropped and another opened with backoff; each new connection resumes the session and
/// resends what the server did not acknowledge before anything new. Sending waits for
/// room (the replay buffer is the window: [`EndpointConfig`]).
///
/// ```no_run
/// use tether::heartbeat::SupervisorConfig;
/// use tether::session::EndpointConfig;
/// use tether::{ClientBuilder, Message};
///
/// # async fn run() -> Result<(), tether::Error> {
/// let mut session = ClientBuilder::new().session(
///     "ws://127.0.0.1:9001/",
///     &SupervisorConfig::default(),
///     EndpointConfig::default(),
/// )?;
/// session.send(Message::text("order 1")).await?;
/// session.end().await?; // nothing more from us
/// while let Some(message) = session.recv().await {
///     println!("{:?}", message?); // every reply, then the server's end
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Session {
    supervisor: Supervisor<Message>,
    /// The supervisor's state, to refuse sending once it stopped.
    link: watch::Receiver<LinkState>,
    shared: Arc<Shared>,
    max_message: usize,
    reported: bool,
}

impl ClientBuilder {
    /// Opens a session to `url`: every connection offers the subprotocol
    /// `tether.session.v1` (with this builder's headers, proxy, TLS roots and limits),
    /// sends `\0new` or `\0resume`, waits for the answer at most the handshake timeout
    /// ([`Config::set_handshake_timeout`](crate::Config::set_handshake_timeout)), then
    /// replays. `supervisor` sets the heartbeat and backoff, and its outbox's message and
    /// byte bounds bound the messages waiting to be numbered (the session queues them
    /// itself and never drops one: the outbox's maximum age and [`Overflow`] policy do
    /// not apply); `session` sets the replay buffer and acknowledgements.
    ///
    /// A server that does not select the subprotocol ends the session at once (not
    /// retried: [`Error::NoSessions`] from [`Session::send`], `None` from
    /// [`Session::recv`]).
    ///
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidUrl`], [`Error::Heartbeat`] or [`Error::Session`] for an invalid
    /// URL or configuration.
    pub fn session(
        &self,
        url: &str,
        supervisor: &SupervisorConfig,
        session: EndpointConfig,
    ) -> Result<Session, Error> {
        let max_message = session.max_replay_bytes();
        // A session delivers every message it accepted, or ends lost: its outbox never
        // drops one (by age, or the oldest when full), whatever `supervisor` says.
        let mut outbox = supervisor.outbox();
        outbox.set_max_age(None).set_overflow(Overflow::Reject);
        let mut supervisor = supervisor.clone();
        supervisor.set_outbox(outbox);
        let shared = Shared::new(
            Client::new(session)?,
            (outbox.max_messages(), outbox.max_bytes()),
        );
        let mut builder = self.clone();
        builder.subprotocol(SUBPROTOCOL);
        builder.request(url)?;
        let timeout = builder.handshake_timeout();
        let url = url.to_owned();
        let links = Arc::clone(&shared);
        let connect = move || {
            let builder = builder.clone();
            let url = url.clone();
            let shared = Arc::clone(&links);
            async move {
                let ws = builder
                    .connect(&url)
                    .await
                    .map_err(|error| logged_failure(&url, &error))?;
                attach(ws, shared, timeout).await
            }
        };
        let policy = SessionPolicy {
            inner: DefaultRetryPolicy::new(supervisor.reconnect().restart_floor()),
            shared: Arc::clone(&shared),
        };
        let supervisor = Supervisor::connect_with(
            &supervisor,
            SessionProbe::new(Arc::clone(&shared.route)),
            connect,
            |link| async move { Ok(link) },
            policy,
        )?;
        Ok(Session {
            link: supervisor.state(),
            supervisor,
            shared,
            max_message,
            reported: false,
        })
    }
}

impl Session {
    /// Sends `message` on the session, waiting for room (through reconnects): at most as
    /// many messages and bytes as the supervisor's outbox holds wait to be numbered. It is
    /// numbered when a connection takes it and kept until the server acknowledges it; it
    /// arrives exactly once, or the session ends lost.
    ///
    /// Cancel safety: dropped before it completes, `message` was not accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Session`] with [`SessionError::MessageTooLarge`] for a message over the
    /// replay buffer's byte bound, [`SessionError::Ended`] after [`end`](Self::end),
    /// [`SessionError::Lost`] once the session is lost; [`Error::NoSessions`];
    /// [`Error::Heartbeat`] when the supervisor stopped otherwise.
    pub async fn send(&self, mut message: Message) -> Result<(), Error> {
        let len = message.len();
        // Room now (the usual case): queued without setting up a wait.
        loop {
            match self.offer(message)? {
                Ok(()) => return Ok(()),
                Err(back) => message = back,
            }
            self.room(len).await?;
        }
    }

    /// Like [`send`](Self::send), without waiting: a full window refuses the message
    /// ([`Error::Session`] with [`SessionError::Full`]: as many messages or bytes as the
    /// supervisor's outbox holds already wait to be numbered).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn try_send(&self, message: Message) -> Result<(), Error> {
        self.offer(message)?.map_err(|_| {
            let (messages, bytes) = self.shared.lock().accepted();
            Error::Session(SessionError::Full { messages, bytes })
        })
    }

    /// Queues `message` for the link and writes it from this task, if there is room;
    /// gives it back if not.
    fn offer(&self, message: Message) -> Result<Result<(), Message>, Error> {
        // One lock for the checks and the queue: this runs for every message.
        let mut state = self.shared.lock();
        check(&state, &message, self.max_message)?;
        if let Some(error) = closed(&self.link.borrow()) {
            return Err(over_in(&state).unwrap_or(Error::Heartbeat(error)));
        }
        let queued = state.admit(message);
        if queued.is_ok() {
            self.shared.write_now(state);
        }
        Ok(queued)
    }

    /// Waits until the session has room for `message` (not consumed; cancel safe, holds
    /// nothing, borrows nothing): then [`try_send`](Self::try_send) takes it unless
    /// another sender took the room first. For a `select!` that must not lose the
    /// message.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn ready(
        &self,
        message: &Message,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let checked = self.check(message);
        let room = self.room(message.len());
        async move {
            checked?;
            room.await
        }
    }

    /// Waits until every message accepted so far was handed to a connection (numbered,
    /// kept for replay). Cancel safe, borrows nothing.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), once the session or the supervisor stopped.
    pub fn flushed(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.until(State::is_settled)
    }

    /// The next message from the server, each exactly once and in order. When the session
    /// is lost, one `Err` with the outcome and its counts, then `None`; after a normal end
    /// (both sides' `end`, everything acknowledged), `None`.
    ///
    /// While it waits, it reads the connection from the calling task (docs/sessions.md
    /// §9); what the heartbeat's task read while nobody waited comes first.
    ///
    /// Cancel safety: dropped before it completes, no message was taken.
    pub async fn recv(&mut self) -> Option<Result<Message, SessionLost>> {
        let next = {
            let Session {
                supervisor, shared, ..
            } = &mut *self;
            let mut reading = Reading {
                route: &shared.route,
                entered: false,
            };
            std::future::poll_fn(|cx| poll_message(supervisor, shared, &mut reading, cx)).await
        };
        if let Some(message) = next {
            return Some(Ok(message));
        }
        if std::mem::replace(&mut self.reported, true) {
            return None;
        }
        self.lost().map(Err)
    }

    /// Says that this side sends no more (docs/sessions.md §8): `\0end` follows every
    /// message sent before (it is numbered once none waits). Keep calling [`recv`](Self::recv):
    /// the server's messages still arrive until its own `end`, then the session is over
    /// and `recv` gives `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Session`] if the session was lost first; [`Error::Heartbeat`] if the
    /// supervisor stopped.
    pub async fn end(&self) -> Result<(), Error> {
        if let Some(error) = over(&self.shared) {
            return match error {
                // A second call: `end` is on its way already.
                Error::Session(SessionError::Ended) => Ok(()),
                other => Err(other),
            };
        }
        self.running()?;
        let mut state = self.shared.lock();
        state.request_end();
        self.shared.leave_to_link(&state);
        Ok(())
    }

    /// Leaves the session without ending it: the connection closes (1000) and no other
    /// is opened. The server keeps the session for its resume window, then drops it.
    pub async fn close(self) {
        self.supervisor.close().await;
    }

    /// The session id, once a server issued one.
    pub fn id(&self) -> Option<SessionId> {
        self.shared.lock().client.id()
    }

    /// This side's counts now.
    pub fn counts(&self) -> Counts {
        let state = self.shared.lock();
        let endpoint = state.client.endpoint();
        Counts {
            sent: endpoint.sent(),
            acked: endpoint.acked(),
            received: endpoint.received(),
        }
    }

    /// Whether the session ended normally (docs/sessions.md §8): both sides sent `end`
    /// and everything either side sent was acknowledged.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().is_finished()
    }

    /// How the session ended, if it was lost.
    pub fn lost(&self) -> Option<SessionLost> {
        self.shared.lock().client.endpoint().lost().cloned()
    }

    /// The connection's state (connecting, open and its health, backing off, closed).
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.supervisor.state()
    }

    /// The supervisor's events (reconnects, round trips, outbox overflow); only the first
    /// call gets the receiver.
    pub fn events(&mut self) -> Option<mpsc::Receiver<Event>> {
        self.supervisor.events()
    }

    /// Waits until the messages accepted and not numbered yet leave room for one of `len`
    /// bytes, or sending is over.
    fn room(&self, len: usize) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.until(move |state| state.has_room(len) || state.is_ending())
    }

    /// Waits until `done` holds of the session's state; an error if the session is over
    /// (finished, lost, refused) or its supervisor stopped first. Holds nothing, borrows
    /// nothing.
    fn until(
        &self,
        mut done: impl FnMut(&State) -> bool + Send + 'static,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let mut link = self.supervisor.state();
        async move {
            let gone = async {
                loop {
                    if let Some(error) = closed(&link.borrow_and_update()) {
                        return error;
                    }
                    if link.changed().await.is_err() {
                        // The supervisor is gone without saying why: it was dropped.
                        return tether_heartbeat::Error::Closed {
                            reason: tether_heartbeat::CloseReason::Local,
                        };
                    }
                }
            };
            let mut held = false;
            let over = shared.wait(|state| {
                held = done(state);
                held || state.is_over()
            });
            let error = tokio::select! {
                () = over => {
                    if held {
                        return Ok(());
                    }
                    tether_heartbeat::Error::Closed {
                        reason: tether_heartbeat::CloseReason::Local,
                    }
                }
                error = gone => error,
            };
            Err(stopped(&shared, error))
        }
    }

    /// An error once the supervisor stopped: nothing would write what is queued.
    fn running(&self) -> Result<(), Error> {
        match closed(&self.link.borrow()) {
            Some(error) => Err(stopped(&self.shared, error)),
            None => Ok(()),
        }
    }

    fn check(&self, message: &Message) -> Result<(), Error> {
        check(&self.shared.lock(), message, self.max_message)
    }
}

/// The application's task waiting in [`Session::recv`], reading the connection itself
/// while it may (`reading.rs`): wake-ups go to the link's task again when it stops.
struct Reading<'a> {
    route: &'a Route,
    entered: bool,
}

impl Reading<'_> {
    fn leave(&mut self) {
        if std::mem::take(&mut self.entered) {
            self.route.leave();
        }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The next message: what the link's task handed to the supervisor's inbox first, then
/// what the connection has, read from this task while nothing is on its way.
fn poll_message(
    supervisor: &mut Supervisor<Message>,
    shared: &Shared,
    reading: &mut Reading<'_>,
    cx: &mut Context<'_>,
) -> Poll<Option<Message>> {
    if let Poll::Ready(next) = Pin::new(supervisor).poll_next(cx) {
        if next.is_some() {
            shared.lock().take();
        }
        return Poll::Ready(next);
    }
    let Some(writer) = shared.lock().writer().cloned() else {
        // Between connections: the inbox holds this task's waker, what the next link
        // reads wakes it.
        reading.leave();
        return Poll::Pending;
    };
    // Entered (or left entered from an earlier poll): leaving passes on a wake-up that
    // came after this task last polled the connection.
    reading.entered = true;
    let read = writer
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .read_now(shared, cx.waker());
    match read {
        Poll::Ready(ReadNow::Data(message)) => Poll::Ready(Some(message)),
        Poll::Ready(ReadNow::Link) => {
            // The link's task reads on (or what it read is on its way): what it reads
            // reaches the inbox, which holds this task's waker.
            reading.leave();
            Poll::Pending
        }
        Poll::Pending => Poll::Pending,
    }
}

/// Whether `message` may be sent on the session now: data, the session not over, and not
/// over `max_message` bytes.
fn check(state: &State, message: &Message, max_message: usize) -> Result<(), Error> {
    if !message.is_data() {
        return Err(Error::NotData);
    }
    if let Some(error) = over_in(state) {
        return Err(error);
    }
    if message.len() > max_message {
        return Err(Error::Session(SessionError::MessageTooLarge {
            len: message.len(),
            max: max_message,
        }));
    }
    Ok(())
}

/// Why nothing more can be sent on the session, if so.
fn over(shared: &Shared) -> Option<Error> {
    over_in(&shared.lock())
}

/// Why nothing more can be sent on the session in `state`, if so.
fn over_in(state: &State) -> Option<Error> {
    if state.is_refused() {
        return Some(Error::NoSessions);
    }
    if let Some(lost) = state.client.endpoint().lost() {
        return Some(Error::Session(SessionError::Lost(lost.clone())));
    }
    state
        .is_ending()
        .then_some(Error::Session(SessionError::Ended))
}

/// The supervisor's error once `state` says it stopped.
fn closed(state: &LinkState) -> Option<tether_heartbeat::Error> {
    match state {
        LinkState::Closed(reason) => Some(tether_heartbeat::Error::Closed {
            reason: reason.clone(),
        }),
        _ => None,
    }
}

/// The supervisor's error, or the session's reason when that is why it stopped.
fn stopped(shared: &Shared, error: tether_heartbeat::Error) -> Error {
    over(shared).unwrap_or(Error::Heartbeat(error))
}
