//! The read side: messages out of the transport, with the replies they need written on the
//! way, the write buffer's backpressure, and the buffers an idle moment releases.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tether_codec::{Message, State};

use super::{Core, Transport, READ_AHEAD};
use crate::buffer_stock;
use crate::error::Error;

impl<S: Transport> Core<S> {
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
    pub(super) fn poll_backpressure(
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
    pub(super) fn poll_read_more(
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
    pub(super) fn release_buffers(&mut self) {
        self.read_room.release(self.protocol.read_buffer());
        let wanted = self.protocol.payload_wanted();
        let buf = self.protocol.read_buffer();
        // Messages the application holds may share it: then a spare, not the stock's.
        if wanted == 0 && buf.is_empty() && !self.read_room.keep_if_pinned(buf) {
            buffer_stock::release(buf, false);
        }
        if self.protocol.write_buffer_len() == 0 {
            let small = !self.written_buffer_may_be_large();
            buffer_stock::release(self.protocol.write_buffer(), small);
        }
    }

    /// The next message or failure already in the read buffer, with its reply (pong, close
    /// echo, failure close) written opportunistically; `None` when more bytes are needed.
    pub(super) fn next_decoded(&mut self, cx: &mut Context<'_>) -> Option<Result<Message, Error>> {
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

    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
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
}
