//! The server's side of the handshake: ClientHello in; ServerHello, Certificate,
//! ServerKeyExchange (ECDHE) and ServerHelloDone out; ClientKeyExchange, ChangeCipherSpec and
//! Finished in; ChangeCipherSpec and Finished out.
//!
//! Each state is named after what the server waits for and holds what it knows then:
//!
//! ```text
//!  ExpectClientHello        { config }
//!  ExpectClientKeyExchange  { config, randoms, suite, client version, own key share }
//!  ExpectChangeCipherSpec   { master secret, suite, both record ciphers }
//!  ExpectFinished           { master secret, suite, its own record cipher }
//! ```

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::error::Error;
use crate::message::{
    self, ext, kind, ClientHello, EcdheServerKeyExchange, Extension, ServerHello,
};
use crate::record::RecordCipher;
use crate::suite::{self, CipherSuite};
use crate::transcript::{Direction, Step};
use crate::wire::{hex, printable};
use crate::x25519::EphemeralKey;

use super::secrets::{Randoms, Secrets};
use super::state::{self, unexpected, Message};
use super::Connection;

/// Where the server is in the handshake.
pub(super) enum State {
    ClientHello(ExpectClientHello),
    ClientKeyExchange(ExpectClientKeyExchange),
    ChangeCipherSpec(Box<ExpectChangeCipherSpec>),
    Finished(Box<ExpectFinished>),
}

impl State {
    pub(super) fn expects(&self) -> &'static str {
        match self {
            State::ClientHello(_) => "ClientHello",
            State::ClientKeyExchange(_) => "ClientKeyExchange",
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
                State::ClientHello(s),
                Handshake {
                    kind: kind::CLIENT_HELLO,
                    msg,
                    body,
                },
            ) => s.handle(cx, msg, body)?,
            (
                State::ClientKeyExchange(s),
                Handshake {
                    kind: kind::CLIENT_KEY_EXCHANGE,
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
        Ok(state::State::Server(next))
    }
}

/// The server's first state: nothing known but its own configuration.
pub(super) fn start(config: Arc<ServerConfig>) -> State {
    State::ClientHello(ExpectClientHello { config })
}

/// Waiting for the client's offer.
pub(super) struct ExpectClientHello {
    config: Arc<ServerConfig>,
}

/// What the server keeps to recover the premaster from ClientKeyExchange.
enum KeyExchange {
    /// The premaster arrives encrypted under the certificate's RSA key.
    Rsa,
    /// The premaster is agreed with this X25519 key and the client's share.
    Ecdhe(EphemeralKey),
}

impl ExpectClientHello {
    /// Step 2: pick the suite, send ServerHello, Certificate, ServerKeyExchange (ECDHE) and
    /// ServerHelloDone.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        let hello = ClientHello::read(body)?;
        // RFC 5246 appendix E.1: a client offering less than TLS 1.2 gets protocol_version.
        if hello.version < message::TLS12 {
            return Err(Error::UnsupportedVersion {
                version: hello.version,
            });
        }
        cx.handshake_messages.extend_from_slice(msg);
        cx.client_random = hello.random;
        let names: Vec<&str> = hello
            .extensions
            .iter()
            .map(|e| message::ext_name(e.kind))
            .collect();
        let sni = match hello.extension(ext::SERVER_NAME) {
            Some(data) => message::read_server_name(data)?,
            None => None,
        };
        cx.transcript
            .push(Step::OfferCiphers, Direction::Received, "ClientHello")
            .field("client_version", format!("0x{:04x}", hello.version))
            .field("random", hex(&hello.random))
            .field("cipher_suites", suite::list(&hello.cipher_suites))
            .field("server_name", printable(&sni.unwrap_or_default()))
            .field("extensions", names.join(", "))
            .bytes(msg);
        let suite = self.choose_suite(&hello)?;
        cx.suite = Some(suite);
        let randoms = Randoms {
            client: hello.random,
            server: cx.random()?,
        };
        self.send_server_hello(cx, &hello, suite, &randoms)?;
        let key_exchange = if suite.is_ephemeral() {
            KeyExchange::Ecdhe(self.send_server_key_exchange(cx, &randoms)?)
        } else {
            KeyExchange::Rsa
        };
        let wire = cx.send_handshake(&message::frame(kind::SERVER_HELLO_DONE, &[]))?;
        cx.transcript
            .push(Step::ChooseCipher, Direction::Sent, "ServerHelloDone")
            .bytes(&wire);
        Ok(State::ClientKeyExchange(ExpectClientKeyExchange {
            config: self.config,
            randoms,
            suite,
            client_version: hello.version,
            key_exchange,
        }))
    }

