//! The receiving half, RFC 7692 §7.2.2: inflate a message's fragments as they arrive, with the
//! `00 00 ff ff` tail appended at the end, never producing more than the limit.

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};

use crate::compressor::TAIL;
use crate::{DeflateError, WindowBits};

/// Most output produced per inflate round, so a message's buffer grows in steps the caller can
/// check (UTF-8, limits) rather than in one allocation of the limit.
const ROUND: usize = 32 * 1024;

/// Inflates the messages one endpoint receives, fragment by fragment, bounded by a per-message
/// limit. Built by [`DeflateParams::decompressor`](crate::DeflateParams::decompressor).
///
/// Feed it the payload of each frame of a compressed message (RSV1 on its first frame) with
/// [`Decompressor::feed`]; `fin` on the last one. After an error the connection is failing:
/// do not feed it again.
#[derive(Debug)]
pub struct Decompressor {
    inflate: Option<Decompress>,
    bits: WindowBits,
    reset: bool,
    limit: usize,
    /// Bytes produced so far for the current message.
    produced: usize,
    /// The current message's DEFLATE stream ended with a `BFINAL` block.
    ended: bool,
}

impl Decompressor {
    pub(crate) fn new(bits: WindowBits, reset: bool, limit: usize) -> Self {
        Decompressor {
            inflate: None,
            bits,
            reset,
            limit,
            produced: 0,
            ended: false,
        }
    }

    /// The most bytes one message may inflate to.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Inflates `chunk`, the next piece of a compressed message's payload, appending what it
    /// yields to `out`; `fin` marks the message's last piece, after which the tail is
    /// re-appended (§7.2.2) and the next call starts a new message. Empty chunks are fine.
    ///
    /// Fails with [`DeflateError::TooLarge`] as soon as the message would inflate past the
    /// limit, having appended at most `limit` bytes for the message in total; with
    /// [`DeflateError::Corrupt`] on data that is not DEFLATE.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tether_deflate::{DeflateConfig, Role};
    /// let accepted = DeflateConfig::default().accept_offer([[("client_max_window_bits", None)]]);
    /// let mut inflater = accepted.unwrap().params().decompressor(Role::Client, 5);
    /// let mut out = BytesMut::new();
    /// inflater.feed(&[0xf2, 0x48, 0xcd], false, &mut out).unwrap();
    /// inflater.feed(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out).unwrap();
    /// assert_eq!(&out[..], b"Hello");
    /// ```
    pub fn feed(
        &mut self,
        chunk: &[u8],
        fin: bool,
        out: &mut BytesMut,
    ) -> Result<(), DeflateError> {
        self.inflate(chunk, out)?;
        if fin {
            // §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload
            // of the message." After a BFINAL block (§7.2.3.4) they are ignored.
            if !self.ended {
                self.inflate(&TAIL, out)?;
            }
            self.produced = 0;
            // A finished stream cannot continue into the next message, and with the peer's
            // no_context_takeover the next message starts with an empty window (§7.1.1).
            if self.reset || std::mem::take(&mut self.ended) {
                self.inflate = None;
            }
        }
        Ok(())
    }

    fn inflate(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), DeflateError> {
        let bits = self.bits;
        let inflate = self
            .inflate
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits.zlib_bits()));
        loop {
            if self.ended {
                return match input.is_empty() {
                    true => Ok(()),
                    false => Err(DeflateError::TrailingData),
                };
            }
            let remaining = self.limit - self.produced;
            let room = remaining.min(ROUND);
            let round = if room == 0 {
                probe(inflate, input, self.limit)?
            } else {
                inflate_round(inflate, input, room, out)?
            };
            self.produced += round.produced;
            input = input.get(round.consumed..).unwrap_or_default();
            self.ended = round.ended;
            // Done when the input is used up and the inflater had room left, so holds no
            // pending output.
            if (input.is_empty() && round.produced < room)
                || (round.consumed == 0 && round.produced == 0)
            {
                return Ok(());
            }
        }
    }
}

struct Round {
    consumed: usize,
    produced: usize,
    ended: bool,
}

fn inflate_round(
    inflate: &mut Decompress,
    input: &[u8],
    room: usize,
    out: &mut BytesMut,
) -> Result<Round, DeflateError> {
    let len = out.len();
    out.resize(len + room, 0);
    let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
    let status = inflate.decompress(input, &mut out[len..], FlushDecompress::None);
    // The totals grow by at most the slice lengths, which are usizes.
    let consumed = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
    let produced = usize::try_from(inflate.total_out() - out_before)
        .unwrap_or(usize::MAX)
        .min(room);
    out.truncate(len + produced);
    let status = status.map_err(|_| DeflateError::Corrupt)?;
    Ok(Round {
        consumed,
        produced,
        ended: status == Status::StreamEnd,
    })
}

/// At the limit: one more byte of output means the message is too large. The byte goes to a
/// scratch buffer, never to the caller's.
fn probe(inflate: &mut Decompress, input: &[u8], limit: usize) -> Result<Round, DeflateError> {
    let mut scratch = [0u8; 1];
    let in_before = inflate.total_in();
    let out_before = inflate.total_out();
    let status = inflate
        .decompress(input, &mut scratch, FlushDecompress::None)
        .map_err(|_| DeflateError::Corrupt)?;
    if inflate.total_out() != out_before {
        return Err(DeflateError::TooLarge { limit });
    }
    let consumed = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
    Ok(Round {
        consumed,
        produced: 0,
        ended: status == Status::StreamEnd,
    })
}
