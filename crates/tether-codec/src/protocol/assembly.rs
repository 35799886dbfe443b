//! A fragmented (or compressed) message received piece by piece, until its last frame.

use bytes::BytesMut;

use crate::deflate::Deflate;
use crate::error::Error;
use crate::message::Message;
use crate::opcode::OpCode;
use crate::utf8::{InvalidUtf8, Utf8Bytes, Utf8Stream};

/// A fragmented message being reassembled; its fragments are moved in as they arrive.
pub(super) struct Assembly {
    pub(super) body: Body,
    /// Payload plus per-fragment overhead counted so far, against the message size limit.
    pub(super) size: u64,
}

/// The payload of a fragmented message so far.
pub(super) enum Body {
    Binary(BytesMut),
    /// Text checked as it arrives, kept as a `String` so the whole needs no second check.
    Text(String, Utf8Stream),
    /// A compressed message (RSV1 on its first frame, RFC 7692 §6) inflated as it arrives;
    /// text is checked on the inflated bytes as they come.
    Inflated(BytesMut, Option<Utf8Stream>),
}

impl Body {
    /// A new body for a message starting with a frame of `opcode`, compressed or not.
    pub(super) fn new(opcode: OpCode, compressed: bool) -> Body {
        let text = opcode == OpCode::Text;
        match (compressed, text) {
            (true, _) => Body::Inflated(BytesMut::new(), text.then(Utf8Stream::default)),
            (false, true) => Body::Text(String::new(), Utf8Stream::default()),
            (false, false) => Body::Binary(BytesMut::new()),
        }
    }

    /// Appends `piece`, unmasked; `fin` when it ends the message. A compressed body is
    /// inflated by `deflate`.
    pub(super) fn extend(
        &mut self,
        piece: &[u8],
        fin: bool,
        deflate: Option<&mut Deflate>,
    ) -> Result<(), Error> {
        match self {
            Body::Binary(data) => data.extend_from_slice(piece),
            Body::Text(text, utf8) => utf8
                .feed_with(piece, fin, |valid| text.push_str(valid))
                .map_err(|InvalidUtf8| Error::InvalidUtf8)?,
            Body::Inflated(data, utf8) => {
                // check_header lets RSV1 open a compressed body only when deflate is agreed.
                let Some(deflate) = deflate else {
                    return Err(Error::ReservedBits { rsv: 0b100 });
                };
                let start = data.len();
                let inflated = deflate.inflate(piece, fin, data);
                // Errors in stream order: text inflated before the point where the data turned
                // corrupt or too large is checked first, so where the reads fall cannot change
                // which error (1007, 1002 or 1009) the peer gets.
                if let Some(utf8) = utf8 {
                    utf8.feed_with(&data[start..], fin && inflated.is_ok(), |_| {})
                        .map_err(|InvalidUtf8| Error::InvalidUtf8)?;
                }
                inflated?;
            }
        }
        Ok(())
    }

    pub(super) fn into_message(self) -> Result<Message, Error> {
        Ok(match self {
            Body::Binary(data) | Body::Inflated(data, None) => Message::Binary(data.freeze()),
            Body::Text(text, _) => Message::Text(Utf8Bytes::from(text)),
            // Checked as it was inflated, the last piece with `fin`: nothing is left to feed.
            Body::Inflated(data, Some(mut utf8)) => {
                let validated = utf8.finish(&[]).map_err(|InvalidUtf8| Error::InvalidUtf8)?;
                Message::Text(Utf8Bytes::from_validated(data.freeze(), validated))
            }
        })
    }

    /// Bytes held for the message so far.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        match self {
            Body::Binary(data) | Body::Inflated(data, _) => data.capacity(),
            Body::Text(text, _) => text.capacity(),
        }
    }
}
