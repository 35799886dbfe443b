//! Limits that bound what one handshake may cost.

use std::time::Duration;

/// Limits for one opening handshake, in either role.
///
/// Every limit is finite by default, so a peer cannot make a handshake hold unbounded memory
/// or time (a slowloris client that never finishes its request, or one enormous header).
///
/// ```
/// use std::time::Duration;
/// use tether_handshake::Config;
///
/// let mut config = Config::default();
/// config.max_header_bytes(4096).handshake_timeout(Some(Duration::from_secs(2)));
/// assert_eq!(config.get_max_header_bytes(), 4096);
/// assert_eq!(config.get_max_headers(), 64);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    max_header_bytes: usize,
    max_headers: usize,
    max_body_prefix: usize,
    handshake_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_prefix: 1024,
            handshake_timeout: Some(Duration::from_secs(10)),
        }
    }
}

impl Config {
    /// Most bytes the HTTP head may take, from the first byte of the start line through the
    /// blank line that ends it. Applies to the request a server reads and the response a
    /// client reads; a longer head fails with [`Error::HeadTooLarge`](crate::Error) (a server
    /// answers 431). Default: 16384 bytes.
    pub fn max_header_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Most header fields the HTTP head may carry, in either role; more fail with
    /// [`Error::TooManyHeaders`](crate::Error) (a server answers 431). Default: 64 fields.
    pub fn max_headers(&mut self, count: usize) -> &mut Self {
        self.max_headers = count;
        self
    }

    /// Client only: most body bytes kept from a response other than 101, so the caller can
    /// show why it was turned down. Default: 1024 bytes.
    pub fn max_body_prefix(&mut self, bytes: usize) -> &mut Self {
        self.max_body_prefix = bytes;
        self
    }

    /// Async helpers only, either role: the whole handshake (reading, deciding, writing) must
    /// finish within this time or fail with [`Error::Timeout`](crate::Error). `None` turns the
    /// timeout off. Default: 10 seconds.
    pub fn handshake_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// See [`max_header_bytes`](Config::max_header_bytes).
    pub fn get_max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }

    /// See [`max_headers`](Config::max_headers).
    pub fn get_max_headers(&self) -> usize {
        self.max_headers
    }

    /// See [`max_body_prefix`](Config::max_body_prefix).
    pub fn get_max_body_prefix(&self) -> usize {
        self.max_body_prefix
    }

    /// See [`handshake_timeout`](Config::handshake_timeout).
    pub fn get_handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }
}
