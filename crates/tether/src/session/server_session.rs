//! The application's end of a server session: called once per session, not per
//! connection, it lives across every reconnect of the client.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use tether_codec::Message;
use tether_session::{Control, Error as SessionError, Incoming, SessionId, SessionLost};

use crate::error::Error;
use crate::session::client::Counts;
use crate::session::state::{Shared, State};
use crate::session::{outgoing, wire};

/// One session on the server: the client's messages, each exactly once and in order,
/// whatever happens to the connections under it; and what the application sends back,
/// kept until the client acknowledges it and resent after a resume.
///
/// Given to the handler of [`Sessions`](crate::session::Sessions). Dropping it ends the
/// session for sending (`end` after what was sent) and discards what arrives later.
pub struct ServerSession {
    shared: Arc<Shared>,
    reported: bool,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    pub(crate) fn new(shared: Arc<Shared>) -> ServerSession {
        ServerSession {
            shared,
            reported: false,
        }
    }

    /// The session's id (a bearer secret: do not log it where others read).
    pub fn id(&self) -> SessionId {
        self.shared.id
    }

    /// The client's next message. `None` once the client ended its side (its `end`) and
    /// everything before was read, or after the one `Err` that says the session was lost
    /// (resume window passed, parked sessions over the limit, a protocol error...).
    pub async fn recv(&mut self) -> Option<Result<Message, SessionLost>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// What [`recv`](Self::recv) returns now, if anything (`None`: wait). Queued data is
    /// counted here, as the application takes it; `reader` is the task taking it.
    fn poll_state(
        state: &mut State,
        reported: &mut bool,
        reader: &Waker,
    ) -> Option<Option<Result<Message, SessionLost>>> {
        while let Some(message) = state.take(reader) {
            let Some((text, payload)) = wire::payload(&message) else {
                continue;
            };
            let deadline = state.endpoint.poll_timeout();
            // The count an `end` carried was taken when it arrived; in order, only the end
            // itself is left (with the count as it stands, which never goes back).
            let handled = match tether_session::classify(text, payload) {
                Ok(Incoming::Control(Control::End(_))) => {
                    let acked = state.endpoint.acked();
                    state
                        .endpoint
                        .handle_control(Control::End(acked))
                        .map(|()| None)
                }
                _ => {
                    let now = outgoing::receive_time(deadline);
                    let handled = state.endpoint.handle(now, text, payload);
                    handled.map(|incoming| match incoming {
                        Incoming::Data { skip } => Some(skip),
                        Incoming::Control(_) => None,
                    })
                }
            };
            // Counted here, after the connection may have looked for the last time: it is
            // woken when the count starts an ack delay (it arms its timer) or `end` asks
            // for an ack at once (§5), or the ack would wait for the next message.
            if deadline.is_none() || !matches!(handled, Ok(Some(_))) {
                state.wake_link(Some(reader));
            }
            match handled {
                Ok(Some(skip)) => return Some(Some(Ok(wire::unstuffed(message, skip)))),
                // The client's `end`: what follows is the end of its input.
                Ok(None) => {}
                Err(_) => break,
            }
        }
        if let Some(lost) = state.endpoint.lost() {
            let first = !std::mem::replace(reported, true);
            return Some(first.then(|| Err(lost.clone())));
        }
        state.endpoint.peer_end().map(|_| None)
    }

    /// Sends `message` on the session, waiting while the replay buffer is full (the
    /// client's acknowledgements make room). Written at once if a connection carries the
    /// session, else after the client resumes. Cancel safe: dropped before it completes,
    /// `message` was not accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Session`]: lost, ended by [`end`](Self::end), or a message larger than the
    /// replay buffer's byte bound. [`Error::NotData`] for a control frame.
    pub async fn send(&self, message: Message) -> Result<(), Error> {
        if !message.is_data() {
            return Err(Error::NotData);
        }
        let len = message.len();
        let mut message = Some(message);
        // Room now (the usual case): no wake-up to register.
        if self.push_now(&mut message, len).await? {
            return Ok(());
        }
        loop {
            let notified = self.shared.app_changed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.push_now(&mut message, len).await? {
                return Ok(());
            }
            notified.await;
        }
    }

    /// [`pushed`](Self::pushed), at once, by the task sending: a connection running this
    /// handler is not woken by its own handler's message.
    async fn push_now(&self, message: &mut Option<Message>, len: usize) -> Result<bool, Error> {
        std::future::poll_fn(|cx| Poll::Ready(self.pushed(message, len, cx.waker()))).await
    }

    /// Pushes `message` (taken out of the option) if the replay buffer has room for it
    /// now; `false`: full, the message is still there. `sender` is the task sending.
    fn pushed(
        &self,
        message: &mut Option<Message>,
        len: usize,
        sender: &Waker,
    ) -> Result<bool, Error> {
        let mut state = self.shared.lock();
        match state.endpoint.check_room(0, 0, len) {
            Ok(()) => {
                if let Some(message) = message.take() {
                    state.endpoint.push(message, len)?;
                    state.wake_link(Some(sender));
                }
                Ok(true)
            }
            Err(SessionError::Full { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Like [`send`](Self::send), without waiting: a full replay buffer refuses the
    /// message ([`SessionError::Full`]).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), and `Full`.
    pub fn try_send(&self, message: Message) -> Result<(), Error> {
        if !message.is_data() {
            return Err(Error::NotData);
        }
        let len = message.len();
        let mut state = self.shared.lock();
        state.endpoint.push(message, len)?;
        state.wake_link(None);
        Ok(())
    }

    /// This side sends no more: `end` goes out after everything sent. The session is
    /// over once the client ended too and each side acknowledged the other's messages
    /// (docs/sessions.md §8).
    pub fn end(&self) {
        let mut state = self.shared.lock();
        state.endpoint.finish();
        state.wake_link(None);
    }

    /// This side's counts now.
    pub fn counts(&self) -> Counts {
        let state = self.shared.lock();
        Counts {
            sent: state.endpoint.sent(),
            acked: state.endpoint.acked(),
            received: state.endpoint.received(),
        }
    }

    /// Whether the session ended normally.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().endpoint.is_finished()
    }

    /// How the session ended, if it was lost.
    pub fn lost(&self) -> Option<SessionLost> {
        self.shared.lock().endpoint.lost().cloned()
    }
}

/// The client's messages as a stream: [`recv`](ServerSession::recv), for `StreamExt`.
impl Stream for ServerSession {
    type Item = Result<Message, SessionLost>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let ServerSession { shared, reported } = self.get_mut();
        let mut state = shared.lock();
        match ServerSession::poll_state(&mut state, reported, cx.waker()) {
            Some(item) => Poll::Ready(item),
            None => {
                // Under the lock that delivery takes too: no message slips in between.
                state.register_reader(cx.waker());
                Poll::Pending
            }
        }
    }
}

impl Drop for ServerSession {
    fn drop(&mut self) {
        self.shared.lock().abandon();
    }
}
