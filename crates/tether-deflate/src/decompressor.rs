//! The receiving half, RFC 7692 §7.2.2: inflate a message's fragments as they arrive, with the
//! `00 00 ff ff` tail appended at the end, never producing more than the limit.

use bytes::{Bytes, BytesMut};
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
    /// limit, having appended at most `limit` bytes for the message in total (the buffer grows
    /// in rounds of at most 32 KiB, so its capacity stays within twice that); with
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
        // Inflate into the spare capacity of a Vec (flate2's `decompress_vec`), so the output
        // is never zero-filled first. A BytesMut of one owner converts both ways without a
        // copy.
        let mut vec = Vec::from(std::mem::take(out));
        let result = self.feed_vec(chunk, fin, &mut vec);
        *out = BytesMut::from(Bytes::from(vec));
        result
    }

    fn feed_vec(&mut self, chunk: &[u8], fin: bool, out: &mut Vec<u8>) -> Result<(), DeflateError> {
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

    fn inflate(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), DeflateError> {
        let bits = self.bits;
        let inflate = self
            .inflate
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits.zlib_bits()));
        // Rounds start near the input's size and double, so a small message does not grow the
        // caller's buffer by a whole round, and a highly compressed one takes few rounds.
        let mut step = input.len().saturating_mul(4).clamp(1024, ROUND);
        loop {
            // After a BFINAL block the rest of the message is not part of the stream. The
            // §7.2.3.4 example itself carries a byte there; like zlib-based peers, skip it.
            if self.ended {
                return Ok(());
            }
            let remaining = self.limit - self.produced;
            let room = remaining.min(step);
            step = (step * 2).min(ROUND);
            let round = if room == 0 {
                probe(inflate, input, self.limit)?
            } else {
                inflate_round(inflate, input, room, remaining, out)?
            };
            self.produced += round.produced;
            input = input.get(round.consumed..).unwrap_or_default();
            self.ended = round.ended;
            // Done when the input is used up and the inflater had room left, so holds no
            // pending output.
            if (input.is_empty() && !round.full) || (round.consumed == 0 && round.produced == 0) {
                return Ok(());
            }
        }
    }
}

struct Round {
    consumed: usize,
    produced: usize,
    /// The round used all the room it had: the inflater may hold more output.
    full: bool,
    ended: bool,
}

