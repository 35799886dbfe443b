//! The sans-IO WebSocket protocol state machine (RFC 6455 §5, §7).
//!
//! This file holds the state and the failure path; the rest is by direction: `receive`
//! (bytes in, messages out), `assembly` (a message received in pieces), `send` (messages in,
//! frames out) and `output` (the bytes owed to the socket, the buffers an idle connection
//! hands back).

use std::fmt;

use bytes::BytesMut;

use self::assembly::Assembly;
use crate::close::{MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD};
use crate::config::Config;
use crate::deflate::Deflate;
use crate::error::Error;
use crate::frame::FrameHeader;
use crate::outbox::Outbox;
use crate::utf8::Utf8Stream;
use crate::Role;
use tether_deflate::{DeflateConfig, DeflateParams};

mod assembly;
mod output;
mod receive;
mod send;
#[cfg(test)]
mod tests;

/// An empty read buffer holding more capacity than this is released after a message, so an idle
/// connection does not keep the memory its largest message needed.
const IDLE_BUFFER_CAPACITY: usize = 64 << 10;

/// Where the closing handshake stands (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; received messages are still delivered,
    /// nothing more is sent.
    Closing,
    /// Both close frames were exchanged, or the connection failed: nothing more is sent or
    /// accepted. The driver should now close the transport (a server first, RFC 6455 §7.1.1).
    Closed,
}

/// The source of masking keys for a client: called once per frame sent.
type MaskSource = Box<dyn FnMut() -> [u8; 4] + Send + Sync>;

/// A WebSocket connection without I/O: bytes in, messages out; messages in, bytes out.
///
/// The driver (an async stream, a test, a poll loop) owns the socket and moves bytes; the
/// protocol owns the buffers and every rule of RFC 6455.
///
/// ```text
///    socket bytes ──► read_buffer() ──► poll_message() ──► Message (Text, Binary, Ping, Pong, Close)
///                                          │ auto pong, close echo, close on error
///                                          ▼
///    application ──► send() / close() ──► write_buffer() ──► socket
/// ```
///
/// # Methods by group
///
/// - Construction: [`Protocol::server`], [`Protocol::client`] (which takes the source of
///   masking keys: this crate draws no randomness itself).
/// - Getters: [`Protocol::role`], [`Protocol::state`], [`Protocol::config`],
///   [`Protocol::error`].
/// - Input: [`Protocol::read_buffer`] (read socket bytes straight into it, zero copy) or
///   [`Protocol::receive_data`] (copies). Bytes left over from the HTTP handshake go in the same
///   way, before the first socket read.
/// - Events: [`Protocol::poll_message`], called until it returns `Ok(None)`: one read may hold
///   many messages.
/// - Commands: [`Protocol::send`], [`Protocol::send_fragment`] (a data message in pieces),
///   [`Protocol::close`].
/// - Output: [`Protocol::write_buffer`], drained by the driver with as few writes as it can;
///   its length is the backpressure signal. Pongs and close replies land there too.
///
/// # Errors
///
/// Inputs never panic. A protocol violation by the peer queues the close frame with the code
/// RFC 6455 names (1002, 1007, 1009) and becomes sticky: every later `poll_message` returns the
/// same error, and the state is [`State::Closed`]. The driver should flush the write buffer and
/// then drop the connection.
///
/// # Example
///
/// ```
/// use tether_codec::{CloseCode, Config, Message, Protocol, State};
///
/// let mut server = Protocol::server(Config::default());
/// // RFC 6455 §5.7: a masked "Hello" followed by a masked ping, arriving in one read.
/// server.receive_data(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// server.receive_data(&[0x89, 0x80, 1, 2, 3, 4]);
/// assert_eq!(server.poll_message().unwrap(), Some(Message::text("Hello")));
/// assert_eq!(server.poll_message().unwrap(), Some(Message::Ping(Default::default())));
/// assert_eq!(server.poll_message().unwrap(), None);
/// // The pong is already queued.
/// assert_eq!(&server.write_buffer()[..], [0x8a, 0x00]);
/// server.write_buffer().clear();
///
/// server.close(CloseCode::NORMAL, "done").unwrap();
/// assert_eq!(server.state(), State::Closing);
/// assert_eq!(&server.write_buffer()[..], b"\x88\x06\x03\xe8done");
/// ```
pub struct Protocol {
    role: Role,
    config: Config,
    read_buf: BytesMut,
    /// The bytes owed to the socket.
    out: Outbox,
    mask_source: Option<MaskSource>,
    /// permessage-deflate, when the handshake agreed it. Boxed: its state is larger than the
    /// rest of the protocol, and most connections go without it.
    deflate: Option<Box<Deflate>>,
    /// A frame whose payload has not fully arrived; its header is validated and consumed.
    pending: Option<InFrame>,
    /// A fragmented data message in progress.
    assembly: Option<Assembly>,
    /// A fragmented data message we are sending, open until its final fragment.
    sending: Option<Sending>,
    /// The answer to the latest Ping, not yet in the write buffer (RFC 6455 §5.5.3).
    pong: PendingPong,
    close_sent: bool,
    close_received: bool,
    error: Option<Error>,
}

