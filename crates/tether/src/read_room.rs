//! Room for the next read, in buffers that come back once the messages sharing them are gone.
//!
//! A message received whole is split off the read buffer without a copy: its payload shares
//! the buffer's allocation. When the application drops it before the next read, the buffer
//! starts over at no cost. When it keeps it across the next read (a session's replay buffer
//! until the peer acknowledges, a client's inbox, any queue of received messages), the
//! allocation is pinned and the read needs another: an allocation and a free per message, and
//! for a 64 KiB message glibc hands the top of the heap back and faults its pages in again for
//! the next one (benches/RESULTS.md, "Sessions against the plain connection").
//!
//! So the driver keeps a handle on each buffer it had to leave pinned (no memory of its own
//! while a message holds the allocation anyway) and reads into it again once the last message
//! sharing it is gone. Bounded: at most [`MAX_SPARES`] handles per connection, only on
//! allocations of at most [`buffer_stock::MAX_LARGE_CAPACITY`]; a spare found free at an idle moment
//! goes to the thread's [`buffer_stock`], so an idle connection keeps only spares that
//! messages still pin.

use std::ops::RangeInclusive;

use bytes::BytesMut;
use tether_codec::MAX_HEADER_LEN;

use crate::buffer_stock::{self, MAX_LARGE_CAPACITY};

/// Spare room below which a read makes more, and how much: one read takes every frame that
/// fits, so a burst of small messages costs one syscall.
pub(crate) const READ_CHUNK: usize = 8 << 10;
/// Room made past the frame being received, for the next header: a handle on an allocation
/// that messages use up to the last byte has no room left, and cannot be told from one without
/// an allocation, so it could not be kept.
const SLACK: usize = READ_CHUNK / 2;
/// Pinned buffers kept per connection: enough for the messages a session keeps until the peer
/// acknowledges them (64 KiB, or 256 KiB from another peer, of 64 KiB messages) and the one
/// being read.
const MAX_SPARES: usize = 8;

/// The spare read buffers of one connection.
#[derive(Debug, Default)]
pub(crate) struct ReadRoom {
    /// Empty handles without capacity on allocations that received messages share (without
    /// capacity, `try_reclaim(1)` tells exactly whether the handle is alone again), and at
    /// most one whose messages are gone, kept by [`release`](Self::release) while another
    /// is pinned.
    spares: Vec<BytesMut>,
    /// The addresses of the last allocation made here that is too large to keep, so that the
    /// read buffer is not kept as a spare while it lives in it.
    large: Option<RangeInclusive<usize>>,
    /// Room the next frame likely needs ([`expect`](Self::expect)): made between frames,
    /// before a byte of it arrives, so none has to move.
    next: usize,
}

impl ReadRoom {
    /// Makes room in `buf` for the `wanted` bytes the frame being received still announces,
    /// and for at least half a [`READ_CHUNK`] more: in place when nothing else holds its
    /// allocation, else in a spare whose messages are gone or a large enough buffer of the
    /// thread's stock, else in a new allocation. The bytes already in `buf` (the start of a
    /// frame) move along.
    #[inline]
    pub(crate) fn make(&mut self, buf: &mut BytesMut, wanted: usize) {
        let spare = buf.capacity() - buf.len();
        let need = if spare < wanted {
            wanted
        } else if buf.is_empty() && spare < self.next {
            // Between frames, after a large message: room for one as large. Without it, a
            // read buffer that a kept message pins has a few KiB of room left, the next
            // frame's first read lands there, and its bytes are copied to a new buffer at
            // the second read.
            self.next
        } else if spare < READ_CHUNK / 2 {
            READ_CHUNK
        } else {
            // Room enough (most reads): decided inline, without a call.
            return;
        };
        self.make_room(buf, need);
    }

