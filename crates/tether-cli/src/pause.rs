//! `tether serve --pause-heartbeat-after N`: the server stops answering a connection's
//! heartbeat after N answers, while the connection stays open and everything else works,
//! so the dead-peer path (suspect, dead, reconnect) can be shown in a browser and tested.

use tether::heartbeat::{Farewell, Inbound, Probe};
use tether::{Message, PingProbe};

/// The server's probe (Ping frames out; the agreed `ping <n>` text answered with
/// `pong <n>`) that stops answering after a number of answers.
pub(crate) struct PausingProbe {
    inner: PingProbe,
    /// Answers left; `None` answers forever.
    left: Option<u64>,
}

impl PausingProbe {
    /// Answers `pause_after` probes, then no more (`None`: never pauses).
    pub(crate) fn new(pause_after: Option<u64>) -> PausingProbe {
        PausingProbe {
            inner: PingProbe::new().answer_text("ping", "pong"),
            left: pause_after,
        }
    }
}

impl Probe<Message> for PausingProbe {
    fn probe(&mut self, nonce: u64) -> Message {
        self.inner.probe(nonce)
    }

    fn classify(&mut self, message: &Message) -> Inbound {
        self.inner.classify(message)
    }

    fn answer(&mut self, probe: &Message) -> Option<Message> {
        match &mut self.left {
            Some(0) => {
                tracing::debug!("heartbeat paused: probe left unanswered");
                None
            }
            Some(left) => {
                *left -= 1;
                self.inner.answer(probe)
            }
            None => self.inner.answer(probe),
        }
    }

    fn close(&mut self, farewell: Farewell, reason: &str) -> Option<Message> {
        self.inner.close(farewell, reason)
    }

    fn len(message: &Message) -> usize {
        PingProbe::len(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_n_text_probes_then_none_and_they_stay_probes() {
        let mut probe = PausingProbe::new(Some(2));
        let ping = Message::text("ping 1");
        assert_eq!(probe.answer(&ping), Some(Message::text("pong 1")));
        assert_eq!(probe.answer(&ping), Some(Message::text("pong 1")));
        assert_eq!(probe.answer(&ping), None, "paused after 2");
        assert_eq!(probe.classify(&ping), Inbound::Ping, "never echoed as data");
        let mut forever = PausingProbe::new(None);
        for _ in 0..100 {
            assert!(forever.answer(&ping).is_some());
        }
    }
}
