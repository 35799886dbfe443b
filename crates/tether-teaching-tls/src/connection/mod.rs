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
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::alert::{AlertDescription, LEVEL_WARNING};
use crate::cert;
use crate::config::{ClientConfig, ServerConfig};
use crate::error::Error;
use crate::message::{
    self, ext, kind, ClientHello, EcdheServerKeyExchange, Extension, ServerHello,
};
use crate::prf::{self, MASTER_SECRET_LEN};
use crate::random;
use crate::record::{ContentType, RecordCipher, MAX_FRAGMENT_LEN};
use crate::suite::{self, CipherSuite};
use crate::transcript::{Direction, Step, Transcript};
use crate::wire::{hex, printable};

mod alerts;
mod record_layer;

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

    fn send_client_hello(&mut self) -> Result<(), Error> {
        let config = self.client_config.clone().ok_or(Error::Crypto {
            what: "client without configuration",
        })?;
        self.client_random = self.random()?;
        self.offered = config.cipher_suites.clone();
        let mut extensions = Vec::new();
        if let Some(ServerName::DnsName(name)) = &self.server_name {
            extensions.push(Extension {
                kind: ext::SERVER_NAME,
                data: message::encode_server_name(name.as_ref()),
            });
        }
        if self.offered.iter().any(|s| s.is_ephemeral()) {
            extensions.push(Extension {
                kind: ext::SUPPORTED_GROUPS,
                data: message::encode_u16_list(&[message::GROUP_X25519]),
            });
            // RFC 4492 section 5.1.2: uncompressed points only.
            extensions.push(Extension {
                kind: ext::EC_POINT_FORMATS,
                data: vec![1, 0],
            });
        }
        extensions.push(Extension {
            kind: ext::SIGNATURE_ALGORITHMS,
            data: message::encode_u16_list(&[
                message::SIG_RSA_PKCS1_SHA256,
                message::SIG_RSA_PKCS1_SHA384,
                message::SIG_RSA_PKCS1_SHA512,
            ]),
        });
        // RFC 5746 section 3.4: an initial handshake carries an empty renegotiation_info.
        extensions.push(Extension {
            kind: ext::RENEGOTIATION_INFO,
            data: vec![0],
        });
        self.sent_extensions = extensions.iter().map(|e| e.kind).collect();
        let hello = ClientHello {
            version: message::TLS12,
            random: self.client_random,
            session_id: Vec::new(),
            cipher_suites: self.offered.clone(),
            compression_methods: vec![0],
            extensions,
        };
        let msg = hello.encode();
        let wire = self.send_handshake(&msg)?;
        let names: Vec<String> = hello
            .extensions
            .iter()
            .map(|e| message::ext_name(e.kind).to_owned())
            .collect();
        self.transcript
            .push(Step::OfferCiphers, Direction::Sent, "ClientHello")
            .field("client_version", "0x0303 (TLS 1.2)")
            .field("random", hex(&self.client_random))
            .field("session_id", "(empty: a new session)")
            .field("cipher_suites", suite::list(&self.offered))
            .field("compression_methods", "[null]")
            .field(
                "server_name",
                self.server_name
                    .as_ref()
                    .map(cert::server_name_str)
                    .unwrap_or_default(),
            )
            .field("extensions", names.join(", "))
            .bytes(&wire);
        Ok(())
    }

    fn handle_server_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let hello = ServerHello::read(body)?;
        if hello.version != message::TLS12 {
            return Err(Error::UnsupportedVersion {
                version: hello.version,
            });
        }
        // RFC 5246 section 7.4.1.3: "a single cipher suite selected by the server from the
        // list in ClientHello.cipher_suites".
        if !self.offered.contains(&hello.cipher_suite) {
            return Err(Error::SuiteNotOffered {
                chosen: hello.cipher_suite,
            });
        }
        if hello.compression_method != 0 {
            return Err(Error::Decode {
                what: "compression_method (only null was offered)",
            });
        }
        for e in &hello.extensions {
            // RFC 5246 section 7.4.1.4: an extension the client did not offer is fatal.
            if !self.sent_extensions.contains(&e.kind) {
                return Err(Error::UnsolicitedExtension { extension: e.kind });
            }
            // RFC 5746 section 3.4: renegotiated_connection must be empty.
            if e.kind == ext::RENEGOTIATION_INFO && e.data != [0] {
                return Err(Error::Decode {
                    what: "renegotiation_info",
                });
            }
        }
        self.handshake_messages.extend_from_slice(msg);
        self.server_random = hello.random;
        self.suite = Some(hello.cipher_suite);
        let names: Vec<&str> = hello
            .extensions
            .iter()
            .map(|e| message::ext_name(e.kind))
            .collect();
        self.transcript
            .push(Step::ChooseCipher, Direction::Received, "ServerHello")
            .field("server_version", "0x0303 (TLS 1.2)")
            .field("random", hex(&hello.random))
            .field("session_id", hex(&hello.session_id))
            .field(
                "cipher_suite",
                format!("{} (chosen by the server)", hello.cipher_suite),
            )
            .field("extensions", names.join(", "))
            .bytes(msg);
        self.expect = Expect::Certificate;
        Ok(())
    }

    fn handle_certificate(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let chain: Vec<CertificateDer<'static>> = message::read_certificate(body)?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        self.handshake_messages.extend_from_slice(msg);
        let names = chain
            .first()
            .and_then(|c| {
                webpki::EndEntityCert::try_from(c)
                    .ok()
                    .map(|ee| ee.valid_dns_names().collect::<Vec<_>>().join(", "))
            })
            .unwrap_or_default();
        self.transcript
            .push(Step::ChooseCipher, Direction::Received, "Certificate")
            .field("certificates", chain.len().to_string())
            .field(
                "leaf size",
                format!("{} bytes", chain.first().map_or(0, |c| c.len())),
            )
            .field("leaf DNS names", names)
            .bytes(msg);

        let config = self.client_config.clone().ok_or(Error::Crypto {
            what: "client without configuration",
        })?;
        let name = self.server_name.clone().ok_or(Error::Crypto {
            what: "client without server name",
        })?;
        let now = config.time.unwrap_or_else(UnixTime::now);
        match cert::verify_server_chain(&chain, &config.roots, &name, now) {
            Ok(()) => {
                self.transcript
                    .push(
                        Step::CheckCertificate,
                        Direction::Local,
                        "certificate accepted",
                    )
                    .field(
                        "chain",
                        "leads to a configured trust anchor, every signature verifies",
                    )
                    .field(
                        "validity",
                        format!("valid at {} (unix seconds)", now.as_secs()),
                    )
                    .field(
                        "name",
                        format!("valid for {}", cert::server_name_str(&name)),
                    );
            }
            Err(e) if config.accept_invalid_certificates => {
                self.transcript
                    .push(
                        Step::CheckCertificate,
                        Direction::Local,
                        "CERTIFICATE NOT TRUSTED - accepted anyway (dangerous_accept_invalid_certificates)",
                    )
                    .field("problem", e.to_string())
                    .field("warning", "anyone on the path could be impersonating the server");
            }
            Err(e) => {
                self.transcript
                    .push(
                        Step::CheckCertificate,
                        Direction::Local,
                        "certificate refused",
                    )
                    .field("problem", e.to_string());
                return Err(Error::Certificate(e));
            }
        }
        let leaf = chain
            .first()
            .ok_or(Error::Certificate(crate::CertificateError::NoCertificate))?;
        self.server_rsa = Some(cert::rsa_public_key(leaf)?);
        self.peer_chain = chain;
        self.expect = if self.suite.is_some_and(CipherSuite::is_ephemeral) {
            Expect::ServerKeyExchange
        } else {
            Expect::ServerHelloDone
        };
        Ok(())
    }

    fn handle_server_key_exchange(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let ske = EcdheServerKeyExchange::read(body)?;
        if ske.group != message::GROUP_X25519 || ske.public.len() != 32 {
            return Err(Error::Decode {
                what: "ServerECDHParams (only x25519 was offered)",
            });
        }
        let mut signed = Vec::with_capacity(64 + 36);
        signed.extend_from_slice(&self.client_random);
        signed.extend_from_slice(&self.server_random);
        signed.extend_from_slice(&ske.params());
        let leaf = self
            .peer_chain
            .first()
            .ok_or(Error::Certificate(crate::CertificateError::NoCertificate))?;
        if !cert::verify_signature(leaf, ske.sig_scheme, &signed, &ske.signature) {
            return Err(Error::BadKeyExchangeSignature);
        }
        self.handshake_messages.extend_from_slice(msg);
        self.transcript
            .push(Step::ChooseCipher, Direction::Received, "ServerKeyExchange")
            .field("named_curve", "x25519 (0x001d)")
            .field("server ephemeral public key", hex(&ske.public))
            .field(
                "signature_algorithm",
                format!("0x{:04x} (rsa_pkcs1)", ske.sig_scheme),
            )
            .field(
                "signature",
                "verified with the certificate's RSA key over both randoms and the key",
            )
            .bytes(msg);
        self.server_ecdh_public = Some(ske.public);
        self.expect = Expect::ServerHelloDone;
        Ok(())
    }

    fn handle_certificate_request(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let request = message::CertificateRequest::read(body)?;
        self.handshake_messages.extend_from_slice(msg);
        self.certificate_requested = true;
        self.transcript
            .push(
                Step::ChooseCipher,
                Direction::Received,
                "CertificateRequest",
            )
            .field(
                "certificate_types",
                format!("{:?}", request.certificate_types),
            )
            .field(
                "signature_algorithms",
                format!("{} offered", request.signature_algorithms.len()),
            )
            .field(
                "certificate_authorities",
                format!("{} named", request.authorities.len()),
            )
            .field(
                "meaning",
                "the server asks the client to prove who it is too (mutual TLS)",
            )
            .bytes(msg);
        Ok(())
    }

    /// RFC 5246 section 7.4.6: "If no suitable certificate is available, the client MUST
    /// send a certificate message containing no certificates."
    fn send_empty_certificate(&mut self) -> Result<(), Error> {
        let wire = self.send_handshake(&message::encode_certificate(&[]))?;
        self.transcript
            .push(Step::Premaster, Direction::Sent, "Certificate (empty)")
            .field(
                "why",
                "the server asked for a client certificate and this client has none \
                 (RFC 5246 7.4.6); the server decides whether to go on",
            )
            .field(
                "mutual TLS",
                "a client with a certificate would send its chain here, then a \
                 CertificateVerify signing the handshake hash after ClientKeyExchange",
            )
            .bytes(&wire);
        Ok(())
    }

    fn handle_server_hello_done(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        if !body.is_empty() {
            return Err(Error::Decode {
                what: "ServerHelloDone",
            });
        }
        self.handshake_messages.extend_from_slice(msg);
        self.transcript
            .push(Step::ChooseCipher, Direction::Received, "ServerHelloDone")
            .bytes(msg);

        if self.certificate_requested {
            self.send_empty_certificate()?;
        }
        let suite = self.suite.ok_or(Error::Crypto { what: "no suite" })?;
        let premaster = if suite.is_ephemeral() {
            let server_public = self.server_ecdh_public.clone().ok_or(Error::Crypto {
                what: "no server key share",
            })?;
            let my = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &self.rng)?;
            let my_public = my.compute_public_key()?;
            let shared = agreement::agree_ephemeral(
                my,
                &agreement::UnparsedPublicKey::new(&agreement::X25519, &server_public),
                |s| s.to_vec(),
            )
            .map_err(|_| Error::Decode {
                what: "server x25519 public key",
            })?;
            let cke = message::encode_ecdhe_client_key_exchange(my_public.as_ref());
            let wire = self.send_handshake(&cke)?;
            self.transcript
                .push(
                    Step::Premaster,
                    Direction::Sent,
                    "ClientKeyExchange (ECDHE)",
                )
                .field("client ephemeral public key", hex(my_public.as_ref()))
                .secret("premaster = X25519(client secret, server public)", &shared)
                .field("note", "the premaster never travels: both sides compute it")
                .bytes(&wire);
            shared
        } else {
            let key = self.server_rsa.clone().ok_or(Error::Crypto {
                what: "no server key",
            })?;
            // RFC 5246 section 7.4.7.1: client_version (2 bytes) and 46 random bytes.
            let mut premaster = vec![0u8; 48];
            premaster[..2].copy_from_slice(&self.client_version.to_be_bytes());
            self.rng
                .fill(&mut premaster[2..])
                .map_err(|_| Error::Crypto {
                    what: "system randomness",
                })?;
            let encrypted = key
                .encrypt(
                    &mut random::rsa_padding(&self.rng)?,
                    rsa::Pkcs1v15Encrypt,
                    &premaster,
                )
                .map_err(|_| Error::Crypto {
                    what: "RSA encryption of the premaster",
                })?;
            let cke = message::encode_rsa_client_key_exchange(&encrypted);
            let wire = self.send_handshake(&cke)?;
            self.transcript
                .push(Step::Premaster, Direction::Sent, "ClientKeyExchange (RSA)")
                .secret("premaster (03 03 + 46 random bytes)", &premaster)
                .field(
                    "EncryptedPreMasterSecret",
                    format!(
                        "{} bytes, RSA PKCS#1 v1.5 under the certificate's public key",
                        encrypted.len()
                    ),
                )
                .bytes(&wire);
            premaster
        };
        self.derive_keys(&premaster, Step::ClientFinished)?;
        self.send_change_cipher_spec()?;
        self.transcript
            .push(Step::ClientFinished, Direction::Sent, "ChangeCipherSpec")
            .field("meaning", "from now on the client's records are encrypted");
        self.send_finished(b"client finished", Step::ClientFinished)?;
        self.expect = Expect::ChangeCipherSpec;
        Ok(())
    }

    fn handle_client_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let config = self.server_config.clone().ok_or(Error::Crypto {
            what: "server without configuration",
        })?;
        let hello = ClientHello::read(body)?;
        // RFC 5246 appendix E.1: a client offering less than TLS 1.2 gets protocol_version.
        if hello.version < message::TLS12 {
            return Err(Error::UnsupportedVersion {
                version: hello.version,
            });
        }
        self.handshake_messages.extend_from_slice(msg);
        self.client_random = hello.random;
        self.client_version = hello.version;
        let names: Vec<&str> = hello
            .extensions
            .iter()
            .map(|e| message::ext_name(e.kind))
            .collect();
        let sni = match hello.extension(ext::SERVER_NAME) {
            Some(data) => message::read_server_name(data)?,
            None => None,
        };
        self.transcript
            .push(Step::OfferCiphers, Direction::Received, "ClientHello")
            .field("client_version", format!("0x{:04x}", hello.version))
            .field("random", hex(&hello.random))
            .field("cipher_suites", suite::list(&hello.cipher_suites))
            .field("server_name", printable(&sni.unwrap_or_default()))
            .field("extensions", names.join(", "))
            .bytes(msg);

        if !hello.compression_methods.contains(&0) {
            return Err(Error::NoCommonParameters {
                what: "compression method (null)",
            });
        }
        let groups = match hello.extension(ext::SUPPORTED_GROUPS) {
            Some(d) => message::read_u16_list(d, "supported_groups")?,
            None => Vec::new(),
        };
        // RFC 5246 section 7.4.1.4.1: without signature_algorithms the client only
        // accepts SHA-1 signatures, which this server does not make.
        let sig_algs = match hello.extension(ext::SIGNATURE_ALGORITHMS) {
            Some(d) => message::read_u16_list(d, "signature_algorithms")?,
            None => Vec::new(),
        };
        let ecdhe_ok = groups.contains(&message::GROUP_X25519)
            && sig_algs.contains(&message::SIG_RSA_PKCS1_SHA256);
        // Step 2: the server's preference decides, among what the client offered.
        let chosen = config
            .cipher_suites
            .iter()
            .copied()
            .find(|s| hello.cipher_suites.contains(s) && (!s.is_ephemeral() || ecdhe_ok))
            .ok_or_else(|| Error::NoCommonCipherSuite {
                offered: hello.cipher_suites.clone(),
                supported: config.cipher_suites.clone(),
            })?;
        self.suite = Some(chosen);

        let secure_renegotiation = match hello.extension(ext::RENEGOTIATION_INFO) {
            Some(d) if d != [0] => {
                return Err(Error::Decode {
                    what: "renegotiation_info",
                })
            }
            Some(_) => true,
            None => hello
                .cipher_suites
                .contains(&message::EMPTY_RENEGOTIATION_INFO_SCSV),
        };
        let mut extensions = Vec::new();
        if secure_renegotiation {
            extensions.push(Extension {
                kind: ext::RENEGOTIATION_INFO,
                data: vec![0],
            });
        }
        self.server_random = self.random()?;
        let server_hello = ServerHello {
            version: message::TLS12,
            random: self.server_random,
            session_id: Vec::new(),
            cipher_suite: chosen,
            compression_method: 0,
            extensions,
        };
        let wire = self.send_handshake(&server_hello.encode())?;
        self.transcript
            .push(Step::ChooseCipher, Direction::Sent, "ServerHello")
            .field("server_version", "0x0303 (TLS 1.2)")
            .field("random", hex(&self.server_random))
            .field(
                "cipher_suite",
                format!("{chosen} (the server's first choice the client offered)"),
            )
            .field("server preference", suite::list(&config.cipher_suites))
            .bytes(&wire);

        let chain: Vec<Vec<u8>> = config.chain.iter().map(|c| c.to_vec()).collect();
        let wire = self.send_handshake(&message::encode_certificate(&chain))?;
        self.transcript
            .push(Step::ChooseCipher, Direction::Sent, "Certificate")
            .field("certificates", chain.len().to_string())
            .field(
                "contains",
                "the site's name, its RSA public key, the issuer's signature",
            )
            .bytes(&wire);
        self.peer_chain = config.chain.clone();

        if chosen.is_ephemeral() {
            let key = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &self.rng)?;
            let public = key.compute_public_key()?;
            self.ecdhe_key = Some(key);
            let params = message::ecdh_params(message::GROUP_X25519, public.as_ref());
            let mut signed = Vec::with_capacity(64 + params.len());
            signed.extend_from_slice(&self.client_random);
            signed.extend_from_slice(&self.server_random);
            signed.extend_from_slice(&params);
            let signer = &config.key.signer;
            let mut signature = vec![0u8; signer.public().modulus_len()];
            signer
                .sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    &signed,
                    &mut signature,
                )
                .map_err(|_| Error::Crypto {
                    what: "RSA signature",
                })?;
            let ske = EcdheServerKeyExchange {
                group: message::GROUP_X25519,
                public: public.as_ref().to_vec(),
                sig_scheme: message::SIG_RSA_PKCS1_SHA256,
                signature,
            };
            let wire = self.send_handshake(&ske.encode())?;
            self.transcript
                .push(Step::ChooseCipher, Direction::Sent, "ServerKeyExchange")
                .field("named_curve", "x25519 (0x001d)")
                .field("server ephemeral public key", hex(public.as_ref()))
                .field(
                    "signature",
                    "rsa_pkcs1_sha256 over client random + server random + key",
                )
                .bytes(&wire);
        }
        let wire = self.send_handshake(&message::frame(kind::SERVER_HELLO_DONE, &[]))?;
        self.transcript
            .push(Step::ChooseCipher, Direction::Sent, "ServerHelloDone")
            .bytes(&wire);
        self.expect = Expect::ClientKeyExchange;
        Ok(())
    }

    fn handle_client_key_exchange(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
        let config = self.server_config.clone().ok_or(Error::Crypto {
            what: "server without configuration",
        })?;
        let suite = self.suite.ok_or(Error::Crypto { what: "no suite" })?;
        let premaster = if suite.is_ephemeral() {
            let public = message::read_ecdhe_client_key_exchange(body)?;
            let key = self.ecdhe_key.take().ok_or(Error::Crypto {
                what: "no ephemeral key",
            })?;
            let shared = agreement::agree_ephemeral(
                key,
                &agreement::UnparsedPublicKey::new(&agreement::X25519, public),
                |s| s.to_vec(),
            )
            .map_err(|_| Error::Decode {
                what: "client x25519 public key",
            })?;
            self.transcript
                .push(
                    Step::Premaster,
                    Direction::Received,
                    "ClientKeyExchange (ECDHE)",
                )
                .field("client ephemeral public key", hex(public))
                .secret("premaster = X25519(server secret, client public)", &shared)
                .bytes(msg);
            shared
        } else {
            let encrypted = message::read_rsa_client_key_exchange(body)?;
            // RFC 5246 section 7.4.7.1: on any failure continue with a random premaster,
            // so that a bad ciphertext is indistinguishable from a good one until Finished
            // (Bleichenbacher's padding oracle). The random value is drawn first, always.
            let mut fallback = vec![0u8; 48];
            self.rng.fill(&mut fallback).map_err(|_| Error::Crypto {
                what: "system randomness",
            })?;
            let version = self.client_version.to_be_bytes();
            let decrypted = config.key.rsa.decrypt(rsa::Pkcs1v15Encrypt, encrypted);
            let (premaster, ok) = match decrypted {
                Ok(p) if p.len() == 48 && p[..2] == version => (p, true),
                _ => (fallback, false),
            };
            self.transcript
                .push(
                    Step::Premaster,
                    Direction::Received,
                    "ClientKeyExchange (RSA)",
                )
                .field(
                    "EncryptedPreMasterSecret",
                    format!("{} bytes", encrypted.len()),
                )
                .field(
                    "decryption",
                    if ok {
                        "decrypted with the server's private key"
                    } else {
                        "failed: continuing with a random premaster (RFC 5246 7.4.7.1)"
                    },
                )
                .secret("premaster", &premaster)
                .bytes(msg);
            premaster
        };
        self.handshake_messages.extend_from_slice(msg);
        self.derive_keys(&premaster, Step::ServerFinished)?;
        self.expect = Expect::ChangeCipherSpec;
        Ok(())
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
