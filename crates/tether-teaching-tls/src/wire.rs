//! Reading and writing the TLS presentation language (RFC 5246 section 4): big-endian
//! integers and vectors with 1-, 2- or 3-byte length prefixes.

use crate::error::Error;

/// A cursor over untrusted bytes. Every read is bounds-checked and fails with
/// [`Error::Decode`] naming the field that was short.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Decode { what })?;
        let out = self.buf.get(self.pos..end).ok_or(Error::Decode { what })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self, what: &'static str) -> Result<usize, Error> {
        let b = self.take(3, what)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }

    /// `opaque x<0..2^8-1>`
    pub(crate) fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], Error> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }

    /// `opaque x<0..2^16-1>`
    pub(crate) fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], Error> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// `opaque x<0..2^24-1>`
    pub(crate) fn vec24(&mut self, what: &'static str) -> Result<&'a [u8], Error> {
        let n = self.u24(what)?;
        self.take(n, what)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was consumed: trailing bytes are a decode error too.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Decode { what })
        }
    }
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u24(out: &mut Vec<u8>, v: usize) {
    // Callers only pass lengths they bounded below 2^24 (handshake messages are limited
    // to MAX_HANDSHAKE_MESSAGE); the mask keeps the encoding well-formed regardless.
    let v = v & 0x00ff_ffff;
    out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
}

/// Writes `opaque x<0..2^8-1>`; `body` must be shorter than 256 bytes.
pub(crate) fn put_vec8(out: &mut Vec<u8>, body: &[u8]) {
    out.push(body.len() as u8);
    out.extend_from_slice(body);
}

/// Writes `opaque x<0..2^16-1>`; `body` must be shorter than 65536 bytes.
pub(crate) fn put_vec16(out: &mut Vec<u8>, body: &[u8]) {
    put_u16(out, body.len() as u16);
    out.extend_from_slice(body);
}

pub(crate) fn put_vec24(out: &mut Vec<u8>, body: &[u8]) {
    put_u24(out, body.len());
    out.extend_from_slice(body);
}

/// Lower-case hex, for the transcript and the key log.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// A string from the peer, made safe to print: control characters (escape sequences a
/// terminal would obey, newlines that would fake transcript lines) are shown escaped, as
/// `\u{1b}`; everything else is kept.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_a_decode_error_naming_the_field() {
        let mut r = Reader::new(&[0x00, 0x05, 1, 2]);
        assert!(matches!(
            r.vec16("cipher_suites"),
            Err(Error::Decode {
                what: "cipher_suites"
            })
        ));
    }

    #[test]
    fn vectors_round_trip() {
        let mut out = Vec::new();
        put_vec8(&mut out, b"a");
        put_vec16(&mut out, b"bc");
        put_vec24(&mut out, b"def");
        let mut r = Reader::new(&out);
        assert_eq!(r.vec8("a").unwrap(), b"a");
        assert_eq!(r.vec16("b").unwrap(), b"bc");
        assert_eq!(r.vec24("c").unwrap(), b"def");
        assert!(r.finish("end").is_ok());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let r = Reader::new(&[1]);
        assert!(matches!(r.finish("x"), Err(Error::Decode { what: "x" })));
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("a\u{1b}[2J\nb é"), "a\\u{1b}[2J\\u{a}b é");
    }
}
