//! Integration and property tests for the teaching TLS (tether-teaching-tls).
//!
//! `pki` makes certificates at test time (RSA keys generated once per binary); `pair` runs a
//! client and a server in memory with a hook that sees (and may change) every flight.

mod certs;
mod config;
mod eavesdrop;
mod garbage;
mod handshake;
mod interop;
mod limits;
mod pair;
pub(crate) mod pki;
mod stream;
mod tamper;
