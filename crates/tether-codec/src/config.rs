//! Limits and options of the codec.

use std::num::NonZeroUsize;

/// Default for [`Config::set_max_frame_payload`]: 16 MiB.
const DEFAULT_MAX_FRAME_PAYLOAD: usize = 16 << 20;
/// Default for [`Config::set_max_message_size`]: 16 MiB.
const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Default for [`Config::set_fragment_overhead`]: a continuation frame counts at least 64 bytes.
const DEFAULT_FRAGMENT_OVERHEAD: usize = 64;

/// Limits and options for decoding, and how long messages are cut when sent; the same value
/// works for both roles.
///
/// Every limit is checked against the frame header, before the payload is buffered, so a
/// peer announcing a huge frame costs nothing.
///
/// ```
/// use tether_codec::Config;
/// let mut config = Config::default();
/// config.set_max_frame_payload(1 << 20).set_max_message_size(4 << 20);
/// assert_eq!(config.max_frame_payload(), 1 << 20);
/// assert_eq!(config.max_message_size(), 4 << 20);
/// assert_eq!(config.fragment_overhead(), 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    max_frame_payload: usize,
    max_message_size: usize,
    fragment_overhead: usize,
    rsv1_allowed: bool,
    send_fragment_size: Option<NonZeroUsize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_payload: DEFAULT_MAX_FRAME_PAYLOAD,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            fragment_overhead: DEFAULT_FRAGMENT_OVERHEAD,
            rsv1_allowed: false,
            send_fragment_size: None,
        }
    }
}

impl Config {
    /// Largest payload of one received data frame, in bytes. Default 16 MiB.
    ///
    /// Applies to received frames only; a larger frame fails the connection with 1009.
    pub fn set_max_frame_payload(&mut self, bytes: usize) -> &mut Self {
        self.max_frame_payload = bytes;
        self
    }

    /// Largest size of one received message, in bytes. Default 16 MiB.
    ///
    /// A message's size is its payload, where each continuation frame counts at least
    /// [`Config::set_fragment_overhead`] bytes, so a flood of tiny or empty fragments
    /// reaches the limit too, while a message cut into fragments no smaller than that
    /// counts exactly its payload. A larger message fails the connection with 1009.
    /// Applies to received messages only.
    pub fn set_max_message_size(&mut self, bytes: usize) -> &mut Self {
        self.max_message_size = bytes;
        self
    }

    /// The least a continuation frame counts against the message size, in bytes. Default 64.
    ///
    /// This bounds the work a peer can cause with fragments that carry little or nothing (with
    /// the defaults, at most 256 Ki fragments a message), and costs nothing to fragments of
    /// 64 bytes or more: a 16 MiB message relayed in 64 KiB fragments still passes.
    pub fn set_fragment_overhead(&mut self, bytes: usize) -> &mut Self {
        self.fragment_overhead = bytes;
        self
    }

    /// Accepts RSV1 on received data frames, for a negotiated extension such as
    /// permessage-deflate (RFC 7692). Default `false`: RSV1 fails the connection with 1002.
    ///
    /// The bit is passed through on [`Frame`](crate::Frame)s by
    /// [`FrameCodec`](crate::FrameCodec); interpreting it is the extension's job. The
    /// [`Protocol`](crate::Protocol) ignores this setting: it accepts RSV1 exactly when
    /// permessage-deflate is on ([`Protocol::set_deflate`](crate::Protocol::set_deflate)).
    pub fn set_rsv1_allowed(&mut self, allowed: bool) -> &mut Self {
        self.rsv1_allowed = allowed;
        self
    }

    /// Largest payload of one sent data frame, in bytes; a longer text or binary message (or
    /// fragment) goes out as fragments of this size (RFC 6455 §5.4). Default `None`: every
    /// message is one frame.
    ///
    /// Applies to sent messages only. Small fragments let control frames (a pong, a heartbeat
    /// ping) go out between them instead of waiting behind a large message in the same queue;
    /// the peer still receives one message.
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use tether_codec::{Config, Message, Protocol};
    ///
    /// let mut config = Config::default();
    /// config.set_send_fragment_size(NonZeroUsize::new(2));
    /// let mut server = Protocol::server(config);
    /// server.send(Message::binary(vec![1, 2, 3])).unwrap();
    /// assert_eq!(&server.write_buffer()[..], [0x02, 2, 1, 2, 0x80, 1, 3]);
    /// ```
    pub fn set_send_fragment_size(&mut self, bytes: Option<NonZeroUsize>) -> &mut Self {
        self.send_fragment_size = bytes;
        self
    }

    /// See [`Config::set_max_frame_payload`].
    pub fn max_frame_payload(&self) -> usize {
        self.max_frame_payload
    }

    /// See [`Config::set_max_message_size`].
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// See [`Config::set_fragment_overhead`].
    pub fn fragment_overhead(&self) -> usize {
        self.fragment_overhead
    }

    /// See [`Config::set_send_fragment_size`].
    pub fn send_fragment_size(&self) -> Option<NonZeroUsize> {
        self.send_fragment_size
    }

    /// See [`Config::set_rsv1_allowed`].
    pub fn rsv1_allowed(&self) -> bool {
        self.rsv1_allowed
    }
}
