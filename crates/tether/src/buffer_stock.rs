//! A small per-thread stock of empty buffers, so that a busy connection does not allocate its
//! read and write buffers again after every idle moment.
//!
//! An idle connection holds no buffer (DESIGN.md, "Performance by construction"): at each idle
//! moment the driver releases its empty read and write buffers ([`release`]). Freed, they
//! would be allocated again for the next message of an echo, several times per round trip.
//! Put here instead, the next read or send on this thread takes them back
//! ([`Protocol::provide_buffers`]).
//!
//! Two tiers, both bounded whatever the number of connections:
//! - at most [`MAX_BUFFERS`] buffers of at most [`MAX_CAPACITY`] bytes of allocation each
//!   (4 MiB per thread), handed out for any read or send;
//! - at most [`MAX_LARGE_BUFFERS`] of at most [`MAX_LARGE_CAPACITY`] (8 MiB per thread), for
//!   messages past [`MAX_CAPACITY`] only ([`take_fitting`]). Without them every such message
//!   allocates its read buffer (and a client its masked copy) anew, and a fresh megabyte is
//!   a page fault every 4 KiB: on a VM whose freed memory goes back to the host, that made a
//!   1 MiB echo three times slower (benches/RESULTS.md, session 11).
//!
//! Larger buffers are freed as before.
//!
//! [`Protocol::provide_buffers`]: tether_codec::Protocol::provide_buffers

use std::cell::RefCell;
use std::thread::LocalKey;

use bytes::BytesMut;

/// Buffers kept per thread for any use.
const MAX_BUFFERS: usize = 16;
/// The largest allocation kept for any use: a read buffer that grew (by doubling) to take a
/// 64 KiB message fits.
pub(crate) const MAX_CAPACITY: usize = 256 << 10;
/// Large buffers kept per thread.
const MAX_LARGE_BUFFERS: usize = 4;
/// The largest allocation kept as a large buffer: a 1 MiB message with its header and the read
/// room's slack fits.
pub(crate) const MAX_LARGE_CAPACITY: usize = 2 << 20;

/// Large allocations are made in multiples of this, so that a buffer that held a client's
/// masked copy of a message also has room to receive one of the same size (which needs a
/// little more: a header, the read room's slack), and the other way round.
pub(crate) const LARGE_GRAIN: usize = 64 << 10;

/// One tier of one thread's stock.
type Tier = RefCell<Vec<BytesMut>>;

thread_local! {
    /// Buffers of at most [`MAX_CAPACITY`], for any use.
    static SMALL: Tier = const { RefCell::new(Vec::new()) };
    /// Buffers of at most [`MAX_LARGE_CAPACITY`], for large messages.
    static LARGE: Tier = const { RefCell::new(Vec::new()) };
}

/// Keeps `buf` (empty) for the next connection on this thread that needs one, or frees it when
/// its tier is full or it is too large for either.
#[inline]
pub(crate) fn put(mut buf: BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        let small = !too_large(&mut buf);
        keep(&mut buf, small);
    }
}

/// Keeps `buf` (empty), known to be larger than the small tier keeps, in the large tier, or
/// frees it when that is full or it is too large for it too.
pub(crate) fn put_large(mut buf: BytesMut) {
    keep(&mut buf, false);
}

/// Takes the capacity of `buf` if it is empty, for the stock (or frees it when its tier is
/// full or it is too large for either), leaving `buf` without any. `known_small` says the
/// caller knows that its allocation is at most [`MAX_CAPACITY`] (it knows how the buffer was
/// filled), which spares measuring it.
///
/// `buf` must not share its allocation with messages (see [`is_pinned`]): its own room would
/// be all that is measured, and once they are gone the stock would hold the whole
/// allocation. (A handle without room stays as it is when it cannot take its allocation back.)
pub(crate) fn release(buf: &mut BytesMut, known_small: bool) {
    // Bytes read or written move an empty buffer's start forward; when nothing else holds
    // its allocation (a message split off it), it starts over at no cost.
    if !buf.is_empty() || (buf.capacity() == 0 && !buf.try_reclaim(1)) {
        return;
    }
    let small = known_small || !too_large(buf);
    keep(buf, small);
    if buf.capacity() > 0 {
        // Not kept: freed.
        *buf = BytesMut::new();
    }
}

