//! The sans-IO WebSocket protocol state machine (RFC 6455 §5, §7).

use std::fmt;

use bytes::{Buf, BytesMut};

use crate::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD};
use crate::config::Config;
use crate::error::Error;
use crate::frame::{write_frame, FrameHeader};
use crate::mask::apply_mask;
use crate::message::Message;
use crate::opcode::OpCode;
use crate::role::Role;
use crate::utf8::{Utf8Bytes, Utf8Validator};

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
/// - Commands: [`Protocol::send`], [`Protocol::close`].
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
    write_buf: BytesMut,
    mask_source: Option<MaskSource>,
    /// A header whose payload has not fully arrived; already validated and consumed.
    pending: Option<FrameHeader>,
    /// A fragmented data message in progress.
    assembly: Option<Assembly>,
    close_sent: bool,
    close_received: bool,
    error: Option<Error>,
}

/// A fragmented message being reassembled.
struct Assembly {
    opcode: OpCode,
    data: BytesMut,
    /// Payload plus per-fragment overhead counted so far, against the message size limit.
    size: u64,
    utf8: Option<Utf8Validator>,
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
            write_buf: BytesMut::new(),
            mask_source,
            pending: None,
            assembly: None,
            close_sent: false,
            close_received: false,
            error: None,
        }
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the closing handshake stands.
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
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The buffer received bytes go into; read from the socket straight into it.
    ///
    /// It starts empty and without capacity: the driver reserves what it reads into, so an
    /// idle connection holds no read memory.
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.read_buf
    }

    /// Appends received bytes to the read buffer (a copy; prefer [`Protocol::read_buffer`]).
    pub fn receive_data(&mut self, data: &[u8]) {
        self.read_buf.extend_from_slice(data);
    }

    /// Decodes the next message or control event from the read buffer.
    ///
    /// Returns `Ok(None)` when the buffer holds no complete message; call it again after more
    /// bytes arrived. Pings are answered and a peer's close is echoed into the write buffer
    /// before the event is returned. After the peer's close, further bytes are discarded.
    ///
    /// # Errors
    ///
    /// A protocol violation (see [`Error::close_code`]); the close frame is already queued and
    /// the error repeats on every later call.
    pub fn poll_message(&mut self) -> Result<Option<Message>, Error> {
        let mut buf = std::mem::take(&mut self.read_buf);
        let result = self.poll_message_in(&mut buf);
        self.read_buf = buf;
        result
    }

    /// [`Protocol::poll_message`] over an external read buffer; the tokio codec uses the
    /// buffer `Framed` reads into.
    pub(crate) fn poll_message_in(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        loop {
            if self.close_received {
                // RFC 6455 §5.5.1: after a close frame, "the endpoint ... MUST NOT send any
                // more data frames"; whatever the peer still sends is discarded.
                buf.clear();
                return Ok(None);
            }
            let header = match self.pending {
                Some(header) => header,
                None => match FrameHeader::parse(buf) {
                    Ok(None) => {
                        Self::release_idle(buf);
                        return Ok(None);
                    }
                    Ok(Some((header, used))) => {
                        if let Err(err) = self.check_header(&header) {
                            return Err(self.fail(err));
                        }
                        buf.advance(used);
                        self.pending = Some(header);
                        header
                    }
                    Err(err) => return Err(self.fail(err)),
                },
            };
            // check_header bounded the length by a usize limit, so this conversion succeeds.
            let len = match usize::try_from(header.payload_len) {
                Ok(len) => len,
                Err(_) => {
                    let err = Error::FrameTooLarge {
                        len: header.payload_len,
                        limit: self.config.max_frame_payload(),
                    };
                    return Err(self.fail(err));
                }
            };
            if buf.len() < len {
                return Ok(None);
            }
            self.pending = None;
            trace_frame(self.role, &header, "frame received");
            let mut payload = buf.split_to(len);
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key);
            }
            match self.handle_frame(header, payload) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => continue,
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    /// Queues a message or control frame into the write buffer.
    ///
    /// Text and binary messages go out as one frame. `Message::Close` starts the closing
    /// handshake like [`Protocol::close`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once a close was sent or the connection failed;
    /// [`Error::ControlPayloadTooLong`] for a ping, pong or close over 125 bytes;
    /// [`Error::UnsendableCloseCode`] for a close code that may not go on the wire.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        if self.close_sent || self.error.is_some() {
            return Err(Error::Closed);
        }
        match message {
            Message::Text(text) => self.write(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.write(OpCode::Binary, &data),
            Message::Ping(data) | Message::Pong(data) if data.len() > MAX_CONTROL_PAYLOAD => {
                return Err(Error::ControlPayloadTooLong { len: data.len() })
            }
            Message::Ping(data) => self.write(OpCode::Ping, &data),
            Message::Pong(data) => self.write(OpCode::Pong, &data),
            Message::Close(None) => {
                self.write(OpCode::Close, &[]);
                self.close_sent = true;
            }
            Message::Close(Some(frame)) => {
                frame.check_sendable()?;
                self.write_close(frame.code, frame.reason.as_bytes());
            }
        }
        Ok(())
    }

    /// Starts the closing handshake: queues a close frame with `code` and `reason`.
    ///
    /// The state becomes [`State::Closing`]; it becomes [`State::Closed`] when the peer's close
    /// arrives through [`Protocol::poll_message`].
    ///
    /// # Errors
    ///
    /// As for [`Protocol::send`] of a `Message::Close`.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.close_sent || self.error.is_some() {
            return Err(Error::Closed);
        }
        let frame = CloseFrame::new(code, reason)?;
        self.write_close(frame.code, frame.reason.as_bytes());
        Ok(())
    }

    /// The bytes waiting to be written to the socket; the driver writes and consumes them
    /// (for example with `AsyncWriteExt::write_buf`).
    pub fn write_buffer(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// How many bytes wait to be written: the backpressure signal for the driver.
    pub fn write_buffer_len(&self) -> usize {
        self.write_buf.len()
    }

    /// Releases the capacity of empty buffers; call when the connection goes idle.
    pub fn shrink_buffers(&mut self) {
        if self.read_buf.is_empty() && self.pending.is_none() {
            self.read_buf = BytesMut::new();
        }
        if self.write_buf.is_empty() {
            self.write_buf = BytesMut::new();
        }
    }

    /// The checks that need the header and the protocol state, before any payload is read.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Error> {
        header.validate(self.role, &self.config)?;
        if header.rsv1 {
            // No extension is wired into the protocol yet, so RSV1 has no meaning here even
            // when the configuration allows it for frame-level users.
            return Err(Error::ReservedBits { rsv: 0b100 });
        }
        let limit = self.config.max_message_size();
        match (header.opcode, &self.assembly) {
            // RFC 6455 §5.4: "a fragmented message consists of a single frame with the FIN bit
            // clear and an opcode other than 0, followed by zero or more frames with the FIN bit
            // clear and the opcode set to 0".
            (OpCode::Continuation, None) => Err(Error::UnexpectedContinuation),
            (opcode @ (OpCode::Text | OpCode::Binary), Some(_)) => {
                Err(Error::ExpectedContinuation { opcode })
            }
            (OpCode::Text | OpCode::Binary, None) if header.payload_len > limit as u64 => {
                Err(Error::MessageTooLarge {
                    size: header.payload_len,
                    limit,
                })
            }
            (OpCode::Continuation, Some(assembly)) => {
                let size = assembly
                    .size
                    .saturating_add(self.config.fragment_overhead() as u64)
                    .saturating_add(header.payload_len);
                if size > limit as u64 {
                    Err(Error::MessageTooLarge { size, limit })
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn handle_frame(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Message>, Error> {
        match header.opcode {
            OpCode::Text | OpCode::Binary if header.fin => {
                Ok(Some(data_message(header.opcode, payload)?))
            }
            OpCode::Text | OpCode::Binary => {
                let mut utf8 = (header.opcode == OpCode::Text).then(Utf8Validator::default);
                if let Some(validator) = &mut utf8 {
                    validator.feed(&payload, false)?;
                }
                self.assembly = Some(Assembly {
                    opcode: header.opcode,
                    size: payload.len() as u64,
                    data: payload,
                    utf8,
                });
                Ok(None)
            }
            OpCode::Continuation => {
                let overhead = self.config.fragment_overhead() as u64;
                let Some(assembly) = self.assembly.as_mut() else {
                    return Err(Error::UnexpectedContinuation);
                };
                assembly.data.extend_from_slice(&payload);
                assembly.size = assembly
                    .size
                    .saturating_add(overhead)
                    .saturating_add(payload.len() as u64);
                if let Some(validator) = &mut assembly.utf8 {
                    validator.feed(&assembly.data, header.fin)?;
                }
                if !header.fin {
                    return Ok(None);
                }
                match self.assembly.take() {
                    Some(done) => Ok(Some(data_message(done.opcode, done.data)?)),
                    None => Err(Error::UnexpectedContinuation),
                }
            }
            OpCode::Ping => {
                // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                // frame in response ... [with] identical Application data".
                if !self.close_sent {
                    self.write(OpCode::Pong, &payload);
                }
                Ok(Some(Message::Ping(payload.freeze())))
            }
            OpCode::Pong => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Close => {
                let frame = CloseFrame::decode(payload.freeze())?;
                self.close_received = true;
                // RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
                // send a Close frame, the endpoint MUST send a Close frame in response. ... it
                // typically echos the status code it received." The reason goes back too:
                // peers (Python websockets, Node ws) report the echoed frame as the outcome.
                if !self.close_sent {
                    match &frame {
                        Some(frame) => self.write_close(frame.code, frame.reason.as_bytes()),
                        None => {
                            self.write(OpCode::Close, &[]);
                            self.close_sent = true;
                        }
                    }
                }
                Ok(Some(Message::Close(frame)))
            }
            OpCode::Reserved(op) => Err(Error::ReservedOpcode(op)),
        }
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

    fn write_close(&mut self, code: CloseCode, reason: &[u8]) {
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        let reason = &reason[..reason.len().min(MAX_CLOSE_REASON)];
        body[..2].copy_from_slice(&code.0.to_be_bytes());
        body[2..2 + reason.len()].copy_from_slice(reason);
        self.write(OpCode::Close, &body[..2 + reason.len()]);
        self.close_sent = true;
    }

    fn write(&mut self, opcode: OpCode, payload: &[u8]) {
        let mask = self.mask_source.as_mut().map(|next| next());
        let header = FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        trace_frame(self.role, &header, "frame queued");
        write_frame(&mut self.write_buf, header, payload);
    }

    fn release_idle(buf: &mut BytesMut) {
        if buf.is_empty() && buf.capacity() > IDLE_BUFFER_CAPACITY {
            *buf = BytesMut::new();
        }
    }
}

impl fmt::Debug for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protocol")
            .field("role", &self.role)
            .field("state", &self.state())
            .field("buffered_in", &self.read_buf.len())
            .field("buffered_out", &self.write_buf.len())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A complete text or binary message from its unmasked payload.
/// The frame-level log line (`tether serve -v`): the header's fields, not the payload. When
/// `trace` is off for this crate the macro is one cached level check.
#[inline]
fn trace_frame(role: Role, header: &FrameHeader, what: &'static str) {
    tracing::trace!(
        role = ?role,
        fin = header.fin,
        opcode = ?header.opcode,
        masked = header.mask.is_some(),
        len = header.payload_len,
        "{what}"
    );
}

fn data_message(opcode: OpCode, payload: BytesMut) -> Result<Message, Error> {
    if opcode == OpCode::Text {
        Ok(Message::Text(Utf8Bytes::try_from(payload.freeze())?))
    } else {
        Ok(Message::Binary(payload.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::frame::Frame;

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    /// Bytes a client would send for `frame` (masked with `KEY`).
    fn from_client(frame: Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.with_mask(Some(KEY)).encode(&mut out);
        out
    }

    fn server_with(config: &Config) -> Protocol {
        Protocol::server(config.clone())
    }

    /// Feeds `wire` to a fresh server and returns the error and the close code it sent.
    fn server_failure(config: &Config, wire: &[u8]) -> (Error, Option<CloseCode>) {
        let mut server = server_with(config);
        server.receive_data(wire);
        let err = loop {
            match server.poll_message() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error for {wire:02x?}"),
                Err(err) => break err,
            }
        };
        assert_eq!(server.state(), State::Closed);
        let out = server.write_buffer().split();
        let (header, used) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Close);
        let sent = CloseFrame::decode(out.freeze().slice(used..))
            .unwrap()
            .map(|f| f.code);
        (err, sent)
    }

    #[test]
    fn rfc6455_5_5_2_ping_is_answered_with_identical_pong() {
        let mut server = server_with(&Config::default());
        server.receive_data(&from_client(Frame::new(OpCode::Ping, "abc")));
        assert_eq!(
            server.poll_message().unwrap(),
            Some(Message::Ping(Bytes::from_static(b"abc")))
        );
        assert_eq!(&server.write_buffer()[..], b"\x8a\x03abc");
    }

    #[test]
    fn rfc6455_5_1_client_masks_with_supplied_keys() {
        let mut next = 0u8;
        let mut client = Protocol::client(Config::default(), move || {
            next += 1;
            [next; 4]
        });
        client.send(Message::binary(vec![0u8; 3])).unwrap();
        client.send(Message::binary(vec![0u8; 3])).unwrap();
        assert_eq!(
            &client.write_buffer()[..],
            [0x82, 0x83, 1, 1, 1, 1, 1, 1, 1, 0x82, 0x83, 2, 2, 2, 2, 2, 2, 2]
        );
    }

    #[test]
    fn rfc6455_7_closing_handshake_initiated_locally() {
        let mut server = server_with(&Config::default());
        server.close(CloseCode::GOING_AWAY, "").unwrap();
        assert_eq!(server.state(), State::Closing);
        assert!(matches!(
            server.send(Message::text("x")),
            Err(Error::Closed)
        ));
        assert!(matches!(
            server.close(CloseCode::NORMAL, ""),
            Err(Error::Closed)
        ));
        server.write_buffer().clear();
        // Data still arriving before the peer's close is delivered, pings are not answered.
        let mut wire = from_client(Frame::new(OpCode::Text, "late"));
        wire.unsplit(from_client(Frame::new(OpCode::Ping, "")));
        wire.unsplit(from_client(Frame::new(OpCode::Close, &b"\x03\xe9"[..])));
        wire.unsplit(from_client(Frame::new(OpCode::Text, "after close")));
        server.receive_data(&wire);
        assert_eq!(server.poll_message().unwrap(), Some(Message::text("late")));
        assert!(matches!(
            server.poll_message().unwrap(),
            Some(Message::Ping(_))
        ));
        assert!(matches!(
            server.poll_message().unwrap(),
            Some(Message::Close(Some(f))) if f.code == CloseCode::GOING_AWAY
        ));
        assert_eq!(server.state(), State::Closed);
        assert_eq!(server.poll_message().unwrap(), None);
        assert!(server.write_buffer().is_empty(), "no echo, no pong");
        assert!(
            server.read_buffer().is_empty(),
            "bytes after close discarded"
        );
    }

    #[test]
    fn rfc6455_5_5_1_peer_close_is_echoed_once() {
        let mut server = server_with(&Config::default());
        server.receive_data(&from_client(Frame::new(OpCode::Close, &b"\x0f\xa0bye"[..])));
        assert!(matches!(
            server.poll_message().unwrap(),
            Some(Message::Close(Some(f))) if f.code == CloseCode(4000) && f.reason == "bye"
        ));
        assert_eq!(&server.write_buffer()[..], b"\x88\x05\x0f\xa0bye");
        assert_eq!(server.state(), State::Closed);
        assert!(matches!(
            server.send(Message::text("x")),
            Err(Error::Closed)
        ));

        let mut server = server_with(&Config::default());
        server.receive_data(&from_client(Frame::new(OpCode::Close, Bytes::new())));
        assert_eq!(server.poll_message().unwrap(), Some(Message::Close(None)));
        assert_eq!(&server.write_buffer()[..], b"\x88\x00");
    }

    #[test]
    fn errors_are_sticky_and_close_once() {
        let mut server = server_with(&Config::default());
        server.receive_data(&[0x81, 0x05]); // unmasked
        assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
        let sent = server.write_buffer_len();
        server.receive_data(&from_client(Frame::new(OpCode::Text, "x")));
        assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
        assert_eq!(server.write_buffer_len(), sent);
        assert!(matches!(server.error(), Some(Error::UnmaskedFrame)));
    }

    #[test]
    fn failure_close_frame_carries_code() {
        let config = Config::default();
        let (err, code) =
            server_failure(&config, &from_client(Frame::new(OpCode::Reserved(3), "")));
        assert!(matches!(err, Error::ReservedOpcode(3)));
        assert_eq!(code, Some(CloseCode::PROTOCOL_ERROR));
    }

    #[test]
    fn max_frame_payload_at_and_past_the_limit() {
        let mut config = Config::default();
        config.set_max_frame_payload(100);
        let mut server = server_with(&config);
        server.receive_data(&from_client(Frame::new(OpCode::Binary, vec![7u8; 100])));
        assert_eq!(
            server.poll_message().unwrap(),
            Some(Message::binary(vec![7u8; 100]))
        );
        let (err, code) = server_failure(
            &config,
            &from_client(Frame::new(OpCode::Binary, vec![7u8; 101])),
        );
        assert!(matches!(
            err,
            Error::FrameTooLarge {
                len: 101,
                limit: 100
            }
        ));
        assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    }

    #[test]
    fn max_message_size_counts_fragment_overhead_at_and_past_the_limit() {
        let mut config = Config::default();
        config.set_max_message_size(1000).set_fragment_overhead(10);
        // Three fragments: 2 continuation overheads (20) + payload 980 = 1000, accepted.
        let fragments = |last: usize| {
            let mut wire = from_client(Frame::new(OpCode::Binary, vec![1u8; 490]).with_fin(false));
            wire.unsplit(from_client(
                Frame::new(OpCode::Continuation, vec![1u8; 480]).with_fin(false),
            ));
            wire.unsplit(from_client(Frame::new(
                OpCode::Continuation,
                vec![1u8; last],
            )));
            wire
        };
        let mut server = server_with(&config);
        server.receive_data(&fragments(10));
        assert_eq!(
            server.poll_message().unwrap(),
            Some(Message::binary(vec![1u8; 980]))
        );
        let (err, code) = server_failure(&config, &fragments(11));
        assert!(matches!(
            err,
            Error::MessageTooLarge {
                size: 1001,
                limit: 1000
            }
        ));
        assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    }

    #[test]
    fn announced_huge_frame_is_refused_from_the_header_alone() {
        // 2^62 bytes announced, masked, no payload sent.
        let wire = [0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let (err, code) = server_failure(&Config::default(), &wire);
        assert!(matches!(err, Error::FrameTooLarge { len, .. } if len == 1 << 62));
        assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
        // With the frame limit lifted, the message limit still refuses it from the header.
        let mut config = Config::default();
        config.set_max_frame_payload(usize::MAX);
        let (err, code) = server_failure(&config, &wire);
        assert!(matches!(err, Error::MessageTooLarge { size, .. } if size == 1 << 62));
        assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    }

    #[test]
    fn single_frame_payload_is_split_off_the_read_buffer_without_copy() {
        let mut server = server_with(&Config::default());
        assert_eq!(server.read_buffer().capacity(), 0, "no up-front buffer");
        let wire = from_client(Frame::new(OpCode::Binary, vec![5u8; 1000]));
        server.read_buffer().extend_from_slice(&wire);
        let start = server.read_buffer().as_ptr() as usize;
        let Some(Message::Binary(data)) = server.poll_message().unwrap() else {
            panic!("expected a binary message");
        };
        let at = data.as_ptr() as usize;
        assert!(
            (start..start + wire.len()).contains(&at),
            "payload points into the read buffer"
        );
        assert_eq!(&data[..], &[5u8; 1000][..]);
    }

    #[test]
    fn failure_while_closing_sends_no_second_close() {
        let mut server = server_with(&Config::default());
        server.close(CloseCode::NORMAL, "").unwrap();
        let ours = server.write_buffer().split();
        server.receive_data(&[0x82, 0x00]); // unmasked: a violation
        assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
        assert_eq!(&ours[..], b"\x88\x02\x03\xe8");
        assert!(server.write_buffer().is_empty());
        assert_eq!(server.state(), State::Closed);
    }

    #[test]
    fn send_checks_control_payload_limits() {
        let mut server = server_with(&Config::default());
        assert!(server.send(Message::Ping(vec![0u8; 125].into())).is_ok());
        assert!(matches!(
            server.send(Message::Pong(vec![0u8; 126].into())),
            Err(Error::ControlPayloadTooLong { len: 126 })
        ));
        assert!(matches!(
            server.close(CloseCode(1005), ""),
            Err(Error::UnsendableCloseCode(1005))
        ));
        assert_eq!(
            server.state(),
            State::Open,
            "a refused close changes nothing"
        );
    }

    #[test]
    fn idle_read_buffer_is_released() {
        let mut server = server_with(&Config::default());
        let big = from_client(Frame::new(OpCode::Binary, vec![0u8; 200_000]));
        server.read_buffer().extend_from_slice(&big);
        assert!(server.poll_message().unwrap().is_some());
        assert_eq!(server.poll_message().unwrap(), None);
        assert_eq!(server.read_buffer().capacity(), 0);
    }
}
