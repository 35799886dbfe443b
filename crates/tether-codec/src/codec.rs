//! tokio-util `Decoder`/`Encoder` adapters over the sans-IO core, for `Framed`.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::close::CloseCode;
use crate::config::Config;
use crate::error::Error;
use crate::frame::Frame;
use crate::message::Message;
use crate::protocol::{Protocol, State};
use crate::Role;

/// What the tokio-util codecs report: a protocol error of the sans-IO core, or a failure of
/// the transport under `Framed` (which the core, doing no I/O, never meets).
///
/// ```
/// use tether_codec::{CloseCode, CodecError, Error};
/// let err = CodecError::from(Error::InvalidUtf8);
/// assert_eq!(err.close_code(), Some(CloseCode::INVALID_PAYLOAD));
/// let io = CodecError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
/// assert_eq!(io.close_code(), None);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A protocol violation by the peer (its close frame is queued) or a refused send.
    #[error(transparent)]
    Protocol(#[from] Error),
    /// The transport failed.
    #[error("transport i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// The close code for a protocol error ([`Error::close_code`]); `None` for I/O.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            CodecError::Protocol(err) => err.close_code(),
            CodecError::Io(_) => None,
        }
    }
}

/// Frame-level codec: one [`Frame`] per item, decoded with [`Frame::decode`] (checked for the
/// role and limits).
///
/// It does not reassemble messages, answer pings or run the closing handshake; that is
/// [`MessageCodec`]'s job. The encoder refuses frames whose masking does not fit the role, so a
/// client must set a key with [`Frame::with_mask`].
///
/// ```
/// use bytes::BytesMut;
/// use tether_codec::{Config, Frame, FrameCodec, OpCode, Role};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut client = FrameCodec::new(Role::Client, Config::default());
/// let mut server = FrameCodec::new(Role::Server, Config::default());
/// let mut wire = BytesMut::new();
/// let frame = Frame::new(OpCode::Binary, vec![1, 2, 3]).with_mask(Some([9, 8, 7, 6]));
/// client.encode(frame.clone(), &mut wire).unwrap();
/// assert_eq!(server.decode(&mut wire).unwrap(), Some(frame));
/// assert!(wire.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct FrameCodec {
    role: Role,
    config: Config,
}

impl FrameCodec {
    /// A frame codec for `role` with `config`'s limits.
    pub fn new(role: Role, config: Config) -> FrameCodec {
        FrameCodec { role, config }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(Frame::decode(src, self.role, &self.config)?)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        match (self.role, frame.mask()) {
            (Role::Client, Some(_)) | (Role::Server, None) => {
                frame.encode(dst);
                Ok(())
            }
            _ => Err(Error::MaskMismatch.into()),
        }
    }
}

/// Message-level codec: a [`Protocol`] behind `Decoder<Item = Message>` and
/// `Encoder<Message>`.
///
/// Decoding works on `Framed`'s read buffer without copying. Replies the protocol queues while
/// decoding (pongs, the echo of a peer's close) cannot be written from a decoder; they go out
/// in front of the next encoded message. To flush the close echo after receiving
/// `Message::Close`, send a `Message::Close` too: once closed, encoding one only flushes.
///
/// # Memory and backpressure
///
/// Decoding never makes the codec hold more than one reply: only the latest Ping is answered
/// (RFC 6455 §5.5.3), so a peer that floods pings and never reads costs one pending Pong
/// (at most 131 bytes), plus the close echo. Everything else that is written comes from
/// `encode`, that is from the application's sends, and `Framed`'s `Sink::poll_ready` flushes
/// its write buffer once it passes its backpressure boundary.
///
/// What a `Decoder` cannot do is stop `Framed` from reading while the write side is stalled:
/// `decode` does not see `Framed`'s write buffer, and refusing to decode until it drains would
/// stall an application that only reads. The contract is therefore the application's: one
/// task that awaits each `send` before polling the stream again (an echo loop) reads nothing
/// while its send waits, and TCP pushes back on the peer. An application that reads and
/// writes from separate tasks, and wants reading to stop while writes wait, should use the
/// `tether` facade's `WebSocket`, which does that.
///
/// ```
/// use bytes::BytesMut;
/// use tether_codec::{Config, Message, MessageCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut client = MessageCodec::client(Config::default(), || [1, 2, 3, 4]);
/// let mut server = MessageCodec::server(Config::default());
/// let mut wire = BytesMut::new();
/// client.encode(Message::text("hello"), &mut wire).unwrap();
/// assert_eq!(server.decode(&mut wire).unwrap(), Some(Message::text("hello")));
/// ```
#[derive(Debug)]
pub struct MessageCodec {
    protocol: Protocol,
}

