//! Messages in, frames out: whole messages, fragments, control frames and the pending Pong,
//! queued into the write buffer (RFC 6455 §5.3-§5.5).

use bytes::Bytes;

use super::{trace_frame, PendingPong, Protocol, Sending};
use crate::close::{CloseCode, CloseFrame, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD};
use crate::error::Error;
use crate::frame::{write_frame, FrameHeader};
use crate::message::Message;
use crate::opcode::OpCode;
use crate::outbox::ZERO_COPY_MIN;
use crate::utf8::Utf8Stream;

impl Protocol {
    /// Queues a message or control frame into the write buffer.
    ///
    /// Text and binary messages go out as one frame, or as fragments of at most
    /// [`Config::set_send_fragment_size`](crate::Config::set_send_fragment_size) bytes when that is set. Control frames may be sent
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
    /// fragment with its own key. With [`Config::set_send_fragment_size`](crate::Config::set_send_fragment_size) set, a longer
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
    pub(super) fn queue_fragment(
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
    /// The state becomes [`State::Closing`](crate::State::Closing); it becomes [`State::Closed`](crate::State::Closed) when the peer's close
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

    pub(super) fn write_close(&mut self, code: CloseCode, reason: &[u8]) {
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
    pub(super) fn write_message(&mut self, opcode: OpCode, payload: &Bytes) {
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
    pub(super) fn write_data(
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
    pub(super) fn write(&mut self, opcode: OpCode, payload: &[u8]) {
        self.queue_pong();
        self.write_frame(opcode, payload, None, true, false);
    }

    /// Moves the pending Pong, if any, into the write buffer. Called before anything else is
    /// queued: a Pong answers a Ping received before anything queued now, and nothing may
    /// follow a close.
    #[inline]
    pub(super) fn queue_pong(&mut self) {
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
    pub(super) fn write_frame(
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
}