    /// [`ReadRoom::make`] once it knows that `buf` needs room for `need` more bytes.
    fn make_room(&mut self, buf: &mut BytesMut, need: usize) {
        if buf.try_reclaim(need) {
            return;
        }
        // A message still shares this allocation, or it is too small: read elsewhere. The
        // bytes of the frame begun move along; then the handle left behind tells which.
        let total = buf.len() + need;
        let fresh = self
            .take_free(total)
            .or_else(|| buffer_stock::take_fitting(total))
            .unwrap_or_else(|| buffer_stock::allocate(total + SLACK));
        let mut left = std::mem::replace(buf, fresh);
        buf.extend_from_slice(&left);
        left.clear();
        if !self.keep_if_pinned(&mut left) && left.try_reclaim(1) {
            buffer_stock::put(left);
        }
        self.note_allocation(buf);
    }

    /// A data message of `len` bytes arrived: the next frame likely has the same size. Small
    /// messages (up to a [`READ_CHUNK`]) make no room ahead; the room made is at most a
    /// buffer the stock can take back.
    #[inline]
    pub(crate) fn expect(&mut self, len: usize) {
        self.next = if len > READ_CHUNK {
            (len + MAX_HEADER_LEN).min(MAX_LARGE_CAPACITY - SLACK)
        } else {
            0
        };
    }

    /// At an idle moment: keeps `buf` (the empty read buffer) as a spare if messages pin it
    /// and it has too little room for the next read, leaving an empty one in its place;
    /// hands the spares whose messages are gone to the thread's stock, but one: that one
    /// stays while messages still pin another (the connection is busy: a session waiting
    /// for acks, an application holding what it received), for the next read. Handed to
    /// the stock, it would be gone when the stock is full (many busy connections on the
    /// thread) and allocated again, its pages faulted in again, message after message. A
    /// connection whose messages are all gone keeps nothing.
    #[inline]
    pub(crate) fn release(&mut self, buf: &mut BytesMut) {
        // One with room left is read into again (the messages before its room do not
        // matter); one without would have to be replaced at the next read.
        let room = (READ_CHUNK / 2).max(self.next);
        let short = buf.is_empty() && buf.capacity() < room;
        // Nothing to keep and no spare to look at (most idle moments): decided inline.
        if short || !self.spares.is_empty() {
            self.release_room(buf, short);
        }
    }

    /// [`ReadRoom::release`] once there is a buffer short of room or a spare to look at.
    fn release_room(&mut self, buf: &mut BytesMut, short: bool) {
        if short {
            self.keep_if_pinned(buf);
        }
        let mut busy = false;
        let mut free = None;
        let mut i = 0;
        while i < self.spares.len() {
            if self.spares[i].try_reclaim(1) {
                if let Some(other) = free.replace(self.spares.swap_remove(i)) {
                    buffer_stock::put(other);
                }
            } else {
                busy = true;
                i += 1;
            }
        }
        match free {
            Some(spare) if busy => self.spares.push(spare),
            Some(spare) => buffer_stock::put(spare),
            None => {}
        }
    }

    /// How many spares the connection holds.
    #[cfg(test)]
    fn spares(&self) -> usize {
        self.spares.len()
    }

    /// Keeps `buf` (empty) as a spare if messages pin it, leaving an empty one in its place;
    /// `false` when it is alone. At an idle moment the driver asks this of a read buffer with
    /// room left too before the thread's stock takes it: the stock could not measure it (see
    /// [`buffer_stock::release`]).
    pub(crate) fn keep_if_pinned(&mut self, buf: &mut BytesMut) -> bool {
        // A pinned handle comes out of `is_pinned` without room, as spares are.
        let pinned = buffer_stock::is_pinned(buf);
        if pinned {
            let handle = std::mem::take(buf);
            self.keep(handle);
        }
        pinned
    }

    /// Keeps `handle` (without room) as a spare, unless too many are kept or its allocation is
    /// too large.
    fn keep(&mut self, handle: BytesMut) {
        let at = handle.as_ptr() as usize;
        let large = self.large.as_ref().is_some_and(|range| range.contains(&at));
        if !large && self.spares.len() < MAX_SPARES {
            self.spares.push(handle);
        }
    }

    /// Remembers where the read buffer's allocation lies if it is too large to keep.
    fn note_allocation(&mut self, buf: &BytesMut) {
        let start = buf.as_ptr() as usize;
        let end = start + buf.capacity();
        self.large = (buf.capacity() > MAX_LARGE_CAPACITY).then_some(start..=end);
    }

