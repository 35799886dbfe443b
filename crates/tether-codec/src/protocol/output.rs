//! The bytes owed to the socket as the driver takes them, and the buffers an idle connection
//! hands back.

use std::io::IoSlice;

use bytes::BytesMut;

use super::Protocol;

impl Protocol {
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
    /// application's own [`Bytes`](bytes::Bytes) behind its frame header: an echo writes the bytes it read,
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
    pub(super) fn fill_buffers(&mut self, mut supply: impl FnMut() -> Option<BytesMut>) {
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
}