    /// The server's first preference among what the client offered and can use.
    fn choose_suite(&self, hello: &ClientHello) -> Result<CipherSuite, Error> {
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
        self.config
            .cipher_suites
            .iter()
            .copied()
            .find(|s| hello.cipher_suites.contains(s) && (!s.is_ephemeral() || ecdhe_ok))
            .ok_or_else(|| Error::NoCommonCipherSuite {
                offered: hello.cipher_suites.clone(),
                supported: self.config.cipher_suites.clone(),
            })
    }

    /// ServerHello (the choice) and Certificate (the server's chain).
    fn send_server_hello(
        &self,
        cx: &mut Connection,
        hello: &ClientHello,
        chosen: CipherSuite,
        randoms: &Randoms,
    ) -> Result<(), Error> {
        let config = &self.config;
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
        let server_hello = ServerHello {
            version: message::TLS12,
            random: randoms.server,
            session_id: Vec::new(),
            cipher_suite: chosen,
            compression_method: 0,
            extensions,
        };
        let wire = cx.send_handshake(&server_hello.encode())?;
        cx.transcript
            .push(Step::ChooseCipher, Direction::Sent, "ServerHello")
            .field("server_version", "0x0303 (TLS 1.2)")
            .field("random", hex(&randoms.server))
            .field(
                "cipher_suite",
                format!("{chosen} (the server's first choice the client offered)"),
            )
            .field("server preference", suite::list(&config.cipher_suites))
            .bytes(&wire);

        let chain: Vec<Vec<u8>> = config.chain.iter().map(|c| c.to_vec()).collect();
        let wire = cx.send_handshake(&message::encode_certificate(&chain))?;
        cx.transcript
            .push(Step::ChooseCipher, Direction::Sent, "Certificate")
            .field("certificates", chain.len().to_string())
            .field(
                "contains",
                "the site's name, its RSA public key, the issuer's signature",
            )
            .bytes(&wire);
        cx.peer_chain = config.chain.clone();
        Ok(())
    }

    /// ECDHE: a fresh X25519 key, its public half signed with the certificate's key.
    fn send_server_key_exchange(
        &self,
        cx: &mut Connection,
        randoms: &Randoms,
    ) -> Result<EphemeralKey, Error> {
        let key = EphemeralKey::generate(&*cx.random)?;
        let public = key.public();
        let params = message::ecdh_params(message::GROUP_X25519, public);
        let mut signed = Vec::with_capacity(64 + params.len());
        signed.extend_from_slice(&randoms.client);
        signed.extend_from_slice(&randoms.server);
        signed.extend_from_slice(&params);
        let signature = self.config.key.sign_pkcs1_sha256(&*cx.random, &signed)?;
        let ske = EcdheServerKeyExchange {
            group: message::GROUP_X25519,
            public: public.to_vec(),
            sig_scheme: message::SIG_RSA_PKCS1_SHA256,
            signature,
        };
        let wire = cx.send_handshake(&ske.encode())?;
        cx.transcript
            .push(Step::ChooseCipher, Direction::Sent, "ServerKeyExchange")
            .field("named_curve", "x25519 (0x001d)")
            .field("server ephemeral public key", hex(public))
            .field(
                "signature",
                "rsa_pkcs1_sha256 over client random + server random + key",
            )
            .bytes(&wire);
        Ok(key)
    }
}

/// ServerHelloDone is out; the client's premaster (or key share) comes next.
pub(super) struct ExpectClientKeyExchange {
    config: Arc<ServerConfig>,
    randoms: Randoms,
    suite: CipherSuite,
    /// ClientHello.client_version, which an RSA premaster must start with.
    client_version: u16,
    key_exchange: KeyExchange,
}

