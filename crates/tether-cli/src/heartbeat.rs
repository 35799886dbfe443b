//! `--heartbeat` for `serve` and `connect`: the flags, and what a supervised connection
//! logs on stderr (each round trip, each change of state, deaths and reconnections).

use std::time::Duration;

use tether::heartbeat::{Event, Health, KeepaliveConfig, LinkState, StallCause};
use tokio::sync::{mpsc, watch};

/// The heartbeat flags shared by `serve` and `connect`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct HeartbeatArgs {
    /// Probe the peer when it has been quiet this long (e.g. 20s, 500ms, 1m) and close the
    /// connection when the probes go unanswered. Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) heartbeat: Option<Duration>,
    /// How long a probe's answer may take at least (the adaptive timeout's floor). Default:
    /// the heartbeat interval.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "heartbeat")]
    pub(crate) heartbeat_timeout: Option<Duration>,
}

impl HeartbeatArgs {
    /// The keepalive these flags ask for, `None` without `--heartbeat`.
    pub(crate) fn keepalive(&self) -> Option<KeepaliveConfig> {
        self.heartbeat
            .map(|interval| KeepaliveConfig::with_interval(interval, self.heartbeat_timeout))
    }
}

/// Shortest interval or timeout accepted: below it a loopback round trip is noise.
const MIN_DURATION: Duration = Duration::from_millis(10);
/// Longest accepted: a day; a heartbeat slower than that keeps no middlebox awake.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// `500ms`, `20s`, `2m`, `1h`, or a bare number of seconds, within [10 ms, 1 day].
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 20s or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(amount),
        "" | "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount.saturating_mul(60)),
        "h" => Duration::from_secs(amount.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if !(MIN_DURATION..=MAX_DURATION).contains(&duration) {
        return Err(format!("{text:?} is outside 10ms..=24h"));
    }
    Ok(duration)
}

/// Logs a supervised connection's events and state changes on stderr until it stops.
/// `peer` names the connection in every line.
pub(crate) async fn log_until_stopped(
    peer: String,
    mut events: mpsc::Receiver<Event>,
    mut state: watch::Receiver<LinkState>,
) {
    let mut events_open = true;
    loop {
        tokio::select! {
            event = events.recv(), if events_open => match event {
                Some(event) => log_event(&peer, &event),
                None => events_open = false,
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = state.borrow_and_update().clone();
                tracing::info!(%peer, "state: {}", state_text(&now));
                if matches!(now, LinkState::Closed(_)) {
                    return;
                }
            }
        }
    }
}

fn log_event(peer: &str, event: &Event) {
    match event {
        Event::ProbeAcked {
            rtt: Some(rtt),
            timeout,
            ..
        } => tracing::info!(%peer, "heartbeat rtt {rtt:.1?} (timeout now {timeout:.1?})"),
        Event::ProbeAcked { rtt: None, .. } => {
            tracing::info!(%peer, "heartbeat answered (no rtt: it predates a local stall)");
        }
        Event::ProbeSent { nonce } => tracing::debug!(%peer, nonce, "heartbeat probe sent"),
        Event::MismatchedPong => tracing::debug!(%peer, "pong matching no probe ignored"),
        Event::Suspect { misses } => {
            tracing::warn!(%peer, "heartbeat missed ({misses} in a row): sending another probe");
        }
        Event::Recovered => tracing::info!(%peer, "heartbeat answered again: link healthy"),
        // A full inbound queue is flow control (this side reads slower than the peer sends,
        // for a moment), not a fault: it dies only if it lasts, and that is logged as Dead.
        Event::LocalStall(StallCause::AppNotReading) => {
            tracing::debug!(%peer, "inbound queue full: reading paused, the verdict waits");
        }
        Event::LocalStall(cause) => {
            tracing::warn!(%peer, "local stall ({cause:?}): the verdict waits");
        }
        Event::Dead(reason) => tracing::warn!(%peer, "peer declared dead: {reason}; closing"),
        Event::Strike { strikes } => {
            tracing::warn!(%peer, "peer probes too often (strike {strikes})")
        }
        Event::Connected => tracing::info!(%peer, "connected"),
        Event::Disconnected(failure) => tracing::warn!(%peer, "disconnected: {failure}"),
        Event::Reconnecting { attempt, delay } => {
            tracing::info!(%peer, "reconnecting in {delay:.1?} (attempt {attempt})");
        }
        Event::Reconnected { downtime, attempts } => {
            tracing::info!(%peer, "reconnected after {downtime:.1?} down ({attempts} failed attempts)");
        }
        Event::OutboxOverflow { messages } => {
            tracing::warn!(%peer, "outbox full: {messages} messages refused or dropped");
        }
        Event::OutboxExpired { messages } => {
            tracing::warn!(%peer, "{messages} queued messages expired before a connection opened");
        }
        other => tracing::debug!(%peer, "heartbeat event {other:?}"),
    }
}

/// A state in a few words.
pub(crate) fn state_text(state: &LinkState) -> String {
    match state {
        LinkState::Connecting { attempt: 0 } => "connecting".into(),
        LinkState::Connecting { attempt } => format!("connecting (after {attempt} failures)"),
        LinkState::Open(Health::Healthy) => "open, healthy".into(),
        LinkState::Open(Health::Suspect) => "open, suspect (a probe went unanswered)".into(),
        LinkState::Open(Health::LocalStall(cause)) => format!("open, local stall ({cause:?})"),
        LinkState::Reconnecting { attempt, delay } => {
            format!("reconnecting in {delay:.1?} (attempt {attempt})")
        }
        LinkState::Paused => "paused".into(),
        LinkState::Closed(reason) => format!("closed: {reason}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_stay_within_their_limits() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("10ms"), Ok(MIN_DURATION));
        assert!(parse_duration("9ms").is_err());
        assert!(parse_duration("86401s").is_err());
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    #[test]
    fn only_the_interval_given_makes_it_the_timeout_floor() {
        let args = HeartbeatArgs {
            heartbeat: Some(Duration::from_secs(5)),
            heartbeat_timeout: None,
        };
        let expected = KeepaliveConfig::with_interval(Duration::from_secs(5), None);
        assert_eq!(args.keepalive(), Some(expected));
        let mut floor = expected;
        floor.set_pong_timeout(Duration::from_secs(5));
        assert_eq!(args.keepalive(), Some(floor));
        assert_eq!(HeartbeatArgs::default().keepalive(), None);
    }
}
