//! Frames on the wire, described for a learner: every header field named (RFC 6455 §5.2).
//!
//! ```text
//!   0                   1                   2                   3
//!  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//!  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//!  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//!  | |1|2|3|       |K|             |                               |
//!  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//!  |  Masking-key (0 or 4 bytes)   |          Payload Data  ...    |
//! ```
//!
//! The demo writes frames with the codec and then reads its own bytes back through
//! [`FrameHeader::parse`], so what it prints is what travelled, not what it meant to send.

use std::fmt::Write as _;

use tether::codec::{apply_mask, CloseFrame, FrameHeader, Message, OpCode};

/// How many payload bytes or characters a description shows before it abbreviates.
const PREVIEW: usize = 24;

/// One complete frame found in a byte slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameView {
    /// Where the frame starts in the slice it was found in.
    pub(crate) offset: usize,
    /// The parsed header.
    pub(crate) header: FrameHeader,
    /// Header bytes, including the extended length and the masking key.
    pub(crate) header_len: usize,
    /// The payload as the application sees it (unmasked).
    pub(crate) payload: Vec<u8>,
}

impl FrameView {
    /// Header plus payload bytes.
    pub(crate) fn wire_len(&self) -> usize {
        self.header_len + self.payload.len()
    }

    /// `FIN=1 RSV=000 opcode=0x1 text  MASK=1 key=37 fa 21 3d  len=5 (7-bit)`.
    pub(crate) fn header_line(&self) -> String {
        let h = &self.header;
        let mask = match h.mask {
            Some(key) => format!("MASK=1 key={}", hex(&key, 4)),
            None => "MASK=0".to_owned(),
        };
        format!(
            "FIN={} RSV={}{}{} opcode={:#03x} {:<6} {}  len={} ({})",
            u8::from(h.fin),
            u8::from(h.rsv1),
            u8::from(h.rsv2),
            u8::from(h.rsv3),
            u8::from(h.opcode),
            opcode_name(h.opcode),
            mask,
            h.payload_len,
            length_encoding(h.payload_len),
        )
    }

    /// A short rendering of the payload: text quoted, close code and reason, binary in hex.
    pub(crate) fn payload_line(&self) -> String {
        match self.header.opcode {
            OpCode::Text => quote(&String::from_utf8_lossy(&self.payload)),
            OpCode::Close => match CloseFrame::decode(self.payload.clone().into()) {
                Ok(Some(frame)) => format!("code {} reason {}", frame.code, quote(&frame.reason)),
                Ok(None) => "no status code".to_owned(),
                Err(err) => format!("invalid close payload: {err}"),
            },
            // A continuation carries on whatever its message is; text reads better quoted.
            OpCode::Ping | OpCode::Pong | OpCode::Continuation
                if std::str::from_utf8(&self.payload).is_ok() =>
            {
                quote(&String::from_utf8_lossy(&self.payload))
            }
            _ => hex(&self.payload, PREVIEW / 3),
        }
    }
}

/// A message in a few words: `text "hi" (2 bytes)`.
pub(crate) fn describe(message: &Message) -> String {
    match message {
        Message::Text(text) => format!("text {} ({} bytes)", quote(text), text.len()),
        Message::Binary(data) => format!("binary, {} bytes", thousands(data.len())),
        Message::Ping(data) => format!("ping {}", quote(&String::from_utf8_lossy(data))),
        Message::Pong(data) => format!("pong {}", quote(&String::from_utf8_lossy(data))),
        Message::Close(Some(frame)) => {
            format!("close {} {}", frame.code, quote(&frame.reason))
        }
        Message::Close(None) => "close without a code".to_owned(),
    }
}

/// Finds every complete frame at the start of `wire`, one after another.
///
/// Returns the frames and how many bytes they used; bytes of an incomplete last frame are left
/// (that is 拆包: the rest comes with a later read).
///
/// # Errors
///
/// A header the codec refuses to parse (a non-minimal or oversized length).
pub(crate) fn frames(wire: &[u8]) -> Result<(Vec<FrameView>, usize), tether::codec::Error> {
    let mut found = Vec::new();
    let mut offset = 0;
    while let Some((header, header_len)) = FrameHeader::parse(&wire[offset..])? {
        let start = offset + header_len;
        let Some(len) = usize::try_from(header.payload_len)
            .ok()
            .filter(|len| wire.len() - start >= *len)
        else {
            break;
        };
        let mut payload = wire[start..start + len].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key);
        }
        found.push(FrameView {
            offset,
            header,
            header_len,
            payload,
        });
        offset = start + len;
    }
    Ok((found, offset))
}

