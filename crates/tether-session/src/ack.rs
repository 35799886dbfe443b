//! When a receiver acknowledges: after `every` data messages or `bytes` of them, or `delay`
//! after the first one it has not reported, whichever comes first; at once on the peer's
//! `end` (docs/sessions.md §5).

use std::time::{Duration, Instant};

/// The receive count and what of it the peer has been told.
#[derive(Debug, Clone)]
pub(crate) struct AckClock {
    received: u64,
    reported: u64,
    unreported_bytes: usize,
    /// `delay` after the first message not reported yet: computed once when it arrives, as
    /// it is asked for several times per message.
    deadline: Option<Instant>,
    urgent: bool,
    every: u64,
    /// Unreported data bytes that make an ack due.
    bytes: usize,
    delay: Duration,
}

impl AckClock {
    pub(crate) fn new(every: u64, bytes: usize, delay: Duration) -> Self {
        AckClock {
            received: 0,
            reported: 0,
            unreported_bytes: 0,
            deadline: None,
            urgent: false,
            every,
            bytes,
            delay,
        }
    }

    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// One more data message, of `len` bytes, arrived.
    pub(crate) fn on_data(&mut self, now: Instant, len: usize) {
        self.received += 1;
        self.unreported_bytes = self.unreported_bytes.saturating_add(len);
        if self.deadline.is_none() {
            self.deadline = Some(now + self.delay);
        }
    }

    /// Acknowledge at the next chance, whatever the count (the peer's `end`).
    pub(crate) fn hurry(&mut self) {
        self.urgent = true;
    }

    /// Whether an ack is due at `now`.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.urgent
            || self.received - self.reported >= self.every
            || self.unreported_bytes >= self.bytes
            || self.deadline().is_some_and(|at| at <= now)
    }

    /// Whether an ack is due by count or bytes alone: not asked for at once (the peer's
    /// `end`).
    pub(crate) fn routine(&self) -> bool {
        !self.urgent
            && (self.received - self.reported >= self.every || self.unreported_bytes >= self.bytes)
    }

    /// When an ack falls due by time, if something is unreported.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The current count went out (in any control message that carries it).
    pub(crate) fn reported(&mut self) -> u64 {
        self.reported = self.received;
        self.unreported_bytes = 0;
        self.deadline = None;
        self.urgent = false;
        self.received
    }

    /// Whether the peer has been told every message received.
    pub(crate) fn all_reported(&self) -> bool {
        self.reported == self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_every_messages_or_after_the_delay() {
        let start = Instant::now();
        let mut clock = AckClock::new(3, 64 << 10, Duration::from_millis(200));
        assert!(!clock.due(start));
        clock.on_data(start, 1);
        clock.on_data(start, 1);
        assert!(!clock.due(start));
        assert_eq!(clock.deadline(), Some(start + Duration::from_millis(200)));
        assert!(!clock.due(start + Duration::from_millis(199)));
        assert!(clock.due(start + Duration::from_millis(200)));
        clock.on_data(start, 1);
        assert!(clock.due(start));
        assert_eq!(clock.reported(), 3);
        assert!(!clock.due(start + Duration::from_secs(9)));
        assert_eq!(clock.deadline(), None);
        clock.hurry();
        assert!(clock.due(start));
    }

    #[test]
    fn due_after_ack_bytes_of_data_at_the_limit_not_one_byte_under() {
        let start = Instant::now();
        let bytes = 256 << 10;
        let mut clock = AckClock::new(32, bytes, Duration::from_millis(200));
        clock.on_data(start, bytes - 1);
        assert!(!clock.due(start));
        clock.on_data(start, 1);
        assert!(clock.due(start));
        clock.reported();
        assert!(!clock.due(start));
    }
}
