//! The server's connection limit: counting live connections and refusing those over the limit
//! with a fixed 503 answer whose cost is bounded in time, bytes and number.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode};
use tether_handshake::Rejection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Default for [`Server::max_connections`](crate::Server::max_connections): 900.
///
/// A connection holds a file descriptor from accept to close, and the most common soft limit
/// of descriptors per process (`ulimit -n`) is 1024. 900 connections plus
/// [`REFUSAL_SLOTS`] refusals leave about 90 descriptors for the listener, the runtime, logs
/// and the application's own files, so by default the server answers 503 before the process
/// runs out of descriptors (EMFILE), instead of stalling on accept.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 900;

/// Default for [`Server::retry_after`](crate::Server::retry_after): 5 seconds, long enough
/// for a full server to shed load, short enough that a refused client is not parked for long.
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Most refusals in flight at once. Over the connection limit the server keeps accepting
/// only while one of these slots is free; when all are taken it stops accepting and leaves
/// further connections in the kernel's backlog, so a flood of connections over the limit
/// costs at most this many tasks and sockets.
pub(crate) const REFUSAL_SLOTS: usize = 32;

/// How long one refusal may take, writing and lingering together: a refused client that
/// never reads or never closes holds its slot for at most this long.
pub(crate) const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Most bytes of the refused client's request read and discarded after the answer, so that
/// closing with unread input does not reset the connection before the client has read it.
const REFUSAL_DRAIN_BYTES: usize = 16 << 10;

/// Live counts of a [`Server`](crate::Server)'s connections, readable while it serves.
///
/// A connection counts from the moment it is accepted (before TLS and the handshake) until
/// its task has ended, so the count bounds what the connections hold: sockets, tasks and
/// buffers. Obtained with [`Server::stats`](crate::Server::stats); cloning is cheap and every
/// clone sees the same counters.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let mut server = tether::Server::bind("127.0.0.1:0").await?;
/// server.max_connections(100);
/// let stats = server.stats();
/// assert_eq!(stats.connections(), 0);
/// assert_eq!(stats.peak_connections(), 0);
/// assert_eq!(stats.refused(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    peak_connections: AtomicUsize,
    refusing: AtomicUsize,
    peak_refusing: AtomicUsize,
    refused: AtomicU64,
}

impl ServerStats {
    /// Connections counted against the limit right now (accepted, not yet ended).
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// The most connections counted at once since the server started.
    pub fn peak_connections(&self) -> usize {
        self.inner.peak_connections.load(Ordering::Relaxed)
    }

    /// Connections refused so far because the server was at its limit (answered 503, or
    /// closed unanswered on a TLS server).
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// The most refusals in flight at once since the server started (at most 32).
    pub fn peak_refusing(&self) -> usize {
        self.inner.peak_refusing.load(Ordering::Relaxed)
    }

    /// Records the number of live connections (called by the accept loop, the only writer).
    pub(crate) fn set_connections(&self, live: usize) {
        self.inner.connections.store(live, Ordering::Relaxed);
        self.inner
            .peak_connections
            .fetch_max(live, Ordering::Relaxed);
    }

    /// Records the number of refusals in flight.
    pub(crate) fn set_refusing(&self, live: usize) {
        self.inner.refusing.store(live, Ordering::Relaxed);
        self.inner.peak_refusing.fetch_max(live, Ordering::Relaxed);
    }

    /// Counts one refused connection.
    pub(crate) fn count_refused(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// The fixed answer over the limit: RFC 9110 §15.6.4, "The 503 (Service Unavailable) status
/// code indicates that the server is currently unable to handle the request due to a
/// temporary overload ... The server MAY send a Retry-After header field".
pub(crate) fn overloaded_answer(retry_after: Duration) -> Bytes {
    // Retry-After is a whole number of seconds (RFC 9110 §10.2.3); round a fraction up so
    // that clients do not come back before the configured time.
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut out = BytesMut::new();
    Rejection::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_header(http::header::RETRY_AFTER, HeaderValue::from(seconds))
        .with_body("server at its connection limit\n")
        .encode(&mut out);
    out.freeze()
}

/// Refuses `tcp` with `answer` without reading the request first: writes it, ends our side,
/// reads and discards at most 16 KiB of what the client sends, all within [`REFUSAL_TIME`].
pub(crate) async fn refuse(mut tcp: TcpStream, answer: Bytes) {
    let work = async {
        tcp.write_all(&answer).await?;
        tcp.shutdown().await?;
        let mut chunk = [0; 2048];
        let mut drained = 0;
        while drained < REFUSAL_DRAIN_BYTES {
            match tcp.read(&mut chunk).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(REFUSAL_TIME, work).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(error = %err, "refusing a connection failed"),
        Err(_) => tracing::debug!("refused client still sending; closing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9110_15_6_4_answer_is_503_with_retry_after_in_seconds() {
        let answer = overloaded_answer(Duration::from_millis(1500));
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        assert!(text.contains("retry-after: 2\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        let zero = overloaded_answer(Duration::ZERO);
        assert!(std::str::from_utf8(&zero)
            .unwrap()
            .contains("retry-after: 0\r\n"));
    }

    #[test]
    fn stats_keep_the_peak() {
        let stats = ServerStats::default();
        stats.set_connections(3);
        stats.set_connections(1);
        stats.set_refusing(2);
        stats.set_refusing(0);
        stats.count_refused();
        assert_eq!(stats.connections(), 1);
        assert_eq!(stats.peak_connections(), 3);
        assert_eq!(stats.peak_refusing(), 2);
        assert_eq!(stats.refused(), 1);
    }
}
