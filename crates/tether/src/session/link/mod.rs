//! One connection of a client session, as the heartbeat supervisor's transport: the data
//! the application queued in the session (not in the supervisor's outbox) is numbered, kept
//! for replay and written whenever the supervisor polls the link, or at once by the
//! application's own task ([`Shared::write_now`]); received data is counted and
//! acknowledged, control messages stay inside (docs/sessions.md §2-§9); the application's
//! task also reads the connection itself while it waits in `recv` (`read.rs`). What the
//! supervisor itself writes (probes, pongs, its close) goes through the sink.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use crate::session::outgoing::{self, Goodbye};
use crate::session::shared::Shared;
use crate::supervised::{Supervised, SupervisedError};

mod read;

use read::receive;
pub(crate) use read::ReadNow;

/// A WebSocket carrying an attached session (its `\0session` answer arrived).
pub(crate) struct SessionLink<S> {
    writer: Arc<Mutex<Writer<S>>>,
    shared: Arc<Shared>,
}

/// The writing half of a link, shared with the application's task: a send writes from
/// there at once (one task poll per message, not two), with the link task's waker, so
/// whatever has to wait (a full socket, the ack timer) wakes the link's task as before.
pub(crate) struct Writer<S> {
    ws: Supervised<S>,
    /// When an acknowledgement falls due.
    timer: Pin<Box<Sleep>>,
    /// The timer was polled at its deadline and holds the link task's waker.
    armed: bool,
    /// Where the link is in saying goodbye (session finished or lost here).
    goodbye: Goodbye,
    /// Written by a pump that left the flush to its caller.
    unflushed: bool,
    /// An ack due by count was left for the next write: the next pump writes it.
    deferred: bool,
    /// An error a write from the application's task met: the link reports it when the
    /// supervisor polls it next.
    failed: Option<SupervisedError>,
    /// What the application's task read and left to the link's task, already taken in (a
    /// Ping, Pong or Close frame, an error, the end): the link's next read gives it.
    for_link: Option<Option<Result<Message, SupervisedError>>>,
    /// A data message the application's task read made an ack due by count or bytes: the
    /// next pump writes it (a send's, or the application's next read's).
    ack_held: bool,
    /// The supervisor dropped this link: nothing more may be read from it (what arrives
    /// belongs to no connection the session is attached to).
    detached: bool,
}

/// A link's writer as the session's shared state holds it (the socket type erased).
pub(crate) trait Pump: Send {
    /// Writes and flushes what the session has to say, with `cx` the link task's context.
    /// Returns whether it is all written and nothing needs the link's task (else the
    /// caller wakes it).
    fn write_now(&mut self, shared: &Shared, cx: &mut Context<'_>) -> bool;

    /// Reads the next data message for the application's task (`app` its waker), the
    /// connection polled with the session's route waker (`reading.rs`). Wake-ups go to
    /// `app` from the moment it polls the connection: not when it returns
    /// [`ReadNow::Link`] at once.
    fn read_now(&mut self, shared: &Shared, app: &Waker) -> Poll<ReadNow>;
}

/// The writer of the attached link, if any, held by [`Shared`].
#[derive(Clone)]
pub(crate) struct LinkWriter(pub(crate) Arc<Mutex<dyn Pump>>);

impl fmt::Debug for LinkWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkWriter")
    }
}

