//! The replay buffer: numbered messages sent and not yet acknowledged, bounded by count
//! and bytes.

use std::collections::VecDeque;

use crate::error::Error;

/// Sent messages the peer has not acknowledged, numbered from 1, in order.
///
/// ```
/// use tether_session::ReplayBuffer;
///
/// let mut replay = ReplayBuffer::new(2, 100);
/// assert_eq!(replay.push("a", 1), Ok(1));
/// assert_eq!(replay.push("b", 1), Ok(2));
/// assert!(replay.push("c", 1).is_err()); // full: two messages
/// replay.acknowledge(1);
/// assert_eq!(replay.push("c", 1), Ok(3));
/// assert_eq!(replay.get(2), Some(&"b"));
/// assert_eq!(replay.acked(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct ReplayBuffer<M> {
    entries: VecDeque<(M, usize)>,
    /// Messages acknowledged (and dropped): the first entry is number `acked + 1`.
    acked: u64,
    bytes: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl<M> ReplayBuffer<M> {
    /// An empty buffer with these bounds.
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        ReplayBuffer {
            entries: VecDeque::new(),
            acked: 0,
            bytes: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Whether a message of `len` bytes (plus `queued` messages of `queued_bytes` promised
    /// elsewhere) fits now.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] if it could never fit, [`Error::Full`] if not now.
    pub fn check_room(&self, queued: usize, queued_bytes: usize, len: usize) -> Result<(), Error> {
        if len > self.max_bytes {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_bytes,
            });
        }
        let messages = self.entries.len() + queued;
        let bytes = self.bytes + queued_bytes;
        if messages >= self.max_messages || bytes + len > self.max_bytes {
            return Err(Error::Full { messages, bytes });
        }
        Ok(())
    }

    /// Keeps `message` (of `len` bytes) and gives its number.
    ///
    /// # Errors
    ///
    /// As [`check_room`](Self::check_room); the message is not kept.
    pub fn push(&mut self, message: M, len: usize) -> Result<u64, Error> {
        self.check_room(0, 0, len)?;
        self.entries.push_back((message, len));
        self.bytes += len;
        Ok(self.sent())
    }

    /// Drops every message numbered up to `received` (the caller checked it is at most
    /// [`sent`](Self::sent)); a count at or below [`acked`](Self::acked) changes nothing.
    pub fn acknowledge(&mut self, received: u64) {
        while self.acked < received {
            match self.entries.pop_front() {
                Some((_, len)) => {
                    self.bytes -= len;
                    self.acked += 1;
                }
                None => break,
            }
        }
    }

    /// The message numbered `number`, if still held.
    pub fn get(&self, number: u64) -> Option<&M> {
        let index = number.checked_sub(self.acked + 1)?;
        self.entries
            .get(usize::try_from(index).ok()?)
            .map(|(m, _)| m)
    }

    /// Messages numbered so far.
    pub fn sent(&self) -> u64 {
        self.acked + self.entries.len() as u64
    }

    /// Messages acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_count_bound_at_the_limit_and_one_past() {
        let mut replay = ReplayBuffer::new(3, 1000);
        for n in 1..=3 {
            assert_eq!(replay.push(n, 1), Ok(n));
        }
        assert_eq!(
            replay.push(4, 1),
            Err(Error::Full {
                messages: 3,
                bytes: 3
            })
        );
        assert_eq!(replay.len(), 3);
    }

    #[test]
    fn replay_byte_bound_at_the_limit_and_one_past() {
        let mut replay = ReplayBuffer::new(100, 10);
        assert_eq!(replay.push('a', 6), Ok(1));
        assert_eq!(replay.push('b', 4), Ok(2));
        assert_eq!(replay.bytes(), 10);
        assert!(matches!(replay.push('c', 1), Err(Error::Full { .. })));
        assert_eq!(
            replay.push('d', 11),
            Err(Error::MessageTooLarge { len: 11, max: 10 })
        );
        replay.acknowledge(1);
        assert_eq!(replay.bytes(), 4);
        assert_eq!(replay.push('c', 6), Ok(3));
    }

    #[test]
    fn queued_messages_count_against_the_room() {
        let replay: ReplayBuffer<()> = ReplayBuffer::new(4, 10);
        assert!(replay.check_room(3, 9, 1).is_ok());
        assert!(replay.check_room(4, 0, 1).is_err());
        assert!(replay.check_room(3, 9, 2).is_err());
    }

    #[test]
    fn acknowledge_drops_in_order_and_numbers_keep_counting() {
        let mut replay = ReplayBuffer::new(10, 100);
        for n in 1..=5u64 {
            replay.push(n, 1).unwrap();
        }
        replay.acknowledge(3);
        assert_eq!(replay.acked(), 3);
        assert_eq!(replay.get(3), None);
        assert_eq!(replay.get(4), Some(&4));
        assert_eq!(replay.get(6), None);
        replay.acknowledge(2);
        assert_eq!(replay.acked(), 3);
        assert_eq!(replay.push(6, 1), Ok(6));
        replay.acknowledge(6);
        assert!(replay.is_empty());
        assert_eq!(replay.bytes(), 0);
    }
}
