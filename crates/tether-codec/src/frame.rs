//! Frame header parse and write, and whole frames (RFC 6455 §5.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               |Masking-key, if MASK set to 1  |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::close::MAX_CONTROL_PAYLOAD;
use crate::config::Config;
use crate::error::Error;
use crate::mask::{apply_mask, extend_masked};
use crate::opcode::OpCode;
use crate::Role;

/// The longest header: 2 fixed bytes, 8 length bytes, 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// Most [`Frame::decode`] reserves at once for an incomplete frame.
const RESERVE_STEP: usize = 64 << 10;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;
const MASK: u8 = 0x80;
const LEN_16: u8 = 0x7E;
const LEN_64: u8 = 0x7F;

/// A parsed frame header.
///
/// [`FrameHeader::parse`] is a push parser: given fewer bytes than the header needs it returns
/// `Ok(None)` and the caller keeps the bytes; it never reads past the slice.
///
/// ```
/// use tether_codec::{FrameHeader, OpCode};
/// // RFC 6455 §5.7: a single-frame masked text message "Hello", header only.
/// let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d];
/// assert_eq!(FrameHeader::parse(&bytes[..3]).unwrap(), None);
/// let (header, used) = FrameHeader::parse(&bytes).unwrap().unwrap();
/// assert_eq!(used, 6);
/// assert!(header.fin);
/// assert_eq!(header.opcode, OpCode::Text);
/// assert_eq!(header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
/// assert_eq!(header.payload_len, 5);
/// let mut out = Vec::new();
/// header.write(&mut out);
/// assert_eq!(out, bytes);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1, defined by extensions such as permessage-deflate.
    pub rsv1: bool,
    /// RSV2, reserved.
    pub rsv2: bool,
    /// RSV3, reserved.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(Some((header, header_len)))` when the whole header is present, `Ok(None)` when
    /// more bytes are needed (nothing is consumed; incomplete is not invalid).
    ///
    /// Only wire-format rules are checked here; whether the header is acceptable for a role and
    /// configuration is [`FrameHeader::validate`]'s job.
    ///
    /// # Errors
    ///
    /// [`Error::NonMinimalLength`] and [`Error::LengthTopBitSet`].
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        let (b0, b1) = match buf {
            [b0, b1, ..] => (*b0, *b1),
            _ => return Ok(None),
        };
        let masked = b1 & MASK != 0;
        let len7 = b1 & 0x7F;
        let ext_len = match len7 {
            LEN_16 => 2,
            LEN_64 => 8,
            _ => 0,
        };
        let header_len = 2 + ext_len + if masked { 4 } else { 0 };
        let Some(header) = buf.get(..header_len) else {
            return Ok(None);
        };
        let mut pos = 2;
        let payload_len = match len7 {
            LEN_16 => {
                let len = u64::from(u16::from_be_bytes([header[2], header[3]]));
                // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
                if len < 126 {
                    return Err(Error::NonMinimalLength { len, width: 2 });
                }
                pos += 2;
                len
            }
            LEN_64 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&header[2..10]);
                let len = u64::from_be_bytes(be);
                // RFC 6455 §5.2: "the most significant bit MUST be 0".
                if len >> 63 != 0 {
                    return Err(Error::LengthTopBitSet);
                }
                if len <= u64::from(u16::MAX) {
                    return Err(Error::NonMinimalLength { len, width: 8 });
                }
                pos += 8;
                len
            }
            short => u64::from(short),
        };
        let mask = if masked {
            Some([
                header[pos],
                header[pos + 1],
                header[pos + 2],
                header[pos + 3],
            ])
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & FIN != 0,
                rsv1: b0 & RSV1 != 0,
                rsv2: b0 & RSV2 != 0,
                rsv3: b0 & RSV3 != 0,
                opcode: OpCode::from(b0),
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// Checks the per-frame rules that depend on the receiving role and the configuration.
    ///
    /// It does not check message sequencing (continuations), which needs state; the
    /// [`Protocol`](crate::Protocol) does that.
    ///
    /// # Errors
    ///
    /// [`Error::ReservedBits`], [`Error::ReservedOpcode`], [`Error::UnmaskedFrame`],
    /// [`Error::MaskedFrame`], [`Error::ControlFrameTooLong`],
    /// [`Error::FragmentedControlFrame`] (all 1002) and [`Error::FrameTooLarge`] (1009).
    pub fn validate(&self, role: Role, config: &Config) -> Result<(), Error> {
        // RFC 6455 §5.2: "If a nonzero value is received and none of the negotiated extensions
        // defines the meaning of such a nonzero value, the receiving endpoint MUST _Fail the
        // WebSocket Connection_."
        // RFC 7692 §6: the "Per-Message Compressed" bit is never set on "control frames and
        // non-first fragments of a data message".
        let first_data_frame = matches!(self.opcode, OpCode::Text | OpCode::Binary);
        let rsv1_forbidden = self.rsv1 && !(first_data_frame && config.rsv1_allowed());
        if rsv1_forbidden || self.rsv2 || self.rsv3 {
            return Err(Error::ReservedBits { rsv: self.rsv() });
        }
        // RFC 6455 §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
        // the WebSocket Connection_."
        if let OpCode::Reserved(op) = self.opcode {
            return Err(Error::ReservedOpcode(op));
        }
        // RFC 6455 §5.1: "a server MUST close the connection upon receiving a frame that is not
        // masked ... A client MUST close a connection if it detects a masked frame."
        match (role, self.mask.is_some()) {
            (Role::Server, false) => return Err(Error::UnmaskedFrame),
            (Role::Client, true) => return Err(Error::MaskedFrame),
            _ => {}
        }
        if self.opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less
            // and MUST NOT be fragmented."
            if self.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(Error::ControlFrameTooLong {
                    len: self.payload_len,
                });
            }
            if !self.fin {
                return Err(Error::FragmentedControlFrame);
            }
        } else if self.payload_len > config.max_frame_payload() as u64 {
            return Err(Error::FrameTooLarge {
                len: self.payload_len,
                limit: config.max_frame_payload(),
            });
        }
        Ok(())
    }

    /// The number of bytes [`FrameHeader::write`] produces for this header (2 to 14).
    pub fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header with the minimal length encoding.
    pub fn write<B: BufMut>(&self, dst: &mut B) {
        let (bytes, len) = self.encode();
        dst.put_slice(&bytes[..len]);
    }

    /// The header's bytes (the first `.1` of `.0`), assembled on the stack so that they are
    /// appended at once: one capacity check, not one per byte.
    #[inline(always)]
    fn encode(&self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = self.first_byte();
        let mask_bit = if self.mask.is_some() { MASK } else { 0 };
        let mut len = match self.payload_len {
            short @ 0..=125 => {
                out[1] = mask_bit | short as u8;
                2
            }
            medium @ 126..=0xFFFF => {
                out[1] = mask_bit | LEN_16;
                out[2..4].copy_from_slice(&(medium as u16).to_be_bytes());
                4
            }
            long => {
                out[1] = mask_bit | LEN_64;
                out[2..10].copy_from_slice(&long.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        (out, len)
    }

    /// The first byte: FIN, the RSV bits and the opcode.
    #[inline(always)]
    fn first_byte(&self) -> u8 {
        u8::from(self.opcode)
            | if self.fin { FIN } else { 0 }
            | if self.rsv1 { RSV1 } else { 0 }
            | if self.rsv2 { RSV2 } else { 0 }
            | if self.rsv3 { RSV3 } else { 0 }
    }

    pub(crate) fn rsv(&self) -> u8 {
        (u8::from(self.rsv1) << 2) | (u8::from(self.rsv2) << 1) | u8::from(self.rsv3)
    }
}

/// A whole frame: header fields and its payload, kept unmasked.
///
/// Built frames are final, unmasked and without RSV bits until changed with the `with_*`
/// methods; [`Frame::encode`] masks the payload on the way out when a key is set.
///
/// ```
/// use bytes::BytesMut;
/// use tether_codec::{Frame, OpCode};
/// let mut out = BytesMut::new();
/// Frame::new(OpCode::Text, "Hello").encode(&mut out);
/// assert_eq!(&out[..], b"\x81\x05Hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: Bytes,
}

impl Frame {
    /// A final, unmasked frame with `opcode` and `payload`.
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>) -> Frame {
        Frame {
            fin: true,
            rsv1: false,
            opcode,
            mask: None,
            payload: payload.into(),
        }
    }

    /// Sets the FIN bit (default `true`); `false` makes this a non-final fragment.
    pub fn with_fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }

    /// Sets RSV1 (default `false`), for a negotiated extension.
    pub fn with_rsv1(mut self, rsv1: bool) -> Frame {
        self.rsv1 = rsv1;
        self
    }

    /// Sets the masking key (default `None`); clients must mask every frame they send.
    pub fn with_mask(mut self, mask: Option<[u8; 4]>) -> Frame {
        self.mask = mask;
        self
    }

    /// The FIN bit.
    pub fn fin(&self) -> bool {
        self.fin
    }

    /// The RSV1 bit.
    pub fn rsv1(&self) -> bool {
        self.rsv1
    }

    /// The opcode.
    pub fn opcode(&self) -> OpCode {
        self.opcode
    }

    /// The masking key the frame was or will be sent with.
    pub fn mask(&self) -> Option<[u8; 4]> {
        self.mask
    }

    /// The unmasked payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// Takes the unmasked payload.
    pub fn into_payload(self) -> Bytes {
        self.payload
    }

    /// The header this frame is sent with.
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            fin: self.fin,
            rsv1: self.rsv1,
            rsv2: false,
            rsv3: false,
            opcode: self.opcode,
            mask: self.mask,
            payload_len: self.payload.len() as u64,
        }
    }

    /// Appends the encoded frame (header, then the payload masked if a key is set) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        write_frame(dst, self.header(), &self.payload);
    }

    /// Decodes one whole frame from the start of `src` for a receiver in `role`.
    ///
    /// A push parser like [`FrameHeader::parse`]: while the frame is incomplete it returns
    /// `Ok(None)`, consumes nothing and reserves room for more of the frame (at most 64 KiB at
    /// a time, so an announced length is never trusted with a large allocation). A complete frame is split off `src` without copying and unmasked
    /// in place. Per-frame rules are checked with [`FrameHeader::validate`]; message
    /// sequencing is not (that needs the [`Protocol`](crate::Protocol)).
    ///
    /// # Errors
    ///
    /// Those of [`FrameHeader::parse`] and [`FrameHeader::validate`].
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tether_codec::{Config, Frame, OpCode, Role};
    /// let mut src = BytesMut::from(&[0x89, 0x05, b'H', b'e'][..]);
    /// assert_eq!(Frame::decode(&mut src, Role::Client, &Config::default()).unwrap(), None);
    /// src.extend_from_slice(b"llo");
    /// let ping = Frame::decode(&mut src, Role::Client, &Config::default()).unwrap().unwrap();
    /// assert_eq!((ping.opcode(), &ping.payload()[..]), (OpCode::Ping, &b"Hello"[..]));
    /// assert!(src.is_empty());
    /// ```
    pub fn decode(src: &mut BytesMut, role: Role, config: &Config) -> Result<Option<Frame>, Error> {
        let Some((header, used)) = FrameHeader::parse(src)? else {
            return Ok(None);
        };
        header.validate(role, config)?;
        // validate bounded the length by a usize limit (or 125); on 32-bit targets a limit near
        // usize::MAX could still overflow, which is reported rather than wrapped.
        let too_large = || Error::FrameTooLarge {
            len: header.payload_len,
            limit: config.max_frame_payload(),
        };
        let len = usize::try_from(header.payload_len).map_err(|_| too_large())?;
        let total = used.checked_add(len).ok_or_else(too_large)?;
        if src.len() < total {
            // Grow toward the frame on demand rather than trusting the announced length with
            // a large allocation up front.
            src.reserve((total - src.len()).min(RESERVE_STEP));
            return Ok(None);
        }
        src.advance(used);
        Ok(Some(Frame::from_wire(header, src.split_to(len))))
    }

    /// Builds a frame from a parsed header and its payload, unmasking the payload in place.
    fn from_wire(header: FrameHeader, mut payload: BytesMut) -> Frame {
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        Frame {
            fin: header.fin,
            rsv1: header.rsv1,
            opcode: header.opcode,
            mask: header.mask,
            payload: payload.freeze(),
        }
    }
}

