//! A small per-thread stock of empty buffers, so that a busy connection does not allocate its
//! read and write buffers again after every idle moment.
//!
//! An idle connection holds no buffer (DESIGN.md, "Performance by construction"): at each idle
//! moment the driver releases them ([`Protocol::release_buffers`]). Freed, they would be
//! allocated again for the next message of an echo, several times per round trip. Put here
//! instead, the next read or send on this thread takes them back
//! ([`Protocol::provide_buffers`]). The stock is bounded: at most [`MAX_BUFFERS`] buffers of at
//! most [`MAX_CAPACITY`] bytes each per thread (2 MiB), whatever the number of connections;
//! larger buffers are freed as before.
//!
//! [`Protocol::release_buffers`]: tether_codec::Protocol::release_buffers
//! [`Protocol::provide_buffers`]: tether_codec::Protocol::provide_buffers

use std::cell::RefCell;

use bytes::BytesMut;

/// Buffers kept per thread.
const MAX_BUFFERS: usize = 16;
/// The largest capacity kept: a read buffer sized for a 64 KiB message fits.
pub(crate) const MAX_CAPACITY: usize = 128 << 10;

thread_local! {
    static STOCK: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// Keeps `buf` (empty) for the next connection on this thread that needs one, or frees it when
/// the stock is full or `buf` too large.
pub(crate) fn put(buf: BytesMut) {
    if !buf.is_empty() || buf.capacity() > MAX_CAPACITY {
        return;
    }
    // During the thread's teardown the stock is gone: the buffer is simply freed.
    let _ = STOCK.try_with(|stock| {
        let mut stock = stock.borrow_mut();
        if stock.len() < MAX_BUFFERS {
            stock.push(buf);
        }
    });
}

/// A kept buffer, if this thread has one.
pub(crate) fn take() -> Option<BytesMut> {
    STOCK
        .try_with(|stock| stock.borrow_mut().pop())
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
}
