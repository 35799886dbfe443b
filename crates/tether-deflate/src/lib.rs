//! permessage-deflate (RFC 7692) for WebSocket: parameters, negotiation and a bounded
//! per-connection compressor/decompressor, sans-IO.
//!
//! # What it does
//!
//! - **Negotiation** (RFC 7692 §5, §7.1), both roles. A client sends
//!   [`DeflateConfig::offer`] and checks the server's answer with
//!   [`DeflateConfig::accept_response`], which fails on anything that does not fit the offer
//!   (the handshake turns that into a failed connection). A server picks the first acceptable
//!   offer with [`DeflateConfig::accept_offer`], or declines. Both give [`DeflateParams`].
//! - **Compression** (§7.2.1): [`Compressor::compress`] turns a message into DEFLATE blocks
//!   without the `00 00 ff ff` tail, keeping or resetting the window per the agreed params.
//! - **Decompression** (§7.2.2): [`Decompressor::feed`] inflates a message fragment by
//!   fragment as frames arrive, appending to the caller's buffer (so a UTF-8 check can follow
//!   it), and fails with [`DeflateError::TooLarge`] *while* inflating, after at most the limit.
//!
//! # What it does not do
//!
//! It knows nothing of frames, RSV1, sockets or HTTP. The codec sets and checks RSV1 and maps
//! [`DeflateError::TooLarge`] to close code 1009 and [`DeflateError::Corrupt`] to 1002; the handshake parses `Sec-WebSocket-Extensions`
//! and hands this crate each `permessage-deflate` element's parameters as
//! `(name, Option<value>)` pairs, so this crate depends on neither.
//!
//! ```text
//!  client                                    server
//!  DeflateConfig::offer() ── Sec-WebSocket-Extensions ──▶ DeflateConfig::accept_offer(offers)
//!  DeflateConfig::accept_response(resp) ◀── response ──── Accepted::response()
//!        │ DeflateParams                                        │ DeflateParams
//!        ▼                                                      ▼
//!  Compressor ── message ─▶ deflate ─▶ strip 00 00 ff ff ─▶ [RSV1 frames] ─┐
//!  Decompressor ◀─ ≤ limit bytes ◀─ inflate ◀─ + 00 00 ff ff ◀─ fragments ◀┘
//! ```
//!
//! # Getting started
//!
//! ```
//! use bytes::BytesMut;
//! use tether_deflate::{DeflateConfig, Role};
//!
//! // Handshake: the client offers, the server accepts, the client checks the answer.
//! let client = DeflateConfig::default();
//! let server = DeflateConfig::default();
//! assert_eq!(client.offer(), "permessage-deflate; client_max_window_bits");
//! let accepted = server.accept_offer([[("client_max_window_bits", None)]]).unwrap();
//! assert_eq!(accepted.response(), "permessage-deflate");
//! let agreed = client.accept_response([Vec::new()]).unwrap().unwrap();
//! assert_eq!(&agreed, accepted.params());
//!
//! // Messages: the server compresses, the client inflates, bounded by 1 MiB.
//! let mut compressor = accepted.params().compressor(Role::Server, &server);
//! let mut decompressor = agreed.decompressor(Role::Client, 1 << 20);
//! let message = br#"{"price": 101.5, "symbol": "ACME"}"#.repeat(10);
//! let mut wire = BytesMut::new();
//! compressor.compress(&message, &mut wire).unwrap();
//! assert!(wire.len() < message.len() / 4);
//! let mut inflated = BytesMut::new();
//! let (first, rest) = wire.split_at(wire.len() / 2); // two frames
//! decompressor.feed(first, false, &mut inflated).unwrap();
//! decompressor.feed(rest, true, &mut inflated).unwrap();
//! assert_eq!(&inflated[..], &message[..]);
//! ```
//!
//! # Backend
//!
//! `flate2` with the pure-Rust `zlib-rs` backend (`default-features = false, features =
//! ["zlib-rs"]`). Two reasons, the first decisive: it supports window bits
//! (`new_with_window_bits`), which flate2's miniz_oxide backend does not, so it is the only
//! pure-Rust backend that can honour `*_max_window_bits`; and it is faster where compression
//! matters. Measured by `cargo bench --bench deflate` (tether-suite; level 6, fresh context,
//! medians on the 2-core dev machine):
//!
//! | message | zlib-rs deflate | miniz_oxide deflate | zlib-rs inflate | miniz_oxide inflate |
//! |---|---|---|---|---|
//! | JSON 1 KiB | 7.8 µs | 7.0 µs | 1.3 µs | 2.7 µs |
//! | JSON 16 KiB | 35 µs | 75 µs | 5.1 µs | 6.4 µs |
//! | JSON 1 MiB | 2.3 ms | 7.7 ms | 196 µs | 237 µs |
//! | random 16 KiB | 106 µs | 140 µs | 0.52 µs | 0.51 µs |
//!
//! miniz_oxide only wins on messages under ~1 KiB, by about 1 µs. This crate's own cost on
//! top of raw flate2 is within 5 % for compression; for inflation it is 5–20 % on text and up
//! to 2× on incompressible 1 MiB messages (stored blocks inflate at memcpy speed, and the
//! output buffer is zero-filled before zlib writes to it, since safe code cannot hand zlib
//! uninitialised `BytesMut` capacity).
//!
//! # Memory per connection
//!
#![doc = include_str!("memory.md")]
#![forbid(unsafe_code)]

mod compressor;
mod config;
mod decompressor;
mod error;
mod negotiate;
mod params;
mod window_bits;

pub use compressor::Compressor;
pub use config::{DeflateConfig, Level};
pub use decompressor::Decompressor;
pub use error::{DeflateError, NegotiationError};
pub use negotiate::Accepted;
pub use params::{DeflateParams, Role, PERMESSAGE_DEFLATE};
pub use window_bits::WindowBits;
