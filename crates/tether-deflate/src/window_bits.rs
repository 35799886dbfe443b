//! The LZ77 window size, as RFC 7692 §7.1.2 carries it: the base-2 logarithm, 8..=15.

use std::fmt;

use crate::DeflateError;

/// An LZ77 sliding window size in bits (a window of `2^bits` bytes), 8..=15 (RFC 7692 §7.1.2).
///
/// ```
/// use tether_deflate::WindowBits;
/// assert_eq!(WindowBits::new(12).unwrap().get(), 12);
/// assert!(WindowBits::new(16).is_err());
/// assert_eq!(WindowBits::MAX.get(), 15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowBits(u8);

impl WindowBits {
    /// The smallest window the RFC allows, 256 bytes.
    pub const MIN: WindowBits = WindowBits(8);
    /// The largest window and the default when a parameter is absent, 32 KiB.
    pub const MAX: WindowBits = WindowBits(15);

    /// `bits` if it is in 8..=15, else [`DeflateError::BadWindowBits`].
    pub fn new(bits: u8) -> Result<Self, DeflateError> {
        if (Self::MIN.0..=Self::MAX.0).contains(&bits) {
            Ok(WindowBits(bits))
        } else {
            Err(DeflateError::BadWindowBits(bits))
        }
    }

    /// The number of bits.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The window bits zlib is given. zlib (and zlib-rs) cannot deflate with a 256-byte window
    /// and refuse 8 for raw streams, so 8 becomes 9. That stays within an agreed 8: a zlib
    /// deflater never reaches further back than `2^bits - 262` bytes (its `MAX_DIST`), which
    /// for 9 bits is 250, inside the 256 bytes an inflater with 8 bits keeps. RFC 7692 §7.1.2
    /// only bounds the window the sender *uses*; using at most 250 bytes of it is allowed. On
    /// the inflate side a larger window than the peer's accepts every stream the peer can send.
    pub(crate) fn zlib_bits(self) -> u8 {
        self.0.max(9)
    }

    /// Parses a parameter value: "a decimal integer value without leading zeroes between 8 to
    /// 15, inclusive" (RFC 7692 §7.1.2.1, §7.1.2.2).
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let digits_ok = !value.is_empty()
            && value.len() <= 2
            && value.bytes().all(|b| b.is_ascii_digit())
            && !value.starts_with('0');
        if !digits_ok {
            return None;
        }
        value.parse().ok().and_then(|bits| Self::new(bits).ok())
    }
}

impl Default for WindowBits {
    fn default() -> Self {
        Self::MAX
    }
}

impl fmt::Display for WindowBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7692_7_1_2_values_are_decimal_8_to_15_without_leading_zeroes() {
        for ok in ["8", "9", "10", "15"] {
            assert!(WindowBits::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "7", "16", "08", "010", "+9", " 9", "9 ", "x", "1O", "255", "99999",
        ] {
            assert_eq!(WindowBits::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc7692_7_1_2_window_8_is_deflated_with_9() {
        assert_eq!(WindowBits::MIN.zlib_bits(), 9);
        assert_eq!(WindowBits::MAX.zlib_bits(), 15);
    }
}
