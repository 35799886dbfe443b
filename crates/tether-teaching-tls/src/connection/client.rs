//! The client's side of the handshake: ClientHello out; ServerHello, Certificate,
//! ServerKeyExchange (ECDHE), CertificateRequest (if asked), ServerHelloDone in; ClientKeyExchange,
//! ChangeCipherSpec and Finished out; the server's ChangeCipherSpec and Finished in.
//!
//! Each state is named after what the client waits for and holds what it knows then:
//!
//! ```text
//!  ExpectServerHello        { config, server name, client random, extensions sent }
//!  ExpectCertificate        { config, server name, randoms, suite }
//!  ExpectServerKeyExchange  { config, randoms, suite, server certificate }   (ECDHE)
//!  ExpectServerHelloDone    { config, randoms, suite, server key, certificate requested? }
//!  ExpectChangeCipherSpec   { master secret, suite, the server's record cipher }
//!  ExpectFinished           { master secret, suite }
//! ```

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::message::{
    self, ext, kind, ClientHello, EcdheServerKeyExchange, Extension, ServerHello,
};
use crate::random;
use crate::record::RecordCipher;
use crate::suite::{self, CipherSuite};
use crate::transcript::{Direction, Step};
use crate::wire::hex;
use crate::x25519::EphemeralKey;

use super::secrets::{Randoms, Secrets};
use super::state::{self, unexpected, Message};
use super::Connection;

/// Where the client is in the handshake.
pub(super) enum State {
    ServerHello(ExpectServerHello),
    Certificate(ExpectCertificate),
    ServerKeyExchange(ExpectServerKeyExchange),
    ServerHelloDone(ExpectServerHelloDone),
    ChangeCipherSpec(Box<ExpectChangeCipherSpec>),
    Finished(Box<ExpectFinished>),
}

impl State {
    pub(super) fn expects(&self) -> &'static str {
        match self {
            State::ServerHello(_) => "ServerHello",
            State::Certificate(_) => "Certificate",
            State::ServerKeyExchange(_) => "ServerKeyExchange",
            State::ServerHelloDone(_) => "ServerHelloDone",
            State::ChangeCipherSpec(_) => "ChangeCipherSpec",
            State::Finished(_) => "Finished",
        }
    }

    /// Moves on with `message`, or fails with unexpected_message if this state does not
    /// take it.
    pub(super) fn handle(
        self,
        cx: &mut Connection,
        message: Message<'_>,
    ) -> Result<state::State, Error> {
        use Message::{ChangeCipherSpec, Handshake};
        let next = match (self, message) {
            (
                State::ServerHello(s),
                Handshake {
                    kind: kind::SERVER_HELLO,
                    msg,
                    body,
                },
            ) => s.handle(cx, msg, body)?,
            (
                State::Certificate(s),
                Handshake {
                    kind: kind::CERTIFICATE,
                    msg,
                    body,
                },
            ) => s.handle(cx, msg, body)?,
            (
                State::ServerKeyExchange(s),
                Handshake {
                    kind: kind::SERVER_KEY_EXCHANGE,
                    msg,
                    body,
                },
            ) => s.handle(cx, msg, body)?,
            (
                State::ServerHelloDone(s),
                Handshake {
                    kind: kind::CERTIFICATE_REQUEST,
                    msg,
                    body,
                },
            ) if !s.certificate_requested => s.handle_certificate_request(cx, msg, body)?,
            (
                State::ServerHelloDone(s),
                Handshake {
                    kind: kind::SERVER_HELLO_DONE,
                    msg,
                    body,
                },
            ) => s.handle(cx, msg, body)?,
            (State::ChangeCipherSpec(s), ChangeCipherSpec) => s.handle(cx),
            (
                State::Finished(s),
                Handshake {
                    kind: kind::FINISHED,
                    msg,
                    body,
                },
            ) => {
                return s.handle(cx, msg, body);
            }
            (s, message) => return Err(unexpected(s.expects(), message)),
        };
        Ok(state::State::Client(next))
    }
}

