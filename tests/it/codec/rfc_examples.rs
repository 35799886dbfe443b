//! RFC 6455 §5.7 examples, byte for byte, in both directions: each example is decoded by the
//! receiving role, and the sending role encodes exactly those bytes.

use bytes::{Bytes, BytesMut};
use tether_codec::{Config, Frame, FrameCodec, Message, OpCode, Protocol, Role};
use tokio_util::codec::{Decoder, Encoder};

use super::support::{client, feed_whole, server};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client protocol whose every masking key is the one of the RFC examples.
fn rfc_client() -> Protocol {
    Protocol::client(Config::default(), || KEY)
}

#[test]
fn rfc6455_5_7_single_frame_unmasked_text() {
    let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let received = feed_whole(&mut client(&Config::default()), &wire).ok();
    assert_eq!(received, [Message::text("Hello")]);

    let mut sender = server(&Config::default());
    sender.send(Message::text("Hello")).unwrap();
    assert_eq!(&sender.write_buffer()[..], wire);
}

#[test]
fn rfc6455_5_7_single_frame_masked_text() {
    let wire = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let received = feed_whole(&mut server(&Config::default()), &wire).ok();
    assert_eq!(received, [Message::text("Hello")]);

    let mut sender = rfc_client();
    sender.send(Message::text("Hello")).unwrap();
    assert_eq!(&sender.write_buffer()[..], wire);
}

#[test]
fn rfc6455_5_7_fragmented_unmasked_text() {
    let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let received = feed_whole(&mut client(&Config::default()), &wire).ok();
    assert_eq!(received, [Message::text("Hello")]);

    let mut codec = FrameCodec::new(Role::Server, Config::default());
    let mut out = BytesMut::new();
    codec
        .encode(Frame::new(OpCode::Text, "Hel").with_fin(false), &mut out)
        .unwrap();
    codec
        .encode(Frame::new(OpCode::Continuation, "lo"), &mut out)
        .unwrap();
    assert_eq!(&out[..], wire);
}

#[test]
fn rfc6455_5_7_unmasked_ping_and_masked_pong_reply() {
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    // A client receiving the ping answers with exactly the RFC's masked pong.
    let mut receiver = rfc_client();
    let received = feed_whole(&mut receiver, &ping).ok();
    assert_eq!(received, [Message::Ping(Bytes::from_static(b"Hello"))]);
    assert_eq!(&receiver.write_buffer()[..], pong);

    // And a server decodes that pong, and encodes the ping.
    let received = feed_whole(&mut server(&Config::default()), &pong).ok();
    assert_eq!(received, [Message::Pong(Bytes::from_static(b"Hello"))]);
    let mut sender = server(&Config::default());
    sender
        .send(Message::Ping(Bytes::from_static(b"Hello")))
        .unwrap();
    assert_eq!(&sender.write_buffer()[..], ping);
}

/// An unmasked binary example: `header` followed by `payload`, decoded by a client and
/// encoded by a server.
fn unmasked_binary_example(header: &[u8], payload: Vec<u8>) {
    let mut wire = header.to_vec();
    wire.extend_from_slice(&payload);
    let received = feed_whole(&mut client(&Config::default()), &wire).ok();
    assert_eq!(received, [Message::binary(payload.clone())]);

    let mut sender = server(&Config::default());
    sender.send(Message::binary(payload)).unwrap();
    assert_eq!(&sender.write_buffer()[..], wire);
}

#[test]
fn rfc6455_5_7_256_bytes_binary_16_bit_length() {
    unmasked_binary_example(&[0x82, 0x7E, 0x01, 0x00], vec![0xA5u8; 256]);
}

#[test]
fn rfc6455_5_7_64_kib_binary_64_bit_length() {
    unmasked_binary_example(
        &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00],
        vec![0x5Au8; 65536],
    );
}

#[test]
fn rfc6455_5_7_frame_codec_decodes_every_example() {
    let mut server_codec = FrameCodec::new(Role::Server, Config::default());
    let mut masked = BytesMut::from(
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ][..],
    );
    let frame = server_codec.decode(&mut masked).unwrap().unwrap();
    assert_eq!(frame.mask(), Some(KEY));
    assert_eq!(&frame.payload()[..], b"Hello");

    let mut client_codec = FrameCodec::new(Role::Client, Config::default());
    let mut unmasked = BytesMut::from(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f][..]);
    let frame = client_codec.decode(&mut unmasked).unwrap().unwrap();
    assert_eq!(frame.opcode(), OpCode::Ping);
    assert_eq!(&frame.payload()[..], b"Hello");
}
