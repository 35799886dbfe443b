//! What a subscriber receives.

use crate::topic::Topic;

/// One item out of a [`Subscriber`](crate::Subscriber)'s queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery<P> {
    /// A message published to a topic this subscriber is subscribed to; `payload` shares the
    /// published allocation.
    Message {
        /// The topic it was published to.
        topic: Topic,
        /// The payload.
        payload: P,
    },
    /// Messages of `topic` may have been lost: the backplane was disconnected and has
    /// resubscribed since. Published on other nodes during the outage, they never arrive.
    Gap {
        /// The topic.
        topic: Topic,
    },
    /// Under [`SlowConsumer::DropOldest`](crate::SlowConsumer::DropOldest): this many
    /// deliveries were dropped from the front of the queue since the last report. Reported
    /// before the next delivery.
    Dropped {
        /// Deliveries dropped.
        count: u64,
    },
}
