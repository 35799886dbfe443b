//! The sans-IO connection: one state machine for both roles.
//!
//! Inputs: [`Connection::receive`] (bytes from the peer), [`Connection::receive_eof`],
//! [`Connection::send`] (application data), [`Connection::close`].
//! Outputs: [`Connection::take_outgoing`] (bytes for the peer),
//! [`Connection::read_plaintext`] (application data from the peer), the getters.
//!
//! Handshake states are named after what they expect next, as in RFC 5246 section 7.3:
//!
//! ```text
//!  client                                              server
//!  ClientHello                    -------->                          step 1
//!                                                 ServerHello        step 2
//!                                                 Certificate
//!                                           ServerKeyExchange*       (ECDHE only)
//!                                 <--------   ServerHelloDone
//!  (check certificate)                                               step 3a
//!  ClientKeyExchange                                                 step 3b
//!  [ChangeCipherSpec]
//!  Finished                       -------->                          step 3c
//!                                          (check Finished)          step 4
//!                                          [ChangeCipherSpec]
//!                                 <--------          Finished
//!  (check Finished)                                                  step 5
//!  Application Data               <------->  Application Data
//! ```

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use ring::agreement;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::alert::{AlertDescription, LEVEL_WARNING};
use crate::config::{ClientConfig, ServerConfig};
use crate::error::Error;
use crate::message::{self, kind};
use crate::prf::{self, MASTER_SECRET_LEN};
use crate::record::{ContentType, RecordCipher, MAX_FRAGMENT_LEN};
use crate::suite::CipherSuite;
use crate::transcript::{Direction, Step, Transcript};
use crate::wire::hex;

mod alerts;
mod client;
mod record_layer;
mod server;

use record_layer::preview;

/// Largest handshake message this crate buffers (a certificate chain of a public site is
/// well below this).
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 64 * 1024;

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends ClientHello, checks the certificate, makes the premaster.
    Client,
    /// Answers with its certificate, recovers the premaster.
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    ClientHello,
    ServerHello,
    Certificate,
    ServerKeyExchange,
    ServerHelloDone,
    ClientKeyExchange,
    ChangeCipherSpec,
    Finished,
    Established,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::ClientHello => "ClientHello",
            Expect::ServerHello => "ServerHello",
            Expect::Certificate => "Certificate",
            Expect::ServerKeyExchange => "ServerKeyExchange",
            Expect::ServerHelloDone => "ServerHelloDone",
            Expect::ClientKeyExchange => "ClientKeyExchange",
            Expect::ChangeCipherSpec => "ChangeCipherSpec",
            Expect::Finished => "Finished",
            Expect::Established => "application data",
        }
    }
}