/// At most one Pong waiting to be written: the payload of the most recent Ping.
///
/// Held inline (a Ping's payload is at most 125 bytes) rather than as a slice of the read
/// buffer, so a pending answer neither allocates nor pins the read buffer's memory.
#[derive(Clone, Copy)]
struct PendingPong {
    payload: [u8; MAX_CONTROL_PAYLOAD],
    /// `None`: no Pong is owed.
    len: Option<u8>,
}

impl PendingPong {
    const NONE: PendingPong = PendingPong {
        payload: [0; MAX_CONTROL_PAYLOAD],
        len: None,
    };

    /// Owes a Pong carrying `payload`, replacing any older one. `payload` comes from a Ping
    /// whose header passed the 125-byte control frame check.
    fn replace(&mut self, payload: &[u8]) {
        let len = payload.len().min(MAX_CONTROL_PAYLOAD);
        self.payload[..len].copy_from_slice(&payload[..len]);
        // len <= 125 fits a u8.
        self.len = u8::try_from(len).ok();
    }

    /// The payload owed, if any.
    #[inline]
    fn get(&self) -> Option<&[u8]> {
        self.len.map(|len| &self.payload[..usize::from(len)])
    }
}

/// The kind of the fragmented message being sent, with what its continuations need.
#[derive(Debug, Clone, Copy)]
enum Sending {
    Binary,
    Text(Utf8Stream),
}

/// A frame being received: its header and how much of its payload was handled so far.
#[derive(Debug, Clone, Copy)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes handled: unmasked and checked in place for a single-frame text message
    /// (still in the read buffer), moved into the [`Assembly`] for a fragment.
    done: usize,
    /// The UTF-8 check of a single-frame text message's payload as it arrives.
    utf8: Utf8Stream,
}

impl Protocol {
    /// A server-side protocol: expects masked frames, sends unmasked ones.
    pub fn server(config: Config) -> Protocol {
        Protocol::new(Role::Server, config, None)
    }

    /// A client-side protocol: expects unmasked frames and masks every frame it sends with a key
    /// from `mask_keys`, called once per frame.
    ///
    /// RFC 6455 §5.3 asks for keys "derived from a strong source of entropy"; pass a closure
    /// over a cryptographic random generator.
    pub fn client(
        config: Config,
        mask_keys: impl FnMut() -> [u8; 4] + Send + Sync + 'static,
    ) -> Protocol {
        Protocol::new(Role::Client, config, Some(Box::new(mask_keys)))
    }

    fn new(role: Role, config: Config, mask_source: Option<MaskSource>) -> Protocol {
        Protocol {
            role,
            config,
            read_buf: BytesMut::new(),
            out: Outbox::default(),
            mask_source,
            deflate: None,
            pending: None,
            assembly: None,
            sending: None,
            pong: PendingPong::NONE,
            close_sent: false,
            close_received: false,
            error: None,
        }
    }

