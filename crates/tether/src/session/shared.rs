//! What a client session's handle ([`Session`](super::Session)) and its links share: the
//! sans-IO client, the data the application handed over and no link numbered yet, and its
//! bound (docs/sessions.md §5).
//!
//! The application's data goes straight into this queue and wakes the link (it does not
//! cross the supervisor's outbox): the link numbers it, behind what it replays, and writes
//! it; the supervisor's own messages (probes, pongs, the close) go through the link's sink
//! and are never queued behind it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use tether_codec::Message;
use tether_session::{Client, Error as SessionError};
use tokio::sync::Notify;

use crate::error::Error;
use crate::session::link::LinkWriter;
use crate::session::reading::Route;
use crate::supervised::SupervisedError;

/// What the client's session handle and its links share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Notified when accepted messages were numbered, or a link ended, while somebody
    /// waits in [`wait`](Self::wait): they look again.
    changed: Notify,
    /// Something may be due to write that no pump has looked at yet (a message received,
    /// data or `end` the application's task left to the link): the link pumps before its
    /// next read only then, not on every read ([`take_due`](Self::take_due)).
    due: AtomicBool,
    /// Where the connection's wake-ups go while the application's task reads it too
    /// (`reading.rs`).
    pub(crate) route: Arc<Route>,
    /// `route` as the waker every read of the connection is polled with.
    pub(crate) route_waker: Waker,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) client: Client<Message>,
    /// Data messages the application handed over and no link numbered yet, oldest first:
    /// a link numbers them while the replay buffer has room, after what it replays. A full
    /// replay buffer holds them here, not in the link's sink, so the supervisor can still
    /// write its probes (a server that stops acknowledging must still be judged by the
    /// heartbeat).
    pending: VecDeque<Message>,
    /// The messages in `pending` and their bytes: the session admits a message while these
    /// stay under `limits` ([`State::has_room`]).
    accepted: (usize, usize),
    /// The supervisor's outbox limits (messages, bytes), which `accepted` keeps to.
    limits: (usize, usize),
    /// Somebody waits in [`Shared::wait`] for a change.
    waiting: bool,
    /// The application said it sends no more ([`Session::end`](super::Session::end)):
    /// `end` is numbered once nothing is pending, after every message sent before.
    ending: bool,
    /// The server did not select `tether.session.v1`: there is no session.
    refused: bool,
    /// The task driving the links (the supervisor's), woken when the application queued
    /// data or asked to end: the link writes it. Kept under the lock (woken by reference,
    /// so not cloned again for every message).
    link: Option<Waker>,
    /// The attached link's writer: the application's task writes through it at once
    /// ([`Shared::write_now`]), and reads through it while nothing the link read is on
    /// its way ([`nothing_on_its_way`](Self::nothing_on_its_way)).
    writer: Option<LinkWriter>,
    /// Data messages the link's task read and handed to the supervisor's inbox, and those
    /// the application took from there: while they differ, some are on their way.
    handed: u64,
    taken: u64,
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

    /// Queues `message` for the link behind the others, if there is room
    /// ([`has_room`](Self::has_room)); gives it back if not.
    pub(crate) fn admit(&mut self, message: Message) -> Result<(), Message> {
        let len = message.len();
        if !self.has_room(len) {
            return Err(message);
        }
        self.accepted.0 += 1;
        self.accepted.1 += len;
        self.pending.push_back(message);
        Ok(())
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
            self.accepted.0 -= 1;
            self.accepted.1 -= len;
            wake |= std::mem::take(&mut self.waiting);
        }
        Ok(wake)
    }

    /// The application sends no more: later sends are refused; `end` is numbered after
    /// the last pending message ([`settle`](Self::settle)).
    pub(crate) fn request_end(&mut self) {
        self.ending = true;
        self.settle();
    }

    /// The link's task is the one to wake ([`Shared::leave_to_link`]).
    pub(super) fn register_link(&mut self, waker: &Waker) {
        if !self.link.as_ref().is_some_and(|link| link.will_wake(waker)) {
            self.link = Some(waker.clone());
        }
    }

    /// The link task's waker, if a link pumped yet.
    pub(super) fn link_waker(&self) -> Option<Waker> {
        self.link.clone()
    }

    /// Wakes the link's task ([`Shared::leave_to_link`]).
    fn wake_link(&self) {
        if let Some(link) = &self.link {
            link.wake_by_ref();
        }
    }

    /// The attached link's writer, set while a link is attached.
    pub(super) fn set_writer(&mut self, writer: Option<LinkWriter>) {
        self.writer = writer;
    }

    /// The attached link's writer, if any.
    pub(super) fn writer(&self) -> Option<&LinkWriter> {
        self.writer.as_ref()
    }

    /// The link's task read a data message for the supervisor's inbox.
    pub(super) fn hand(&mut self) {
        self.handed += 1;
    }

    /// The application took a data message from the supervisor's inbox.
    pub(super) fn take(&mut self) {
        self.taken += 1;
    }

    /// Whether every data message the link's task read was taken by the application:
    /// then what the application reads itself comes after them. (Asked with the link's
    /// writer locked: the link's task counts what it reads under that lock.)
    pub(super) fn nothing_on_its_way(&self) -> bool {
        self.handed == self.taken
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
    pub(super) fn settle(&mut self) {
        if self.ending && self.pending.is_empty() && !self.client.endpoint().is_ending() {
            self.client.endpoint_mut().finish();
        }
    }
}