impl LinkWriter {
    fn is<T: ?Sized>(&self, other: &Arc<Mutex<T>>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(other))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> SessionLink<S> {
    pub(crate) fn new(ws: Supervised<S>, shared: Arc<Shared>) -> Self {
        let writer = Arc::new(Mutex::new(Writer {
            ws,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: false,
            goodbye: Goodbye::None,
            unflushed: false,
            deferred: false,
            failed: None,
            for_link: None,
            ack_held: false,
            detached: false,
        }));
        let erased: Arc<Mutex<dyn Pump>> = writer.clone();
        shared.lock().set_writer(Some(LinkWriter(erased)));
        SessionLink { writer, shared }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Pump for Writer<S> {
    fn write_now(&mut self, shared: &Shared, cx: &mut Context<'_>) -> bool {
        self.write_through(shared, cx)
    }

    fn read_now(&mut self, shared: &Shared, app: &Waker) -> Poll<ReadNow> {
        self.read(shared, app)
    }
}

/// Whether a pump flushes what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flush {
    /// No: the caller flushes (the supervisor feeds a batch through `poll_ready` and
    /// `start_send`, then flushes once).
    No,
    Yes,
    /// Yes, but an ack due by count with nothing else to write waits for the next write.
    HoldingAcks,
}

/// The writer, locked. A panic while it was held left the WebSocket as a failed write
/// leaves it: the link then fails on its own errors.
fn lock<S>(writer: &Mutex<Writer<S>>) -> MutexGuard<'_, Writer<S>> {
    writer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writer<S> {
    /// [`Pump::write_now`]: a pump that flushes, from a task other than the link's, with
    /// `cx` the link task's context; an error is kept for the link to report.
    fn write_through(&mut self, shared: &Shared, cx: &mut Context<'_>) -> bool {
        if self.failed.is_some() || self.goodbye != Goodbye::None {
            return false;
        }
        match self.pump(shared, cx, Flush::Yes) {
            Poll::Ready(Ok(())) => !self.unflushed && self.goodbye == Goodbye::None,
            Poll::Ready(Err(error)) => {
                self.failed = Some(error);
                false
            }
            Poll::Pending => false,
        }
    }

    /// Whether a pump may have something to do: marked due (a message received, data left
    /// to the link), an ack held back, bytes not flushed, a goodbye under way, or the ack
    /// timer fired. (A deadline set since the last pump came with a received message,
    /// which marked it due.)
    fn needs_pump(&self, shared: &Shared) -> bool {
        shared.take_due()
            || self.deferred
            || self.unflushed
            || self.goodbye != Goodbye::None
            || (self.armed && self.timer.is_elapsed())
    }

    /// Writes what the session has to say (pongs, acks, replay, numbered messages, `end`,
    /// `lost`), then flushes as `flush` says. Pending while the WebSocket's write buffer is
    /// full. The application's next message wakes the task that called it.
    fn pump(
        &mut self,
        shared: &Shared,
        cx: &mut Context<'_>,
        flush: Flush,
    ) -> Poll<Result<(), SupervisedError>> {
        if self.goodbye == Goodbye::Closed {
            // Our close is queued: nothing more may be written, only flushed.
            return Pin::new(&mut self.ws).poll_flush(cx);
        }
        // Whatever was marked due before this pass is looked at by it, an ack held by the
        // application's read too.
        shared.take_due();
        self.ack_held = false;
        loop {
            // At most one clock read for this pass (the ack deadline is in milliseconds),
            // and none while the ack timer says the deadline has not come; a pass after
            // the timer fired looks again.
            let mut now = None;
            let mut wrote = false;
            while self.goodbye != Goodbye::Closed {
                ready!(Pin::new(&mut self.ws).poll_ready(cx))?;
                let mut state = shared.lock();
                state.register_link(cx.waker());
                if state.number_pending()? {
                    shared.wake();
                }
                state.settle();
                let endpoint = state.client.endpoint_mut();
                if flush == Flush::HoldingAcks
                    && !std::mem::take(&mut self.deferred)
                    && endpoint.only_routine_ack()
                {
                    // An ack due by count (every `ack_every` messages, or bytes) and
                    // nothing else: it waits for the next write, which usually follows at
                    // once from the application and carries it (one send, one segment for
                    // the peer to read, not two). The link's task, woken now, writes it on
                    // its next poll if nothing else did.
                    self.deferred = true;
                    cx.waker().wake_by_ref();
                    break;
                }
                self.deferred = false;
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
            if self.unflushed && flush != Flush::No {
                ready!(Pin::new(&mut self.ws).poll_flush(cx))?;
                self.unflushed = false;
            }
            let due = shared.lock().client.endpoint().poll_timeout();
            let Some(due) = due else {
                return Poll::Ready(Ok(()));
            };
            let due = Instant::from_std(due);
            // Moved only when the deadline moves: a reset re-registers the timer.
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
                self.armed = false;
            }
            // Polled once per deadline: it keeps the link task's waker until it fires
            // (every pump runs with that waker), so polling again on every message would
            // only register it again.
            if self.armed && !self.timer.is_elapsed() {
                return Poll::Ready(Ok(()));
            }
            self.armed = outgoing::poll_timer(self.timer.as_mut(), cx).is_pending();
            if self.armed {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S> Drop for SessionLink<S> {
    fn drop(&mut self) {
        // Under the writer's lock: an application's task about to read through it finds
        // it detached.
        lock(&self.writer).detached = true;
        let mut state = self.shared.lock();
        if state.writer().is_some_and(|writer| writer.is(&self.writer)) {
            state.set_writer(None);
        }
        drop(state);
        // Whoever waits looks again: the session may be over.
        self.shared.wake();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for SessionLink<S> {
    type Item = Result<Message, SupervisedError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut writer = lock(&this.writer);
        if let Some(error) = writer.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if let Some(item) = writer.for_link.take() {
            // Read by the application's task, taken in already.
            return Poll::Ready(item);
        }
        this.shared.route.link_polls(cx.waker());
        loop {
            // A pump only when something may be due: the application's task wrote what it
            // sent already, and a read that took in nothing new leaves nothing to say.
            if writer.needs_pump(&this.shared) {
                if let Poll::Ready(Err(error)) = writer.pump(&this.shared, cx, Flush::HoldingAcks) {
                    return Poll::Ready(Some(Err(error)));
                }
            }
            // With the route's waker: while the application waits in `recv`, what arrives
            // wakes it, and it reads.
            let mut read_cx = Context::from_waker(&this.shared.route_waker);
            let Some(item) = ready!(Pin::new(&mut writer.ws).poll_next(&mut read_cx)) else {
                return Poll::Ready(None);
            };
            match item.and_then(|message| receive(&this.shared, message)) {
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
        let mut writer = lock(&this.writer);
        writer.failed.take().map_or(Ok(()), Err)?;
        ready!(writer.pump(&this.shared, cx, Flush::No))?;
        if writer.goodbye == Goodbye::Closed {
            // The session said goodbye on this connection; the supervisor's last writes
            // (probes) wait until the peer's close ends the stream.
            return Poll::Pending;
        }
        // Not held back by a full replay buffer: data then waits in the session's queue,
        // and probes still go out.
        Pin::new(&mut writer.ws).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        // Only the supervisor's own messages come this way (probes, pongs, its close): the
        // session's data does not cross its outbox.
        let mut writer = lock(&self.writer);
        if matches!(message, Message::Close(_)) {
            // The supervisor closes this connection: nothing of the session follows.
            writer.goodbye = Goodbye::Closed;
        }
        Pin::new(&mut writer.ws).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let mut writer = lock(&this.writer);
        writer.failed.take().map_or(Ok(()), Err)?;
        ready!(writer.pump(&this.shared, cx, Flush::Yes))?;
        Pin::new(&mut writer.ws).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut lock(&self.writer).ws).poll_close(cx)
    }
}
