//! One server session's state, shared by the application's [`ServerSession`] and the
//! connection that carries the session now (if any).
//!
//! [`ServerSession`]: crate::session::ServerSession

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use tether_codec::Message;
use tether_session::{Attachment, Endpoint, LostReason, SessionId, SessionLost};
use tokio::sync::Notify;

use crate::held;
use crate::session::handler::Seat;

/// Received data the application has not taken yet, at most this many bytes (plus the one
/// message that crosses it): past it the connection stops reading, and TCP pushes back.
///
/// Data is counted (and so acknowledged) when the application takes it, not when it
/// arrives, so what waits here is unacknowledged: a client never has more of it than its
/// replay window. Twice the default window (1 MiB) keeps an honest client from ever
/// reaching this bound, so the connection always reads on and the client's acks get
/// through even while the application waits to send (an echo that waits for the client's
/// ack, behind the client's own data, would otherwise deadlock).
pub(crate) const MAX_INBOUND_BYTES: usize = 2 << 20;

/// A server session: its endpoint (counts, replay, acks), what arrived for the application,
/// and which connection carries it.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) endpoint: Endpoint<Message>,
    inbound: VecDeque<Message>,
    inbound_bytes: usize,
    /// The connection carrying the session.
    link: Option<Attachment>,
    /// Its task, woken when there is something to write or room to read again.
    link_waker: Option<Waker>,
    /// Something for the connection to write, or room to read: set with every wake-up, so
    /// a connection that woke itself (its handler sent) still looks.
    link_woken: bool,
    /// The task waiting in [`ServerSession::recv`](super::ServerSession::recv).
    reader: Option<Waker>,
    /// The waker the connection runs the handler with, while it does (handler.rs): a
    /// wake-up from it comes from the connection's own task.
    inline: Option<Waker>,
    /// The application dropped its handle: what arrives is counted and dropped.
    abandoned: bool,
}

impl State {
    /// Whether `attachment` is the connection carrying the session now.
    pub(crate) fn carried_by(&self, attachment: Attachment) -> bool {
        self.link == Some(attachment)
    }

    /// `attachment` carries the session from now on; the connection that carried it
    /// until now (if any) is woken to find out it was replaced.
    pub(crate) fn attach(&mut self, attachment: Attachment) {
        self.link = Some(attachment);
        self.link_woken = true;
        if let Some(old) = self.link_waker.take() {
            old.wake();
        }
        // Not counted yet, so the client resends them from the count it was told.
        self.clear_inbound();
    }

    /// The task of the connection `attachment`, to wake (if it still carries the session).
    pub(crate) fn register_link(&mut self, attachment: Attachment, waker: &Waker) {
        if self.carried_by(attachment)
            && !self.link_waker.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            self.link_waker = Some(waker.clone());
        }
    }

    /// Whether the connection was woken since it last looked (and it looks now).
    pub(crate) fn take_woken(&mut self) -> bool {
        std::mem::take(&mut self.link_woken)
    }

    fn clear_inbound(&mut self) {
        self.inbound.clear();
        self.inbound_bytes = 0;
    }

    /// Whether the application let go of the session.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned
    }

    /// The connection `attachment` ended: the session is parked (if it still carried it).
    pub(crate) fn detach(&mut self, attachment: Attachment) -> bool {
        if !self.carried_by(attachment) {
            return false;
        }
        self.link = None;
        self.link_waker = None;
        self.endpoint.detach();
        // Received on this connection and not counted: the client resends them.
        self.clear_inbound();
        true
    }

    /// Wakes the connection carrying the session (something to write, room to read).
    /// `from`: the waker of the task asking, when known. The handler a connection runs
    /// (with the waker set by [`run_inline`](Self::run_inline)) does not wake it: the
    /// connection looks before it sleeps, and a wake-up would cost a wasted pass per
    /// message.
    pub(crate) fn wake_link(&mut self, from: Option<&Waker>) {
        self.link_woken = true;
        let Some(link) = &self.link_waker else {
            return;
        };
        let own = from.is_some_and(|from| self.inline.as_ref().is_some_and(|i| i.will_wake(from)));
        if !own {
            link.wake_by_ref();
        }
    }

    /// The connection runs the handler with `waker` from now on (`None`: it no longer
    /// does).
    pub(crate) fn run_inline(&mut self, waker: Option<&Waker>) {
        self.inline = waker.cloned();
    }

    /// `waker` waits for the next message (or the end).
    pub(crate) fn register_reader(&mut self, waker: &Waker) {
        if !self.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.reader = Some(waker.clone());
        }
    }

    /// The application's reader, if it waits: to wake.
    pub(crate) fn take_reader(&mut self) -> Option<Waker> {
        self.reader.take()
    }

    /// Whether the application has room for more received data.
    pub(crate) fn has_room(&self) -> bool {
        self.inbound_bytes < MAX_INBOUND_BYTES
    }

    /// A data message (still stuffed, not counted) or the peer's `\0end`, for the
    /// application, in the order they arrived. Returns the reader to wake: the connection
    /// delivering it wakes it (or, when it runs the handler itself, notes it).
    #[must_use]
    pub(crate) fn deliver(&mut self, message: Message) -> Option<Waker> {
        if self.abandoned {
            return None;
        }
        // Held until the application takes it: counted with its overhead, and a short one
        // copied so that it does not keep the read buffer it arrived in (held.rs).
        let message = held::own_copy_if_small(message);
        self.inbound_bytes += held::cost(&message);
        self.inbound.push_back(message);
        self.reader.take()
    }

    /// The next message queued for the application (as received: count it with
    /// [`Endpoint::handle`]).
    pub(crate) fn take(&mut self, from: &Waker) -> Option<Message> {
        let full = !self.has_room();
        let message = self.inbound.pop_front()?;
        self.inbound_bytes -= held::cost(&message);
        if full && self.has_room() {
            // The connection stopped reading at the bound: it reads again. (While it has
            // room it reads on; a wake-up now would only cost it an idle pass.)
            self.wake_link(Some(from));
        }
        Some(message)
    }

    /// The application let go of the session: it ends (`end` after what was sent) and
    /// nothing more is kept for it.
    pub(crate) fn abandon(&mut self) {
        self.abandoned = true;
        self.clear_inbound();
        self.endpoint.finish();
        self.wake_link(None);
    }
}

