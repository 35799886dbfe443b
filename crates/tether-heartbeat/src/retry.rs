//! Which failures are worth another connection, and how soon.

use std::time::Duration;

use crate::close::{code, Failure};

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Connect again, no sooner than `floor` (a `Retry-After`, a restart hint).
    Retry {
        /// The least delay before the next attempt.
        floor: Option<Duration>,
    },
    /// Give up: another attempt would fail the same way.
    Fatal,
}

/// Decides whether a failure is retryable. Implement it for custom rules; the client asks
/// it after every failed attempt and every lost connection.
pub trait RetryPolicy: Send + 'static {
    /// The decision for `failure`, the `attempt`th consecutive one (1-based).
    fn decide(&mut self, failure: &Failure, attempt: u32) -> Decision;
}

/// The default rules.
///
/// Retry: I/O errors, timeouts, HTTP 5xx, 408 and 429, close codes 1000, 1001, 1006,
/// 1011, 1012, 1013 and application codes, a missing close frame, heartbeat deaths and
/// other local closes. Fatal: other HTTP statuses (4xx, 3xx), close codes 1002, 1003,
/// 1007, 1008, 1009, 1010 (the peer found fault with what this side sent; sending it
/// again will not help), and [`Failure::Other`] marked not retryable.
/// `Retry-After` and closes 1012/1013 set a floor on the next delay.
///
/// ```
/// use std::time::Duration;
/// use tether_heartbeat::{Decision, DefaultRetryPolicy, Failure, RetryPolicy};
///
/// let mut policy = DefaultRetryPolicy::new(Duration::from_secs(5));
/// let busy = Failure::Http { status: 503, retry_after: Some(Duration::from_secs(9)) };
/// assert_eq!(policy.decide(&busy, 1), Decision::Retry { floor: Some(Duration::from_secs(9)) });
/// let forbidden = Failure::Http { status: 403, retry_after: None };
/// assert_eq!(policy.decide(&forbidden, 1), Decision::Fatal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRetryPolicy {
    restart_floor: Duration,
}

impl DefaultRetryPolicy {
    /// The default rules with this floor after closes 1012 and 1013.
    pub fn new(restart_floor: Duration) -> Self {
        DefaultRetryPolicy { restart_floor }
    }
}

impl RetryPolicy for DefaultRetryPolicy {
    fn decide(&mut self, failure: &Failure, _attempt: u32) -> Decision {
        let retry = Decision::Retry { floor: None };
        match failure {
            Failure::Io(_) | Failure::Timeout | Failure::Local(_) => retry,
            Failure::Http {
                status,
                retry_after,
            } => match status {
                408 | 429 | 500..=599 => Decision::Retry {
                    floor: *retry_after,
                },
                _ => Decision::Fatal,
            },
            Failure::Closed { code: None } => retry,
            Failure::Closed { code: Some(c) } => match *c {
                code::SERVICE_RESTART | code::TRY_AGAIN_LATER => Decision::Retry {
                    floor: Some(self.restart_floor),
                },
                code::PROTOCOL_ERROR
                | code::UNSUPPORTED_DATA
                | code::INVALID_PAYLOAD
                | code::POLICY_VIOLATION
                | code::MESSAGE_TOO_BIG
                | code::MANDATORY_EXTENSION => Decision::Fatal,
                _ => retry,
            },
            Failure::Other { retryable, .. } => {
                if *retryable {
                    retry
                } else {
                    Decision::Fatal
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseReason;

    fn decide(failure: Failure) -> Decision {
        DefaultRetryPolicy::new(Duration::from_secs(5)).decide(&failure, 1)
    }

    fn closed(code: u16) -> Failure {
        Failure::Closed { code: Some(code) }
    }

    const RETRY: Decision = Decision::Retry { floor: None };

    #[test]
    fn retryable_causes() {
        assert_eq!(
            decide(Failure::Io(std::io::ErrorKind::ConnectionRefused)),
            RETRY
        );
        assert_eq!(decide(Failure::Timeout), RETRY);
        assert_eq!(decide(Failure::Local(CloseReason::HeartbeatTimeout)), RETRY);
        assert_eq!(decide(Failure::Closed { code: None }), RETRY);
        for code in [1000, 1001, 1006, 1011, 4000] {
            assert_eq!(decide(closed(code)), RETRY, "close {code}");
        }
        for status in [408, 429, 500, 503, 599] {
            let failure = Failure::Http {
                status,
                retry_after: None,
            };
            assert_eq!(decide(failure), RETRY, "status {status}");
        }
    }

    #[test]
    fn fatal_causes() {
        for code in [1002, 1003, 1007, 1008, 1009, 1010] {
            assert_eq!(decide(closed(code)), Decision::Fatal, "close {code}");
        }
        for status in [301, 400, 401, 403, 404, 407, 409, 428, 430, 499] {
            let failure = Failure::Http {
                status,
                retry_after: None,
            };
            assert_eq!(decide(failure), Decision::Fatal, "status {status}");
        }
        let other = Failure::Other {
            message: "bad certificate".into(),
            retryable: false,
        };
        assert_eq!(decide(other), Decision::Fatal);
    }

    #[test]
    fn restart_codes_and_retry_after_set_a_floor() {
        let floor = Decision::Retry {
            floor: Some(Duration::from_secs(5)),
        };
        assert_eq!(decide(closed(1012)), floor);
        assert_eq!(decide(closed(1013)), floor);
        let failure = Failure::Http {
            status: 429,
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            decide(failure),
            Decision::Retry {
                floor: Some(Duration::from_secs(120))
            }
        );
    }
}
