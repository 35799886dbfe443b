//! Data messages on a session's wire: byte stuffing keeps them apart from control messages
//! (docs/sessions.md §2). Payloads are shared, never copied, except the rare one that
//! starts with `0x00` and gets one more in front.

use bytes::{BufMut, BytesMut};
use tether_codec::Message;
use tether_session::{needs_stuffing, MARK};

/// A text or binary message's kind and payload; `None` for control frames.
pub(crate) fn payload(message: &Message) -> Option<(bool, &[u8])> {
    match message {
        Message::Text(text) => Some((true, text.as_bytes())),
        Message::Binary(bytes) => Some((false, bytes)),
        _ => None,
    }
}

/// The data message as it goes out: "if the payload's first byte is `0x00`, send one extra
/// `0x00` in front of it (the message keeps its type)".
pub(crate) fn stuffed(message: Message) -> Message {
    let Some((text, bytes)) = payload(&message) else {
        return message;
    };
    if !needs_stuffing(bytes) {
        return message;
    }
    let mut out = BytesMut::with_capacity(bytes.len() + 1);
    out.put_u8(MARK);
    out.put_slice(bytes);
    let out = out.freeze();
    if text {
        // One U+0000 in front of valid UTF-8 is valid UTF-8.
        match tether_codec::Utf8Bytes::try_from(out) {
            Ok(text) => Message::Text(text),
            Err(_) => message,
        }
    } else {
        Message::Binary(out)
    }
}

/// The application's message from a received data message: the first `skip` bytes (the
/// stuffing mark, if any) removed, sharing the payload.
pub(crate) fn unstuffed(message: Message, skip: usize) -> Message {
    if skip == 0 {
        return message;
    }
    match message {
        // The mark is the one-byte character U+0000, so the rest starts on a boundary.
        Message::Text(text) => match text.slice_from(skip) {
            Some(rest) => Message::Text(rest),
            None => Message::Text(text),
        },
        Message::Binary(bytes) => Message::Binary(bytes.slice(skip.min(bytes.len())..)),
        other => other,
    }
}

/// The payload bytes of a stuffed or plain data message, for tests.
#[cfg(test)]
fn bytes_of(message: &Message) -> bytes::Bytes {
    use bytes::Bytes;
    Bytes::copy_from_slice(payload(message).map_or(&[][..], |(_, b)| b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tether_session::{classify, Incoming};

    fn round_trip(message: Message) -> Message {
        let wire = stuffed(message);
        let (text, bytes) = payload(&wire).unwrap();
        let Ok(Incoming::Data { skip }) = classify(text, bytes) else {
            panic!("not data: {wire:?}")
        };
        unstuffed(wire, skip)
    }

    #[test]
    fn sessions_md_2_only_payloads_starting_with_zero_are_stuffed_and_both_kinds_round_trip() {
        for message in [
            Message::text(""),
            Message::text("hello"),
            Message::text("\0"),
            Message::text("\0\0two"),
            Message::text("\0é"),
            Message::binary(Bytes::new()),
            Message::binary(vec![0u8]),
            Message::binary(vec![0u8, 0, 7]),
            Message::binary(vec![1u8, 0]),
        ] {
            let wire = stuffed(message.clone());
            let first = bytes_of(&message).first().copied();
            let extra = usize::from(first == Some(0));
            assert_eq!(wire.len(), message.len() + extra, "{message:?}");
            assert_eq!(round_trip(message.clone()), message);
        }
    }

    #[test]
    fn an_unstuffed_payload_shares_the_received_bytes() {
        let wire = Message::binary(Bytes::from(vec![0u8, 0, 9, 9]));
        let Message::Binary(received) = &wire else {
            unreachable!()
        };
        let start = received.as_ptr();
        let Message::Binary(data) = unstuffed(wire.clone(), 1) else {
            unreachable!()
        };
        assert_eq!(data.as_ptr(), start.wrapping_add(1));
    }
}
