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

    /// The text from byte `start` on, sharing the same bytes (no copy, no second UTF-8
    /// check); `None` when `start` is past the end or inside a character.
    ///
    /// ```
    /// use tether_codec::Utf8Bytes;
    /// let text = Utf8Bytes::from("\0héllo".to_string());
    /// assert_eq!(text.slice_from(1).unwrap(), "héllo");
    /// assert_eq!(text.slice_from(3), None); // inside 'é'
    /// assert_eq!(text.slice_from(8), None);
    /// ```
    pub fn slice_from(&self, start: usize) -> Option<Utf8Bytes> {
        let rest = self.as_str().get(start..)?;
        Some(Utf8Bytes(self.0.slice_ref(rest)))
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

impl Utf8Bytes {
    /// Text from `bytes` that a [`Utf8Stream`] has accepted whole: every byte fed to it, in
    /// order, the last piece with `fin`. No second pass: on a text message that arrived
    /// over several reads that pass was 80 % of the decoding time (benches/codec.rs,
    /// `text_in_pieces`: 24.8 of 32.0 µs at 64 KiB, 413 of 516 µs at 1 MiB).
    ///
    /// Only the protocol calls it, right after the stream's last `Ok` with `fin`.
    #[allow(unsafe_code)]
    pub(crate) fn from_validated(bytes: Bytes, _proof: Validated) -> Utf8Bytes {
        debug_assert!(std::str::from_utf8(&bytes).is_ok(), "not validated");
        // SAFETY: `Validated` is only made by `Utf8Stream::feed_with` returning `Ok` for a
        // piece with `fin`, which means the stream accepted every byte it was fed as UTF-8
        // with no code point left unfinished; the callers feed it exactly these bytes, in
        // order, from the first to the last (tests: `utf8::tests` run the debug assertion
        // above on every split of valid and invalid texts; tests/it/codec properties feed
        // messages in random pieces; the fuzz targets codec_protocol and codec_deflate are
        // built with debug assertions, so the fuzzer checks it on every input).
        Utf8Bytes(unsafe { ByteString::from_bytes_unchecked(bytes) })
    }
}

/// Proof that a [`Utf8Stream`] accepted a whole text: returned by its last piece (`fin`).
#[derive(Debug)]
pub(crate) struct Validated(());

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

/// Validates text as it arrives or is sent, piece by piece, in one pass: each byte is checked
/// once, and only the unfinished code point at the end of a piece (at most three bytes) is
/// carried to the next.
///
/// "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream is
/// not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_"
/// (RFC 6455 §8.1). A piece is refused as soon as the text can no longer become valid (an
/// invalid byte, or a surrogate or overlong lead already certain before its code point ends),
/// and at the end (`fin`) when a code point is left unfinished. A refused piece leaves the
/// state as it was.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Utf8Stream {
    carry: [u8; 3],
    carried: u8,
}

/// The text can no longer be valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Stream {
    /// Checks the next piece of a text being sent; with `fin`, it is the last one. Refused
    /// pieces are [`Error::InvalidTextFragment`]: the sender's mirror of a receiver's 1007.
    pub(crate) fn feed(&mut self, piece: &[u8], fin: bool) -> Result<(), Error> {
        self.feed_with(piece, fin, |_| {})
            .map_err(|InvalidUtf8| Error::InvalidTextFragment)
    }

    /// Checks the last piece of a text (possibly empty, when every piece was fed already):
    /// the proof that all the bytes fed form whole, valid UTF-8.
    pub(crate) fn finish(&mut self, last: &[u8]) -> Result<Validated, InvalidUtf8> {
        self.feed_with(last, true, |_| {})?;
        Ok(Validated(()))
    }

    /// Checks the next piece and hands the text it completes to `push`, as `str` slices in
    /// order, so a caller can build the text without checking it again.
    pub(crate) fn feed_with(
        &mut self,
        piece: &[u8],
        fin: bool,
        mut push: impl FnMut(&str),
    ) -> Result<(), InvalidUtf8> {
        let mut next = *self;
        let rest = next.finish_carried(piece, fin, &mut push)?;
        let Some(rest) = rest else {
            *self = next;
            return Ok(());
        };
        // Cut before a code point the piece leaves unfinished, so the checked part is whole
        // and becomes a `str` in the same pass.
        let cut = unfinished_tail(rest);
        let (whole, tail) = rest.split_at(cut);
        push(simdutf8::compat::from_utf8(whole).map_err(|_| InvalidUtf8)?);
        if !tail.is_empty() {
            // Certain already (a surrogate lead, an overlong form), or left unfinished at the end.
            let certain = simdutf8::compat::from_utf8(tail).is_err_and(|e| e.error_len().is_some());
            if fin || certain {
                return Err(InvalidUtf8);
            }
        }
        next.carry[..tail.len()].copy_from_slice(tail);
        // At most three bytes.
        next.carried = tail.len() as u8;
        *self = next;
        Ok(())
    }

    /// Completes the carried code point with the first bytes of `piece`: the rest of the
    /// piece, or `None` when the piece ran out before the code point ended.
    fn finish_carried<'a>(
        &mut self,
        piece: &'a [u8],
        fin: bool,
        push: &mut impl FnMut(&str),
    ) -> Result<Option<&'a [u8]>, InvalidUtf8> {
        let carried = usize::from(self.carried);
        if carried == 0 {
            return Ok(Some(piece));
        }
        // A code point is at most four bytes, so the outcome is certain once four are joined.
        let take = piece.len().min(4 - carried);
        let mut joined = [0u8; 4];
        joined[..carried].copy_from_slice(&self.carry[..carried]);
        joined[carried..carried + take].copy_from_slice(&piece[..take]);
        let joined = &joined[..carried + take];
        match simdutf8::compat::from_utf8(joined) {
            Ok(text) => {
                push(text);
                self.carried = 0;
                Ok(Some(&piece[take..]))
            }
            Err(err) if err.valid_up_to() >= carried => {
                // The carried code point ended inside `joined`; what follows it (at most three
                // bytes of `joined`) is checked with the rest of the piece.
                let end = err.valid_up_to();
                push(simdutf8::compat::from_utf8(&joined[..end]).map_err(|_| InvalidUtf8)?);
                self.carried = 0;
                Ok(Some(&piece[end - carried..]))
            }
            Err(err) if err.error_len().is_some() => Err(InvalidUtf8),
            // Still unfinished: the piece is shorter than what the code point needs.
            Err(_) if fin => Err(InvalidUtf8),
            Err(_) => {
                self.carry[..joined.len()].copy_from_slice(joined);
                self.carried = joined.len() as u8;
                Ok(None)
            }
        }
    }
}

