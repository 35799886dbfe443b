//! The record layer (RFC 5246 section 6.2) and AES-128-GCM protection (RFC 5288).
//!
//! ```text
//!  record:  type(1) | version(2) = 03 03 | length(2) | fragment(length)
//!
//!  protected fragment (RFC 5288 section 3):
//!      explicit nonce (8) | AES-128-GCM ciphertext (n) | tag (16)
//!  nonce = implicit salt from the key block (4) | explicit nonce (8)
//!  additional data = seq_num(8) | type(1) | version(2) | plaintext length(2)
//! ```
//!
//! TCP delivers a byte stream: a read may end inside a record header, inside a fragment, or
//! hold several records (拆包/粘包). [`split_record`] is a push parser: given too few bytes
//! it consumes nothing and says so; the length in the header is checked against the limit
//! before anything waits for the body.

use ring::aead;

use crate::error::Error;
use crate::suite::{Aead, CipherSuite};

/// Largest plaintext fragment, 2^14 bytes (RFC 5246 section 6.2.1).
pub const MAX_FRAGMENT_LEN: usize = 1 << 14;
/// Largest protected fragment, 2^14 + 2048 bytes (RFC 5246 section 6.2.3).
pub(crate) const MAX_CIPHERTEXT_LEN: usize = MAX_FRAGMENT_LEN + 2048;
/// Record header length.
pub(crate) const HEADER_LEN: usize = 5;
/// The AEAD tag length of both suites' ciphers.
pub(crate) const TAG_LEN: usize = 16;

/// The record content types (RFC 5246 section 6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentType {
    ChangeCipherSpec,
    Alert,
    Handshake,
    ApplicationData,
}

impl ContentType {
    pub(crate) fn byte(self) -> u8 {
        match self {
            ContentType::ChangeCipherSpec => 0x14,
            ContentType::Alert => 0x15,
            ContentType::Handshake => 0x16,
            ContentType::ApplicationData => 0x17,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x14 => ContentType::ChangeCipherSpec,
            0x15 => ContentType::Alert,
            0x16 => ContentType::Handshake,
            0x17 => ContentType::ApplicationData,
            _ => return None,
        })
    }
}

/// One record split off the front of a byte stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    pub(crate) content_type: ContentType,
    pub(crate) version: u16,
    pub(crate) fragment: &'a [u8],
}

/// Splits the first complete record off `buf`.
///
/// `Ok(None)`: not enough bytes yet (nothing consumed). `Ok(Some((record, n)))`: the record
/// and how many bytes it took. The length is checked against `limit` as soon as the header
/// is complete.
pub(crate) fn split_record(
    buf: &[u8],
    limit: usize,
) -> Result<Option<(RawRecord<'_>, usize)>, Error> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let content_type = ContentType::from_byte(buf[0]).ok_or(Error::Decode {
        what: "record content type",
    })?;
    let version = u16::from_be_bytes([buf[1], buf[2]]);
    // RFC 5246 appendix E.1: the record version of an initial ClientHello may be any
    // 0x03XX; we never accept anything outside TLS's major version 3.
    if buf[1] != 0x03 {
        return Err(Error::UnsupportedVersion { version });
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len > limit {
        return Err(Error::RecordOverflow { len, limit });
    }
    // RFC 5246 section 6.2.1: "Implementations MUST NOT send zero-length fragments of
    // Handshake, Alert, or ChangeCipherSpec content types."
    if len == 0 && content_type != ContentType::ApplicationData {
        return Err(Error::Decode {
            what: "empty record",
        });
    }
    let Some(fragment) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    Ok(Some((
        RawRecord {
            content_type,
            version,
            fragment,
        },
        HEADER_LEN + len,
    )))
}

/// Appends one record with header to `out`.
pub(crate) fn write_record(out: &mut Vec<u8>, content_type: ContentType, fragment: &[u8]) {
    out.push(content_type.byte());
    out.extend_from_slice(&[0x03, 0x03]);
    // Callers pass fragments of at most MAX_CIPHERTEXT_LEN bytes, far below u16::MAX.
    out.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    out.extend_from_slice(fragment);
}

