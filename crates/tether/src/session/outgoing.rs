//! What one side of a session writes next on its connection, both roles: pongs, acks,
//! replay, numbered data, `end`, and the goodbye (`\0lost` and a close, or close 1000 once
//! finished).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tether_codec::{CloseCode, CloseFrame, Message};
use tether_session::{Control, Endpoint, LostReason, Origin, Transmit};
use tokio::time::Sleep;

use crate::session::wire;

/// How far a connection got in ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goodbye {
    /// Nothing sent yet.
    None,
    /// `\0lost <reason>` is written; its close comes next.
    Lost,
    /// The close frame is written: nothing more may be.
    Closed,
}

/// The next message to write, or `None` when the session has nothing to say.
pub(crate) fn next(
    endpoint: &mut Endpoint<Message>,
    now: Instant,
    goodbye: &mut Goodbye,
) -> Option<Message> {
    if *goodbye == Goodbye::Closed {
        return None;
    }
    if let Some(lost) = endpoint.lost() {
        // docs/sessions.md §6: "the side that sends it forgets the session and closes the
        // connection with the reason's close code". A lost the peer sent needs no answer
        // but the close the WebSocket echoes.
        if lost.origin != Origin::Local {
            return None;
        }
        return lost_goodbye(lost.reason, goodbye);
    }
    if endpoint.is_finished() {
        // §8: "A finished side closes the connection with 1000".
        *goodbye = Goodbye::Closed;
        return Some(close(CloseCode::NORMAL, "session finished"));
    }
    match endpoint.poll_transmit(now)? {
        Transmit::Control(control) => Some(Message::text(control.encode())),
        Transmit::Data { message, .. } => Some(wire::stuffed(message.clone())),
    }
}

/// The time to give [`next`] (and so [`Endpoint::poll_transmit`]): it is only compared with
/// the ack deadline, so the clock is read only when that comparison can come out due.
/// `timer` is the connection's ack timer: armed at `deadline` and not fired, the deadline
/// has not come (a time just before it says so); the timer wakes the connection when it
/// does. Without a deadline any time will do (the timer's own).
pub(crate) fn write_time(deadline: Option<Instant>, timer: &Sleep) -> Instant {
    let armed = timer.deadline().into_std();
    match deadline {
        None => armed,
        Some(at) if at == armed && !timer.is_elapsed() => {
            at.checked_sub(Duration::from_nanos(1)).unwrap_or(at)
        }
        Some(_) => tokio::time::Instant::now().into_std(),
    }
}

/// Polls a connection's ack timer outside the task's budget, so that a Pending means the
/// timer holds `cx`'s waker: a Pending for a spent budget would leave it unregistered while
/// the caller, which polls it once per deadline, takes it for registered.
pub(crate) fn poll_timer(timer: Pin<&mut Sleep>, cx: &mut Context<'_>) -> Poll<()> {
    let mut unconstrained = tokio::task::unconstrained(timer);
    Pin::new(&mut unconstrained).poll(cx)
}

/// The time to give [`Endpoint::handle`] for a received message: it only starts the ack
/// delay of the first message not reported yet, so with a deadline already set (`due`)
/// the clock is not read (the time passed is not looked at).
pub(crate) fn receive_time(due: Option<Instant>) -> Instant {
    due.unwrap_or_else(|| tokio::time::Instant::now().into_std())
}

/// `\0lost <reason>`, then the close with the reason's code, one per call.
pub(crate) fn lost_goodbye(reason: LostReason, goodbye: &mut Goodbye) -> Option<Message> {
    let (next, message) = match *goodbye {
        Goodbye::None => (Goodbye::Lost, Message::text(Control::Lost(reason).encode())),
        Goodbye::Lost => (
            Goodbye::Closed,
            close(CloseCode(reason.close_code()), reason.as_str()),
        ),
        Goodbye::Closed => return None,
    };
    *goodbye = next;
    Some(message)
}

/// A close message with `code` and `reason`.
pub(crate) fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tether_session::EndpointConfig;

    use super::*;

    /// docs/sessions.md §5: the ack of a lone message goes out `ack_delay` after it arrived.
    /// The time `write_time` gives says "not yet" while the ack timer armed at the deadline
    /// has not fired, and "due" once it has.
    #[tokio::test(start_paused = true)]
    async fn sessions_md_5_the_ack_timer_tells_when_the_ack_delay_is_over() {
        let mut endpoint = Endpoint::<Message>::new(EndpointConfig::default()).unwrap();
        endpoint.attach(0).unwrap();
        let start = tokio::time::Instant::now();
        let mut timer = Box::pin(tokio::time::sleep_until(start));
        let mut goodbye = Goodbye::None;

        let arrived = receive_time(endpoint.poll_timeout());
        assert_eq!(
            arrived,
            start.into_std(),
            "no deadline yet: the clock is read"
        );
        endpoint.handle(arrived, true, b"x").unwrap();
        let due = endpoint.poll_timeout().unwrap();
        assert_eq!(due, arrived + Duration::from_millis(200));
        assert_eq!(
            receive_time(Some(due)),
            due,
            "a deadline: the clock is not read"
        );

        // The timer is not armed at the deadline yet: the clock says "not yet".
        let now = write_time(Some(due), timer.as_ref().get_ref());
        assert!(next(&mut endpoint, now, &mut goodbye).is_none());
        timer.as_mut().reset(tokio::time::Instant::from_std(due));
        tokio::time::advance(Duration::from_millis(199)).await;
        let now = write_time(Some(due), timer.as_ref().get_ref());
        assert!(now < due);
        assert!(next(&mut endpoint, now, &mut goodbye).is_none());

        timer.as_mut().await;
        let now = write_time(Some(due), timer.as_ref().get_ref());
        assert!(now >= due);
        assert_eq!(
            next(&mut endpoint, now, &mut goodbye),
            Some(Message::text("\0ack 1"))
        );
        assert_eq!(endpoint.poll_timeout(), None);
    }
}
