//! The outbox: messages accepted while the link is down (or busy), bounded three ways.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{Error, OutboxLimit};

/// What to do when a message does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Refuse the new message with [`Error::OutboxFull`]. Nothing is dropped.
    #[default]
    Reject,
    /// Drop the oldest messages to make room, and report how many in an event.
    DropOldest,
}

/// Outbox bounds.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::OutboxConfig;
///
/// let mut config = OutboxConfig::default();
/// config.set_max_messages(100).set_max_bytes(64 * 1024).set_max_age(Some(Duration::from_secs(30)));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    max_messages: usize,
    max_bytes: usize,
    max_age: Option<Duration>,
    overflow: Overflow,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_messages: 1024,
            max_bytes: 1 << 20,
            max_age: Some(Duration::from_secs(60)),
            overflow: Overflow::Reject,
        }
    }
}

impl OutboxConfig {
    /// Most messages held. Default 1024; at least 1.
    pub fn set_max_messages(&mut self, messages: usize) -> &mut Self {
        self.max_messages = messages;
        self
    }

    /// The value set with [`set_max_messages`](Self::set_max_messages).
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Most bytes held (as measured by the probe's `len`). Default 1 MiB; at least 1.
    pub fn set_max_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_bytes = bytes;
        self
    }

    /// The value set with [`set_max_bytes`](Self::set_max_bytes).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Oldest a held message may grow before it is dropped (and reported) instead of
    /// sent. Default 60 s; `None` keeps messages until they are sent.
    pub fn set_max_age(&mut self, age: Option<Duration>) -> &mut Self {
        self.max_age = age;
        self
    }

    /// The value set with [`set_max_age`](Self::set_max_age).
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// What to do when a message does not fit. Default [`Overflow::Reject`].
    pub fn set_overflow(&mut self, overflow: Overflow) -> &mut Self {
        self.overflow = overflow;
        self
    }

    /// The value set with [`set_overflow`](Self::set_overflow).
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, problem| Err(Error::InvalidConfig { field, problem });
        if self.max_messages == 0 {
            return invalid("max_messages", "must be at least 1");
        }
        if self.max_bytes == 0 {
            return invalid("max_bytes", "must be at least 1");
        }
        if self.max_age.is_some_and(|a| a.is_zero()) {
            return invalid("max_age", "must be above zero (use None for no limit)");
        }
        Ok(())
    }
}

/// A FIFO of messages waiting for the transport, bounded by count, bytes and age.
///
/// Order is kept: messages leave in the order they were accepted. Overflow is never
/// silent: it is an error to the caller, or (with [`Overflow::DropOldest`]) a count the
/// caller reports.
///
/// ```
/// use std::time::Instant;
/// use tether_heartbeat::sans_io::Outbox;
/// use tether_heartbeat::{Error, OutboxConfig};
///
/// let mut config = OutboxConfig::default();
/// config.set_max_messages(2);
/// let mut outbox = Outbox::new(&config);
/// let now = Instant::now();
/// outbox.push(now, "a", 1).unwrap();
/// outbox.push(now, "b", 1).unwrap();
/// assert!(matches!(outbox.push(now, "c", 1), Err(Error::OutboxFull { .. })));
/// assert_eq!(outbox.pop(now), Some("a"));
/// ```
#[derive(Debug)]
pub struct Outbox<M> {
    config: OutboxConfig,
    queue: VecDeque<Entry<M>>,
    bytes: usize,
    expired: u64,
}

#[derive(Debug)]
struct Entry<M> {
    at: Instant,
    len: usize,
    message: M,
}

impl<M> Outbox<M> {
    /// An empty outbox.
    pub fn new(config: &OutboxConfig) -> Self {
        Outbox {
            config: *config,
            queue: VecDeque::new(),
            bytes: 0,
            expired: 0,
        }
    }

