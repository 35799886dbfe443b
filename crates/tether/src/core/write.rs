//! The write side: messages into the write buffer (or the one-message slot behind it), and the
//! buffer out to the transport with as few writes as it takes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tether_codec::{Role, State, MAX_HEADER_LEN};

use super::{Core, Outgoing, Slot, Transport, WRITE_SLICES};
use crate::buffer_stock;
use crate::error::Error;

impl<S: Transport> Core<S> {
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
    pub(super) fn has_room(&self) -> bool {
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
    pub(super) fn poll_flush_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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

    /// Writes the buffer (moving the parked message in when there is room) with as few writes
    /// as the transport allows, then flushes it.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
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
    pub(super) fn poll_write_chunks(
        &mut self,
        cx: &mut Context<'_>,
        owed: usize,
    ) -> Poll<io::Result<usize>> {
        let mut first = [IoSlice::new(&[])];
        self.protocol.write_chunks(&mut first);
        if first[0].len() == owed || !self.io.is_write_vectored() {
            return Pin::new(&mut self.io).poll_write(cx, &first[0]);
        }
        self.poll_write_vectored(cx)
    }

    /// A vectored write of what is owed: frame headers and the large payloads queued without a
    /// copy, in one call.
    pub(super) fn poll_write_vectored(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let filled = self.protocol.write_chunks(&mut slices);
        Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..filled])
    }

    /// Measures the written write buffer; one larger than the stock's small tier keeps
    /// leaves the connection, for the thread's large tier (or freed).
    pub(super) fn free_large_write_buffer(&mut self) {
        self.written_unmeasured = 0;
        let buf = self.protocol.write_buffer();
        if buffer_stock::too_large(buf) {
            buffer_stock::put_large(std::mem::take(buf));
        }
    }

    /// Before a client copies (and masks) a message past the stock's small tier into an
    /// empty write buffer: a large buffer of the thread's stock with room for it, rather than
    /// an allocation for each such message; else one allocated in the stock's size classes,
    /// so that it serves a read later.
    #[cold]
    pub(super) fn provide_large_write_buffer(&mut self, need: usize) {
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
    pub(super) fn written_buffer_may_be_large(&self) -> bool {
        self.written_unmeasured > buffer_stock::MAX_CAPACITY / 4
    }

    pub(super) fn unpark(&mut self) {
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
}