/// Where a code point that `bytes` leaves unfinished starts (`bytes.len()` when the last one
/// is complete, or when the end is invalid anyway: the check of the whole then fails).
fn unfinished_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 != 0x80 {
            let needs = match byte {
                0xF0..=0xFF => 4,
                0xE0..=0xEF => 3,
                0xC0..=0xDF => 2,
                _ => 1,
            };
            return if needs > back {
                bytes.len() - back
            } else {
                bytes.len()
            };
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` as a receiver does: the text pushed, or the index of the refused piece.
    fn receive(pieces: &[&[u8]]) -> Result<String, usize> {
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            stream
                .feed_with(piece, fin, |s| text.push_str(s))
                .map_err(|InvalidUtf8| i)?;
        }
        Ok(text)
    }

    #[test]
    fn rfc6455_8_1_truncated_code_point_is_fine_until_the_final_fragment() {
        let text = "aé€😀";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                receive(&[&bytes[..cut], &bytes[cut..]]).as_deref(),
                Ok(text)
            );
        }
        assert_eq!(receive(&[&bytes[..2], b""]), Err(1));
    }

    #[test]
    fn rfc6455_8_1_invalid_byte_fails_at_once() {
        assert_eq!(receive(&[b"ok\xc0", b"", b"rest"]), Err(0));
        // 0xed 0xa0 is the start of a surrogate: certain to be invalid though incomplete.
        assert_eq!(receive(&[b"\xed\xa0", b"\x80"]), Err(0));
        assert_eq!(receive(&[b"\xed", b"\xa0", b"\x80"]), Err(1));
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

    /// The proof `finish` gives is what `from_validated` trusts: for every way of cutting
    /// these inputs in three, the stream accepts exactly what `str::from_utf8` accepts, and
    /// text built without a second pass equals the checked text (the debug assertion in
    /// `from_validated` runs each time, so this also runs cleanly under Miri).
    #[test]
    fn rfc3629_finish_accepts_exactly_what_std_accepts_however_the_input_is_cut() {
        let inputs: [&[u8]; 10] = [
            "aé€😀z".as_bytes(),
            b"",
            b"plain ascii",
            b"\xe2\x82",         // truncated euro sign
            b"a\xc0\xafb",       // overlong '/'
            b"\xed\xa0\x80",     // surrogate
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xff",
            "日本語テキスト".as_bytes(),
            b"ok\x80", // lone continuation byte
        ];
        for input in inputs {
            let expected = std::str::from_utf8(input).ok();
            for a in 0..=input.len() {
                for b in a..=input.len() {
                    let mut stream = Utf8Stream::default();
                    let proof = stream
                        .feed_with(&input[..a], false, |_| {})
                        .and_then(|()| stream.feed_with(&input[a..b], false, |_| {}))
                        .and_then(|()| stream.finish(&input[b..]));
                    let built = proof.map(|proof| {
                        Utf8Bytes::from_validated(Bytes::copy_from_slice(input), proof)
                    });
                    assert_eq!(
                        built.as_deref().ok(),
                        expected,
                        "{input:?} cut at {a} and {b}"
                    );
                }
            }
        }
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