    /// Accepts `message` of `len` bytes at `now`. Returns how many old messages were
    /// dropped to make room (only with [`Overflow::DropOldest`]).
    pub fn push(&mut self, now: Instant, message: M, len: usize) -> Result<usize, Error> {
        self.try_push(now, message, len).map_err(|(error, _)| error)
    }

    /// [`push`](Self::push), giving the message back when it is refused.
    pub(crate) fn try_push(
        &mut self,
        now: Instant,
        message: M,
        len: usize,
    ) -> Result<usize, (Error, M)> {
        self.expire(now);
        if len > self.config.max_bytes {
            let max = self.config.max_bytes;
            return Err((Error::MessageTooLarge { len, max }, message));
        }
        let mut dropped = 0;
        loop {
            match (self.limit_for(len), self.config.overflow) {
                (None, _) => break,
                (Some(limit), Overflow::Reject) => {
                    return Err((Error::OutboxFull { limit }, message))
                }
                (Some(_), Overflow::DropOldest) => {
                    if let Some(old) = self.queue.pop_front() {
                        self.bytes -= old.len;
                        dropped += 1;
                    }
                }
            }
        }
        self.bytes += len;
        self.queue.push_back(Entry {
            at: now,
            len,
            message,
        });
        Ok(dropped)
    }

    /// Whether a message of `len` bytes would be accepted at `now` without dropping
    /// anything: `Ok(false)` while the outbox is full, an error if it can never fit.
    /// With [`Overflow::DropOldest`] a message that can fit always fits (old ones make
    /// room).
    pub fn has_room(&mut self, now: Instant, len: usize) -> Result<bool, Error> {
        self.expire(now);
        if len > self.config.max_bytes {
            return Err(Error::MessageTooLarge {
                len,
                max: self.config.max_bytes,
            });
        }
        Ok(self.config.overflow == Overflow::DropOldest || self.limit_for(len).is_none())
    }

    /// The bound a new message of `len` bytes would break, if any.
    fn limit_for(&self, len: usize) -> Option<OutboxLimit> {
        if self.queue.len() >= self.config.max_messages {
            Some(OutboxLimit::Messages)
        } else if self.bytes + len > self.config.max_bytes {
            Some(OutboxLimit::Bytes)
        } else {
            None
        }
    }