/// The state behind a lock, the application's wake-up, and where its handler is.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: SessionId,
    state: Mutex<State>,
    /// Wakes the application's senders: room in the replay buffer, the session ended.
    /// (Its reader registers in [`State`]: [`State::take_reader`].)
    app: Notify,
    /// Which task runs the handler (handler.rs).
    pub(crate) seat: Seat,
}

impl Shared {
    pub(crate) fn new(id: SessionId, endpoint: Endpoint<Message>) -> Arc<Shared> {
        Arc::new(Shared {
            id,
            state: Mutex::new(State {
                endpoint,
                inbound: VecDeque::new(),
                inbound_bytes: 0,
                link: None,
                link_waker: None,
                link_woken: false,
                reader: None,
                inline: None,
                abandoned: false,
            }),
            app: Notify::new(),
            seat: Seat::default(),
        })
    }

    /// Ends the session here, lost for `reason`, and wakes the application to hear it.
    pub(crate) fn lose(&self, reason: LostReason) -> SessionLost {
        let mut state = self.lock();
        let lost = state.endpoint.lose_locally(reason);
        self.wake_app(&mut state);
        lost
    }

    /// Wakes the application, reader and senders: room in the replay buffer, or the
    /// session ended (lost, finished, its connection gone).
    pub(crate) fn wake_app(&self, state: &mut State) {
        if let Some(reader) = state.take_reader() {
            reader.wake();
        }
        self.wake_senders();
    }

    /// Wakes the application's senders waiting for room (or to hear the session ended).
    pub(crate) fn wake_senders(&self) {
        self.app.notify_waiters();
    }

    /// Waits for [`wake_app`](Self::wake_app), registered now (before the caller looks).
    pub(crate) fn app_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.app.notified()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every method leaves the state consistent, so a panic elsewhere while the lock
        // was held leaves nothing half-done here.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use futures_util::task::noop_waker_ref;
    use tether_session::{EndpointConfig, SessionId};

    use super::*;

    fn shared() -> Arc<Shared> {
        let endpoint = Endpoint::new(EndpointConfig::default()).expect("config");
        Shared::new(SessionId::from_bytes([1; 16]), endpoint)
    }

    /// MAX_INBOUND_BYTES counts empty messages too: at the bound the connection stops
    /// reading, one message before it still reads.
    #[test]
    fn empty_messages_count_toward_the_inbound_bound() {
        let shared = shared();
        let mut state = shared.lock();
        let at_bound = MAX_INBOUND_BYTES / held::MESSAGE_OVERHEAD;
        for _ in 0..at_bound - 1 {
            let _ = state.deliver(Message::binary(Bytes::new()));
        }
        assert!(state.has_room(), "one message before the bound");
        let _ = state.deliver(Message::binary(Bytes::new()));
        assert!(!state.has_room(), "at the bound");
        assert!(state.take(noop_waker_ref()).is_some());
        assert!(state.has_room(), "one taken: reads again");
    }

    /// A short message waiting for the application does not keep its read buffer (held.rs).
    #[test]
    fn a_short_queued_message_does_not_keep_its_read_buffer() {
        let shared = shared();
        let mut state = shared.lock();
        let mut read = BytesMut::with_capacity(8 << 10);
        read.extend_from_slice(b"sixteen bytes..!and more");
        let _ = state.deliver(Message::Binary(read.split_to(16).freeze()));
        read.clear();
        assert!(read.try_reclaim(8 << 10), "the read buffer is alone");
        assert_eq!(
            state.take(noop_waker_ref()),
            Some(Message::binary(&b"sixteen bytes..!"[..]))
        );
    }
}
