//! The protocol's rules, one by one, on bytes in and bytes out.

use std::io::IoSlice;

use bytes::Bytes;

use super::*;
use crate::close::{CloseCode, CloseFrame};
use crate::frame::Frame;
use crate::mask::apply_mask;
use crate::message::Message;
use crate::opcode::OpCode;
use crate::outbox::ZERO_COPY_MIN;

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// Bytes a client would send for `frame` (masked with `KEY`).
fn from_client(frame: Frame) -> BytesMut {
    let mut out = BytesMut::new();
    frame.with_mask(Some(KEY)).encode(&mut out);
    out
}

/// Bytes a server would send for `frame`.
fn unmasked(frame: Frame) -> BytesMut {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    out
}

fn server_with(config: &Config) -> Protocol {
    Protocol::server(config.clone())
}

/// Feeds `wire` to a fresh server and returns the error and the close code it sent.
fn server_failure(config: &Config, wire: &[u8]) -> (Error, Option<CloseCode>) {
    let mut server = server_with(config);
    server.receive_data(wire);
    let err = loop {
        match server.poll_message() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {wire:02x?}"),
            Err(err) => break err,
        }
    };
    assert_eq!(server.state(), State::Closed);
    let out = server.write_buffer().split();
    let (header, used) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(header.opcode, OpCode::Close);
    let sent = CloseFrame::decode(out.freeze().slice(used..))
        .unwrap()
        .map(|f| f.code);
    (err, sent)
}

#[test]
fn rfc6455_5_5_2_ping_is_answered_with_identical_pong() {
    let mut server = server_with(&Config::default());
    server.receive_data(&from_client(Frame::new(OpCode::Ping, "abc")));
    assert_eq!(
        server.poll_message().unwrap(),
        Some(Message::Ping(Bytes::from_static(b"abc")))
    );
    assert_eq!(&server.write_buffer()[..], b"\x8a\x03abc");
}

#[test]
fn rfc6455_5_5_3_only_the_latest_ping_is_answered_while_the_buffer_is_full() {
    let mut server = server_with(&Config::default());
    server.send(Message::binary(vec![1u8; 1000])).unwrap();
    let data = server.write_buffer_len();
    // A peer that pings without reading: the buffer is never drained meanwhile.
    for i in 0..10_000u32 {
        let mut payload = vec![b'p'; 121];
        payload.extend_from_slice(&i.to_be_bytes());
        server.receive_data(&from_client(Frame::new(OpCode::Ping, payload)));
        assert!(server.poll_message().unwrap().is_some());
        assert_eq!(server.write_buffer_len(), data + 2 + 125, "one pong owed");
    }
    assert_eq!(
        server.write_buffer().len(),
        data,
        "not queued behind the data"
    );
    let wire = server.write_buffer().split();
    assert_eq!(wire.len(), data);
    // Drained: the pong for the latest ping goes in, alone.
    let pong = server.write_buffer().split();
    let frames = frames_in(&pong);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.opcode, OpCode::Pong);
    assert_eq!(&frames[0].1[121..], 9_999u32.to_be_bytes());
    assert_eq!(server.write_buffer_len(), 0);
    assert!(server.write_buffer().is_empty(), "answered once");
}

#[test]
fn rfc6455_5_5_3_pending_pong_goes_before_the_next_frame() {
    let mut server = server_with(&Config::default());
    server.send(Message::text("first")).unwrap();
    server.receive_data(&from_client(Frame::new(OpCode::Ping, "a")));
    server.receive_data(&from_client(Frame::new(OpCode::Ping, "b")));
    while server.poll_message().unwrap().is_some() {}
    server.send(Message::text("second")).unwrap();
    server.close(CloseCode::NORMAL, "").unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [
            (OpCode::Text, true, b"first".to_vec()),
            (OpCode::Pong, true, b"b".to_vec()),
            (OpCode::Text, true, b"second".to_vec()),
            (OpCode::Close, true, b"\x03\xe8".to_vec()),
        ]
    );
}

