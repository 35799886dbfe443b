//! One server session's state, shared by the application's [`ServerSession`] and the
//! connection that carries the session now (if any).
//!
//! [`ServerSession`]: crate::session::ServerSession

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tether_codec::Message;
use tether_session::{Attachment, Endpoint, LostReason, SessionId, SessionLost};
use tokio::sync::Notify;

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
    /// The connection carrying the session, and how to wake it.
    link: Option<(Attachment, Arc<Notify>)>,
    /// The application dropped its handle: what arrives is counted and dropped.
    abandoned: bool,
}

impl State {
    /// Whether `attachment` is the connection carrying the session now.
    pub(crate) fn carried_by(&self, attachment: Attachment) -> bool {
        matches!(&self.link, Some((current, _)) if *current == attachment)
    }

    /// `attachment` carries the session from now on; the connection that carried it
    /// until now (if any) is woken to find out it was replaced.
    pub(crate) fn attach(&mut self, attachment: Attachment, wake: Arc<Notify>) {
        if let Some((_, old)) = self.link.replace((attachment, wake)) {
            old.notify_one();
        }
        // Not counted yet, so the client resends them from the count it was told.
        self.clear_inbound();
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
        self.endpoint.detach();
        // Received on this connection and not counted: the client resends them.
        self.clear_inbound();
        true
    }

    /// Wakes the connection carrying the session (something to write, room to read).
    pub(crate) fn wake_link(&self) {
        if let Some((_, wake)) = &self.link {
            wake.notify_one();
        }
    }

    /// Whether the application has room for more received data.
    pub(crate) fn has_room(&self) -> bool {
        self.inbound_bytes < MAX_INBOUND_BYTES
    }

    /// A data message (still stuffed, not counted) or the peer's `\0end`, for the
    /// application, in the order they arrived.
    pub(crate) fn deliver(&mut self, message: Message) {
        if self.abandoned {
            return;
        }
        self.inbound_bytes += message.len();
        self.inbound.push_back(message);
    }

    /// The next message queued for the application (as received: count it with
    /// [`Endpoint::handle`]).
    pub(crate) fn take(&mut self) -> Option<Message> {
        let full = !self.has_room();
        let message = self.inbound.pop_front()?;
        self.inbound_bytes -= message.len();
        if full && self.has_room() {
            // The connection stopped reading at the bound: it reads again. (While it has
            // room it reads on; a wake-up now would only cost it an idle pass.)
            self.wake_link();
        }
        Some(message)
    }

    /// The application let go of the session: it ends (`end` after what was sent) and
    /// nothing more is kept for it.
    pub(crate) fn abandon(&mut self) {
        self.abandoned = true;
        self.clear_inbound();
        self.endpoint.finish();
        self.wake_link();
    }
}

/// The state behind a lock, and the application's wake-up.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: SessionId,
    state: Mutex<State>,
    /// Wakes the application: data arrived, room in the replay buffer, the session ended.
    pub(crate) app: Notify,
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
                abandoned: false,
            }),
            app: Notify::new(),
        })
    }

    /// Ends the session here, lost for `reason`, and wakes the application to hear it.
    pub(crate) fn lose(&self, reason: LostReason) -> SessionLost {
        let lost = self.lock().endpoint.lose_locally(reason);
        self.app.notify_waiters();
        lost
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every method leaves the state consistent, so a panic elsewhere while the lock
        // was held leaves nothing half-done here.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
