//! tether-deflate's `Decompressor` (RFC 7692 §7.2.2) fed a peer's compressed payloads in frames
//! the input chooses, and the `Compressor` → `Decompressor` round trip.
//!
//! Flags: bits 0-2 the window (`server_max_window_bits` 8 + n), bit 3
//! `server_no_context_takeover`, bits 4-5 the limit for raw input (0, 5, 64 or 300 bytes),
//! bits 6-7 the compression level (0, 1, 6, 9). The data is cut into pieces by the read sizes
//! (`tether_fuzz::Input`).
//!
//! Raw: each piece is a frame's payload; a piece of odd length, and the last, ends a message.
//! Checked: no message ever appends more than the limit; errors are only `TooLarge` (after
//! exactly `limit` bytes, for a message that really inflates further) or `Corrupt`, and the
//! decompressor is not fed after one (its documented contract); what it yields agrees with a
//! decompressor of a 64 KiB limit fed the same frames.
//!
//! Round trip: each piece is a message, compressed in turn with the `Compressor`, each
//! compressed message cut again by the read sizes into frames and inflated with a limit of
//! the longest message: every message comes back byte for byte. With a limit one byte lower
//! the first longest message fails `TooLarge` after exactly the limit, the ones before it
//! pass (the limit is inclusive).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tether_deflate::{DeflateConfig, DeflateError, DeflateParams, Level, Role};
use tether_fuzz::Input;

/// The raw-input limits bits 4-5 pick.
const LIMITS: [usize; 4] = [0, 5, 64, 300];

/// The compression levels bits 6-7 pick.
const LEVELS: [u32; 4] = [0, 1, 6, 9];

/// The reference decompressor's limit: far above the raw limits, and low enough that a
/// zip bomb of a few KiB costs the reference little (past it, comparisons stop).
const REFERENCE_LIMIT: usize = 64 * 1024;

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let params = params(input.flags);
    let pieces: Vec<&[u8]> = input.chunks().collect();
    raw_frames(&params, input.flags, &pieces);
    round_trip(&params, input.flags, &input, &pieces);
});

/// What the server agrees to when the client asks for the flags' window and takeover.
fn params(flags: u8) -> DeflateParams {
    let bits = 8 + (flags & 7);
    let value = bits.to_string();
    let mut offer = vec![("server_max_window_bits", Some(value.as_str()))];
    let reset = flags & 8 != 0;
    if reset {
        offer.push(("server_no_context_takeover", None));
    }
    let accepted = DeflateConfig::default()
        .accept_offer([offer])
        .expect("the server accepts a valid offer");
    let params = *accepted.params();
    assert_eq!(params.server_max_window_bits().get(), bits);
    assert_eq!(params.server_no_context_takeover(), reset);
    params
}

/// How one message's inflation ended.
#[derive(Debug, PartialEq)]
enum End {
    Complete,
    TooLarge,
    Corrupt,
}

/// One message as inflated: the bytes appended for it and how it ended.
#[derive(Debug)]
struct Inflated {
    bytes: Vec<u8>,
    end: End,
}

/// Feeds `frames` (payload, fin) to a decompressor of `limit` bytes, stopping at the first
/// error. Checks the limit after every frame.
fn inflate<'a>(
    params: &DeflateParams,
    limit: usize,
    frames: impl IntoIterator<Item = (&'a [u8], bool)>,
) -> Vec<Inflated> {
    let mut decompressor = params.decompressor(Role::Client, limit);
    assert_eq!(decompressor.limit(), limit);
    let mut messages = Vec::new();
    let mut out = BytesMut::new();
    for (frame, fin) in frames {
        let result = decompressor.feed(frame, fin, &mut out);
        assert!(
            out.len() <= limit,
            "{} bytes out for a message limited to {limit}",
            out.len()
        );
        let end = match result {
            Ok(()) if fin => End::Complete,
            Ok(()) => continue,
            Err(DeflateError::TooLarge { limit: reported }) => {
                assert_eq!(reported, limit);
                // The limit is reached before the probe that finds one byte more.
                assert_eq!(out.len(), limit, "TooLarge before the limit");
                End::TooLarge
            }
            Err(DeflateError::Corrupt) => End::Corrupt,
            Err(other) => panic!("inflating gave {other:?}"),
        };
        let failed = end != End::Complete;
        messages.push(Inflated {
            bytes: out.split().to_vec(),
            end,
        });
        if failed {
            // "After an error the connection is failing: do not feed it again."
            break;
        }
    }
    messages
}

