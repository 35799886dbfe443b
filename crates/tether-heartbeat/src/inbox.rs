//! The inbound messages between the supervisor's task and its handle: a queue bounded by
//! count and by bytes, with one lock and at most one wake per message.
//!
//! The task reads from its transport only while [`InboxSender::poll_room`] says there is
//! room, so when the application stops receiving, reading stops and TCP pushes back on the
//! peer. Each side keeps its waker and is woken only while it waits (no clone per message,
//! no wake of a task that is busy anyway).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The receiving handle closed the inbox: nothing sent is received any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// A bounded inbox: at most `capacity` messages, and reading pauses once `max_bytes` or
/// more wait (so at most `max_bytes` plus one message).
pub(crate) fn inbox<M>(capacity: usize, max_bytes: usize) -> (InboxSender<M>, InboxReceiver<M>) {
    let queue = Arc::new(Mutex::new(Queue {
        messages: VecDeque::new(),
        bytes: 0,
        capacity,
        max_bytes,
        closed: false,
        sender_gone: false,
        receiver: Waiter::default(),
        sender: Waiter::default(),
    }));
    (InboxSender(Arc::clone(&queue)), InboxReceiver(queue))
}

/// The supervisor task's side.
pub(crate) struct InboxSender<M>(Arc<Mutex<Queue<M>>>);

/// The handle's side.
pub(crate) struct InboxReceiver<M>(Arc<Mutex<Queue<M>>>);

struct Queue<M> {
    /// Each with its length as the probe counts it.
    messages: VecDeque<(M, usize)>,
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
    /// The receiver closed (or was dropped).
    closed: bool,
    /// The sender was dropped: the supervisor's task ended.
    sender_gone: bool,
    /// The handle, waiting for a message.
    receiver: Waiter,
    /// The task, waiting for room.
    sender: Waiter,
}

impl<M> Queue<M> {
    fn has_room(&self) -> bool {
        self.messages.len() < self.capacity && self.bytes < self.max_bytes
    }
}

/// A task's waker, kept across waits (registered again only for another task) and woken
/// only while the task waits.
#[derive(Default)]
struct Waiter {
    waker: Option<Waker>,
    waiting: bool,
}

impl Waiter {
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        self.waiting = true;
    }

    /// Wakes the task if it waits (by reference: the waker is kept for its next wait).
    /// Called under the queue's lock: a waker only schedules its task, it never runs it.
    fn wake(&mut self) {
        if std::mem::take(&mut self.waiting) {
            if let Some(waker) = &self.waker {
                waker.wake_by_ref();
            }
        }
    }
}

fn lock<M>(queue: &Mutex<Queue<M>>) -> MutexGuard<'_, Queue<M>> {
    // Every operation leaves the queue whole (a push or a pop and its count), so a
    // poisoned lock is still usable.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<M> InboxSender<M> {
    /// Ready when another message may be pushed; an error once the receiver closed.
    /// Pending (woken when the handle receives) while the inbox is full.
    pub(crate) fn poll_room(&self, cx: &Context<'_>) -> Poll<Result<(), Closed>> {
        let mut queue = lock(&self.0);
        if queue.closed {
            return Poll::Ready(Err(Closed));
        }
        if queue.has_room() {
            return Poll::Ready(Ok(()));
        }
        queue.sender.wait(cx);
        Poll::Pending
    }

    /// Queues `message` of `len` bytes (room was checked with
    /// [`poll_room`](Self::poll_room)); gives it back if the receiver closed.
    pub(crate) fn push(&self, message: M, len: usize) -> Result<(), M> {
        let mut queue = lock(&self.0);
        if queue.closed {
            return Err(message);
        }
        queue.messages.push_back((message, len));
        queue.bytes += len;
        queue.receiver.wake();
        Ok(())
    }
}

impl<M> Drop for InboxSender<M> {
    fn drop(&mut self) {
        let mut queue = lock(&self.0);
        queue.sender_gone = true;
        queue.receiver.wake();
    }
}

