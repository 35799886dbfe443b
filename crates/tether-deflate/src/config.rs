//! What one endpoint wants from permessage-deflate, for both roles.

use crate::{DeflateError, WindowBits};

/// A compression level, 0 (store only) ..= 9 (smallest output); zlib's default is 6.
///
/// ```
/// use tether_deflate::Level;
/// assert_eq!(Level::new(1).unwrap().get(), 1);
/// assert!(Level::new(10).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(u32);

impl Level {
    /// `level` if it is in 0..=9, else [`DeflateError::BadLevel`].
    pub fn new(level: u32) -> Result<Self, DeflateError> {
        if level <= 9 {
            Ok(Level(level))
        } else {
            Err(DeflateError::BadLevel(level))
        }
    }

    /// The level.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Level {
    fn default() -> Self {
        Level(6)
    }
}

/// What this endpoint wants from permessage-deflate: the window sizes and context takeover of
/// both directions, the level and the compression threshold. The same value serves a client
/// (it becomes the offer, see [`DeflateConfig::offer`]) and a server (it says which offers to
/// accept and how, see [`DeflateConfig::accept_offer`]).
///
/// Values are valid by construction ([`WindowBits`], [`Level`] check their ranges), so no
/// combination of setters can make an invalid config.
///
/// ```
/// use tether_deflate::{DeflateConfig, WindowBits};
/// let mut config = DeflateConfig::default();
/// config
///     .set_server_max_window_bits(WindowBits::new(10).unwrap())
///     .set_server_no_context_takeover(true);
/// assert_eq!(config.server_max_window_bits().get(), 10);
/// assert!(config.server_no_context_takeover());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    client_max_window_bits: WindowBits,
    server_max_window_bits: WindowBits,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
    level: Level,
    threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            client_max_window_bits: WindowBits::MAX,
            server_max_window_bits: WindowBits::MAX,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            level: Level::default(),
            threshold: 64,
        }
    }
}

impl DeflateConfig {
    /// The largest LZ77 window the client may compress with (client → server direction).
    /// Default 15 (32 KiB). A client offers it as `client_max_window_bits` (without a value
    /// when 15) and compresses with it; a server lowers the client's window to it, and
    /// declines offers without `client_max_window_bits` when it is below 15, since it could not
    /// bound the window it inflates with. It sizes the server's inflater: 2^bits bytes.
    pub fn set_client_max_window_bits(&mut self, bits: WindowBits) -> &mut Self {
        self.client_max_window_bits = bits;
        self
    }

    /// See [`DeflateConfig::set_client_max_window_bits`].
    pub fn client_max_window_bits(&self) -> WindowBits {
        self.client_max_window_bits
    }

    /// The largest LZ77 window the server may compress with (server → client direction).
    /// Default 15 (32 KiB). A client below 15 offers `server_max_window_bits`; a server
    /// compresses with at most it and tells the client so. The deflater holds about
    /// 2^bits × 8 bytes (see the crate doc's measurements).
    pub fn set_server_max_window_bits(&mut self, bits: WindowBits) -> &mut Self {
        self.server_max_window_bits = bits;
        self
    }

    /// See [`DeflateConfig::set_server_max_window_bits`].
    pub fn server_max_window_bits(&self) -> WindowBits {
        self.server_max_window_bits
    }

    /// Whether the client starts every message with an empty window (client → server).
    /// Default `false`. A client offers `client_no_context_takeover` and resets its deflater
    /// after each message; a server asks for it in its response. The side that resets frees
    /// its state between messages.
    pub fn set_client_no_context_takeover(&mut self, on: bool) -> &mut Self {
        self.client_no_context_takeover = on;
        self
    }

    /// See [`DeflateConfig::set_client_no_context_takeover`].
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// Whether the server starts every message with an empty window (server → client).
    /// Default `false`. A client offers `server_no_context_takeover` and fails the connection
    /// if the server does not accept it; a server announces it in its response. This is how a
    /// server with many connections trades ratio for memory: its deflater is freed after each
    /// message.
    pub fn set_server_no_context_takeover(&mut self, on: bool) -> &mut Self {
        self.server_no_context_takeover = on;
        self
    }

    /// See [`DeflateConfig::set_server_no_context_takeover`].
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// The compression level of outgoing messages. Default 6 (zlib's default). Local only:
    /// it is not negotiated.
    pub fn set_level(&mut self, level: Level) -> &mut Self {
        self.level = level;
        self
    }

    /// See [`DeflateConfig::set_level`].
    pub fn level(&self) -> Level {
        self.level
    }

    /// Outgoing messages shorter than this many bytes are sent uncompressed (RSV1 clear).
    /// Default 64 bytes: below that the deflate block headers eat most of what compression
    /// saves, and the CPU is spent for nothing. Local only; 0 compresses every message.
    pub fn set_threshold(&mut self, bytes: usize) -> &mut Self {
        self.threshold = bytes;
        self
    }

    /// See [`DeflateConfig::set_threshold`].
    pub fn threshold(&self) -> usize {
        self.threshold
    }
}
