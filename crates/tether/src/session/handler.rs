//! Who runs a server session's handler: the connection that carries the session polls it
//! in its own task, as a plain WebSocket loop runs in one; while no connection does, a
//! task of its own keeps it running (it may send into the replay buffer, wait on other
//! things, or hear that the session was lost).
//!
//! The handler moves between these tasks, never polled by two at once:
//! - a new session's connection holds it from the start;
//! - a connection that ends hands it to the connection waiting for it (a resume that
//!   replaced this one), or else to a parked task;
//! - a resuming connection asks for it: the connection or parked task holding it hands it
//!   over at its next step.
//!
//! Whoever holds it keeps it in its own task, so a task that is dropped (the runtime
//! shutting down) drops the handler with it: nothing holds it in the session's shared state
//! but for the moment of a handover.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

use crate::session::state::Shared;

/// The application's handler for one session, as [`Sessions`](super::Sessions) made it.
pub(crate) type Handler = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a session's handler is: the handover point between the tasks that run it.
#[derive(Default)]
pub(crate) struct Seat {
    slot: Mutex<Slot>,
    /// A connection asked for the handler (`Slot::wanted` is set): read by the connection
    /// holding it at each step without taking the lock.
    asked: AtomicBool,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Slot {
    holder: Holder,
    /// The connection that asked for the handler, woken when it is handed over.
    wanted: Option<Wanted>,
    /// The last ticket given to a connection that asked.
    tickets: u64,
}

/// A connection's request for the handler: its ticket (to withdraw it when the connection
/// ends first) and its task.
struct Wanted {
    ticket: u64,
    waker: Waker,
}

#[derive(Default)]
enum Holder {
    /// A connection's task runs it (a new session's first connection, from the start).
    #[default]
    Connection,
    /// A parked task runs it (its waker, once it ran: woken when a connection asks).
    Parked(Option<Waker>),
    /// Handed over, for the connection that asked to take.
    Handed(Handler),
    /// It returned (or panicked): nobody runs it any more.
    Finished,
}

impl Seat {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every step below leaves the slot consistent.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection's hold on its session's handler: it runs the handler while it holds it,
/// asks for it while another task does, and hands it on when dropped.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    handler: Option<Handler>,
    /// This connection asked for the handler with this ticket.
    ticket: Option<u64>,
    /// The handler's own waker while this connection runs it ([`Nudge`]).
    nudge: Arc<Nudge>,
    waker: Waker,
}

/// The waker a connection runs its handler with: it notes that something the handler waits
/// on happened, and wakes the connection's task. The connection polls the handler only
/// when noted, not on every pass (most passes are for the socket).
#[derive(Default)]
struct Nudge {
    due: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Nudge {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.due.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Lease {
    /// A new session's connection: it runs `handler` from the start (a new seat's holder
    /// is a connection).
    pub(crate) fn new_session(shared: Arc<Shared>, handler: Handler) -> Lease {
        let mut lease = Lease::resumed(shared);
        lease.hold(handler);
        lease
    }

    /// A resuming connection: it runs the handler once the task holding it hands it over.
    pub(crate) fn resumed(shared: Arc<Shared>) -> Lease {
        let nudge = Arc::new(Nudge::default());
        Lease {
            shared,
            handler: None,
            ticket: None,
            waker: Waker::from(Arc::clone(&nudge)),
            nudge,
        }
    }

    /// This connection runs `handler` from now on: it is polled at once (what it waits on
    /// was registered by another task), and the session knows its waker.
    fn hold(&mut self, handler: Handler) {
        self.handler = Some(handler);
        self.nudge.due.store(true, Ordering::Release);
        self.shared.lock().run_inline(Some(&self.waker));
    }

    /// Runs the handler one step if something it waits on happened (taking it first if it
    /// was handed over, asking for it if another task holds it), with `cx` woken when
    /// something does again.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) {
        if self.handler.is_none() {
            match take(&self.shared.seat, cx, &mut self.ticket) {
                Some(handler) => self.hold(handler),
                None => return,
            }
        }
        if self.shared.seat.asked.load(Ordering::Acquire) {
            // A resume replaced this connection: the new one runs the handler now.
            self.release();
            return;
        }
        self.nudge.task.register(cx.waker());
        if !self.nudge.due.swap(false, Ordering::AcqRel) {
            return;
        }
        let Some(handler) = self.handler.as_mut() else {
            return;
        };
        if step(handler, &mut Context::from_waker(&self.waker)) {
            self.handler = None;
            self.shared.lock().run_inline(None);
            finished(&self.shared.seat);
        }
    }

    /// Wakes `reader`, a task waiting for the session's next message: when it is this
    /// connection's handler, it is only noted (this connection polls it before it sleeps).
    pub(crate) fn wake(&self, reader: Waker) {
        if reader.will_wake(&self.waker) {
            self.nudge.due.store(true, Ordering::Release);
        } else {
            reader.wake();
        }
    }

    /// Hands the handler on (to the connection that asked, or a parked task).
    fn release(&mut self) {
        if let Some(handler) = self.handler.take() {
            self.shared.lock().run_inline(None);
            hand_over(&self.shared, handler);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match self.handler {
            Some(_) => self.release(),
            None => {
                let mut slot = self.shared.seat.lock();
                // Asked and not handed over yet: withdrawn, or the holder would hand it to
                // a connection that is gone.
                if slot
                    .wanted
                    .as_ref()
                    .is_some_and(|w| Some(w.ticket) == self.ticket)
                {
                    slot.wanted = None;
                    self.shared.seat.asked.store(false, Ordering::Release);
                }
                // Handed to this connection and not taken yet: it must not stay in the
                // shared state, where nobody would run it.
                if matches!(slot.holder, Holder::Handed(_)) && slot.wanted.is_none() {
                    if let Holder::Handed(handler) = std::mem::take(&mut slot.holder) {
                        drop(slot);
                        hand_over(&self.shared, handler);
                    }
                }
            }
        }
    }
}

/// The handler for the connection at `cx`, if it was handed over; else the connection asks
/// for it (with `ticket`) and is woken when it is (the parked task holding it is woken to
/// hand it over). `None` too once it finished.
fn take(seat: &Seat, cx: &Context<'_>, ticket: &mut Option<u64>) -> Option<Handler> {
    let mut slot = seat.lock();
    match std::mem::take(&mut slot.holder) {
        Holder::Handed(handler) => {
            slot.wanted = None;
            seat.asked.store(false, Ordering::Release);
            Some(handler)
        }
        Holder::Finished => {
            slot.holder = Holder::Finished;
            None
        }
        held => {
            if let Holder::Parked(Some(parked)) = &held {
                parked.wake_by_ref();
            }
            slot.holder = held;
            match &mut slot.wanted {
                Some(wanted) if Some(wanted.ticket) == *ticket => {
                    if !wanted.waker.will_wake(cx.waker()) {
                        wanted.waker = cx.waker().clone();
                    }
                }
                // A later connection asks instead of an earlier one (it replaced it).
                _ => {
                    slot.tickets += 1;
                    *ticket = Some(slot.tickets);
                    slot.wanted = Some(Wanted {
                        ticket: slot.tickets,
                        waker: cx.waker().clone(),
                    });
                }
            }
            seat.asked.store(true, Ordering::Release);
            None
        }
    }
}

/// Hands `handler` to the connection that asked for it, or else to a parked task of its
/// own (none without a runtime: the handler is dropped, the session ends for it).
fn hand_over(shared: &Arc<Shared>, handler: Handler) {
    let mut slot = shared.seat.lock();
    if let Some(wanted) = slot.wanted.take() {
        shared.seat.asked.store(false, Ordering::Release);
        slot.holder = Holder::Handed(handler);
        drop(slot);
        wanted.waker.wake();
        return;
    }
    slot.holder = Holder::Parked(None);
    drop(slot);
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(parked(Arc::clone(shared), handler));
    }
}

/// The handler returned: a connection waiting for it goes on without.
fn finished(seat: &Seat) {
    let mut slot = seat.lock();
    slot.holder = Holder::Finished;
    if let Some(wanted) = slot.wanted.take() {
        seat.asked.store(false, Ordering::Release);
        drop(slot);
        wanted.waker.wake();
    }
}

/// Runs the handler while no connection does, until one asks for it or it returns.
async fn parked(shared: Arc<Shared>, handler: Handler) {
    let mut handler = Some(handler);
    std::future::poll_fn(|cx| {
        let Some(running) = handler.as_mut() else {
            return Poll::Ready(());
        };
        if step(running, cx) {
            handler = None;
            finished(&shared.seat);
            return Poll::Ready(());
        }
        let mut slot = shared.seat.lock();
        if slot.wanted.is_some() {
            return Poll::Ready(());
        }
        if let Holder::Parked(waker) = &mut slot.holder {
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    })
    .await;
    if let Some(handler) = handler {
        // A connection asked for it.
        hand_over(&shared, handler);
    }
}

/// Polls the handler once; `true` once it returned. A handler that panics is over too: its
/// session ends as if it returned (its `ServerSession` dropped), and the connection that
/// ran it goes on, as the handler's own task would have let it.
fn step(handler: &mut Handler, cx: &mut Context<'_>) -> bool {
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
        Ok(poll) => poll.is_ready(),
        Err(_) => {
            tracing::error!("a session handler panicked; its session ends");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Waker};

    use tether_session::{Endpoint, EndpointConfig, SessionId};
    use tokio::sync::{oneshot, Notify};

    use super::*;

    /// A resuming connection that ends before the handler reached it withdraws its request:
    /// the parked task runs the handler on, instead of handing it to a connection that is
    /// gone (where nothing would run it until yet another resume).
    #[tokio::test]
    async fn a_request_withdrawn_by_a_connection_that_ended_leaves_the_handler_running() {
        let endpoint = Endpoint::new(EndpointConfig::default()).unwrap();
        let shared = Shared::new(SessionId::from_bytes([1; 16]), endpoint);
        let go = Arc::new(Notify::new());
        let (ran, mut heard) = oneshot::channel();
        let wait = Arc::clone(&go);
        let handler: Handler = Box::pin(async move {
            wait.notified().await;
            let _ = ran.send(());
        });
        drop(Lease::new_session(Arc::clone(&shared), handler));
        // The parked task runs the handler up to its wait.
        tokio::task::yield_now().await;

        let mut resumed = Lease::resumed(Arc::clone(&shared));
        resumed.poll(&mut Context::from_waker(Waker::noop()));
        assert!(resumed.handler.is_none(), "the parked task holds it");
        drop(resumed);
        // The parked task looks at the request (woken by it) before the handler can go on.
        tokio::task::yield_now().await;

        go.notify_one();
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut heard)
            .await
            .expect("the handler ran on, parked")
            .expect("sent");
    }
}
