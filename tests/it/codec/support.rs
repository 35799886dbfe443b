//! Helpers and proptest strategies shared by the codec tests.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tether_codec::{
    apply_mask, CloseCode, CloseFrame, Config, Error, FrameHeader, Message, OpCode, Protocol, Role,
};

/// A deterministic source of masking keys (tests only; production uses a CSPRNG).
pub(super) fn test_keys() -> impl FnMut() -> [u8; 4] + Send + Sync + 'static {
    let mut state = 0x2545_f491_u32;
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state.to_be_bytes()
    }
}

pub(super) fn client(config: &Config) -> Protocol {
    Protocol::client(config.clone(), test_keys())
}

pub(super) fn server(config: &Config) -> Protocol {
    Protocol::server(config.clone())
}

/// The other side of a connection.
pub(super) fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Splits `len` bytes at `cuts` into consecutive ranges (some possibly empty).
pub(super) fn ranges(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&len)) {
        let cut = cut.clamp(start, len);
        out.push(start..cut);
        start = cut;
    }
    out
}

/// What a receiver made of some input: the messages in order, then the error if it failed.
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub(super) messages: Vec<Message>,
    pub(super) error: Option<Error>,
}

impl Received {
    /// The messages, asserting the input was accepted.
    pub(super) fn ok(self) -> Vec<Message> {
        assert!(self.error.is_none(), "unexpected error {:?}", self.error);
        self.messages
    }
}

/// Polls `protocol` until it needs more bytes or fails, appending to `received`.
pub(super) fn drain(protocol: &mut Protocol, received: &mut Received) {
    if received.error.is_some() {
        return;
    }
    loop {
        match protocol.poll_message() {
            Ok(Some(message)) => received.messages.push(message),
            Ok(None) => return,
            Err(err) => {
                received.error = Some(err);
                return;
            }
        }
    }
}

/// Feeds `wire` to `protocol` in pieces ending at `cuts` (sorted, deduplicated or not),
/// polling after every piece.
pub(super) fn feed_in_pieces(protocol: &mut Protocol, wire: &[u8], cuts: &[usize]) -> Received {
    feed_in_pieces_noting_the_error(protocol, wire, cuts).0
}

/// [`feed_in_pieces`], also returning the end of the piece after which the first error
/// appeared.
pub(super) fn feed_in_pieces_noting_the_error(
    protocol: &mut Protocol,
    wire: &[u8],
    cuts: &[usize],
) -> (Received, Option<usize>) {
    let mut received = Received {
        messages: Vec::new(),
        error: None,
    };
    let mut failed_at = None;
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        let cut = cut.clamp(start, wire.len());
        protocol.receive_data(&wire[start..cut]);
        start = cut;
        drain(protocol, &mut received);
        if received.error.is_some() && failed_at.is_none() {
            failed_at = Some(cut);
        }
    }
    (received, failed_at)
}

/// Feeds all of `wire` at once.
pub(super) fn feed_whole(protocol: &mut Protocol, wire: &[u8]) -> Received {
    feed_in_pieces(protocol, wire, &[])
}

/// One frame as a peer put it on the wire: header fields and unmasked payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WireFrame {
    pub(super) opcode: OpCode,
    pub(super) fin: bool,
    pub(super) masked: bool,
    pub(super) payload: Bytes,
}

/// Splits bytes a protocol wrote into frames (a test-side decoder independent of `Protocol`).
pub(super) fn wire_frames(mut wire: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (header, used) = FrameHeader::parse(wire)
            .expect("well-formed header")
            .expect("complete header");
        let len = header.payload_len as usize;
        let mut payload = BytesMut::from(&wire[used..used + len]);
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        frames.push(WireFrame {
            opcode: header.opcode,
            fin: header.fin,
            masked: header.mask.is_some(),
            payload: payload.freeze(),
        });
        wire = &wire[used + len..];
    }
    frames
}

/// The close code of the last frame in `wire`, which must be a close frame with a code.
pub(super) fn close_code_sent(wire: &[u8]) -> CloseCode {
    let frames = wire_frames(wire);
    let last = frames.last().expect("a frame was sent");
    assert_eq!(last.opcode, OpCode::Close);
    CloseFrame::decode(last.payload.clone())
        .expect("valid close body")
        .expect("close code present")
        .code
}

/// Any text: short most of the time, sometimes past the 16-bit length boundary.
pub(super) fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => ".{0,40}",
        1 => proptest::collection::vec(any::<char>(), 100..300).prop_map(|c| c.into_iter().collect()),
    ]
}

/// Any payload: short most of the time, sometimes needing the 16- or 64-bit length encoding.
pub(super) fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..140),
        2 => proptest::collection::vec(any::<u8>(), 120..1200),
        1 => (0x1_0000usize..0x1_0100, any::<u8>()).prop_map(|(len, b)| vec![b; len]),
    ]
}

/// A control payload (at most 125 bytes).
pub(super) fn arb_control_payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=125)
}

/// Any message an application may send, close excluded.
pub(super) fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        4 => arb_text().prop_map(Message::text),
        4 => arb_payload().prop_map(Message::binary),
        1 => arb_control_payload().prop_map(|p| Message::Ping(p.into())),
        1 => arb_control_payload().prop_map(|p| Message::Pong(p.into())),
    ]
}
