//! The sans-IO WebSocket protocol state machine (RFC 6455 §5, §7).

use std::fmt;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

use crate::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD};
use crate::config::Config;
use crate::deflate::Deflate;
use crate::error::Error;
use crate::frame::{whole_data_frame, write_frame, FrameHeader};
use crate::mask::apply_mask_offset;
use crate::message::Message;
use crate::opcode::OpCode;
use crate::outbox::{Outbox, ZERO_COPY_MIN};
use crate::utf8::{InvalidUtf8, Utf8Bytes, Utf8Stream, Validated};
use crate::Role;
use tether_deflate::{DeflateConfig, DeflateParams};

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

/// A fragmented message being reassembled; its fragments are moved in as they arrive.
struct Assembly {
    body: Body,
    /// Payload plus per-fragment overhead counted so far, against the message size limit.
    size: u64,
}

/// The payload of a fragmented message so far.
enum Body {
    Binary(BytesMut),
    /// Text checked as it arrives, kept as a `String` so the whole needs no second check.
    Text(String, Utf8Stream),
    /// A compressed message (RSV1 on its first frame, RFC 7692 §6) inflated as it arrives;
    /// text is checked on the inflated bytes as they come.
    Inflated(BytesMut, Option<Utf8Stream>),
}

impl Body {
    /// A new body for a message starting with a frame of `opcode`, compressed or not.
    fn new(opcode: OpCode, compressed: bool) -> Body {
        let text = opcode == OpCode::Text;
        match (compressed, text) {
            (true, _) => Body::Inflated(BytesMut::new(), text.then(Utf8Stream::default)),
            (false, true) => Body::Text(String::new(), Utf8Stream::default()),
            (false, false) => Body::Binary(BytesMut::new()),
        }
    }

    /// Appends `piece`, unmasked; `fin` when it ends the message. A compressed body is
    /// inflated by `deflate`.
    fn extend(
        &mut self,
        piece: &[u8],
        fin: bool,
        deflate: Option<&mut Deflate>,
    ) -> Result<(), Error> {
        match self {
            Body::Binary(data) => data.extend_from_slice(piece),
            Body::Text(text, utf8) => utf8
                .feed_with(piece, fin, |valid| text.push_str(valid))
                .map_err(|InvalidUtf8| Error::InvalidUtf8)?,
            Body::Inflated(data, utf8) => {
                // check_header lets RSV1 open a compressed body only when deflate is agreed.
                let Some(deflate) = deflate else {
                    return Err(Error::ReservedBits { rsv: 0b100 });
                };
                let start = data.len();
                let inflated = deflate.inflate(piece, fin, data);
                // Errors in stream order: text inflated before the point where the data turned
                // corrupt or too large is checked first, so where the reads fall cannot change
                // which error (1007, 1002 or 1009) the peer gets.
                if let Some(utf8) = utf8 {
                    utf8.feed_with(&data[start..], fin && inflated.is_ok(), |_| {})
                        .map_err(|InvalidUtf8| Error::InvalidUtf8)?;
                }
                inflated?;
            }
        }
        Ok(())
    }

    fn into_message(self) -> Result<Message, Error> {
        Ok(match self {
            Body::Binary(data) | Body::Inflated(data, None) => Message::Binary(data.freeze()),
            Body::Text(text, _) => Message::Text(Utf8Bytes::from(text)),
            // Checked as it was inflated, the last piece with `fin`: nothing is left to feed.
            Body::Inflated(data, Some(mut utf8)) => {
                let validated = utf8.finish(&[]).map_err(|InvalidUtf8| Error::InvalidUtf8)?;
                Message::Text(Utf8Bytes::from_validated(data.freeze(), validated))
            }
        })
    }

