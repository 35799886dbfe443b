//! Control messages: `\0verb field...` text messages, and the byte stuffing that keeps
//! them apart from data (docs/sessions.md §2, §3).

use crate::error::ProtocolError;
use crate::id::SessionId;
use crate::reason::LostReason;

/// The first byte of every control message, and the stuffing byte of data that starts with it.
pub const MARK: u8 = 0x00;
/// The longest control message accepted, in bytes (the longest valid one is 48).
pub const MAX_CONTROL_LEN: usize = 64;
/// The largest count on the wire: 2^53 − 1, so JavaScript numbers hold every count exactly.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// The longest probe nonce, in decimal digits.
pub const MAX_NONCE_DIGITS: usize = 20;

/// One control message of `tether.session.v1`.
///
/// ```
/// use tether_session::{Control, SessionId};
///
/// let id = SessionId::from_bytes([1; 16]);
/// let resume = Control::Resume { id, received: 41 };
/// let wire = resume.encode();
/// assert_eq!(wire, format!("\0resume {id} 41"));
/// assert_eq!(Control::parse(wire.as_bytes()), Ok(resume));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// `\0new`: the client opens a new session.
    New,
    /// `\0resume <id> <received>`: the client continues a session.
    Resume {
        /// The session.
        id: SessionId,
        /// Data messages of the server the client has received.
        received: u64,
    },
    /// `\0session <id> <received>`: the server's answer to `new` or `resume`.
    Session {
        /// The session.
        id: SessionId,
        /// Data messages of the client the server has received.
        received: u64,
    },
    /// `\0lost <reason>`: the session ends.
    Lost(LostReason),
    /// `\0ack <received>`.
    Ack(u64),
    /// `\0ping <nonce> <received>`: a heartbeat probe.
    Ping {
        /// Echoed by the answer.
        nonce: u64,
        /// The sender's received count.
        received: u64,
    },
    /// `\0pong <nonce> <received>`: the answer to a probe.
    Pong {
        /// The probe's nonce.
        nonce: u64,
        /// The sender's received count.
        received: u64,
    },
    /// `\0end <received>`: the sender will send no more data on the session.
    End(u64),
}

