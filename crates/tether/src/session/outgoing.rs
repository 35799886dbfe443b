//! What one side of a session writes next on its connection, both roles: pongs, acks,
//! replay, numbered data, `end`, and the goodbye (`\0lost` and a close, or close 1000 once
//! finished).

use tether_codec::{CloseCode, CloseFrame, Message};
use tether_session::{Control, Endpoint, LostReason, Origin, Transmit};

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
    now: std::time::Instant,
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