/// Step 1: sends the ClientHello (the suites the client accepts) and waits for the answer.
/// `now` is the caller's clock, kept to judge the certificate (unless the configuration
/// sets a verification time).
pub(super) fn start(
    cx: &mut Connection,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    now: UnixTime,
) -> Result<State, Error> {
    let client_random = cx.random()?;
    cx.client_random = client_random;
    let mut extensions = Vec::new();
    if let ServerName::DnsName(name) = &server_name {
        extensions.push(Extension {
            kind: ext::SERVER_NAME,
            data: message::encode_server_name(name.as_ref()),
        });
    }
    if config.cipher_suites.iter().any(|s| s.is_ephemeral()) {
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
    let sent_extensions = extensions.iter().map(|e| e.kind).collect();
    let hello = ClientHello {
        version: message::TLS12,
        random: client_random,
        session_id: Vec::new(),
        cipher_suites: config.cipher_suites.clone(),
        compression_methods: vec![0],
        extensions,
    };
    let wire = cx.send_handshake(&hello.encode())?;
    let names: Vec<&str> = hello
        .extensions
        .iter()
        .map(|e| message::ext_name(e.kind))
        .collect();
    cx.transcript
        .push(Step::OfferCiphers, Direction::Sent, "ClientHello")
        .field("client_version", "0x0303 (TLS 1.2)")
        .field("random", hex(&client_random))
        .field("session_id", "(empty: a new session)")
        .field("cipher_suites", suite::list(&config.cipher_suites))
        .field("compression_methods", "[null]")
        .field("server_name", cert::server_name_str(&server_name))
        .field("extensions", names.join(", "))
        .bytes(&wire);
    Ok(State::ServerHello(ExpectServerHello {
        verification_time: config.time.unwrap_or(now),
        config,
        server_name,
        client_random,
        sent_extensions,
    }))
}

/// ClientHello sent; the server's choice comes next.
pub(super) struct ExpectServerHello {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    /// When the certificate is judged: the config's verification time, else the caller's.
    verification_time: UnixTime,
    client_random: [u8; 32],
    sent_extensions: Vec<u16>,
}

impl ExpectServerHello {
    /// Step 2 as the client sees it: the suite the server picked, among those offered.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        let hello = ServerHello::read(body)?;
        if hello.version != message::TLS12 {
            return Err(Error::UnsupportedVersion {
                version: hello.version,
            });
        }
        // RFC 5246 section 7.4.1.3: "a single cipher suite selected by the server from the
        // list in ClientHello.cipher_suites".
        if !self.config.cipher_suites.contains(&hello.cipher_suite) {
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
        cx.handshake_messages.extend_from_slice(msg);
        cx.suite = Some(hello.cipher_suite);
        let names: Vec<&str> = hello
            .extensions
            .iter()
            .map(|e| message::ext_name(e.kind))
            .collect();
        cx.transcript
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
        Ok(State::Certificate(ExpectCertificate {
            config: self.config,
            server_name: self.server_name,
            verification_time: self.verification_time,
            randoms: Randoms {
                client: self.client_random,
                server: hello.random,
            },
            suite: hello.cipher_suite,
        }))
    }
}

/// The suite is chosen; the server's certificate chain comes next.
pub(super) struct ExpectCertificate {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    verification_time: UnixTime,
    randoms: Randoms,
    suite: CipherSuite,
}

impl ExpectCertificate {
    /// Step 3a: the chain must lead to a trusted root and name the server.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        let chain: Vec<CertificateDer<'static>> = message::read_certificate(body)?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        cx.handshake_messages.extend_from_slice(msg);
        let names = chain
            .first()
            .and_then(|c| {
                webpki::EndEntityCert::try_from(c)
                    .ok()
                    .map(|ee| ee.valid_dns_names().collect::<Vec<_>>().join(", "))
            })
            .unwrap_or_default();
        cx.transcript
            .push(Step::ChooseCipher, Direction::Received, "Certificate")
            .field("certificates", chain.len().to_string())
            .field(
                "leaf size",
                format!("{} bytes", chain.first().map_or(0, |c| c.len())),
            )
            .field("leaf DNS names", names)
            .bytes(msg);
        self.check_chain(cx, &chain)?;
        let leaf = chain
            .first()
            .ok_or(Error::Certificate(crate::CertificateError::NoCertificate))?
            .clone();
        let server_key = cert::rsa_public_key(&leaf)?;
        cx.peer_chain = chain;
        Ok(if self.suite.is_ephemeral() {
            State::ServerKeyExchange(ExpectServerKeyExchange {
                config: self.config,
                randoms: self.randoms,
                suite: self.suite,
                leaf,
            })
        } else {
            State::ServerHelloDone(ExpectServerHelloDone {
                config: self.config,
                randoms: self.randoms,
                suite: self.suite,
                server_key: ServerKey::Rsa(server_key),
                certificate_requested: false,
            })
        })
    }

    fn check_chain(
        &self,
        cx: &mut Connection,
        chain: &[CertificateDer<'static>],
    ) -> Result<(), Error> {
        let config = &self.config;
        let name = &self.server_name;
        let now = self.verification_time;
        match cert::verify_server_chain(chain, &config.roots, name, now) {
            Ok(()) => {
                cx.transcript
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
                    .field("name", format!("valid for {}", cert::server_name_str(name)));
                Ok(())
            }
            Err(e) if config.accept_invalid_certificates => {
                cx.transcript
                    .push(
                        Step::CheckCertificate,
                        Direction::Local,
                        "CERTIFICATE NOT TRUSTED - accepted anyway (dangerous_accept_invalid_certificates)",
                    )
                    .field("problem", e.to_string())
                    .field("warning", "anyone on the path could be impersonating the server");
                Ok(())
            }
            Err(e) => {
                cx.transcript
                    .push(
                        Step::CheckCertificate,
                        Direction::Local,
                        "certificate refused",
                    )
                    .field("problem", e.to_string());
                Err(Error::Certificate(e))
            }
        }
    }
}

/// ECDHE only: the certificate is accepted; the server's signed key share comes next.
pub(super) struct ExpectServerKeyExchange {
    config: Arc<ClientConfig>,
    randoms: Randoms,
    suite: CipherSuite,
    /// The server's certificate, whose RSA key signs the key share.
    leaf: CertificateDer<'static>,
}

impl ExpectServerKeyExchange {
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        let ske = EcdheServerKeyExchange::read(body)?;
        if ske.group != message::GROUP_X25519 || ske.public.len() != 32 {
            return Err(Error::Decode {
                what: "ServerECDHParams (only x25519 was offered)",
            });
        }
        let mut signed = Vec::with_capacity(64 + 36);
        signed.extend_from_slice(&self.randoms.client);
        signed.extend_from_slice(&self.randoms.server);
        signed.extend_from_slice(&ske.params());
        if !cert::verify_signature(&self.leaf, ske.sig_scheme, &signed, &ske.signature) {
            return Err(Error::BadKeyExchangeSignature);
        }
        cx.handshake_messages.extend_from_slice(msg);
        cx.transcript
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
        Ok(State::ServerHelloDone(ExpectServerHelloDone {
            config: self.config,
            randoms: self.randoms,
            suite: self.suite,
            server_key: ServerKey::Ecdhe(ske.public),
            certificate_requested: false,
        }))
    }
}

