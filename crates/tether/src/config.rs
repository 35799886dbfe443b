//! One configuration for both roles: codec limits, handshake limits, buffers and timeouts.

use std::time::Duration;

use tether_codec::Role;
use tether_deflate::DeflateConfig;

/// Default for [`Config::set_write_buffer_limit`]: 128 KiB, enough to batch hundreds of small
/// messages into one write while keeping a stalled connection's memory small.
const DEFAULT_WRITE_BUFFER_LIMIT: usize = 128 << 10;
/// Default for [`Config::set_close_timeout`]: 5 seconds, long enough for a peer across the
/// world to answer a close, short enough that a vanished peer does not hold a connection.
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default for [`Config::set_handshake_timeout`]: the handshake crate's 10 seconds.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = tether_handshake::DEFAULT_HANDSHAKE_TIMEOUT;

/// Limits and timeouts of a WebSocket connection, the same type for clients and servers.
///
/// It gathers the frame and message limits of the codec ([`tether_codec::Config`]), the
/// handshake limits ([`tether_handshake::Config`]) and what the async driver adds itself: the
/// handshake timeout, the write buffer's high-water mark (backpressure) and the close timeout. Every limit is finite
/// by default.
///
/// ```
/// use std::time::Duration;
/// use tether::Config;
///
/// let mut config = Config::default();
/// config
///     .set_max_message_size(1 << 20)
///     .set_write_buffer_limit(64 << 10)
///     .set_close_timeout(Some(Duration::from_secs(1)));
/// assert_eq!(config.max_message_size(), 1 << 20);
/// assert_eq!(config.codec().max_message_size(), 1 << 20);
/// assert_eq!(config.handshake_timeout(), Some(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    codec: tether_codec::Config,
    handshake: tether_handshake::Config,
    handshake_timeout: Option<Duration>,
    write_buffer_limit: usize,
    close_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// `None`: the role's default (see [`Config::set_deflate`]).
    deflate: Option<Option<DeflateConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            codec: tether_codec::Config::default(),
            handshake: tether_handshake::Config::default(),
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            write_buffer_limit: DEFAULT_WRITE_BUFFER_LIMIT,
            close_timeout: Some(DEFAULT_CLOSE_TIMEOUT),
            idle_timeout: None,
            deflate: None,
        }
    }
}

impl Config {
    /// Largest payload of one received frame, in bytes. Default 16 MiB (the codec's default:
    /// large messages pass, a header announcing gigabytes is refused before any allocation).
    ///
    /// Applies to received frames; a larger one fails the connection with close code 1009.
    pub fn set_max_frame_payload(&mut self, bytes: usize) -> &mut Self {
        self.codec.set_max_frame_payload(bytes);
        self
    }

    /// Largest received message, in bytes, counting fragment overhead. Default 16 MiB.
    ///
    /// Applies to received messages; a larger one fails the connection with close code 1009.
    pub fn set_max_message_size(&mut self, bytes: usize) -> &mut Self {
        self.codec.set_max_message_size(bytes);
        self
    }

    /// Largest payload of one sent data frame, in bytes: a longer text or binary message goes
    /// out as fragments of this size (RFC 6455 §5.4), received by the peer as one message.
    /// Default `None`: each message is one frame.
    ///
    /// Applies to sent messages. With it, automatic pongs and heartbeat pings can go out
    /// between the fragments of a large message instead of after all of it.
    pub fn set_send_fragment_size(&mut self, bytes: Option<std::num::NonZeroUsize>) -> &mut Self {
        self.codec.set_send_fragment_size(bytes);
        self
    }

    /// Most bytes of the HTTP head in the opening handshake, in either role. Default 16 KiB:
    /// browsers send well under 4 KiB, cookies included; a larger head is refused (431).
    pub fn set_max_header_bytes(&mut self, bytes: usize) -> &mut Self {
        self.handshake.set_max_header_bytes(bytes);
        self
    }