/// The frame most often next, recognised in one step: a whole single-frame text or binary
/// message (FIN set, no RSV bit) with a length below 64 KiB in minimal encoding, masked exactly
/// when `masked`, its payload complete in `buf`. `None` for anything else, including every
/// frame that breaks a rule: the caller's full parse and checks take those. Returns the header
/// and its length.
#[inline(always)]
pub(crate) fn whole_data_frame(buf: &[u8], masked: bool) -> Option<(FrameHeader, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let opcode = match b0 {
        0x81 => OpCode::Text,
        0x82 => OpCode::Binary,
        _ => return None,
    };
    if (b1 & MASK != 0) != masked {
        return None;
    }
    let (payload_len, mut used) = match b1 & 0x7F {
        LEN_16 => match u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) {
            len @ 126.. => (usize::from(len), 4),
            _ => return None,
        },
        LEN_64 => return None,
        short => (usize::from(short), 2),
    };
    let mask = if masked {
        let key = buf.get(used..used + 4)?;
        used += 4;
        Some([key[0], key[1], key[2], key[3]])
    } else {
        None
    };
    let header = FrameHeader {
        fin: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask,
        payload_len: payload_len as u64,
    };
    (buf.len() - used >= payload_len).then_some((header, used))
}

/// Appends a frame with `header` (whose `payload_len` must equal `payload.len()`) and `payload`,
/// masking the copied payload in place when the header carries a key.
#[inline(always)]
pub(crate) fn write_frame(dst: &mut BytesMut, header: FrameHeader, payload: &[u8]) {
    if header.mask.is_none() && payload.len() <= 125 {
        // A short unmasked frame (a server's small message): its two header bytes, the
        // second being the length, go in directly, without assembling the general header.
        dst.reserve(2 + payload.len());
        dst.put_u8(header.first_byte());
        dst.put_u8(payload.len() as u8);
        dst.extend_from_slice(payload);
        return;
    }
    let (bytes, len) = header.encode();
    dst.reserve(len + payload.len());
    // Byte by byte into the room just made: for the 2 to 14 bytes of a header that is a few
    // moves, where a copy of their variable length is a call to `memcpy`.
    for &byte in &bytes[..len] {
        dst.put_u8(byte);
    }
    match header.mask {
        Some(key) => extend_masked(dst, payload, key),
        None => dst.extend_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(bytes: &[u8]) -> Error {
        FrameHeader::parse(bytes).unwrap_err()
    }

    #[test]
    fn rfc6455_5_2_length_encodings_at_their_boundaries() {
        for len in [0u64, 125, 126, 0xFFFF, 0x1_0000, (1 << 63) - 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let header = FrameHeader {
                    fin: true,
                    rsv1: false,
                    rsv2: false,
                    rsv3: false,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut out = Vec::new();
                header.write(&mut out);
                assert_eq!(out.len(), header.encoded_len());
                for short in 0..out.len() {
                    assert_eq!(FrameHeader::parse(&out[..short]).unwrap(), None);
                }
                assert_eq!(FrameHeader::parse(&out).unwrap(), Some((header, out.len())));
            }
        }
    }

    #[test]
    fn rfc6455_5_2_non_minimal_16_bit_length() {
        assert!(matches!(
            parse_err(&[0x82, 0x7E, 0x00, 0x7D]),
            Error::NonMinimalLength { len: 125, width: 2 }
        ));
        assert!(FrameHeader::parse(&[0x82, 0x7E, 0x00, 0x7E]).is_ok());
    }

    #[test]
    fn rfc6455_5_2_non_minimal_64_bit_length() {
        assert!(matches!(
            parse_err(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Error::NonMinimalLength {
                len: 0xFFFF,
                width: 8
            }
        ));
        assert!(FrameHeader::parse(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]).is_ok());
    }

    #[test]
    fn rfc6455_5_2_64_bit_length_top_bit() {
        assert!(matches!(
            parse_err(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Error::LengthTopBitSet
        ));
    }

    #[test]
    fn decode_does_not_trust_the_announced_length_with_memory() {
        // A client announces a 16 MiB frame (the default limit) and sends only the header.
        let mut src = BytesMut::from(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF][..]);
        let config = Config::default();
        assert_eq!(
            Frame::decode(&mut src, Role::Client, &config).unwrap(),
            None
        );
        assert_eq!(src.len(), 10, "nothing consumed");
        assert!(src.capacity() <= 10 + RESERVE_STEP, "{}", src.capacity());
    }

    #[test]
    fn validate_role_and_control_rules() {
        let config = Config::default();
        let (header, _) = FrameHeader::parse(&[0x89, 0x00]).unwrap().unwrap();
        assert!(header.validate(Role::Client, &config).is_ok());
        assert!(matches!(
            header.validate(Role::Server, &config),
            Err(Error::UnmaskedFrame)
        ));
        let (header, _) = FrameHeader::parse(&[0x09, 0x00]).unwrap().unwrap();
        assert!(matches!(
            header.validate(Role::Client, &config),
            Err(Error::FragmentedControlFrame)
        ));
    }
}
