//! The probe trait: how the supervisor speaks heartbeat over a message type it does not know.

use crate::close::Farewell;

/// What an inbound message is, as far as the heartbeat is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// Application data: delivered to the application; counts as inbound activity.
    Data,
    /// An answer to one of our probes echoing this nonce; consumed.
    Pong(u64),
    /// The peer's own probe: answered at once through [`Probe::answer`], rate-limited;
    /// consumed.
    Ping,
    /// Any other control message (a pong without a nonce, say): activity only; consumed.
    Control,
    /// The peer's close message with its code, if any; consumed. The transport is expected
    /// to end soon after.
    Close(Option<u16>),
}

/// Teaches the supervisor the heartbeat messages of one message type `M`.
///
/// Implementations are small and stateless or nearly so. The facade supplies one for
/// WebSocket Ping/Pong frames (the nonce as the 8-byte ping payload) and one for an agreed
/// application text message; [`StringProbe`] is a complete example over `String`.
pub trait Probe<M>: Send + 'static {
    /// Builds the probe carrying `nonce`.
    fn probe(&mut self, nonce: u64) -> M;

    /// Says what an inbound message is.
    fn classify(&mut self, message: &M) -> Inbound;

    /// Builds the immediate answer to a peer's probe (one classified [`Inbound::Ping`]),
    /// or `None` when the transport answers by itself (WebSocket auto-pong).
    fn answer(&mut self, probe: &M) -> Option<M>;

    /// Builds the close message saying `farewell` (with `reason`, a short text) that this
    /// side sends before dropping the transport, or `None` when the message type has no
    /// close message or cannot carry this one.
    fn close(&mut self, farewell: Farewell, reason: &str) -> Option<M>;

    /// The size of a message in bytes, for the outbox's byte budget.
    fn len(message: &M) -> usize
    where
        Self: Sized;

    /// When the latest message arrived that the supervisor did not read itself, if one
    /// did since the last call: a transport that another task also reads (the
    /// application's, reading its connection directly) says so here, and the heartbeat
    /// counts it as inbound activity at that time. It is asked before the heartbeat's
    /// deadlines are checked. The default: the supervisor reads everything itself.
    fn seen_elsewhere(&mut self) -> Option<std::time::Instant> {
        None
    }
}

/// A line-oriented text probe over `String` messages: `"<ping> <nonce>"` and
/// `"<pong> <nonce>"`, with configurable words.
///
/// It is the app-level agreed message of the tutorial: a client sends `ping 17`, the
/// server's responder answers `pong 17` at once. A peer that answers a bare `pong`
/// (a browser script, say) shows activity but gives no round-trip proof.
///
/// ```
/// use tether_heartbeat::{Inbound, Probe, StringProbe};
///
/// let mut probe = StringProbe::new("ping", "pong");
/// let ping = probe.probe(17);
/// assert_eq!(ping, "ping 17");
/// assert_eq!(probe.classify(&ping), Inbound::Ping);
/// let pong = probe.answer(&ping).unwrap();
/// assert_eq!(pong, "pong 17");
/// assert_eq!(probe.classify(&pong), Inbound::Pong(17));
/// assert_eq!(probe.classify(&"pong".to_string()), Inbound::Control);
/// assert_eq!(probe.classify(&"hello".to_string()), Inbound::Data);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringProbe {
    ping: String,
    pong: String,
}

impl StringProbe {
    /// A probe whose ping and pong messages start with these words.
    pub fn new(ping: impl Into<String>, pong: impl Into<String>) -> Self {
        StringProbe {
            ping: ping.into(),
            pong: pong.into(),
        }
    }
}

impl StringProbe {
    /// What `text` is, without owning it: a caller whose messages hold text in another type
    /// (the facade's WebSocket messages) classifies the borrowed text.
    pub fn classify_text(&self, text: &str) -> Inbound {
        if let Some(rest) = after_word(text, &self.pong) {
            return match rest.map(str::parse::<u64>) {
                Some(Ok(nonce)) => Inbound::Pong(nonce),
                _ => Inbound::Control,
            };
        }
        if after_word(text, &self.ping).is_some() {
            return Inbound::Ping;
        }
        Inbound::Data
    }

    /// The answer to the agreed ping `text` (`None` when it is not one), from borrowed text.
    pub fn answer_text(&self, text: &str) -> Option<String> {
        match after_word(text, &self.ping)? {
            Some(rest) => Some(format!("{} {rest}", self.pong)),
            None => Some(self.pong.clone()),
        }
    }
}

impl Default for StringProbe {
    /// `ping <nonce>` / `pong <nonce>`.
    fn default() -> Self {
        StringProbe::new("ping", "pong")
    }
}

/// Splits `"<word>"` or `"<word> <rest>"`; `None` when the message starts otherwise.
fn after_word<'a>(message: &'a str, word: &str) -> Option<Option<&'a str>> {
    let rest = message.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix(' ').map(Some)
}

impl Probe<String> for StringProbe {
    fn probe(&mut self, nonce: u64) -> String {
        format!("{} {nonce}", self.ping)
    }

    fn classify(&mut self, message: &String) -> Inbound {
        self.classify_text(message)
    }

    fn answer(&mut self, probe: &String) -> Option<String> {
        self.answer_text(probe)
    }

    fn close(&mut self, _farewell: Farewell, _reason: &str) -> Option<String> {
        None
    }

    fn len(message: &String) -> usize {
        message.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_must_be_whole() {
        let mut probe = StringProbe::default();
        assert_eq!(probe.classify(&"pings".to_string()), Inbound::Data);
        assert_eq!(probe.classify(&"pong x".to_string()), Inbound::Control);
        assert_eq!(
            probe.classify(&format!("pong {}", u64::MAX)),
            Inbound::Pong(u64::MAX)
        );
        assert_eq!(probe.classify(&"ping".to_string()), Inbound::Ping);
        assert_eq!(probe.answer(&"ping".to_string()), Some("pong".to_string()));
        assert_eq!(probe.answer(&"hello".to_string()), None);
    }

    #[test]
    fn custom_words_and_sizes() {
        let mut probe = StringProbe::new("hb?", "hb!");
        assert_eq!(probe.probe(1), "hb? 1");
        assert_eq!(probe.classify(&"hb! 1".to_string()), Inbound::Pong(1));
        assert_eq!(StringProbe::len(&"hb? 1".to_string()), 5);
        assert_eq!(
            probe.close(Farewell::Unresponsive, "heartbeat timeout"),
            None
        );
    }
}
