//! Validated UTF-8 payloads and incremental validation across fragments (RFC 6455 §8.1).

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::Error;

/// A UTF-8 string backed by [`Bytes`]: the payload of a text message, shared without copying.
///
/// It is validated once, when built from bytes; reading it as `&str` costs nothing after that.
///
/// ```
/// use bytes::Bytes;
/// use tether_codec::Utf8Bytes;
/// let text = Utf8Bytes::try_from(Bytes::from_static("héllo".as_bytes())).unwrap();
/// assert_eq!(text.as_str(), "héllo");
/// assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(ByteString);

impl Utf8Bytes {
    /// Wraps a static string without copying.
    pub const fn from_static(text: &'static str) -> Utf8Bytes {
        Utf8Bytes(ByteString::from_static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bytes of the text.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// The underlying bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Utf8Bytes(ByteString::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    /// Copies the text; use [`Utf8Bytes::from_static`] for literals to avoid the copy.
    fn from(text: &str) -> Self {
        Utf8Bytes(ByteString::from(text))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = Error;

    /// Validates `bytes` as UTF-8 and keeps them without copying.
    fn try_from(bytes: Bytes) -> Result<Self, Error> {
        ByteString::try_from(bytes)
            .map(Utf8Bytes)
            .map_err(|_| Error::InvalidUtf8)
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = Error;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Error> {
        Utf8Bytes::try_from(Bytes::from(bytes))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Bytes {
        text.into_bytes()
    }
}

/// Validates a text message as its fragments arrive, so invalid text fails on the fragment where
/// it becomes certainly invalid.
///
/// The message is accumulated in one buffer; the validator remembers how much of it is known to
/// be complete, valid UTF-8 and only looks at the rest (at most three bytes of an unfinished code
/// point plus the new fragment).
#[derive(Debug, Default)]
pub(crate) struct Utf8Validator {
    valid_up_to: usize,
}

impl Utf8Validator {
    /// Checks `message`, the whole text received so far, after a fragment was appended.
    ///
    /// "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream
    /// is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
    /// Connection_" (RFC 6455 §8.1). A code point cut at the end of a non-final fragment is not
    /// invalid yet; at the end of the final fragment it is.
    pub(crate) fn feed(&mut self, message: &[u8], fin: bool) -> Result<(), Error> {
        let tail = message.get(self.valid_up_to..).ok_or(Error::InvalidUtf8)?;
        match simdutf8::compat::from_utf8(tail) {
            Ok(_) => {
                self.valid_up_to = message.len();
                Ok(())
            }
            Err(err) if err.error_len().is_none() && !fin => {
                self.valid_up_to += err.valid_up_to();
                Ok(())
            }
            Err(_) => Err(Error::InvalidUtf8),
        }
    }
}

/// Validates a text message that is being sent fragment by fragment, without keeping it: only
/// the unfinished code point at the end of the last fragment (at most three bytes) is carried.
///
/// The sender's mirror of [`Utf8Validator`]: a fragment is refused exactly where a receiver
/// would fail the connection (RFC 6455 §8.1), and a refused fragment leaves the state as it was.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Stream {
    carry: [u8; 3],
    carried: u8,
}

impl Utf8Stream {
    /// Checks the next fragment of the text; with `fin`, it is the last one and may not end in
    /// the middle of a code point.
    pub(crate) fn feed(&mut self, fragment: &[u8], fin: bool) -> Result<(), Error> {
        let carried = usize::from(self.carried);
        let mut rest = fragment;
        if carried > 0 {
            // Finish the carried code point with up to 4 - carried bytes of the fragment: a code
            // point is at most four bytes, so the outcome is then certain unless the fragment
            // ran out first.
            let take = rest.len().min(4 - carried);
            let mut joined = [0u8; 4];
            joined[..carried].copy_from_slice(&self.carry[..carried]);
            joined[carried..carried + take].copy_from_slice(&rest[..take]);
            let joined = &joined[..carried + take];
            match simdutf8::compat::from_utf8(joined) {
                Ok(_) => rest = &rest[take..],
                Err(err) if err.error_len().is_some() => return Err(Error::InvalidTextFragment),
                Err(err) if err.valid_up_to() >= carried => {
                    rest = &rest[err.valid_up_to() - carried..];
                }
                // Still unfinished: the fragment is shorter than what the code point needs.
                Err(_) if fin => return Err(Error::InvalidTextFragment),
                Err(_) => {
                    self.carry[..joined.len()].copy_from_slice(joined);
                    self.carried = joined.len() as u8;
                    return Ok(());
                }
            }
        }
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => self.carried = 0,
            Err(err) if err.error_len().is_none() && !fin => {
                // An unfinished code point is at most three bytes.
                let tail = &rest[err.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carried = tail.len() as u8;
            }
            Err(_) => return Err(Error::InvalidTextFragment),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_8_1_truncated_code_point_is_fine_until_the_final_fragment() {
        let text = "aé€😀".as_bytes();
        for cut in 0..=text.len() {
            let mut v = Utf8Validator::default();
            v.feed(&text[..cut], false).unwrap();
            v.feed(text, true).unwrap();
        }
        let mut v = Utf8Validator::default();
        v.feed(&text[..2], false).unwrap();
        assert!(matches!(v.feed(&text[..2], true), Err(Error::InvalidUtf8)));
    }

    #[test]
    fn rfc6455_8_1_invalid_byte_fails_at_once() {
        let mut v = Utf8Validator::default();
        assert!(matches!(v.feed(b"ok\xc0", false), Err(Error::InvalidUtf8)));
        let mut v = Utf8Validator::default();
        // 0xed 0xa0 is the start of a surrogate: certain to be invalid though incomplete.
        assert!(matches!(
            v.feed(b"\xed\xa0", false),
            Err(Error::InvalidUtf8)
        ));
    }

    /// Feeds `pieces` to a fresh stream; the index of the first refused piece, if any.
    fn stream_refuses_at(pieces: &[&[u8]]) -> Option<usize> {
        let mut stream = Utf8Stream::default();
        for (i, piece) in pieces.iter().enumerate() {
            let before = (stream.carry, stream.carried);
            if stream.feed(piece, i + 1 == pieces.len()).is_err() {
                assert_eq!(
                    (stream.carry, stream.carried),
                    before,
                    "refusal changes nothing"
                );
                return Some(i);
            }
        }
        None
    }

    #[test]
    fn rfc6455_8_1_sent_text_cut_anywhere_is_valid() {
        let text = "aé€😀z".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(
                    stream_refuses_at(&[&text[..a], &text[a..b], &text[b..]]),
                    None,
                    "cut at {a} and {b}"
                );
            }
        }
        // A four-byte code point one byte per fragment.
        let emoji = "😀".as_bytes();
        assert_eq!(
            stream_refuses_at(&[&emoji[..1], &emoji[1..2], &emoji[2..3], &emoji[3..]]),
            None
        );
    }

    #[test]
    fn rfc6455_8_1_sent_text_refused_where_certainly_invalid() {
        let euro = "€".as_bytes();
        // Truncated at the end of the final fragment.
        assert_eq!(stream_refuses_at(&[b"ok", &euro[..2]]), Some(1));
        assert_eq!(stream_refuses_at(&[&euro[..1], &euro[1..2], b""]), Some(2));
        // A bad continuation byte after a carried lead byte fails on that fragment.
        assert_eq!(stream_refuses_at(&[&euro[..1], b"a", b"b"]), Some(1));
        // A surrogate start is certain before it is complete.
        assert_eq!(stream_refuses_at(&[b"\xed", b"\xa0", b"\x80"]), Some(1));
        // An invalid byte after a completed carried code point, in the same fragment.
        assert_eq!(
            stream_refuses_at(&[&euro[..2], &[euro[2], b'x', 0xff], b""]),
            Some(1)
        );
    }
}
