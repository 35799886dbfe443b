//! Fan-out counters: what was published, delivered, dropped and cut off.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a [`Bus`](crate::Bus)'s counters, since it was made.
/// Subscribers per topic: [`Bus::topics`](crate::Bus::topics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// Messages published on this node.
    pub published: u64,
    /// Payload bytes published on this node.
    pub published_bytes: u64,
    /// Messages taken out of a subscriber's queue (one per subscriber and message).
    pub delivered: u64,
    /// Payload bytes of those.
    pub delivered_bytes: u64,
    /// Deliveries dropped under [`SlowConsumer::DropOldest`](crate::SlowConsumer::DropOldest).
    pub dropped: u64,
    /// Subscribers cut off under [`SlowConsumer::Close`](crate::SlowConsumer::Close).
    pub slow_consumer_closes: u64,
    /// Messages that arrived from other nodes through the backplane.
    pub remote: u64,
    /// Messages of this node that the backplane echoed back, not delivered twice.
    pub echoes_suppressed: u64,
    /// Messages from the backplane refused by [`Payload::from_bytes`](crate::Payload::from_bytes).
    pub rejected: u64,
    /// Messages the backplane could not carry to other nodes (queue full, connection lost).
    pub backplane_lost: u64,
    /// Gaps reported to subscribers ([`Delivery::Gap`](crate::Delivery::Gap)), one per topic
    /// and reconnection.
    pub gaps: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) published_bytes: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) slow_consumer_closes: AtomicU64,
    pub(crate) remote: AtomicU64,
    pub(crate) echoes_suppressed: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) backplane_lost: AtomicU64,
    pub(crate) gaps: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Metrics {
            published: get(&self.published),
            published_bytes: get(&self.published_bytes),
            delivered: get(&self.delivered),
            delivered_bytes: get(&self.delivered_bytes),
            dropped: get(&self.dropped),
            slow_consumer_closes: get(&self.slow_consumer_closes),
            remote: get(&self.remote),
            echoes_suppressed: get(&self.echoes_suppressed),
            rejected: get(&self.rejected),
            backplane_lost: get(&self.backplane_lost),
            gaps: get(&self.gaps),
        }
    }
}