/// What the client makes its premaster with.
enum ServerKey {
    /// The certificate's RSA key: the premaster travels encrypted under it.
    Rsa(rsa::RsaPublicKey),
    /// The server's X25519 share: the premaster is agreed, never sent.
    Ecdhe(Vec<u8>),
}

/// The server's part of the key exchange is known; ServerHelloDone (maybe after a
/// CertificateRequest) comes next.
pub(super) struct ExpectServerHelloDone {
    config: Arc<ClientConfig>,
    randoms: Randoms,
    suite: CipherSuite,
    server_key: ServerKey,
    certificate_requested: bool,
}

impl ExpectServerHelloDone {
    fn handle_certificate_request(
        mut self,
        cx: &mut Connection,
        msg: &[u8],
        body: &[u8],
    ) -> Result<State, Error> {
        let request = message::CertificateRequest::read(body)?;
        cx.handshake_messages.extend_from_slice(msg);
        self.certificate_requested = true;
        cx.transcript
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
        Ok(State::ServerHelloDone(self))
    }

    /// Steps 3b and 3c: the premaster, the keys, ChangeCipherSpec and Finished.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        if !body.is_empty() {
            return Err(Error::Decode {
                what: "ServerHelloDone",
            });
        }
        cx.handshake_messages.extend_from_slice(msg);
        cx.transcript
            .push(Step::ChooseCipher, Direction::Received, "ServerHelloDone")
            .bytes(msg);
        if self.certificate_requested {
            send_empty_certificate(cx)?;
        }
        let premaster = match &self.server_key {
            ServerKey::Ecdhe(server_public) => premaster_ecdhe(cx, server_public)?,
            ServerKey::Rsa(key) => premaster_rsa(cx, key)?,
        };
        let keys = cx.derive_keys(
            self.suite,
            &self.randoms,
            &premaster,
            self.config.key_log.as_ref(),
            Step::ClientFinished,
        )?;
        cx.change_write_cipher(keys.write, Step::ClientFinished, "client")?;
        cx.send_finished(
            &keys.secrets.master,
            b"client finished",
            Step::ClientFinished,
        )?;
        Ok(State::ChangeCipherSpec(Box::new(ExpectChangeCipherSpec {
            secrets: keys.secrets,
            read: keys.read,
        })))
    }
}

