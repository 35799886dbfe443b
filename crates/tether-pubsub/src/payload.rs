//! What a topic carries: anything shared by reference counting and convertible to bytes.

use bytes::Bytes;

/// A message payload. Cloning must be cheap and share the bytes (a reference count, as
/// [`Bytes`] does): a message is handed to every subscriber as a clone, never copied.
///
/// [`to_bytes`](Payload::to_bytes) and [`from_bytes`](Payload::from_bytes) carry it over a
/// backplane; `from_bytes` runs once per message and node, not per subscriber, so a type
/// that checks its bytes (UTF-8 text, say) checks them once.
pub trait Payload: Clone + Send + Sync + 'static {
    /// Bytes this payload counts against a subscriber's queue limit.
    fn size(&self) -> usize;
    /// The bytes that cross the backplane.
    fn to_bytes(&self) -> Bytes;
    /// A payload from bytes that crossed the backplane; `None` refuses them (counted in
    /// [`Metrics::rejected`](crate::Metrics::rejected)).
    fn from_bytes(bytes: Bytes) -> Option<Self>;
}

impl Payload for Bytes {
    fn size(&self) -> usize {
        self.len()
    }

    fn to_bytes(&self) -> Bytes {
        self.clone()
    }

    fn from_bytes(bytes: Bytes) -> Option<Self> {
        Some(bytes)
    }
}
