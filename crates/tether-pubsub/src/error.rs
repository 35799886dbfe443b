//! The crate's error.

/// What went wrong with a topic operation or a subscriber.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The subscriber fell more than its queue limit behind and was cut off
    /// ([`SlowConsumer::Close`](crate::SlowConsumer::Close)); a WebSocket server closes the
    /// connection with 1013 (Try Again Later).
    #[error("subscriber fell more than {limit} bytes behind and was cut off")]
    SlowConsumer {
        /// The queue limit, in bytes.
        limit: usize,
    },
    /// A topic name was empty.
    #[error("topic name is empty")]
    EmptyTopic,
    /// A topic name was longer than [`Config::max_topic_len`](crate::Config::max_topic_len).
    #[error("topic name of {len} bytes is longer than the limit of {limit}")]
    TopicTooLong {
        /// Length of the name, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A subscriber tried to join more topics than
    /// [`Config::max_topics_per_subscriber`](crate::Config::max_topics_per_subscriber).
    #[error("already subscribed to {limit} topics, the limit")]
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
    /// The backplane could not be set up (a Redis URL that does not parse, say).
    #[error("backplane: {0}")]
    Backplane(String),
}
