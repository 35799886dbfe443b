//! Sending fragmented messages (RFC 6455 §5.4): whatever way a sender cuts a message, with
//! control frames between the fragments, the peer's `Protocol` receives it whole; and a sender
//! refuses text on the same fragment where a receiver would fail it.

use std::num::NonZeroUsize;

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use tether_codec::{Config, Error, Frame, Message, OpCode, Protocol, Role};

use super::support::{
    arb_control_payload, arb_payload, arb_text, client, feed_in_pieces, feed_whole, peer, ranges,
    server, wire_frames,
};

/// What goes into the gap after a fragment.
#[derive(Debug, Clone)]
enum Between {
    /// The sender pings the receiver.
    OurPing(Vec<u8>),
    /// The receiver's side pings the sender, whose automatic pong goes out between fragments.
    PeerPing(Vec<u8>),
}

fn arb_between() -> impl Strategy<Value = Between> {
    prop_oneof![
        arb_control_payload().prop_map(Between::OurPing),
        arb_control_payload().prop_map(Between::PeerPing),
    ]
}

fn protocol(role: Role, config: &Config) -> Protocol {
    match role {
        Role::Client => client(config),
        Role::Server => server(config),
    }
}

fn sorted_indices(indices: &[prop::sample::Index], len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = indices.iter().map(|i| i.index(len + 1)).collect();
    out.sort_unstable();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any text or binary message, sent by either role as any sequence of fragments (empty ones
    /// included, optionally re-cut by `send_fragment_size`), with our pings and automatic pongs
    /// between them, arrives at the peer as the control frames in order and then the message,
    /// however the byte stream is split on the way.
    #[test]
    fn rfc6455_5_4_any_fragmentation_is_received_whole(
        sender_role in prop_oneof![Just(Role::Client), Just(Role::Server)],
        text in proptest::option::of(arb_text()),
        binary in arb_payload(),
        fragment_points in vec(any::<prop::sample::Index>(), 0..10),
        between in vec((any::<prop::sample::Index>(), arb_between()), 0..5),
        fragment_size in proptest::option::of(1usize..300),
        stream_points in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let (opcode, payload, message) = match text {
            Some(text) => (OpCode::Text, text.clone().into_bytes(), Message::text(text)),
            None => (OpCode::Binary, binary.clone(), Message::binary(binary)),
        };
        let mut config = Config::default();
        config.set_send_fragment_size(fragment_size.and_then(NonZeroUsize::new));
        let mut sender = protocol(sender_role, &config);
        let mut pinger = protocol(peer(sender_role), &Config::default());
        let fragments = ranges(payload.len(), &sorted_indices(&fragment_points, payload.len()));
        let last = fragments.len() - 1;
        let mut expected = Vec::new();
        // Where the pong the sender owes sits in `expected`: RFC 6455 §5.5.3 lets it answer
        // only the latest of the pings received before it queued another frame.
        let mut owed: Option<usize>;
        for (i, range) in fragments.iter().enumerate() {
            let op = if i == 0 { opcode } else { OpCode::Continuation };
            sender.send_fragment(op, &payload[range.clone()], i == last).unwrap();
            owed = None;
            if i == last {
                break;
            }
            for (_, control) in between.iter().filter(|(at, _)| at.index(last.max(1)) == i) {
                match control {
                    Between::OurPing(data) => {
                        sender.send(Message::Ping(data.clone().into())).unwrap();
                        expected.push(Message::Ping(data.clone().into()));
                        owed = None;
                    }
                    Between::PeerPing(data) => {
                        pinger.send(Message::Ping(data.clone().into())).unwrap();
                        let ping = pinger.write_buffer().split();
                        sender.receive_data(&ping);
                        prop_assert_eq!(
                            sender.poll_message().unwrap(),
                            Some(Message::Ping(data.clone().into()))
                        );
                        let pong = Message::Pong(data.clone().into());
                        match owed {
                            Some(at) => expected[at] = pong,
                            None => {
                                owed = Some(expected.len());
                                expected.push(pong);
                            }
                        }
                    }
                }
            }
        }
        expected.push(message);
        let wire = sender.write_buffer().split();

        // On the wire: every frame masked exactly when a client sent it; the data frames are
        // one opcode frame, then continuations, FIN on the last only.
        let frames = wire_frames(&wire);
        prop_assert!(frames.iter().all(|f| f.masked == (sender_role == Role::Client)));
        let data: Vec<_> = frames.iter().filter(|f| !f.opcode.is_control()).collect();
        prop_assert_eq!(data[0].opcode, opcode);
        prop_assert!(data[1..].iter().all(|f| f.opcode == OpCode::Continuation));
        prop_assert!(data.iter().rev().skip(1).all(|f| !f.fin));
        prop_assert!(data.last().is_some_and(|f| f.fin));
        if let Some(size) = fragment_size {
            prop_assert!(data.iter().all(|f| f.payload.len() <= size));
        }

        let mut receiver = protocol(peer(sender_role), &Config::default());
        let received = feed_in_pieces(
            &mut receiver,
            &wire,
            &sorted_indices(&stream_points, wire.len()),
        )
        .ok();
        prop_assert_eq!(received, expected);
    }

    /// RFC 6455 §8.1: text sent fragment by fragment is refused on exactly the fragment where a
    /// receiver, given the same fragments, fails the connection with 1007; a refused fragment
    /// queues nothing.
    #[test]
    fn rfc6455_8_1_sender_refuses_text_where_the_receiver_would_fail(
        prefix in ".{0,8}",
        junk in vec(any::<u8>(), 0..6),
        suffix in ".{0,8}",
        points in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut bytes = prefix.into_bytes();
        bytes.extend_from_slice(&junk);
        bytes.extend_from_slice(suffix.as_bytes());
        let fragments = ranges(bytes.len(), &sorted_indices(&points, bytes.len()));
        let last = fragments.len() - 1;

        let mut receiver = server(&Config::default());
        let mut receiver_failed_at = None;
        for (i, range) in fragments.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let mut wire = BytesMut::new();
            Frame::new(op, bytes[range.clone()].to_vec())
                .with_fin(i == last)
                .with_mask(Some([7, 7, 7, 7]))
                .encode(&mut wire);
            if feed_whole(&mut receiver, &wire).error.is_some() {
                receiver_failed_at = Some(i);
                break;
            }
        }

        let mut sender = server(&Config::default());
        let mut sender_refused_at = None;
        for (i, range) in fragments.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let queued = sender.write_buffer_len();
            match sender.send_fragment(op, &bytes[range.clone()], i == last) {
                Ok(()) => {}
                Err(Error::InvalidTextFragment) => {
                    prop_assert_eq!(sender.write_buffer_len(), queued);
                    sender_refused_at = Some(i);
                    break;
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(sender_refused_at, receiver_failed_at);
    }
}
