//! Limits that bound what one handshake may cost.

/// Limits for one opening handshake, in either role.
///
/// Every limit is finite by default, so a peer cannot make a handshake hold unbounded memory
/// (one enormous header, thousands of fields). Time is not a concern of this sans-IO layer:
/// the async helpers [`client`](crate::client) and [`server`](crate::server) take their
/// timeout as an argument.
///
/// ```
/// use tether_handshake::Config;
///
/// let mut config = Config::default();
/// config.set_max_header_bytes(4096).set_max_headers(32);
/// assert_eq!(config.max_header_bytes(), 4096);
/// assert_eq!(config.max_headers(), 32);
/// assert_eq!(config.max_body_prefix(), 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    max_header_bytes: usize,
    max_headers: usize,
    max_body_prefix: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_prefix: 1024,
        }
    }
}

impl Config {
    /// Most bytes the HTTP head may take, from the first byte of the start line through the
    /// blank line that ends it, in bytes. Default 16384 (16 KiB: browsers send well under
    /// 4 KiB, cookies included).
    ///
    /// Applies to received heads in either role: the request a server reads and the response
    /// a client reads. A longer head fails with [`Error::HeadTooLarge`](crate::Error) (a
    /// server answers 431).
    pub fn set_max_header_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Most header fields the HTTP head may carry, in fields. Default 64 (a browser's
    /// Upgrade carries about 15).
    ///
    /// Applies to received heads in either role; more fail with
    /// [`Error::TooManyHeaders`](crate::Error) (a server answers 431).
    pub fn set_max_headers(&mut self, count: usize) -> &mut Self {
        self.max_headers = count;
        self
    }

    /// Most body bytes kept from a response other than 101, in bytes, so the caller can show
    /// why it was turned down. Default 1024.
    ///
    /// Applies to received responses, client only; the rest of the body is not read.
    pub fn set_max_body_prefix(&mut self, bytes: usize) -> &mut Self {
        self.max_body_prefix = bytes;
        self
    }

    /// See [`Config::set_max_header_bytes`].
    pub fn max_header_bytes(&self) -> usize {
        self.max_header_bytes
    }

    /// See [`Config::set_max_headers`].
    pub fn max_headers(&self) -> usize {
        self.max_headers
    }

    /// See [`Config::set_max_body_prefix`].
    pub fn max_body_prefix(&self) -> usize {
        self.max_body_prefix
    }
}
