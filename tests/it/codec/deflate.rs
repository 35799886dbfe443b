//! permessage-deflate (RFC 7692) in the protocol: the RFC's examples in both directions, RSV1
//! rules, corrupt and oversized compressed messages, and round trips with compression on.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use tether_codec::{
    CloseCode, Config, DeflateConfig, DeflateParams, Error, Frame, Message, OpCode, Protocol,
};

use tether_deflate::WindowBits;

use super::support::{arb_message, client, close_code_sent, feed_in_pieces, feed_whole, server};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// RFC 7692 §7.2.3.1: "Hello" compressed, one frame with RSV1 and FIN, as a server sends it.
const HELLO: [u8; 9] = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// The offer a client with `config` sends, as parameter lists for `accept_offer`.
fn offer_params(offer: &str) -> Vec<(&str, Option<&str>)> {
    offer
        .split(';')
        .skip(1)
        .map(|p| match p.trim().split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (p.trim(), None),
        })
        .collect()
}

/// What a client with `client` and a server with `server` agree on.
fn agree(client: &DeflateConfig, server: &DeflateConfig) -> DeflateParams {
    let offer = client.offer();
    let accepted = server.accept_offer([offer_params(&offer)]).unwrap();
    let answer = accepted.response().to_owned();
    let params = client
        .accept_response([offer_params(&answer)])
        .unwrap()
        .unwrap();
    assert_eq!(&params, accepted.params());
    params
}

fn every_message() -> DeflateConfig {
    let mut config = DeflateConfig::default();
    config.set_threshold(0);
    config
}

/// A client and a server protocol with deflate agreed between `c` and `s`.
fn pair(config: &Config, c: &DeflateConfig, s: &DeflateConfig) -> (Protocol, Protocol) {
    let params = agree(c, s);
    let mut client = client(config);
    client.set_deflate(params, c);
    let mut server = server(config);
    server.set_deflate(params, s);
    (client, server)
}

fn deflate_server() -> Protocol {
    pair(&Config::default(), &every_message(), &every_message()).1
}

fn deflate_client() -> Protocol {
    pair(&Config::default(), &every_message(), &every_message()).0
}

/// `frame` masked as a client sends it.
fn masked(frame: Frame) -> BytesMut {
    let mut out = BytesMut::new();
    frame.with_mask(Some(KEY)).encode(&mut out);
    out
}

/// The unmasked payload and header bits of every frame in `wire`.
fn frames(wire: &[u8]) -> Vec<(bool, OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let (header, used) = tether_codec::FrameHeader::parse(rest).unwrap().unwrap();
        let len = header.payload_len as usize;
        let mut payload = rest[used..used + len].to_vec();
        if let Some(key) = header.mask {
            tether_codec::apply_mask(&mut payload, key);
        }
        out.push((header.rsv1, header.opcode, header.fin, payload));
        rest = &rest[used + len..];
    }
    out
}

/// Feeds `wire` to `receiver`, which must fail and send a close with `code`; the error.
fn fails_with(receiver: &mut Protocol, wire: &[u8], code: CloseCode) -> Option<Error> {
    let received = feed_whole(receiver, wire);
    assert_eq!(close_code_sent(&receiver.write_buffer().split()), code);
    received.error
}

#[test]
fn rfc7692_7_2_3_1_compressed_hello_both_directions() {
    // Server to client: the RFC's bytes exactly.
    let mut server = deflate_server();
    server.send(Message::text("Hello")).unwrap();
    assert_eq!(&server.write_buffer()[..], HELLO);
    let mut client = deflate_client();
    assert_eq!(
        feed_whole(&mut client, &HELLO).ok(),
        [Message::text("Hello")]
    );

    // Client to server: the same payload, masked.
    let mut client = deflate_client();
    client.send(Message::text("Hello")).unwrap();
    let wire = client.write_buffer().split();
    assert_eq!(
        frames(&wire),
        [(true, OpCode::Text, true, HELLO[2..].to_vec())]
    );
    let mut server = deflate_server();
    let wire =
        masked(Frame::new(OpCode::Text, Bytes::copy_from_slice(&HELLO[2..])).with_rsv1(true));
    assert_eq!(wire[0], 0xc1);
    assert_eq!(
        feed_whole(&mut server, &wire).ok(),
        [Message::text("Hello")]
    );
}