impl Shared {
    /// A session's shared state; `limits` are the supervisor outbox's (messages, bytes).
    pub(crate) fn new(client: Client<Message>, limits: (usize, usize)) -> Arc<Shared> {
        let route = Route::new();
        Arc::new(Shared {
            state: Mutex::new(State {
                client,
                pending: VecDeque::new(),
                accepted: (0, 0),
                limits,
                waiting: false,
                ending: false,
                refused: false,
                link: None,
                writer: None,
                handed: 0,
                taken: 0,
            }),
            changed: Notify::new(),
            due: AtomicBool::new(true),
            route_waker: Waker::from(Arc::clone(&route)),
            route,
        })
    }

    /// Waits until `done` holds: it is checked now and after each change that may make it
    /// hold (messages numbered, a link ended). Cancel safe: it
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

    /// Writes what the application queued from the application's own task, through the
    /// attached link's writer with the link task's waker (whatever has to wait wakes the
    /// link's task, which goes on as if it had written it). The link's task is woken
    /// instead when there is no link, when it is busy (polled on another thread), or when
    /// the write did not finish.
    pub(crate) fn write_now(&self, state: MutexGuard<'_, State>) {
        let (writer, waker) = match (&state.writer, &state.link) {
            (Some(writer), Some(link)) => (writer.clone(), link.clone()),
            _ => {
                self.leave_to_link(&state);
                return;
            }
        };
        drop(state);
        let written = match writer.0.try_lock() {
            Ok(mut writer) => writer.write_now(self, &mut Context::from_waker(&waker)),
            Err(_) => false,
        };
        if !written {
            self.mark_due();
            waker.wake();
        }
    }

    /// Leaves data or `end` to the link's task: marked due, and the task woken.
    pub(crate) fn leave_to_link(&self, state: &State) {
        self.mark_due();
        state.wake_link();
    }

    /// Something may be due to write: the link's next pass pumps.
    pub(crate) fn mark_due(&self) {
        self.due.store(true, Ordering::Release);
    }

    /// Whether something may be due to write since the last pump began (it is looked at
    /// now: the caller pumps).
    pub(super) fn take_due(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
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

/// The error that ends a link because the session is over: never retried.
pub(super) fn over(error: SessionError) -> SupervisedError {
    SupervisedError::from(Error::Session(error))
}
