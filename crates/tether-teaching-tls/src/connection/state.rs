//! What a [`Connection`] expects next, and the messages that move it on.
//!
//! Each role has its own states ([`client::State`], [`server::State`]); every state is a
//! struct named after the message it waits for and holds exactly what that side knows at
//! that point of the handshake. A transition consumes the state and returns the next one,
//! so a state the protocol cannot reach cannot be built either.

use crate::alert::{AlertDescription, LEVEL_WARNING};
use crate::error::Error;
use crate::message::{self, kind};

use super::{client, server, Connection, Side};

/// The handshake position of a connection.
pub(super) enum State {
    /// A client on its way to its Finished check.
    Client(client::State),
    /// A server on its way to sending its Finished.
    Server(server::State),
    /// Both Finished messages verified: application data flows both ways.
    Established,
    /// A transition failed (the connection's error says why); nothing moves it on.
    Failed,
}

impl State {
    /// What this state waits for, for [`Error::UnexpectedMessage`].
    pub(super) fn expects(&self) -> &'static str {
        match self {
            State::Client(s) => s.expects(),
            State::Server(s) => s.expects(),
            State::Established => "application data",
            State::Failed => "nothing (the connection failed)",
        }
    }

    pub(super) fn is_established(&self) -> bool {
        matches!(self, State::Established)
    }

    /// RFC 5246 appendix E.1: the first record of a client may carry any version number.
    pub(super) fn accepts_any_record_version(&self) -> bool {
        matches!(self, State::Server(server::State::ClientHello(_)))
    }
}

/// A message for the handshake state machine: a complete handshake message, or the
/// ChangeCipherSpec record (not a handshake message, but a step of the handshake).
#[derive(Clone, Copy)]
pub(super) enum Message<'a> {
    /// A handshake message: its type, the whole message with its 4-byte header (what the
    /// handshake hash covers) and the body.
    Handshake {
        kind: u8,
        msg: &'a [u8],
        body: &'a [u8],
    },
    ChangeCipherSpec,
}

impl<'a> Message<'a> {
    /// Splits a complete handshake message (4 header bytes at least).
    pub(super) fn handshake(msg: &'a [u8]) -> Self {
        Message::Handshake {
            kind: msg[0],
            msg,
            body: &msg[4..],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Message::Handshake { kind, .. } => message::kind_name(kind),
            Message::ChangeCipherSpec => "ChangeCipherSpec",
        }
    }
}

/// The error for `message` arriving while `expected` is awaited.
pub(super) fn unexpected(expected: &'static str, message: Message<'_>) -> Error {
    Error::UnexpectedMessage {
        expected,
        got: message.name().to_owned(),
    }
}

impl Connection {
    /// Hands `message` to the current state and installs the state that follows. On error
    /// the connection stays in [`State::Failed`].
    pub(super) fn handle(&mut self, message: Message<'_>) -> Result<(), Error> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        self.state = match state {
            State::Client(s) => s.handle(self, message)?,
            State::Server(s) => s.handle(self, message)?,
            State::Established => self.handle_established(message)?,
            State::Failed => return Err(unexpected(State::Failed.expects(), message)),
        };
        Ok(())
    }

    fn handle_established(&mut self, message: Message<'_>) -> Result<State, Error> {
        match message {
            Message::Handshake {
                kind: kind::HELLO_REQUEST,
                ..
            } if self.side == Side::Client => {
                // RFC 5246 section 7.4.1.1: a client may decline renegotiation with a
                // no_renegotiation warning. One refusal waiting in `outgoing` answers any
                // number of requests, so a flood of them cannot grow the buffer.
                if !self.refusal_pending {
                    self.refusal_pending = true;
                    self.send_alert(LEVEL_WARNING, AlertDescription::NO_RENEGOTIATION);
                }
                Ok(State::Established)
            }
            _ => Err(unexpected(State::Established.expects(), message)),
        }
    }
}
