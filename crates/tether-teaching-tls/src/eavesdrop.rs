//! The eavesdropper: what someone who recorded a session can decrypt later.
//!
//! This is the forward-secrecy lesson. With `TLS_RSA_*` the premaster crosses the wire
//! encrypted under the server's long-term RSA key, so whoever records the session today and
//! steals that key next year recovers the premaster, then every key, then the data. With
//! `TLS_ECDHE_RSA_*` the premaster comes from two ephemeral X25519 keys that are thrown away
//! after the handshake; the RSA key only signed them, and stealing it reveals nothing about
//! past sessions.

use crate::config::ServerKey;
use crate::error::Error;
use crate::message::{self, kind, ClientHello, ServerHello};
use crate::prf::{self, MASTER_SECRET_LEN};
use crate::record::{self, ContentType, RecordCipher, MAX_CIPHERTEXT_LEN};
use crate::suite::CipherSuite;

/// What the eavesdropper holds besides the recording.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum StolenSecret<'a> {
    /// The server's long-term private key, stolen after the fact.
    ServerKey(&'a ServerKey),
    /// The master secret, for example from an SSLKEYLOGFILE line.
    MasterSecret(&'a [u8; MASTER_SECRET_LEN]),
}

/// The application data recovered from a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decrypted {
    /// The suite the recorded session used.
    pub suite: CipherSuite,
    /// Everything the client sent as application data.
    pub client_data: Vec<u8>,
    /// Everything the server sent as application data.
    pub server_data: Vec<u8>,
}

/// Why a recording could not be decrypted: the eavesdropper's own error, apart from the
/// connection's [`Error`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EavesdropError {
    /// The stolen server key cannot recover an ECDHE session: the lesson of forward secrecy.
    #[error(
        "{suite} is forward secret: the premaster came from ephemeral X25519 keys \
         that never left the two endpoints; the server's RSA key only signed them"
    )]
    ForwardSecret {
        /// The recorded session's suite.
        suite: CipherSuite,
    },
    /// A handshake message the attack needs is not in the recording.
    #[error("the recording holds no {what}")]
    Missing {
        /// The message's name.
        what: &'static str,
    },
    /// The stolen key does not decrypt the recorded premaster (it is not the server's).
    #[error("the stolen key does not decrypt the recorded premaster")]
    WrongKey,
    /// The recording is malformed, or the recovered keys do not authenticate its records
    /// ([`Error::BadRecordMac`]).
    #[error("cannot decrypt the recording: {0}")]
    Tls(#[from] Error),
}

/// Decrypts a recorded session: `client_to_server` and `server_to_client` are the raw TCP
/// bytes of each direction, from the first ClientHello on.
///
/// Fails with [`EavesdropError::ForwardSecret`] when the secret cannot recover the session
/// keys (the server key of an ECDHE session), and with [`EavesdropError::Tls`] holding
/// [`Error::BadRecordMac`] when the recovered keys are wrong.
pub fn decrypt_recording(
    client_to_server: &[u8],
    server_to_client: &[u8],
    secret: StolenSecret<'_>,
) -> Result<Decrypted, EavesdropError> {
    let client = Direction::parse(client_to_server)?;
    let server = Direction::parse(server_to_client)?;
    let hello = client
        .message(kind::CLIENT_HELLO)
        .ok_or_else(|| missing("ClientHello"))?;
    let hello = ClientHello::read(&hello[4..])?;
    let server_hello = server
        .message(kind::SERVER_HELLO)
        .ok_or_else(|| missing("ServerHello"))?;
    let server_hello = ServerHello::read(&server_hello[4..])?;
    let suite = server_hello.cipher_suite;
    let master = match secret {
        StolenSecret::MasterSecret(m) => *m,
        StolenSecret::ServerKey(_) if suite.is_ephemeral() => {
            return Err(EavesdropError::ForwardSecret { suite })
        }
        StolenSecret::ServerKey(key) => {
            let cke = client
                .message(kind::CLIENT_KEY_EXCHANGE)
                .ok_or_else(|| missing("ClientKeyExchange"))?;
            let encrypted = message::read_rsa_client_key_exchange(&cke[4..])?;
            let premaster = key
                .rsa
                .decrypt(rsa::Pkcs1v15Encrypt, encrypted)
                .map_err(|_| EavesdropError::WrongKey)?;
            prf::master_secret(&premaster, &hello.random, &server_hello.random)
        }
    };
    let keys = prf::key_block(suite, &master, &hello.random, &server_hello.random);
    let client_data = client.decrypt(RecordCipher::new(
        suite,
        &keys.client_write_key,
        &keys.client_write_iv,
    )?)?;
    let server_data = server.decrypt(RecordCipher::new(
        suite,
        &keys.server_write_key,
        &keys.server_write_iv,
    )?)?;
    Ok(Decrypted {
        suite,
        client_data,
        server_data,
    })
}

fn missing(what: &'static str) -> EavesdropError {
    EavesdropError::Missing { what }
}

/// One direction of a recording: plaintext handshake messages before ChangeCipherSpec,
/// protected records after it.
struct Direction {
    handshake: Vec<Vec<u8>>,
    protected: Vec<(ContentType, Vec<u8>)>,
}

impl Direction {
    fn parse(mut bytes: &[u8]) -> Result<Self, Error> {
        let mut plain = Vec::new();
        let mut protected = Vec::new();
        let mut encrypted = false;
        while let Some((rec, n)) = record::split_record(bytes, MAX_CIPHERTEXT_LEN)? {
            if encrypted {
                protected.push((rec.content_type, rec.fragment.to_vec()));
            } else if rec.content_type == ContentType::ChangeCipherSpec {
                encrypted = true;
            } else if rec.content_type == ContentType::Handshake {
                plain.extend_from_slice(rec.fragment);
            }
            bytes = &bytes[n..];
        }
        let mut handshake = Vec::new();
        let mut r = crate::wire::Reader::new(&plain);
        while !r.is_empty() {
            let t = r.u8("handshake type")?;
            let body = r.vec24("handshake body")?;
            let mut msg = message::frame(t, body);
            msg.shrink_to_fit();
            handshake.push(msg);
        }
        Ok(Self {
            handshake,
            protected,
        })
    }

    fn message(&self, t: u8) -> Option<&[u8]> {
        self.handshake
            .iter()
            .find(|m| m.first() == Some(&t))
            .map(Vec::as_slice)
    }

    fn decrypt(&self, mut cipher: RecordCipher) -> Result<Vec<u8>, Error> {
        let mut data = Vec::new();
        for (content_type, fragment) in &self.protected {
            let plain = cipher.open(*content_type, fragment)?;
            if *content_type == ContentType::ApplicationData {
                data.extend_from_slice(&plain);
            }
        }
        Ok(data)
    }
}
