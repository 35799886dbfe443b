//! The connection driver shared by [`WebSocket`](crate::WebSocket) and its split halves: it
//! moves bytes between the transport and the codec's [`Protocol`], and owns the closing
//! handshake and its timeout.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tether_codec::{
    CloseCode, CloseFrame, DeflateConfig, DeflateParams, Message, OpCode, Protocol, Role, State,
    MAX_HEADER_LEN,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

use crate::buffer_stock;
use crate::config::Config;
use crate::error::Error;
use crate::read_room::ReadRoom;

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

    /// The next message. Decodes everything already read before reading again; answers pings
    /// and closes by writing opportunistically; ends the stream after the closing handshake,
    /// a failure or the transport's end, and stays ended.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, Error>>> {
        if self.ended() {
            return Poll::Ready(None);
        }
        // Closing: the deadline holds even if the peer keeps the read side busy. (Once both
        // close frames are through, `poll_finish` decides what the deadline means.)
        if self.protocol.state() == State::Closing {
            if let Some(err) = self.deadline_failure(cx) {
                return Poll::Ready(Some(Err(err)));
            }
        }
        loop {
            // An empty read buffer decodes to nothing (a frame begun waits for its bytes).
            if !self.protocol.read_buffer().is_empty() {
                if let Some(event) = self.next_decoded(cx) {
                    return Poll::Ready(Some(event));
                }
            }
            if self.protocol.state() == State::Closed {
                let finished = ready!(self.poll_finish(cx));
                self.end();
                return Poll::Ready(finished.err().map(Err));
            }
            if let Some(stop) = self.poll_backpressure(cx) {
                return stop;
            }
            if let Some(stop) = self.poll_read_more(cx) {
                return stop;
            }
        }
    }

    /// Writes out what is queued. `Some` with what [`Core::poll_next`] returns when the write
    /// failed, or when the write buffer is at its limit and nothing more may be read; `None`
    /// to go on reading.
    fn poll_backpressure(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Option<Result<Message, Error>>>> {
        if self.protocol.write_buffer_len() == 0 && !self.unflushed && self.slot.is_empty() {
            return None;
        }
        match self.poll_write_out(cx) {
            Poll::Ready(Err(err)) => {
                self.end();
                Some(Poll::Ready(Some(Err(err))))
            }
            // DESIGN.md, "What a peer controls is bounded": while the write buffer is at
            // its limit, read nothing more. The peer's further frames (pings, messages the
            // application would answer) stay in its socket and TCP pushes back on it; the
            // write waker brings us back once the peer takes bytes.
            Poll::Pending if self.buffered() >= self.write_limit => {
                Some(match self.poll_timers(cx) {
                    Some(err) => Poll::Ready(Some(Err(err))),
                    None => Poll::Pending,
                })
            }
            _ => None,
        }
    }

    /// Reads once from the transport. `None` when bytes arrived (decode them); `Some` with
    /// what [`Core::poll_next`] returns at the transport's end, a read failure, or when
    /// nothing is ready (after checking the close deadline and the idle timeout).
    fn poll_read_more(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Option<Result<Message, Error>>>> {
        match self.poll_read(cx) {
            Poll::Ready(Ok(0)) => {
                self.eof = true;
                self.end();
                Some(Poll::Ready(Some(Err(Error::AbnormalClosure))))
            }
            Poll::Ready(Ok(n)) => {
                self.restart_idle();
                // One read may hold many frames, or a piece of one (拆包/粘包).
                tracing::trace!(
                    bytes = n,
                    buffered = self.protocol.read_buffer().len(),
                    "read"
                );
                None
            }
            Poll::Ready(Err(err)) => {
                self.end();
                Some(Poll::Ready(Some(Err(err.into()))))
            }
            Poll::Pending => {
                if let Some(err) = self.poll_timers(cx) {
                    return Some(Poll::Ready(Some(Err(err))));
                }
                // Idle until the peer sends: empty buffers leave the connection, so an
                // idle one holds none; the thread keeps a few for the next read or send.
                self.release_buffers();
                Some(Poll::Pending)
            }
        }
    }

    /// At an idle moment: the empty buffers go to the thread's stock, so an idle connection
    /// holds none. The read buffer stays while a frame's announced payload is due (room was
    /// made for it). The write buffer's allocation is bounded by what was written since it
    /// was last measured ([`Core::written_buffer_may_be_large`]); the read buffer's is measured.
    #[inline]
    fn release_buffers(&mut self) {
        self.read_room.release(self.protocol.read_buffer());
        if self.protocol.payload_wanted() == 0 {
            buffer_stock::release(self.protocol.read_buffer(), false);
        }
        if self.protocol.write_buffer_len() == 0 {
            let small = !self.written_buffer_may_be_large();
            buffer_stock::release(self.protocol.write_buffer(), small);
        }
    }

    /// The close deadline ([`Core::deadline_failure`]) and the idle timeout
    /// ([`Core::poll_idle`]), when either is armed.
    #[inline]
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        // Neither armed (most connections, most of the time): decided inline.
        if let Phase::Open { idle: None } = self.phase {
            return None;
        }
        self.poll_armed_timers(cx)
    }

    /// [`Core::poll_timers`] once one may be armed.
    fn poll_armed_timers(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        self.deadline_failure(cx).or_else(|| self.poll_idle(cx))
    }

    /// [`Core::poll_deadline`], ending the stream when the close deadline has passed.
    fn deadline_failure(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let err = self.poll_deadline(cx)?;
        self.end();
        Some(err)
    }

    /// The next message or failure already in the read buffer, with its reply (pong, close
    /// echo, failure close) written opportunistically; `None` when more bytes are needed.
    fn next_decoded(&mut self, cx: &mut Context<'_>) -> Option<Result<Message, Error>> {
        // A failure is handed out once (the protocol would repeat it).
        if self.protocol.error().is_some() {
            return None;
        }
        // The common case, in one step (never compressed: its size is the one on the wire).
        if let Some(message) = self.protocol.poll_whole_message() {
            self.read_room.expect(message.len());
            return Some(Ok(message));
        }
        match self.protocol.poll_message() {
            Ok(Some(message)) => {
                match &message {
                    // The pong or the close echo is queued; get it out even if the application
                    // only reads. A failed write shows at the next read.
                    Message::Ping(_) => {
                        let _ = self.poll_write_out(cx);
                    }
                    Message::Close(frame) => {
                        self.peer_close = Some(frame.clone());
                        self.arm_deadline();
                        let _ = self.poll_write_out(cx);
                    }
                    // Its size on the wire: with permessage-deflate the message's is not.
                    Message::Text(_) | Message::Binary(_) if self.protocol.deflate().is_none() => {
                        self.read_room.expect(message.len());
                    }
                    _ => {}
                }
                Some(Ok(message))
            }
            Ok(None) => None,
            Err(err) => {
                // The close frame with the error's code is queued (RFC 6455 §7.1.7).
                self.arm_deadline();
                let _ = self.poll_write_out(cx);
                Some(Err(err.into()))
            }
        }
    }

    /// Takes `message` now if nothing is parked: into the write buffer when it is below the
    /// limit, else into the parked slot. Gives it back when the slot is taken.
    pub(crate) fn offer(
        &mut self,
        message: impl Into<Outgoing>,
    ) -> Result<Option<Outgoing>, Error> {
        let message = message.into();
        if let Some(err) = self.slot.take_refusal() {
            return Err(err);
        }
        if let Slot::Parked(_) = self.slot {
            return Ok(Some(message));
        }
        if self.protocol.write_buffer_len() < self.write_limit {
            self.start_send(message)?;
        } else {
            if self.protocol.state() != State::Open || self.ended() {
                return Err(Error::Closed);
            }
            self.slot = Slot::Parked(message);
        }
        Ok(None)
    }

    /// Ready when a message may be appended: nothing parked and the write buffer below the
    /// limit. Writes first; waits while the peer does not take the bytes.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(err) = self.slot.take_refusal() {
            return Poll::Ready(Err(err));
        }
        if self.ended() || self.protocol.state() != State::Open {
            return Poll::Ready(Err(Error::Closed));
        }
        if self.has_room() {
            return Poll::Ready(Ok(()));
        }
        match self.poll_write_out(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending if self.has_room() => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Nothing parked and the write buffer below its limit.
    fn has_room(&self) -> bool {
        self.slot.is_empty() && self.protocol.write_buffer_len() < self.write_limit
    }

    /// The body of a `send` future: lets `held` (what `offer` gave back) in once there is
    /// room, then flushes. Shared by `WebSocket::send` and `WebSocketWriter::send`.
    #[inline]
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        held: &mut Option<Outgoing>,
    ) -> Poll<Result<(), Error>> {
        if held.is_some() {
            ready!(self.poll_ready(cx))?;
            if let Some(message) = held.take() {
                self.start_send(message)?;
            }
        }
        self.poll_flush(cx)
    }

    /// Appends `message` to the write buffer (no I/O).
    #[inline(always)]
    pub(crate) fn start_send(&mut self, message: impl Into<Outgoing>) -> Result<(), Error> {
        if self.ended() {
            return Err(Error::Closed);
        }
        self.protocol.provide_buffers(buffer_stock::take);
        let message = message.into();
        if self.protocol.role() == Role::Client && message.len() > buffer_stock::MAX_CAPACITY {
            self.provide_large_write_buffer(message.len() + MAX_HEADER_LEN);
        }
        match message {
            Outgoing::Message(message) => self.protocol.send(message)?,
            Outgoing::Fragment(opcode, data, fin) => {
                self.protocol.send_fragment_bytes(opcode, data, fin)?
            }
        }
        if self.protocol.state() != State::Open {
            self.arm_deadline();
        }
        Ok(())
    }

    /// Writes everything buffered (and the parked message) and flushes the transport.
    #[inline]
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.slot {
            // Nothing parked, so nothing can be refused on the way: the write's outcome is
            // the flush's.
            Slot::Empty => self.poll_write_out(cx),
            Slot::Parked(_) | Slot::Refused(_) => self.poll_flush_slot(cx),
        }
    }

    /// [`Core::poll_flush`] with a message parked or a refusal waiting.
    fn poll_flush_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(err) = self.slot.take_refusal() {
            return Poll::Ready(Err(err));
        }
        let written = ready!(self.poll_write_out(cx));
        // A parked message (or fragment) refused when it moved into the buffer is reported by
        // the flush that moved it, so the `send` that parked it, if still awaited, gets its own
        // error rather than the next call.
        Poll::Ready(match self.slot.take_refusal() {
            Some(err) => Err(err),
            None => written,
        })
    }

    /// Queues a close frame unless one was sent already.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.ended() || self.protocol.state() != State::Open {
            return Ok(());
        }
        self.protocol.close(code, reason)?;
        self.arm_deadline();
        Ok(())
    }

    /// Drives the connection to its end, dropping messages that still arrive; returns the
    /// peer's close frame. The first error met is returned instead.
    pub(crate) fn poll_until_closed(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<CloseFrame>, Error>> {
        // Get the close frame out first, but never wait on the write alone: a peer that does
        // not read would hold us forever. `poll_next` waits on the write and the read together
        // and polls the close deadline whenever it waits.
        if let Poll::Ready(Err(err)) = self.poll_write_out(cx) {
            self.close_error.get_or_insert(err);
        }
        loop {
            match ready!(self.poll_next(cx)) {
                Some(Ok(message)) => {
                    tracing::trace!(len = message.len(), "message dropped while closing");
                }
                Some(Err(err)) => {
                    self.close_error.get_or_insert(err);
                }
                None => {
                    return Poll::Ready(match self.close_error.take() {
                        Some(err) => Err(err),
                        None => Ok(self.peer_close.clone().flatten()),
                    })
                }
            }
        }
    }

    /// Ready once the closing handshake is over: the stream has ended, or the reader has been
    /// handed the peer's close (or the failure), after which this call finishes the transport
    /// itself, so a reader that stops at the close does not hold the writer up.
    pub(crate) fn poll_ended(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Option<CloseFrame>, Error>> {
        match (&self.phase, self.protocol.state()) {
            (Phase::Ended, _) => return Poll::Ready(Ok(self.peer_close.clone().flatten())),
            (_, State::Closed) if self.close_seen() => {
                let finished = ready!(self.poll_finish(cx));
                self.end();
                return Poll::Ready(finished.map(|()| self.peer_close.clone().flatten()));
            }
            _ => {}
        }
        if let Poll::Ready(Err(err)) = self.poll_write_out(cx) {
            return Poll::Ready(Err(err));
        }
        if let Some(err) = self.deadline_failure(cx) {
            return Poll::Ready(Err(err));
        }
        self.end_waiter = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Without waiting: writes what the transport takes now and shuts it down, once the
    /// closing handshake is over and nobody is left to drive it (a split reader dropped after
    /// the close). The transport would otherwise stay open until the writer is dropped too.
    pub(crate) fn finish_now(&mut self) {
        if self.ended() || self.protocol.state() != State::Closed {
            return;
        }
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let _ = self.poll_write_out(&mut cx);
        if !self.shutdown {
            let _ = Pin::new(&mut self.io).poll_shutdown(&mut cx);
            self.shutdown = true;
        }
        self.end();
    }

    /// Writes the buffer (moving the parked message in when there is room) with as few writes
    /// as the transport allows, then flushes it.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if matches!(self.slot, Slot::Parked(_)) {
                self.unpark();
            }
            let owed = self.protocol.write_buffer_len();
            if owed == 0 {
                break;
            }
            if self.shutdown {
                self.protocol.write_buffer().clear();
                return Poll::Ready(Err(Error::Closed));
            }
            let n = ready!(self.poll_write_chunks(cx, owed))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
            }
            self.protocol.advance_written(n);
            tracing::trace!(bytes = n, left = owed - n, "wrote");
            self.unflushed = true;
            self.written_unmeasured += n;
        }
        // A written write buffer larger than the buffer stock keeps is freed, so a connection
        // that once sent a large message (a client's masked copy) does not keep that memory
        // while it stays busy (idle, it releases its buffers anyway); one that held a 64 KiB
        // message is kept for the next.
        if self.written_buffer_may_be_large() {
            self.free_large_write_buffer();
        }
        if self.unflushed {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// One write of the `owed` bytes: their first piece, with a plain write when it is all of
    /// them (small messages, all copied: the common case, and `writev` costs more per call) or
    /// the transport does not do vectored writes well, else a vectored write of the pieces.
    #[inline]
    fn poll_write_chunks(&mut self, cx: &mut Context<'_>, owed: usize) -> Poll<io::Result<usize>> {
        let mut first = [IoSlice::new(&[])];
        self.protocol.write_chunks(&mut first);
        if first[0].len() == owed || !self.io.is_write_vectored() {
            return Pin::new(&mut self.io).poll_write(cx, &first[0]);
        }
        self.poll_write_vectored(cx)
    }

    /// A vectored write of what is owed: frame headers and the large payloads queued without a
    /// copy, in one call.
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let filled = self.protocol.write_chunks(&mut slices);
        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..filled])
    }

    /// Measures the written write buffer; one larger than the stock's small tier keeps
    /// leaves the connection, for the thread's large tier (or freed).
    fn free_large_write_buffer(&mut self) {
        self.written_unmeasured = 0;
        let buf = self.protocol.write_buffer();
        if buffer_stock::too_large(buf) {
            buffer_stock::put(std::mem::take(buf));
        }
    }

    /// Before a client copies (and masks) a message past the stock's small tier into an
    /// empty write buffer: a large buffer of the thread's stock with room for it, rather than
    /// an allocation for each such message; else one allocated in the stock's size classes,
    /// so that it serves a read later.
    #[cold]
    fn provide_large_write_buffer(&mut self, need: usize) {
        if self.protocol.write_buffer_len() != 0 {
            return;
        }
        let buf = self.protocol.write_buffer();
        if buf.try_reclaim(need) {
            return;
        }
        let large =
            buffer_stock::take_fitting(need).unwrap_or_else(|| buffer_stock::allocate(need));
        buffer_stock::put(std::mem::replace(buf, large));
    }

    /// Whether the written write buffer's allocation may have grown past what the buffer
    /// stock keeps, [`buffer_stock::MAX_CAPACITY`]. Measuring it (`too_large`) costs a call
    /// into `bytes` per write; this bound costs nothing. A `BytesMut` grows only when what it
    /// holds and what is appended do not fit, and then to less than four times that (twice
    /// its allocation, which was smaller than twice that, or that itself). Since it was last
    /// measured (at most the stock's size then, as every buffer the stock hands out) it held
    /// at most the bytes written since: below a quarter of the stock's size written, it
    /// cannot have passed it.
    fn written_buffer_may_be_large(&self) -> bool {
        self.written_unmeasured > buffer_stock::MAX_CAPACITY / 4
    }

    fn unpark(&mut self) {
        if !matches!(self.slot, Slot::Parked(_))
            || self.protocol.write_buffer_len() >= self.write_limit
        {
            return;
        }
        if let Slot::Parked(message) = std::mem::replace(&mut self.slot, Slot::Empty) {
            if let Err(err) = self.start_send(message) {
                self.slot = Slot::Refused(err);
            }
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // The frame being received announced its length (within the limits): make room for
        // the rest of it at once, so a large payload arrives in few reads and the buffer is
        // not re-grown by copies. A peer that announces much and sends little makes us hold
        // at most READ_AHEAD of capacity beyond what it sent.
        let wanted = self.protocol.payload_wanted().min(READ_AHEAD);
        self.protocol.provide_buffers(buffer_stock::take);
        let buf = self.protocol.read_buffer();
        self.read_room.make(buf, wanted);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf)
    }

    /// After both close frames (or a failure): write what is left, let the server close the
    /// TCP connection first (RFC 6455 §7.1.1), shut the transport down.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.poll_write_out(cx) {
            Poll::Ready(_) => {}
            Poll::Pending => return self.pending_unless_deadline(cx),
        }
        // RFC 6455 §7.1.1: "the server ... SHOULD close the underlying TCP connection first";
        // the client waits for it, then closes its side.
        if self.protocol.role() == Role::Client && !self.eof {
            loop {
                self.protocol.read_buffer().clear();
                match self.poll_read(cx) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                        self.eof = true;
                        break;
                    }
                    Poll::Ready(Ok(_)) => continue,
                    // Both close frames were exchanged: a server that keeps the TCP
                    // connection open past the deadline does not make the close a failure.
                    Poll::Pending if self.deadline_elapsed(cx) => break,
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        if !self.shutdown {
            if Pin::new(&mut self.io).poll_shutdown(cx).is_pending() {
                return self.pending_unless_deadline(cx);
            }
            self.shutdown = true;
        }
        Poll::Ready(Ok(()))
    }

    fn pending_unless_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.poll_deadline(cx) {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Pending,
        }
    }

    fn deadline_elapsed(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.phase {
            Phase::Closing {
                deadline: Some(deadline),
            } => deadline.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }

    /// `Some(CloseTimeout)` once the close deadline passed; the transport is shut down then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        self.deadline_elapsed(cx).then(|| {
            tracing::debug!("closing handshake timed out; shutting the transport down");
            if !self.shutdown {
                // One attempt, without waiting: the peer is not cooperating.
                let _ = Pin::new(&mut self.io).poll_shutdown(cx);
                self.shutdown = true;
            }
            Error::CloseTimeout(self.close_timeout.unwrap_or_default())
        })
    }

    /// `Some(IdleTimeout)` once nothing was received for the idle timeout; the close frame
    /// with 1001 is queued then (see `Config::set_idle_timeout`).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        let Phase::Open { idle: Some(idle) } = &mut self.phase else {
            return None;
        };
        if idle.as_mut().poll(cx).is_pending() {
            return None;
        }
        let timeout = self.idle_timeout.unwrap_or_default();
        tracing::debug!(
            ?timeout,
            "nothing received for the idle timeout; closing with 1001"
        );
        let closed = self.start_close(CloseCode::GOING_AWAY, "idle timeout");
        // Out of the open phase even if the close could not be queued: it fires once.
        self.arm_deadline();
        if let Err(err) = closed {
            return Some(err);
        }
        let _ = self.poll_write_out(cx);
        Some(Error::IdleTimeout(timeout))
    }

    fn restart_idle(&mut self) {
        if let (Phase::Open { idle: Some(idle) }, Some(timeout)) =
            (&mut self.phase, self.idle_timeout)
        {
            idle.as_mut().reset(tokio::time::Instant::now() + timeout);
        }
    }

    /// Open → Closing: from here the close deadline bounds what is left, and idleness no
    /// longer matters.
    fn arm_deadline(&mut self) {
        if let Phase::Open { .. } = self.phase {
            self.phase = Phase::Closing {
                deadline: self
                    .close_timeout
                    .map(|timeout| Box::pin(tokio::time::sleep(timeout))),
            };
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

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::read_room::READ_CHUNK;

    fn server(io: tokio::io::DuplexStream) -> Core<tokio::io::DuplexStream> {
        Core::new(io, Role::Server, &Config::default(), BytesMut::new())
    }

    #[tokio::test]
    async fn leftover_bytes_are_decoded_before_reading() {
        let (_peer, io) = tokio::io::duplex(64);
        // RFC 6455 §5.7: a masked "Hello", as if read together with the handshake.
        let leftover = BytesMut::from(
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ][..],
        );
        let mut core = Core::new(io, Role::Server, &Config::default(), leftover);
        let message = poll_fn(|cx| core.poll_next(cx)).await;
        assert_eq!(message.unwrap().unwrap(), Message::text("Hello"));
    }

    #[tokio::test]
    async fn idle_connection_holds_no_buffer_memory() {
        let (mut peer, io) = tokio::io::duplex(64);
        let mut core = server(io);
        peer.write_all(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ])
        .await
        .unwrap();
        let message = poll_fn(|cx| core.poll_next(cx)).await;
        assert_eq!(message.unwrap().unwrap(), Message::text("Hello"));
        // The next poll finds nothing to read and goes idle.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        assert!(core.poll_next(&mut cx).is_pending());
        assert_eq!(core.protocol.read_buffer().capacity(), 0);
        assert_eq!(core.protocol.write_buffer().capacity(), 0);
    }

    /// A busy connection keeps a written write buffer of up to the stock's MAX_CAPACITY (one
    /// that held a 64 KiB message serves the next without an allocation); one that grew past
    /// it, holding many messages queued at once, is freed.
    #[tokio::test]
    async fn a_written_write_buffer_is_kept_up_to_the_idle_capacity_and_freed_past_it() {
        let (_peer, io) = tokio::io::duplex(1 << 20);
        let mut core = server(io);
        // Provided before the send, as the buffer stock does.
        core.protocol
            .write_buffer()
            .reserve(buffer_stock::MAX_CAPACITY);
        core.start_send(Message::binary(Vec::new()))
            .expect("queued");
        poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
        assert!(
            core.protocol
                .write_buffer()
                .try_reclaim(buffer_stock::MAX_CAPACITY),
            "kept"
        );
        // Copied messages (below the size queued by reference) fill it past the stock's size.
        let message = Message::binary(vec![7u8; 1 << 10]);
        for _ in 0..=(buffer_stock::MAX_CAPACITY >> 10) {
            core.start_send(message.clone()).expect("queued");
        }
        assert!(core.protocol.write_buffer().capacity() > buffer_stock::MAX_CAPACITY);
        poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
        assert_eq!(core.protocol.write_buffer().capacity(), 0, "freed");
    }

    /// A client's masked copy of a 1 MiB message fills its write buffer to the end; written,
    /// the allocation leaves the connection (for the thread's stock), though no room is left
    /// after the write position, and the next large message is copied into it again.
    #[tokio::test]
    async fn a_client_write_buffer_that_held_a_large_message_leaves_once_written_and_serves_the_next(
    ) {
        let (_peer, io) = tokio::io::duplex(4 << 20);
        let mut core = Core::new(io, Role::Client, &Config::default(), BytesMut::new());
        let message = Message::binary(vec![7u8; 1 << 20]);
        core.start_send(message.clone()).expect("queued");
        let first = core.protocol.write_buffer().as_ptr();
        poll_fn(|cx| core.poll_flush(cx)).await.expect("written");
        let buf = core.protocol.write_buffer();
        assert!(
            !buf.try_reclaim(buffer_stock::MAX_CAPACITY + 1),
            "{}",
            buf.capacity()
        );
        core.start_send(message).expect("queued");
        assert_eq!(core.protocol.write_buffer().as_ptr(), first, "taken back");
    }

    /// A binary frame header announcing `len` bytes, masked, as a client sends it.
    fn announce(len: u64) -> Vec<u8> {
        let mut wire = vec![0x82, 0xff];
        wire.extend_from_slice(&len.to_be_bytes());
        wire.extend_from_slice(&[1, 2, 3, 4]);
        wire
    }

    /// Reads are sized from the announced payload, but a peer that announces much and sends
    /// little makes the read buffer hold at most READ_AHEAD beyond what arrived (rounded up to
    /// the buffer stock's grain for large allocations).
    #[tokio::test]
    async fn announced_payload_sizes_the_read_within_read_ahead() {
        for (len, most) in [
            (64 << 10, (64 << 10) + READ_CHUNK),
            (8 << 20, READ_AHEAD + buffer_stock::LARGE_GRAIN),
        ] {
            let (mut peer, io) = tokio::io::duplex(64);
            let mut core = server(io);
            peer.write_all(&announce(len as u64)).await.unwrap();
            peer.write_all(b"abc").await.unwrap();
            let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
            assert!(core.poll_next(&mut cx).is_pending());
            let capacity = core.protocol.read_buffer().capacity();
            // The room for the announced rest was made before the last read.
            assert!(capacity >= len.min(READ_AHEAD), "{len}: {capacity}");
            assert!(capacity <= most, "{len}: {capacity}");
        }
    }

    /// `count` masked pings of `len` bytes each, as a client sends them.
    fn pings(count: usize, len: usize) -> BytesMut {
        let mut wire = BytesMut::new();
        for _ in 0..count {
            tether_codec::Frame::new(OpCode::Ping, vec![b'p'; len])
                .with_mask(Some([1, 2, 3, 4]))
                .encode(&mut wire);
        }
        wire
    }

    /// DESIGN.md, "What a peer controls is bounded": while the write buffer is at its limit
    /// the driver reads nothing, so a peer that does not read is pushed back by the transport.
    #[tokio::test(start_paused = true)]
    async fn full_write_buffer_stops_reading_until_it_drains() {
        let (peer, io) = tokio::io::duplex(1024);
        let (mut peer_rd, mut peer_wr) = tokio::io::split(peer);
        let mut config = Config::default();
        config.set_write_buffer_limit(4096);
        let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
        assert!(core
            .offer(Message::binary(vec![0u8; 8192]))
            .unwrap()
            .is_none());
        let flood = pings(1000, 125);
        let wait = Duration::from_secs(1);
        let (next, written) = tokio::join!(
            tokio::time::timeout(wait, poll_fn(|cx| core.poll_next(cx))),
            tokio::time::timeout(wait, peer_wr.write_all(&flood)),
        );
        assert!(next.is_err(), "nothing delivered while the writes wait");
        assert!(written.is_err(), "the peer was pushed back");
        assert!(core.protocol.read_buffer().is_empty(), "nothing read");
        assert!(core.buffered() <= 8192 + 4);
        // The peer reads: the buffer drains and reading resumes.
        let draining = tokio::spawn(async move {
            let mut sink = vec![0u8; 1 << 16];
            while tokio::io::AsyncReadExt::read(&mut peer_rd, &mut sink)
                .await
                .unwrap()
                > 0
            {}
        });
        let next = poll_fn(|cx| core.poll_next(cx)).await;
        assert!(matches!(next, Some(Ok(Message::Ping(_)))));
        draining.abort();
    }

    /// `Config::set_idle_timeout`: nothing received for the timeout closes with 1001; every
    /// byte received restarts it (here a ping at 20 s moves the end from 30 s to 50 s).
    #[tokio::test(start_paused = true)]
    async fn idle_timeout_closes_with_1001_and_reads_restart_it() {
        let (mut peer, io) = tokio::io::duplex(1024);
        let mut config = Config::default();
        let timeout = Duration::from_secs(30);
        config.set_idle_timeout(Some(timeout));
        let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
        let start = tokio::time::Instant::now();
        let quiet = tokio::time::timeout(Duration::from_secs(20), poll_fn(|cx| core.poll_next(cx)));
        assert!(quiet.await.is_err(), "not idle before the timeout");
        peer.write_all(&pings(1, 0)).await.unwrap();
        let ping = poll_fn(|cx| core.poll_next(cx)).await;
        assert!(matches!(ping, Some(Ok(Message::Ping(_)))));
        let idle = poll_fn(|cx| core.poll_next(cx)).await;
        assert!(matches!(idle, Some(Err(Error::IdleTimeout(d))) if d == timeout));
        assert_eq!(start.elapsed(), Duration::from_secs(50));
        assert_eq!(core.protocol.state(), State::Closing);
        let mut wire = [0u8; 2 + 2 + 2 + 12];
        tokio::io::AsyncReadExt::read_exact(&mut peer, &mut wire)
            .await
            .unwrap();
        assert_eq!(&wire[..4], [0x8a, 0x00, 0x88, 14], "the pong, then a close");
        assert_eq!(&wire[4..6], 1001u16.to_be_bytes());
        assert_eq!(&wire[6..], b"idle timeout");
    }

    #[tokio::test]
    async fn parked_message_goes_out_before_later_ones() {
        let (mut peer, io) = tokio::io::duplex(1);
        let mut config = Config::default();
        config.set_write_buffer_limit(10);
        let mut core = Core::new(io, Role::Server, &config, BytesMut::new());
        assert!(core
            .offer(Message::binary(vec![1u8; 20]))
            .unwrap()
            .is_none());
        assert!(
            core.offer(Message::binary(vec![2u8; 20]))
                .unwrap()
                .is_none(),
            "parked"
        );
        let third = core.offer(Message::binary(vec![3u8; 1])).unwrap();
        assert_eq!(
            third,
            Some(Message::binary(vec![3u8; 1]).into()),
            "the slot is taken"
        );
        let reading = tokio::spawn(async move {
            let mut all = vec![0u8; 44];
            tokio::io::AsyncReadExt::read_exact(&mut peer, &mut all)
                .await
                .unwrap();
            all
        });
        poll_fn(|cx| core.poll_flush(cx)).await.unwrap();
        let all = reading.await.unwrap();
        assert_eq!(&all[..2], [0x82, 20]);
        assert!(all[2..22].iter().all(|&b| b == 1));
        assert_eq!(&all[22..24], [0x82, 20]);
        assert!(all[24..].iter().all(|&b| b == 2));
    }
}
