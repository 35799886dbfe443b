//! The sending half, RFC 7692 §7.2.1: DEFLATE each message, flush, strip the empty block's
//! `00 00 ff ff` tail.

use bytes::BytesMut;
use flate2::{Compress, Compression, FlushCompress};

use crate::{DeflateError, Level, WindowBits};

/// The four octets a sync flush ends with (an empty stored block's LEN and NLEN), which
/// RFC 7692 §7.2.1 removes from the end of every compressed message.
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output room reserved per round beyond the input length: block headers and the flush.
const SLACK: usize = 64;

/// Compresses the messages one endpoint sends, keeping the LZ77 window between messages
/// unless the agreed parameters say this side resets it. Built by
/// [`DeflateParams::compressor`](crate::DeflateParams::compressor).
///
/// With context takeover off, the deflate state is dropped after every message and rebuilt
/// for the next, so an idle connection holds none of it.
#[derive(Debug)]
pub struct Compressor {
    deflate: Option<Compress>,
    bits: WindowBits,
    reset: bool,
    level: Level,
    threshold: usize,
}

impl Compressor {
    pub(crate) fn new(bits: WindowBits, reset: bool, level: Level, threshold: usize) -> Self {
        Compressor {
            deflate: None,
            bits,
            reset,
            level,
            threshold,
        }
    }

    /// Whether a message of `len` bytes should be compressed: `len` reaches the configured
    /// threshold. The codec sends shorter messages with RSV1 clear, skipping
    /// [`Compressor::compress`] (which leaves the window untouched).
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Appends the compressed form of the whole message `payload` to `out`: DEFLATE blocks
    /// ending in a sync flush whose `00 00 ff ff` tail is removed (§7.2.1). The codec sends
    /// the result as the message's payload with RSV1 set on its first frame.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tether_deflate::{DeflateConfig, Role};
    /// let params = DeflateConfig::default().accept_offer([[("client_max_window_bits", None)]]);
    /// let mut compressor = params.unwrap().params().compressor(Role::Server, &DeflateConfig::default());
    /// let mut out = BytesMut::new();
    /// compressor.compress(b"Hello", &mut out).unwrap();
    /// assert_eq!(&out[..], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]); // RFC 7692 §7.2.3.1
    /// ```
    pub fn compress(&mut self, payload: &[u8], out: &mut BytesMut) -> Result<(), DeflateError> {
        // §7.2.3.6: an empty message is an empty stored block, the single octet 0x00 once the
        // tail is removed. Every message ends in a sync flush, so the stream is byte-aligned
        // here and the block leaves the window as it is. zlib cannot be asked for it: a sync
        // flush with nothing new to flush (an empty message after an empty message, window
        // kept) makes no progress and yields nothing.
        if payload.is_empty() {
            out.extend_from_slice(&[0x00]);
            return Ok(());
        }
        let (bits, level) = (self.bits, self.level);
        let deflate = self.deflate.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level.get()), false, bits.zlib_bits())
        });
        let start = out.len();
        let result = sync_flush(deflate, payload, out);
        if result.is_err() {
            out.truncate(start);
            self.deflate = None;
            return result;
        }
        // §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
        if !out[start..].ends_with(&TAIL) {
            out.truncate(start);
            self.deflate = None;
            return Err(DeflateError::Compress);
        }
        out.truncate(out.len() - TAIL.len());
        // §7.1.1: with no context takeover the sender "MUST start compressing each new
        // message with an empty LZ77 sliding window"; dropping the state does that and frees it.
        if self.reset {
            self.deflate = None;
        }
        Ok(())
    }
}

/// Deflates all of `input` into `out` and sync-flushes. zlib's contract: the flush is complete
/// once a call returns with output room left over.
fn sync_flush(
    deflate: &mut Compress,
    mut input: &[u8],
    out: &mut BytesMut,
) -> Result<(), DeflateError> {
    let mut room = input.len() + SLACK;
    loop {
        let len = out.len();
        out.resize(len + room, 0);
        let (in_before, out_before) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress(input, &mut out[len..], FlushCompress::Sync);
        // Both totals grow by at most the slice lengths, which are usizes.
        let consumed = usize::try_from(deflate.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = usize::try_from(deflate.total_out() - out_before).unwrap_or(usize::MAX);
        out.truncate(len + produced.min(room));
        status.map_err(|_| DeflateError::Compress)?;
        input = input.get(consumed..).unwrap_or_default();
        if input.is_empty() && produced < room {
            return Ok(());
        }
        room = room.max(4096);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes without 3-byte repeats nearby (an LCG's high bytes).
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 24) as u8
            })
            .collect()
    }

    fn compressed_len(bits: u8, period: usize) -> usize {
        let block = noise(period);
        let message = block.repeat(16);
        let mut c = Compressor::new(
            WindowBits::new(bits).unwrap(),
            false,
            Level::new(9).unwrap(),
            0,
        );
        let mut out = BytesMut::new();
        c.compress(&message, &mut out).unwrap();
        out.len()
    }

    /// RFC 7692 §7.2.3.6: an empty message is the single octet 0x00, also when the window
    /// is kept and the message before it was empty too (zlib refuses a second sync flush with
    /// nothing to flush), and the window survives it.
    #[test]
    fn rfc7692_7_2_3_6_empty_messages_in_a_row_keep_the_window() {
        let bits = WindowBits::new(15).unwrap();
        let mut c = Compressor::new(bits, false, Level::new(6).unwrap(), 0);
        let mut d = crate::Decompressor::new(bits, false, 16);
        for message in [&b""[..], b"", b"Hello", b"", b"", b"Hello"] {
            let mut wire = BytesMut::new();
            c.compress(message, &mut wire).unwrap();
            if message.is_empty() {
                assert_eq!(&wire[..], [0x00]);
            }
            let mut back = BytesMut::new();
            d.feed(&wire, true, &mut back).unwrap();
            assert_eq!(&back[..], message);
        }
    }

    /// An agreed window of 8 is deflated with zlib's 9 (see `WindowBits::zlib_bits`): its
    /// matches reach back at most 250 bytes, inside the 256 bytes the peer keeps. A message
    /// repeating every 250 bytes compresses; one repeating every 251 does not.
    #[test]
    fn rfc7692_7_1_2_window_8_never_reaches_back_past_256_bytes() {
        let near = compressed_len(8, 250);
        let far = compressed_len(8, 251);
        assert!(near < 250 * 3, "period 250 gave {near} bytes");
        assert!(far > 251 * 12, "period 251 gave {far} bytes");
        // A 9-bit window would reach the same distance just as little; 10 bits does.
        assert!(compressed_len(10, 251) < 251 * 3);
    }
}
