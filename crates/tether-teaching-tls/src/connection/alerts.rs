//! Alerts of a [`Connection`] (RFC 5246 section 7.2): the fatal alert queued when the
//! connection fails, and what a received alert means.

use crate::alert::{AlertDescription, LEVEL_FATAL};
use crate::error::Error;
use crate::record::ContentType;
use crate::transcript::{Direction, Step};

use super::Connection;

impl Connection {
    pub(super) fn send_alert(&mut self, level: u8, description: AlertDescription) {
        // A failure to seal the alert leaves nothing to tell the peer; the error that led
        // here is what the caller sees.
        let _ = self.write_record(ContentType::Alert, &[level, description.0]);
    }

    pub(super) fn fail(&mut self, e: Error) -> Error {
        tracing::debug!(side = ?self.side, error = %e, "teaching TLS connection failed");
        if let Some(alert) = e.alert() {
            self.send_alert(LEVEL_FATAL, alert);
            self.transcript
                .push(Step::Close, Direction::Sent, format!("fatal alert {alert}"))
                .field("because", e.to_string());
        }
        self.error = Some(e.clone());
        e
    }

    pub(super) fn handle_alert(&mut self, plain: &[u8]) -> Result<(), Error> {
        let [level, description] = plain else {
            return Err(Error::Decode { what: "alert" });
        };
        let description = AlertDescription(*description);
        // A peer may send warnings without end: the transcript keeps the first few.
        if self.transcript.want_alert() {
            self.transcript
                .push(
                    Step::Close,
                    Direction::Received,
                    format!("alert {description}"),
                )
                .field(
                    "level",
                    if *level == LEVEL_FATAL {
                        "fatal"
                    } else {
                        "warning"
                    },
                );
        }
        if description == AlertDescription::CLOSE_NOTIFY {
            // RFC 5246 section 7.2.1: the peer sends nothing more, so a handshake still
            // under way cannot complete.
            if !self.state.is_established() {
                return Err(Error::CloseNotifyDuringHandshake);
            }
            self.peer_closed = true;
            return Ok(());
        }
        if *level == LEVEL_FATAL {
            return Err(Error::AlertReceived(description));
        }
        Ok(())
    }
}
