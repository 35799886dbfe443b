//! Received messages the library holds for a while (a session's queue for its application, a
//! broadcast subscriber's backlog): what each counts against its bound, and a copy of short
//! ones.
//!
//! A received message shares the read buffer it arrived in, so holding it holds the whole
//! buffer: a 16-byte message keeps 8 KiB alive, and a peer that sends one message per read
//! makes every one do so. A bound that counts only payloads would then hold hundreds of
//! times the bytes it counts, and none at all for empty messages.

use bytes::Bytes;
use tether_codec::Message;

/// What a held message counts for beyond its payload: its place in a queue and in an
/// allocation. Empty messages count too.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// Held messages shorter than this are copied into an allocation of their own. One at least
/// this long keeps at most about twice its size (read buffers are sized from the announced
/// length), and is shared as it is.
pub(crate) const COPY_BELOW: usize = 4 << 10;

/// What `message` counts for against a bound on held messages.
pub(crate) fn cost(message: &Message) -> usize {
    message.len() + MESSAGE_OVERHEAD
}

/// `message`, in an allocation of its own when it is shorter than [`COPY_BELOW`], so that
/// holding it does not hold the read buffer it arrived in.
pub(crate) fn own_copy_if_small(message: Message) -> Message {
    match message {
        Message::Binary(bytes) if bytes.len() < COPY_BELOW => {
            Message::Binary(Bytes::copy_from_slice(&bytes))
        }
        Message::Text(text) if text.len() < COPY_BELOW => Message::text(text.as_str()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;

    /// A short message copied leaves its read buffer: once the connection's own handle is
    /// the last, it takes the whole allocation back. One of COPY_BELOW bytes stays shared.
    /// Text is copied as text.
    #[test]
    fn a_short_message_leaves_its_read_buffer_and_a_long_one_shares_it() {
        for (len, shares) in [(COPY_BELOW - 1, false), (COPY_BELOW, true)] {
            let mut read = BytesMut::with_capacity(4 * COPY_BELOW);
            read.extend_from_slice(&vec![b'x'; 2 * COPY_BELOW]);
            let received = read.split_to(len).freeze();
            let at = received.as_ptr();
            let held = own_copy_if_small(Message::Binary(received));
            read.clear();
            assert_eq!(!read.try_reclaim(4 * COPY_BELOW), shares, "{len} bytes");
            assert_eq!(held, Message::binary(vec![b'x'; len]));
            let Message::Binary(held) = held else {
                panic!("binary in, binary out")
            };
            assert_eq!(held.as_ptr() == at, shares, "{len} bytes");
        }
        assert_eq!(
            own_copy_if_small(Message::text("short")),
            Message::text("short")
        );
    }
}