impl ExpectClientKeyExchange {
    /// Step 4, first half: recover the premaster and derive the keys.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<State, Error> {
        let premaster = match self.key_exchange {
            KeyExchange::Ecdhe(key) => premaster_ecdhe(cx, key, msg, body)?,
            KeyExchange::Rsa => premaster_rsa(cx, &self.config, self.client_version, msg, body)?,
        };
        cx.handshake_messages.extend_from_slice(msg);
        let keys = cx.derive_keys(
            self.suite,
            &self.randoms,
            &premaster,
            self.config.key_log.as_ref(),
            Step::ServerFinished,
        )?;
        Ok(State::ChangeCipherSpec(Box::new(ExpectChangeCipherSpec {
            secrets: keys.secrets,
            read: keys.read,
            write: keys.write,
        })))
    }
}

fn premaster_ecdhe(
    cx: &mut Connection,
    key: EphemeralKey,
    msg: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    let public = message::read_ecdhe_client_key_exchange(body)?;
    let shared = key.agree(public).ok_or(Error::Decode {
        what: "client x25519 public key",
    })?;
    cx.transcript
        .push(
            Step::Premaster,
            Direction::Received,
            "ClientKeyExchange (ECDHE)",
        )
        .field("client ephemeral public key", hex(public))
        .secret("premaster = X25519(server secret, client public)", &shared)
        .bytes(msg);
    Ok(shared.to_vec())
}

fn premaster_rsa(
    cx: &mut Connection,
    config: &ServerConfig,
    client_version: u16,
    msg: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    let encrypted = message::read_rsa_client_key_exchange(body)?;
    // RFC 5246 section 7.4.7.1: on any failure continue with a random premaster,
    // so that a bad ciphertext is indistinguishable from a good one until Finished
    // (Bleichenbacher's padding oracle). The random value is drawn first, always.
    let mut fallback = vec![0u8; 48];
    cx.random.fill(&mut fallback)?;
    let version = client_version.to_be_bytes();
    let decrypted = config.key.decrypt_pkcs1(&*cx.random, encrypted)?;
    let (premaster, ok) = match decrypted {
        Some(p) if p.len() == 48 && p[..2] == version => (p, true),
        _ => (fallback, false),
    };
    cx.transcript
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
    Ok(premaster)
}

/// The keys are derived; the client switches its cipher on next.
pub(super) struct ExpectChangeCipherSpec {
    secrets: Secrets,
    read: RecordCipher,
    write: RecordCipher,
}

impl ExpectChangeCipherSpec {
    fn handle(self, cx: &mut Connection) -> State {
        cx.change_read_cipher(self.read, Step::ServerFinished);
        State::Finished(Box::new(ExpectFinished {
            secrets: self.secrets,
            write: self.write,
        }))
    }
}

/// The client's records are encrypted; its Finished comes next.
pub(super) struct ExpectFinished {
    secrets: Secrets,
    /// Seals the server's records once it sent its own ChangeCipherSpec.
    write: RecordCipher,
}

impl ExpectFinished {
    /// Step 4, second half: check the client's Finished, answer with the server's own.
    fn handle(self, cx: &mut Connection, msg: &[u8], body: &[u8]) -> Result<state::State, Error> {
        let master = &self.secrets.master;
        cx.check_finished(master, b"client finished", Step::ServerFinished, msg, body)?;
        cx.change_write_cipher(self.write, Step::ServerFinished, "server")?;
        cx.send_finished(master, b"server finished", Step::ServerFinished)?;
        tracing::debug!(suite = ?self.secrets.suite, "teaching TLS server handshake complete");
        Ok(state::State::Established)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_unexpected, change_cipher_spec_record, expects_after_each, handshake_record, pair,
        pair_seeded, records, FixedRandom,
    };
    use crate::message;
    use crate::suite::CipherSuite;

    fn server_states(suite: CipherSuite) {
        let (mut client, mut server) = pair(suite);
        assert_eq!(server.state.expects(), "ClientHello");
        let hello = records(&mut client);
        assert_eq!(
            expects_after_each(&mut server, &hello),
            ["ClientKeyExchange"]
        );
        client.receive(&server.take_outgoing()).unwrap();
        let flight = records(&mut client);
        assert_eq!(
            expects_after_each(&mut server, &flight),
            ["ChangeCipherSpec", "Finished", "application data"]
        );
        assert!(server.is_established());
        client.receive(&server.take_outgoing()).unwrap();
        assert!(client.is_established());
    }

