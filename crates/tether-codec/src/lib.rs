//! RFC 6455 WebSocket framing: sans-IO frame codec, message assembly and protocol state machine.
//!
//! TCP delivers a byte stream: one read may hold half a frame or three frames and a bit
//! (拆包/粘包, split and stuck packets). A WebSocket frame starts with a header that states its
//! payload length, and that is what lets a receiver cut the stream back into messages however
//! the bytes were split or merged on the way. This crate does that cutting and everything else
//! RFC 6455 asks of an endpoint after the opening handshake.
//!
//! **It does**: parse and write frame headers ([`FrameHeader`]) and whole frames ([`Frame`]),
//! mask and unmask payloads ([`apply_mask`]), reassemble fragmented messages and send them
//! ([`Protocol::send_fragment`]) with incremental UTF-8 validation, parse and build close frames ([`CloseFrame`], [`CloseCode`]), enforce size limits from the header
//! before buffering ([`Config`]), and run the protocol: auto-pong, closing handshake, a close
//! frame with the right code for every violation ([`Protocol`]). tokio-util codecs wrap it for
//! `Framed` ([`FrameCodec`], [`MessageCodec`]); only they meet I/O, and report it beside the
//! core's [`Error`] in [`CodecError`].
//!
//! **It does not**: open sockets, run the HTTP Upgrade (see `tether-handshake`), keep time
//! (close and heartbeat timeouts belong to the driver), draw random numbers (clients supply
//! masking keys), or negotiate extensions: permessage-deflate (RFC 7692) is
//! switched on with the parameters the handshake agreed ([`Protocol::set_deflate`]).
//!
//! ```text
//!            read_buffer()                      poll_message()
//!  socket ──► [hdr|payload][hdr|pay ... ] ──► FrameHeader::parse ─► validate (role, limits)
//!                 (any split, any merge)           │                       │ error → close frame
//!                                                  ▼                       ▼   (1002/1007/1009)
//!                                      unmask in place, split_to ─► reassemble, UTF-8 ─► Message
//!                                                                   ping → pong, close → echo
//!                                                                          │
//!  socket ◄── write_buffer() ◄── header + masked payload ◄── send()/close()┘
//! ```
//!
//! # Getting started
//!
//! A client and a server protocol talking through plain buffers:
//!
//! ```
//! use tether_codec::{CloseCode, Config, Message, Protocol, State};
//!
//! let mut keys = 0u32;
//! let mut client = Protocol::client(Config::default(), move || {
//!     keys = keys.wrapping_add(0x9e37_79b9); // use a real random source in production
//!     keys.to_be_bytes()
//! });
//! let mut server = Protocol::server(Config::default());
//!
//! client.send(Message::text("hello")).unwrap();
//! client.send(Message::binary(vec![1, 2, 3])).unwrap();
//!
//! // Everything the client queued travels in one write; deliver it in two odd pieces.
//! let wire = client.write_buffer().split();
//! server.receive_data(&wire[..3]);
//! assert_eq!(server.poll_message().unwrap(), None);
//! server.receive_data(&wire[3..]);
//! assert_eq!(server.poll_message().unwrap(), Some(Message::text("hello")));
//! assert_eq!(server.poll_message().unwrap(), Some(Message::binary(vec![1, 2, 3])));
//! assert_eq!(server.poll_message().unwrap(), None);
//!
//! // Closing handshake: the server echoes the client's close code.
//! client.close(CloseCode::NORMAL, "bye").unwrap();
//! let wire = client.write_buffer().split();
//! server.read_buffer().extend_from_slice(&wire);
//! assert!(matches!(server.poll_message().unwrap(), Some(Message::Close(Some(f))) if f.code == CloseCode::NORMAL));
//! assert_eq!(server.state(), State::Closed);
//! let wire = server.write_buffer().split();
//! client.receive_data(&wire);
//! assert!(matches!(client.poll_message().unwrap(), Some(Message::Close(Some(_)))));
//! assert_eq!(client.state(), State::Closed);
//! ```
//!
//! # Features
//!
//! - `tokio` (default): [`FrameCodec`] and [`MessageCodec`], tokio-util `Decoder`/`Encoder`
//!   adapters so `Framed<TcpStream, MessageCodec>` works. Without it the crate depends only on
//!   `bytes`, `bytestring`, `simdutf8`, `thiserror` and `tracing`.
// `deny`, not `forbid`: utf8.rs and mask.rs allow it for one call each (see their SAFETY
// comments).
#![deny(unsafe_code)]

mod close;
#[cfg(feature = "tokio")]
mod codec;
mod config;
mod deflate;
mod error;
mod frame;
mod mask;
mod message;
mod opcode;
mod outbox;
mod protocol;
mod utf8;

pub use close::{CloseCode, CloseFrame};
#[cfg(feature = "tokio")]
pub use codec::{CodecError, FrameCodec, MessageCodec};
pub use config::Config;
pub use error::Error;
pub use frame::{Frame, FrameHeader, MAX_HEADER_LEN};
pub use mask::{apply_mask, apply_mask_offset};
pub use message::Message;
pub use opcode::OpCode;
pub use protocol::{Protocol, State};
/// Which end of the connection a [`Protocol`] or codec speaks for (defined with the
/// compression extension, the lowest crate that needs it).
pub use tether_deflate::Role;
/// permessage-deflate's configuration and agreed parameters, for [`Protocol::set_deflate`].
pub use tether_deflate::{DeflateConfig, DeflateParams};
pub use utf8::Utf8Bytes;

#[cfg(test)]
mod tests {
    /// The facade moves these across tasks and threads.
    #[test]
    fn public_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Protocol>();
        assert_send_sync::<crate::Message>();
        assert_send_sync::<crate::Error>();
        assert_send_sync::<crate::Config>();
        #[cfg(feature = "tokio")]
        assert_send_sync::<crate::MessageCodec>();
        #[cfg(feature = "tokio")]
        assert_send_sync::<crate::CodecError>();
    }
}
