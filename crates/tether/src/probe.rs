//! The heartbeat's probes over WebSocket messages: Ping frames carrying the nonce, or the
//! agreed text message of the tutorial.
//!
//! [`tether_heartbeat`] supervises any stream and sink of messages and does not know
//! WebSocket; these probes teach it. [`PingProbe`] sends Ping frames carrying the 8-byte
//! nonce and recognises the Pong that echoes it (RFC 6455 §5.5.3: "A Pong frame sent in
//! response to a Ping frame must have identical Application data"); the peer's WebSocket
//! answers by itself. [`TextProbe`] sends the tutorial's agreed text message (`ping 7`,
//! answered `pong 7`), for peers such as browser scripts that cannot send Ping frames.

use bytes::Bytes;
use tether_codec::{CloseCode, CloseFrame, Message};
use tether_heartbeat::{Farewell, Inbound, Probe, StringProbe};

/// The heartbeat over WebSocket Ping and Pong frames, the nonce as the Ping's 8-byte payload
/// (big-endian).
///
/// The peer's WebSocket answers each Ping with a Pong carrying the same payload (RFC 6455
/// §5.5.2), so any RFC-conformant peer, browsers included, answers without code of its own.
/// A Pong whose payload is not 8 bytes counts as activity only; one with a nonce never
/// sent counts as a mismatch, never as proof of a round trip.
///
/// [`answer_text`](Self::answer_text) makes it answer the agreed text message as well: a
/// server that probes its clients with Ping frames and answers browser scripts that send
/// `ping 7` with `pong 7` at once.
///
/// ```
/// use tether::heartbeat::{Inbound, Probe};
/// use tether::{Message, PingProbe};
///
/// let mut probe = PingProbe::new();
/// let ping = probe.probe(7);
/// assert_eq!(ping, Message::Ping(7u64.to_be_bytes().to_vec().into()));
/// let pong = Message::Pong(7u64.to_be_bytes().to_vec().into());
/// assert_eq!(probe.classify(&pong), Inbound::Pong(7));
/// assert_eq!(probe.classify(&Message::Pong("hi".into())), Inbound::Control);
/// assert_eq!(probe.classify(&Message::text("ping 7")), Inbound::Data);
///
/// let mut server = PingProbe::new().answer_text("ping", "pong");
/// assert_eq!(server.classify(&Message::text("ping 7")), Inbound::Ping);
/// assert_eq!(server.answer(&Message::text("ping 7")), Some(Message::text("pong 7")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PingProbe {
    text: Option<StringProbe>,
}

impl PingProbe {
    /// Probes with Ping frames; answers nothing itself (the WebSocket answers Pings).
    pub fn new() -> PingProbe {
        PingProbe::default()
    }

    /// Also answers the agreed text message: a text message `"<ping>"` or `"<ping> <rest>"`
    /// is answered at once with `"<pong>"` or `"<pong> <rest>"` and not delivered to the
    /// application. Default: off, every text message is application data.
    pub fn answer_text(mut self, ping: impl Into<String>, pong: impl Into<String>) -> PingProbe {
        self.text = Some(StringProbe::new(ping, pong));
        self
    }
}

impl Probe<Message> for PingProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        Message::Ping(Bytes::copy_from_slice(&nonce.to_be_bytes()))
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        match message {
            Message::Pong(payload) => match <[u8; 8]>::try_from(payload.as_ref()) {
                Ok(nonce) => Inbound::Pong(u64::from_be_bytes(nonce)),
                Err(_) => Inbound::Control,
            },
            Message::Text(text) => {
                // Only the peer's text pings matter; its text pongs answer nobody here.
                // Classified borrowed: no copy of the text, even when it starts with a word.
                let is_ping = self
                    .text
                    .as_ref()
                    .is_some_and(|words| words.classify_text(text.as_str()) == Inbound::Ping);
                if is_ping {
                    Inbound::Ping
                } else {
                    Inbound::Data
                }
            }
            other => classify_common(other),
        }
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        answer_common(self.text.as_ref(), probe)
    }

    fn close(&mut self, farewell: Farewell, reason: &str) -> Option<Message> {
        close_message(farewell, reason)
    }

    fn len(message: &Message) -> usize {
        message.len()
    }
}

/// The heartbeat as the tutorial describes it: an agreed text message sent at an interval
/// (`"ping <nonce>"`) and answered at once (`"pong <nonce>"`), with configurable words.
///
/// For peers that cannot send Ping frames (a browser's `WebSocket` API has no `ping()`):
/// both sides agree on the words. The supervisor on the answering side (see
/// [`WebSocket::supervise`](crate::WebSocket::supervise)) answers the agreed ping at once
/// with this probe; a peer that answers a bare `pong` shows activity but gives no
/// round-trip proof. Protocol Ping frames from the peer are still answered by the
/// WebSocket and rate-limited like text pings.
///
/// ```
/// use tether::heartbeat::{Inbound, Probe};
/// use tether::{Message, TextProbe};
///
/// let mut probe = TextProbe::new("hb?", "hb!");
/// let ping = probe.probe(3);
/// assert_eq!(ping, Message::text("hb? 3"));
/// assert_eq!(probe.classify(&ping), Inbound::Ping);
/// assert_eq!(probe.answer(&ping), Some(Message::text("hb! 3")));
/// assert_eq!(probe.classify(&Message::text("hb! 3")), Inbound::Pong(3));
/// assert_eq!(probe.classify(&Message::text("hello")), Inbound::Data);
/// ```
#[derive(Debug, Clone)]
pub struct TextProbe {
    words: StringProbe,
}

