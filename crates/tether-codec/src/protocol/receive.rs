//! Bytes in, messages out: the read buffer, the whole-message shortcut and the general
//! decoder with its checks (RFC 6455 §5, §5.4, §8.1).

use bytes::{Buf, BytesMut};

use super::assembly::{Assembly, Body};
use super::{trace_frame, InFrame, Protocol, IDLE_BUFFER_CAPACITY};
use crate::close::CloseFrame;
use crate::error::Error;
use crate::frame::{whole_data_frame, FrameHeader};
use crate::mask::apply_mask_offset;
use crate::message::Message;
use crate::opcode::OpCode;
use crate::utf8::{InvalidUtf8, Utf8Bytes, Utf8Stream, Validated};
use crate::Role;

impl Protocol {
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
        let result = self.poll_frames_in(&mut buf);
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
        let taken = take_whole_message(&mut self.read_buf, self.role, limit);
        // A failure is recorded; `poll_message` reports it.
        self.settle(taken)?.ok()
    }

    /// [`Protocol::poll_message`] over an external read buffer; the tokio codec uses the
    /// buffer `Framed` reads into.
    pub(crate) fn poll_message_in(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        if self.between_messages() {
            let limit = self.whole_limit();
            let taken = take_whole_message(buf, self.role, limit);
            if let Some(taken) = self.settle(taken) {
                return taken.map(Some);
            }
        }
        self.poll_frames_in(buf)
    }

    /// The general decoder, frame by frame, behind the whole-message shortcut (which its
    /// callers tried already).
    fn poll_frames_in(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, Error> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if buf.is_empty() {
            // Nothing to decode: a frame left pending waits for more of its payload.
            Self::release_idle(buf);
            return Ok(None);
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
    pub(super) fn between_messages(&self) -> bool {
        self.error.is_none()
            && self.pending.is_none()
            && self.assembly.is_none()
            && !self.close_received
    }

    /// The largest payload a single-frame message may have.
    #[inline]
    pub(super) fn whole_limit(&self) -> usize {
        self.config
            .max_frame_payload()
            .min(self.config.max_message_size())
    }

    /// What [`take_whole_message`] took, as a message or this connection's failure.
    #[inline]
    pub(super) fn settle(
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
    pub(super) fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<InFrame>, Error> {
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
    pub(super) fn receive_fragment(
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
    pub(super) fn counted_continuation(&self, header: &FrameHeader) -> u64 {
        header
            .payload_len
            .max(self.config.fragment_overhead() as u64)
    }

    /// Opens the assembly for a first fragment, counts a continuation against the message
    /// limit (check_header allowed it).
    pub(super) fn start_frame(&mut self, header: &FrameHeader) {
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

    /// The checks that need the header and the protocol state, before any payload is read.
    pub(super) fn check_header(&self, header: &FrameHeader) -> Result<(), Error> {
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
    pub(super) fn handle_frame(
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

    pub(super) fn release_idle(buf: &mut BytesMut) {
        if buf.is_empty() && buf.capacity() > IDLE_BUFFER_CAPACITY {
            *buf = BytesMut::new();
        }
    }
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