#[test]
fn rfc6455_5_5_3_pending_pong_precedes_close_and_nothing_follows_it() {
    let mut client = Protocol::client(Config::default(), || KEY);
    client.send(Message::binary(vec![0u8; 10])).unwrap();
    client.receive_data(&unmasked(Frame::new(OpCode::Ping, "x")));
    assert!(client.poll_message().unwrap().is_some());
    assert_eq!(
        client.write_buffer_len(),
        16 + 2 + 4 + 1,
        "masked pong counted"
    );
    client.close(CloseCode::NORMAL, "").unwrap();
    client.receive_data(&unmasked(Frame::new(OpCode::Ping, "y")));
    assert!(client.poll_message().unwrap().is_some());
    let shape = sent_shape(&mut client);
    assert_eq!(shape[1], (OpCode::Pong, true, b"x".to_vec()));
    assert_eq!(shape[2].0, OpCode::Close);
    assert_eq!(shape.len(), 3);
    assert!(client.write_buffer().is_empty(), "no pong after the close");
}

/// Autobahn 6.4.3: one text frame in three chops, invalid UTF-8 in the middle one. The
/// failure (1007) comes with the middle chop, while the last has not arrived.
#[test]
fn rfc6455_8_1_invalid_text_fails_in_the_chop_where_it_arrives() {
    let mut payload = "κόσμε".as_bytes().to_vec();
    payload.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80");
    payload.extend_from_slice(b"edited");
    for fin in [true, false] {
        // A single-frame message, and the first fragment of one.
        let wire = from_client(Frame::new(OpCode::Text, payload.clone()).with_fin(fin));
        let (first, rest) = wire.split_at(2 + 4 + 12);
        let (middle, last) = rest.split_at(rest.len() - 6);
        let mut server = server_with(&Config::default());
        server.receive_data(first);
        assert_eq!(server.poll_message().unwrap(), None);
        server.receive_data(middle);
        assert!(matches!(server.poll_message(), Err(Error::InvalidUtf8)));
        assert_eq!(server.state(), State::Closed);
        let out = server.write_buffer().split();
        assert_eq!(&out[2..4], 1007u16.to_be_bytes(), "fin {fin}");
        assert!(!last.is_empty(), "the rest of the frame never arrived");
    }
}

/// A valid text frame that arrives in chops is checked as it comes and still handed out
/// without a copy: the message's bytes are the read buffer's.
#[test]
fn text_frame_in_chops_stays_zero_copy() {
    let text = "héllo wörld ".repeat(100);
    let wire = from_client(Frame::new(OpCode::Text, text.clone()));
    let mut server = server_with(&Config::default());
    server.read_buffer().reserve(wire.len());
    let start = server.read_buffer().as_ptr() as usize;
    for chop in wire.chunks(7) {
        assert_eq!(server.poll_message().unwrap(), None);
        server.receive_data(chop);
    }
    let Some(Message::Text(received)) = server.poll_message().unwrap() else {
        panic!("expected the text");
    };
    assert_eq!(received, text.as_str());
    let at = received.as_str().as_ptr() as usize;
    assert!((start..start + wire.len()).contains(&at), "not copied");
}

/// A fragmented text message is checked once, as its fragments arrive, and assembled
/// from the checked pieces.
#[test]
fn rfc6455_8_1_fragmented_text_cut_inside_code_points_arrives_whole() {
    let text = "aé€😀z";
    let bytes = text.as_bytes();
    for cut in 0..=bytes.len() {
        let mut wire = from_client(Frame::new(OpCode::Text, bytes[..cut].to_vec()).with_fin(false));
        wire.unsplit(from_client(Frame::new(
            OpCode::Continuation,
            bytes[cut..].to_vec(),
        )));
        let mut server = server_with(&Config::default());
        for chop in wire.chunks(3) {
            server.receive_data(chop);
            if let Some(message) = server.poll_message().unwrap() {
                assert_eq!(message, Message::text(text));
            }
        }
    }
}

