//! Payload masking (RFC 6455 §5.3).
//!
//! "Octet i of the transformed data is the XOR of octet i of the original data with octet at
//! index i modulo 4 of the masking key." Masking and unmasking are the same operation.
//!
//! The fast path XORs 32-byte blocks against a key pattern of the same length; the loop has a
//! constant trip count, so the compiler turns it into a few vector XORs without `unsafe`.

/// Bytes per block of the fast path; a multiple of 4 so every block starts at key phase 0.
const BLOCK: usize = 32;

/// Masks (or unmasks) `buf` in place with `key`, starting at the beginning of the payload.
///
/// ```
/// use tether_codec::apply_mask;
/// // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
/// let mut data = *b"Hello";
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d]);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    apply_mask_offset(buf, key, 0);
}

/// Masks (or unmasks) `buf` in place with `key`, where `buf[0]` is byte `offset` of the payload.
///
/// This resumes masking in the middle of a payload that arrives in pieces: masking the pieces
/// one by one with their offsets gives the same bytes as masking the whole payload.
///
/// ```
/// use tether_codec::{apply_mask, apply_mask_offset};
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"split across reads";
/// apply_mask(&mut whole, key);
/// let mut pieces = *b"split across reads";
/// let (a, b) = pieces.split_at_mut(7);
/// apply_mask_offset(a, key, 0);
/// apply_mask_offset(b, key, 7);
/// assert_eq!(whole, pieces);
/// ```
pub fn apply_mask_offset(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let phase = offset % 4;
    let key = [
        key[phase],
        key[(phase + 1) % 4],
        key[(phase + 2) % 4],
        key[(phase + 3) % 4],
    ];
    let mut pattern = [0u8; BLOCK];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i % 4];
    }
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(pattern.iter()) {
            *b ^= *k;
        }
    }
    for (i, b) in blocks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc6455_5_3_fast_path_equals_bytewise_at_every_length_alignment_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let source: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..(source.len() - start) {
                for offset in 0..4 {
                    let mut fast = source.clone();
                    let mut slow = source.clone();
                    apply_mask_offset(&mut fast[start..start + len], key, offset);
                    reference(&mut slow[start..start + len], key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }
}
