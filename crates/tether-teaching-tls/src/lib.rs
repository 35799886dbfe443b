//! A teaching TLS 1.2 handshake (RFC 5246): every step explained, interoperable with OpenSSL; not for production.
#![forbid(unsafe_code)]

mod alert;
mod cert;
mod config;
mod connection;
mod eavesdrop;
mod error;
mod keylog;
mod message;
mod prf;
mod record;
#[cfg(feature = "tokio")]
mod stream;
mod suite;
mod transcript;
mod wire;

pub use alert::AlertDescription;
pub use config::{ClientConfig, ServerConfig, ServerKey};
pub use connection::{Connection, Role, MAX_HANDSHAKE_MESSAGE_LEN};
pub use eavesdrop::{decrypt_recording, Decrypted, StolenSecret};
pub use error::{CertificateError, Error};
pub use keylog::{key_log_line, KeyLog, KeyLogFile};
pub use prf::{key_block, master_secret, prf, KeyBlock, MASTER_SECRET_LEN, VERIFY_DATA_LEN};
pub use record::MAX_FRAGMENT_LEN;
#[cfg(feature = "tokio")]
pub use stream::{accept, connect, TeachingTlsStream};
pub use suite::CipherSuite;
pub use transcript::{
    Direction, Event, Field, RenderOptions, Step, Transcript, TRANSCRIPT_APPLICATION_RECORDS,
};
