//! The codec's `Protocol` state machine, either role, fed a peer's bytes in reads the input
//! chooses.
//!
//! Flags: bit 0 client role; bits 1-2 a limit preset; bit 3 we start the closing handshake
//! first; bit 4 we have a fragmented text message open; bit 5 the write buffer is drained
//! only at the end; bit 6 data messages are echoed back (with 3-byte send fragments).
//!
//! Checked besides "no panic": every error is a peer violation with a close code, is sticky,
//! leaves the state Closed and queues exactly one close frame carrying that code; one
//! `poll_message` queues at most one control frame; received messages respect the limits; the
//! read buffer holds less than one frame between calls; and the same bytes give the same
//! messages, errors and written bytes whether they arrive in one read or in many.
#![no_main]

use std::num::NonZeroUsize;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tether_codec::{
    apply_mask, CloseCode, Config, FrameHeader, Message, OpCode, Protocol, State, MAX_HEADER_LEN,
};
use tether_fuzz::Input;

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let chunked = run(&input, input.chunks());
    let whole = run(&input, std::iter::once(input.data));
    assert_eq!(chunked, whole, "the read boundaries changed the outcome");
});

fn config(flags: u8) -> Config {
    let mut config = Config::default();
    match (flags >> 1) & 3 {
        0 => {}
        1 => {
            config
                .set_max_frame_payload(64)
                .set_max_message_size(256)
                .set_fragment_overhead(16);
        }
        2 => {
            config
                .set_max_frame_payload(8)
                .set_max_message_size(16)
                .set_fragment_overhead(4);
        }
        _ => {
            config
                .set_max_frame_payload(usize::MAX)
                .set_max_message_size(300)
                .set_fragment_overhead(0);
        }
    }
    if flags & 0x40 != 0 {
        config.set_send_fragment_size(NonZeroUsize::new(3));
    }
    config
}

/// What a run produced: the events in order and every byte written.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Result<Message, String>>,
    written: Vec<u8>,
}

fn run<'a>(input: &Input<'a>, reads: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let flags = input.flags;
    let config = config(flags);
    let client = flags & 1 != 0;
    let mut protocol = if client {
        let mut key = 0u32;
        Protocol::client(config.clone(), move || {
            key = key.wrapping_add(0x9e37_79b9);
            key.to_be_bytes()
        })
    } else {
        Protocol::server(config.clone())
    };
    if flags & 0x08 != 0 {
        protocol.close(CloseCode::NORMAL, "bye").unwrap();
        assert_eq!(protocol.state(), State::Closing);
    }
    if flags & 0x10 != 0 {
        // Half of "é": the peer's pings must be answered between our fragments.
        protocol.send_fragment(OpCode::Text, &[0xc3], false).ok();
    }
    let drain_each_time = flags & 0x20 == 0;
    let mut outcome = Outcome {
        events: Vec::new(),
        written: Vec::new(),
    };
    for read in reads {
        protocol.receive_data(read);
        if !poll_all(&mut protocol, &config, &mut outcome, flags) {
            break;
        }
        if drain_each_time {
            outcome
                .written
                .extend_from_slice(&protocol.write_buffer().split());
        }
    }
    outcome
        .written
        .extend_from_slice(&protocol.write_buffer().split());
    outcome
}

/// Polls until the buffer holds no complete message. Returns false once the run is over
/// (an error or the peer's close).
fn poll_all(protocol: &mut Protocol, config: &Config, outcome: &mut Outcome, flags: u8) -> bool {
    loop {
        let closing_before = protocol.state() != State::Open;
        let before = protocol.write_buffer_len();
        let polled = protocol.poll_message();
        let queued = &protocol.write_buffer()[before..];
        assert!(
            queued.len() <= MAX_HEADER_LEN + MAX_CONTROL,
            "one poll queued {} bytes",
            queued.len()
        );
        match polled {
            Ok(None) => {
                check_read_buffer(protocol, config);
                return true;
            }
            Ok(Some(message)) => {
                check_message(&message, config);
                let queued = queued.to_vec();
                if let Message::Close(_) = &message {
                    assert_eq!(protocol.state(), State::Closed);
                    assert_eq!(protocol.poll_message().unwrap(), None);
                    if closing_before {
                        assert!(queued.is_empty(), "a second close frame");
                    }
                    outcome.events.push(Ok(message));
                    return false;
                }
                if flags & 0x40 != 0 && message.is_data() {
                    echo(protocol, message.clone());
                }
                outcome.events.push(Ok(message));
            }
            Err(err) => {
                let queued = queued.to_vec();
                check_failure(protocol, &err, &queued, closing_before);
                outcome.events.push(Err(err.to_string()));
                return false;
            }
        }
    }
}

fn echo(protocol: &mut Protocol, message: Message) {
    match protocol.send(message) {
        Ok(()) => {}
        Err(tether_codec::Error::Closed) => assert_ne!(protocol.state(), State::Open),
        Err(tether_codec::Error::MessageInProgress) => {}
        Err(other) => panic!("echo refused: {other}"),
    }
}

fn check_message(message: &Message, config: &Config) {
    match message {
        Message::Text(_) | Message::Binary(_) => {
            assert!(
                message.len() <= config.max_message_size(),
                "message over the limit"
            );
        }
        Message::Ping(data) | Message::Pong(data) => assert!(data.len() <= MAX_CONTROL),
        Message::Close(Some(frame)) => {
            assert!(frame.code.is_sendable());
            assert!(frame.reason.len() <= MAX_CONTROL - 2);
        }
        Message::Close(None) => {}
    }
}

/// Between calls the read buffer holds less than one frame: a partial header, or a validated
/// header's payload still arriving.
fn check_read_buffer(protocol: &mut Protocol, config: &Config) {
    let largest = config.max_frame_payload().max(MAX_CONTROL);
    let held = protocol.read_buffer().len();
    assert!(
        held < MAX_HEADER_LEN.saturating_add(largest),
        "read buffer holds {held} bytes"
    );
}

fn check_failure(
    protocol: &mut Protocol,
    err: &tether_codec::Error,
    queued: &[u8],
    closing_before: bool,
) {
    let code = err
        .close_code()
        .unwrap_or_else(|| panic!("a peer caused a local error: {err:?}"));
    assert_eq!(protocol.state(), State::Closed);
    assert_eq!(
        protocol.error().map(ToString::to_string),
        Some(err.to_string())
    );
    if closing_before {
        assert!(queued.is_empty(), "a second close frame after {err}");
    } else {
        assert_eq!(close_code_of(queued), Some(code), "close frame for {err}");
    }
    // Sticky: the same error again, whatever arrives, and nothing more is queued.
    let len = protocol.write_buffer_len();
    protocol.receive_data(&[0x89, 0x80, 0, 0, 0, 0]);
    let again = protocol.poll_message().unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert_eq!(protocol.write_buffer_len(), len);
    assert!(protocol.send(Message::text("late")).is_err());
}

/// The code of the single close frame in `wire`, unmasked if needed.
fn close_code_of(wire: &[u8]) -> Option<CloseCode> {
    let (header, used) = FrameHeader::parse(wire).ok()??;
    if header.opcode != OpCode::Close || !header.fin {
        return None;
    }
    let mut payload = wire.get(used..)?.to_vec();
    if payload.len() as u64 != header.payload_len {
        return None;
    }
    if let Some(key) = header.mask {
        apply_mask(&mut payload, key);
    }
    let frame = tether_codec::CloseFrame::decode(Bytes::from(payload)).ok()??;
    Some(frame.code)
}