/// The raw pieces as frames: odd-length pieces and the last end a message.
fn raw_frames(params: &DeflateParams, flags: u8, pieces: &[&[u8]]) {
    let limit = LIMITS[usize::from((flags >> 4) & 3)];
    let frames = pieces
        .iter()
        .enumerate()
        .map(|(i, &piece)| (piece, piece.len() % 2 == 1 || i + 1 == pieces.len()));
    let bounded = inflate(params, limit, frames.clone());
    let reference = inflate(params, REFERENCE_LIMIT, frames);
    for (i, message) in bounded.iter().enumerate() {
        let Some(same) = reference.get(i) else {
            panic!("message {i}: the reference stopped earlier: {reference:?}");
        };
        if same.end == End::TooLarge {
            return;
        }
        match message.end {
            End::Complete => {
                assert_eq!(same.end, End::Complete, "message {i}");
                assert_eq!(same.bytes, message.bytes, "message {i}");
            }
            End::TooLarge => {
                // A message that really inflates past the limit, or breaks after the limit.
                assert!(
                    same.end == End::Corrupt || same.bytes.len() > limit,
                    "message {i}: TooLarge, but the reference gives {same:?}"
                );
                if same.end == End::Complete {
                    assert!(same.bytes.starts_with(&message.bytes), "message {i}");
                }
            }
            End::Corrupt => {
                assert_eq!(same.end, End::Corrupt, "message {i}");
                let (a, b) = (&same.bytes, &message.bytes);
                assert!(
                    a.starts_with(b) || b.starts_with(a),
                    "message {i}: different bytes before the corruption"
                );
            }
        }
    }
}

/// Compresses the pieces as messages, inflates them in frames cut by the read sizes.
fn round_trip(params: &DeflateParams, flags: u8, input: &Input<'_>, messages: &[&[u8]]) {
    let mut config = DeflateConfig::default();
    let level = Level::new(LEVELS[usize::from(flags >> 6)]).expect("a valid level");
    config.set_level(level);
    let mut compressor = params.compressor(Role::Server, &config);
    let compressed: Vec<BytesMut> = messages
        .iter()
        .map(|message| {
            let mut out = BytesMut::new();
            compressor
                .compress(message, &mut out)
                .expect("compressing never fails");
            out
        })
        .collect();
    let frames = || {
        compressed.iter().flat_map(|message| {
            let mut pieces: Vec<&[u8]> = input.chunks_of(message).collect();
            if pieces.is_empty() {
                pieces.push(&[]);
            }
            let last = pieces.len() - 1;
            pieces
                .into_iter()
                .enumerate()
                .map(move |(i, p)| (p, i == last))
        })
    };
    let longest = messages.iter().map(|m| m.len()).max().unwrap_or(0);
    let inflated = inflate(params, longest, frames());
    assert_eq!(inflated.len(), messages.len());
    for (message, back) in messages.iter().zip(&inflated) {
        assert_eq!(back.end, End::Complete);
        assert_eq!(
            &back.bytes[..],
            *message,
            "the round trip changed a message"
        );
    }
    // One byte under the longest message: the first longest fails, the ones before pass.
    let Some(under) = longest.checked_sub(1) else {
        return;
    };
    let inflated = inflate(params, under, frames());
    let first_longest = messages.iter().position(|m| m.len() == longest).unwrap();
    assert_eq!(inflated.len(), first_longest + 1);
    for (message, back) in messages.iter().zip(&inflated[..first_longest]) {
        assert_eq!(back.end, End::Complete);
        assert_eq!(&back.bytes[..], *message);
    }
    let failed = &inflated[first_longest];
    assert_eq!(failed.end, End::TooLarge);
    assert_eq!(failed.bytes[..], messages[first_longest][..under]);
}
