//! What a client session's handle ([`Session`](super::Session)) and its links share: the
//! sans-IO client, the data waiting for room in the replay buffer, and the count of messages
//! accepted and not yet numbered that bounds it (docs/sessions.md §5).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_codec::Message;
use tether_session::{Client, Error as SessionError};
use tokio::sync::Notify;

use crate::error::Error;
use crate::supervised::SupervisedError;

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

    /// Counts an admitted message of `len` bytes as no longer waiting: numbered, or never
    /// handed to the outbox after all. Returns whether somebody waits for the room it frees.
    pub(crate) fn unadmit(&mut self, len: usize) -> bool {
        self.accepted.0 = self.accepted.0.saturating_sub(1);
        self.accepted.1 = self.accepted.1.saturating_sub(len);
        std::mem::take(&mut self.waiting)
    }

    /// Numbers `message`, or keeps it pending behind the others while the replay buffer
    /// is full. Returns whether somebody waits for the room numbering frees.
    pub(super) fn push(&mut self, message: Message) -> Result<bool, SupervisedError> {
        self.pending.push_back(message);
        self.number_pending()
    }

    /// Numbers pending messages while the replay buffer has room. Returns whether
    /// somebody waits for the room that frees.
    pub(super) fn number_pending(&mut self) -> Result<bool, SupervisedError> {
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

    /// The end marker came through the outbox: `end` follows once nothing is pending.
    pub(super) fn reach_end(&mut self) {
        self.end_reached = true;
        self.settle();
    }

    /// Asks the endpoint for `end` once nothing is pending: `end` is numbered after every
    /// message the application sent before asking.
    pub(super) fn settle(&mut self) {
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
pub(super) fn over(error: SessionError) -> SupervisedError {
    SupervisedError::from(Error::Session(error))
}
