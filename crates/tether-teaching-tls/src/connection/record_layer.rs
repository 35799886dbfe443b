//! The record layer of a [`Connection`]: incoming bytes cut into records, records opened and
//! dispatched by content type, handshake messages reassembled across records, outgoing
//! records sealed once ChangeCipherSpec switched the cipher on.

use crate::error::Error;
use crate::message;
use crate::record::{self, ContentType, RecordCipher, MAX_CIPHERTEXT_LEN, MAX_FRAGMENT_LEN};
use crate::transcript::{Direction, Step};
use crate::wire::hex;

use super::state::Message;
use super::{Connection, MAX_HANDSHAKE_MESSAGE_LEN};

impl Connection {
    // ---- record layer ----------------------------------------------------------------

    pub(super) fn process_incoming(&mut self) -> Result<(), Error> {
        let mut consumed = 0;
        let result = loop {
            if self.peer_closed {
                consumed = self.incoming.len();
                break Ok(());
            }
            let limit = if self.read_cipher.is_some() {
                MAX_CIPHERTEXT_LEN
            } else {
                MAX_FRAGMENT_LEN
            };
            let (content_type, fragment, n) =
                match record::split_record(&self.incoming[consumed..], limit) {
                    Ok(Some((rec, n))) => {
                        if !self.state.accepts_any_record_version() && rec.version != message::TLS12
                        {
                            break Err(Error::UnsupportedVersion {
                                version: rec.version,
                            });
                        }
                        (rec.content_type, rec.fragment.to_vec(), n)
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
            consumed += n;
            if let Err(e) = self.process_record(content_type, &fragment) {
                break Err(e);
            }
        };
        self.incoming.drain(..consumed);
        result
    }

    pub(super) fn process_record(
        &mut self,
        content_type: ContentType,
        fragment: &[u8],
    ) -> Result<(), Error> {
        let plain = match &mut self.read_cipher {
            Some(cipher) => cipher.open(content_type, fragment)?,
            None => fragment.to_vec(),
        };
        match content_type {
            ContentType::Handshake => {
                self.handshake_buf.extend_from_slice(&plain);
                self.process_handshake_buf()
            }
            ContentType::ChangeCipherSpec => self.handle_change_cipher_spec(&plain),
            ContentType::Alert => self.handle_alert(&plain),
            ContentType::ApplicationData => {
                // RFC 5246 section 7.4.9: application data only after both Finished.
                if !self.state.is_established() || self.read_cipher.is_none() {
                    return Err(Error::UnexpectedMessage {
                        expected: self.state.expects(),
                        got: "application_data".to_owned(),
                    });
                }
                if self.transcript.want_application_record() {
                    let nonce = self
                        .read_cipher
                        .as_ref()
                        .map(|c| hex(c.explicit_nonce(fragment)))
                        .unwrap_or_default();
                    self.transcript
                        .push(
                            Step::ApplicationData,
                            Direction::Received,
                            "application_data record",
                        )
                        .field("plaintext length", plain.len().to_string())
                        .field("plaintext", preview(&plain))
                        .field("explicit nonce", nonce)
                        .bytes(fragment);
                }
                self.plaintext.extend_from_slice(&plain);
                Ok(())
            }
        }
    }

    pub(super) fn process_handshake_buf(&mut self) -> Result<(), Error> {
        loop {
            if self.handshake_buf.len() < 4 {
                return Ok(());
            }
            let len = usize::from(self.handshake_buf[1]) << 16
                | usize::from(self.handshake_buf[2]) << 8
                | usize::from(self.handshake_buf[3]);
            if len > MAX_HANDSHAKE_MESSAGE_LEN {
                return Err(Error::HandshakeMessageTooLarge {
                    len,
                    limit: MAX_HANDSHAKE_MESSAGE_LEN,
                });
            }
            if self.handshake_buf.len() < 4 + len {
                return Ok(());
            }
            let msg: Vec<u8> = self.handshake_buf.drain(..4 + len).collect();
            self.handle(Message::handshake(&msg))?;
        }
    }

    pub(super) fn write_record(
        &mut self,
        content_type: ContentType,
        data: &[u8],
    ) -> Result<(), Error> {
        match &mut self.write_cipher {
            Some(c) => c.seal(content_type, data, &mut self.outgoing),
            None => {
                record::write_record(&mut self.outgoing, content_type, data);
                Ok(())
            }
        }
    }

    /// Sends a handshake message (split over records if longer than 2^14) and adds it to
    /// the handshake hash.
    pub(super) fn send_handshake(&mut self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        self.handshake_messages.extend_from_slice(msg);
        let before = self.outgoing.len();
        for chunk in msg.chunks(MAX_FRAGMENT_LEN) {
            self.write_record(ContentType::Handshake, chunk)?;
        }
        Ok(self.outgoing[before..].to_vec())
    }

    /// Sends ChangeCipherSpec, then seals every later record with `write`.
    pub(super) fn send_change_cipher_spec(&mut self, write: RecordCipher) -> Result<(), Error> {
        self.write_record(ContentType::ChangeCipherSpec, &[1])?;
        self.write_cipher = Some(write);
        Ok(())
    }

    pub(super) fn handle_change_cipher_spec(&mut self, plain: &[u8]) -> Result<(), Error> {
        if plain != [1] {
            return Err(Error::Decode {
                what: "ChangeCipherSpec",
            });
        }
        // RFC 5246 section 7.1: ChangeCipherSpec comes right before Finished, never in the
        // middle of a handshake message.
        if !self.handshake_buf.is_empty() {
            return Err(Error::UnexpectedMessage {
                expected: self.state.expects(),
                got: "ChangeCipherSpec".to_owned(),
            });
        }
        self.handle(Message::ChangeCipherSpec)
    }
}

/// Up to 48 bytes of application data as text, for the transcript.
pub(super) fn preview(data: &[u8]) -> String {
    let shown = &data[..data.len().min(48)];
    let text: String = String::from_utf8_lossy(shown)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if data.len() > shown.len() {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}
