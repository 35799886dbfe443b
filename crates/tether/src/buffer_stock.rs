//! A small per-thread stock of empty buffers, so that a busy connection does not allocate its
//! read and write buffers again after every idle moment.
//!
//! An idle connection holds no buffer (DESIGN.md, "Performance by construction"): at each idle
//! moment the driver releases its empty read and write buffers ([`release`]). Freed, they
//! would be allocated again for the next message of an echo, several times per round trip.
//! Put here instead, the next read or send on this thread takes them back
//! ([`Protocol::provide_buffers`]). The stock is bounded: at most [`MAX_BUFFERS`] buffers of at
//! most [`MAX_CAPACITY`] bytes of allocation each per thread (4 MiB), whatever the number of
//! connections; larger buffers are freed as before.
//!
//! [`Protocol::provide_buffers`]: tether_codec::Protocol::provide_buffers

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread.
const MAX_BUFFERS: usize = 16;
/// The largest allocation kept: a read buffer that grew (by doubling) to take a 64 KiB message
/// fits.
pub(crate) const MAX_CAPACITY: usize = 256 << 10;

thread_local! {
    static STOCK: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `buf` (empty) for the next connection on this thread that needs one, or frees it when
/// the stock is full or `buf` too large.
#[inline]
pub(crate) fn put(mut buf: BytesMut) {
    if !buf.is_empty() || buf.capacity() == 0 || too_large(&mut buf) {
        return;
    }
    keep(buf);
}

/// Takes the capacity of `buf` if it is empty, for the stock (or frees it when the stock is
/// full or it is too large), leaving `buf` without any. `known_small` says the caller knows
/// that its allocation is at most [`MAX_CAPACITY`] (it knows how the buffer was filled),
/// which spares measuring it. A buffer without room whose allocation messages still share
/// stays as it is: it holds no memory of its own.
#[inline]
pub(crate) fn release(buf: &mut BytesMut, known_small: bool) {
    // Bytes read or written move an empty buffer's start forward; when nothing else holds
    // its allocation (a message split off it), it starts over at no cost.
    if !buf.is_empty() || (buf.capacity() == 0 && !buf.try_reclaim(1)) {
        return;
    }
    if known_small || !too_large(buf) {
        // Moved straight from the connection into the stock.
        let _ = STOCK.try_with(|stock| {
            let mut stock = stock.borrow_mut();
            if stock.len() < MAX_BUFFERS {
                stock.push(std::mem::take(buf));
            }
        });
    }
    if buf.capacity() > 0 {
        // Too large, the stock full, or the thread tearing down: freed.
        *buf = BytesMut::new();
    }
}

/// Adds `buf` to the stock if it has room.
#[inline]
fn keep(buf: BytesMut) {
    // During the thread's teardown the stock is gone: the buffer is simply freed.
    let _ = STOCK.try_with(|stock| {
        let mut stock = stock.borrow_mut();
        if stock.len() < MAX_BUFFERS {
            stock.push(buf);
        }
    });
}

/// Whether the allocation under `buf` (empty) is larger than the stock keeps. Measured as the
/// allocation, not as the room the handle sees (the rest read or written before): reclaiming
/// goes back to the allocation's start when nothing else holds it. A handle that shares its
/// allocation counts only its own room.
#[inline]
pub(crate) fn too_large(buf: &mut BytesMut) -> bool {
    buf.try_reclaim(MAX_CAPACITY + 1)
}

/// A kept buffer, if this thread has one.
#[inline]
pub(crate) fn take() -> Option<BytesMut> {
    STOCK
        .try_with(|stock| stock.borrow_mut().pop())
        .ok()
        .flatten()
}

/// A kept buffer with room for `len` bytes, if this thread has one: for a read that must grow,
/// rather than the last one kept (often a small write buffer).
pub(crate) fn take_fitting(len: usize) -> Option<BytesMut> {
    STOCK
        .try_with(|stock| {
            let mut stock = stock.borrow_mut();
            let at = stock.iter_mut().rposition(|buf| buf.try_reclaim(len))?;
            Some(stock.swap_remove(at))
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stock_keeps_at_most_max_buffers_of_at_most_max_capacity() {
        std::thread::spawn(|| {
            put(BytesMut::with_capacity(MAX_CAPACITY + 1));
            assert!(take().is_none(), "too large: freed");
            let mut read = BytesMut::with_capacity(1 << 20);
            read.resize((1 << 20) - 100, 0);
            let _ = read.split();
            put(read);
            assert!(
                take().is_none(),
                "a small view of a large allocation: freed"
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
