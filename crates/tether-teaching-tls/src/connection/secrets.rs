//! What both sides derive from the premaster (RFC 5246 sections 8.1 and 6.3) and how the
//! Finished messages prove it (section 7.4.9).

use std::sync::Arc;

use ring::digest;

use crate::error::Error;
use crate::keylog::KeyLog;
use crate::message::{self, kind};
use crate::prf::{self, MASTER_SECRET_LEN};
use crate::record::RecordCipher;
use crate::suite::CipherSuite;
use crate::transcript::{Direction, Step};
use crate::wire::hex;

use super::{Connection, Side};

/// The two hello randoms, known to both sides once ServerHello went by.
#[derive(Clone, Copy)]
pub(super) struct Randoms {
    pub(super) client: [u8; 32],
    pub(super) server: [u8; 32],
}

/// The master secret and the suite it protects records with.
#[derive(Clone, Copy)]
pub(super) struct Secrets {
    pub(super) suite: CipherSuite,
    pub(super) master: [u8; MASTER_SECRET_LEN],
}

/// The result of key derivation: the secrets, and a record cipher per direction, not yet
/// in use (ChangeCipherSpec switches each on).
pub(super) struct Keys {
    pub(super) secrets: Secrets,
    /// Seals what this side sends.
    pub(super) write: RecordCipher,
    /// Opens what the peer sends.
    pub(super) read: RecordCipher,
}

impl Connection {
    /// master_secret = PRF(premaster, "master secret", client_random + server_random), then
    /// the key block; logs the secret to `key_log` when there is one.
    pub(super) fn derive_keys(
        &mut self,
        suite: CipherSuite,
        randoms: &Randoms,
        premaster: &[u8],
        key_log: Option<&Arc<dyn KeyLog>>,
        step: Step,
    ) -> Result<Keys, Error> {
        let master = prf::master_secret(premaster, &randoms.client, &randoms.server);
        let keys = prf::key_block(suite, &master, &randoms.client, &randoms.server);
        let client = RecordCipher::new(suite, &keys.client_write_key, &keys.client_write_iv)?;
        let server = RecordCipher::new(suite, &keys.server_write_key, &keys.server_write_iv)?;
        let (write, read) = match self.side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        if let Some(log) = key_log {
            log.log("CLIENT_RANDOM", &randoms.client, &master);
        }
        self.transcript
            .push(step, Direction::Local, "keys derived")
            .secret(
                "master_secret = PRF(premaster, \"master secret\", client_random + server_random)",
                &master,
            )
            .secret("client_write_key", &keys.client_write_key)
            .secret("server_write_key", &keys.server_write_key)
            .secret("client_write_IV (salt)", &keys.client_write_iv)
            .secret("server_write_IV (salt)", &keys.server_write_iv);
        Ok(Keys {
            secrets: Secrets { suite, master },
            write,
            read,
        })
    }

    /// Sends ChangeCipherSpec and switches the write side to `write`.
    pub(super) fn change_write_cipher(
        &mut self,
        write: RecordCipher,
        step: Step,
        who: &str,
    ) -> Result<(), Error> {
        self.send_change_cipher_spec(write)?;
        self.transcript
            .push(step, Direction::Sent, "ChangeCipherSpec")
            .field(
                "meaning",
                format!("from now on the {who}'s records are encrypted"),
            );
        Ok(())
    }

    /// A ChangeCipherSpec arrived: the peer's records are sealed with `read` from now on.
    pub(super) fn change_read_cipher(&mut self, read: RecordCipher, step: Step) {
        self.read_cipher = Some(read);
        self.transcript
            .push(step, Direction::Received, "ChangeCipherSpec")
            .field("meaning", "from now on the peer's records are encrypted");
    }

    /// Sends Finished = PRF(master, label, SHA-256 of the handshake messages so far).
    pub(super) fn send_finished(
        &mut self,
        master: &[u8; MASTER_SECRET_LEN],
        label: &[u8],
        step: Step,
    ) -> Result<(), Error> {
        let hash = digest::digest(&digest::SHA256, &self.handshake_messages);
        let verify_data = prf::verify_data(master, label, hash.as_ref());
        let msg = message::frame(kind::FINISHED, &verify_data);
        let wire = self.send_handshake(&msg)?;
        self.transcript
            .push(step, Direction::Sent, "Finished (encrypted)")
            .field(
                "handshake hash",
                format!("SHA-256 = {}", hex(hash.as_ref())),
            )
            .field(
                "verify_data",
                format!(
                    "{} = PRF(master, \"{}\", hash)[0..12]",
                    hex(&verify_data),
                    String::from_utf8_lossy(label)
                ),
            )
            .field(
                "on the wire",
                format!("{} bytes: [explicit nonce], ciphertext, tag", wire.len()),
            )
            .bytes(&wire);
        Ok(())
    }

    /// Checks the peer's Finished (`msg`, body `body`) against what `label` should give.
    pub(super) fn check_finished(
        &mut self,
        master: &[u8; MASTER_SECRET_LEN],
        label: &[u8],
        step: Step,
        msg: &[u8],
        body: &[u8],
    ) -> Result<(), Error> {
        let hash = digest::digest(&digest::SHA256, &self.handshake_messages);
        let expected = prf::verify_data(master, label, hash.as_ref());
        // RFC 5246 section 7.4.9: "Recipients of Finished messages MUST verify that the
        // contents are correct."
        let equal = body.len() == expected.len()
            && body
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !equal {
            self.transcript
                .push(step, Direction::Received, "Finished DOES NOT MATCH")
                .field("received verify_data", hex(body))
                .field("expected verify_data", hex(&expected));
            return Err(Error::FinishedMismatch);
        }
        self.handshake_messages.extend_from_slice(msg);
        self.transcript
            .push(step, Direction::Received, "Finished (decrypted)")
            .field("verify_data", hex(body))
            .field(
                "check",
                format!(
                    "matches PRF(master, \"{}\", SHA-256 of all handshake messages)",
                    String::from_utf8_lossy(label)
                ),
            )
            .bytes(msg);
        Ok(())
    }
}
