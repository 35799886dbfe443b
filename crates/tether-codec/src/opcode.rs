//! Frame opcodes (RFC 6455 §5.2, §11.8).

/// The four-bit opcode of a frame.
///
/// Reserved values are kept as [`OpCode::Reserved`] so a header can always be parsed and the
/// decision to reject it is taken by the validation that knows which extensions are active.
///
/// ```
/// use tether_codec::OpCode;
/// assert_eq!(OpCode::from(0x1), OpCode::Text);
/// assert_eq!(u8::from(OpCode::Ping), 0x9);
/// assert!(OpCode::Close.is_control());
/// assert_eq!(OpCode::from(0xB), OpCode::Reserved(0xB));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: continues a fragmented message.
    Continuation,
    /// `0x1`: first frame of a UTF-8 text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: close control frame.
    Close,
    /// `0x9`: ping control frame.
    Ping,
    /// `0xA`: pong control frame.
    Pong,
    /// `0x3`-`0x7` (data) and `0xB`-`0xF` (control), reserved for extensions.
    Reserved(u8),
}

impl OpCode {
    /// Whether this is a control opcode (most significant opcode bit set, RFC 6455 §5.5).
    pub fn is_control(self) -> bool {
        u8::from(self) & 0x8 != 0
    }

    /// Whether this opcode is reserved by RFC 6455.
    pub fn is_reserved(self) -> bool {
        matches!(self, OpCode::Reserved(_))
    }
}

impl From<u8> for OpCode {
    /// Maps the low four bits of `byte` to an opcode; the high bits are ignored.
    fn from(byte: u8) -> Self {
        match byte & 0x0F {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => OpCode::Reserved(other),
        }
    }
}

impl From<OpCode> for u8 {
    fn from(op: OpCode) -> u8 {
        match op {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
            OpCode::Reserved(v) => v & 0x0F,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_round_trips() {
        for v in 0u8..16 {
            let op = OpCode::from(v);
            assert_eq!(u8::from(op), v);
            assert_eq!(op.is_control(), v >= 8);
            assert_eq!(op.is_reserved(), matches!(v, 0x3..=0x7 | 0xB..=0xF));
        }
    }
}
