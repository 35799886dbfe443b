//! The session protocol's receive side (docs/sessions.md §2-§8): `classify` and
//! `Control::parse` on every message, a `Client` taking the server's answer and then an
//! attached `Endpoint` taking the rest, with pushes and transmits in between.
//!
//! Input: a sequence of `[op] [len] [len bytes]` records. `op` bit 0: a text message
//! (else binary); bit 1: push a data message of `len` bytes before handing the message in;
//! bit 2: drain `poll_transmit` after it; bit 3: advance the clock by `len` ms.
//!
//! Checked besides "no panic": a parsed control message is canonical (it encodes back to
//! the same bytes, within `MAX_CONTROL_LEN`); anything over `MAX_CONTROL_LEN` is refused;
//! stuffed data skips exactly the mark; once lost, the session stays lost with the same
//! outcome; counts never go back and acknowledged never passes sent; a transmit drain
//! ends within the replay buffer plus the control messages (no endless output); nothing is
//! written while detached.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tether_session::{
    classify, Client, Control, EndpointConfig, Incoming, Transmit, MARK, MAX_CONTROL_LEN,
};

fuzz_target!(|input: &[u8]| {
    let mut config = EndpointConfig::default();
    config.set_max_replay_messages(8).set_max_replay_bytes(256);
    let mut client = Client::<Vec<u8>>::new(config).expect("valid config");
    let mut now = Instant::now();
    let _hello = client.hello();
    let mut answered = false;
    let mut last_lost = None;
    let (mut sent, mut acked, mut received) = (0, 0, 0);
    let mut rest = input;
    while let [op, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let text = op & 1 == 1;
        check_classify(text, payload);
        if op & 8 != 0 {
            now += Duration::from_millis(len as u64);
        }
        if op & 2 != 0 && answered {
            // A full buffer, an ended or lost session refuse; none of that may panic.
            let _ = client.endpoint_mut().push(payload.to_vec(), payload.len());
        }
        if answered {
            let _ = client.endpoint_mut().handle(now, text, payload);
        } else {
            answered = client.handle_answer(text, payload).is_ok();
        }
        if op & 4 != 0 {
            drain(&mut client, now);
        }
        let endpoint = client.endpoint();
        if let Some(lost) = &last_lost {
            assert_eq!(endpoint.lost(), Some(lost), "a lost session stays lost");
        }
        last_lost = endpoint.lost().cloned();
        assert!(endpoint.sent() >= sent && endpoint.acked() >= acked);
        assert!(endpoint.received() >= received);
        assert!(endpoint.acked() <= endpoint.sent());
        (sent, acked, received) = (endpoint.sent(), endpoint.acked(), endpoint.received());
    }
});

fn check_classify(text: bool, payload: &[u8]) {
    match classify(text, payload) {
        Ok(Incoming::Data { skip }) => {
            let stuffed = payload.len() >= 2 && payload[0] == MARK && payload[1] == MARK;
            assert_eq!(skip, usize::from(stuffed));
            assert!(stuffed || payload.first() != Some(&MARK));
        }
        Ok(Incoming::Control(control)) => {
            assert!(text && payload.len() <= MAX_CONTROL_LEN);
            assert_eq!(control.encode().as_bytes(), payload, "not canonical");
            assert_eq!(Control::parse(payload), Ok(control));
        }
        Err(_) => assert!(payload.first() == Some(&MARK)),
    }
}

/// Everything the endpoint has to write now; bounded by the replay buffer and the few
/// control messages (pong, ack, end) that can be due at once.
fn drain(client: &mut Client<Vec<u8>>, now: Instant) {
    let endpoint = client.endpoint_mut();
    let bound = endpoint.replay_len() + 3;
    let attached = endpoint.is_attached();
    let mut written = 0;
    while let Some(transmit) = endpoint.poll_transmit(now) {
        assert!(attached, "written while detached");
        if let Transmit::Control(control) = transmit {
            assert!(control.encode().len() <= MAX_CONTROL_LEN);
        }
        written += 1;
        assert!(written <= bound, "endless output");
    }
}
