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
//! ["zlib-rs"]`): it supports window bits (`new_with_window_bits`), which the miniz_oxide
//! backend does not, so it is the only pure-Rust choice that can honour
//! `*_max_window_bits`; zlib-rs is also the faster of the two.
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
