//! One subscriber's queue: bounded in bytes, filled by publishers without waiting.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::config::{SlowConsumer, ITEM_OVERHEAD};
use crate::delivery::Delivery;
use crate::payload::Payload;

/// The queue behind a [`Subscriber`](crate::Subscriber), shared with the bus's topic table.
pub(crate) struct Inbox<P> {
    /// Unique within its bus: names the sender to leave out of a publish.
    pub(crate) id: u64,
    state: Mutex<Queue<P>>,
    /// One waiter (the subscriber); `notify_one` keeps a permit for it.
    pub(crate) notify: Notify,
}

struct Queue<P> {
    /// Each delivery with the bytes it counts.
    items: VecDeque<(Delivery<P>, usize)>,
    bytes: usize,
    /// Dropped under `DropOldest` and not yet reported.
    dropped: u64,
    cut_off: bool,
}

/// What [`Inbox::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued, after dropping this many older deliveries.
    Queued { dropped: u64 },
    /// The queue was full: the subscriber is cut off now.
    CutOff,
    /// Cut off earlier; nothing queued.
    Refused,
}

/// What [`Inbox::pop`] took.
pub(crate) enum Popped<P> {
    Delivery(Delivery<P>),
    CutOff,
    Empty,
}

impl<P: Payload> Inbox<P> {
    pub(crate) fn new(id: u64) -> Self {
        Inbox {
            id,
            state: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                cut_off: false,
            }),
            notify: Notify::new(),
        }
    }

    /// Queues `delivery` unless that takes a non-empty queue past `limit` bytes; then
    /// `policy` decides. Never waits for the subscriber.
    pub(crate) fn push(&self, delivery: Delivery<P>, limit: usize, policy: SlowConsumer) -> Pushed {
        let cost = match &delivery {
            Delivery::Message { payload, .. } => payload.size(),
            _ => 0,
        } + ITEM_OVERHEAD;
        let mut queue = self.lock();
        if queue.cut_off {
            return Pushed::Refused;
        }
        let mut dropped = 0;
        while !queue.items.is_empty() && queue.bytes.saturating_add(cost) > limit {
            if policy == SlowConsumer::Close {
                queue.items = VecDeque::new();
                queue.bytes = 0;
                queue.cut_off = true;
                drop(queue);
                self.notify.notify_one();
                return Pushed::CutOff;
            }
            if let Some((_, bytes)) = queue.items.pop_front() {
                queue.bytes -= bytes;
                dropped += 1;
            }
        }
        queue.dropped += dropped;
        queue.items.push_back((delivery, cost));
        queue.bytes += cost;
        drop(queue);
        self.notify.notify_one();
        Pushed::Queued { dropped }
    }

    /// The next delivery; a pending drop count comes first.
    pub(crate) fn pop(&self) -> Popped<P> {
        let mut queue = self.lock();
        if queue.cut_off {
            return Popped::CutOff;
        }
        if queue.dropped > 0 {
            let count = std::mem::take(&mut queue.dropped);
            return Popped::Delivery(Delivery::Dropped { count });
        }
        match queue.items.pop_front() {
            Some((delivery, cost)) => {
                queue.bytes -= cost;
                Popped::Delivery(delivery)
            }
            None => Popped::Empty,
        }
    }

    /// Bytes queued, as counted against the limit.
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub(crate) fn is_cut_off(&self) -> bool {
        self.lock().cut_off
    }

    fn lock(&self) -> MutexGuard<'_, Queue<P>> {
        // Every update under this lock completes before it is released (no call out, no
        // panic path between the changes): a poisoned queue is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{Config, Topic};

    fn message(len: usize) -> Delivery<Bytes> {
        let topic = Topic::new("t", &Config::default()).unwrap();
        Delivery::Message {
            topic,
            payload: Bytes::from(vec![0; len]),
        }
    }

    #[test]
    fn close_policy_cuts_off_one_byte_past_the_limit_and_frees_the_queue() {
        let inbox = Inbox::new(1);
        let limit = 2 * (10 + ITEM_OVERHEAD);
        let close = SlowConsumer::Close;
        assert_eq!(
            inbox.push(message(10), limit, close),
            Pushed::Queued { dropped: 0 }
        );
        // At the limit.
        assert_eq!(
            inbox.push(message(10), limit, close),
            Pushed::Queued { dropped: 0 }
        );
        assert_eq!(inbox.bytes(), limit);
        // One byte past it.
        assert_eq!(
            inbox.push(message(0), limit - ITEM_OVERHEAD + 1, close),
            Pushed::CutOff
        );
        assert_eq!(inbox.bytes(), 0);
        assert!(matches!(inbox.pop(), Popped::CutOff));
        assert_eq!(inbox.push(message(1), limit, close), Pushed::Refused);
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_reports_the_count_first() {
        let inbox = Inbox::new(1);
        let limit = 3 * ITEM_OVERHEAD;
        let policy = SlowConsumer::DropOldest;
        for len in [0, 0, 0] {
            assert_eq!(
                inbox.push(message(len), limit, policy),
                Pushed::Queued { dropped: 0 }
            );
        }
        assert_eq!(
            inbox.push(message(1), limit, policy),
            Pushed::Queued { dropped: 2 }
        );
        assert!(matches!(
            inbox.pop(),
            Popped::Delivery(Delivery::Dropped { count: 2 })
        ));
        assert!(matches!(
            inbox.pop(),
            Popped::Delivery(Delivery::Message { .. })
        ));
        match inbox.pop() {
            Popped::Delivery(Delivery::Message { payload, .. }) => assert_eq!(payload.len(), 1),
            _ => panic!("not the newest message"),
        }
        assert!(matches!(inbox.pop(), Popped::Empty));
        assert_eq!(inbox.bytes(), 0);
    }

    #[test]
    fn an_empty_queue_takes_a_message_larger_than_the_limit() {
        let inbox = Inbox::new(1);
        let push = inbox.push(message(1000), 10, SlowConsumer::Close);
        assert_eq!(push, Pushed::Queued { dropped: 0 });
        assert_eq!(
            inbox.push(message(0), 10, SlowConsumer::Close),
            Pushed::CutOff
        );
    }
}