impl<M> InboxReceiver<M> {
    /// The next message; `None` once the sender is gone and everything was received.
    pub(crate) fn poll_recv(&self, cx: &Context<'_>) -> Poll<Option<M>> {
        let mut queue = lock(&self.0);
        let Some((message, len)) = queue.messages.pop_front() else {
            if queue.sender_gone {
                return Poll::Ready(None);
            }
            queue.receiver.wait(cx);
            return Poll::Pending;
        };
        queue.bytes -= len;
        if queue.has_room() {
            queue.sender.wake();
        }
        Poll::Ready(Some(message))
    }

    /// Bytes of the messages waiting.
    pub(crate) fn bytes(&self) -> usize {
        lock(&self.0).bytes
    }

    /// Nothing more is received: the sender's pushes fail, and a sender waiting for room
    /// looks again (and finds the error).
    pub(crate) fn close(&self) {
        let mut queue = lock(&self.0);
        queue.closed = true;
        queue.sender.wake();
    }
}

impl<M> Drop for InboxReceiver<M> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    #[test]
    fn the_count_bound_holds_at_the_limit_and_one_past_it() {
        let (tx, rx) = inbox::<&str>(2, 100);
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        for _ in 0..2 {
            assert_eq!(tx.poll_room(&cx), Poll::Ready(Ok(())));
            tx.push("a", 1).unwrap();
        }
        assert!(tx.poll_room(&cx).is_pending(), "a third message waits");
        assert_eq!(rx.poll_recv(&cx), Poll::Ready(Some("a")));
        assert_eq!(
            woken.0.load(Ordering::SeqCst),
            1,
            "the sender is woken once"
        );
        assert_eq!(tx.poll_room(&cx), Poll::Ready(Ok(())));
    }

    #[test]
    fn the_byte_bound_pauses_at_the_limit_and_counts_what_is_received() {
        let (tx, rx) = inbox::<&str>(10, 5);
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        tx.push("abcd", 4).unwrap();
        assert_eq!(tx.poll_room(&cx), Poll::Ready(Ok(())), "4 of 5 bytes: room");
        tx.push("e", 1).unwrap();
        assert_eq!(rx.bytes(), 5);
        assert!(tx.poll_room(&cx).is_pending(), "5 of 5 bytes: no room");
        assert_eq!(rx.poll_recv(&cx), Poll::Ready(Some("abcd")));
        assert_eq!(rx.bytes(), 1);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_receiver_is_woken_only_while_it_waits() {
        let (tx, rx) = inbox::<u8>(4, 100);
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        tx.push(1, 1).unwrap();
        assert_eq!(woken.0.load(Ordering::SeqCst), 0, "nobody waits");
        assert_eq!(rx.poll_recv(&cx), Poll::Ready(Some(1)));
        assert!(rx.poll_recv(&cx).is_pending());
        tx.push(2, 1).unwrap();
        tx.push(3, 1).unwrap();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1, "one wake for the wait");
    }

    #[test]
    fn a_gone_sender_ends_the_stream_after_what_was_queued() {
        let (tx, rx) = inbox::<u8>(4, 100);
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        assert!(rx.poll_recv(&cx).is_pending());
        tx.push(1, 1).unwrap();
        drop(tx);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(rx.poll_recv(&cx), Poll::Ready(Some(1)));
        assert_eq!(rx.poll_recv(&cx), Poll::Ready(None));
    }

    #[test]
    fn a_closed_receiver_refuses_pushes_and_wakes_a_waiting_sender() {
        let (tx, rx) = inbox::<u8>(1, 100);
        let (woken, w) = waker();
        let cx = Context::from_waker(&w);
        tx.push(1, 1).unwrap();
        assert!(tx.poll_room(&cx).is_pending());
        rx.close();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(tx.poll_room(&cx), Poll::Ready(Err(Closed)));
        assert_eq!(tx.push(2, 1), Err(2));
    }
}