    /// A spare alone again with room for `total` bytes. Spares alone but smaller go to the
    /// thread's stock on the way.
    fn take_free(&mut self, total: usize) -> Option<BytesMut> {
        let mut i = 0;
        while i < self.spares.len() {
            if !self.spares[i].try_reclaim(1) {
                i += 1;
                continue;
            }
            let mut spare = self.spares.swap_remove(i);
            if spare.try_reclaim(total) {
                return Some(spare);
            }
            buffer_stock::put(spare);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` on a thread of its own, so that the thread's buffer stock starts empty.
    fn alone(test: fn()) {
        std::thread::spawn(test).join().unwrap();
    }

    /// Room made for a `message` of that many bytes, which then arrives and is split off the
    /// read buffer, as the codec does.
    fn received(room: &mut ReadRoom, buf: &mut BytesMut, message: usize) -> bytes::Bytes {
        room.make(buf, message);
        let start = buf.len();
        buf.resize(start + message, 7);
        buf.split_to(start + message).freeze()
    }

    #[test]
    fn a_buffer_alone_starts_over_in_place() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            let first = received(&mut room, &mut buf, 64 << 10);
            let at = first.as_ptr() as usize;
            drop(first);
            let second = received(&mut room, &mut buf, 64 << 10);
            assert_eq!(second.as_ptr() as usize, at, "reclaimed, not new");
            assert_eq!(room.spares(), 0);
        });
    }

    #[test]
    fn a_pinned_buffer_is_read_into_again_once_its_message_is_dropped() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            let first = received(&mut room, &mut buf, 64 << 10);
            let first_at = first.as_ptr() as usize;
            // Held across the next read: another allocation, a handle on the first kept.
            let second = received(&mut room, &mut buf, 64 << 10);
            assert_ne!(second.as_ptr() as usize, first_at);
            assert_eq!(room.spares(), 1);
            drop(first);
            let third = received(&mut room, &mut buf, 64 << 10);
            assert_eq!(
                third.as_ptr() as usize,
                first_at,
                "the first allocation came back"
            );
            assert_eq!(room.spares(), 1, "the second one, still pinned");
        });
    }

    #[test]
    fn the_bytes_of_a_frame_begun_move_into_the_new_room() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            let held = received(&mut room, &mut buf, 1000);
            buf.extend_from_slice(b"begun");
            room.make(&mut buf, 64 << 10);
            assert_eq!(&buf[..], b"begun");
            assert!(buf.capacity() >= (64 << 10) + 5);
            assert_eq!(room.spares(), 1, "the first allocation, pinned");
            drop(held);
        });
    }

    #[test]
    fn spares_are_at_most_max_spares_and_none_too_large() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            let held: Vec<_> = (0..MAX_SPARES + 2)
                .map(|_| received(&mut room, &mut buf, 64 << 10))
                .collect();
            assert_eq!(room.spares(), MAX_SPARES);
            drop(held);
            let mut room = ReadRoom::default();
            let held: Vec<_> = (0..3)
                .map(|_| received(&mut room, &mut buf, MAX_LARGE_CAPACITY))
                .collect();
            assert_eq!(room.spares(), 0, "too large to keep");
            drop(held);
        });
    }

    #[test]
    fn at_an_idle_moment_a_pinned_read_buffer_without_room_is_kept_until_free() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            // With room left, the read buffer stays: the next read goes on in it.
            let held = received(&mut room, &mut buf, 100);
            room.release(&mut buf);
            assert_eq!(room.spares(), 0);
            assert!(buf.capacity() >= READ_CHUNK / 2);
            // Without room, its handle is kept and the read buffer left empty.
            let room_left = buf.capacity();
            let more = received(&mut room, &mut buf, room_left - 1);
            assert_eq!(buf.capacity(), 1);
            room.release(&mut buf);
            assert_eq!((room.spares(), buf.capacity()), (1, 0));
            room.release(&mut buf);
            assert_eq!(room.spares(), 1, "still pinned");
            assert!(buffer_stock::take().is_none());
            drop((held, more));
            room.release(&mut buf);
            assert_eq!(room.spares(), 0, "alone again: to the stock");
            assert!(buffer_stock::take().is_some_and(|mut kept| kept.try_reclaim(100 + SLACK)));
        });
    }

    /// After a large message, the room for one as large is made between frames, before a
    /// byte of the next arrives: with the last message still held, the next frame lands in
    /// a buffer with room for all of it (no bytes of it copied at its second read).
    #[test]
    fn after_a_large_message_room_for_the_next_is_made_before_it_arrives() {
        alone(|| {
            let mut room = ReadRoom::default();
            let mut buf = BytesMut::new();
            let held = received(&mut room, &mut buf, 64 << 10);
            room.expect(64 << 10);
            room.make(&mut buf, 0);
            assert!(buf.is_empty());
            assert!(buf.capacity() >= (64 << 10) + MAX_HEADER_LEN);
            assert_eq!(room.spares(), 1, "the held message's allocation");
            drop(held);
        });
    }

    /// Small messages make no room ahead (a held 16-byte message must not cost a large
    /// buffer), and the room made ahead is at most what the stock takes back, whatever the
    /// message: at the bound and past it.
    #[test]
    fn room_made_ahead_is_only_for_large_messages_and_bounded() {
        alone(|| {
            let mut room = ReadRoom::default();
            room.expect(READ_CHUNK);
            assert_eq!(room.next, 0, "a READ_CHUNK message is not large");
            room.expect(READ_CHUNK + 1);
            assert_eq!(room.next, READ_CHUNK + 1 + MAX_HEADER_LEN);
            let bound = MAX_LARGE_CAPACITY - SLACK;
            room.expect(bound - MAX_HEADER_LEN);
            assert_eq!(room.next, bound);
            room.expect(bound);
            assert_eq!(room.next, bound);
            room.expect(16 << 20);
            assert_eq!(room.next, bound);
            let mut buf = BytesMut::new();
            room.make(&mut buf, 0);
            assert!(buf.capacity() <= MAX_LARGE_CAPACITY);
            buffer_stock::put(buf);
            assert!(
                buffer_stock::take_fitting(bound).is_some(),
                "the stock takes it back"
            );
        });
    }

    /// At an idle moment, one spare whose messages are gone stays while messages pin
    /// another (the connection is busy, its next read takes it); once none is pinned, every
    /// spare goes to the thread's stock.
    #[test]
    fn a_busy_connection_keeps_one_free_spare_an_idle_one_none() {
        alone(|| {
            let mut room = ReadRoom::default();
            // As the driver says after each message: large ones.
            room.expect(64 << 10);
            let mut buf = BytesMut::new();
            let first = received(&mut room, &mut buf, 64 << 10);
            let second = received(&mut room, &mut buf, 64 << 10);
            let third = received(&mut room, &mut buf, 64 << 10);
            assert_eq!(room.spares(), 2, "the first two allocations, pinned");
            drop((first, second));
            room.release(&mut buf);
            // The read buffer, pinned by the third and without room for a fourth as large,
            // joins the spares; one free spare stays beside it, the other goes.
            assert_eq!(buf.capacity(), 0);
            assert_eq!(room.spares(), 2, "one free, one pinned by the third");
            assert!(buffer_stock::take().is_some(), "the other free one");
            assert!(buffer_stock::take().is_none());
            // The next read goes into the spare kept.
            let kept = room.spares.iter_mut().find(|spare| spare.capacity() > 0);
            let kept = kept.expect("a free spare");
            // Back at the start of its allocation, where the next read begins.
            assert!(kept.try_reclaim(64 << 10));
            let at = kept.as_ptr() as usize;
            let fourth = received(&mut room, &mut buf, 64 << 10);
            assert_eq!(fourth.as_ptr() as usize, at);
            drop((third, fourth));
            room.release(&mut buf);
            assert_eq!(room.spares(), 0, "nothing held: nothing kept");
        });
    }
}
