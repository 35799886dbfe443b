//! Limits of a [`Bus`](crate::Bus) and its slow-consumer policy.

/// What happens to a subscriber whose queue would grow past
/// [`Config::max_queued_bytes`]: it fell behind the publishers.
///
/// Either way the bound holds and the publisher never waits: a slow subscriber costs the
/// others nothing, and costs the server at most its queue limit (or one message, when a
/// single message is larger than the limit and the queue was empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Cut the subscriber off: its queue is freed at once, nothing more is queued for it, and
    /// [`Subscriber::recv`](crate::Subscriber::recv) returns
    /// [`Error::SlowConsumer`](crate::Error::SlowConsumer) from then on. A WebSocket server
    /// closes the connection with 1013 (Try Again Later). The default: a client never
    /// silently misses a message.
    #[default]
    Close,
    /// Drop the oldest queued messages until the new one fits, count them, and report the
    /// count to the subscriber as [`Delivery::Dropped`](crate::Delivery::Dropped) before the
    /// next message it receives. For feeds where the latest value is what matters.
    DropOldest,
}

/// Limits of a [`Bus`](crate::Bus), each with a finite default.
///
/// ```
/// use tether_pubsub::{Config, SlowConsumer};
///
/// let mut config = Config::default();
/// config.set_max_queued_bytes(64 << 10).set_slow_consumer(SlowConsumer::DropOldest);
/// assert_eq!(config.max_queued_bytes(), 64 << 10);
/// assert_eq!(config.max_topic_len(), 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    max_queued_bytes: usize,
    slow_consumer: SlowConsumer,
    max_topic_len: usize,
    max_topics_per_subscriber: usize,
}

/// What one queued delivery costs besides its payload, in the byte count of a queue: a
/// stream of empty messages must fill a queue too.
pub(crate) const ITEM_OVERHEAD: usize = 64;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_queued_bytes: 1 << 20,
            slow_consumer: SlowConsumer::Close,
            max_topic_len: 128,
            max_topics_per_subscriber: 64,
        }
    }
}

impl Config {
    /// Bytes a subscriber may have queued and not yet received: each delivery counts its
    /// payload plus 64 bytes. Default 1 MiB. An empty queue always takes the next message,
    /// so a message larger than this still reaches subscribers that keep up.
    pub fn set_max_queued_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// The value set with [`set_max_queued_bytes`](Self::set_max_queued_bytes).
    pub fn max_queued_bytes(&self) -> usize {
        self.max_queued_bytes
    }

    /// What happens to a subscriber past its queue limit. Default [`SlowConsumer::Close`].
    pub fn set_slow_consumer(&mut self, policy: SlowConsumer) -> &mut Self {
        self.slow_consumer = policy;
        self
    }

    /// The value set with [`set_slow_consumer`](Self::set_slow_consumer).
    pub fn slow_consumer(&self) -> SlowConsumer {
        self.slow_consumer
    }

    /// Longest topic name, in bytes (UTF-8). Default 128; a topic name is never empty.
    pub fn set_max_topic_len(&mut self, bytes: usize) -> &mut Self {
        self.max_topic_len = bytes;
        self
    }

    /// The value set with [`set_max_topic_len`](Self::set_max_topic_len).
    pub fn max_topic_len(&self) -> usize {
        self.max_topic_len
    }

    /// Most topics one subscriber may be subscribed to at once. Default 64.
    pub fn set_max_topics_per_subscriber(&mut self, topics: usize) -> &mut Self {
        self.max_topics_per_subscriber = topics;
        self
    }

    /// The value set with [`set_max_topics_per_subscriber`](Self::set_max_topics_per_subscriber).
    pub fn max_topics_per_subscriber(&self) -> usize {
        self.max_topics_per_subscriber
    }
}