/// Moves `buf` (empty, with capacity) into its tier if that has room, leaving it without
/// capacity: the small tier if `small` (its allocation is at most [`MAX_CAPACITY`]), else the
/// large one if it fits there. Otherwise `buf` is left as it is.
#[inline(always)]
fn keep(buf: &mut BytesMut, small: bool) {
    if small {
        push(&SMALL, MAX_BUFFERS, buf);
    } else if !allocation_over(buf, MAX_LARGE_CAPACITY) {
        push(&LARGE, MAX_LARGE_BUFFERS, buf);
    }
}

/// Moves `buf` into `tier` if it holds fewer than `max`.
#[inline(always)]
fn push(tier: &'static LocalKey<Tier>, max: usize, buf: &mut BytesMut) {
    // During the thread's teardown the stock is gone: the buffer stays, to be freed.
    let _ = tier.try_with(|tier| {
        let mut tier = tier.borrow_mut();
        if tier.len() < max {
            // Moved straight from the connection into the stock.
            tier.push(std::mem::take(buf));
        }
    });
}

/// Whether received messages still share the allocation of `buf` (empty). Cheap first: a
/// handle that can grow past its own room is alone. Else it is at its allocation's start
/// (alone, nothing read since) or pinned; without room, `try_reclaim(1)` tells them apart. A
/// handle without room and without an allocation cannot be told from a pinned one: it counts as
/// alone.
pub(crate) fn is_pinned(buf: &mut BytesMut) -> bool {
    if buf.capacity() == 0 || buf.try_reclaim(buf.capacity() + 1) {
        return false;
    }
    let room = buf.capacity();
    drop(buf.split_off(0));
    // Alone, it takes its room back.
    !buf.try_reclaim(room)
}

/// Whether the allocation under `buf` (empty) is larger than the small tier keeps. Measured
/// as the allocation, not as the room the handle sees (the rest read or written before):
/// reclaiming goes back to the allocation's start when nothing else holds it. A handle that
/// shares its allocation counts only its own room.
#[inline]
pub(crate) fn too_large(buf: &mut BytesMut) -> bool {
    allocation_over(buf, MAX_CAPACITY)
}

/// Whether the allocation under `buf` (empty) is larger than `bound` (see [`too_large`]).
#[inline]
fn allocation_over(buf: &mut BytesMut, bound: usize) -> bool {
    buf.try_reclaim(bound + 1)
}

/// A kept buffer of the small tier, if this thread has one.
#[inline]
pub(crate) fn take() -> Option<BytesMut> {
    SMALL
        .try_with(|tier| tier.borrow_mut().pop())
        .ok()
        .flatten()
}

/// A new buffer with room for at least `len` bytes: past the small tier's bound, rounded up
/// to [`LARGE_GRAIN`] (see there).
pub(crate) fn allocate(len: usize) -> BytesMut {
    if len <= MAX_CAPACITY {
        BytesMut::with_capacity(len)
    } else {
        BytesMut::with_capacity(len.next_multiple_of(LARGE_GRAIN))
    }
}