#[test]
fn rfc7692_7_2_3_1_fragmented_compressed_hello() {
    // "41 03 f2 48 cd" then "80 04 c9 c9 07 00": RSV1 on the first fragment only.
    let wire = [
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let mut client = deflate_client();
    assert_eq!(
        feed_whole(&mut client, &wire).ok(),
        [Message::text("Hello")]
    );
}

#[test]
fn rfc7692_7_2_3_2_second_message_shares_the_window() {
    let mut server = deflate_server();
    server.send(Message::text("Hello")).unwrap();
    server.send(Message::text("Hello")).unwrap();
    let wire = server.write_buffer().split();
    assert_eq!(&wire[9..], [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]);
    let mut client = deflate_client();
    assert_eq!(
        feed_whole(&mut client, &wire).ok(),
        [Message::text("Hello"), Message::text("Hello")]
    );
}

#[test]
fn rfc7692_7_2_3_2_no_context_takeover_resets_the_window() {
    let mut s = every_message();
    s.set_server_no_context_takeover(true);
    let (_, mut server) = pair(&Config::default(), &every_message(), &s);
    server.send(Message::text("Hello")).unwrap();
    server.send(Message::text("Hello")).unwrap();
    let wire = server.write_buffer().split();
    assert_eq!(&wire[..9], HELLO);
    assert_eq!(&wire[9..], HELLO);
}

#[test]
fn rfc7692_7_2_3_3_uncompressed_deflate_block() {
    let wire = [
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    let mut client = deflate_client();
    assert_eq!(
        feed_whole(&mut client, &wire).ok(),
        [Message::text("Hello")]
    );
}

#[test]
fn rfc7692_6_threshold_and_fragments_go_uncompressed() {
    let (_, mut server) = pair(
        &Config::default(),
        &DeflateConfig::default(),
        &DeflateConfig::default(),
    );
    // Default threshold 64: 63 bytes go plain, 64 compressed.
    server.send(Message::binary(vec![7u8; 63])).unwrap();
    server.send(Message::binary(vec![7u8; 64])).unwrap();
    // One whole message sent uncompressed on purpose: a single fragment with FIN.
    server
        .send_fragment(OpCode::Text, &[b'a'; 100], true)
        .unwrap();
    let wire = server.write_buffer().split();
    let sent = frames(&wire);
    let bits: Vec<_> = sent.iter().map(|f| (f.0, f.1, f.2)).collect();
    assert_eq!(
        bits,
        [
            (false, OpCode::Binary, true),
            (true, OpCode::Binary, true),
            (false, OpCode::Text, true)
        ]
    );
    assert!(sent[1].3.len() < 64);
    let mut client = deflate_client();
    assert_eq!(
        feed_whole(&mut client, &wire).ok(),
        [
            Message::binary(vec![7u8; 63]),
            Message::binary(vec![7u8; 64]),
            Message::text("a".repeat(100))
        ]
    );
}

#[test]
fn rfc7692_6_compressed_message_cut_by_send_fragment_size_has_rsv1_on_the_first_frame() {
    let mut config = Config::default();
    config.set_send_fragment_size(std::num::NonZeroUsize::new(3));
    let (mut client, mut server) = pair(&config, &every_message(), &every_message());
    server.send(Message::text("Hello")).unwrap();
    let wire = server.write_buffer().split();
    let bits: Vec<_> = frames(&wire).iter().map(|f| (f.0, f.1, f.2)).collect();
    assert_eq!(
        bits,
        [
            (true, OpCode::Text, false),
            (false, OpCode::Continuation, false),
            (false, OpCode::Continuation, true)
        ]
    );
    assert_eq!(
        feed_whole(&mut client, &wire).ok(),
        [Message::text("Hello")]
    );
}

#[test]
fn rfc7692_6_rsv1_on_control_or_continuation_frames_is_1002() {
    let ping = masked(Frame::new(OpCode::Ping, "x").with_rsv1(true));
    let mut continuation = masked(Frame::new(OpCode::Text, "").with_rsv1(true).with_fin(false));
    continuation.extend_from_slice(&masked(
        Frame::new(OpCode::Continuation, "").with_rsv1(true),
    ));
    for wire in [ping, continuation] {
        let mut server = deflate_server();
        let error = fails_with(&mut server, &wire, CloseCode::PROTOCOL_ERROR);
        assert!(
            matches!(error, Some(Error::ReservedBits { rsv: 0b100 })),
            "{error:?}"
        );
    }
}

#[test]
fn rfc7692_corrupt_deflate_data_is_1002() {
    // BTYPE 11 is reserved in RFC 1951: not a DEFLATE stream.
    let wire = masked(Frame::new(OpCode::Binary, vec![0xff, 0xff, 0xff]).with_rsv1(true));
    let mut server = deflate_server();
    let error = fails_with(&mut server, &wire, CloseCode::PROTOCOL_ERROR);
    assert!(matches!(error, Some(Error::CorruptDeflate)), "{error:?}");
}

#[test]
fn rfc6455_8_1_invalid_utf8_inside_compressed_text_is_1007() {
    let (mut client, mut server) = pair(&Config::default(), &every_message(), &every_message());
    // A binary message's compressed payload, relabelled as text.
    client
        .send(Message::binary(vec![0xc3, 0x28, b'a', b'b']))
        .unwrap();
    let mut wire = client.write_buffer().split();
    wire[0] = (wire[0] & 0xf0) | 0x01;
    let error = fails_with(&mut server, &wire, CloseCode::INVALID_PAYLOAD);
    assert!(matches!(error, Some(Error::InvalidUtf8)), "{error:?}");
}

/// Found by the `codec_deflate` fuzz target: compressed text whose first inflated bytes are
/// not UTF-8 and whose DEFLATE data turns corrupt later. Read whole, the inflater met the
/// corruption before the text was checked (1002); read in pieces, the text failed first
/// (1007). Errors now come in stream order, wherever the reads fall.
#[test]
fn rfc7692_invalid_text_before_corrupt_data_is_1007_in_any_reads() {
    let wire = masked(
        Frame::new(OpCode::Text, vec![0xf2, 0xd8, 0xd8, 0xd8, 0xd8, 0x48, 0xcd]).with_rsv1(true),
    );
    for cut in 1..wire.len() {
        let received = feed_in_pieces(&mut deflate_server(), &wire, &[cut]);
        assert!(received.messages.is_empty(), "cut at {cut}: {received:?}");
        assert!(
            matches!(received.error, Some(Error::InvalidUtf8)),
            "cut at {cut}: {:?}",
            received.error
        );
    }
    let mut whole = deflate_server();
    let error = fails_with(&mut whole, &wire, CloseCode::INVALID_PAYLOAD);
    assert!(matches!(error, Some(Error::InvalidUtf8)), "{error:?}");
}

#[test]
fn rfc7692_inflated_size_at_and_past_the_message_limit() {
    let mut config = Config::default();
    config.set_max_message_size(1000);
    for (len, ok) in [(1000, true), (1001, false)] {
        let (mut client, mut server) = pair(&config, &every_message(), &every_message());
        client.send(Message::binary(vec![b'z'; len])).unwrap();
        let wire = client.write_buffer().split();
        assert!(wire.len() < 100, "compressed");
        let received = feed_whole(&mut server, &wire);
        if ok {
            assert_eq!(received.ok(), [Message::binary(vec![b'z'; len])]);
        } else {
            assert!(
                matches!(
                    received.error,
                    Some(Error::MessageTooLarge { limit: 1000, .. })
                ),
                "{:?}",
                received.error
            );
            assert_eq!(
                close_code_sent(&server.write_buffer().split()),
                CloseCode::MESSAGE_TOO_BIG
            );
        }
    }
}

/// Deflate settings for the round trip: context takeover on or off and any window in each
/// direction, and a threshold that leaves some messages uncompressed.
fn arb_deflate() -> impl Strategy<Value = (DeflateConfig, DeflateConfig)> {
    let bits = || (8u8..=15).prop_map(|b| WindowBits::new(b).unwrap());
    (any::<[bool; 2]>(), bits(), bits(), 0usize..100).prop_map(
        |([c_reset, s_reset], c_bits, s_bits, threshold)| {
            let mut c = DeflateConfig::default();
            c.set_client_no_context_takeover(c_reset)
                .set_client_max_window_bits(c_bits)
                .set_threshold(threshold);
            let mut s = DeflateConfig::default();
            s.set_server_no_context_takeover(s_reset)
                .set_server_max_window_bits(s_bits)
                .set_threshold(threshold);
            (c, s)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any message sequence sent with deflate on arrives unchanged in the other direction, in
    /// both directions, however the bytes are cut into reads.
    #[test]
    fn rfc7692_any_messages_round_trip_compressed_in_any_chunks(
        (c, s) in arb_deflate(),
        messages in vec(arb_message(), 1..12),
        fragment in proptest::option::of(1usize..300),
        cuts in vec(0usize..70_000, 0..20),
    ) {
        let mut config = Config::default();
        config.set_send_fragment_size(fragment.and_then(std::num::NonZeroUsize::new));
        let (mut client, mut server) = pair(&config, &c, &s);
        for server_sends in [false, true] {
            let (sender, receiver) = if server_sends {
                (&mut server, &mut client)
            } else {
                (&mut client, &mut server)
            };
            for message in &messages {
                sender.send(message.clone()).unwrap();
            }
            let wire = sender.write_buffer().split();
            let mut cuts = cuts.clone();
            cuts.sort_unstable();
            let received = feed_in_pieces(receiver, &wire, &cuts).ok();
            prop_assert_eq!(&received, &messages);
            receiver.write_buffer().clear();
        }
    }
}
