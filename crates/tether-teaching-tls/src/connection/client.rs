//! The client's side of the handshake: ClientHello out; ServerHello, Certificate,
//! [ServerKeyExchange], [CertificateRequest], ServerHelloDone in; ClientKeyExchange,
//! ChangeCipherSpec and Finished out.

use ring::agreement;
use ring::rand::SecureRandom;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::cert;
use crate::error::Error;
use crate::message::{self, ext, ClientHello, EcdheServerKeyExchange, Extension, ServerHello};
use crate::random;
use crate::suite::{self, CipherSuite};
use crate::transcript::{Direction, Step};
use crate::wire::hex;

use super::{Connection, Expect};

impl Connection {
    pub(super) fn send_client_hello(&mut self) -> Result<(), Error> {
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

    pub(super) fn handle_server_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
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

    pub(super) fn handle_certificate(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
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

    pub(super) fn handle_server_key_exchange(
        &mut self,
        msg: &[u8],
        body: &[u8],
    ) -> Result<(), Error> {
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

    pub(super) fn handle_certificate_request(
        &mut self,
        msg: &[u8],
        body: &[u8],
    ) -> Result<(), Error> {
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
    pub(super) fn send_empty_certificate(&mut self) -> Result<(), Error> {
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

    pub(super) fn handle_server_hello_done(
        &mut self,
        msg: &[u8],
        body: &[u8],
    ) -> Result<(), Error> {
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
}