#[test]
fn rfc6455_5_1_client_masks_with_supplied_keys() {
    let mut next = 0u8;
    let mut client = Protocol::client(Config::default(), move || {
        next += 1;
        [next; 4]
    });
    client.send(Message::binary(vec![0u8; 3])).unwrap();
    client.send(Message::binary(vec![0u8; 3])).unwrap();
    assert_eq!(
        &client.write_buffer()[..],
        [0x82, 0x83, 1, 1, 1, 1, 1, 1, 1, 0x82, 0x83, 2, 2, 2, 2, 2, 2, 2]
    );
}

#[test]
fn rfc6455_7_closing_handshake_initiated_locally() {
    let mut server = server_with(&Config::default());
    server.close(CloseCode::GOING_AWAY, "").unwrap();
    assert_eq!(server.state(), State::Closing);
    assert!(matches!(
        server.send(Message::text("x")),
        Err(Error::Closed)
    ));
    assert!(matches!(
        server.close(CloseCode::NORMAL, ""),
        Err(Error::Closed)
    ));
    server.write_buffer().clear();
    // Data still arriving before the peer's close is delivered, pings are not answered.
    let mut wire = from_client(Frame::new(OpCode::Text, "late"));
    wire.unsplit(from_client(Frame::new(OpCode::Ping, "")));
    wire.unsplit(from_client(Frame::new(OpCode::Close, &b"\x03\xe9"[..])));
    wire.unsplit(from_client(Frame::new(OpCode::Text, "after close")));
    server.receive_data(&wire);
    assert_eq!(server.poll_message().unwrap(), Some(Message::text("late")));
    assert!(matches!(
        server.poll_message().unwrap(),
        Some(Message::Ping(_))
    ));
    assert!(matches!(
        server.poll_message().unwrap(),
        Some(Message::Close(Some(f))) if f.code == CloseCode::GOING_AWAY
    ));
    assert_eq!(server.state(), State::Closed);
    assert_eq!(server.poll_message().unwrap(), None);
    assert!(server.write_buffer().is_empty(), "no echo, no pong");
    assert!(
        server.read_buffer().is_empty(),
        "bytes after close discarded"
    );
}

#[test]
fn rfc6455_5_5_1_peer_close_is_echoed_once() {
    let mut server = server_with(&Config::default());
    server.receive_data(&from_client(Frame::new(OpCode::Close, &b"\x0f\xa0bye"[..])));
    assert!(matches!(
        server.poll_message().unwrap(),
        Some(Message::Close(Some(f))) if f.code == CloseCode(4000) && f.reason == "bye"
    ));
    assert_eq!(&server.write_buffer()[..], b"\x88\x05\x0f\xa0bye");
    assert_eq!(server.state(), State::Closed);
    assert!(matches!(
        server.send(Message::text("x")),
        Err(Error::Closed)
    ));

    let mut server = server_with(&Config::default());
    server.receive_data(&from_client(Frame::new(OpCode::Close, Bytes::new())));
    assert_eq!(server.poll_message().unwrap(), Some(Message::Close(None)));
    assert_eq!(&server.write_buffer()[..], b"\x88\x00");
}

#[test]
fn errors_are_sticky_and_close_once() {
    let mut server = server_with(&Config::default());
    server.receive_data(&[0x81, 0x05]); // unmasked
    assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
    let sent = server.write_buffer_len();
    server.receive_data(&from_client(Frame::new(OpCode::Text, "x")));
    assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
    assert_eq!(server.write_buffer_len(), sent);
    assert!(matches!(server.error(), Some(Error::UnmaskedFrame)));
}

#[test]
fn failure_close_frame_carries_code() {
    let config = Config::default();
    let (err, code) = server_failure(&config, &from_client(Frame::new(OpCode::Reserved(3), "")));
    assert!(matches!(err, Error::ReservedOpcode(3)));
    assert_eq!(code, Some(CloseCode::PROTOCOL_ERROR));
}

