//! What a failed `accept(2)` means for an accept loop: skip one connection, wait out a
//! shortage, or give up on a listener that cannot work. [`Server`](crate::Server) uses it,
//! and so can any hand-written accept loop (the CLI's `tls-demo --listen` does).

use std::io;
use std::time::Duration;

/// First pause after a shortage; it doubles while the shortage lasts.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause: a lasting shortage costs one attempt (and one log line) a second.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// What an accept loop does after `accept` failed: [`AcceptFailure::of`] tells.
///
/// ```
/// use tether::accept_error::{AcceptBackoff, AcceptFailure};
///
/// # async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
/// let mut backoff = AcceptBackoff::new();
/// loop {
///     match listener.accept().await {
///         Ok((tcp, _peer)) => {
///             backoff.reset();
///             drop(tcp); // serve it
///         }
///         Err(err) => match AcceptFailure::of(&err) {
///             AcceptFailure::Connection => continue,
///             AcceptFailure::Listener => return Err(err),
///             _ => tokio::time::sleep(backoff.pause()).await,
///         },
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptFailure {
    /// The failure belonged to one incoming connection (reset or aborted while queued,
    /// dropped by a firewall rule, a network error pending on it): accept the next one at once.
    Connection,
    /// The process or the system is short of descriptors, socket buffers or memory, or the
    /// error is unknown: pause, so that running connections can end and free what is short,
    /// instead of spinning on `accept`; then accept again.
    Shortage,
    /// The listener itself is unusable (a closed descriptor, not a listening socket): no
    /// later call can succeed, so serving ends with this error.
    Listener,
}

impl AcceptFailure {
    /// Classifies an error returned by `accept`.
    ///
    /// Linux `accept(2)`: "Linux accept() passes already-pending network errors on the new
    /// socket as an error code from accept() ... For reliable operation the application
    /// should detect the network errors defined for the protocol after accept() and treat
    /// them like EAGAIN by retrying." Those, and EPERM ("Firewall rules forbid
    /// connection"), concern one connection.
    pub fn of(err: &io::Error) -> Self {
        classify(err)
    }
}

fn classify(err: &io::Error) -> AcceptFailure {
    #[cfg(unix)]
    if let Some(code) = err.raw_os_error() {
        return classify_errno(code);
    }
    use io::ErrorKind::*;
    match err.kind() {
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        | PermissionDenied => AcceptFailure::Connection,
        InvalidInput => AcceptFailure::Listener,
        _ => AcceptFailure::Shortage,
    }
}

#[cfg(unix)]
fn classify_errno(code: i32) -> AcceptFailure {
    let per_connection = [
        libc::ECONNABORTED,
        libc::ECONNRESET,
        libc::ECONNREFUSED,
        libc::EINTR,
        libc::EAGAIN,
        libc::EWOULDBLOCK,
        libc::EPERM,
        libc::EPROTO,
        libc::ENETDOWN,
        libc::ENETUNREACH,
        libc::EHOSTDOWN,
        libc::EHOSTUNREACH,
        libc::ENOPROTOOPT,
        libc::EOPNOTSUPP,
        libc::ETIMEDOUT,
    ];
    let listener = [libc::EBADF, libc::ENOTSOCK, libc::EINVAL, libc::EFAULT];
    if per_connection.contains(&code) {
        AcceptFailure::Connection
    } else if listener.contains(&code) {
        AcceptFailure::Listener
    } else {
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, and anything unknown.
        AcceptFailure::Shortage
    }
}

/// The pause after each [`AcceptFailure::Shortage`]: 10 ms, doubling up to 1 s, back to
/// 10 ms after a success ([`reset`](Self::reset)).
#[derive(Debug)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self::new()
    }
}

impl AcceptBackoff {
    /// The first pause is 10 ms.
    pub fn new() -> Self {
        AcceptBackoff { next: FIRST_PAUSE }
    }

    /// The pause to take now; the next one is twice as long, up to 1 s.
    pub fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        pause
    }

    /// A connection was accepted: the shortage is over.
    pub fn reset(&mut self) {
        self.next = FIRST_PAUSE;
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn errno(code: i32) -> AcceptFailure {
        classify(&io::Error::from_raw_os_error(code))
    }

    #[test]
    fn one_connections_failure_is_skipped() {
        for code in [
            libc::ECONNABORTED,
            libc::ECONNRESET,
            libc::EINTR,
            libc::EAGAIN,
            libc::EPERM,
            libc::EPROTO,
            libc::ENETUNREACH,
        ] {
            assert_eq!(errno(code), AcceptFailure::Connection, "errno {code}");
        }
    }

    #[test]
    fn shortages_pause_and_continue() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(errno(code), AcceptFailure::Shortage, "errno {code}");
        }
        // Unknown errors keep the server serving, with the pause.
        assert_eq!(errno(9999), AcceptFailure::Shortage);
    }

    #[test]
    fn an_unusable_listener_ends_serving() {
        for code in [libc::EBADF, libc::ENOTSOCK, libc::EINVAL, libc::EFAULT] {
            assert_eq!(errno(code), AcceptFailure::Listener, "errno {code}");
        }
    }

    #[test]
    fn errors_without_errno_go_by_kind() {
        let kind = |kind| classify(&io::Error::from(kind));
        assert_eq!(
            kind(io::ErrorKind::ConnectionAborted),
            AcceptFailure::Connection
        );
        assert_eq!(kind(io::ErrorKind::InvalidInput), AcceptFailure::Listener);
        assert_eq!(kind(io::ErrorKind::OutOfMemory), AcceptFailure::Shortage);
    }

    #[test]
    fn backoff_doubles_to_a_second_and_resets() {
        let mut backoff = AcceptBackoff::new();
        let pauses: Vec<_> = (0..9).map(|_| backoff.pause().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.pause(), Duration::from_millis(10));
    }
}
