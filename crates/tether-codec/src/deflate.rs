//! permessage-deflate (RFC 7692) inside the protocol: the connection's compressor and
//! decompressor, and the mapping of their errors to close codes.

use bytes::BytesMut;
use tether_deflate::{Compressor, Decompressor, DeflateConfig, DeflateError, DeflateParams};

use crate::error::Error;
use crate::Role;

/// The agreed extension of one connection: what it sends is compressed by `compressor`, what it
/// receives with RSV1 is inflated by `decompressor`, bounded by the message size limit.
#[derive(Debug)]
pub(crate) struct Deflate {
    params: DeflateParams,
    compressor: Compressor,
    decompressor: Decompressor,
}

impl Deflate {
    /// The extension for `role` with the agreed `params`, `config`'s level and threshold, and
    /// inflated messages bounded by `limit` bytes.
    pub(crate) fn new(
        role: Role,
        params: DeflateParams,
        config: &DeflateConfig,
        limit: usize,
    ) -> Deflate {
        Deflate {
            params,
            compressor: params.compressor(role, config),
            decompressor: params.decompressor(role, limit),
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// The compressed form of a whole message, or `None` when it goes out uncompressed: below
    /// the threshold, or (which a valid compressor never does) when compression failed. The
    /// compressor drops its window on failure, so the peer's window stays a superset of ours
    /// and later messages still decode.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<BytesMut> {
        if !self.compressor.should_compress(payload.len()) {
            return None;
        }
        let mut out = BytesMut::with_capacity(payload.len() / 2 + 16);
        self.compressor.compress(payload, &mut out).ok()?;
        Some(out)
    }

    /// Inflates the next arrived piece of a compressed message's payload onto `out`; `fin`
    /// after its last byte.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLarge`] (1009) as soon as the message inflates past the limit, with at
    /// most the limit appended; [`Error::CorruptDeflate`] (1002) for data that is not DEFLATE.
    pub(crate) fn inflate(
        &mut self,
        piece: &[u8],
        fin: bool,
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        self.decompressor
            .feed(piece, fin, out)
            .map_err(|err| match err {
                DeflateError::TooLarge { limit } => Error::MessageTooLarge {
                    size: (limit as u64).saturating_add(1),
                    limit,
                },
                _ => Error::CorruptDeflate,
            })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tether_deflate::DeflateConfig;

    use crate::frame::Frame;
    use crate::{CloseCode, CloseFrame, Config, Error, FrameHeader, OpCode, Protocol};

    const LIMIT: usize = 64 << 10;

    /// A zip bomb: 8 MiB of zeros compress to a few KiB. Fed to a server in 8-byte reads, the
    /// message being inflated never holds more than the limit plus one inflate round, and the
    /// server closes with 1009 before inflating the rest.
    #[test]
    fn rfc7692_zip_bomb_stops_at_the_message_limit_with_1009() {
        let config = DeflateConfig::default();
        let params = config.accept_response([Vec::new()]).unwrap().unwrap();
        let mut compressed = BytesMut::new();
        params
            .compressor(crate::Role::Client, &config)
            .compress(&vec![0u8; 8 << 20], &mut compressed)
            .unwrap();
        assert!(compressed.len() < LIMIT / 4, "{}", compressed.len());
        let mut wire = BytesMut::new();
        Frame::new(OpCode::Binary, compressed.freeze())
            .with_rsv1(true)
            .with_mask(Some([1, 2, 3, 4]))
            .encode(&mut wire);

        let mut codec = Config::default();
        codec.set_max_message_size(LIMIT);
        let mut server = Protocol::server(codec);
        server.set_deflate(params, &config);
        let mut peak = 0;
        let mut failure = None;
        for chunk in wire.chunks(8) {
            server.receive_data(chunk);
            match server.poll_message() {
                Ok(None) => peak = peak.max(server.assembly_capacity()),
                Ok(Some(message)) => panic!("bomb delivered: {message:?}"),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        assert!(matches!(
            failure,
            Some(Error::MessageTooLarge { limit: LIMIT, .. })
        ));
        assert!(peak <= LIMIT + (32 << 10), "peak {peak}");
        assert!(peak >= LIMIT / 2, "the bomb did inflate: {peak}");
        assert_eq!(server.assembly_capacity(), 0);
        let out = server.write_buffer().split().freeze();
        let (header, used) = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Close);
        let close = CloseFrame::decode(out.slice(used..)).unwrap().unwrap();
        assert_eq!(close.code, CloseCode::MESSAGE_TOO_BIG);
    }
}