/// A kept buffer with room for `len` bytes, if this thread has one: for a read that must grow,
/// rather than the last one kept (often a small write buffer), and for a message past the
/// small tier's bound, from the large tier.
pub(crate) fn take_fitting(len: usize) -> Option<BytesMut> {
    let tier = if len <= MAX_CAPACITY { &SMALL } else { &LARGE };
    tier.try_with(|tier| {
        let mut tier = tier.borrow_mut();
        let at = tier.iter_mut().rposition(|buf| buf.try_reclaim(len))?;
        Some(tier.swap_remove(at))
    })
    .ok()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_small_tier_keeps_at_most_max_buffers_of_at_most_max_capacity() {
        std::thread::spawn(|| {
            put(BytesMut::with_capacity(MAX_CAPACITY + 1));
            assert!(
                take().is_none(),
                "past the small tier: never handed out for any use"
            );
            let mut full = BytesMut::with_capacity(16);
            full.extend_from_slice(b"x");
            put(full);
            assert!(take().is_none(), "not empty: freed");
            for _ in 0..=MAX_BUFFERS {
                put(BytesMut::with_capacity(MAX_CAPACITY));
            }
            let kept = std::iter::from_fn(take).count();
            assert_eq!(kept, MAX_BUFFERS);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_large_tier_keeps_at_most_max_large_buffers_of_at_most_max_large_capacity() {
        std::thread::spawn(|| {
            let large = || take_fitting(MAX_CAPACITY + 1);
            put(BytesMut::with_capacity(MAX_LARGE_CAPACITY + 1));
            assert!(large().is_none(), "too large for either tier: freed");
            put(BytesMut::with_capacity(MAX_LARGE_CAPACITY));
            assert!(
                take().is_none(),
                "the large tier serves large messages only"
            );
            let at_limit = take_fitting(MAX_LARGE_CAPACITY).expect("kept at the bound");
            assert!(at_limit.capacity() >= MAX_LARGE_CAPACITY);
            // A small view of a large allocation counts as the allocation.
            let mut read = BytesMut::with_capacity(1 << 20);
            read.resize((1 << 20) - 100, 0);
            drop(read.split());
            put(read);
            assert!(take().is_none());
            let whole = take_fitting((1 << 20) - 1).expect("reclaimed whole");
            assert!(whole.capacity() >= (1 << 20) - 1);
            for _ in 0..=MAX_LARGE_BUFFERS {
                put(BytesMut::with_capacity(1 << 20));
            }
            assert_eq!(std::iter::from_fn(large).count(), MAX_LARGE_BUFFERS);
        })
        .join()
        .unwrap();
    }

    /// A handle whose allocation a held message shares has room of its own, and that room is
    /// all `try_reclaim` measures: `is_pinned` tells it apart, and once the message is gone the
    /// handle is alone with its room back.
    #[test]
    fn a_handle_on_an_allocation_a_held_message_shares_is_pinned() {
        let mut read = BytesMut::with_capacity((1 << 20) + (64 << 10));
        read.resize(1 << 20, 7);
        let message = read.split_to(1 << 20).freeze();
        assert_eq!(
            read.capacity(),
            64 << 10,
            "room of its own, under the small bound"
        );
        assert!(!too_large(&mut read), "what the measure alone would say");
        assert!(is_pinned(&mut read));
        drop(message);
        let mut alone = BytesMut::with_capacity(8 << 10);
        alone.resize(100, 7);
        drop(alone.split_to(100));
        assert!(!is_pinned(&mut alone));
        assert!(alone.capacity() >= (8 << 10) - 100, "its room back");
        let mut fresh = BytesMut::with_capacity(8 << 10);
        assert!(!is_pinned(&mut fresh), "at its allocation's start, alone");
        assert_eq!(fresh.capacity(), 8 << 10, "its room back");
    }

    #[test]
    fn a_read_that_grows_takes_a_kept_buffer_large_enough() {
        std::thread::spawn(|| {
            put(BytesMut::with_capacity(64 << 10));
            put(BytesMut::with_capacity(8 << 10));
            assert!(take_fitting(100 << 10).is_none());
            let fitting = take_fitting(60 << 10).expect("the 64 KiB one");
            assert!(fitting.capacity() >= 60 << 10);
            assert_eq!(take().map(|buf| buf.capacity()), Some(8 << 10));
        })
        .join()
        .unwrap();
    }
}
