//! One connection of a client session, as the heartbeat supervisor's transport: data
//! messages the supervisor hands over are numbered and kept for replay, received ones are
//! counted and acknowledged, control messages stay inside (docs/sessions.md §2-§9).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::Message;
use tether_session::{Client, Error as SessionError, Origin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::error::Error;
use crate::session::outgoing::{self, Goodbye};
use crate::session::wire;
use crate::supervised::{Supervised, SupervisedError};

/// What the client's session handle and its links share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Notified when accepted messages were numbered, or a link ended, while somebody
    /// waits in [`wait`](Self::wait): they look again.
    changed: Notify,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) client: Client<Message>,
    /// Data messages the supervisor handed over while the replay buffer was full, oldest
    /// first: they are numbered before anything else, on this link or the next. The link
    /// takes them without pushing back, so the supervisor can still write its probes (a
    /// server that stops acknowledging must still be judged by the heartbeat).
    pending: VecDeque<Message>,
    /// Messages the application handed over and no link numbered yet (in the outbox or
    /// `pending`), and their bytes: the session admits a message while these stay under
    /// `limits` ([`State::has_room`]), which bounds `pending` and the outbox together.
    accepted: (usize, usize),
    /// The outbox's limits (messages, bytes), which `accepted` keeps to.
    limits: (usize, usize),
    /// Somebody waits in [`Shared::wait`] for a change.
    waiting: bool,
    /// The application said it sends no more ([`Session::end`](super::Session::end)).
    ending: bool,
    /// Its end marker came through the supervisor's outbox, behind every message sent
    /// before it: `end` goes out once nothing is pending.
    end_reached: bool,
    /// The server did not select `tether.session.v1`: there is no session.
    refused: bool,
}

impl State {
    /// Whether the session is over (finished, lost, refused): the supervisor must not
    /// reconnect.
    pub(crate) fn is_over(&self) -> bool {
        let endpoint = self.client.endpoint();
        self.refused || endpoint.is_finished() || endpoint.lost().is_some()
    }

    /// Whether the session ended normally.
    pub(crate) fn is_finished(&self) -> bool {
        self.client.endpoint().is_finished()
    }

    /// Whether every message the application handed over is numbered.
    pub(crate) fn is_settled(&self) -> bool {
        self.accepted.0 == 0
    }

    /// Whether a message of `len` bytes may be accepted now: nothing waits to be numbered,
    /// or what does stays under the outbox's limits with it.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        let ((messages, bytes), (max_messages, max_bytes)) = (self.accepted, self.limits);
        messages == 0 || (messages < max_messages && bytes + len <= max_bytes)
    }

    /// The messages and bytes accepted and not numbered yet.
    pub(crate) fn accepted(&self) -> (usize, usize) {
        self.accepted
    }

    /// Counts a message of `len` bytes as accepted, if there is room.
    pub(crate) fn admit(&mut self, len: usize) -> bool {
        let room = self.has_room(len);
        if room {
            self.accepted.0 += 1;
            self.accepted.1 += len;
        }
        room
    }

    /// Takes back an admission whose message never reached the outbox; returns whether
    /// somebody waits for the room it frees.
    pub(crate) fn unadmit(&mut self, len: usize) -> bool {
        self.accepted.0 = self.accepted.0.saturating_sub(1);
        self.accepted.1 = self.accepted.1.saturating_sub(len);
        std::mem::take(&mut self.waiting)
    }

    /// Numbers `message`, or keeps it pending behind the others while the replay buffer
    /// is full. Returns whether somebody waits for the room numbering frees.
    fn push(&mut self, message: Message) -> Result<bool, SupervisedError> {
        let len = message.len();
        if self.pending.is_empty() {
            let endpoint = self.client.endpoint_mut();
            match endpoint.check_room(0, 0, len) {
                Ok(()) => {
                    endpoint.push(message, len).map_err(over)?;
                    return Ok(self.unadmit(len));
                }
                Err(SessionError::Full { .. }) => {}
                Err(error) => return Err(over(error)),
            }
        }
        self.pending.push_back(message);
        Ok(false)
    }

    /// Numbers pending messages while the replay buffer has room. Returns whether
    /// somebody waits for the room that frees.
    fn number_pending(&mut self) -> Result<bool, SupervisedError> {
        let mut wake = false;
        while let Some(message) = self.pending.front() {
            let len = message.len();
            let endpoint = self.client.endpoint_mut();
            match endpoint.check_room(0, 0, len) {
                Ok(()) => {}
                Err(SessionError::Full { .. }) => break,
                Err(error) => return Err(over(error)),
            }
            let Some(message) = self.pending.pop_front() else {
                break;
            };
            endpoint.push(message, len).map_err(over)?;
            wake |= self.unadmit(len);
        }
        Ok(wake)
    }

    /// The application sends no more: later sends are refused; `end` follows the last
    /// message once the marker arrives ([`END_MARKER`]).
    pub(crate) fn request_end(&mut self) {
        self.ending = true;
    }

    /// Whether the application asked to end.
    pub(crate) fn is_ending(&self) -> bool {
        self.ending
    }

    /// The server does not speak sessions.
    pub(crate) fn refuse(&mut self) {
        self.refused = true;
    }

    /// Whether the server did not speak sessions.
    pub(crate) fn is_refused(&self) -> bool {
        self.refused
    }

    /// Asks the endpoint for `end` once nothing is pending: `end` is numbered after every
    /// message the application sent before asking.
    fn settle(&mut self) {
        if self.end_reached && self.pending.is_empty() && !self.client.endpoint().is_ending() {
            self.client.endpoint_mut().finish();
        }
    }
}

