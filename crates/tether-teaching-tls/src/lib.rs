//! A teaching TLS 1.2 handshake (RFC 5246): every step explained, interoperable with OpenSSL; not for production.
//!
//! This crate implements, for learning, the handshake the tutorial describes as "HTTPS":
//! TLS 1.2 with RSA key transport (`TLS_RSA_WITH_AES_128_GCM_SHA256`), plus its forward
//! secret siblings `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` and
//! `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256` (X25519). It is real: it speaks
//! the RFC 5246 wire format well enough to complete handshakes with `openssl s_server` and
//! `openssl s_client` in both roles, so what it teaches is true. Every step is recorded in a
//! [`Transcript`] that renders like an annotated packet capture.
//!
//! **It is not a production TLS stack.** No session resumption, no renegotiation, no client
//! certificates (a CertificateRequest is answered with an empty Certificate), three cipher
//! suites, TLS 1.2 only, and the server's RSA decryption is variable-time (RUSTSEC-2023-0071,
//! Marvin; see [`manual`]). For real traffic use [rustls](https://docs.rs/rustls) (the
//! `tether` facade does, for `wss://`).
//!
//! ```text
//!   application bytes                                   application bytes
//!          │                                                   ▲
//!          ▼                                                   │
//!  ┌──────────────────┐  ClientHello ──────────────►  ┌──────────────────┐
//!  │ Connection       │  ◄─ ServerHello, Certificate  │ Connection       │
//!  │ (Side::Client)   │     [ServerKeyExchange], Done │ (Side::Server)   │
//!  │  handshake state │  ClientKeyExchange, CCS,      │  handshake state │
//!  │  record layer    │  Finished ────────────────►   │  record layer    │
//!  │  transcript      │  ◄──────────── CCS, Finished  │  transcript      │
//!  └──────────────────┘  ◄═ AEAD-protected records ═► └──────────────────┘
//!          ▲ take_outgoing / receive (bytes)                   ▲
//!          └──────────── TeachingTlsStream<S> (tokio) ─────────┘
//! ```
//!
//! # The tutorial's five steps, and where each lives
//!
//! The handshake code reads in the order of the steps. `src/connection/client.rs` and
//! `src/connection/server.rs` hold one struct per state, named after the message that side
//! waits for and holding exactly what it knows at that point (`ExpectServerHelloDone {
//! randoms, suite, server_key, .. }`); `handle(self, cx, message)` returns the next state.
//! `src/connection/secrets.rs` derives the keys and makes and checks Finished;
//! `src/connection/record_layer.rs` and `src/connection/alerts.rs` are shared by both.
//!
//! 1. *The browser sends the cipher rules it supports*: the ClientHello, built by
//!    `client::start` when [`Connection::client`] is called ([`ClientConfig::set_cipher_suites`]
//!    decides the offer).
//! 2. *The site picks a cipher and sends its certificate*: `server::ExpectClientHello`
//!    takes its own first preference among the client's offer
//!    ([`ServerConfig::set_cipher_suites`]); no overlap is [`Error::NoCommonCipherSuite`]
//!    and a `handshake_failure` alert. The client checks the answer in
//!    `client::ExpectServerHello`.
//! 3. *The browser*
//!    - a) *checks the certificate* (`client::ExpectCertificate`): rustls-webpki builds the
//!      chain to a configured root, checks validity at an injectable time and the name; each
//!      failure is its own [`CertificateError`].
//!      [`ClientConfig::dangerous_accept_invalid_certificates`] is the "user accepted the
//!      warning" opt-in.
//!    - b) *makes a random secret and encrypts it with the certificate's public key*
//!      (`client::ExpectServerHelloDone`): the 48 byte premaster (client version + 46 random
//!      bytes), PKCS#1 v1.5 under the server's RSA key. With ECDHE the premaster is agreed
//!      instead and never sent (`client::ExpectServerKeyExchange` checks the server's share).
//!    - c) *hashes the handshake and sends it encrypted*: master secret and keys from the
//!      TLS 1.2 PRF ([`prf`], [`master_secret`], [`key_block`]), then ChangeCipherSpec and
//!      Finished = PRF(master, "client finished", SHA-256 of all handshake messages).
//! 4. *The site decrypts the secret with its private key, checks the hash, sends its own*
//!    (`server::ExpectClientKeyExchange`, then `server::ExpectFinished`).
//!    A premaster that does not decrypt is replaced by a random one (RFC 5246 7.4.7.1), so
//!    the failure shows only at Finished: the server's *answers* are no padding oracle.
//!    Its *timing* may be: the `rsa` crate's PKCS#1 v1.5 decryption is not constant-time
//!    (RUSTSEC-2023-0071, the Marvin attack), so an attacker who can measure how long the
//!    server takes over many connections may still recover a recorded RSA-suite premaster.
//!    See [`manual`] for what is and is not protected.
//! 5. *The browser checks the site's hash* (`client::ExpectFinished`): the handshake is
//!    over; application data flows in AES-128-GCM records with RFC 5288 nonces (or
//!    ChaCha20-Poly1305, RFC 7905), at most 2^14 bytes each.
//!
//! The lessons beyond the tutorial are in [`manual`]: why any changed byte breaks the
//! handshake, and forward secrecy ([`decrypt_recording`] is the eavesdropper).
//!
//! # Getting started
//!
//! A client and a server in memory (certificates made with rcgen for the example):
//!
//! ```
//! use std::sync::Arc;
//! use rsa::pkcs8::EncodePrivateKey;
//! use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
//! use tether_teaching_tls::{ClientConfig, Connection, RenderOptions, ServerConfig, ServerKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A self-signed RSA certificate for "example.test", trusted by the client.
//! let rsa_key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
//! let pkcs8 = rsa_key.to_pkcs8_der()?.as_bytes().to_vec();
//! let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
//!     &PrivatePkcs8KeyDer::from(pkcs8.clone()),
//!     &rcgen::PKCS_RSA_SHA256,
//! )?;
//! let cert = rcgen::CertificateParams::new(vec!["example.test".to_owned()])?
//!     .self_signed(&signer)?;
//! let key = ServerKey::from_der(&PrivateKeyDer::Pkcs8(pkcs8.into()))?;
//!
//! let mut client_config = ClientConfig::default();
//! client_config.add_root(cert.der().clone())?;
//! let server_config = ServerConfig::new(vec![cert.der().clone()], key)?;
//!
//! let name = ServerName::try_from("example.test")?.to_owned();
//! let mut client = Connection::client(Arc::new(client_config), name, UnixTime::now())?;
//! let mut server = Connection::server(Arc::new(server_config));
//!
//! // Carry the bytes back and forth until both sides are done.
//! while client.has_outgoing() || server.has_outgoing() {
//!     server.receive(&client.take_outgoing())?;
//!     client.receive(&server.take_outgoing())?;
//! }
//! assert!(client.is_established() && server.is_established());
//!
//! client.send(b"hello")?;
//! server.receive(&client.take_outgoing())?;
//! let mut buf = [0u8; 16];
//! let n = server.read_plaintext(&mut buf);
//! assert_eq!(&buf[..n], b"hello");
//!
//! // The annotated handshake, as the demo prints it.
//! let text = client.transcript().render(&RenderOptions::default());
//! assert!(text.contains("step 1") && text.contains("ClientHello"));
//! assert!(text.contains("step 5"));
//! # Ok(())
//! # }
//! ```
//!
//! # Sans-IO
//!
//! [`Connection`] takes bytes in ([`Connection::receive`]) and gives bytes out
//! ([`Connection::take_outgoing`]); it owns no socket and no timer. Its inputs besides the
//! bytes:
//!
//! - randomness: one [`RandomSource`], set with [`ClientConfig::set_random`] /
//!   [`ServerConfig::set_random`] (default [`SystemRandomSource`], the OS CSPRNG: the
//!   lesson is that every secret comes from a CSPRNG). It yields every random byte: the
//!   hello randoms, the premaster, the server's fallback premaster, both X25519 ephemeral
//!   keys, the RSA padding and the blinding of the server's RSA operations. ring draws only
//!   through its sealed `SecureRandom`, so the X25519 keys are made with `x25519-dalek`
//!   from the source's bytes and RSA runs on the `rsa` crate: a seeded source replays a
//!   whole handshake byte for byte. (X25519 is not written here as part of the lesson on
//!   purpose: the lesson is the handshake, and constant-time field arithmetic is a subject
//!   of its own where a subtle bug still passes the RFC 7748 vectors; a widely reviewed
//!   implementation keeps the attention on the protocol.)
//! - the clock: certificates are checked at [`ClientConfig::set_verification_time`], else
//!   at the time the caller passes to [`Connection::client`] ([`connect`] passes the
//!   system clock's). The core reads no clock.
//!
//! Feed it at most as fast as you read the plaintext out: received application data waits
//! in the connection.
//!
//! # Features
//!
//! - `tokio` (default): [`TeachingTlsStream`], [`connect`] and [`accept`], an
//!   `AsyncRead + AsyncWrite` stream over any tokio transport, so a WebSocket runs over the
//!   teaching TLS unchanged.
//!
//! # Wireshark
//!
//! [`KeyLogFile::from_env`] writes the NSS key log format to `$SSLKEYLOGFILE`; point
//! Wireshark's TLS "(Pre)-Master-Secret log filename" at it to decrypt a capture.
#![forbid(unsafe_code)]

