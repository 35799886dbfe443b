//! The server's side of the handshake: ClientHello in; ServerHello, Certificate,
//! [ServerKeyExchange] and ServerHelloDone out; ClientKeyExchange in.

use ring::agreement;
use ring::rand::SecureRandom;

use crate::error::Error;
use crate::message::{
    self, ext, kind, ClientHello, EcdheServerKeyExchange, Extension, ServerHello,
};
use crate::suite;
use crate::transcript::{Direction, Step};
use crate::wire::{hex, printable};

use super::{Connection, Expect};

impl Connection {
    pub(super) fn handle_client_hello(&mut self, msg: &[u8], body: &[u8]) -> Result<(), Error> {
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

    pub(super) fn handle_client_key_exchange(
        &mut self,
        msg: &[u8],
        body: &[u8],
    ) -> Result<(), Error> {
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
}