fn inflate_round(
    inflate: &mut Decompress,
    input: &[u8],
    room: usize,
    remaining: usize,
    out: &mut Vec<u8>,
) -> Result<Round, DeflateError> {
    let len = out.len();
    let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
    if out.capacity() - len < room {
        out.reserve(room);
    }
    // `decompress_vec` fills the whole spare capacity: let it when that stays within what
    // the limit leaves (near the limit, give the excess back first); otherwise zero-fill
    // exactly `room`.
    if out.capacity() - len > remaining {
        out.shrink_to(len + remaining);
    }
    let spare = out.capacity() - len;
    let fast = spare <= remaining;
    let room = if fast { spare } else { room };
    let status = if fast {
        inflate.decompress_vec(input, out, FlushDecompress::None)
    } else {
        out.resize(len + room, 0);
        let status = inflate.decompress(input, &mut out[len..], FlushDecompress::None);
        let produced = usize::try_from(inflate.total_out() - out_before).unwrap_or(usize::MAX);
        out.truncate(len + produced.min(room));
        status
    };
    // The totals grow by at most the slice lengths, which are usizes.
    let consumed = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
    let produced = out.len() - len;
    let status = status.map_err(|_| DeflateError::Corrupt)?;
    Ok(Round {
        consumed,
        produced,
        full: produced == room,
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
        full: false,
        ended: status == Status::StreamEnd,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{DeflateConfig, DeflateParams, Level, Role};

    fn params(c: u8, s: u8, c_reset: bool, s_reset: bool) -> DeflateParams {
        DeflateParams {
            client_max_window_bits: WindowBits::new(c).unwrap(),
            server_max_window_bits: WindowBits::new(s).unwrap(),
            client_no_context_takeover: c_reset,
            server_no_context_takeover: s_reset,
        }
    }

    fn inflate_whole(d: &mut Decompressor, payload: &[u8]) -> Result<BytesMut, DeflateError> {
        let mut out = BytesMut::new();
        d.feed(payload, true, &mut out)?;
        Ok(out)
    }

    fn deflate(level: u32, reset: bool, messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut config = DeflateConfig::default();
        config.set_level(Level::new(level).unwrap());
        let mut c = params(15, 15, reset, reset).compressor(Role::Client, &config);
        messages
            .iter()
            .map(|m| {
                let mut out = BytesMut::new();
                c.compress(m, &mut out).unwrap();
                out.to_vec()
            })
            .collect()
    }

    const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn rfc7692_7_2_3_1_hello_both_directions() {
        assert_eq!(deflate(6, false, &[b"Hello"]), [HELLO]);
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 5);
        assert_eq!(&inflate_whole(&mut d, HELLO).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_2_context_takeover_second_message() {
        let second: &[u8] = &[0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(deflate(6, false, &[b"Hello", b"Hello"]), [HELLO, second]);
        // Without context takeover the second message is compressed afresh.
        assert_eq!(deflate(6, true, &[b"Hello", b"Hello"]), [HELLO, HELLO]);
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 5);
        assert_eq!(&inflate_whole(&mut d, HELLO).unwrap()[..], b"Hello");
        assert_eq!(&inflate_whole(&mut d, second).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_3_no_compression_block() {
        let stored: &[u8] = &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(deflate(0, false, &[b"Hello"]), [stored]);
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 5);
        assert_eq!(&inflate_whole(&mut d, stored).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block_then_next_message() {
        let bfinal: &[u8] = &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 5);
        assert_eq!(&inflate_whole(&mut d, bfinal).unwrap()[..], b"Hello");
        // The stream ended, so the next message starts a new one.
        assert_eq!(&inflate_whole(&mut d, HELLO).unwrap()[..], b"Hello");
        // Whatever follows the final block in the same message is not part of the stream.
        let mut out = BytesMut::new();
        d.feed(&[bfinal, HELLO].concat(), true, &mut out).unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_5_two_deflate_blocks() {
        let two: &[u8] = &[
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 5);
        assert_eq!(&inflate_whole(&mut d, two).unwrap()[..], b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_6_empty_message() {
        assert_eq!(deflate(6, false, &[b""]), [[0x00]]);
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 0);
        assert_eq!(&inflate_whole(&mut d, &[0x00]).unwrap()[..], b"");
        // An empty payload (an empty compressed frame) inflates to nothing as well.
        assert_eq!(&inflate_whole(&mut d, &[]).unwrap()[..], b"");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut d = params(15, 15, false, false).decompressor(Role::Server, 100);
        assert_eq!(
            inflate_whole(&mut d, &[0xff, 0xff, 0xff]),
            Err(DeflateError::Corrupt)
        );
    }

    /// A 1 KiB message inflating to 1 MiB: fine at a limit of exactly 1 MiB, `TooLarge` one
    /// byte below, with at most the limit appended and the buffer never much bigger.
    #[test]
    fn zip_bomb_at_the_limit_and_one_past_it() {
        const INFLATED: usize = 1 << 20;
        let bomb = deflate(9, false, &[&vec![0u8; INFLATED]]).remove(0);
        assert!(bomb.len() <= 1100, "bomb is {} bytes", bomb.len());

        let mut d = params(15, 15, false, false).decompressor(Role::Server, INFLATED);
        assert_eq!(inflate_whole(&mut d, &bomb).unwrap().len(), INFLATED);

        for limit in [INFLATED - 1, 4096, 0] {
            let mut d = params(15, 15, false, false).decompressor(Role::Server, limit);
            let mut out = BytesMut::new();
            let mut result = Ok(());
            for chunk in bomb.chunks(100) {
                result = d.feed(chunk, false, &mut out);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(result, Err(DeflateError::TooLarge { limit }));
            assert_eq!(out.len(), limit);
            // BytesMut grows by doubling, so the buffer is at most twice what it holds.
            assert!(
                out.capacity() <= 2 * (limit + ROUND),
                "capacity {}",
                out.capacity()
            );
        }
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b'{'), Just(b'"'), Just(b'1')],
                0..5000
            ),
            (1usize..70_000).prop_map(|n| {
                br#"{"key": "value", "n": 12345}"#.iter().copied().cycle().take(n).collect()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// RFC 7692 §7.2: any message sequence round-trips at every window size, with and
        /// without context takeover, fed in arbitrary fragments.
        #[test]
        fn rfc7692_7_2_round_trip_in_fragments(
            messages in proptest::collection::vec(message(), 1..6),
            bits in 8u8..=15,
            reset in any::<bool>(),
            level in 0u32..=9,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let agreed = params(bits, bits, reset, reset);
            let mut config = DeflateConfig::default();
            config.set_level(Level::new(level).unwrap());
            for (sender, receiver) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
                let mut c = agreed.compressor(sender, &config);
                let mut d = agreed.decompressor(receiver, 70_000);
                for m in &messages {
                    let mut wire = BytesMut::new();
                    c.compress(m, &mut wire).unwrap();
                    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
                    points.sort_unstable();
                    let mut out = BytesMut::new();
                    let mut at = 0;
                    for p in points {
                        d.feed(&wire[at..p], false, &mut out).unwrap();
                        at = p;
                    }
                    d.feed(&wire[at..], true, &mut out).unwrap();
                    prop_assert_eq!(&out[..], &m[..]);
                }
            }
        }
    }
}