impl TextProbe {
    /// A probe whose ping and pong messages start with these words.
    pub fn new(ping: impl Into<String>, pong: impl Into<String>) -> TextProbe {
        TextProbe {
            words: StringProbe::new(ping, pong),
        }
    }
}

impl Default for TextProbe {
    /// `ping <nonce>` / `pong <nonce>`.
    fn default() -> Self {
        TextProbe::new("ping", "pong")
    }
}

impl Probe<Message> for TextProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        Message::from(self.words.probe(nonce))
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        match message {
            Message::Text(text) => self.words.classify_text(text.as_str()),
            Message::Pong(_) => Inbound::Control,
            other => classify_common(other),
        }
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        answer_common(Some(&self.words), probe)
    }

    fn close(&mut self, farewell: Farewell, reason: &str) -> Option<Message> {
        close_message(farewell, reason)
    }

    fn len(message: &Message) -> usize {
        message.len()
    }
}

/// What Ping (answered by the WebSocket itself), Close and data frames are to either probe.
fn classify_common(message: &Message) -> Inbound {
    match message {
        Message::Ping(_) => Inbound::Ping,
        Message::Close(frame) => Inbound::Close(frame.as_ref().map(|frame| frame.code.0)),
        Message::Pong(_) => Inbound::Control,
        Message::Text(_) | Message::Binary(_) => Inbound::Data,
    }
}

/// The answer to an agreed text ping; `None` for a Ping frame, which the WebSocket answers.
fn answer_common(words: Option<&StringProbe>, probe: &Message) -> Option<Message> {
    match (words, probe) {
        (Some(words), Message::Text(text)) => words.answer_text(text.as_str()).map(Message::from),
        _ => None,
    }
}

/// The close frame the supervisor sends before dropping a connection: the heartbeat's
/// farewell as the RFC 6455 §7.4.1 close code that says it.
fn close_message(farewell: Farewell, reason: &str) -> Option<Message> {
    let code = match farewell {
        Farewell::Normal => CloseCode::NORMAL,
        Farewell::GoingAway => CloseCode::GOING_AWAY,
        Farewell::Policy => CloseCode::POLICY_VIOLATION,
        Farewell::TryAgainLater => CloseCode::TRY_AGAIN_LATER,
        // Heartbeat timeout, write stall, application not reading: 1011, and any farewell
        // a later heartbeat crate adds.
        _ => CloseCode::INTERNAL_ERROR,
    };
    // Only a reason over 123 bytes cannot be sent; the supervisor's own texts are short.
    CloseFrame::new(code, reason)
        .ok()
        .map(|frame| Message::Close(Some(frame)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_5_3_only_an_eight_byte_pong_carries_a_nonce() {
        let mut probe = PingProbe::new();
        for nonce in [0, 1, u64::MAX] {
            let ping = probe.probe(nonce);
            let Message::Ping(payload) = &ping else {
                panic!("not a ping: {ping:?}");
            };
            assert_eq!(
                probe.classify(&Message::Pong(payload.clone())),
                Inbound::Pong(nonce)
            );
        }
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::from_static(&[0; 7]))),
            Inbound::Control
        );
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::from_static(&[0; 9]))),
            Inbound::Control
        );
        assert_eq!(probe.classify(&Message::Ping(Bytes::new())), Inbound::Ping);
        assert_eq!(probe.answer(&Message::Ping(Bytes::new())), None);
        assert_eq!(probe.classify(&Message::binary(vec![1])), Inbound::Data);
        assert_eq!(probe.classify(&Message::text("pong 1")), Inbound::Data);
        assert_eq!(PingProbe::len(&Message::text("abc")), 3);
    }

    #[test]
    fn rfc6455_7_4_1_close_codes_reach_the_supervisor() {
        let mut probe = TextProbe::default();
        let close = probe
            .close(Farewell::Unresponsive, "heartbeat timeout")
            .unwrap();
        assert_eq!(probe.classify(&close), Inbound::Close(Some(1011)));
        assert_eq!(
            PingProbe::new().classify(&Message::Close(None)),
            Inbound::Close(None)
        );
        assert_eq!(
            probe.close(Farewell::GoingAway, "bye"),
            Some(Message::Close(Some(
                CloseFrame::new(CloseCode::GOING_AWAY, "bye").unwrap()
            )))
        );
        // A close message that may not be sent (a reason over 123 bytes) gives none rather
        // than an error.
        assert_eq!(probe.close(Farewell::Normal, &"x".repeat(124)), None);
    }

    #[test]
    fn text_probe_answers_its_words_and_leaves_other_text_alone() {
        let mut probe = TextProbe::default();
        assert_eq!(probe.classify(&Message::text("pong")), Inbound::Control);
        assert_eq!(probe.classify(&Message::text("pongo")), Inbound::Data);
        assert_eq!(probe.classify(&Message::text("ping")), Inbound::Ping);
        assert_eq!(
            probe.answer(&Message::text("ping")),
            Some(Message::text("pong"))
        );
        assert_eq!(
            probe.classify(&Message::Pong(Bytes::new())),
            Inbound::Control
        );
        assert_eq!(probe.classify(&Message::Ping(Bytes::new())), Inbound::Ping);
        assert_eq!(probe.answer(&Message::Ping(Bytes::new())), None);
        let mut server = PingProbe::new().answer_text("ping", "pong");
        assert_eq!(server.classify(&Message::text("pong 3")), Inbound::Data);
        assert_eq!(server.classify(&Message::text("pings")), Inbound::Data);
    }
}
