//! The application's task reading its session's connection itself: while
//! [`Session::recv`](super::Session::recv) waits and nothing the link's task read is
//! still on its way to it, it reads the connection directly (one task poll per message,
//! not two: the link's task reading and handing over, then the application's).
//!
//! Three things keep that as correct as the link's own reading:
//! - **Order:** the application reads only when every data message the link's task read
//!   was taken from the supervisor's inbox
//!   ([`State::nothing_on_its_way`](super::shared::State)), asked under the link writer's
//!   lock, which the link's task holds while it reads and counts.
//! - **Wake-ups:** the connection is polled with one waker, a [`Route`], whoever reads. A
//!   wake-up goes to the application while it waits in `recv`, else to the link's task, so
//!   a connection nobody else reads still wakes the link (probes, pongs, the peer's close).
//! - **The heartbeat:** what the application reads is stamped ([`Route::seen`]), and the
//!   supervisor counts it as inbound activity before it looks at its deadlines
//!   ([`SessionProbe`]); Ping, Pong and Close frames, and errors, are left to the link's
//!   task, which handles them as if it had read them.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use futures_util::task::AtomicWaker;
use tether_codec::Message;
use tether_heartbeat::{Farewell, Inbound, Probe};
use tokio::time::Instant;

use crate::probe::PingProbe;

/// Nobody waits in `recv`: wake-ups go to the link's task.
const LINK: u8 = 0;
/// The application waits in `recv`, reading the connection itself.
const APP: u8 = 1;
/// As `APP`, and a wake-up came since it last polled the connection.
const APP_WOKEN: u8 = 2;

/// Where the connection's wake-ups go, and when the application last read something.
#[derive(Debug)]
pub(crate) struct Route {
    state: AtomicU8,
    app: AtomicWaker,
    link: AtomicWaker,
    /// When the application's task last read a message, in nanoseconds after `epoch`
    /// (and one more, so 0 says "nothing since the supervisor last asked").
    seen: AtomicU64,
    epoch: Instant,
}

impl Route {
    pub(crate) fn new() -> Arc<Route> {
        Arc::new(Route {
            state: AtomicU8::new(LINK),
            app: AtomicWaker::new(),
            link: AtomicWaker::new(),
            seen: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// The link's task polls the connection: `link` is its waker.
    pub(crate) fn link_polls(&self, link: &Waker) {
        self.link.register(link);
    }

    /// The application's task is about to poll the connection, with `app` its waker:
    /// wake-ups go to it until it [`leave`](Self::leave)s.
    pub(crate) fn app_polls(&self, app: &Waker) {
        self.app.register(app);
        self.state.store(APP, Ordering::Release);
    }

    /// The application stopped waiting in `recv` (it got a message, or dropped the
    /// wait): wake-ups go to the link's task again, and one that came after the
    /// application last polled the connection is passed on to it (what it announced may
    /// be unread).
    pub(crate) fn leave(&self) {
        if self.state.swap(LINK, Ordering::AcqRel) == APP_WOKEN {
            self.link.wake();
        }
    }

    /// Wakes the link's task.
    pub(crate) fn wake_link(&self) {
        self.link.wake();
    }

    /// The application's task read a message now.
    pub(crate) fn seen(&self) {
        let since = Instant::now().saturating_duration_since(self.epoch);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX - 1);
        self.seen.store(nanos + 1, Ordering::Release);
    }

    /// When the application's task last read a message, if it did since the last call.
    fn take_seen(&self) -> Option<std::time::Instant> {
        match self.seen.swap(0, Ordering::AcqRel) {
            0 => None,
            nanos => Some((self.epoch + std::time::Duration::from_nanos(nanos - 1)).into_std()),
        }
    }
}

impl Wake for Route {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let state = self.state.load(Ordering::Acquire);
        let to_app = state != LINK
            && (state == APP_WOKEN
                || self
                    .state
                    .compare_exchange(APP, APP_WOKEN, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok());
        if to_app {
            self.app.wake();
        } else {
            self.link.wake();
        }
    }
}

/// The session client's probe: Ping frames ([`PingProbe`]), and the application's own
/// reads counted as inbound activity.
pub(crate) struct SessionProbe {
    inner: PingProbe,
    route: Arc<Route>,
}

impl SessionProbe {
    pub(crate) fn new(route: Arc<Route>) -> Self {
        SessionProbe {
            inner: PingProbe::new(),
            route,
        }
    }
}

impl Probe<Message> for SessionProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        self.inner.probe(nonce)
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        self.inner.classify(message)
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        self.inner.answer(probe)
    }

    fn close(&mut self, farewell: Farewell, reason: &str) -> Option<Message> {
        self.inner.close(farewell, reason)
    }

    fn len(message: &Message) -> usize {
        message.len()
    }

    fn seen_elsewhere(&mut self) -> Option<std::time::Instant> {
        self.route.take_seen()
    }
}
