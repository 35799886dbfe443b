//! One test per protocol violation: the receiver reports the error, queues a close frame with
//! the code RFC 6455 names for it, and is closed.

use bytes::BytesMut;
use tether_codec::{CloseCode, Config, Error, Frame, Message, OpCode, Protocol, Role, State};

use super::support::{client, close_code_sent, feed_whole, server};

const KEY: [u8; 4] = [0xA1, 0xB2, 0xC3, 0xD4];

/// `frame` as a client sends it (masked).
fn masked(frame: Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame.with_mask(Some(KEY)).encode(&mut out);
    out.to_vec()
}

/// `frames` as a client sends them, back to back.
fn masked_all(frames: impl IntoIterator<Item = Frame>) -> Vec<u8> {
    frames.into_iter().flat_map(masked).collect()
}

/// Feeds `wire` to a receiver of `role` and returns the error and the close code it queued.
fn failure(role: Role, config: &Config, wire: &[u8]) -> (Error, CloseCode) {
    let mut receiver: Protocol = match role {
        Role::Server => server(config),
        Role::Client => client(config),
    };
    let received = feed_whole(&mut receiver, wire);
    let err = received.error.expect("the input must be refused");
    assert_eq!(receiver.state(), State::Closed);
    assert!(matches!(
        receiver.send(Message::text("x")),
        Err(Error::Closed)
    ));
    let code = close_code_sent(&receiver.write_buffer()[..]);
    assert_eq!(err.close_code(), Some(code), "error and wire agree");
    (err, code)
}

fn server_failure(wire: &[u8]) -> (Error, CloseCode) {
    failure(Role::Server, &Config::default(), wire)
}

