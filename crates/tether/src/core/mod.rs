//! The connection driver shared by [`WebSocket`](crate::WebSocket) and its split halves: it
//! moves bytes between the transport and the codec's [`Protocol`], and owns the closing
//! handshake and its timeout.
//!
//! This file holds the driver's state; its work is by side: `read` (messages out of the
//! transport), `write` (messages into it) and `close` (the closing handshake and the timers).

use std::pin::Pin;
use std::task::Waker;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tether_codec::{CloseFrame, DeflateConfig, DeflateParams, Message, OpCode, Protocol, Role};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use crate::config::Config;
use crate::error::Error;
use crate::read_room::ReadRoom;

mod close;
mod read;
#[cfg(test)]
mod tests;
mod write;

/// The most room made ahead of what a peer sent, for the payload its frame header announced.
const READ_AHEAD: usize = 1 << 20;
/// The most pieces handed to one vectored write.
const WRITE_SLICES: usize = 16;

/// What the driver needs from a transport.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin {}
impl<S: AsyncRead + AsyncWrite + Unpin> Transport for S {}

/// What the application queues: a whole message, or one fragment of a data message
/// ([`Protocol::send_fragment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    Message(Message),
    /// Opcode, payload and FIN of the fragment.
    Fragment(OpCode, Bytes, bool),
}

impl Outgoing {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Outgoing::Message(message) => message.len(),
            Outgoing::Fragment(_, data, _) => data.len(),
        }
    }
}

impl From<Message> for Outgoing {
    fn from(message: Message) -> Self {
        Outgoing::Message(message)
    }
}

pub(crate) struct Core<S> {
    io: S,
    protocol: Protocol,
    write_limit: usize,
    close_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    /// Where the driver stands: open, closing against a deadline, or ended.
    phase: Phase,
    /// The one-message slot behind a full write buffer.
    slot: Slot,
    /// Spare read buffers, for when received messages are kept across the next read.
    read_room: ReadRoom,
    /// Bytes were written but the transport was not flushed since.
    unflushed: bool,
    /// Bytes written since the write buffer's allocation was last measured (see
    /// [`Core::written_buffer_may_be_large`]).
    written_unmeasured: usize,
    /// The transport reported end of input.
    eof: bool,
    /// The transport's write side was shut down.
    shutdown: bool,
    /// The peer's close frame, once it arrived (`Some(None)`: a close without a code).
    peer_close: Option<Option<CloseFrame>>,
    /// Woken when the stream ends (a split writer waiting in `close`).
    end_waiter: Option<Waker>,
    /// The first error met while driving the closing handshake, returned when it is over.
    close_error: Option<Error>,
}

/// The driver's lifecycle. The closing handshake's own progress (which close frames went
/// through) is `protocol.state()`; this is what the driver holds for each stretch of it.
enum Phase {
    /// Messages flow both ways. With an idle timeout: when the connection counts as idle
    /// unless a read moves it on.
    Open { idle: Option<Pin<Box<Sleep>>> },
    /// The connection left [`State::Open`] (a close sent or received, or a failure): the
    /// closing handshake must be over by `deadline` (`None` without a close timeout).
    Closing { deadline: Option<Pin<Box<Sleep>>> },
    /// The stream of messages is over; it stays over.
    Ended,
}

/// The one-message slot behind a full write buffer, so a stalled peer costs at most one
/// message more than the limit.
enum Slot {
    Empty,
    /// A message (or fragment) accepted by `send` while the write buffer was full; it goes
    /// into the buffer before anything else once there is room.
    Parked(Outgoing),
    /// The parked message was refused when it moved into the buffer: the error is for the
    /// next write call.
    Refused(Error),
}

impl Slot {
    fn is_empty(&self) -> bool {
        matches!(self, Slot::Empty)
    }

    fn len(&self) -> usize {
        match self {
            Slot::Parked(message) => message.len(),
            Slot::Empty | Slot::Refused(_) => 0,
        }
    }

    /// The refusal, if one waits; the slot is empty afterwards.
    #[inline]
    fn take_refusal(&mut self) -> Option<Error> {
        if !matches!(self, Slot::Refused(_)) {
            return None;
        }
        match std::mem::replace(self, Slot::Empty) {
            Slot::Refused(err) => Some(err),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl<S> Core<S> {
    /// Switches permessage-deflate on with what the handshake agreed, before any frame.
    pub(crate) fn set_deflate(&mut self, params: DeflateParams, config: &DeflateConfig) {
        self.protocol.set_deflate(params, config);
    }

    pub(crate) fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    pub(crate) fn peer_close(&self) -> Option<&CloseFrame> {
        self.peer_close.as_ref().and_then(Option::as_ref)
    }

    /// Bytes waiting to be written, counting a parked message.
    pub(crate) fn buffered(&self) -> usize {
        self.protocol.write_buffer_len() + self.slot.len()
    }

    fn ended(&self) -> bool {
        matches!(self.phase, Phase::Ended)
    }

    /// The peer's close or the failure was handed to the reader.
    fn close_seen(&self) -> bool {
        self.peer_close.is_some() || self.protocol.error().is_some()
    }
}

impl<S: Transport> Core<S> {
    /// A driver over `io`, whose handshake is done; `leftover` holds bytes read past the
    /// handshake (the peer's first frames), decoded before anything is read from `io`.
    pub(crate) fn new(io: S, role: Role, config: &Config, leftover: BytesMut) -> Core<S> {
        let mut protocol = match role {
            Role::Server => Protocol::server(config.codec().clone()),
            Role::Client => Protocol::client(config.codec().clone(), crate::mask::key_source()),
        };
        if !leftover.is_empty() {
            *protocol.read_buffer() = leftover;
        }
        Core {
            io,
            protocol,
            write_limit: config.write_buffer_limit(),
            close_timeout: config.close_timeout(),
            idle_timeout: config.idle_timeout(),
            phase: Phase::Open {
                idle: config
                    .idle_timeout()
                    .map(|timeout| Box::pin(tokio::time::sleep(timeout))),
            },
            slot: Slot::Empty,
            read_room: ReadRoom::default(),
            unflushed: false,
            written_unmeasured: 0,
            eof: false,
            shutdown: false,
            peer_close: None,
            end_waiter: None,
            close_error: None,
        }
    }

    fn end(&mut self) {
        self.phase = Phase::Ended;
        if let Slot::Parked(_) = self.slot {
            self.slot = Slot::Empty;
        }
        self.protocol.write_buffer().clear();
        self.protocol.read_buffer().clear();
        self.protocol.shrink_buffers();
        if let Some(waker) = self.end_waiter.take() {
            waker.wake();
        }
    }
}