#[test]
fn max_frame_payload_at_and_past_the_limit() {
    let mut config = Config::default();
    config.set_max_frame_payload(100);
    let mut server = server_with(&config);
    server.receive_data(&from_client(Frame::new(OpCode::Binary, vec![7u8; 100])));
    assert_eq!(
        server.poll_message().unwrap(),
        Some(Message::binary(vec![7u8; 100]))
    );
    let (err, code) = server_failure(
        &config,
        &from_client(Frame::new(OpCode::Binary, vec![7u8; 101])),
    );
    assert!(matches!(
        err,
        Error::FrameTooLarge {
            len: 101,
            limit: 100
        }
    ));
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn max_message_size_counts_small_continuations_as_the_fragment_overhead_at_and_past_the_limit() {
    let mut config = Config::default();
    config.set_max_message_size(1000).set_fragment_overhead(10);
    // 490 + 480 + 3 one-byte continuations counted 10 each = 1000, accepted; one byte
    // more in the first fragment is past it.
    let fragments = |first: usize| {
        let mut wire = from_client(Frame::new(OpCode::Binary, vec![1u8; first]).with_fin(false));
        wire.unsplit(from_client(
            Frame::new(OpCode::Continuation, vec![1u8; 480]).with_fin(false),
        ));
        for fin in [false, false, true] {
            wire.unsplit(from_client(
                Frame::new(OpCode::Continuation, vec![1u8; 1]).with_fin(fin),
            ));
        }
        wire
    };
    let mut server = server_with(&config);
    server.receive_data(&fragments(490));
    assert_eq!(
        server.poll_message().unwrap(),
        Some(Message::binary(vec![1u8; 973]))
    );
    let (err, code) = server_failure(&config, &fragments(491));
    assert!(matches!(
        err,
        Error::MessageTooLarge {
            size: 1001,
            limit: 1000
        }
    ));
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn a_message_of_exactly_the_limit_passes_in_fragments_no_smaller_than_the_overhead() {
    // A relay (the fan-out) cuts a message it accepted whole into fragments: with the
    // defaults, 16 MiB in 64 KiB fragments must still fit a 16 MiB limit.
    let mut config = Config::default();
    config.set_max_message_size(1000).set_fragment_overhead(10);
    let mut wire = BytesMut::new();
    for i in 0..100 {
        let opcode = if i == 0 {
            OpCode::Binary
        } else {
            OpCode::Continuation
        };
        wire.unsplit(from_client(
            Frame::new(opcode, vec![7u8; 10]).with_fin(i == 99),
        ));
    }
    let mut server = server_with(&config);
    server.receive_data(&wire);
    assert_eq!(
        server.poll_message().unwrap(),
        Some(Message::binary(vec![7u8; 1000]))
    );
}

#[test]
fn announced_huge_frame_is_refused_from_the_header_alone() {
    // 2^62 bytes announced, masked, no payload sent.
    let wire = [0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let (err, code) = server_failure(&Config::default(), &wire);
    assert!(matches!(err, Error::FrameTooLarge { len, .. } if len == 1 << 62));
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    // With the frame limit lifted, the message limit still refuses it from the header.
    let mut config = Config::default();
    config.set_max_frame_payload(usize::MAX);
    let (err, code) = server_failure(&config, &wire);
    assert!(matches!(err, Error::MessageTooLarge { size, .. } if size == 1 << 62));
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
}

#[test]
fn single_frame_payload_is_split_off_the_read_buffer_without_copy() {
    let mut server = server_with(&Config::default());
    assert_eq!(server.read_buffer().capacity(), 0, "no up-front buffer");
    let wire = from_client(Frame::new(OpCode::Binary, vec![5u8; 1000]));
    server.read_buffer().extend_from_slice(&wire);
    let start = server.read_buffer().as_ptr() as usize;
    let Some(Message::Binary(data)) = server.poll_message().unwrap() else {
        panic!("expected a binary message");
    };
    let at = data.as_ptr() as usize;
    assert!(
        (start..start + wire.len()).contains(&at),
        "payload points into the read buffer"
    );
    assert_eq!(&data[..], &[5u8; 1000][..]);
}

#[test]
fn failure_while_closing_sends_no_second_close() {
    let mut server = server_with(&Config::default());
    server.close(CloseCode::NORMAL, "").unwrap();
    let ours = server.write_buffer().split();
    server.receive_data(&[0x82, 0x00]); // unmasked: a violation
    assert!(matches!(server.poll_message(), Err(Error::UnmaskedFrame)));
    assert_eq!(&ours[..], b"\x88\x02\x03\xe8");
    assert!(server.write_buffer().is_empty());
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn send_checks_control_payload_limits() {
    let mut server = server_with(&Config::default());
    assert!(server.send(Message::Ping(vec![0u8; 125].into())).is_ok());
    assert!(matches!(
        server.send(Message::Pong(vec![0u8; 126].into())),
        Err(Error::ControlPayloadTooLong { len: 126 })
    ));
    assert!(matches!(
        server.close(CloseCode(1005), ""),
        Err(Error::UnsendableCloseCode(1005))
    ));
    assert_eq!(
        server.state(),
        State::Open,
        "a refused close changes nothing"
    );
}

/// The pieces a server's large message goes out as: the header, copied, then the
/// application's own bytes (same address), counted against the write buffer limit.
#[test]
fn large_unmasked_payload_is_written_from_the_senders_bytes() {
    let mut server = server_with(&Config::default());
    let payload = Bytes::from(vec![5u8; ZERO_COPY_MIN]);
    server.send(Message::Binary(payload.clone())).unwrap();
    assert_eq!(server.write_buffer_len(), 4 + ZERO_COPY_MIN);
    let mut slices = [IoSlice::new(&[]); 4];
    assert_eq!(server.write_chunks(&mut slices), 2);
    assert_eq!(&slices[0][..], [0x82, 126, 0x40, 0x00]);
    assert_eq!(slices[1].as_ptr(), payload.as_ptr(), "not copied");
    server.advance_written(4 + 10);
    assert_eq!(server.write_buffer_len(), ZERO_COPY_MIN - 10);
    assert_eq!(
        server.write_buffer()[..],
        payload[10..],
        "contiguous on demand"
    );
}

/// A fragment handed over as `Bytes` goes out from those bytes, as a whole message does;
/// one given as a slice is copied.
#[test]
fn large_fragment_bytes_are_written_from_the_senders_bytes() {
    let mut server = server_with(&Config::default());
    let message = Bytes::from(vec![5u8; 2 * ZERO_COPY_MIN]);
    let (first, last) = (
        message.slice(..ZERO_COPY_MIN),
        message.slice(ZERO_COPY_MIN..),
    );
    server
        .send_fragment_bytes(OpCode::Binary, first, false)
        .unwrap();
    server
        .send_fragment(OpCode::Continuation, &last, true)
        .unwrap();
    assert_eq!(server.write_buffer_len(), 2 * (4 + ZERO_COPY_MIN));
    let mut slices = [IoSlice::new(&[]); 4];
    assert_eq!(
        server.write_chunks(&mut slices),
        3,
        "header, shared, header + copy"
    );
    assert_eq!(&slices[0][..], [0x02, 126, 0x40, 0x00]);
    assert_eq!(slices[1].as_ptr(), message.as_ptr(), "not copied");
    assert_eq!(slices[1].len(), ZERO_COPY_MIN);
    assert_eq!(&slices[2][..4], [0x80, 126, 0x40, 0x00]);
    assert_eq!(slices[2].len(), 4 + ZERO_COPY_MIN, "the slice was copied");
}

/// One byte under the threshold, and any client frame (masked), is copied as before.
#[test]
fn small_or_masked_payloads_are_copied() {
    let small = Bytes::from(vec![5u8; ZERO_COPY_MIN - 1]);
    let large = Bytes::from(vec![5u8; ZERO_COPY_MIN]);
    let mut server = server_with(&Config::default());
    let mut client = Protocol::client(Config::default(), || [1, 2, 3, 4]);
    server.send(Message::Binary(small)).unwrap();
    client.send(Message::Binary(large)).unwrap();
    for side in [&mut server, &mut client] {
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(side.write_chunks(&mut slices), 1, "one copied buffer");
    }
}

/// A write buffer written to its end has no room left where it stands; released, it
/// goes back to the start of its allocation instead of being lost to reuse.
#[test]
fn a_written_buffer_is_released_with_its_whole_capacity() {
    let mut server = server_with(&Config::default());
    server.send(Message::binary(vec![1u8; 100])).unwrap();
    let capacity = server.write_buffer().capacity();
    server.advance_written(server.write_buffer_len());
    let mut kept = Vec::new();
    server.release_buffers(|buf| kept.push(buf));
    assert_eq!(kept.len(), 1, "the write buffer is handed over");
    assert!(kept[0].is_empty() && kept[0].capacity() >= capacity);
    server.provide_buffers(|| kept.pop());
    assert!(
        kept.is_empty(),
        "taken back (by the read buffer, the first without room)"
    );
}

#[test]
fn idle_read_buffer_is_released() {
    let mut server = server_with(&Config::default());
    let big = from_client(Frame::new(OpCode::Binary, vec![0u8; 200_000]));
    server.read_buffer().extend_from_slice(&big);
    assert!(server.poll_message().unwrap().is_some());
    assert_eq!(server.poll_message().unwrap(), None);
    assert_eq!(server.read_buffer().capacity(), 0);
}

/// Every frame header in `wire` with its payload (unmasked), in order.
fn frames_in(mut wire: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Some((header, used)) = FrameHeader::parse(wire).unwrap() {
        let len = header.payload_len as usize;
        let mut payload = wire[used..used + len].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        frames.push((header, payload));
        wire = &wire[used + len..];
    }
    assert!(wire.is_empty(), "trailing bytes");
    frames
}

/// Takes what `protocol` queued: opcode, FIN and unmasked payload of each frame.
fn sent_shape(protocol: &mut Protocol) -> Vec<(OpCode, bool, Vec<u8>)> {
    let wire = protocol.write_buffer().split();
    frames_in(&wire)
        .into_iter()
        .map(|(h, p)| (h.opcode, h.fin, p))
        .collect()
}

#[test]
fn rfc6455_5_4_fragments_go_out_in_order_with_fin_on_the_last() {
    let mut server = server_with(&Config::default());
    server.send_fragment(OpCode::Binary, b"ab", false).unwrap();
    server
        .send_fragment(OpCode::Continuation, b"", false)
        .unwrap();
    server
        .send_fragment(OpCode::Continuation, b"c", true)
        .unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [
            (OpCode::Binary, false, b"ab".to_vec()),
            (OpCode::Continuation, false, vec![]),
            (OpCode::Continuation, true, b"c".to_vec()),
        ]
    );
    // The message is over: a new one may start.
    server.send(Message::text("next")).unwrap();
}

#[test]
fn rfc6455_5_4_no_new_data_message_while_one_is_open() {
    let mut server = server_with(&Config::default());
    assert!(matches!(
        server.send_fragment(OpCode::Continuation, b"x", true),
        Err(Error::NoMessageInProgress)
    ));
    assert!(matches!(
        server.send_fragment(OpCode::Ping, b"x", true),
        Err(Error::NotADataOpcode(OpCode::Ping))
    ));
    server.send_fragment(OpCode::Text, b"a", false).unwrap();
    let queued = server.write_buffer_len();
    assert!(matches!(
        server.send(Message::binary(vec![1])),
        Err(Error::MessageInProgress)
    ));
    assert!(matches!(
        server.send_fragment(OpCode::Text, b"b", true),
        Err(Error::MessageInProgress)
    ));
    assert_eq!(server.write_buffer_len(), queued, "refusals queue nothing");
    // Local misuse is not a protocol failure: no close code, the connection stays open.
    assert_eq!(Error::MessageInProgress.close_code(), None);
    assert_eq!(server.state(), State::Open);
    server.send(Message::Pong(Bytes::new())).unwrap();
    server
        .send_fragment(OpCode::Continuation, b"b", true)
        .unwrap();
}

#[test]
fn rfc6455_5_3_client_masks_each_fragment_with_a_fresh_key() {
    let mut next = 0u8;
    let mut client = Protocol::client(Config::default(), move || {
        next += 1;
        [next; 4]
    });
    client
        .send_fragment(OpCode::Binary, &[0, 0], false)
        .unwrap();
    client
        .send_fragment(OpCode::Continuation, &[0], true)
        .unwrap();
    let frames = frames_in(&client.write_buffer().split());
    let keys: Vec<_> = frames.iter().map(|(h, _)| h.mask).collect();
    assert_eq!(keys, [Some([1; 4]), Some([2; 4])]);
}

#[test]
fn rfc6455_5_5_auto_pong_goes_between_fragments() {
    let mut server = server_with(&Config::default());
    server.send_fragment(OpCode::Text, b"he", false).unwrap();
    server.receive_data(&from_client(Frame::new(OpCode::Ping, "p")));
    assert!(matches!(
        server.poll_message().unwrap(),
        Some(Message::Ping(_))
    ));
    server
        .send_fragment(OpCode::Continuation, b"llo", true)
        .unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [
            (OpCode::Text, false, b"he".to_vec()),
            (OpCode::Pong, true, b"p".to_vec()),
            (OpCode::Continuation, true, b"llo".to_vec()),
        ]
    );
}

#[test]
fn rfc6455_8_1_invalid_text_fragment_is_refused_and_the_message_stays_open() {
    let mut server = server_with(&Config::default());
    let euro = "€".as_bytes();
    server
        .send_fragment(OpCode::Text, &euro[..1], false)
        .unwrap();
    let queued = server.write_buffer_len();
    assert!(matches!(
        server.send_fragment(OpCode::Continuation, b"x", false),
        Err(Error::InvalidTextFragment)
    ));
    assert!(matches!(
        server.send_fragment(OpCode::Continuation, &euro[1..2], true),
        Err(Error::InvalidTextFragment)
    ));
    assert_eq!(server.write_buffer_len(), queued);
    assert_eq!(Error::InvalidTextFragment.close_code(), None);
    server
        .send_fragment(OpCode::Continuation, &euro[1..], true)
        .unwrap();
    let mut client = Protocol::client(Config::default(), || KEY);
    client.receive_data(&server.write_buffer().split());
    assert_eq!(client.poll_message().unwrap(), Some(Message::text("€")));
}

#[test]
fn rfc6455_7_close_ends_an_open_fragmented_message() {
    let mut server = server_with(&Config::default());
    server.send_fragment(OpCode::Binary, b"a", false).unwrap();
    server.close(CloseCode::NORMAL, "").unwrap();
    assert!(matches!(
        server.send_fragment(OpCode::Continuation, b"b", true),
        Err(Error::Closed)
    ));
}

#[test]
fn send_fragment_size_at_and_past_the_limit() {
    let mut config = Config::default();
    config.set_send_fragment_size(std::num::NonZeroUsize::new(4));
    let mut server = server_with(&config);
    server.send(Message::binary(vec![9u8; 4])).unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [(OpCode::Binary, true, vec![9u8; 4])]
    );
    server.send(Message::text("abcde")).unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [
            (OpCode::Text, false, b"abcd".to_vec()),
            (OpCode::Continuation, true, b"e".to_vec())
        ]
    );
    // A long explicit fragment is cut too, and only the message's last piece has FIN.
    server
        .send_fragment(OpCode::Binary, &[1u8; 9], false)
        .unwrap();
    server
        .send_fragment(OpCode::Continuation, &[], true)
        .unwrap();
    assert_eq!(
        sent_shape(&mut server),
        [
            (OpCode::Binary, false, vec![1u8; 4]),
            (OpCode::Continuation, false, vec![1u8; 4]),
            (OpCode::Continuation, false, vec![1u8]),
            (OpCode::Continuation, true, vec![]),
        ]
    );
}
