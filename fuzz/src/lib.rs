//! Shared pieces of the fuzz targets: how an input chooses its options and read boundaries
//! ([`Input`]), and the fixed teaching-TLS identity and driver ([`tls`]).

mod input;
pub mod tls;

pub use input::{Chunks, Input};
