//! The codec's `Protocol` state machine, either role, fed a peer's bytes in reads the input
//! chooses.
//!
//! Flags: bit 0 client role; bits 1-2 a limit preset; bit 3 we start the closing handshake
//! first; bit 4 we have a fragmented text message open; bit 5 the write buffer is drained
//! only at the end; bit 6 data messages are echoed back (with 3-byte send fragments).
//!
//! Checked besides "no panic": every error is a peer violation with a close code, is sticky
//! and leaves the state Closed; one `poll_message` queues at most one control frame; received
//! messages respect the limits; the read buffer holds less than one frame between calls. What
//! we write parses as frames with at most one close, last, carrying the error's code (or
//! echoing the peer's close); we never send more pongs than we received pings, each answering
//! one; drained only at the end (no echo), the write buffer holds at most one pong, for the
//! latest ping, and one close (RFC 6455 §5.5.3). The same bytes give the same messages,
//! errors and written frames (pongs aside when drained after every read, where one read or
//! many legitimately coalesce pongs differently) whether they arrive in one read or in many.
#![no_main]

use std::num::NonZeroUsize;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tether_codec::{
    apply_mask, CloseCode, CloseFrame, Config, FrameHeader, Message, OpCode, Protocol, State,
    MAX_HEADER_LEN,
};
use tether_fuzz::Input;

/// Largest control frame payload (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

fuzz_target!(|raw: &[u8]| {
    let Some(input) = Input::parse(raw) else {
        return;
    };
    let mut chunked = run(&input, input.chunks());
    let mut whole = run(&input, std::iter::once(input.data));
    if input.flags & 0x20 == 0 {
        // Drained after every read, the reads decide which pings get their own pong.
        chunked.written.retain(|f| f.opcode != OpCode::Pong);
        whole.written.retain(|f| f.opcode != OpCode::Pong);
    }
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

/// What a run produced: the events in order, the code of the error that ended it, and every
/// frame written.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Result<Message, String>>,
    failed: Option<CloseCode>,
    written: Vec<Frame>,
}

/// A frame we wrote, unmasked.
#[derive(Debug, PartialEq)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    payload: Vec<u8>,
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
        failed: None,
        written: Vec::new(),
    };
    let mut written = Vec::new();
    for read in reads {
        protocol.receive_data(read);
        let go_on = poll_all(&mut protocol, &config, &mut outcome, flags);
        if drain_each_time {
            drain(&mut protocol, &mut written);
        }
        if !go_on {
            break;
        }
    }
    drain(&mut protocol, &mut written);
    outcome.written = frames_of(&written, client);
    check_written(&outcome, flags);
    outcome
}

/// Takes everything the protocol has to write, as a driver that writes until the buffer is
/// empty would (the pending pong goes in once the buffer is empty).
fn drain(protocol: &mut Protocol, written: &mut Vec<u8>) {
    while protocol.write_buffer_len() > 0 {
        let chunk = protocol.write_buffer().split();
        assert!(
            !chunk.is_empty(),
            "write_buffer_len counts bytes never handed out"
        );
        written.extend_from_slice(&chunk);
    }
}

