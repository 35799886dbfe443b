//! Shared pieces of the fuzz targets: how an input chooses its options and read boundaries
//! ([`Input`]), the handshake limits ([`handshake::config`]), and the fixed teaching-TLS
//! identity and driver ([`tls`]).

pub mod handshake;
mod input;
pub mod tls;

pub use input::{Chunks, Input};
