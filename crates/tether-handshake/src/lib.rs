//! RFC 6455 opening handshake: HTTP/1.1 Upgrade for clients and servers, sans-IO with async helpers.
//!
//! A WebSocket starts life as an HTTP/1.1 request that asks to be upgraded. This crate does
//! that exchange for both roles:
//!
//! - **client**: build the request from a `ws://`/`wss://` URI ([`ClientRequest`]), then
//!   validate the server's answer ([`ClientHandshake`]): status 101, `Upgrade`, `Connection`,
//!   `Sec-WebSocket-Accept`, and a subprotocol and extensions only from those offered.
//! - **server**: read the request incrementally ([`ServerHandshake`]), validate it, let the
//!   application decide ([`Accept`] or [`Rejection`]), answer 101 or a precise error
//!   (400, 403, 426, 431). Plain HTTP requests are handed back ([`Incoming::Plain`]).
//!
//! Bytes that arrive after the HTTP head (the peer's first frames) are returned as
//! `leftover`, never dropped. Header bytes and header count are bounded by a [`Config`], time
//! by the timeout the async helpers take. The head is parsed once, when its blank line has
//! arrived, so a peer that trickles a huge header cannot make the reader re-parse it on every read.
//!
//! It does not frame messages (that is `tether-codec`), open sockets or TLS (that is the
//! `tether` facade), or implement extensions: it parses the `Sec-WebSocket-Extensions`
//! grammar ([`parse_extensions`]) and negotiates names, and for permessage-deflate hands the
//! offers and answer to `tether-deflate` ([`ClientRequest::set_deflate`],
//! [`UpgradeRequest::deflate_offer`], [`Accept::with_deflate`]): the agreed
//! [`DeflateParams`] come out in the outcome's `deflate`.
//!
//! ```text
//!  client                                             server
//!  ClientRequest ──encode──► GET /chat HTTP/1.1  ───► ServerHandshake::receive (in pieces)
//!                            Upgrade: websocket            │ validate (§4.2.1)
//!                            Sec-WebSocket-Key: k          ▼
//!                                                   Incoming::Upgrade ── app decides ─┐
//!                                                   Incoming::Plain (serve HTTP)      │
//!  ClientHandshake::receive ◄─ HTTP/1.1 101 ...  ◄─── UpgradeRequest::accept ◄────────┘
//!       │ validate (§4.1)     Sec-WebSocket-Accept:     (or Rejection: 400/403/426/431)
//!       ▼                     base64(SHA-1(k + GUID))
//!  ClientOutcome { subprotocol, extensions, leftover }  ServerOutcome { ..., leftover }
//! ```
//!
//! # Getting started
//!
//! The sans-IO core, both roles in memory:
//!
//! ```
//! use bytes::BytesMut;
//! use tether_handshake::{Accept, ClientHandshake, ClientRequest, Config, Incoming, Key, ServerHandshake};
//!
//! let config = Config::default();
//! let mut request = ClientRequest::new("ws://example.com/chat".parse()?)?;
//! request.subprotocol("chat");
//!
//! let mut wire = BytesMut::new();
//! let mut client = ClientHandshake::start(&request, &Key::random()?, &config, &mut wire)?;
//!
//! let mut server = ServerHandshake::new(&config);
//! let Some(Incoming::Upgrade(upgrade)) = server.receive(&wire)? else { panic!("an upgrade") };
//! let mut answer = BytesMut::new();
//! let server_side = upgrade.accept(&Accept::new().with_subprotocol("chat"), &mut answer)?;
//!
//! let client_side = client.receive(&answer)?.expect("a complete response");
//! assert_eq!(client_side.subprotocol.as_deref(), Some("chat"));
//! assert_eq!(server_side.request.uri().path(), "/chat");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Over a real stream, use the async [`client`] and [`server`] helpers. Behind an HTTP server
//! that parses requests itself (hyper, axum), [`Incoming::from_head`] validates its parsed
//! head by the same rules, [`UpgradeRequest::accept_response`] builds the 101 and
//! [`Rejection::to_response`] an error answer, as [`http::Response`]s.
//!
//! # Features
//!
//! - `tokio` (default): the async helpers [`client`] and [`server`] over
//!   `tokio::io::{AsyncRead, AsyncWrite}`, with the handshake timeout.
#![forbid(unsafe_code)]

mod accept_key;
mod client;
mod config;
mod deflate;
#[cfg(feature = "tokio")]
mod driver;
mod error;
mod extension;
mod field;
mod head;
mod parsed;
mod rejection;
mod request;
mod server;

pub use accept_key::{accept_key, Key};
pub use client::{ClientHandshake, ClientOutcome};
pub use config::Config;
#[cfg(feature = "tokio")]
pub use driver::{client, server, Served, DEFAULT_HANDSHAKE_TIMEOUT};
pub use error::{BadRequest, BadResponse, Error, UnexpectedResponse};
pub use extension::{
    parse_extensions, BadExtension, Extension, ExtensionParam, MAX_EXTENSIONS, MAX_EXTENSION_PARAMS,
};
pub use rejection::Rejection;
pub use request::ClientRequest;
pub use server::{Accept, Incoming, PlainRequest, ServerHandshake, ServerOutcome, UpgradeRequest};
/// permessage-deflate's configuration, negotiation result and agreed parameters.
pub use tether_deflate::{Accepted, DeflateConfig, DeflateParams, NegotiationError};