    /// Bytes held for the message so far.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        match self {
            Body::Binary(data) | Body::Inflated(data, _) => data.capacity(),
            Body::Text(text, _) => text.capacity(),
        }
    }
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

    /// The buffer received bytes go into; read from the socket straight into it.
    ///
    /// It starts empty and without capacity: the driver reserves what it reads into, so an
    /// idle connection holds no read memory.
    #[inline]
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.read_buf
    }

    /// How many more bytes the frame being received still needs in the read buffer: its
    /// header announced the length and passed the limits. Zero when no unfragmented frame is
    /// waiting for its payload (fragments are consumed as they arrive).
    ///
    /// A driver sizes its next read from it, so a large message is read in few syscalls and
    /// the buffer is not re-grown by copies.
    #[inline]
    pub fn payload_wanted(&self) -> usize {
        match &self.pending {
            Some(frame) if !is_fragment(&frame.header) => usize::try_from(frame.header.payload_len)
                .unwrap_or(usize::MAX)
                .saturating_sub(self.read_buf.len()),
            _ => 0,
        }
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
    #[inline]
    pub fn poll_message(&mut self) -> Result<Option<Message>, Error> {
        if let Some(message) = self.poll_whole_message() {
            return Ok(Some(message));
        }
        let mut buf = std::mem::take(&mut self.read_buf);
        let result = self.poll_message_in(&mut buf);
        let placeholder = std::mem::replace(&mut self.read_buf, buf);
        // Nothing but `take` put it there: it holds no allocation, and skipping its drop
        // saves a call on every poll.
        debug_assert_eq!(placeholder.capacity(), 0);
        std::mem::forget(placeholder);
        result
    }

    /// The next message if the read buffer starts with the kind most messages are: a whole
    /// single-frame text or binary message, uncompressed, within the limits, taken in one step.
    /// `None` otherwise, and then [`Protocol::poll_message`] decodes whatever comes next
    /// (which takes this kind too: a driver needs this only to return the common case
    /// quicker). A text that is not UTF-8 fails the connection here, and `poll_message`
    /// returns that failure.
    ///
    /// ```
    /// use tether_codec::{Config, Message, Protocol};
    ///
    /// let mut client = Protocol::client(Config::default(), || [1, 2, 3, 4]);
    /// client.send(Message::text("hi")).unwrap();
    /// client.send(Message::Ping("?".into())).unwrap();
    /// let mut server = Protocol::server(Config::default());
    /// server.receive_data(&client.write_buffer().split());
    /// assert_eq!(server.poll_whole_message(), Some(Message::text("hi")));
    /// assert_eq!(server.poll_whole_message(), None, "a ping");
    /// assert_eq!(server.poll_message().unwrap(), Some(Message::Ping("?".into())));
    /// ```
    #[inline(always)]
    pub fn poll_whole_message(&mut self) -> Option<Message> {
        if !self.between_messages() {
            return None;
        }
        let limit = self.whole_limit();
        match take_whole_message(&mut self.read_buf, self.role, limit)? {
            Ok(message) => Some(message),
            Err(InvalidUtf8) => {
                self.fail(Error::InvalidUtf8);
                None
            }
        }
    }

    /// [`Protocol::poll_message`] over an external read buffer; the tokio codec uses the
    /// buffer `Framed` reads into.
    pub(crate) fn poll_message_in(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if buf.is_empty() {
            // Nothing to decode: a frame left pending waits for more of its payload.
            Self::release_idle(buf);
            return Ok(None);
        }
        if self.between_messages() {
            let limit = self.whole_limit();
            let taken = take_whole_message(buf, self.role, limit);
            if let Some(taken) = self.settle(taken) {
                return taken.map(Some);
            }
        }
        loop {
            if self.close_received {
                // RFC 6455 §5.5.1: after a close frame, "the endpoint ... MUST NOT send any
                // more data frames"; whatever the peer still sends is discarded.
                buf.clear();
                return Ok(None);
            }
            let Some(mut frame) = self.next_frame(buf)? else {
                return Ok(None);
            };
            // check_header bounded the length by a usize limit, so this conversion succeeds.
            let Ok(len) = usize::try_from(frame.header.payload_len) else {
                let err = Error::FrameTooLarge {
                    len: frame.header.payload_len,
                    limit: self.config.max_frame_payload(),
                };
                return Err(self.fail(err));
            };
            if is_fragment(&frame.header) {
                match self.receive_fragment(&mut frame, len, buf) {
                    Ok(None) if frame.done < len => {
                        self.pending = Some(frame);
                        return Ok(None);
                    }
                    Ok(None) => continue,
                    Ok(Some(message)) => return Ok(Some(message)),
                    Err(err) => return Err(self.fail(err)),
                }
            }
            if buf.len() < len {
                if let Err(err) = check_text_prefix(&mut frame, buf) {
                    return Err(self.fail(err));
                }
                self.pending = Some(frame);
                return Ok(None);
            }
            trace_frame(self.role, &frame.header, "frame received");
            let mut payload = buf.split_to(len);
            if let Some(key) = frame.header.mask {
                apply_mask_offset(&mut payload[frame.done..], key, frame.done);
            }
            // A single-frame text: the part not checked as it arrived is checked now.
            let text = match frame.header.opcode {
                OpCode::Text if frame.header.fin => {
                    match frame.utf8.finish(&payload[frame.done..]) {
                        Ok(validated) => Some(validated),
                        Err(InvalidUtf8) => return Err(self.fail(Error::InvalidUtf8)),
                    }
                }
                _ => None,
            };
            match self.handle_frame(frame.header, payload, text) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => continue,
                Err(err) => return Err(self.fail(err)),
            }
        }
    }

    /// Whether the next frame starts a message with nothing left of the one before and no
    /// failure: where [`take_whole_message`] may take it.
    #[inline]
    fn between_messages(&self) -> bool {
        self.error.is_none()
            && self.pending.is_none()
            && self.assembly.is_none()
            && !self.close_received
    }

    /// The largest payload a single-frame message may have.
    #[inline]
    fn whole_limit(&self) -> usize {
        self.config
            .max_frame_payload()
            .min(self.config.max_message_size())
    }

    /// What [`take_whole_message`] took, as a message or this connection's failure.
    #[inline]
    fn settle(
        &mut self,
        taken: Option<Result<Message, InvalidUtf8>>,
    ) -> Option<Result<Message, Error>> {
        match taken? {
            Ok(message) => Some(Ok(message)),
            Err(InvalidUtf8) => Some(Err(self.fail(Error::InvalidUtf8))),
        }
    }

    /// The frame being received: the one left pending, or the next header in `buf`, checked
    /// against the limits before any of its payload is read. `None` while the header is
    /// incomplete; a failure is already recorded ([`Protocol::fail`]).
    fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<InFrame>, Error> {
        if let Some(frame) = self.pending.take() {
            return Ok(Some(frame));
        }
        match FrameHeader::parse(buf) {
            Ok(None) => {
                Self::release_idle(buf);
                Ok(None)
            }
            Ok(Some((header, used))) => {
                if let Err(err) = self.check_header(&header) {
                    return Err(self.fail(err));
                }
                buf.advance(used);
                self.start_frame(&header);
                Ok(Some(InFrame {
                    header,
                    done: 0,
                    utf8: Utf8Stream::default(),
                }))
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Moves what arrived of a fragment's payload into the assembly: unmasked, and for text
    /// checked as it comes (RFC 6455 §8.1), so invalid text fails when its bytes arrive. The
    /// message once its final fragment is complete.
    fn receive_fragment(
        &mut self,
        frame: &mut InFrame,
        len: usize,
        buf: &mut BytesMut,
    ) -> Result<Option<Message>, Error> {
        let take = (len - frame.done).min(buf.len());
        if take == 0 && frame.done < len {
            return Ok(None);
        }
        let piece = &mut buf[..take];
        if let Some(key) = frame.header.mask {
            apply_mask_offset(piece, key, frame.done);
        }
        frame.done += take;
        let last = frame.header.fin && frame.done == len;
        let assembly = self
            .assembly
            .as_mut()
            .ok_or(Error::UnexpectedContinuation)?;
        assembly
            .body
            .extend(piece, last, self.deflate.as_deref_mut())?;
        buf.advance(take);
        if frame.done < len {
            return Ok(None);
        }
        trace_frame(self.role, &frame.header, "frame received");
        if !last {
            return Ok(None);
        }
        let Some(done) = self.assembly.take() else {
            return Ok(None);
        };
        if let Body::Inflated(data, _) = &done.body {
            // `tether serve -v`: the size a compressed message inflated to.
            tracing::trace!(role = ?self.role, inflated = data.len(), "message inflated");
        }
        done.body.into_message().map(Some)
    }

    /// What a continuation frame counts against the message limit: its payload, and at least
    /// the fragment overhead ([`Config::set_fragment_overhead`]).
    fn counted_continuation(&self, header: &FrameHeader) -> u64 {
        header
            .payload_len
            .max(self.config.fragment_overhead() as u64)
    }

    /// Opens the assembly for a first fragment, counts a continuation against the message
    /// limit (check_header allowed it).
    fn start_frame(&mut self, header: &FrameHeader) {
        let counted = self.counted_continuation(header);
        match (header.opcode, &mut self.assembly) {
            (OpCode::Text | OpCode::Binary, None) if !header.fin || header.rsv1 => {
                self.assembly = Some(Assembly {
                    body: Body::new(header.opcode, header.rsv1),
                    size: header.payload_len,
                });
            }
            (OpCode::Continuation, Some(assembly)) => {
                assembly.size = assembly.size.saturating_add(counted);
            }
            _ => {}
        }
    }

    /// Queues a message or control frame into the write buffer.
    ///
    /// Text and binary messages go out as one frame, or as fragments of at most
    /// [`Config::set_send_fragment_size`] bytes when that is set. Control frames may be sent
    /// while a fragmented message is open ([`Protocol::send_fragment`]); they go between its
    /// fragments. `Message::Close` starts the closing handshake like [`Protocol::close`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once a close was sent or the connection failed;
    /// [`Error::MessageInProgress`] for a text or binary message while a fragmented one is open;
    /// [`Error::ControlPayloadTooLong`] for a ping, pong or close over 125 bytes;
    /// [`Error::UnsendableCloseCode`] for a close code that may not go on the wire.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        if self.close_sent || self.error.is_some() {
            return Err(Error::Closed);
        }
        match message {
            // RFC 6455 §5.4: "The fragments of one message MUST NOT be interleaved between the
            // fragments of another message".
            Message::Text(_) | Message::Binary(_) if self.sending.is_some() => {
                return Err(Error::MessageInProgress)
            }
            Message::Text(text) => self.write_message(OpCode::Text, text.as_bytes()),
            Message::Binary(data) => self.write_message(OpCode::Binary, &data),
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

    /// Queues one fragment of a data message (RFC 6455 §5.4), for a message whose size is not
    /// known in advance or to keep frames small.
    ///
    /// The first fragment carries the message's opcode ([`OpCode::Text`] or
    /// [`OpCode::Binary`]), every later one [`OpCode::Continuation`]; `fin` marks the last (a
    /// message of one fragment with `fin` is an ordinary message). Until the last fragment, no
    /// other data message may be sent, but pings, pongs (automatic ones included) and a close
    /// may go between the fragments. A close abandons the open message.
    ///
    /// Text fragments need not be valid UTF-8 on their own, only the whole message: each
    /// fragment is checked as it comes, and the one after which the text can no longer be valid
    /// (or a final fragment ending inside a code point) is refused. A client masks every
    /// fragment with its own key. With [`Config::set_send_fragment_size`] set, a longer
    /// fragment goes out as several. Fragments are never compressed, even with
    /// [`Protocol::set_deflate`].
    ///
    /// ```
    /// use tether_codec::{Config, Message, OpCode, Protocol};
    ///
    /// let mut server = Protocol::server(Config::default());
    /// let euro = "€".as_bytes();
    /// server.send_fragment(OpCode::Text, &euro[..1], false).unwrap(); // half a code point
    /// server.send(Message::Ping("still here".into())).unwrap(); // control frames may go between
    /// server.send_fragment(OpCode::Continuation, &euro[1..], true).unwrap();
    /// let wire = server.write_buffer().split();
    /// assert_eq!(&wire[..3], [0x01, 0x01, 0xe2]); // FIN clear, text
    /// assert_eq!(&wire[15..], [0x80, 0x02, 0x82, 0xac]); // FIN set, continuation
    ///
    /// let mut keys = 0u8;
    /// let mut client = Protocol::client(Config::default(), move || { keys += 1; [keys; 4] });
    /// client.receive_data(&wire);
    /// assert_eq!(client.poll_message().unwrap(), Some(Message::Ping("still here".into())));
    /// assert_eq!(client.poll_message().unwrap(), Some(Message::text("€")));
    /// ```
    ///
    /// # Errors
    ///
    /// Local usage errors, after which nothing was queued and the state is unchanged:
    /// [`Error::Closed`] once a close was sent or the connection failed;
    /// [`Error::MessageInProgress`] for a text or binary fragment while a message is open;
    /// [`Error::NoMessageInProgress`] for a continuation without one;
    /// [`Error::NotADataOpcode`] for a control or reserved opcode;
    /// [`Error::InvalidTextFragment`] for text that cannot become valid UTF-8.
    pub fn send_fragment(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.queue_fragment(opcode, payload, None, fin)
    }

    /// [`Protocol::send_fragment`] for a payload the caller holds as [`Bytes`]: a large
    /// unmasked one (16 KiB or more, as a server sends it) is queued by reference, not copied,
    /// and goes out through [`Protocol::write_chunks`] from the caller's own bytes. A relay
    /// that sends pieces of one shared message to many connections holds one copy of it.
    ///
    /// ```
    /// use std::io::IoSlice;
    /// use tether_codec::{Config, OpCode, Protocol};
    ///
    /// let mut server = Protocol::server(Config::default());
    /// let shared = bytes::Bytes::from(vec![7u8; 64 << 10]);
    /// server.send_fragment_bytes(OpCode::Binary, shared.slice(..32 << 10), false).unwrap();
    /// let mut slices = [IoSlice::new(&[]); 4];
    /// assert_eq!(server.write_chunks(&mut slices), 2); // the header, then the payload
    /// assert_eq!(slices[1].as_ptr(), shared.as_ptr()); // the caller's bytes, not a copy
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Protocol::send_fragment`].
    pub fn send_fragment_bytes(
        &mut self,
        opcode: OpCode,
        payload: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.queue_fragment(opcode, &payload, Some(&payload), fin)
    }

    /// The body of both `send_fragment`s; `shared`, when given, holds `payload`.
    fn queue_fragment(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        shared: Option<&Bytes>,
        fin: bool,
    ) -> Result<(), Error> {
        if self.close_sent || self.error.is_some() {
            return Err(Error::Closed);
        }
        // RFC 6455 §5.4: "a single frame with the FIN bit clear and an opcode other than 0,
        // followed by zero or more frames with the FIN bit clear and the opcode set to 0, and
        // terminated by a single frame with the FIN bit set and an opcode of 0".
        let mut sending = match (opcode, self.sending) {
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(Error::MessageInProgress),
            (OpCode::Text, None) => Sending::Text(Utf8Stream::default()),
            (OpCode::Binary, None) => Sending::Binary,
            (OpCode::Continuation, Some(sending)) => sending,
            (OpCode::Continuation, None) => return Err(Error::NoMessageInProgress),
            (other, _) => return Err(Error::NotADataOpcode(other)),
        };
        if let Sending::Text(utf8) = &mut sending {
            utf8.feed(payload, fin)?;
        }
        // Never compressed: RFC 7692 §6 compresses whole messages, and the size of one sent in
        // pieces is not known when its first frame (which carries RSV1) goes out.
        self.write_data(opcode, payload, shared, fin, false);
        self.sending = (!fin).then_some(sending);
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
    ///
    /// The answer to the latest Ping is kept aside until the buffer is empty (or another frame
    /// is queued, which it then precedes): a call on an empty buffer puts it in. So a driver
    /// that writes until this is empty sends every Pong it owes, and a peer that pings without
    /// reading makes the buffer hold at most one Pong (RFC 6455 §5.5.3) for as long as the
    /// driver calls this only to write. In general a Pong joins the buffer only when the buffer
    /// is empty or just ahead of a frame the application queues, so Pings alone never grow it
    /// by more than one Pong, whatever the driver does.
    #[inline]
    pub fn write_buffer(&mut self) -> &mut BytesMut {
        if self.out.is_empty() {
            self.queue_pong();
        }
        self.out.contiguous()
    }

    /// The bytes waiting to be written, as pieces for a vectored write (`write_vectored`):
    /// fills `dst` with up to `dst.len()` of them, in order, and returns how many it filled.
    /// Consume what was written with [`Protocol::advance_written`].
    ///
    /// Unlike [`Protocol::write_buffer`], which copies every queued byte into one buffer, this
    /// hands out a large unmasked payload (16 KiB or more, as a server sends it) as the
    /// application's own [`Bytes`] behind its frame header: an echo writes the bytes it read,
    /// untouched. The pending Pong joins as for `write_buffer`.
    ///
    /// ```
    /// use std::io::{IoSlice, Write};
    /// use tether_codec::{Config, Message, Protocol};
    ///
    /// let mut server = Protocol::server(Config::default());
    /// server.send(Message::binary(vec![7u8; 100_000])).unwrap();
    /// let mut socket = Vec::new();
    /// while server.write_buffer_len() > 0 {
    ///     let mut slices = [IoSlice::new(&[]); 8];
    ///     let filled = server.write_chunks(&mut slices);
    ///     assert_eq!(filled, 2); // the header, then the payload itself
    ///     let written = socket.write_vectored(&slices[..filled]).unwrap();
    ///     server.advance_written(written);
    /// }
    /// assert_eq!(socket.len(), 10 + 100_000); // a 64-bit length: 10 header bytes
    /// ```
    #[inline]
    pub fn write_chunks<'a>(&'a mut self, dst: &mut [IoSlice<'a>]) -> usize {
        if self.out.is_empty() {
            self.queue_pong();
        }
        self.out.chunks(dst)
    }

    /// Drops the first `n` bytes of those [`Protocol::write_chunks`] handed out, which the
    /// driver wrote.
    ///
    /// # Panics
    ///
    /// When `n` is more than [`Protocol::write_buffer_len`].
    #[inline]
    pub fn advance_written(&mut self, n: usize) {
        assert!(n <= self.out.len(), "advanced past the bytes owed");
        self.out.advance(n);
    }

    /// How many bytes wait to be written, the pending Pong included: the backpressure signal
    /// for the driver.
    #[inline]
    pub fn write_buffer_len(&self) -> usize {
        let pong = self.pong.get().map_or(0, |payload| {
            let mask = if self.mask_source.is_some() { 4 } else { 0 };
            2 + mask + payload.len()
        });
        self.out.len() + pong
    }

    /// Releases the capacity of empty buffers; call when the connection goes idle.
    pub fn shrink_buffers(&mut self) {
        self.release_buffers(drop);
    }

    /// [`Protocol::shrink_buffers`] that hands each released buffer (empty, with its
    /// capacity) to `keep`, for a driver that reuses buffers across connections instead of
    /// allocating them again; [`Protocol::provide_buffers`] puts them back.
    ///
    /// ```
    /// use tether_codec::{Config, Message, Protocol};
    ///
    /// let mut server = Protocol::server(Config::default());
    /// server.send(Message::text("hello")).unwrap();
    /// server.write_buffer().clear(); // written
    /// let mut kept = Vec::new();
    /// server.release_buffers(|buf| kept.push(buf));
    /// assert!(kept.iter().all(|buf| buf.is_empty() && buf.capacity() > 0));
    /// server.provide_buffers(|| kept.pop());
    /// assert!(kept.is_empty());
    /// ```
    pub fn release_buffers(&mut self, mut keep: impl FnMut(BytesMut)) {
        let mut hand_over = |mut buf: BytesMut| {
            // Bytes read or written move an empty buffer's start forward; when nothing else
            // holds its allocation (a message split off it), it starts over at no cost.
            // Otherwise it keeps what room it has left.
            let _whole_again = buf.try_reclaim(1);
            if buf.capacity() > 0 {
                keep(buf);
            }
        };
        if self.read_buf.is_empty() && self.pending.is_none() {
            hand_over(std::mem::take(&mut self.read_buf));
        }
        if self.out.is_empty() {
            hand_over(self.out.release());
        }
    }

    /// Gives each buffer without capacity (released, or never used) one from `supply`, if it
    /// has one: the other half of [`Protocol::release_buffers`]. A supplied buffer must be
    /// empty; one that is not is dropped.
    #[inline]
    pub fn provide_buffers(&mut self, supply: impl FnMut() -> Option<BytesMut>) {
        // Both in place (a busy connection): decided inline, without a call.
        if self.read_buf.capacity() == 0 || (self.out.buf.capacity() == 0 && self.out.is_empty()) {
            self.fill_buffers(supply);
        }
    }

    /// [`Protocol::provide_buffers`] once a buffer lacks capacity.
    fn fill_buffers(&mut self, mut supply: impl FnMut() -> Option<BytesMut>) {
        let mut fill = |buf: &mut BytesMut| {
            if buf.capacity() == 0 {
                if let Some(supplied) = supply().filter(BytesMut::is_empty) {
                    *buf = supplied;
                }
            }
        };
        fill(&mut self.read_buf);
        if self.out.is_empty() {
            fill(&mut self.out.buf);
        }
    }

    /// The checks that need the header and the protocol state, before any payload is read.
    fn check_header(&self, header: &FrameHeader) -> Result<(), Error> {
        if header.rsv1 {
            // RFC 7692 §6: "An endpoint MUST NOT set the "Per-Message Compressed" bit of
            // control frames and non-first fragments of a data message." and RFC 6455 §5.2:
            // without a negotiated extension defining it, a set RSV bit fails the connection.
            let first_data_frame = matches!(header.opcode, OpCode::Text | OpCode::Binary);
            if self.deflate.is_none() || !first_data_frame {
                return Err(Error::ReservedBits { rsv: header.rsv() });
            }
            // RSV1 is this extension's; the frame's other checks still apply.
            let header = FrameHeader {
                rsv1: false,
                ..*header
            };
            header.validate(self.role, &self.config)?;
        } else {
            header.validate(self.role, &self.config)?;
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
                    .saturating_add(self.counted_continuation(header));
                if size > limit as u64 {
                    Err(Error::MessageTooLarge { size, limit })
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// `text` is the proof that a single-frame text payload is valid UTF-8.
    fn handle_frame(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
        text: Option<Validated>,
    ) -> Result<Option<Message>, Error> {
        match header.opcode {
            // A single-frame message: zero copy, the payload split off the read buffer.
            OpCode::Binary if header.fin => Ok(Some(Message::Binary(payload.freeze()))),
            OpCode::Text if header.fin => Ok(Some(Message::Text(match text {
                Some(validated) => Utf8Bytes::from_validated(payload.freeze(), validated),
                // Not checked on the way in: checked here.
                None => Utf8Bytes::try_from(payload.freeze())?,
            }))),
            // Fragments are moved into the assembly as they arrive (`receive_fragment`).
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                Err(Error::UnexpectedContinuation)
            }
            OpCode::Ping => {
                // RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                // frame in response ... [with] identical Application data".
                // RFC 6455 §5.5.3: "If an endpoint receives a Ping frame and has not yet sent
                // Pong frame(s) in response to previous Ping frame(s), the endpoint MAY elect
                // to send a Pong frame for only the most recently processed Ping frame."
                // So a peer that pings without reading costs one pending Pong, not one per Ping:
                // it waits in `pong` until the write buffer drains or another frame is queued.
                if !self.close_sent {
                    self.pong.replace(&payload);
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

    /// Writes a whole data message, compressed when deflate is agreed and the message reaches
    /// the threshold.
    #[inline(always)]
    fn write_message(&mut self, opcode: OpCode, payload: &Bytes) {
        if self.deflate.is_none() && self.pong.len.is_none() {
            // The common case, one frame: no compression, no Pong owed ahead of it.
            if self
                .config
                .send_fragment_size()
                .is_none_or(|size| payload.len() <= size.get())
            {
                return self.write_frame(opcode, payload, Some(payload), true, false);
            }
        }
        match self
            .deflate
            .as_mut()
            .and_then(|deflate| deflate.compress(payload))
        {
            // RFC 7692 §6: the "Per-Message Compressed" bit is set on the first frame of the
            // compressed message only.
            Some(compressed) => {
                tracing::trace!(
                    role = ?self.role,
                    len = payload.len(),
                    compressed = compressed.len(),
                    "message compressed"
                );
                let compressed = compressed.freeze();
                self.write_data(opcode, &compressed, Some(&compressed), true, true);
            }
            None => self.write_data(opcode, payload, Some(payload), true, false),
        }
    }

    /// Writes a data frame after the Pong still owed, cut into fragments of the configured send
    /// size if it is larger; the last piece carries `fin`, the first `rsv1`.
    /// `shared`, when given, holds `payload`: a large one then goes out without a copy.
    fn write_data(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        shared: Option<&Bytes>,
        fin: bool,
        rsv1: bool,
    ) {
        self.queue_pong();
        match self.config.send_fragment_size() {
            Some(size) if payload.len() > size.get() => {
                let mut pieces = payload.chunks(size.get()).peekable();
                let (mut opcode, mut rsv1) = (opcode, rsv1);
                while let Some(piece) = pieces.next() {
                    let last = pieces.peek().is_none();
                    self.write_frame(opcode, piece, shared, fin && last, rsv1);
                    (opcode, rsv1) = (OpCode::Continuation, false);
                }
            }
            _ => self.write_frame(opcode, payload, shared, fin, rsv1),
        }
    }

    /// Queues a control frame, after the Pong still owed.
    fn write(&mut self, opcode: OpCode, payload: &[u8]) {
        self.queue_pong();
        self.write_frame(opcode, payload, None, true, false);
    }

    /// Moves the pending Pong, if any, into the write buffer. Called before anything else is
    /// queued: a Pong answers a Ping received before anything queued now, and nothing may
    /// follow a close.
    #[inline]
    fn queue_pong(&mut self) {
        // Checked first: taking the 126-byte slot costs more than the check, and almost every
        // frame queued finds no Pong owed.
        if self.pong.len.is_none() {
            return;
        }
        let pong = std::mem::replace(&mut self.pong, PendingPong::NONE);
        if let Some(payload) = pong.get() {
            self.write_frame(OpCode::Pong, payload, None, true, false);
        }
    }

    /// Queues one frame. An unmasked payload of [`ZERO_COPY_MIN`] bytes or more that `shared`
    /// holds is queued by reference after its header, not copied.
    #[inline(always)]
    fn write_frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        shared: Option<&Bytes>,
        fin: bool,
        rsv1: bool,
    ) {
        let mask = self.mask_source.as_mut().map(|next| next());
        let header = FrameHeader {
            fin,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        trace_frame(self.role, &header, "frame queued");
        match shared {
            Some(shared) if header.mask.is_none() && payload.len() >= ZERO_COPY_MIN => {
                header.write(&mut self.out.buf);
                // `payload` is `shared` or a piece of it (write_data cuts fragments from it).
                self.out.push_shared(shared.slice_ref(payload));
            }
            _ => write_frame(&mut self.out.buf, header, payload),
        }
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

/// The shortcut for the frame most often next ([`whole_data_frame`]): a whole single-frame
/// text or binary message of at most `limit` bytes, taken from `buf` without the general
/// path's steps; the caller checked that it arrives between messages. What it leaves
/// (anything else, every failing frame but invalid UTF-8 included) the general path takes and
/// checks; for what it takes, the outcome is the same.
#[inline(always)]
fn take_whole_message(
    buf: &mut BytesMut,
    role: Role,
    limit: usize,
) -> Option<Result<Message, InvalidUtf8>> {
    // RFC 6455 §5.1: a client masks every frame, a server none.
    let (header, used) = whole_data_frame(buf, role == Role::Server)?;
    let len = header.payload_len as usize;
    if len > limit {
        return None;
    }
    trace_frame(role, &header, "frame received");
    let payload = &mut buf[used..used + len];
    if let Some(key) = header.mask {
        apply_mask_offset(payload, key, 0);
    }
    let validated = match header.opcode {
        OpCode::Text => match Utf8Stream::default().finish(payload) {
            Ok(validated) => Some(validated),
            Err(InvalidUtf8) => return Some(Err(InvalidUtf8)),
        },
        _ => None,
    };
    // The frame leaves the buffer whole; its header is then skipped in the shared handle,
    // which costs no call (a `BytesMut` advance does).
    let mut payload = buf.split_to(used + len).freeze();
    payload.advance(used);
    Some(Ok(match validated {
        Some(validated) => Message::Text(Utf8Bytes::from_validated(payload, validated)),
        None => Message::Binary(payload),
    }))
}

/// A frame whose payload goes into an [`Assembly`] as it arrives: a fragment of a data message
/// or any frame of a compressed one, as opposed to an uncompressed whole message or a control
/// frame.
fn is_fragment(header: &FrameHeader) -> bool {
    match header.opcode {
        OpCode::Continuation => true,
        OpCode::Text | OpCode::Binary => !header.fin || header.rsv1,
        _ => false,
    }
}

/// Unmasks in place and checks what arrived of a single-frame text message, so a frame whose
/// early bytes are not UTF-8 fails when they arrive, not when the frame completes (RFC 6455
/// §8.1; Autobahn 6.4.3, 6.4.4). `buf` holds only this frame's payload so far.
///
/// The payload stays in the read buffer, to become the message without a copy. The text is
/// then checked once more as a whole when it becomes a `str`: building a string over shared
/// bytes without that check needs `unsafe`, which this crate forbids. A frame that arrives in
/// one read is checked only that once.
fn check_text_prefix(frame: &mut InFrame, buf: &mut BytesMut) -> Result<(), Error> {
    if frame.header.opcode != OpCode::Text || buf.len() <= frame.done {
        return Ok(());
    }
    let arrived = &mut buf[frame.done..];
    if let Some(key) = frame.header.mask {
        apply_mask_offset(arrived, key, frame.done);
    }
    frame
        .utf8
        .feed_with(arrived, false, |_| {})
        .map_err(|InvalidUtf8| Error::InvalidUtf8)?;
    frame.done = buf.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::frame::Frame;
    use crate::mask::apply_mask;

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    /// Bytes a client would send for `frame` (masked with `KEY`).
    fn from_client(frame: Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.with_mask(Some(KEY)).encode(&mut out);
        out
    }

    /// Bytes a server would send for `frame`.
    fn unmasked(frame: Frame) -> BytesMut {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
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
    fn rfc6455_5_5_3_only_the_latest_ping_is_answered_while_the_buffer_is_full() {
        let mut server = server_with(&Config::default());
        server.send(Message::binary(vec![1u8; 1000])).unwrap();
        let data = server.write_buffer_len();
        // A peer that pings without reading: the buffer is never drained meanwhile.
        for i in 0..10_000u32 {
            let mut payload = vec![b'p'; 121];
            payload.extend_from_slice(&i.to_be_bytes());
            server.receive_data(&from_client(Frame::new(OpCode::Ping, payload)));
            assert!(server.poll_message().unwrap().is_some());
            assert_eq!(server.write_buffer_len(), data + 2 + 125, "one pong owed");
        }
        assert_eq!(
            server.write_buffer().len(),
            data,
            "not queued behind the data"
        );
        let wire = server.write_buffer().split();
        assert_eq!(wire.len(), data);
        // Drained: the pong for the latest ping goes in, alone.
        let pong = server.write_buffer().split();
        let frames = frames_in(&pong);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.opcode, OpCode::Pong);
        assert_eq!(&frames[0].1[121..], 9_999u32.to_be_bytes());
        assert_eq!(server.write_buffer_len(), 0);
        assert!(server.write_buffer().is_empty(), "answered once");
    }

    #[test]
    fn rfc6455_5_5_3_pending_pong_goes_before_the_next_frame() {
        let mut server = server_with(&Config::default());
        server.send(Message::text("first")).unwrap();
        server.receive_data(&from_client(Frame::new(OpCode::Ping, "a")));
        server.receive_data(&from_client(Frame::new(OpCode::Ping, "b")));
        while server.poll_message().unwrap().is_some() {}
        server.send(Message::text("second")).unwrap();
        server.close(CloseCode::NORMAL, "").unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [
                (OpCode::Text, true, b"first".to_vec()),
                (OpCode::Pong, true, b"b".to_vec()),
                (OpCode::Text, true, b"second".to_vec()),
                (OpCode::Close, true, b"\x03\xe8".to_vec()),
            ]
        );
    }

    #[test]
    fn rfc6455_5_5_3_pending_pong_precedes_close_and_nothing_follows_it() {
        let mut client = Protocol::client(Config::default(), || KEY);
        client.send(Message::binary(vec![0u8; 10])).unwrap();
        client.receive_data(&unmasked(Frame::new(OpCode::Ping, "x")));
        assert!(client.poll_message().unwrap().is_some());
        assert_eq!(
            client.write_buffer_len(),
            16 + 2 + 4 + 1,
            "masked pong counted"
        );
        client.close(CloseCode::NORMAL, "").unwrap();
        client.receive_data(&unmasked(Frame::new(OpCode::Ping, "y")));
        assert!(client.poll_message().unwrap().is_some());
        let shape = sent_shape(&mut client);
        assert_eq!(shape[1], (OpCode::Pong, true, b"x".to_vec()));
        assert_eq!(shape[2].0, OpCode::Close);
        assert_eq!(shape.len(), 3);
        assert!(client.write_buffer().is_empty(), "no pong after the close");
    }

    /// Autobahn 6.4.3: one text frame in three chops, invalid UTF-8 in the middle one. The
    /// failure (1007) comes with the middle chop, while the last has not arrived.
    #[test]
    fn rfc6455_8_1_invalid_text_fails_in_the_chop_where_it_arrives() {
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80");
        payload.extend_from_slice(b"edited");
        for fin in [true, false] {
            // A single-frame message, and the first fragment of one.
            let wire = from_client(Frame::new(OpCode::Text, payload.clone()).with_fin(fin));
            let (first, rest) = wire.split_at(2 + 4 + 12);
            let (middle, last) = rest.split_at(rest.len() - 6);
            let mut server = server_with(&Config::default());
            server.receive_data(first);
            assert_eq!(server.poll_message().unwrap(), None);
            server.receive_data(middle);
            assert!(matches!(server.poll_message(), Err(Error::InvalidUtf8)));
            assert_eq!(server.state(), State::Closed);
            let out = server.write_buffer().split();
            assert_eq!(&out[2..4], 1007u16.to_be_bytes(), "fin {fin}");
            assert!(!last.is_empty(), "the rest of the frame never arrived");
        }
    }

    /// A valid text frame that arrives in chops is checked as it comes and still handed out
    /// without a copy: the message's bytes are the read buffer's.
    #[test]
    fn text_frame_in_chops_stays_zero_copy() {
        let text = "héllo wörld ".repeat(100);
        let wire = from_client(Frame::new(OpCode::Text, text.clone()));
        let mut server = server_with(&Config::default());
        server.read_buffer().reserve(wire.len());
        let start = server.read_buffer().as_ptr() as usize;
        for chop in wire.chunks(7) {
            assert_eq!(server.poll_message().unwrap(), None);
            server.receive_data(chop);
        }
        let Some(Message::Text(received)) = server.poll_message().unwrap() else {
            panic!("expected the text");
        };
        assert_eq!(received, text.as_str());
        let at = received.as_str().as_ptr() as usize;
        assert!((start..start + wire.len()).contains(&at), "not copied");
    }

    /// A fragmented text message is checked once, as its fragments arrive, and assembled
    /// from the checked pieces.
    #[test]
    fn rfc6455_8_1_fragmented_text_cut_inside_code_points_arrives_whole() {
        let text = "aé€😀z";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let mut wire =
                from_client(Frame::new(OpCode::Text, bytes[..cut].to_vec()).with_fin(false));
            wire.unsplit(from_client(Frame::new(
                OpCode::Continuation,
                bytes[cut..].to_vec(),
            )));
            let mut server = server_with(&Config::default());
            for chop in wire.chunks(3) {
                server.receive_data(chop);
                if let Some(message) = server.poll_message().unwrap() {
                    assert_eq!(message, Message::text(text));
                }
            }
        }
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
    fn max_message_size_counts_small_continuations_as_the_fragment_overhead_at_and_past_the_limit()
    {
        let mut config = Config::default();
        config.set_max_message_size(1000).set_fragment_overhead(10);
        // 490 + 480 + 3 one-byte continuations counted 10 each = 1000, accepted; one byte
        // more in the first fragment is past it.
        let fragments = |first: usize| {
            let mut wire =
                from_client(Frame::new(OpCode::Binary, vec![1u8; first]).with_fin(false));
            wire.unsplit(from_client(
                Frame::new(OpCode::Continuation, vec![1u8; 480]).with_fin(false),
            ));
            for fin in [false, false, true] {
                wire.unsplit(from_client(
                    Frame::new(OpCode::Continuation, vec![1u8; 1]).with_fin(fin),
                ));
            }
            wire
        };
        let mut server = server_with(&config);
        server.receive_data(&fragments(490));
        assert_eq!(
            server.poll_message().unwrap(),
            Some(Message::binary(vec![1u8; 973]))
        );
        let (err, code) = server_failure(&config, &fragments(491));
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
    fn a_message_of_exactly_the_limit_passes_in_fragments_no_smaller_than_the_overhead() {
        // A relay (the fan-out) cuts a message it accepted whole into fragments: with the
        // defaults, 16 MiB in 64 KiB fragments must still fit a 16 MiB limit.
        let mut config = Config::default();
        config.set_max_message_size(1000).set_fragment_overhead(10);
        let mut wire = BytesMut::new();
        for i in 0..100 {
            let opcode = if i == 0 {
                OpCode::Binary
            } else {
                OpCode::Continuation
            };
            wire.unsplit(from_client(
                Frame::new(opcode, vec![7u8; 10]).with_fin(i == 99),
            ));
        }
        let mut server = server_with(&config);
        server.receive_data(&wire);
        assert_eq!(
            server.poll_message().unwrap(),
            Some(Message::binary(vec![7u8; 1000]))
        );
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

    /// The pieces a server's large message goes out as: the header, copied, then the
    /// application's own bytes (same address), counted against the write buffer limit.
    #[test]
    fn large_unmasked_payload_is_written_from_the_senders_bytes() {
        let mut server = server_with(&Config::default());
        let payload = Bytes::from(vec![5u8; ZERO_COPY_MIN]);
        server.send(Message::Binary(payload.clone())).unwrap();
        assert_eq!(server.write_buffer_len(), 4 + ZERO_COPY_MIN);
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(server.write_chunks(&mut slices), 2);
        assert_eq!(&slices[0][..], [0x82, 126, 0x40, 0x00]);
        assert_eq!(slices[1].as_ptr(), payload.as_ptr(), "not copied");
        server.advance_written(4 + 10);
        assert_eq!(server.write_buffer_len(), ZERO_COPY_MIN - 10);
        assert_eq!(
            server.write_buffer()[..],
            payload[10..],
            "contiguous on demand"
        );
    }

    /// A fragment handed over as `Bytes` goes out from those bytes, as a whole message does;
    /// one given as a slice is copied.
    #[test]
    fn large_fragment_bytes_are_written_from_the_senders_bytes() {
        let mut server = server_with(&Config::default());
        let message = Bytes::from(vec![5u8; 2 * ZERO_COPY_MIN]);
        let (first, last) = (
            message.slice(..ZERO_COPY_MIN),
            message.slice(ZERO_COPY_MIN..),
        );
        server
            .send_fragment_bytes(OpCode::Binary, first, false)
            .unwrap();
        server
            .send_fragment(OpCode::Continuation, &last, true)
            .unwrap();
        assert_eq!(server.write_buffer_len(), 2 * (4 + ZERO_COPY_MIN));
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(
            server.write_chunks(&mut slices),
            3,
            "header, shared, header + copy"
        );
        assert_eq!(&slices[0][..], [0x02, 126, 0x40, 0x00]);
        assert_eq!(slices[1].as_ptr(), message.as_ptr(), "not copied");
        assert_eq!(slices[1].len(), ZERO_COPY_MIN);
        assert_eq!(&slices[2][..4], [0x80, 126, 0x40, 0x00]);
        assert_eq!(slices[2].len(), 4 + ZERO_COPY_MIN, "the slice was copied");
    }

    /// One byte under the threshold, and any client frame (masked), is copied as before.
    #[test]
    fn small_or_masked_payloads_are_copied() {
        let small = Bytes::from(vec![5u8; ZERO_COPY_MIN - 1]);
        let large = Bytes::from(vec![5u8; ZERO_COPY_MIN]);
        let mut server = server_with(&Config::default());
        let mut client = Protocol::client(Config::default(), || [1, 2, 3, 4]);
        server.send(Message::Binary(small)).unwrap();
        client.send(Message::Binary(large)).unwrap();
        for side in [&mut server, &mut client] {
            let mut slices = [IoSlice::new(&[]); 4];
            assert_eq!(side.write_chunks(&mut slices), 1, "one copied buffer");
        }
    }

    /// A write buffer written to its end has no room left where it stands; released, it
    /// goes back to the start of its allocation instead of being lost to reuse.
    #[test]
    fn a_written_buffer_is_released_with_its_whole_capacity() {
        let mut server = server_with(&Config::default());
        server.send(Message::binary(vec![1u8; 100])).unwrap();
        let capacity = server.write_buffer().capacity();
        server.advance_written(server.write_buffer_len());
        let mut kept = Vec::new();
        server.release_buffers(|buf| kept.push(buf));
        assert_eq!(kept.len(), 1, "the write buffer is handed over");
        assert!(kept[0].is_empty() && kept[0].capacity() >= capacity);
        server.provide_buffers(|| kept.pop());
        assert!(
            kept.is_empty(),
            "taken back (by the read buffer, the first without room)"
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

    /// Every frame header in `wire` with its payload (unmasked), in order.
    fn frames_in(mut wire: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Some((header, used)) = FrameHeader::parse(wire).unwrap() {
            let len = header.payload_len as usize;
            let mut payload = wire[used..used + len].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key);
            }
            frames.push((header, payload));
            wire = &wire[used + len..];
        }
        assert!(wire.is_empty(), "trailing bytes");
        frames
    }

    /// Takes what `protocol` queued: opcode, FIN and unmasked payload of each frame.
    fn sent_shape(protocol: &mut Protocol) -> Vec<(OpCode, bool, Vec<u8>)> {
        let wire = protocol.write_buffer().split();
        frames_in(&wire)
            .into_iter()
            .map(|(h, p)| (h.opcode, h.fin, p))
            .collect()
    }

    #[test]
    fn rfc6455_5_4_fragments_go_out_in_order_with_fin_on_the_last() {
        let mut server = server_with(&Config::default());
        server.send_fragment(OpCode::Binary, b"ab", false).unwrap();
        server
            .send_fragment(OpCode::Continuation, b"", false)
            .unwrap();
        server
            .send_fragment(OpCode::Continuation, b"c", true)
            .unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [
                (OpCode::Binary, false, b"ab".to_vec()),
                (OpCode::Continuation, false, vec![]),
                (OpCode::Continuation, true, b"c".to_vec()),
            ]
        );
        // The message is over: a new one may start.
        server.send(Message::text("next")).unwrap();
    }

    #[test]
    fn rfc6455_5_4_no_new_data_message_while_one_is_open() {
        let mut server = server_with(&Config::default());
        assert!(matches!(
            server.send_fragment(OpCode::Continuation, b"x", true),
            Err(Error::NoMessageInProgress)
        ));
        assert!(matches!(
            server.send_fragment(OpCode::Ping, b"x", true),
            Err(Error::NotADataOpcode(OpCode::Ping))
        ));
        server.send_fragment(OpCode::Text, b"a", false).unwrap();
        let queued = server.write_buffer_len();
        assert!(matches!(
            server.send(Message::binary(vec![1])),
            Err(Error::MessageInProgress)
        ));
        assert!(matches!(
            server.send_fragment(OpCode::Text, b"b", true),
            Err(Error::MessageInProgress)
        ));
        assert_eq!(server.write_buffer_len(), queued, "refusals queue nothing");
        // Local misuse is not a protocol failure: no close code, the connection stays open.
        assert_eq!(Error::MessageInProgress.close_code(), None);
        assert_eq!(server.state(), State::Open);
        server.send(Message::Pong(Bytes::new())).unwrap();
        server
            .send_fragment(OpCode::Continuation, b"b", true)
            .unwrap();
    }

    #[test]
    fn rfc6455_5_3_client_masks_each_fragment_with_a_fresh_key() {
        let mut next = 0u8;
        let mut client = Protocol::client(Config::default(), move || {
            next += 1;
            [next; 4]
        });
        client
            .send_fragment(OpCode::Binary, &[0, 0], false)
            .unwrap();
        client
            .send_fragment(OpCode::Continuation, &[0], true)
            .unwrap();
        let frames = frames_in(&client.write_buffer().split());
        let keys: Vec<_> = frames.iter().map(|(h, _)| h.mask).collect();
        assert_eq!(keys, [Some([1; 4]), Some([2; 4])]);
    }

    #[test]
    fn rfc6455_5_5_auto_pong_goes_between_fragments() {
        let mut server = server_with(&Config::default());
        server.send_fragment(OpCode::Text, b"he", false).unwrap();
        server.receive_data(&from_client(Frame::new(OpCode::Ping, "p")));
        assert!(matches!(
            server.poll_message().unwrap(),
            Some(Message::Ping(_))
        ));
        server
            .send_fragment(OpCode::Continuation, b"llo", true)
            .unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [
                (OpCode::Text, false, b"he".to_vec()),
                (OpCode::Pong, true, b"p".to_vec()),
                (OpCode::Continuation, true, b"llo".to_vec()),
            ]
        );
    }

    #[test]
    fn rfc6455_8_1_invalid_text_fragment_is_refused_and_the_message_stays_open() {
        let mut server = server_with(&Config::default());
        let euro = "€".as_bytes();
        server
            .send_fragment(OpCode::Text, &euro[..1], false)
            .unwrap();
        let queued = server.write_buffer_len();
        assert!(matches!(
            server.send_fragment(OpCode::Continuation, b"x", false),
            Err(Error::InvalidTextFragment)
        ));
        assert!(matches!(
            server.send_fragment(OpCode::Continuation, &euro[1..2], true),
            Err(Error::InvalidTextFragment)
        ));
        assert_eq!(server.write_buffer_len(), queued);
        assert_eq!(Error::InvalidTextFragment.close_code(), None);
        server
            .send_fragment(OpCode::Continuation, &euro[1..], true)
            .unwrap();
        let mut client = Protocol::client(Config::default(), || KEY);
        client.receive_data(&server.write_buffer().split());
        assert_eq!(client.poll_message().unwrap(), Some(Message::text("€")));
    }

    #[test]
    fn rfc6455_7_close_ends_an_open_fragmented_message() {
        let mut server = server_with(&Config::default());
        server.send_fragment(OpCode::Binary, b"a", false).unwrap();
        server.close(CloseCode::NORMAL, "").unwrap();
        assert!(matches!(
            server.send_fragment(OpCode::Continuation, b"b", true),
            Err(Error::Closed)
        ));
    }

    #[test]
    fn send_fragment_size_at_and_past_the_limit() {
        let mut config = Config::default();
        config.set_send_fragment_size(std::num::NonZeroUsize::new(4));
        let mut server = server_with(&config);
        server.send(Message::binary(vec![9u8; 4])).unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [(OpCode::Binary, true, vec![9u8; 4])]
        );
        server.send(Message::text("abcde")).unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [
                (OpCode::Text, false, b"abcd".to_vec()),
                (OpCode::Continuation, true, b"e".to_vec())
            ]
        );
        // A long explicit fragment is cut too, and only the message's last piece has FIN.
        server
            .send_fragment(OpCode::Binary, &[1u8; 9], false)
            .unwrap();
        server
            .send_fragment(OpCode::Continuation, &[], true)
            .unwrap();
        assert_eq!(
            sent_shape(&mut server),
            [
                (OpCode::Binary, false, vec![1u8; 4]),
                (OpCode::Continuation, false, vec![1u8; 4]),
                (OpCode::Continuation, false, vec![1u8]),
                (OpCode::Continuation, true, vec![]),
            ]
        );
    }
}