/// Polls until the buffer holds no complete message. Returns false once the run is over
/// (an error or the peer's close). Does not look into the write buffer: a driver that does
/// not write does not either.
fn poll_all(protocol: &mut Protocol, config: &Config, outcome: &mut Outcome, flags: u8) -> bool {
    loop {
        let before = protocol.write_buffer_len();
        let polled = protocol.poll_message();
        let queued = protocol.write_buffer_len().saturating_sub(before);
        assert!(
            queued <= MAX_HEADER_LEN + MAX_CONTROL,
            "one poll queued {queued} bytes"
        );
        match polled {
            Ok(None) => {
                check_read_buffer(protocol, config);
                return true;
            }
            Ok(Some(message)) => {
                check_message(&message, config);
                if let Message::Close(_) = &message {
                    assert_eq!(protocol.state(), State::Closed);
                    assert_eq!(protocol.poll_message().unwrap(), None);
                    outcome.events.push(Ok(message));
                    return false;
                }
                if flags & 0x40 != 0 && message.is_data() {
                    echo(protocol, message.clone());
                }
                outcome.events.push(Ok(message));
            }
            Err(err) => {
                outcome.failed = Some(check_failure(protocol, &err));
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

/// Checks a failed protocol and returns the close code of the error.
fn check_failure(protocol: &mut Protocol, err: &tether_codec::Error) -> CloseCode {
    let code = err
        .close_code()
        .unwrap_or_else(|| panic!("a peer caused a local error: {err:?}"));
    assert_eq!(protocol.state(), State::Closed);
    assert_eq!(
        protocol.error().map(ToString::to_string),
        Some(err.to_string())
    );
    // Sticky: the same error again, whatever arrives, and nothing more is queued.
    let len = protocol.write_buffer_len();
    protocol.receive_data(&[0x89, 0x80, 0, 0, 0, 0]);
    let again = protocol.poll_message().unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert_eq!(protocol.write_buffer_len(), len);
    assert!(protocol.send(Message::text("late")).is_err());
    code
}

/// What we wrote, as frames: it must parse completely (masked if and only if we are the
/// client).
fn frames_of(mut wire: &[u8], client: bool) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        let (header, used) = FrameHeader::parse(wire)
            .expect("we wrote a valid header")
            .expect("we wrote a whole header");
        assert_eq!(header.mask.is_some(), client, "masking (RFC 6455 §5.3)");
        let len = usize::try_from(header.payload_len).unwrap();
        let mut payload = wire[used..used + len].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        frames.push(Frame {
            opcode: header.opcode,
            fin: header.fin,
            payload,
        });
        wire = &wire[used + len..];
    }
    frames
}

/// The frames written agree with what happened (see the module comment).
fn check_written(outcome: &Outcome, flags: u8) {
    let frames = &outcome.written;
    let closes = frames.iter().filter(|f| f.opcode == OpCode::Close).count();
    assert!(closes <= 1, "{closes} close frames");
    if closes == 1 {
        // RFC 6455 §5.5.1: nothing is sent after a Close frame.
        assert_eq!(
            frames.last().unwrap().opcode,
            OpCode::Close,
            "after the close"
        );
    }
    let close_code = frames
        .last()
        .filter(|f| f.opcode == OpCode::Close)
        .map(|f| CloseFrame::decode(Bytes::from(f.payload.clone())).expect("a valid close body"));
    let we_closed_first = flags & 0x08 != 0;
    if we_closed_first {
        assert_eq!(
            close_code.clone().flatten().map(|f| f.code),
            Some(CloseCode::NORMAL)
        );
    } else if let Some(code) = outcome.failed {
        assert_eq!(close_code.flatten().map(|f| f.code), Some(code));
    } else if let Some(Ok(Message::Close(theirs))) = outcome.events.last() {
        // RFC 6455 §5.5.1: the close is echoed, code and all.
        assert_eq!(
            close_code.flatten().map(|f| f.code),
            theirs.as_ref().map(|f| f.code)
        );
    } else {
        assert_eq!(closes, 0, "a close frame nobody asked for");
    }

    let pings: Vec<&Bytes> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Ok(Message::Ping(data)) => Some(data),
            _ => None,
        })
        .collect();
    let pongs: Vec<&Frame> = frames.iter().filter(|f| f.opcode == OpCode::Pong).collect();
    if we_closed_first {
        assert!(pongs.is_empty(), "a pong after our close");
    }
    assert!(
        pongs.len() <= pings.len(),
        "{} pongs for {} pings",
        pongs.len(),
        pings.len()
    );
    for pong in &pongs {
        assert!(
            pings.iter().any(|p| p[..] == pong.payload[..]),
            "a pong answering nothing"
        );
    }
    let drained_at_end = flags & 0x20 != 0;
    let echoing = flags & 0x40 != 0;
    if drained_at_end && !echoing && !we_closed_first {
        // RFC 6455 §5.5.3: only the latest ping is answered while nothing is written.
        let expected: Vec<&[u8]> = pings.last().map(|p| &p[..]).into_iter().collect();
        let got: Vec<&[u8]> = pongs.iter().map(|f| &f.payload[..]).collect();
        assert_eq!(
            got, expected,
            "the pongs of a buffer drained only at the end"
        );
    }
}