/// AEAD protection of one direction, with its sequence number (RFC 5246 section 6.1: "Each
/// connection state contains a sequence number ... set to zero whenever a connection state
/// is made active").
pub(crate) struct RecordCipher {
    aead: Aead,
    key: aead::LessSafeKey,
    iv: Vec<u8>,
    seq: u64,
}

impl RecordCipher {
    /// A cipher for `suite` with the key and IV from the key block.
    pub(crate) fn new(suite: CipherSuite, key: &[u8], iv: &[u8]) -> Result<Self, Error> {
        let kind = suite.aead();
        let algorithm = match kind {
            Aead::Aes128Gcm => &aead::AES_128_GCM,
            Aead::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        if iv.len() != kind.iv_len() {
            return Err(Error::Crypto {
                what: "record IV length",
            });
        }
        let unbound = aead::UnboundKey::new(algorithm, key)
            .map_err(|_| Error::Crypto { what: "record key" })?;
        Ok(Self {
            aead: kind,
            key: aead::LessSafeKey::new(unbound),
            iv: iv.to_vec(),
            seq: 0,
        })
    }

    fn aad(seq: u64, content_type: ContentType, len: usize) -> aead::Aad<[u8; 13]> {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&seq.to_be_bytes());
        aad[8] = content_type.byte();
        aad[9] = 0x03;
        aad[10] = 0x03;
        // len is at most MAX_FRAGMENT_LEN.
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        aead::Aad::from(aad)
    }

    /// Bytes protection adds to each fragment: explicit nonce and tag.
    pub(crate) fn overhead(&self) -> usize {
        self.aead.explicit_nonce_len() + TAG_LEN
    }