    #[test]
    fn rfc5246_7_3_server_states_after_each_message_of_an_rsa_handshake() {
        server_states(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
    }

    #[test]
    fn rfc5246_7_3_server_states_after_each_message_of_an_ecdhe_handshake() {
        server_states(CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256);
    }

    #[test]
    fn rfc5246_7_1_server_refuses_change_cipher_spec_before_client_key_exchange() {
        let (mut client, mut server) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        server.receive(&client.take_outgoing()).unwrap();
        let ccs = change_cipher_spec_record();
        assert_unexpected(&mut server, &ccs, "ClientKeyExchange", "ChangeCipherSpec");
    }

    #[test]
    fn rfc5246_7_3_server_refuses_a_second_client_hello() {
        let (mut client, mut server) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        let hello = records(&mut client);
        server.receive(&hello[0]).unwrap();
        assert_unexpected(&mut server, &hello[0], "ClientKeyExchange", "ClientHello");
    }

    #[test]
    fn rfc5246_7_4_9_server_refuses_finished_before_change_cipher_spec() {
        let (mut client, mut server) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        server.receive(&client.take_outgoing()).unwrap();
        client.receive(&server.take_outgoing()).unwrap();
        let flight = records(&mut client);
        server.receive(&flight[0]).unwrap();
        // A plaintext Finished where the client's ChangeCipherSpec belongs.
        let finished = handshake_record(&message::frame(message::kind::FINISHED, &[0; 12]));
        assert_unexpected(&mut server, &finished, "ChangeCipherSpec", "Finished");
    }

    #[test]
    fn rfc5246_7_3_server_refuses_application_data_during_the_handshake() {
        let (mut client, mut server) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        server.receive(&client.take_outgoing()).unwrap();
        let mut data = Vec::new();
        crate::record::write_record(&mut data, crate::record::ContentType::ApplicationData, b"x");
        assert_unexpected(&mut server, &data, "ClientKeyExchange", "application_data");
    }

    /// Every byte both sides send in a whole handshake and one message each way, both
    /// drawing from [`FixedRandom`]: the flights, in order.
    fn seeded_conversation(suite: CipherSuite) -> Vec<Vec<u8>> {
        let (mut client, mut server) = pair_seeded(suite);
        let mut flights = Vec::new();
        while !(client.is_established() && server.is_established()) {
            let to_server = client.take_outgoing();
            server.receive(&to_server).unwrap();
            let to_client = server.take_outgoing();
            client.receive(&to_client).unwrap();
            assert!(flights.len() < 8, "the handshake does not end");
            flights.extend([to_server, to_client]);
        }
        client.send(b"ping").unwrap();
        server.send(b"pong").unwrap();
        flights.extend([client.take_outgoing(), server.take_outgoing()]);
        flights
    }

    #[test]
    fn rfc4492_5_4_the_server_x25519_key_and_signature_come_from_the_configured_source() {
        let a = seeded_conversation(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256);
        // ServerHello .. ServerKeyExchange .. ServerHelloDone, then the client's
        // ClientKeyExchange .. Finished, the server's Finished and the application data:
        // byte-identical, so no byte came from anywhere but the source.
        assert_eq!(
            a,
            seeded_conversation(CipherSuite::ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        );
        let expected = crate::x25519::EphemeralKey::generate(&FixedRandom).unwrap();
        assert!(
            a[1].windows(32).any(|w| w == expected.public()),
            "the server's key is not the source's"
        );
    }

    #[test]
    fn rfc5246_7_4_7_1_an_rsa_handshake_replays_from_the_configured_source() {
        let a = seeded_conversation(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        assert_eq!(
            a,
            seeded_conversation(CipherSuite::RSA_WITH_AES_128_GCM_SHA256)
        );
        let (mut unseeded, _) = pair(CipherSuite::RSA_WITH_AES_128_GCM_SHA256);
        assert_ne!(a[0], unseeded.take_outgoing());
    }
}