    /// Most header fields of the HTTP head in the opening handshake, in either role.
    /// Default 64: a browser's Upgrade carries about 15.
    pub fn set_max_headers(&mut self, count: usize) -> &mut Self {
        self.handshake.set_max_headers(count);
        self
    }

    /// Time allowed for opening a connection: for a client the TCP connect, the TLS handshake
    /// and the HTTP Upgrade each; for a server the TLS handshake and the HTTP Upgrade each.
    /// `None` turns it off. Default 10 seconds: generous for a slow network, short enough
    /// that a peer holding a half-open handshake (slowloris) costs little.
    pub fn set_handshake_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.handshake_timeout = timeout;
        self
    }

    /// High-water mark of the write buffer, in bytes, in either role. Default 128 KiB.
    ///
    /// Outgoing messages are appended to one buffer and written in batches. While the buffer
    /// holds this many bytes or more, `send` (and `Sink::poll_ready`) first tries to write and
    /// then waits, and the connection reads nothing more from the peer (TCP pushes back on
    /// it). So a peer that does not read cannot make the sender buffer more than this plus
    /// one message (the one that crossed the limit; a second if a cancelled send parked one),
    /// control frames included: only the latest ping is answered (RFC 6455 §5.5.3), so pings
    /// add at most one pong, and the close adds one frame.
    ///
    /// Two endpoints that both stop reading while their own buffers are full, because both
    /// send more than the other reads, wait on each other: keep reading in a task of its own
    /// ([`WebSocket::split`](crate::WebSocket::split)) or bound such exchanges with a timeout.
    pub fn set_write_buffer_limit(&mut self, bytes: usize) -> &mut Self {
        self.write_buffer_limit = bytes;
        self
    }

    /// How long the closing handshake may take, in either role: from the moment a close frame
    /// is sent (or a failure is detected) until the peer's close has arrived and the
    /// connection is shut down. When it passes the transport is closed anyway. `None` waits
    /// forever. Default 5 seconds.
    pub fn set_close_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.close_timeout = timeout;
        self
    }

    /// How long a connection may receive nothing, in either role, before it is closed with
    /// 1001 (going away): the stream yields [`Error::IdleTimeout`](crate::Error::IdleTimeout)
    /// once and then runs the closing handshake, bounded by the close timeout. Any byte
    /// received (a ping, a pong, a fragment) restarts it; what is sent does not. Default
    /// `None`: a quiet peer may stay connected (use a heartbeat to tell quiet from dead).
    ///
    /// The clock only runs while the stream is polled: a connection nobody reads is not
    /// closed by it.
    ///
    /// 1001 rather than 1000: the endpoint ends the connection for a reason of its own, not
    /// because its purpose was fulfilled (RFC 6455 §7.4.1).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.idle_timeout = timeout;
        self
    }

    /// permessage-deflate (RFC 7692): `Some(config)` offers it (client) or accepts the first
    /// acceptable offer (server) as `config` says; `None` turns it off.
    ///
    /// The default depends on the role, because one `Config` serves both: **on for clients**
    /// (with [`DeflateConfig::default`]: a client has few connections, and every browser
    /// offers it) and **off for servers** (an inflate and a deflate context cost about
    /// 400 KiB per connection with context takeover, which thousands of idle connections should
    /// not hold by surprise). Compressed messages are inflated under
    /// [`Config::set_max_message_size`]: a larger one fails the connection with 1009 after at
    /// most that many bytes were inflated.
    ///
    /// ```
    /// use tether::{Config, Role};
    /// use tether::deflate::DeflateConfig;
    ///
    /// let mut config = Config::default();
    /// assert!(config.deflate(Role::Client).is_some());
    /// assert!(config.deflate(Role::Server).is_none());
    /// let mut deflate = DeflateConfig::default();
    /// deflate.set_server_no_context_takeover(true);
    /// config.set_deflate(Some(deflate.clone()));
    /// assert_eq!(config.deflate(Role::Server), Some(deflate));
    /// config.set_deflate(None);
    /// assert!(config.deflate(Role::Client).is_none());
    /// ```
    pub fn set_deflate(&mut self, deflate: Option<DeflateConfig>) -> &mut Self {
        self.deflate = Some(deflate);
        self
    }

    /// The permessage-deflate configuration an endpoint of `role` uses; see
    /// [`Config::set_deflate`] for the per-role default.
    pub fn deflate(&self, role: Role) -> Option<DeflateConfig> {
        match (&self.deflate, role) {
            (Some(set), _) => set.clone(),
            (None, Role::Client) => Some(DeflateConfig::default()),
            (None, Role::Server) => None,
        }
    }

    /// Replaces the codec limits at once (frame, message, fragment overhead, send fragment
    /// size).
    pub fn set_codec(&mut self, codec: tether_codec::Config) -> &mut Self {
        self.codec = codec;
        self
    }

    /// Replaces the handshake limits at once (header bytes and count, body prefix); the
    /// handshake timeout is [`Config::set_handshake_timeout`]'s.
    pub fn set_handshake(&mut self, handshake: tether_handshake::Config) -> &mut Self {
        self.handshake = handshake;
        self
    }

    /// See [`Config::set_send_fragment_size`].
    pub fn send_fragment_size(&self) -> Option<std::num::NonZeroUsize> {
        self.codec.send_fragment_size()
    }

    /// See [`Config::set_max_frame_payload`].
    pub fn max_frame_payload(&self) -> usize {
        self.codec.max_frame_payload()
    }

    /// See [`Config::set_max_message_size`].
    pub fn max_message_size(&self) -> usize {
        self.codec.max_message_size()
    }

    /// See [`Config::set_handshake_timeout`].
    pub fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// See [`Config::set_write_buffer_limit`].
    pub fn write_buffer_limit(&self) -> usize {
        self.write_buffer_limit
    }

    /// See [`Config::set_close_timeout`].
    pub fn close_timeout(&self) -> Option<Duration> {
        self.close_timeout
    }

    /// See [`Config::set_idle_timeout`].
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The codec part of this configuration.
    pub fn codec(&self) -> &tether_codec::Config {
        &self.codec
    }

    /// The handshake part of this configuration.
    pub fn handshake(&self) -> &tether_handshake::Config {
        &self.handshake
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_finite_and_documented() {
        let config = Config::default();
        assert_eq!(config.write_buffer_limit(), 128 << 10);
        assert_eq!(config.close_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(config.idle_timeout(), None);
        assert_eq!(config.handshake_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(config.max_frame_payload(), 16 << 20);
        assert_eq!(config.max_message_size(), 16 << 20);
        assert_eq!(config.send_fragment_size(), None);
        assert_eq!(config.handshake().max_header_bytes(), 16 << 10);
        assert_eq!(config.handshake().max_headers(), 64);
    }

    #[test]
    fn setters_reach_the_layer_configs() {
        let mut config = Config::default();
        config
            .set_max_frame_payload(10)
            .set_max_message_size(20)
            .set_max_header_bytes(30)
            .set_max_headers(4)
            .set_handshake_timeout(None)
            .set_close_timeout(None)
            .set_write_buffer_limit(50)
            .set_send_fragment_size(std::num::NonZeroUsize::new(60));
        assert_eq!(config.codec().max_frame_payload(), 10);
        assert_eq!(config.codec().max_message_size(), 20);
        assert_eq!(config.handshake().max_header_bytes(), 30);
        assert_eq!(config.handshake().max_headers(), 4);
        assert_eq!(config.handshake_timeout(), None);
        assert_eq!(config.close_timeout(), None);
        assert_eq!(config.write_buffer_limit(), 50);
        assert_eq!(
            config.codec().send_fragment_size().map(|n| n.get()),
            Some(60)
        );
    }
}