    /// The explicit nonce of a protected fragment (empty for ChaCha20-Poly1305).
    pub(crate) fn explicit_nonce<'a>(&self, fragment: &'a [u8]) -> &'a [u8] {
        &fragment[..self.aead.explicit_nonce_len().min(fragment.len())]
    }

    /// The AEAD's name, for the transcript.
    pub(crate) fn name(&self) -> &'static str {
        self.aead.name()
    }

    /// Encrypts `plaintext` (at most 2^14 bytes) into a complete record appended to `out`.
    ///
    /// AES-128-GCM, RFC 5288 section 3: "The nonce_explicit MAY be the 64-bit sequence
    /// number." We use the sequence number, so a nonce never repeats under one key.
    /// ChaCha20-Poly1305, RFC 7905 section 2: the nonce is the IV XOR the sequence number.
    pub(crate) fn seal(
        &mut self,
        content_type: ContentType,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let seq = self.seq;
        // RFC 5246 section 6.1: "Sequence numbers ... MUST NOT wrap."
        self.seq = seq.checked_add(1).ok_or(Error::Crypto {
            what: "sequence number exhausted",
        })?;
        let explicit_len = self.aead.explicit_nonce_len();
        let mut fragment = Vec::with_capacity(plaintext.len() + self.overhead());
        fragment.extend_from_slice(&seq.to_be_bytes()[..explicit_len]);
        fragment.extend_from_slice(plaintext);
        let nonce = self.nonce(seq, &seq.to_be_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce,
                Self::aad(seq, content_type, plaintext.len()),
                &mut fragment[explicit_len..],
            )
            .map_err(|_| Error::Crypto {
                what: "record seal",
            })?;
        fragment.extend_from_slice(tag.as_ref());
        write_record(out, content_type, &fragment);
        Ok(())
    }

    /// Decrypts one protected fragment. A tampered, replayed or reordered record fails
    /// here: the sequence number this side expects is part of the authenticated data (and,
    /// for ChaCha20-Poly1305, of the nonce).
    pub(crate) fn open(
        &mut self,
        content_type: ContentType,
        fragment: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let overhead = self.overhead();
        if fragment.len() < overhead {
            return Err(Error::BadRecordMac);
        }
        let plain_len = fragment.len() - overhead;
        if plain_len > MAX_FRAGMENT_LEN {
            return Err(Error::RecordOverflow {
                len: plain_len,
                limit: MAX_FRAGMENT_LEN,
            });
        }
        let explicit_len = self.aead.explicit_nonce_len();
        let mut explicit = [0u8; 8];
        explicit[..explicit_len].copy_from_slice(&fragment[..explicit_len]);
        let mut body = fragment[explicit_len..].to_vec();
        let seq = self.seq;
        let plain = self
            .key
            .open_in_place(
                self.nonce(seq, &explicit),
                Self::aad(seq, content_type, plain_len),
                &mut body,
            )
            .map_err(|_| Error::BadRecordMac)?;
        let plain = plain.to_vec();
        self.seq = seq.checked_add(1).ok_or(Error::BadRecordMac)?;
        Ok(plain)
    }

    fn nonce(&self, seq: u64, explicit: &[u8; 8]) -> aead::Nonce {
        let mut n = [0u8; 12];
        match self.aead {
            Aead::Aes128Gcm => {
                n[..4].copy_from_slice(&self.iv);
                n[4..].copy_from_slice(explicit);
            }
            Aead::ChaCha20Poly1305 => {
                n.copy_from_slice(&self.iv);
                for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
                    *b ^= s;
                }
            }
        }
        aead::Nonce::assume_unique_for_key(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GCM_OVERHEAD: usize = 8 + TAG_LEN;

    fn pair() -> (RecordCipher, RecordCipher) {
        pair_for(CipherSuite::RSA_WITH_AES_128_GCM_SHA256)
    }

    fn pair_for(suite: CipherSuite) -> (RecordCipher, RecordCipher) {
        let key = vec![7u8; suite.aead().key_len()];
        let iv = vec![3u8; suite.aead().iv_len()];
        (
            RecordCipher::new(suite, &key, &iv).unwrap(),
            RecordCipher::new(suite, &key, &iv).unwrap(),
        )
    }

    #[test]
    fn rfc7905_2_chacha20_records_have_no_explicit_nonce_and_track_sequence() {
        let (mut tx, mut rx) = pair_for(CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256);
        let first = seal_one(&mut tx, b"hello");
        let second = seal_one(&mut tx, b"hello");
        let (raw, _) = split_record(&first, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert_eq!(raw.fragment.len(), 5 + TAG_LEN);
        // Same plaintext, different nonce: different ciphertext.
        assert_ne!(first, second);
        // Out of order fails, in order works.
        let (raw2, _) = split_record(&second, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(raw2.content_type, raw2.fragment),
            Err(Error::BadRecordMac)
        ));
        assert_eq!(rx.open(raw.content_type, raw.fragment).unwrap(), b"hello");
    }

    fn seal_one(tx: &mut RecordCipher, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        tx.seal(ContentType::ApplicationData, data, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn rfc5288_3_seal_then_open_round_trips() {
        let (mut tx, mut rx) = pair();
        let rec = seal_one(&mut tx, b"hello");
        let (raw, n) = split_record(&rec, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert_eq!(n, rec.len());
        assert_eq!(raw.fragment.len(), 5 + GCM_OVERHEAD);
        assert_eq!(&raw.fragment[..8], &0u64.to_be_bytes());
        assert_eq!(rx.open(raw.content_type, raw.fragment).unwrap(), b"hello");
    }

    #[test]
    fn rfc5246_6_2_3_tampered_record_fails() {
        let (mut tx, mut rx) = pair();
        let mut rec = seal_one(&mut tx, b"hello");
        let last = rec.len() - 1;
        rec[last] ^= 1;
        let (raw, _) = split_record(&rec, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(raw.content_type, raw.fragment),
            Err(Error::BadRecordMac)
        ));
    }

    #[test]
    fn rfc5246_6_1_replayed_and_reordered_records_fail() {
        let (mut tx, mut rx) = pair();
        let first = seal_one(&mut tx, b"one");
        let second = seal_one(&mut tx, b"two");
        // Reordered: the second record arrives first.
        let (raw, _) = split_record(&second, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(raw.content_type, raw.fragment),
            Err(Error::BadRecordMac)
        ));
        // In order works, a replay of the first does not.
        let (raw, _) = split_record(&first, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert_eq!(rx.open(raw.content_type, raw.fragment).unwrap(), b"one");
        let (raw, _) = split_record(&first, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(raw.content_type, raw.fragment),
            Err(Error::BadRecordMac)
        ));
    }

    #[test]
    fn changing_the_content_type_fails_authentication() {
        let (mut tx, mut rx) = pair();
        let rec = seal_one(&mut tx, b"x");
        let (raw, _) = split_record(&rec, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(ContentType::Handshake, raw.fragment),
            Err(Error::BadRecordMac)
        ));
    }

    #[test]
    fn partial_records_consume_nothing_at_every_split() {
        let (mut tx, _) = pair();
        let rec = seal_one(&mut tx, b"split me");
        for cut in 0..rec.len() {
            assert!(
                split_record(&rec[..cut], MAX_CIPHERTEXT_LEN)
                    .unwrap()
                    .is_none(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn two_records_in_one_read_are_split_apart() {
        let (mut tx, _) = pair();
        let mut both = seal_one(&mut tx, b"a");
        let first_len = both.len();
        both.extend(seal_one(&mut tx, b"bb"));
        let (_, n) = split_record(&both, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert_eq!(n, first_len);
        let (raw, _) = split_record(&both[n..], MAX_CIPHERTEXT_LEN)
            .unwrap()
            .unwrap();
        assert_eq!(raw.fragment.len(), 2 + GCM_OVERHEAD);
    }

    #[test]
    fn rfc5246_6_2_3_record_length_limit_at_and_past() {
        let mut at = vec![0x17, 0x03, 0x03];
        at.extend_from_slice(&(MAX_CIPHERTEXT_LEN as u16).to_be_bytes());
        // Only the header: at the limit we wait for the body.
        assert!(split_record(&at, MAX_CIPHERTEXT_LEN).unwrap().is_none());
        let mut past = vec![0x17, 0x03, 0x03];
        past.extend_from_slice(&((MAX_CIPHERTEXT_LEN + 1) as u16).to_be_bytes());
        assert!(matches!(
            split_record(&past, MAX_CIPHERTEXT_LEN),
            Err(Error::RecordOverflow { len, limit }) if len == MAX_CIPHERTEXT_LEN + 1 && limit == MAX_CIPHERTEXT_LEN
        ));
    }

    #[test]
    fn rfc5246_6_2_1_plaintext_limit_at_and_past() {
        let (mut tx, mut rx) = pair();
        let rec = seal_one(&mut tx, &vec![0u8; MAX_FRAGMENT_LEN]);
        let (raw, _) = split_record(&rec, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert_eq!(
            rx.open(raw.content_type, raw.fragment).unwrap().len(),
            MAX_FRAGMENT_LEN
        );
        // One byte more is refused before decryption.
        let (mut tx, mut rx) = pair();
        let rec = seal_one(&mut tx, &vec![0u8; MAX_FRAGMENT_LEN + 1]);
        let (raw, _) = split_record(&rec, MAX_CIPHERTEXT_LEN).unwrap().unwrap();
        assert!(matches!(
            rx.open(raw.content_type, raw.fragment),
            Err(Error::RecordOverflow { len, .. }) if len == MAX_FRAGMENT_LEN + 1
        ));
    }

    #[test]
    fn non_tls_bytes_are_refused() {
        assert!(matches!(
            split_record(b"GET / HTTP/1.1\r\n", MAX_CIPHERTEXT_LEN),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            split_record(&[0x16, 0x02, 0x00, 0x00, 0x01], MAX_CIPHERTEXT_LEN),
            Err(Error::UnsupportedVersion { version: 0x0200 })
        ));
    }
}
