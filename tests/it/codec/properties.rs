//! Property tests: for any input, the codec keeps its invariants.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use tether_codec::{
    apply_mask_offset, CloseCode, CloseFrame, Config, Frame, FrameCodec, FrameHeader, Message,
    OpCode, Role, State,
};
use tokio_util::codec::{Decoder, Encoder};

use super::support::{
    arb_control_payload, arb_message, arb_payload, arb_text, client, feed_in_pieces, feed_whole,
    peer, ranges, server, Received,
};

/// The error part of a result, comparable (errors are not `PartialEq`: they may hold I/O errors).
fn error_of(received: &Received) -> Option<String> {
    received.error.as_ref().map(|e| format!("{e:?}"))
}

fn sender_and_receiver(role: Role) -> (tether_codec::Protocol, tether_codec::Protocol) {
    let config = Config::default();
    match role {
        Role::Client => (client(&config), server(&config)),
        Role::Server => (server(&config), client(&config)),
    }
}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Client), Just(Role::Server)]
}

/// Any single frame a sender of `role` may put on the wire (sequencing not considered).
fn arb_frame(role: Role) -> impl Strategy<Value = Frame> {
    let data = (
        prop_oneof![
            Just(OpCode::Continuation),
            Just(OpCode::Text),
            Just(OpCode::Binary)
        ],
        any::<bool>(),
        arb_payload(),
    )
        .prop_map(|(op, fin, payload)| Frame::new(op, payload).with_fin(fin));
    let control = (
        prop_oneof![Just(OpCode::Ping), Just(OpCode::Pong), Just(OpCode::Close)],
        arb_control_payload(),
    )
        .prop_map(|(op, payload)| Frame::new(op, payload));
    (prop_oneof![3 => data, 1 => control], any::<[u8; 4]>()).prop_map(
        move |(frame, key)| match role {
            Role::Client => frame.with_mask(Some(key)),
            Role::Server => frame,
        },
    )
}

/// Encodes a fragmented message: first frame with `opcode`, the rest continuations, with
/// control frames inserted after the fragment they are attached to.
fn fragmented_wire(
    opcode: OpCode,
    payload: &[u8],
    cuts: &[usize],
    controls: &[(usize, Message)],
) -> (BytesMut, Vec<Message>) {
    let mut wire = BytesMut::new();
    let mut expected = Vec::new();
    let pieces = ranges(payload.len(), cuts);
    let last = pieces.len() - 1;
    let key = [0x0F, 0x1E, 0x2D, 0x3C];
    for (i, range) in pieces.into_iter().enumerate() {
        let op = if i == 0 { opcode } else { OpCode::Continuation };
        Frame::new(op, payload[range].to_vec())
            .with_fin(i == last)
            .with_mask(Some(key))
            .encode(&mut wire);
        if i == last {
            break;
        }
        for (_, control) in controls.iter().filter(|(after, _)| *after == i) {
            let (op, data) = match control {
                Message::Ping(data) => (OpCode::Ping, data.clone()),
                Message::Pong(data) => (OpCode::Pong, data.clone()),
                other => unreachable!("only pings and pongs are interleaved, got {other:?}"),
            };
            Frame::new(op, data).with_mask(Some(key)).encode(&mut wire);
            expected.push(control.clone());
        }
    }
    (wire, expected)
}

/// The length of the shortest prefix of `bytes` that is certainly not UTF-8 (std's
/// judgement), or `None` when every prefix could still become valid.
fn certainly_invalid_at(bytes: &[u8]) -> Option<usize> {
    (1..=bytes.len())
        .find(|&len| std::str::from_utf8(&bytes[..len]).is_err_and(|e| e.error_len().is_some()))
}

