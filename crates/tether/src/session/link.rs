//! One connection of a client session, as the heartbeat supervisor's transport: the data
//! the application queued in the session (not in the supervisor's outbox) is numbered, kept
//! for replay and written whenever the supervisor polls the link; received data is counted
//! and acknowledged, control messages stay inside (docs/sessions.md §2-§9). What the
//! supervisor itself writes (probes, pongs, its close) goes through the sink.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use tether_codec::Message;
use tether_session::{Error as SessionError, Origin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use crate::session::outgoing::{self, Goodbye};
use crate::session::shared::{over, Shared};
use crate::session::wire;
use crate::supervised::{Supervised, SupervisedError};

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
    /// Pending while the WebSocket's write buffer is full. The application's next message
    /// wakes the task that called it.
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
                state.register_link(cx.waker());
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
        // Not held back by a full replay buffer: data then waits in the session's queue,
        // and probes still go out.
        Pin::new(&mut this.ws).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        // Only the supervisor's own messages come this way (probes, pongs, its close): the
        // session's data does not cross its outbox.
        let this = self.get_mut();
        if matches!(message, Message::Close(_)) {
            // The supervisor closes this connection: nothing of the session follows.
            this.goodbye = Goodbye::Closed;
        }
        Pin::new(&mut this.ws).start_send(message)
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
