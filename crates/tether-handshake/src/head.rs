//! Buffering an HTTP head that arrives in pieces, without quadratic re-parsing.
//!
//! A naive reader re-runs the HTTP parser over the whole buffer after every read. A peer that
//! sends one long header a byte at a time then costs O(n²) CPU: that was tungstenite's
//! CVE-2023-43669. Here each new byte is looked at a bounded number of times:
//!
//! ```text
//!  buffer:  GET / HTTP/1.1\r\nHost: a\r\n ... \r\n\r\n | first frame bytes ...
//!           |<------------- head ------------------->| |<-- leftover -->
//!           already scanned ----------->|<-2->| new bytes scanned for the blank line
//! ```
//!
//! 1. New bytes are scanned (with two bytes of overlap) for the blank line that ends the head.
//! 2. Only once it has appeared is the head handed to httparse, a single time.
//! 3. If the head grows past the limit without a blank line, reading stops with an error
//!    before the bytes are stored.

use bytes::BytesMut;
use http::Version;

use crate::error::Error;

/// The bytes of a peer's HTTP head as they arrive, plus whatever followed it.
#[derive(Debug)]
pub(crate) struct HeadBuffer {
    buf: BytesMut,
    /// Bytes before this offset hold no complete blank line.
    scanned: usize,
    max_bytes: usize,
}

impl HeadBuffer {
    pub(crate) fn new(max_bytes: usize) -> Self {
        HeadBuffer {
            buf: BytesMut::new(),
            scanned: 0,
            max_bytes,
        }
    }

    /// Appends `data`. Returns `Ok(Some(len))` once the buffer holds a blank line, where `len`
    /// is the offset just past it; `Ok(None)` while the head is incomplete.
    pub(crate) fn push(&mut self, data: &[u8]) -> Result<Option<usize>, Error> {
        // A terminator may start up to two bytes before the new data ("\n\r" + "\n").
        let from = self.scanned.saturating_sub(2);
        let window_end = self.buf.len() + data.len();
        let found = find_blank_line(&self.buf[from..], data).map(|end| from + end);
        match found {
            Some(end) if end <= self.max_bytes => {
                self.buf.extend_from_slice(data);
                self.scanned = end;
                Ok(Some(end))
            }
            Some(_) => Err(Error::HeadTooLarge {
                limit: self.max_bytes,
            }),
            // A head that fits ends within the first `max_bytes` bytes; this many without an
            // end means it does not fit, whatever comes next.
            None if window_end >= self.max_bytes => Err(Error::HeadTooLarge {
                limit: self.max_bytes,
            }),
            None => {
                self.buf.extend_from_slice(data);
                self.scanned = window_end;
                Ok(None)
            }
        }
    }

    /// The buffered bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the buffer, leaving it empty.
    pub(crate) fn take(&mut self) -> BytesMut {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }
}

/// Turns httparse's answer for a head that ends with its blank line into ours. httparse has
/// all it needs then, so a partial result means the blank line came before the start line.
pub(crate) fn check_complete(
    parsed: httparse::Result<usize>,
    max_headers: usize,
) -> Result<(), Error> {
    match parsed {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        Ok(httparse::Status::Partial) => Err(Error::Malformed {
            reason: "empty lines before the start line",
        }),
        Err(err) => Err(Error::from_httparse(err, max_headers)),
    }
}

/// The header array for httparse: `max_headers` slots, but never more than a head of
/// `head_len` bytes can fill (each field takes at least three bytes, as in "a:\n"), so a
/// generous limit costs nothing for ordinary heads.
pub(crate) fn header_slots(head_len: usize, max_headers: usize) -> Vec<httparse::Header<'static>> {
    vec![httparse::EMPTY_HEADER; max_headers.min(head_len / 3 + 1)]
}

/// httparse's minor version of HTTP/1.x as an `http` version.
pub(crate) fn http_version(minor: Option<u8>) -> Version {
    match minor {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    }
}

/// The offset just past the first blank line ("\n\n" or "\n\r\n") in `old ++ new`, looking
/// at `old` and `new` as one sequence without joining them.
fn find_blank_line(old: &[u8], new: &[u8]) -> Option<usize> {
    let at = |i: usize| -> Option<u8> {
        if i < old.len() {
            old.get(i).copied()
        } else {
            new.get(i - old.len()).copied()
        }
    };
    let len = old.len() + new.len();
    (0..len).find_map(|i| {
        if at(i)? != b'\n' {
            return None;
        }
        match at(i + 1)? {
            b'\n' => Some(i + 2),
            b'\r' if at(i + 2)? == b'\n' => Some(i + 3),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_split_at_every_point() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        let end = head.len() - 4;
        for split in 0..=head.len() {
            let mut buffer = HeadBuffer::new(1024);
            let (result, pushed) = match buffer.push(&head[..split]).unwrap() {
                Some(found) => (found, split),
                None => (buffer.push(&head[split..]).unwrap().unwrap(), head.len()),
            };
            assert_eq!(result, end, "split at {split}");
            assert_eq!(buffer.bytes(), &head[..pushed], "split at {split}");
        }
    }

    #[test]
    fn bare_line_feeds_end_a_head() {
        let mut buffer = HeadBuffer::new(1024);
        assert_eq!(
            buffer.push(b"GET / HTTP/1.1\nHost: a\n\nx").unwrap(),
            Some(24)
        );
    }

    #[test]
    fn byte_by_byte_scans_each_byte_a_bounded_number_of_times() {
        let mut buffer = HeadBuffer::new(64 * 1024);
        for _ in 0..60_000 {
            assert_eq!(buffer.push(b"a").unwrap(), None);
        }
        // The scan window stayed small: the offset advanced with every byte.
        assert_eq!(buffer.scanned, 60_000);
    }

    #[test]
    fn head_at_the_limit_fits_and_one_past_it_does_not() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut at_limit = HeadBuffer::new(head.len());
        assert_eq!(at_limit.push(head).unwrap(), Some(head.len()));

        let mut over = HeadBuffer::new(head.len() - 1);
        assert!(
            matches!(over.push(head), Err(Error::HeadTooLarge { limit }) if limit == head.len() - 1)
        );

        // Without a blank line, reaching the limit is already an error.
        let mut endless = HeadBuffer::new(8);
        assert!(endless.push(b"GET / HT").is_err());
        let mut below = HeadBuffer::new(8);
        assert_eq!(below.push(b"GET / H").unwrap(), None);
    }
}
