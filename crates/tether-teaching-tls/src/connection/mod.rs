//! The sans-IO connection: the record layer ([`record_layer`], [`alerts`]) shared by both
//! roles, and a typed handshake state per role ([`client`], [`server`], [`state`]).
//!
//! Inputs: [`Connection::receive`] (bytes from the peer), [`Connection::receive_eof`],
//! [`Connection::send`] (application data), [`Connection::close`].
//! Outputs: [`Connection::take_outgoing`] (bytes for the peer),
//! [`Connection::read_plaintext`] (application data from the peer), the getters.
//!
//! Handshake states are structs named after what they expect next (RFC 5246 section 7.3),
//! holding what that side knows at that point:
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
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::alert::{AlertDescription, LEVEL_WARNING};
use crate::config::{ClientConfig, ServerConfig};
use crate::error::Error;
use crate::random::RandomSource;
use crate::record::{ContentType, RecordCipher, MAX_FRAGMENT_LEN};
use crate::suite::CipherSuite;
use crate::transcript::{Direction, Step, Transcript};
use crate::wire::hex;

mod alerts;
mod client;
mod record_layer;
mod secrets;
mod server;
mod state;
#[cfg(test)]
mod testing;

use state::State;

use record_layer::preview;

/// Largest handshake message this crate buffers (a certificate chain of a public site is
/// well below this).
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 64 * 1024;

/// Which end of the TLS connection this is (named apart from the WebSocket `Role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Sends ClientHello, checks the certificate, makes the premaster.
    Client,
    /// Answers with its certificate, recovers the premaster.
    Server,
}

/// A TLS 1.2 connection, client or server, without I/O.
///
/// Feed it the peer's bytes with [`receive`](Self::receive), send what
/// [`take_outgoing`](Self::take_outgoing) returns, read application data with
/// [`read_plaintext`](Self::read_plaintext). The first error sticks: it is returned again by
/// every later call, and the matching fatal alert is queued in the outgoing bytes.
pub struct Connection {
    side: Side,
    /// What the handshake expects next, and what this side knows at that point.
    state: State,
    /// The configured source: every random byte this side draws itself.
    random: Arc<dyn RandomSource>,
    incoming: Vec<u8>,
    handshake_buf: Vec<u8>,
    outgoing: Vec<u8>,
    plaintext: BytesMut,
    /// None until the peer's ChangeCipherSpec.
    read_cipher: Option<RecordCipher>,
    /// None until this side's ChangeCipherSpec.
    write_cipher: Option<RecordCipher>,
    /// Every handshake message so far, in order: what Finished hashes.
    handshake_messages: Vec<u8>,
    transcript: Transcript,
    error: Option<Error>,
    peer_closed: bool,
    close_sent: bool,
    refusal_pending: bool,
    /// For the getters: the suite once chosen, the server's chain once sent or accepted,
    /// the client random once known.
    suite: Option<CipherSuite>,
    peer_chain: Vec<CertificateDer<'static>>,
    client_random: [u8; 32],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .field("expects", &self.state.expects())
            .field("suite", &self.suite)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A client connection to `server_name`; the ClientHello is ready in
    /// [`take_outgoing`](Self::take_outgoing) at once.
    ///
    /// `now` is the caller's clock: the server's certificate is judged at it, unless
    /// [`ClientConfig::set_verification_time`] fixes another time. The core reads no clock
    /// itself ([`connect`](crate::connect) passes the system time).
    ///
    /// Fails with [`Error::InvalidConfig`] when the configuration offers no suite, and
    /// [`Error::Crypto`] if the system's randomness fails.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        now: UnixTime,
    ) -> Result<Self, Error> {
        if config.cipher_suites.is_empty() {
            return Err(Error::InvalidConfig {
                reason: "the client offers no cipher suite".to_owned(),
            });
        }
        let mut conn = Self::new(Side::Client, config.random.clone());
        conn.state = State::Client(client::start(&mut conn, config, server_name, now)?);
        Ok(conn)
    }

    /// A server connection; it waits for the ClientHello.
    pub fn server(config: Arc<ServerConfig>) -> Self {
        let mut conn = Self::new(Side::Server, config.random.clone());
        conn.state = State::Server(server::start(config));
        conn
    }

    fn new(side: Side, random: Arc<dyn RandomSource>) -> Self {
        Self {
            side,
            state: State::Failed,
            random,
            incoming: Vec::new(),
            handshake_buf: Vec::new(),
            outgoing: Vec::new(),
            plaintext: BytesMut::new(),
            read_cipher: None,
            write_cipher: None,
            handshake_messages: Vec::new(),
            transcript: Transcript::default(),
            error: None,
            peer_closed: false,
            close_sent: false,
            refusal_pending: false,
            suite: None,
            peer_chain: Vec::new(),
            client_random: [0; 32],
        }
    }

    // ---- getters ---------------------------------------------------------------------

    /// Which end this is: client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// True until both Finished messages were exchanged (or the connection failed).
    pub fn is_handshaking(&self) -> bool {
        !self.state.is_established() && self.error.is_none()
    }

    /// True once the handshake completed and no error occurred.
    pub fn is_established(&self) -> bool {
        self.state.is_established() && self.error.is_none()
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
        let e = if !self.state.is_established() {
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
        if !self.state.is_established() {
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

    /// 32 fresh random bytes (a hello random).
    fn random(&self) -> Result<[u8; 32], Error> {
        let mut r = [0u8; 32];
        self.random.fill(&mut r)?;
        Ok(r)
    }
}
