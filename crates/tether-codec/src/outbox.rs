//! The bytes owed to the socket: frames copied into one buffer, with large unmasked payloads
//! kept as the application's [`Bytes`] between them, so they go out by vectored writes
//! without a copy.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};

/// Unmasked payloads of at least this many bytes are queued by reference, not copied: below it
/// a copy costs less than one more slice in the vectored write.
pub(crate) const ZERO_COPY_MIN: usize = 16 << 10;

/// Output in order: `buf[..at₀]`, `payload₀`, `buf[at₀..at₁]`, `payload₁`, …, `buf[atₙ..]`,
/// where `atᵢ` are the offsets in `inserts` (non-decreasing, relative to `buf`'s start).
#[derive(Default)]
pub(crate) struct Outbox {
    pub(crate) buf: BytesMut,
    inserts: VecDeque<(usize, Bytes)>,
    /// The bytes held by `inserts`.
    inserted: usize,
}

impl Outbox {
    /// Every byte owed, copied and referenced.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.buf.len() + self.inserted
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `payload` by reference after everything already in the buffer.
    pub(crate) fn push_shared(&mut self, payload: Bytes) {
        self.inserted += payload.len();
        self.inserts.push_back((self.buf.len(), payload));
    }

    /// The buffer with every referenced payload copied in at its place: for callers that want
    /// the output as one contiguous buffer.
    #[inline]
    pub(crate) fn contiguous(&mut self) -> &mut BytesMut {
        if !self.inserts.is_empty() {
            self.copy_inserts_in();
        }
        &mut self.buf
    }

    /// Copies every referenced payload into the buffer at its place.
    fn copy_inserts_in(&mut self) {
        let mut all = BytesMut::with_capacity(self.len());
        let mut from = 0;
        for (at, payload) in self.inserts.drain(..) {
            all.extend_from_slice(&self.buf[from..at]);
            all.extend_from_slice(&payload);
            from = at;
        }
        all.extend_from_slice(&self.buf[from..]);
        self.buf = all;
        self.inserted = 0;
    }

    /// Releases the copy buffer's capacity when nothing is owed. The queue of references keeps
    /// its few slots, so a connection sending large messages does not allocate it again for each.
    /// Returns the buffer, for reuse.
    pub(crate) fn release(&mut self) -> BytesMut {
        debug_assert!(self.is_empty());
        std::mem::take(&mut self.buf)
    }

    /// Fills `dst` with the output's next pieces, in order; returns how many it filled.
    #[inline]
    pub(crate) fn chunks<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        if !self.inserts.is_empty() {
            return self.chunks_with_inserts(dst);
        }
        // Everything copied (small messages, a client's masked payloads): one piece.
        match dst.first_mut() {
            Some(slot) if !self.buf.is_empty() => {
                *slot = IoSlice::new(&self.buf);
                1
            }
            _ => 0,
        }
    }

    /// [`Outbox::chunks`] when payloads are queued by reference.
    fn chunks_with_inserts<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut from = 0;
        let pieces = self.inserts.iter().flat_map(|(at, payload)| {
            let copied = &self.buf[from..*at];
            from = *at;
            [copied, &payload[..]]
        });
        let last = self.inserts.back().map_or(0, |(at, _)| *at);
        let pieces = pieces.chain(std::iter::once(&self.buf[last..]));
        let mut filled = 0;
        for (slot, piece) in dst.iter_mut().zip(pieces.filter(|p| !p.is_empty())) {
            *slot = IoSlice::new(piece);
            filled += 1;
        }
        filled
    }

    /// Drops the first `n` bytes of the output, which were written.
    #[inline]
    pub(crate) fn advance(&mut self, mut n: usize) {
        debug_assert!(n <= self.len());
        if self.inserts.is_empty() {
            if n == self.buf.len() {
                // All written: the buffer starts over where it stands, with all its room,
                // instead of moving its start forward (and reclaiming the room later).
                self.buf.clear();
            } else {
                self.buf.advance(n);
            }
            return;
        }
        while n > 0 {
            let before = self.inserts.front().map_or(self.buf.len(), |(at, _)| *at);
            let copied = n.min(before);
            if copied > 0 {
                self.buf.advance(copied);
                for (at, _) in &mut self.inserts {
                    *at -= copied;
                }
                n -= copied;
            }
            let Some((0, payload)) = self.inserts.front_mut() else {
                continue;
            };
            let taken = n.min(payload.len());
            payload.advance(taken);
            self.inserted -= taken;
            n -= taken;
            if payload.is_empty() {
                self.inserts.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Outbox {
        let mut out = Outbox::default();
        out.buf.extend_from_slice(b"ab");
        out.push_shared(Bytes::from_static(b"CDE"));
        out.buf.extend_from_slice(b"f");
        out.push_shared(Bytes::from_static(b"GH"));
        out
    }

    fn written(out: &Outbox) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        let n = out.chunks(&mut slices);
        slices[..n].iter().flat_map(|s| s.to_vec()).collect()
    }

    #[test]
    fn pieces_come_out_in_queue_order_and_advance_across_them() {
        let mut out = sample();
        assert_eq!(out.len(), 8);
        assert_eq!(written(&out), b"abCDEfGH");
        for (step, rest) in [(1, &b"bCDEfGH"[..]), (3, b"EfGH"), (2, b"GH"), (2, b"")] {
            out.advance(step);
            assert_eq!(written(&out), rest);
            assert_eq!(out.len(), rest.len());
        }
        assert!(out.is_empty());
    }

    #[test]
    fn contiguous_copies_the_shared_payloads_in_place() {
        let mut out = sample();
        out.advance(3);
        assert_eq!(&out.contiguous()[..], b"DEfGH");
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn copied_bytes_alone_are_one_piece_and_advance_in_place() {
        let mut out = Outbox::default();
        assert_eq!(out.chunks(&mut [IoSlice::new(&[]); 2]), 0, "nothing owed");
        out.buf.extend_from_slice(b"abcdef");
        assert_eq!(out.chunks(&mut []), 0, "no slice to fill");
        {
            let mut slices = [IoSlice::new(&[]); 2];
            assert_eq!(out.chunks(&mut slices), 1);
            assert_eq!(&*slices[0], b"abcdef");
        }
        out.advance(4);
        assert_eq!(written(&out), b"ef");
        out.advance(2);
        assert!(out.is_empty());
    }

    #[test]
    fn chunks_stop_at_the_slices_given() {
        let out = sample();
        let mut slices = [IoSlice::new(&[]); 2];
        assert_eq!(out.chunks(&mut slices), 2);
        assert_eq!((&*slices[0], &*slices[1]), (&b"ab"[..], &b"CDE"[..]));
    }
}