    /// Which side this is.
    #[inline]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the closing handshake stands.
    #[inline]
    pub fn state(&self) -> State {
        if self.error.is_some() || self.close_received {
            State::Closed
        } else if self.close_sent {
            State::Closing
        } else {
            State::Open
        }
    }

    /// The configuration this protocol was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The error the connection failed with, if it did.
    #[inline]
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Switches on permessage-deflate (RFC 7692) with the parameters the handshake agreed,
    /// and `config`'s compression level and threshold. Call it before any data is exchanged.
    ///
    /// Then a received data message with RSV1 on its first frame is inflated as its frames
    /// arrive, bounded by [`Config::set_max_message_size`] while inflating (past it: 1009),
    /// its text checked on the inflated bytes; RSV1 on a control or continuation frame stays
    /// 1002 (§6). [`Protocol::send`] compresses each text and binary message of at least
    /// [`DeflateConfig::set_threshold`] bytes and sets RSV1 on its first frame.
    /// [`Protocol::send_fragment`] always sends uncompressed, which is also the way to send
    /// one whole message uncompressed (one fragment with `fin`).
    ///
    /// ```
    /// use tether_codec::{Config, DeflateConfig, Message, Protocol};
    ///
    /// let mut deflate = DeflateConfig::default();
    /// deflate.set_threshold(0); // compress even tiny messages
    /// // The server accepted the offer without parameters.
    /// let params = deflate.accept_response([Vec::new()]).unwrap().unwrap();
    /// let mut server = Protocol::server(Config::default());
    /// server.set_deflate(params, &deflate);
    /// server.send(Message::text("Hello")).unwrap();
    /// // RFC 7692 §7.2.3.1: RSV1 and FIN set, the compressed "Hello".
    /// assert_eq!(&server.write_buffer()[..], [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    /// ```
    pub fn set_deflate(&mut self, params: DeflateParams, config: &DeflateConfig) -> &mut Self {
        let limit = self.config.max_message_size();
        self.deflate = Some(Box::new(Deflate::new(self.role, params, config, limit)));
        self
    }

    /// The permessage-deflate parameters in use, if any; see [`Protocol::set_deflate`].
    #[inline]
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_deref().map(Deflate::params)
    }

    /// Bytes held for the message being received (tests of memory bounds).
    #[cfg(test)]
    pub(crate) fn assembly_capacity(&self) -> usize {
        self.assembly.as_ref().map_or(0, |a| a.body.capacity())
    }

    /// Fails the connection (RFC 6455 §7.1.7): queues the close frame for `err`, drops partial
    /// state and keeps the error.
    fn fail(&mut self, err: Error) -> Error {
        tracing::debug!(error = %err, role = ?self.role, "failing websocket connection");
        if let (Some(code), false) = (err.close_code(), self.close_sent) {
            let reason = err.to_string();
            let mut end = reason.len().min(MAX_CLOSE_REASON);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            self.write_close(code, &reason.as_bytes()[..end]);
        }
        self.pending = None;
        self.assembly = None;
        self.error = Some(err.clone());
        err
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocol")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("buffered_in", &self.read_buf.len())
            .field("buffered_out", &self.out.len())
            .field("sending_fragments", &self.sending.is_some())
            .field("deflate", &self.deflate())
            .field("pong_owed", &self.pong.len.is_some())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// The frame-level log line (`tether serve -v`): the header's fields, not the payload. The
/// global level test is inline, so with `trace` off a frame costs a load and a compare; the
/// event (and its own per-call-site filter) is out of line.
#[inline]
fn trace_frame(role: Role, header: &FrameHeader, what: &'static str) {
    if tracing::level_enabled!(tracing::Level::TRACE) {
        trace_frame_event(role, header, what);
    }
}

#[cold]
fn trace_frame_event(role: Role, header: &FrameHeader, what: &'static str) {
    tracing::trace!(
        role = ?role,
        fin = header.fin,
        rsv1 = header.rsv1,
        opcode = ?header.opcode,
        masked = header.mask.is_some(),
        len = header.payload_len,
        "{what}"
    );
}