impl Control {
    /// The verb on the wire.
    pub fn verb(&self) -> &'static str {
        match self {
            Control::New => "new",
            Control::Resume { .. } => "resume",
            Control::Session { .. } => "session",
            Control::Lost(_) => "lost",
            Control::Ack(_) => "ack",
            Control::Ping { .. } => "ping",
            Control::Pong { .. } => "pong",
            Control::End(_) => "end",
        }
    }

    /// The received count the message carries, if its verb has one after the handshake
    /// (ack, ping, pong, end): the receiver applies it as an acknowledgement.
    pub fn acknowledges(&self) -> Option<u64> {
        match *self {
            Control::Ack(received)
            | Control::End(received)
            | Control::Ping { received, .. }
            | Control::Pong { received, .. } => Some(received),
            _ => None,
        }
    }

    /// The text message: `\0`, the verb, its fields.
    pub fn encode(&self) -> String {
        // Written by hand, not with `format!`: an ack, a probe or its answer goes out for
        // every few data messages, and the formatting machinery cost more than the rest of
        // the acknowledgement.
        let mut wire = Wire::default();
        wire.push(&[MARK]);
        wire.push(self.verb().as_bytes());
        match *self {
            Control::New => {}
            Control::Resume { id, received } | Control::Session { id, received } => {
                wire.field(id.to_string().as_bytes());
                wire.number(received);
            }
            Control::Lost(reason) => wire.field(reason.as_str().as_bytes()),
            Control::Ack(received) | Control::End(received) => wire.number(received),
            Control::Ping { nonce, received } | Control::Pong { nonce, received } => {
                wire.number(nonce);
                wire.number(received);
            }
        }
        wire.into_string()
    }

    /// Parses a whole control message (with its leading `\0`).
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] naming what is wrong: too long, not ASCII, unknown verb, a field
    /// missing, extra or malformed.
    pub fn parse(message: &[u8]) -> Result<Control, ProtocolError> {
        // docs/sessions.md §3: "A control message is at most 64 bytes ... checked before parsing."
        if message.len() > MAX_CONTROL_LEN {
            return Err(ProtocolError::ControlTooLong { len: message.len() });
        }
        let body = match message.split_first() {
            Some((&MARK, body)) => body,
            _ => return Err(ProtocolError::NotControl),
        };
        if !body.is_ascii() {
            return Err(ProtocolError::NotAscii);
        }
        // Parsed as bytes (ASCII, checked above): an ack, a probe or its answer is parsed
        // for every few data messages.
        let mut fields = body.split(|&b| b == b' ');
        // `split` yields at least one item.
        let verb = fields.next().unwrap_or_default();
        let mut next = |name: &'static str| -> Result<&[u8], ProtocolError> {
            fields
                .next()
                .filter(|f| !f.is_empty())
                .ok_or_else(|| ProtocolError::BadField {
                    verb: verb_name(verb),
                    field: name,
                })
        };
        let control = match verb {
            b"new" => Control::New,
            b"resume" | b"session" => {
                let id = next("id")?;
                let id = std::str::from_utf8(id)
                    .ok()
                    .and_then(SessionId::parse)
                    .ok_or_else(|| ProtocolError::BadField {
                        verb: verb_name(verb),
                        field: "id",
                    })?;
                let received = count(verb, next("received")?)?;
                if verb == b"resume" {
                    Control::Resume { id, received }
                } else {
                    Control::Session { id, received }
                }
            }
            b"lost" => {
                let word = next("reason")?;
                let reason = std::str::from_utf8(word)
                    .ok()
                    .and_then(LostReason::from_word)
                    .ok_or(ProtocolError::BadField {
                        verb: "lost",
                        field: "reason",
                    })?;
                Control::Lost(reason)
            }
            b"ack" => Control::Ack(count(verb, next("received")?)?),
            b"end" => Control::End(count(verb, next("received")?)?),
            b"ping" | b"pong" => {
                let nonce = nonce(verb, next("nonce")?)?;
                let received = count(verb, next("received")?)?;
                if verb == b"ping" {
                    Control::Ping { nonce, received }
                } else {
                    Control::Pong { nonce, received }
                }
            }
            _ => return Err(ProtocolError::UnknownVerb),
        };
        if fields.next().is_some() {
            return Err(ProtocolError::BadField {
                verb: control.verb(),
                field: "end of message",
            });
        }
        Ok(control)
    }
}

/// What a received WebSocket message is, once unstuffed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// A data message: the application's payload starts `skip` bytes in (0 or 1).
    Data {
        /// Bytes to strip from the front (the stuffing byte).
        skip: usize,
    },
    /// A control message.
    Control(Control),
}

/// Sorts a received message into data and control (docs/sessions.md §2).
///
/// ```
/// use tether_session::{classify, Control, Incoming};
///
/// assert_eq!(classify(true, b"hello"), Ok(Incoming::Data { skip: 0 }));
/// assert_eq!(classify(true, b"\0\0zero first"), Ok(Incoming::Data { skip: 1 }));
/// assert_eq!(classify(true, b"\0ack 3"), Ok(Incoming::Control(Control::Ack(3))));
/// assert!(classify(false, b"\0ack 3").is_err());
/// ```
///
/// # Errors
///
/// A binary message that starts with `0x00` unstuffed, or a malformed control message.
pub fn classify(text: bool, payload: &[u8]) -> Result<Incoming, ProtocolError> {
    match payload {
        [MARK, MARK, ..] => Ok(Incoming::Data { skip: 1 }),
        [MARK, ..] if text => Control::parse(payload).map(Incoming::Control),
        [MARK, ..] => Err(ProtocolError::BinaryControl),
        _ => Ok(Incoming::Data { skip: 0 }),
    }
}

/// Whether a data payload must go out with one extra `0x00` in front (it starts with one).
pub fn needs_stuffing(payload: &[u8]) -> bool {
    payload.first() == Some(&MARK)
}

/// A control message being written, on the stack: every one fits (the longest, `resume`
/// with a 22-character id and a 16-digit count, is 47 bytes).
struct Wire {
    bytes: [u8; MAX_CONTROL_LEN],
    len: usize,
}