#[test]
fn rfc6455_5_2_non_minimal_16_bit_length() {
    let mut wire = vec![0x82, 0xFE, 0x00, 0x7D];
    wire.extend_from_slice(&KEY);
    let (err, code) = server_failure(&wire);
    assert!(matches!(
        err,
        Error::NonMinimalLength { len: 125, width: 2 }
    ));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_2_non_minimal_64_bit_length() {
    let mut wire = vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
    wire.extend_from_slice(&KEY);
    let (err, code) = server_failure(&wire);
    assert!(matches!(
        err,
        Error::NonMinimalLength {
            len: 0xFFFF,
            width: 8
        }
    ));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_2_64_bit_length_with_top_bit_set() {
    let mut wire = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    wire.extend_from_slice(&KEY);
    let (err, code) = server_failure(&wire);
    assert!(matches!(err, Error::LengthTopBitSet));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_2_rsv_bits_without_extension() {
    for (bit, rsv) in [(0x40u8, 0b100u8), (0x20, 0b010), (0x10, 0b001)] {
        let mut wire = masked(Frame::new(OpCode::Binary, "x"));
        wire[0] |= bit;
        let (err, code) = server_failure(&wire);
        assert!(
            matches!(err, Error::ReservedBits { rsv: r } if r == rsv),
            "{err:?}"
        );
        assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn rfc6455_5_2_reserved_data_and_control_opcodes() {
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        let (err, code) = server_failure(&masked(Frame::new(OpCode::Reserved(op), "")));
        assert!(
            matches!(err, Error::ReservedOpcode(o) if o == op),
            "{err:?}"
        );
        assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    }
}

#[test]
fn rfc6455_5_1_server_rejects_unmasked_frame() {
    let (err, code) = server_failure(&[0x81, 0x02, b'h', b'i']);
    assert!(matches!(err, Error::UnmaskedFrame));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_1_client_rejects_masked_frame() {
    let (err, code) = failure(
        Role::Client,
        &Config::default(),
        &masked(Frame::new(OpCode::Text, "hi")),
    );
    assert!(matches!(err, Error::MaskedFrame));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    // The client's own close frame is masked, as every client frame must be.
}

#[test]
fn rfc6455_5_5_control_frame_too_long() {
    for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let (err, code) = server_failure(&masked(Frame::new(op, vec![0u8; 126])));
        assert!(
            matches!(err, Error::ControlFrameTooLong { len: 126 }),
            "{err:?}"
        );
        assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    }
    // At the limit it passes.
    let received = feed_whole(
        &mut server(&Config::default()),
        &masked(Frame::new(OpCode::Ping, vec![0u8; 125])),
    );
    assert_eq!(received.ok().len(), 1);
}

#[test]
fn rfc6455_5_5_fragmented_control_frame() {
    let (err, code) = server_failure(&masked(Frame::new(OpCode::Ping, "x").with_fin(false)));
    assert!(matches!(err, Error::FragmentedControlFrame));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_4_continuation_without_message() {
    let (err, code) = server_failure(&masked(Frame::new(OpCode::Continuation, "x")));
    assert!(matches!(err, Error::UnexpectedContinuation));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_4_new_message_inside_fragmented_message() {
    let wire = masked_all([
        Frame::new(OpCode::Text, "a").with_fin(false),
        Frame::new(OpCode::Binary, "b"),
    ]);
    let (err, code) = server_failure(&wire);
    assert!(matches!(
        err,
        Error::ExpectedContinuation {
            opcode: OpCode::Binary
        }
    ));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_5_5_1_close_with_one_byte_payload() {
    let (err, code) = server_failure(&masked(Frame::new(OpCode::Close, vec![0x03])));
    assert!(matches!(err, Error::CloseFrameOneByte));
    assert_eq!(code, CloseCode::PROTOCOL_ERROR);
}

#[test]
fn rfc6455_7_4_close_codes_that_may_not_be_on_the_wire() {
    for bad in [
        0u16,
        999,
        1004,
        1005,
        1006,
        1015,
        1016,
        2999,
        5000,
        u16::MAX,
    ] {
        let (err, code) = server_failure(&masked(Frame::new(
            OpCode::Close,
            bad.to_be_bytes().to_vec(),
        )));
        assert!(
            matches!(err, Error::InvalidCloseCode(c) if c == bad),
            "{err:?}"
        );
        assert_eq!(code, CloseCode::PROTOCOL_ERROR);
    }
    for good in [1000u16, 1003, 1007, 1014, 3000, 4999] {
        let received = feed_whole(
            &mut server(&Config::default()),
            &masked(Frame::new(OpCode::Close, good.to_be_bytes().to_vec())),
        );
        assert_eq!(received.ok().len(), 1, "{good} accepted");
    }
}

#[test]
fn rfc6455_8_1_invalid_utf8_single_frame_text() {
    let (err, code) = server_failure(&masked(Frame::new(OpCode::Text, &b"ok\xff"[..])));
    assert!(matches!(err, Error::InvalidUtf8));
    assert_eq!(code, CloseCode::INVALID_PAYLOAD);
}

#[test]
fn rfc6455_8_1_invalid_utf8_fails_on_the_fragment_not_the_end() {
    let mut receiver = server(&Config::default());
    let first = masked(Frame::new(OpCode::Text, &b"fine \xc3"[..]).with_fin(false));
    assert!(feed_whole(&mut receiver, &first).ok().is_empty());
    // 0xc3 followed by 'x' is certainly invalid: the second, non-final fragment fails.
    let second = masked(Frame::new(OpCode::Continuation, &b"x"[..]).with_fin(false));
    let received = feed_whole(&mut receiver, &second);
    assert!(matches!(received.error, Some(Error::InvalidUtf8)));
    assert_eq!(
        close_code_sent(&receiver.write_buffer()[..]),
        CloseCode::INVALID_PAYLOAD
    );
}

#[test]
fn rfc6455_8_1_truncated_code_point_at_end_of_message() {
    let wire = masked_all([
        Frame::new(OpCode::Text, &b"\xe2\x82"[..]).with_fin(false),
        Frame::new(OpCode::Continuation, ""),
    ]);
    let (err, code) = server_failure(&wire);
    assert!(matches!(err, Error::InvalidUtf8));
    assert_eq!(code, CloseCode::INVALID_PAYLOAD);
}

#[test]
fn rfc6455_5_5_1_close_reason_invalid_utf8() {
    let (err, code) = server_failure(&masked(Frame::new(OpCode::Close, &b"\x03\xe8\xc0\xaf"[..])));
    assert!(matches!(err, Error::InvalidUtf8));
    assert_eq!(code, CloseCode::INVALID_PAYLOAD);
}

#[test]
fn frame_payload_limit_at_and_one_past() {
    let mut config = Config::default();
    config.set_max_frame_payload(1000);
    let mut receiver = server(&config);
    let ok = feed_whole(
        &mut receiver,
        &masked(Frame::new(OpCode::Binary, vec![1u8; 1000])),
    );
    assert_eq!(ok.ok(), [Message::binary(vec![1u8; 1000])]);
    let (err, code) = failure(
        Role::Server,
        &config,
        &masked(Frame::new(OpCode::Binary, vec![1u8; 1001])),
    );
    assert!(matches!(
        err,
        Error::FrameTooLarge {
            len: 1001,
            limit: 1000
        }
    ));
    assert_eq!(code, CloseCode::MESSAGE_TOO_BIG);
}

#[test]
fn frame_limit_is_checked_from_the_header_before_the_payload() {
    // 2^62 bytes announced; only the header arrives, and that is enough to refuse it.
    let mut wire = vec![0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0];
    wire.extend_from_slice(&KEY);
    let mut receiver = server(&Config::default());
    let received = feed_whole(&mut receiver, &wire);
    assert!(matches!(received.error, Some(Error::FrameTooLarge { len, .. }) if len == 1 << 62));
    assert!(
        receiver.read_buffer().capacity() < 1 << 20,
        "nothing allocated for the payload"
    );
}

#[test]
fn message_size_limit_at_and_one_past() {
    let mut config = Config::default();
    config.set_max_message_size(1000).set_fragment_overhead(0);
    let fragments = |extra: usize| {
        masked_all([
            Frame::new(OpCode::Binary, vec![1u8; 600]).with_fin(false),
            Frame::new(OpCode::Continuation, vec![1u8; 400 + extra]),
        ])
    };
    let received = feed_whole(&mut server(&config), &fragments(0));
    assert_eq!(received.ok(), [Message::binary(vec![1u8; 1000])]);
    let (err, code) = failure(Role::Server, &config, &fragments(1));
    assert!(matches!(
        err,
        Error::MessageTooLarge {
            size: 1001,
            limit: 1000
        }
    ));
    assert_eq!(code, CloseCode::MESSAGE_TOO_BIG);

    // A single frame is held to the message limit too.
    let (err, _) = failure(
        Role::Server,
        &config,
        &masked(Frame::new(OpCode::Binary, vec![1u8; 1001])),
    );
    assert!(matches!(
        err,
        Error::MessageTooLarge {
            size: 1001,
            limit: 1000
        }
    ));
}

#[test]
fn flood_of_empty_fragments_reaches_the_message_limit() {
    // Node ws had a CVE for unbounded fragment floods: empty continuations must still count.
    let config = Config::default();
    let per_fragment = config.fragment_overhead();
    let allowed = config.max_message_size() / per_fragment;
    let mut receiver = server(&config);
    let first = masked(Frame::new(OpCode::Binary, "").with_fin(false));
    let empty = masked(Frame::new(OpCode::Continuation, "").with_fin(false));
    let mut wire = first.clone();
    for _ in 0..allowed {
        wire.extend_from_slice(&empty);
    }
    let received = feed_whole(&mut receiver, &wire);
    assert!(
        received.ok().is_empty(),
        "exactly at the limit: still accepted"
    );
    let received = feed_whole(&mut receiver, &empty);
    assert!(matches!(
        received.error,
        Some(Error::MessageTooLarge { .. })
    ));
    assert_eq!(
        close_code_sent(&receiver.write_buffer()[..]),
        CloseCode::MESSAGE_TOO_BIG
    );
}

#[test]
fn four_mib_in_64_byte_fragments_passes_default_limits() {
    let message: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    let chunks: Vec<&[u8]> = message.chunks(64).collect();
    let mut wire = Vec::with_capacity(message.len() / 64 * 72);
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        let fin = i == chunks.len() - 1;
        wire.extend(masked(Frame::new(opcode, chunk.to_vec()).with_fin(fin)));
    }
    let received = feed_whole(&mut server(&Config::default()), &wire).ok();
    assert_eq!(received, [Message::binary(message)]);
}
