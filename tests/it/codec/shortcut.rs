//! The receiver's shortcut for a whole single-frame message (`Protocol::poll_message` takes a
//! text or binary frame complete in its buffer in one step) changes no outcome.
//!
//! Fed a whole stream, a receiver takes every complete common frame by the shortcut; fed the
//! same stream one byte at a time, it never can (a header is consumed as soon as it is
//! complete, before its payload arrives), so every frame goes the general way. The two must
//! agree on the messages, the error and the bytes queued in answer, for streams built to sit
//! on the shortcut's edges: each header bit, both length encodings (minimal or not), masking
//! right or wrong for the role, payloads at and past small limits, invalid text, frames
//! arriving inside a fragmented message or after a close.

use proptest::collection::vec;
use proptest::prelude::*;
use tether_codec::{apply_mask, Config, Role};

use super::support::{client, feed_in_pieces, feed_whole, server};

/// One frame as raw wire bytes, header fields chosen freely (rules broken on purpose).
#[derive(Debug, Clone)]
struct RawFrame {
    first: u8,
    masked: bool,
    /// Sent with the 16-bit length field even when shorter than 126 (not minimal).
    wide: bool,
    key: [u8; 4],
    payload: Vec<u8>,
}

impl RawFrame {
    fn encode(&self, wire: &mut Vec<u8>) {
        let mask_bit = if self.masked { 0x80 } else { 0 };
        let len = self.payload.len();
        wire.push(self.first);
        if len < 126 && !self.wide {
            wire.push(mask_bit | len as u8);
        } else {
            wire.push(mask_bit | 126);
            wire.extend_from_slice(&(len as u16).to_be_bytes());
        }
        let mut payload = self.payload.clone();
        if self.masked {
            wire.extend_from_slice(&self.key);
            apply_mask(&mut payload, self.key);
        }
        wire.extend_from_slice(&payload);
    }
}

fn arb_first_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        // The two the shortcut takes: FIN with text or binary.
        6 => prop_oneof![Just(0x81u8), Just(0x82)],
        // Their neighbours: a fragment begun, a continuation, RSV bits, control frames.
        3 => prop_oneof![
            Just(0x01u8), Just(0x02), Just(0x00), Just(0x80), Just(0xC1), Just(0xA2),
            Just(0x92), Just(0x89), Just(0x8A), Just(0x88), Just(0x83),
        ],
        1 => any::<u8>(),
    ]
}

fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..40),
        // Text, valid or cut inside a code point.
        2 => ".{0,30}".prop_map(String::into_bytes),
        2 => (".{1,30}", any::<prop::sample::Index>()).prop_map(|(text, cut)| {
            let bytes = text.into_bytes();
            bytes[..cut.index(bytes.len())].to_vec()
        }),
        1 => vec(any::<u8>(), 120..300),
    ]
}

fn arb_frame(masked_by_default: bool) -> impl Strategy<Value = RawFrame> {
    (
        arb_first_byte(),
        proptest::bool::weighted(0.9),
        proptest::bool::weighted(0.1),
        any::<[u8; 4]>(),
        arb_payload(),
    )
        .prop_map(move |(first, right_mask, wide, key, payload)| RawFrame {
            first,
            masked: right_mask == masked_by_default,
            wide,
            key,
            payload,
        })
}

fn arb_case() -> impl Strategy<Value = (Role, usize, usize, Vec<RawFrame>)> {
    prop_oneof![Just(Role::Server), Just(Role::Client)].prop_flat_map(|role| {
        (
            Just(role),
            prop_oneof![Just(usize::MAX >> 1), 0usize..300],
            prop_oneof![Just(usize::MAX >> 1), 0usize..300],
            // A server receives masked frames, a client unmasked ones.
            vec(arb_frame(role == Role::Server), 1..8),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn whole_frames_taken_in_one_step_match_the_general_path(
        (role, max_frame, max_message, frames) in arb_case(),
    ) {
        let mut config = Config::default();
        config.set_max_frame_payload(max_frame).set_max_message_size(max_message);
        let receiver = || match role {
            Role::Server => server(&config),
            Role::Client => client(&config),
        };
        let mut wire = Vec::new();
        for frame in &frames {
            frame.encode(&mut wire);
        }
        let (mut whole, mut bytewise) = (receiver(), receiver());
        let all_at_once = feed_whole(&mut whole, &wire);
        let cuts: Vec<usize> = (1..wire.len()).collect();
        let one_by_one = feed_in_pieces(&mut bytewise, &wire, &cuts);
        prop_assert_eq!(&all_at_once.messages, &one_by_one.messages);
        prop_assert_eq!(
            all_at_once.error.as_ref().map(|e| format!("{e:?}")),
            one_by_one.error.as_ref().map(|e| format!("{e:?}"))
        );
        prop_assert_eq!(whole.write_buffer().split(), bytewise.write_buffer().split());
        prop_assert_eq!(whole.state(), bytewise.state());
    }
}