/// RFC 5246 section 7.4.6: "If no suitable certificate is available, the client MUST
/// send a certificate message containing no certificates."
fn send_empty_certificate(cx: &mut Connection) -> Result<(), Error> {
    let wire = cx.send_handshake(&message::encode_certificate(&[]))?;
    cx.transcript
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

/// Step 3b with ECDHE: a fresh X25519 key; the premaster is agreed, only the public half
/// is sent.
fn premaster_ecdhe(cx: &mut Connection, server_public: &[u8]) -> Result<Vec<u8>, Error> {
    let my = EphemeralKey::generate(&*cx.random)?;
    let my_public = *my.public();
    let shared = my.agree(server_public).ok_or(Error::Decode {
        what: "server x25519 public key",
    })?;
    let cke = message::encode_ecdhe_client_key_exchange(&my_public);
    let wire = cx.send_handshake(&cke)?;
    cx.transcript
        .push(
            Step::Premaster,
            Direction::Sent,
            "ClientKeyExchange (ECDHE)",
        )
        .field("client ephemeral public key", hex(&my_public))
        .secret("premaster = X25519(client secret, server public)", &shared)
        .field("note", "the premaster never travels: both sides compute it")
        .bytes(&wire);
    Ok(shared.to_vec())
}

/// Step 3b with RSA: a random premaster, encrypted with the certificate's public key.
fn premaster_rsa(cx: &mut Connection, key: &rsa::RsaPublicKey) -> Result<Vec<u8>, Error> {
    // RFC 5246 section 7.4.7.1: client_version (2 bytes) and 46 random bytes.
    let mut premaster = vec![0u8; 48];
    premaster[..2].copy_from_slice(&message::TLS12.to_be_bytes());
    cx.random.fill(&mut premaster[2..])?;
    let encrypted = key
        .encrypt(
            &mut random::rsa_rng(cx.random.as_ref())?,
            rsa::Pkcs1v15Encrypt,
            &premaster,
        )
        .map_err(|_| Error::Crypto {
            what: "RSA encryption of the premaster",
        })?;
    let cke = message::encode_rsa_client_key_exchange(&encrypted);
    let wire = cx.send_handshake(&cke)?;
    cx.transcript
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
    Ok(premaster)
}

/// The client's Finished is out; the server switches its cipher on next.
pub(super) struct ExpectChangeCipherSpec {
    secrets: Secrets,
    /// Opens the server's records once its ChangeCipherSpec arrived.
    read: RecordCipher,
}

impl ExpectChangeCipherSpec {
    fn handle(self, cx: &mut Connection) -> State {
        cx.change_read_cipher(self.read, Step::ClientVerifies);
        State::Finished(Box::new(ExpectFinished {
            secrets: self.secrets,
        }))
    }
}

/// The server's records are encrypted; its Finished comes next.
pub(super) struct ExpectFinished {
    secrets: Secrets,
}

impl ExpectFinished {
    /// Step 5: the server's Finished proves it knows the same master secret and saw the
    /// same handshake.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<state::State, Error> {
        cx.check_finished(
            &self.secrets.master,
            b"server finished",
            Step::ClientVerifies,
            msg,
            body,
        )?;
        let suite = self.secrets.suite;
        tracing::debug!(?suite, "teaching TLS client handshake complete");
        cx.transcript
            .push(Step::ClientVerifies, Direction::Local, "handshake complete")
            .field("suite", suite.to_string())
            .field(
                "from now on",
                format!(
                    "application data is encrypted with {}",
                    cx.write_cipher.as_ref().map_or("?", |c| c.name())
                ),
            );
        Ok(state::State::Established)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_unexpected, change_cipher_spec_record, expects_after_each, handshake_record, pair,
        pair_at, pair_with, records, FixedRandom,
    };
    use super::super::Connection;
    use crate::message::{self, CertificateRequest};
    use crate::suite::CipherSuite;

    /// A client that sent its ClientHello, and the server's answering flight as records.
    fn server_flight(suite: CipherSuite) -> (Connection, Vec<Vec<u8>>) {
        let (mut client, mut server) = pair(suite);
        server.receive(&client.take_outgoing()).unwrap();
        let flight = records(&mut server);
        (client, flight)
    }

    /// A CertificateRequest record asking for an RSA certificate.
    fn certificate_request() -> Vec<u8> {
        let request = CertificateRequest {
            certificate_types: vec![1],
            signature_algorithms: vec![message::SIG_RSA_PKCS1_SHA256],
            authorities: Vec::new(),
        };
        handshake_record(&request.encode())
    }

    fn client_hello_with_fixed_random() -> Vec<u8> {
        let (mut client, _) = pair_with(CipherSuite::RSA_WITH_AES_128_GCM_SHA256, |c| {
            c.set_random(std::sync::Arc::new(FixedRandom));
        });
        client.take_outgoing()
    }

    #[test]
    fn rfc5246_7_4_1_2_the_client_random_comes_from_the_configured_source() {
        let a = client_hello_with_fixed_random();
        assert_eq!(a, client_hello_with_fixed_random());
        let fixed: Vec<u8> = (0..32).collect();
        assert!(a.windows(32).any(|w| w == fixed), "random not in the hello");
        let (mut system, _) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        assert_ne!(a, system.take_outgoing());
    }

    /// An ECDHE client's bytes with [`FixedRandom`]: the ClientHello and, answered by a
    /// server flight, the ClientKeyExchange that carries its X25519 public key.
    fn ecdhe_client_key_exchange_with_fixed_random() -> Vec<u8> {
        let (mut client, mut server) =
            pair_with(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256, |c| {
                c.set_random(std::sync::Arc::new(FixedRandom));
            });
        server.receive(&client.take_outgoing()).unwrap();
        client.receive(&server.take_outgoing()).unwrap();
        let flight = records(&mut client);
        flight[0].clone()
    }

    #[test]
    fn rfc4492_5_7_the_client_x25519_key_comes_from_the_configured_source() {
        let a = ecdhe_client_key_exchange_with_fixed_random();
        // The server's key differs each run; the client's public key does not.
        assert_eq!(a, ecdhe_client_key_exchange_with_fixed_random());
        let expected = crate::x25519::EphemeralKey::generate(&FixedRandom).unwrap();
        assert!(
            a.ends_with(expected.public()),
            "key not in ClientKeyExchange"
        );
    }

    /// The verification time comes in through the configuration: the same certificate
    /// passes at one supplied time and is expired at a later one.
    fn handshake_at(secs: u64) -> Result<(), crate::error::Error> {
        let time =
            rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let (mut client, mut server) = pair_with(CipherSuite::RSA_WITH_AES_128_GCM_SHA256, |c| {
            c.set_verification_time(Some(time));
        });
        server.receive(&client.take_outgoing()).unwrap();
        client.receive(&server.take_outgoing())
    }

    #[test]
    fn rfc5280_4_1_2_5_the_callers_time_is_used_when_the_config_has_none() {
        // 10^11 s is in the year 5138, after rcgen's default validity.
        let (mut client, mut server) = pair_at(
            CipherSuite::RSA_WITH_AES_128_GCM_SHA256,
            100_000_000_000,
            |_| {},
        );
        server.receive(&client.take_outgoing()).unwrap();
        let err = client.receive(&server.take_outgoing()).unwrap_err();
        assert!(
            matches!(
                err,
                crate::error::Error::Certificate(crate::error::CertificateError::Expired { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rfc5280_4_1_2_5_a_certificate_is_judged_at_the_supplied_time() {
        // rcgen's default validity ends in the year 4096; 10^11 s is in the year 5138.
        handshake_at(2_000_000_000).unwrap();
        let err = handshake_at(100_000_000_000).unwrap_err();
        assert!(
            matches!(
                err,
                crate::error::Error::Certificate(crate::error::CertificateError::Expired {
                    now: 100_000_000_000,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn rfc5246_7_3_client_states_after_each_message_of_an_rsa_handshake() {
        let (mut client, mut server) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        assert_eq!(client.state.expects(), "ServerHello");
        server.receive(&client.take_outgoing()).unwrap();
        let flight = records(&mut server);
        assert_eq!(
            expects_after_each(&mut client, &flight),
            ["Certificate", "ServerHelloDone", "ChangeCipherSpec"]
        );
        server.receive(&client.take_outgoing()).unwrap();
        let flight = records(&mut server);
        assert_eq!(
            expects_after_each(&mut client, &flight),
            ["Finished", "application data"]
        );
        assert!(client.is_established());
    }

    #[test]
    fn rfc4492_2_2_ecdhe_client_waits_for_the_server_key_exchange() {
        let (mut client, flight) = server_flight(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256);
        assert_eq!(
            expects_after_each(&mut client, &flight),
            [
                "Certificate",
                "ServerKeyExchange",
                "ServerHelloDone",
                "ChangeCipherSpec"
            ]
        );
    }

    #[test]
    fn rfc5246_7_4_4_a_certificate_request_keeps_the_client_waiting_for_server_hello_done() {
        let (mut client, flight) = server_flight(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        expects_after_each(&mut client, &flight[..2]);
        let request = certificate_request();
        assert_eq!(
            expects_after_each(&mut client, std::slice::from_ref(&request)),
            ["ServerHelloDone"]
        );
        // A second request in the same handshake is out of order.
        assert_unexpected(
            &mut client,
            &request,
            "ServerHelloDone",
            "CertificateRequest",
        );
    }

    #[test]
    fn rfc5246_7_4_6_after_a_certificate_request_the_client_sends_an_empty_certificate() {
        let (mut client, flight) = server_flight(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        expects_after_each(&mut client, &flight[..2]);
        client.receive(&certificate_request()).unwrap();
        client.receive(&flight[2]).unwrap();
        let sent = records(&mut client);
        // Certificate (empty), ClientKeyExchange, ChangeCipherSpec, Finished.
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[0][5..], message::encode_certificate(&[])[..]);
    }

    #[test]
    fn rfc5246_7_3_client_refuses_a_certificate_before_server_hello() {
        let (mut client, flight) = server_flight(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        assert_unexpected(&mut client, &flight[1], "ServerHello", "Certificate");
    }

    #[test]
    fn rfc5246_7_3_client_refuses_server_hello_done_before_the_server_key_exchange() {
        let (mut client, flight) = server_flight(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256);
        expects_after_each(&mut client, &flight[..2]);
        assert_unexpected(
            &mut client,
            &flight[3],
            "ServerKeyExchange",
            "ServerHelloDone",
        );
    }

    #[test]
    fn rfc5246_7_1_client_refuses_change_cipher_spec_before_its_own_finished() {
        let (mut client, flight) = server_flight(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        expects_after_each(&mut client, &flight[..1]);
        let ccs = change_cipher_spec_record();
        assert_unexpected(&mut client, &ccs, "Certificate", "ChangeCipherSpec");
    }

    #[test]
    fn rfc5246_7_4_9_client_refuses_finished_before_change_cipher_spec() {
        let (mut client, flight) = server_flight(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        expects_after_each(&mut client, &flight);
        // A plaintext Finished where the server's ChangeCipherSpec belongs.
        let finished = handshake_record(&message::frame(message::kind::FINISHED, &[0; 12]));
        assert_unexpected(&mut client, &finished, "ChangeCipherSpec", "Finished");
    }
}