/// A TLS 1.2 connection, client or server, without I/O.
///
/// Feed it the peer's bytes with [`receive`](Self::receive), send what
/// [`take_outgoing`](Self::take_outgoing) returns, read application data with
/// [`read_plaintext`](Self::read_plaintext). The first error sticks: it is returned again by
/// every later call, and the matching fatal alert is queued in the outgoing bytes.
pub struct Connection {
    role: Role,
    expect: Expect,
    client_config: Option<Arc<ClientConfig>>,
    server_config: Option<Arc<ServerConfig>>,
    server_name: Option<ServerName<'static>>,
    rng: SystemRandom,
    incoming: Vec<u8>,
    handshake_buf: Vec<u8>,
    outgoing: Vec<u8>,
    plaintext: BytesMut,
    read_cipher: Option<RecordCipher>,
    pending_read: Option<RecordCipher>,
    write_cipher: Option<RecordCipher>,
    pending_write: Option<RecordCipher>,
    handshake_messages: Vec<u8>,
    transcript: Transcript,
    error: Option<Error>,
    peer_closed: bool,
    close_sent: bool,
    refusal_pending: bool,
    certificate_requested: bool,
    suite: Option<CipherSuite>,
    offered: Vec<CipherSuite>,
    sent_extensions: Vec<u16>,
    client_random: [u8; 32],
    server_random: [u8; 32],
    client_version: u16,
    peer_chain: Vec<CertificateDer<'static>>,
    server_rsa: Option<rsa::RsaPublicKey>,
    server_ecdh_public: Option<Vec<u8>>,
    ecdhe_key: Option<agreement::EphemeralPrivateKey>,
    master: Option<[u8; MASTER_SECRET_LEN]>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("expect", &self.expect)
            .field("suite", &self.suite)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A client connection to `server_name`; the ClientHello is ready in
    /// [`take_outgoing`](Self::take_outgoing) at once.
    ///
    /// Fails with [`Error::InvalidConfig`] when the configuration offers no suite, and
    /// [`Error::Crypto`] if the system's randomness fails.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Self, Error> {
        if config.cipher_suites.is_empty() {
            return Err(Error::InvalidConfig {
                reason: "the client offers no cipher suite".to_owned(),
            });
        }
        let mut conn = Self::new(Role::Client, Expect::ServerHello);
        conn.server_name = Some(server_name);
        conn.client_config = Some(config);
        conn.send_client_hello()?;
        Ok(conn)
    }

    /// A server connection; it waits for the ClientHello.
    pub fn server(config: Arc<ServerConfig>) -> Self {
        let mut conn = Self::new(Role::Server, Expect::ClientHello);
        conn.server_config = Some(config);
        conn
    }

    fn new(role: Role, expect: Expect) -> Self {
        Self {
            role,
            expect,
            client_config: None,
            server_config: None,
            server_name: None,
            rng: SystemRandom::new(),
            incoming: Vec::new(),
            handshake_buf: Vec::new(),
            outgoing: Vec::new(),
            plaintext: BytesMut::new(),
            read_cipher: None,
            pending_read: None,
            write_cipher: None,
            pending_write: None,
            handshake_messages: Vec::new(),
            transcript: Transcript::default(),
            error: None,
            peer_closed: false,
            close_sent: false,
            refusal_pending: false,
            certificate_requested: false,
            suite: None,
            offered: Vec::new(),
            sent_extensions: Vec::new(),
            client_random: [0; 32],
            server_random: [0; 32],
            client_version: message::TLS12,
            peer_chain: Vec::new(),
            server_rsa: None,
            server_ecdh_public: None,
            ecdhe_key: None,
            master: None,
        }
    }

    // ---- getters ---------------------------------------------------------------------

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }

    /// True until both Finished messages were exchanged (or the connection failed).
    pub fn is_handshaking(&self) -> bool {
        self.expect != Expect::Established && self.error.is_none()
    }

    /// True once the handshake completed and no error occurred.
    pub fn is_established(&self) -> bool {
        self.expect == Expect::Established && self.error.is_none()
    }

    /// True once the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The negotiated suite, once ServerHello was sent or received.
    pub fn cipher_suite(&self) -> Option<CipherSuite> {
        self.suite
    }

    /// The server certificate chain as received (client) or sent (server).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_chain
    }

    /// The annotated record of everything that happened so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The error the connection failed with, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The client random, for the key log.
    pub fn client_random(&self) -> &[u8; 32] {
        &self.client_random
    }

    // ---- inputs ----------------------------------------------------------------------

    /// Feeds bytes received from the peer. Any split works: a record may arrive in pieces
    /// or several records in one call. Complete records are processed at once.
    ///
    /// On error the connection fails for good and a fatal alert is queued.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.peer_closed {
            // RFC 5246 section 7.2.1: nothing after close_notify counts.
            return Ok(());
        }
        self.incoming.extend_from_slice(data);
        match self.process_incoming() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Tells the connection the transport ended. Without a close_notify first this is
    /// [`Error::Truncated`]: an attacker could have cut the stream.
    pub fn receive_eof(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let buffered = self.incoming.len();
        let e = if self.expect != Expect::Established {
            // A handshake cut short can never complete: waiting for more is waiting forever.
            Error::EofDuringHandshake { buffered }
        } else if self.peer_closed {
            return Ok(());
        } else {
            Error::Truncated { buffered }
        };
        self.error = Some(e.clone());
        Err(e)
    }

    /// Queues application data, split into records of at most 2^14 bytes.
    ///
    /// Fails with [`Error::NotReady`] during the handshake or after [`close`](Self::close).
    pub fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.expect != Expect::Established {
            return Err(Error::NotReady {
                reason: "handshake not complete",
            });
        }
        if self.close_sent {
            return Err(Error::NotReady {
                reason: "close_notify already sent",
            });
        }
        for chunk in data.chunks(MAX_FRAGMENT_LEN) {
            let before = self.outgoing.len();
            self.write_record(ContentType::ApplicationData, chunk)?;
            if self.transcript.want_application_record() {
                let wire = self.outgoing[before..].to_vec();
                let (nonce, cipher) = match &self.write_cipher {
                    Some(c) => (hex(c.explicit_nonce(&wire[5..])), c.name()),
                    None => (String::new(), ""),
                };
                self.transcript
                    .push(
                        Step::ApplicationData,
                        Direction::Sent,
                        "application_data record",
                    )
                    .field("plaintext length", chunk.len().to_string())
                    .field("plaintext", preview(chunk))
                    .field("cipher", cipher)
                    .field("explicit nonce", nonce)
                    .field("tag", hex(&wire[wire.len().saturating_sub(16)..]))
                    .bytes(&wire);
            }
        }
        Ok(())
    }

    /// Queues close_notify (RFC 5246 section 7.2.1). Further [`send`](Self::send) calls fail.
    pub fn close(&mut self) {
        if self.close_sent || self.error.is_some() {
            return;
        }
        self.close_sent = true;
        self.send_alert(LEVEL_WARNING, AlertDescription::CLOSE_NOTIFY);
        self.transcript
            .push(Step::Close, Direction::Sent, "close_notify");
    }

    // ---- outputs ---------------------------------------------------------------------

    /// Takes the bytes to send to the peer.
    pub fn take_outgoing(&mut self) -> Vec<u8> {
        self.refusal_pending = false;
        std::mem::take(&mut self.outgoing)
    }

    /// How many bytes [`take_outgoing`](Self::take_outgoing) would return. What the peer
    /// can make this side queue without sending application data itself is bounded: one
    /// flight of the handshake, one `no_renegotiation` alert, one fatal alert.
    pub fn outgoing_len(&self) -> usize {
        self.outgoing.len()
    }

    /// Whether [`take_outgoing`](Self::take_outgoing) has anything.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Copies received application data into `buf`; returns how many bytes.
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.plaintext.len());
        buf[..n].copy_from_slice(&self.plaintext[..n]);
        self.plaintext.advance(n);
        n
    }

    /// How many bytes of received application data wait to be read.
    pub fn plaintext_len(&self) -> usize {
        self.plaintext.len()
    }

    // ---- handshake -------------------------------------------------------------------

    fn handle_handshake(&mut self, msg: &[u8]) -> Result<(), Error> {
        // process_handshake_buf only hands over complete messages: 4 header bytes at least.
        let msg_type = msg[0];
        let body = &msg[4..];
        let unexpected = |expect: Expect| Error::UnexpectedMessage {
            expected: expect.name(),
            got: message::kind_name(msg_type).to_owned(),
        };
        match (self.expect, msg_type) {
            (Expect::Established, kind::HELLO_REQUEST) if self.role == Role::Client => {
                // RFC 5246 section 7.4.1.1: a client may decline renegotiation with a
                // no_renegotiation warning. One refusal waiting in `outgoing` answers any
                // number of requests, so a flood of them cannot grow the buffer.
                if !self.refusal_pending {
                    self.refusal_pending = true;
                    self.send_alert(LEVEL_WARNING, AlertDescription::NO_RENEGOTIATION);
                }
                Ok(())
            }
            (Expect::ClientHello, kind::CLIENT_HELLO) => self.handle_client_hello(msg, body),
            (Expect::ServerHello, kind::SERVER_HELLO) => self.handle_server_hello(msg, body),
            (Expect::Certificate, kind::CERTIFICATE) => self.handle_certificate(msg, body),
            (Expect::ServerKeyExchange, kind::SERVER_KEY_EXCHANGE) => {
                self.handle_server_key_exchange(msg, body)
            }
            (Expect::ServerHelloDone, kind::CERTIFICATE_REQUEST) if !self.certificate_requested => {
                self.handle_certificate_request(msg, body)
            }
            (Expect::ServerHelloDone, kind::SERVER_HELLO_DONE) => {
                self.handle_server_hello_done(msg, body)
            }
            (Expect::ClientKeyExchange, kind::CLIENT_KEY_EXCHANGE) => {
                self.handle_client_key_exchange(msg, body)
            }
            (Expect::Finished, kind::FINISHED) => self.handle_finished(msg, body),
            (expect, _) => Err(unexpected(expect)),
        }
    }

    fn random(&self) -> Result<[u8; 32], Error> {
        let mut r = [0u8; 32];
        self.rng.fill(&mut r).map_err(|_| Error::Crypto {
            what: "system randomness",
        })?;
        Ok(r)
    }

    fn handle_finished(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let master = self.master.ok_or(Error::Crypto {
            what: "no master secret",
        })?;
        let (label, step): (&[u8], Step) = match self.role {
            Role::Client => (b"server finished", Step::ClientVerifies),
            Role::Server => (b"client finished", Step::ServerFinished),
        };
        let hash = digest::digest(&digest::SHA256, &self.handshake_messages);
        let expected = prf::verify_data(&master, label, hash.as_ref());
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
        match self.role {
            Role::Client => {
                self.expect = Expect::Established;
                tracing::debug!(suite = ?self.suite, "teaching TLS client handshake complete");
                self.transcript
                    .push(Step::ClientVerifies, Direction::Local, "handshake complete")
                    .field(
                        "suite",
                        self.suite.map(|s| s.to_string()).unwrap_or_default(),
                    )
                    .field(
                        "from now on",
                        format!(
                            "application data is encrypted with {}",
                            self.write_cipher.as_ref().map_or("?", |c| c.name())
                        ),
                    );
            }
            Role::Server => {
                self.send_change_cipher_spec()?;
                self.transcript
                    .push(Step::ServerFinished, Direction::Sent, "ChangeCipherSpec")
                    .field("meaning", "from now on the server's records are encrypted");
                self.send_finished(b"server finished", Step::ServerFinished)?;
                self.expect = Expect::Established;
                tracing::debug!(suite = ?self.suite, "teaching TLS server handshake complete");
            }
        }
        Ok(())
    }

    fn send_finished(&mut self, label: &[u8], step: Step) -> Result<(), Error> {
        let master = self.master.ok_or(Error::Crypto {
            what: "no master secret",
        })?;
        let hash = digest::digest(&digest::SHA256, &self.handshake_messages);
        let verify_data = prf::verify_data(&master, label, hash.as_ref());
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

    fn derive_keys(&mut self, premaster: &[u8], step: Step) -> Result<(), Error> {
        let master = prf::master_secret(premaster, &self.client_random, &self.server_random);
        let suite = self.suite.ok_or(Error::Crypto { what: "no suite" })?;
        let keys = prf::key_block(suite, &master, &self.client_random, &self.server_random);
        let client = RecordCipher::new(suite, &keys.client_write_key, &keys.client_write_iv)?;
        let server = RecordCipher::new(suite, &keys.server_write_key, &keys.server_write_iv)?;
        let (mine, theirs) = match self.role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        self.pending_write = Some(mine);
        self.pending_read = Some(theirs);
        self.master = Some(master);
        let key_log = match self.role {
            Role::Client => self.client_config.as_ref().and_then(|c| c.key_log.clone()),
            Role::Server => self.server_config.as_ref().and_then(|c| c.key_log.clone()),
        };
        if let Some(log) = key_log {
            log.log("CLIENT_RANDOM", &self.client_random, &master);
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
        Ok(())
    }
}