impl Shared {
    /// A session's shared state; `limits` are the supervisor outbox's (messages, bytes).
    pub(crate) fn new(client: Client<Message>, limits: (usize, usize)) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                client,
                pending: VecDeque::new(),
                accepted: (0, 0),
                limits,
                waiting: false,
                ending: false,
                end_reached: false,
                refused: false,
            }),
            changed: Notify::new(),
        })
    }

    /// Waits until `done` holds: it is checked now and after each change that may make it
    /// hold (messages numbered, an admission taken back, a link ended). Cancel safe: it
    /// holds nothing.
    pub(crate) async fn wait(&self, mut done: impl FnMut(&State) -> bool) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if done(&state) {
                    return;
                }
                state.waiting = true;
            }
            notified.await;
        }
    }

    /// Wakes whoever waits in [`wait`](Self::wait).
    pub(crate) fn wake(&self) {
        self.changed.notify_waiters();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the counts as they were at the panic: the
        // session state is still consistent enough to report (every method leaves it so).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`Session::end`](super::Session::end) puts in the supervisor's outbox: it reaches
/// the link behind every message sent before it, so `end` is numbered after them. The
/// application cannot send it (a session refuses control frames), and the link never
/// writes it.
pub(crate) const END_MARKER: Message =
    Message::Pong(bytes::Bytes::from_static(b"tether.session.v1 end marker"));

/// The error that ends a link because the session is over: never retried.
fn over(error: SessionError) -> SupervisedError {
    SupervisedError::from(Error::Session(error))
}

/// A WebSocket carrying an attached session (its `\0session` answer arrived).
pub(crate) struct SessionLink<S> {
    ws: Supervised<S>,
    shared: Arc<Shared>,
    /// When an acknowledgement falls due.
    timer: Pin<Box<Sleep>>,
    /// Where the link is in saying goodbye (session finished or lost here).
    goodbye: Goodbye,
    /// Written by a pump that left the flush to its caller.
    unflushed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> SessionLink<S> {
    pub(crate) fn new(ws: Supervised<S>, shared: Arc<Shared>) -> Self {
        SessionLink {
            ws,
            shared,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            goodbye: Goodbye::None,
            unflushed: false,
        }
    }

    /// Writes what the session has to say (pongs, acks, replay, numbered messages, `end`,
    /// `lost`), then flushes if `flush` (else the caller flushes: the supervisor feeds a
    /// batch of messages through `poll_ready` and `start_send`, then flushes once).
    /// Pending while the WebSocket's write buffer is full.
    fn pump(&mut self, cx: &mut Context<'_>, flush: bool) -> Poll<Result<(), SupervisedError>> {
        if self.goodbye == Goodbye::Closed {
            // Our close is queued: nothing more may be written, only flushed.
            return Pin::new(&mut self.ws).poll_flush(cx);
        }
        loop {
            // At most one clock read for this pass (the ack deadline is in milliseconds),
            // and none while the ack timer says the deadline has not come; a pass after
            // the timer fired looks again.
            let mut now = None;
            let mut wrote = false;
            while self.goodbye != Goodbye::Closed {
                ready!(Pin::new(&mut self.ws).poll_ready(cx))?;
                let mut state = self.shared.lock();
                if state.number_pending()? {
                    self.shared.wake();
                }
                state.settle();
                let endpoint = state.client.endpoint_mut();
                let timer = self.timer.as_ref().get_ref();
                let now = *now
                    .get_or_insert_with(|| outgoing::write_time(endpoint.poll_timeout(), timer));
                let next = outgoing::next(endpoint, now, &mut self.goodbye);
                let Some(message) = next else {
                    break;
                };
                drop(state);
                Pin::new(&mut self.ws).start_send(message)?;
                wrote = true;
            }
            self.unflushed |= wrote;
            if self.unflushed && flush {
                ready!(Pin::new(&mut self.ws).poll_flush(cx))?;
                self.unflushed = false;
            }
            let due = self.shared.lock().client.endpoint().poll_timeout();
            let Some(due) = due else {
                return Poll::Ready(Ok(()));
            };
            let due = Instant::from_std(due);
            // Moved only when the deadline moves: a reset re-registers the timer.
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Takes in one received message: data comes out unstuffed, control messages are the
    /// session's own (`None`).
    fn receive(&mut self, message: Message) -> Result<Option<Message>, SupervisedError> {
        let mut state = self.shared.lock();
        let endpoint = state.client.endpoint_mut();
        let Some((text, payload)) = wire::payload(&message) else {
            if let Message::Close(Some(frame)) = &message {
                // docs/sessions.md §6: a close with a lost reason's code ends the session
                // even without a `\0lost` message.
                endpoint.closed_with(frame.code.0);
            }
            return Ok(Some(message));
        };
        let now = outgoing::receive_time(endpoint.poll_timeout());
        let incoming = endpoint.handle(now, text, payload);
        match incoming {
            Ok(tether_session::Incoming::Data { skip }) => Ok(Some(wire::unstuffed(message, skip))),
            Ok(tether_session::Incoming::Control(_)) => Ok(None),
            Err(lost) if lost.origin == Origin::Local => {
                // Our `\0lost protocol` and the close go out with the next pump.
                drop(state);
                tracing::warn!(%lost, "session lost");
                Ok(None)
            }
            Err(lost) => Err(over(SessionError::Lost(lost))),
        }
    }
}

impl<S> Drop for SessionLink<S> {
    fn drop(&mut self) {
        // Whoever waits looks again: the session may be over.
        self.shared.wake();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for SessionLink<S> {
    type Item = Result<Message, SupervisedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(Err(error)) = this.pump(cx, true) {
                return Poll::Ready(Some(Err(error)));
            }
            let Some(item) = ready!(Pin::new(&mut this.ws).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            match item.and_then(|message| this.receive(message)) {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => continue,
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for SessionLink<S> {
    type Error = SupervisedError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.pump(cx, false))?;
        if this.goodbye == Goodbye::Closed {
            // The session said goodbye on this connection; the supervisor's last writes
            // (probes) wait until the peer's close ends the stream.
            return Poll::Pending;
        }
        // Not held back by a full replay buffer: data then waits in `pending`, and probes
        // still go out.
        Pin::new(&mut this.ws).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if message == END_MARKER {
            let mut state = this.shared.lock();
            state.end_reached = true;
            state.settle();
            drop(state);
            // `end` goes out with the next pump.
            return Ok(());
        }
        if !message.is_data() {
            // Probes, pongs and closes belong to the connection, not the session.
            return Pin::new(&mut this.ws).start_send(message);
        }
        let wake = this.shared.lock().push(message)?;
        if wake {
            this.shared.wake();
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.pump(cx, true))?;
        Pin::new(&mut this.ws).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.get_mut().ws).poll_close(cx)
    }
}