impl MessageCodec {
    /// A server-side message codec.
    pub fn server(config: Config) -> MessageCodec {
        MessageCodec {
            protocol: Protocol::server(config),
        }
    }

    /// A client-side message codec masking with keys from `mask_keys` (see
    /// [`Protocol::client`]).
    pub fn client(
        config: Config,
        mask_keys: impl FnMut() -> [u8; 4] + Send + Sync + 'static,
    ) -> MessageCodec {
        MessageCodec {
            protocol: Protocol::client(config, mask_keys),
        }
    }

    /// The protocol state machine inside.
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }
}

impl From<Protocol> for MessageCodec {
    /// Wraps an existing protocol; bytes already in its read buffer are decoded first.
    fn from(protocol: Protocol) -> Self {
        MessageCodec { protocol }
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        let own = self.protocol.read_buffer();
        if !own.is_empty() {
            // Bytes fed to the protocol before it was wrapped come first.
            let mut seeded = std::mem::take(own);
            seeded.unsplit(src.split());
            *src = seeded;
        }
        Ok(self.protocol.poll_message_in(src)?)
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = CodecError;

    fn encode(&mut self, message: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let result = match (&message, self.protocol.state()) {
            (Message::Close(_), State::Closed) => Ok(()),
            _ => self.protocol.send(message),
        };
        let queued = self.protocol.write_buffer().split();
        dst.unsplit(queued);
        Ok(result?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opcode::OpCode;

    #[test]
    fn frame_codec_waits_for_the_whole_payload() {
        let mut codec = FrameCodec::new(Role::Client, Config::default());
        let mut wire = BytesMut::from(&b"\x82\x03ab"[..]);
        assert_eq!(codec.decode(&mut wire).unwrap(), None);
        assert_eq!(wire.len(), 4, "nothing consumed while incomplete");
        wire.extend_from_slice(b"c");
        let frame = codec.decode(&mut wire).unwrap().unwrap();
        assert_eq!(frame.opcode(), OpCode::Binary);
        assert_eq!(&frame.payload()[..], b"abc");
    }

    #[test]
    fn frame_codec_rejects_mask_mismatch_on_encode() {
        let mut codec = FrameCodec::new(Role::Client, Config::default());
        let mut out = BytesMut::new();
        assert!(matches!(
            codec.encode(Frame::new(OpCode::Text, "x"), &mut out),
            Err(CodecError::Protocol(Error::MaskMismatch))
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn rfc6455_5_5_3_ping_flood_leaves_one_pong_for_the_next_encode() {
        let mut codec = MessageCodec::server(Config::default());
        let mut wire = BytesMut::new();
        for i in 0..1000u32 {
            // A masked ping with a one-byte payload (mask of zeros).
            wire.extend_from_slice(&[0x89, 0x81, 0, 0, 0, 0, i as u8]);
        }
        while let Some(message) = codec.decode(&mut wire).unwrap() {
            assert!(matches!(message, Message::Ping(_)));
            assert!(
                codec.protocol().write_buffer_len() <= 3,
                "one pong owed at most"
            );
        }
        let mut out = BytesMut::new();
        codec.encode(Message::text("x"), &mut out).unwrap();
        assert_eq!(&out[..], [0x8a, 0x01, 231, 0x81, 0x01, b'x']);
    }

    #[test]
    fn message_codec_flushes_close_echo_on_close() {
        let mut codec = MessageCodec::server(Config::default());
        let mut wire = BytesMut::from(&b"\x88\x82\0\0\0\0\x03\xe8"[..]);
        assert!(matches!(
            codec.decode(&mut wire).unwrap(),
            Some(Message::Close(Some(frame))) if frame.code == CloseCode::NORMAL
        ));
        let mut out = BytesMut::new();
        codec.encode(Message::Close(None), &mut out).unwrap();
        assert_eq!(&out[..], b"\x88\x02\x03\xe8");
        assert!(matches!(
            codec.encode(Message::text("late"), &mut out),
            Err(CodecError::Protocol(Error::Closed))
        ));
    }
}