mod alert;
mod cert;
mod config;
mod connection;
mod eavesdrop;
mod error;
mod keylog;
pub mod manual;
mod message;
mod prf;
mod random;
mod record;
#[cfg(feature = "tokio")]
mod stream;
mod suite;
mod transcript;
mod wire;
mod x25519;

pub use alert::AlertDescription;
pub use config::{ClientConfig, ServerConfig, ServerKey};
pub use connection::{Connection, Side, MAX_HANDSHAKE_MESSAGE_LEN};
pub use eavesdrop::{decrypt_recording, Decrypted, EavesdropError, StolenSecret};
pub use error::{CertificateError, Error};
pub use keylog::{key_log_line, KeyLog, KeyLogFile};
pub use prf::{key_block, master_secret, prf, KeyBlock, MASTER_SECRET_LEN, VERIFY_DATA_LEN};
pub use random::{RandomSource, SystemRandomSource};
pub use record::MAX_FRAGMENT_LEN;
#[cfg(feature = "tokio")]
pub use stream::{accept, connect, TeachingTlsStream};
pub use suite::CipherSuite;
pub use transcript::{
    Direction, Event, Field, RenderOptions, Step, Transcript, TRANSCRIPT_ALERTS,
    TRANSCRIPT_APPLICATION_RECORDS, TRANSCRIPT_MAX_BYTES, TRANSCRIPT_MAX_EVENTS,
};