/// Which of the three length encodings of RFC 6455 §5.2 a payload length needs.
pub(crate) fn length_encoding(len: u64) -> &'static str {
    match len {
        0..=125 => "7-bit",
        126..=0xFFFF => "16-bit: 126 + 2 bytes",
        _ => "64-bit: 127 + 8 bytes",
    }
}

/// The opcode's name from RFC 6455 §11.8.
pub(crate) fn opcode_name(opcode: OpCode) -> &'static str {
    match opcode {
        OpCode::Continuation => "cont",
        OpCode::Text => "text",
        OpCode::Binary => "binary",
        OpCode::Close => "close",
        OpCode::Ping => "ping",
        OpCode::Pong => "pong",
        OpCode::Reserved(_) => "reserved",
    }
}

/// Bytes as lowercase hex pairs; after `max` bytes, a count of the rest.
pub(crate) fn hex(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, byte) in bytes.iter().take(max).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    if bytes.len() > max {
        let rest = bytes.len() - max;
        let _ = write!(
            out,
            " .. (+{rest} byte{})",
            if rest == 1 { "" } else { "s" }
        );
    }
    out
}

/// A string in double quotes, shortened to [`PREVIEW`] characters.
pub(crate) fn quote(text: &str) -> String {
    let count = text.chars().count();
    if count > PREVIEW {
        let head: String = text.chars().take(PREVIEW).collect();
        format!("{head:?} .. (+{} chars)", count - PREVIEW)
    } else {
        format!("{text:?}")
    }
}

/// A byte count with thousands separators: `1,048,576`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §5.7: "A single-frame masked text message" containing "Hello".
    const MASKED_HELLO: [u8; 11] = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];

    #[test]
    fn rfc6455_5_7_masked_text_is_unmasked_and_named() {
        let (found, used) = frames(&MASKED_HELLO).unwrap();
        assert_eq!(used, MASKED_HELLO.len());
        assert_eq!(found.len(), 1);
        let frame = &found[0];
        assert_eq!(frame.payload, b"Hello");
        assert_eq!(frame.wire_len(), 11);
        assert_eq!(
            frame.header_line(),
            "FIN=1 RSV=000 opcode=0x1 text   MASK=1 key=37 fa 21 3d  len=5 (7-bit)"
        );
        assert_eq!(frame.payload_line(), "\"Hello\"");
    }

    #[test]
    fn rfc6455_5_7_unmasked_fragments_found_in_one_buffer() {
        // "Hel" (FIN=0) then "lo" (continuation, FIN=1): two frames stuck together.
        let wire = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        let (found, used) = frames(&wire).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(found.len(), 2);
        assert!(!found[0].header.fin);
        assert_eq!(found[1].offset, 5);
        assert!(found[1]
            .header_line()
            .starts_with("FIN=1 RSV=000 opcode=0x0 cont"));
    }

    #[test]
    fn incomplete_last_frame_is_left_for_the_next_read() {
        for cut in 0..MASKED_HELLO.len() {
            let (found, used) = frames(&MASKED_HELLO[..cut]).unwrap();
            assert!(found.is_empty(), "cut at {cut}");
            assert_eq!(used, 0);
        }
    }

    #[test]
    fn rfc6455_5_2_length_encodings_at_their_limits() {
        assert_eq!(length_encoding(125), "7-bit");
        assert_eq!(length_encoding(126), "16-bit: 126 + 2 bytes");
        assert_eq!(length_encoding(65_535), "16-bit: 126 + 2 bytes");
        assert_eq!(length_encoding(65_536), "64-bit: 127 + 8 bytes");
    }

    #[test]
    fn rfc6455_5_2_non_minimal_length_is_an_error() {
        // 16-bit length field holding 5.
        let wire = [0x82, 0x7e, 0x00, 0x05];
        assert!(matches!(
            frames(&wire),
            Err(tether::codec::Error::NonMinimalLength { len: 5, width: 2 })
        ));
    }

    #[test]
    fn close_payload_shows_code_and_reason() {
        let wire = b"\x88\x06\x03\xe8done";
        let (found, _) = frames(wire).unwrap();
        assert_eq!(found[0].payload_line(), "code 1000 reason \"done\"");
    }

    #[test]
    fn hex_and_quote_abbreviate_past_their_limit() {
        assert_eq!(hex(&[1, 2, 3], 3), "01 02 03");
        assert_eq!(hex(&[1, 2, 3, 4], 3), "01 02 03 .. (+1 byte)");
        assert_eq!(hex(&[1, 2, 3, 4, 5], 3), "01 02 03 .. (+2 bytes)");
        let exact = "a".repeat(PREVIEW);
        assert_eq!(quote(&exact), format!("{exact:?}"));
        let long = "a".repeat(PREVIEW + 1);
        assert!(quote(&long).ends_with(".. (+1 chars)"));
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_048_576), "1,048,576");
    }
}