    /// Takes the oldest message that is not expired at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<M> {
        self.pop_entry(now).map(|(_, _, message)| message)
    }

    /// Takes the oldest unexpired message with its acceptance time and size, so it can be
    /// [`restore`](Self::restore)d if it could not be written after all.
    pub(crate) fn pop_entry(&mut self, now: Instant) -> Option<(Instant, usize, M)> {
        self.expire(now);
        let entry = self.queue.pop_front()?;
        self.bytes -= entry.len;
        Some((entry.at, entry.len, entry.message))
    }

    /// Puts back at the front a message taken by `pop_entry` that never reached the
    /// transport. It was accepted once, so the bounds are not checked again.
    pub(crate) fn restore(&mut self, at: Instant, len: usize, message: M) {
        self.bytes += len;
        self.queue.push_front(Entry { at, len, message });
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes the count of messages dropped for age since the last call.
    pub fn take_expired(&mut self) -> u64 {
        std::mem::take(&mut self.expired)
    }

    fn expire(&mut self, now: Instant) {
        let Some(max_age) = self.config.max_age else {
            return;
        };
        while let Some(front) = self.queue.front() {
            if now.saturating_duration_since(front.at) <= max_age {
                break;
            }
            self.bytes -= front.len;
            self.queue.pop_front();
            self.expired += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(messages: usize, bytes: usize, age: Option<u64>) -> Outbox<u32> {
        let mut config = OutboxConfig::default();
        config
            .set_max_messages(messages)
            .set_max_bytes(bytes)
            .set_max_age(age.map(Duration::from_secs));
        Outbox::new(&config)
    }

    #[test]
    fn count_limit_at_limit_and_one_past() {
        let now = Instant::now();
        let mut out = outbox(3, 1000, None);
        for i in 0..3 {
            assert_eq!(out.push(now, i, 1), Ok(0));
        }
        assert_eq!(
            out.push(now, 3, 1),
            Err(Error::OutboxFull {
                limit: OutboxLimit::Messages
            })
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn has_room_agrees_with_push_at_each_bound() {
        let now = Instant::now();
        let mut out = outbox(2, 10, Some(5));
        assert_eq!(out.has_room(now, 10), Ok(true));
        assert_eq!(
            out.has_room(now, 11),
            Err(Error::MessageTooLarge { len: 11, max: 10 })
        );
        out.push(now, 0, 6).unwrap();
        assert_eq!(out.has_room(now, 4), Ok(true));
        assert_eq!(out.has_room(now, 5), Ok(false), "bytes: 6 + 5 > 10");
        out.push(now, 1, 1).unwrap();
        assert_eq!(out.has_room(now, 1), Ok(false), "count: 2 held");
        // Room comes back when a message leaves, or expires.
        assert_eq!(out.pop(now), Some(0));
        assert_eq!(out.has_room(now, 1), Ok(true));
        assert_eq!(out.has_room(now + Duration::from_secs(6), 9), Ok(true));
        assert!(out.is_empty(), "the expired message was dropped");

        let mut config = OutboxConfig::default();
        config
            .set_max_messages(1)
            .set_overflow(Overflow::DropOldest);
        let mut dropping = Outbox::new(&config);
        dropping.push(now, 0u32, 1).unwrap();
        assert_eq!(dropping.has_room(now, 1), Ok(true), "the oldest makes room");
    }

    #[test]
    fn byte_limit_at_limit_and_one_past() {
        let now = Instant::now();
        let mut out = outbox(100, 10, None);
        assert_eq!(out.push(now, 0, 6), Ok(0));
        assert_eq!(out.push(now, 1, 4), Ok(0));
        assert_eq!(out.bytes(), 10);
        assert_eq!(
            out.push(now, 2, 1),
            Err(Error::OutboxFull {
                limit: OutboxLimit::Bytes
            })
        );
        assert_eq!(
            out.push(now, 3, 11),
            Err(Error::MessageTooLarge { len: 11, max: 10 })
        );
    }

    #[test]
    fn age_limit_at_limit_kept_one_past_dropped_and_counted() {
        let t0 = Instant::now();
        let mut out = outbox(100, 1000, Some(10));
        out.push(t0, 0, 1).unwrap();
        out.push(t0 + Duration::from_secs(1), 1, 1).unwrap();
        assert_eq!(out.pop(t0 + Duration::from_secs(10)), Some(0));
        out.push(t0 + Duration::from_secs(10), 2, 1).unwrap();
        let late = t0 + Duration::from_secs(11) + Duration::from_nanos(1);
        assert_eq!(out.pop(late), Some(2));
        assert_eq!(out.take_expired(), 1);
        assert_eq!(out.take_expired(), 0);
        assert!(out.is_empty());
        assert_eq!(out.bytes(), 0);
    }

    #[test]
    fn order_is_kept() {
        let now = Instant::now();
        let mut out = outbox(1000, 100_000, None);
        for i in 0..500 {
            out.push(now, i, 3).unwrap();
        }
        let popped: Vec<u32> = std::iter::from_fn(|| out.pop(now)).collect();
        assert_eq!(popped, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn drop_oldest_reports_what_it_dropped() {
        let now = Instant::now();
        let mut config = OutboxConfig::default();
        config
            .set_max_messages(2)
            .set_max_bytes(1000)
            .set_overflow(Overflow::DropOldest);
        let mut out = Outbox::new(&config);
        out.push(now, 0u32, 1).unwrap();
        out.push(now, 1, 1).unwrap();
        assert_eq!(out.push(now, 2, 1), Ok(1));
        assert_eq!(out.pop(now), Some(1));
        assert_eq!(out.pop(now), Some(2));
    }
}