fn arb_control() -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_control_payload().prop_map(|p| Message::Ping(p.into())),
        arb_control_payload().prop_map(|p| Message::Pong(p.into())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Round trip: any sequence of messages, sent by either role and closed with any sendable
    /// code, is received as the same sequence by the peer.
    #[test]
    fn round_trip_messages_in_both_roles(
        role in arb_role(),
        messages in vec(arb_message(), 0..12),
        code in prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999],
        reason in ".{0,20}",
    ) {
        let (mut sender, mut receiver) = sender_and_receiver(role);
        for message in &messages {
            sender.send(message.clone()).unwrap();
        }
        sender.close(CloseCode(code), &reason).unwrap();
        let wire = sender.write_buffer().split();
        let received = feed_whole(&mut receiver, &wire).ok();
        let mut expected = messages.clone();
        expected.push(Message::Close(Some(CloseFrame::new(CloseCode(code), reason.as_str()).unwrap())));
        prop_assert_eq!(received, expected);
        prop_assert_eq!(receiver.state(), State::Closed);
        // The receiver's echo completes the sender's closing handshake.
        let echo = receiver.write_buffer().split();
        let back = feed_whole(&mut sender, &echo).ok();
        // RFC 6455 §5.5.3: the receiver wrote nothing between the pings, so it answers only
        // the most recent one.
        let pongs: Vec<_> = back.iter().filter(|m| matches!(m, Message::Pong(_))).collect();
        let last_ping = messages.iter().rev().find(|m| matches!(m, Message::Ping(_)));
        let answer: Vec<_> = last_ping
            .map(|m| match m {
                Message::Ping(data) => Message::Pong(data.clone()),
                _ => unreachable!(),
            })
            .into_iter()
            .collect();
        let pongs: Vec<_> = pongs.into_iter().cloned().collect();
        prop_assert_eq!(pongs, answer, "the latest ping answered");
        prop_assert!(matches!(back.last(), Some(Message::Close(Some(f))) if f.code == CloseCode(code)));
        prop_assert_eq!(sender.state(), State::Closed);
    }

    /// Round trip at frame level: any frames a role may send decode to themselves at the peer.
    #[test]
    fn round_trip_frames_in_both_roles(
        (role, frames) in arb_role().prop_flat_map(|role| (Just(role), vec(arb_frame(role), 0..12))),
    ) {
        let mut encoder = FrameCodec::new(role, Config::default());
        let mut decoder = FrameCodec::new(peer(role), Config::default());
        let mut wire = BytesMut::new();
        for frame in &frames {
            encoder.encode(frame.clone(), &mut wire).unwrap();
        }
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut wire).unwrap() {
            decoded.push(frame);
        }
        prop_assert!(wire.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    /// Split/stick invariance (拆包/粘包): however the byte stream of many frames is cut (single
    /// bytes, pieces spanning several frames), feeding the pieces one by one gives what
    /// feeding the whole gives - also when a corrupted byte makes the stream fail.
    #[test]
    fn split_stick_invariance(
        role in arb_role(),
        messages in vec(arb_message(), 1..10),
        corrupt in proptest::option::weighted(0.3, (any::<prop::sample::Index>(), any::<u8>())),
        cuts in vec(any::<prop::sample::Index>(), 0..16),
        byte_by_byte in proptest::bool::weighted(0.1),
    ) {
        let (mut sender, _) = sender_and_receiver(role);
        for message in &messages {
            sender.send(message.clone()).unwrap();
        }
        let mut wire = sender.write_buffer().split().to_vec();
        if let Some((index, byte)) = corrupt {
            let at = index.index(wire.len());
            wire[at] = byte;
        }
        let mut cuts: Vec<usize> = if byte_by_byte && wire.len() < 5000 {
            (1..wire.len()).collect()
        } else {
            cuts.iter().map(|i| i.index(wire.len() + 1)).collect()
        };
        cuts.sort_unstable();
        let (_, mut whole_receiver) = sender_and_receiver(role);
        let (_, mut piece_receiver) = sender_and_receiver(role);
        let whole = feed_whole(&mut whole_receiver, &wire);
        let pieces = feed_in_pieces(&mut piece_receiver, &wire, &cuts);
        prop_assert_eq!(&pieces.messages, &whole.messages);
        prop_assert_eq!(error_of(&pieces), error_of(&whole));
        if corrupt.is_none() {
            prop_assert_eq!(whole.ok(), messages);
        }
        prop_assert_eq!(piece_receiver.write_buffer().split(), whole_receiver.write_buffer().split());
    }

    /// The same invariance for the frame-level tokio-util decoder.
    #[test]
    fn split_stick_invariance_frame_codec(
        frames in vec(arb_frame(Role::Client), 1..10),
        cuts in vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let mut encoder = FrameCodec::new(Role::Client, Config::default());
        let mut wire = BytesMut::new();
        for frame in &frames {
            encoder.encode(frame.clone(), &mut wire).unwrap();
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let mut decoder = FrameCodec::new(Role::Server, Config::default());
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        for range in ranges(wire.len(), &cuts) {
            buffer.extend_from_slice(&wire[range]);
            while let Some(frame) = decoder.decode(&mut buffer).unwrap() {
                decoded.push(frame);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    /// Fragmentation: any message cut into any fragments, with pings and pongs between them,
    /// reassembles to the same message, after the control frames.
    #[test]
    fn fragmented_message_reassembles(
        text in proptest::option::of(arb_text()),
        binary in arb_payload(),
        cut_points in vec(any::<prop::sample::Index>(), 0..10),
        controls in vec((any::<prop::sample::Index>(), arb_control()), 0..5),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let (opcode, payload, message) = match text {
            Some(text) => (OpCode::Text, text.clone().into_bytes(), Message::text(text)),
            None => (OpCode::Binary, binary.clone(), Message::binary(binary)),
        };
        let mut fragment_cuts: Vec<usize> =
            cut_points.iter().map(|i| i.index(payload.len() + 1)).collect();
        fragment_cuts.sort_unstable();
        let gaps = fragment_cuts.len().max(1);
        let controls: Vec<(usize, Message)> =
            controls.into_iter().map(|(i, m)| (i.index(gaps), m)).collect();
        let (wire, mut expected) = fragmented_wire(opcode, &payload, &fragment_cuts, &controls);
        if fragment_cuts.is_empty() {
            // A single frame has no gap for controls to go in.
            expected.clear();
        }
        expected.push(message);
        let mut stream_cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        stream_cuts.sort_unstable();
        let received = feed_in_pieces(&mut server(&Config::default()), &wire, &stream_cuts).ok();
        prop_assert_eq!(received, expected);
    }

    /// Valid text split at any byte boundary (through code points too) is accepted.
    #[test]
    fn utf8_valid_text_split_anywhere_is_accepted(
        text in arb_text(),
        cut_points in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let (wire, _) = fragmented_wire(OpCode::Text, bytes, &cuts, &[]);
        let received = feed_whole(&mut server(&Config::default()), &wire).ok();
        prop_assert_eq!(received, vec![Message::text(text)]);
    }

    /// Invalid text fails with 1007 on exactly the fragment where it becomes certainly invalid
    /// (or the final one, for a code point cut off at the end), and not before.
    #[test]
    fn utf8_invalid_text_fails_on_the_first_certain_fragment(
        prefix in ".{0,8}",
        junk in vec(any::<u8>(), 1..6),
        suffix in ".{0,8}",
        cut_points in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut bytes = prefix.into_bytes();
        bytes.extend_from_slice(&junk);
        bytes.extend_from_slice(suffix.as_bytes());
        let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let pieces = ranges(bytes.len(), &cuts);
        let expected_failure = if std::str::from_utf8(&bytes).is_ok() {
            None
        } else {
            Some(match certainly_invalid_at(&bytes) {
                Some(len) => pieces.iter().position(|r| r.contains(&(len - 1))).unwrap(),
                None => pieces.len() - 1,
            })
        };
        let mut receiver = server(&Config::default());
        let key = [9, 9, 9, 9];
        let mut failed_at = None;
        for (i, range) in pieces.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let mut wire = BytesMut::new();
            Frame::new(op, bytes[range.clone()].to_vec())
                .with_fin(i == pieces.len() - 1)
                .with_mask(Some(key))
                .encode(&mut wire);
            let received = feed_whole(&mut receiver, &wire);
            if let Some(err) = received.error {
                prop_assert_eq!(err.close_code(), Some(CloseCode::INVALID_PAYLOAD));
                failed_at = Some(i);
                break;
            }
        }
        prop_assert_eq!(failed_at, expected_failure);
    }

    /// The masking fast path equals the byte-by-byte definition (RFC 6455 §5.3) for any data,
    /// alignment and key offset, and resuming mid-payload in pieces gives the same bytes.
    #[test]
    fn masking_fast_path_equals_reference(
        data in vec(any::<u8>(), 0..600),
        key in any::<[u8; 4]>(),
        align in 0usize..16,
        offset in 0usize..8,
        cut_points in vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut reference = data.clone();
        for (i, b) in reference.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
        // Shift the data inside a larger buffer so every start alignment is exercised.
        let mut backing = vec![0u8; align];
        backing.extend_from_slice(&data);
        apply_mask_offset(&mut backing[align..], key, offset);
        prop_assert_eq!(&backing[align..], &reference[..]);

        let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut resumed = data.clone();
        for range in ranges(data.len(), &cuts) {
            let at = range.start;
            apply_mask_offset(&mut resumed[range], key, offset + at);
        }
        prop_assert_eq!(resumed, reference);
    }

    /// Untrusted bytes: the header parser never reads past the slice or panics, and a protocol
    /// in either role fed any bytes in any pieces either waits, delivers, or fails with a close
    /// code - it never panics and never grows its read buffer past the input.
    #[test]
    fn arbitrary_bytes_never_panic(
        role in arb_role(),
        bytes in vec(any::<u8>(), 0..400),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        match FrameHeader::parse(&bytes) {
            Ok(Some((header, used))) => {
                prop_assert!(used <= bytes.len());
                prop_assert_eq!(used, header.encoded_len());
            }
            Ok(None) => prop_assert!(bytes.len() < 14),
            Err(err) => prop_assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR)),
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let (_, mut receiver) = sender_and_receiver(role);
        let received = feed_in_pieces(&mut receiver, &bytes, &cuts);
        if let Some(err) = &received.error {
            prop_assert!(err.close_code().is_some());
            prop_assert_eq!(receiver.state(), State::Closed);
        }
        prop_assert!(receiver.read_buffer().len() <= bytes.len());
        let mut src = BytesMut::from(&bytes[..]);
        let mut decoder = FrameCodec::new(peer(role), Config::default());
        while let Ok(Some(_)) = decoder.decode(&mut src) {}
    }
}

/// Text made of valid pieces and arbitrary bytes: valid, or invalid somewhere in the middle.
fn arb_maybe_text() -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            3 => ".{0,6}".prop_map(String::into_bytes),
            1 => vec(any::<u8>(), 0..3),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// RFC 6455 §8.1 inside one frame and across fragments: however the text message is cut
    /// into fragments and the stream into reads, the outcome is the same as for the whole, and
    /// invalid text fails in the very read that brings its first certainly-invalid byte, not
    /// when the frame or message completes (Autobahn 6.4.3, 6.4.4).
    #[test]
    fn rfc6455_8_1_chunking_never_changes_the_outcome_and_fails_where_invalid_bytes_arrive(
        bytes in arb_maybe_text(),
        fragment_cuts in vec(any::<prop::sample::Index>(), 0..4),
        stream_cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let key = [0x11, 0x22, 0x33, 0x44];
        let mut points: Vec<usize> = fragment_cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let fragments = ranges(bytes.len(), &points);
        let mut wire = BytesMut::new();
        // Where each payload byte sits on the wire.
        let mut at = Vec::with_capacity(bytes.len());
        for (i, range) in fragments.iter().enumerate() {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let frame = Frame::new(opcode, bytes[range.clone()].to_vec())
                .with_fin(i + 1 == fragments.len())
                .with_mask(Some(key));
            let start = wire.len() + frame.header().encoded_len();
            frame.encode(&mut wire);
            at.extend(start..start + range.len());
        }
        let mut cuts: Vec<usize> = stream_cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();

        let whole = feed_whole(&mut server(&Config::default()), &wire);
        let (pieces, failed_at) = super::support::feed_in_pieces_noting_the_error(&mut server(&Config::default()), &wire, &cuts);
        prop_assert_eq!(&pieces.messages, &whole.messages);
        prop_assert_eq!(error_of(&pieces), error_of(&whole));
        match std::str::from_utf8(&bytes) {
            Ok(text) => prop_assert_eq!(whole.ok(), vec![Message::text(text)]),
            Err(err) => {
                prop_assert!(matches!(pieces.error, Some(tether_codec::Error::InvalidUtf8)));
                let failed_at = failed_at.unwrap();
                if err.error_len().is_some() {
                    // The read that failed brought the byte that made the text certainly
                    // invalid; the reads before it did not fail.
                    let first_certain = (1..=bytes.len())
                        .find(|&n| std::str::from_utf8(&bytes[..n]).is_err_and(|e| e.error_len().is_some()))
                        .map(|n| at[n - 1])
                        .unwrap();
                    prop_assert!(failed_at > first_certain, "failed before the bytes arrived");
                    let previous = cuts.iter().copied().filter(|&c| c < failed_at).max().unwrap_or(0);
                    prop_assert!(previous <= first_certain, "failed in a later read");
                }
            }
        }
    }
}