impl Default for Wire {
    fn default() -> Self {
        Wire {
            bytes: [0; MAX_CONTROL_LEN],
            len: 0,
        }
    }
}

impl Wire {
    fn push(&mut self, bytes: &[u8]) {
        // In bounds: the longest control message (above) is shorter than the buffer.
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A space, then `field`.
    fn field(&mut self, field: &[u8]) {
        self.push(b" ");
        self.push(field);
    }

    /// A space, then `value` in decimal.
    fn number(&mut self, mut value: u64) {
        let mut digits = [0u8; MAX_NONCE_DIGITS];
        let mut start = digits.len();
        loop {
            start -= 1;
            // A digit: `value % 10` is below 10.
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.field(&digits[start..]);
    }

    /// The message: exactly its length allocated, so a `Bytes` made of it takes the
    /// allocation as it is.
    fn into_string(self) -> String {
        // ASCII only (the mark, verbs, reason words, base64url ids, digits): borrowed,
        // then copied once.
        String::from_utf8_lossy(&self.bytes[..self.len]).into_owned()
    }
}

fn verb_name(verb: &[u8]) -> &'static str {
    [
        "new", "resume", "session", "lost", "ack", "ping", "pong", "end",
    ]
    .into_iter()
    .find(|v| v.as_bytes() == verb)
    .unwrap_or("unknown")
}

/// A canonical decimal count: no sign, no leading zero, at most [`MAX_COUNT`].
fn count(verb: &[u8], field: &[u8]) -> Result<u64, ProtocolError> {
    // The error built only when needed: every ack, probe and answer is parsed here.
    let value = decimal(field, 16).ok_or_else(|| ProtocolError::BadField {
        verb: verb_name(verb),
        field: "received",
    })?;
    if value > MAX_COUNT {
        return Err(ProtocolError::CountTooLarge { count: value });
    }
    Ok(value)
}

fn nonce(verb: &[u8], field: &[u8]) -> Result<u64, ProtocolError> {
    decimal(field, MAX_NONCE_DIGITS).ok_or_else(|| ProtocolError::BadField {
        verb: verb_name(verb),
        field: "nonce",
    })
}

/// `field` as a canonical decimal of at most `max_digits` digits (no sign, no leading
/// zero), if it is one and fits in a `u64`.
fn decimal(field: &[u8], max_digits: usize) -> Option<u64> {
    let canonical = field == b"0" || field.first() != Some(&b'0');
    if !(canonical && (1..=max_digits).contains(&field.len())) {
        return None;
    }
    field.iter().try_fold(0u64, |value, &b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'))?;
        value.checked_mul(10)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> SessionId {
        SessionId::from_bytes([0xA5; 16])
    }

    #[test]
    fn every_verb_round_trips() {
        let all = [
            Control::New,
            Control::Resume {
                id: id(),
                received: 0,
            },
            Control::Session {
                id: id(),
                received: MAX_COUNT,
            },
            Control::Lost(LostReason::Expired),
            Control::Ack(32),
            Control::Ping {
                nonce: u64::MAX,
                received: 7,
            },
            Control::Pong {
                nonce: 0,
                received: 7,
            },
            Control::End(9),
        ];
        for control in all {
            let wire = control.encode();
            assert!(wire.len() <= 48, "{wire:?}");
            assert_eq!(Control::parse(wire.as_bytes()), Ok(control));
            assert_eq!(
                classify(true, wire.as_bytes()),
                Ok(Incoming::Control(control))
            );
        }
    }

    #[test]
    fn sessions_md_3_each_verb_is_written_as_the_grammar_spells_it() {
        let id = id();
        let cases = [
            (Control::New, "\0new".to_owned()),
            (
                Control::Resume { id, received: 0 },
                format!("\0resume {id} 0"),
            ),
            (
                Control::Lost(LostReason::Replaced),
                "\0lost replaced".into(),
            ),
            (Control::Ack(1_000_000), "\0ack 1000000".into()),
            (Control::End(MAX_COUNT), format!("\0end {MAX_COUNT}")),
            (
                Control::Ping {
                    nonce: u64::MAX,
                    received: 10,
                },
                format!("\0ping {} 10", u64::MAX),
            ),
            (
                Control::Pong {
                    nonce: 9,
                    received: 90,
                },
                "\0pong 9 90".into(),
            ),
        ];
        for (control, wire) in cases {
            let encoded = control.encode();
            assert_eq!(encoded, wire);
            // Exactly its length: a `Bytes` made of it keeps the allocation.
            assert_eq!(encoded.capacity(), encoded.len());
        }
    }

    #[test]
    fn the_longest_valid_message_is_48_bytes() {
        let session = Control::Session {
            id: id(),
            received: MAX_COUNT,
        }
        .encode();
        assert_eq!(session.len(), 48);
    }

    #[test]
    fn control_message_at_the_limit_is_parsed_one_past_is_refused_before_parsing() {
        let mut at_limit = b"\0ack 1".to_vec();
        at_limit.resize(MAX_CONTROL_LEN, b' ');
        // 64 bytes: parsed (and refused as malformed, not as too long).
        assert!(matches!(
            Control::parse(&at_limit),
            Err(ProtocolError::BadField { verb: "ack", .. })
        ));
        let mut past = at_limit.clone();
        past.push(b' ');
        assert_eq!(
            Control::parse(&past),
            Err(ProtocolError::ControlTooLong { len: 65 })
        );
    }

    #[test]
    fn malformed_control_messages_are_protocol_errors() {
        let id = id();
        for bad in [
            "\0".to_string(),
            "\0hello".into(),
            "\0NEW".into(),
            "\0new ".into(),
            "\0new x".into(),
            "\0ack".into(),
            "\0ack ".into(),
            "\0ack 01".into(),
            "\0ack -1".into(),
            "\0ack +1".into(),
            "\0ack 1 2".into(),
            "\0ack  1".into(),
            "\0ack 1 ".into(),
            "\0ack 9007199254740992".into(),
            "\0ack 99999999999999999".into(),
            format!("\0resume {id}"),
            format!("\0resume {id}  1"),
            "\0resume short 1".into(),
            "\0lost bored".into(),
            "\0ping 1".into(),
            "\0ping 123456789012345678901 1".into(),
            // 2^64: twenty digits, one past the largest nonce.
            "\0ping 18446744073709551616 1".into(),
            "\0pong x 1".into(),
            "\0end".into(),
            "\0ack 1\u{e9}".into(),
        ] {
            assert!(Control::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(Control::parse(b"ack 1"), Err(ProtocolError::NotControl));
        assert_eq!(
            Control::parse("\0ack 1\u{e9}".as_bytes()),
            Err(ProtocolError::NotAscii)
        );
        assert_eq!(
            Control::parse(b"\0ack 9007199254740992"),
            Err(ProtocolError::CountTooLarge { count: 1 << 53 })
        );
    }

    #[test]
    fn stuffing_marks_only_payloads_that_start_with_zero() {
        assert!(needs_stuffing(b"\0"));
        assert!(needs_stuffing(b"\0\0"));
        assert!(!needs_stuffing(b""));
        assert!(!needs_stuffing(b"a\0"));
        assert_eq!(classify(true, b""), Ok(Incoming::Data { skip: 0 }));
        assert_eq!(classify(false, b""), Ok(Incoming::Data { skip: 0 }));
        assert_eq!(classify(false, b"\0\0"), Ok(Incoming::Data { skip: 1 }));
        assert_eq!(classify(false, b"\0a"), Err(ProtocolError::BinaryControl));
        assert_eq!(classify(false, b"\0"), Err(ProtocolError::BinaryControl));
        assert!(classify(true, b"\0").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic_and_what_parses_encodes_back(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            text in proptest::prelude::any::<bool>(),
        ) {
            if let Ok(Incoming::Control(control)) = classify(text, &bytes) {
                // Canonical grammar: one encoding per message.
                proptest::prop_assert_eq!(control.encode().into_bytes(), bytes);
            }
        }

        #[test]
        fn counts_round_trip(received in 0..=MAX_COUNT, nonce in proptest::prelude::any::<u64>()) {
            for control in [Control::Ack(received), Control::End(received), Control::Ping { nonce, received }] {
                proptest::prop_assert_eq!(Control::parse(control.encode().as_bytes()), Ok(control));
            }
        }
    }
}
