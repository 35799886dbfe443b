//! Payload masking (RFC 6455 §5.3).
//!
//! "Octet i of the transformed data is the XOR of octet i of the original data with octet at
//! index i modulo 4 of the masking key." Masking and unmasking are the same operation.
//!
//! The fast path XORs 64-byte blocks against a key pattern of the same length; the loop has a
//! constant trip count, so the compiler turns it into a few vector XORs without `unsafe`. On
//! x86-64 the same loop is also compiled for AVX2 and chosen at run time when the CPU has it.

use bytes::BytesMut;

/// Bytes per block of the fast path; a multiple of 4 so every block starts at key phase 0.
const BLOCK: usize = 64;

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
    let key = rotate(key, offset);
    let mut rest = buf;
    if rest.len() >= BLOCK {
        let pattern = pattern(key);
        let done = mask_blocks(rest, &pattern);
        rest = &mut rest[done..];
    }
    // Small payloads (most control frames and chat-sized messages) never reach a full block:
    // eight bytes at a time keeps them cheap too. The key's word twice is its bytes twice in
    // either byte order.
    let key4 = u64::from(u32::from_ne_bytes(key));
    let key8 = (key4 << 32) | key4;
    let mut words = rest.chunks_exact_mut(8);
    for word in &mut words {
        let masked = u64::from_ne_bytes(word.try_into().expect("eight bytes")) ^ key8;
        word.copy_from_slice(&masked.to_ne_bytes());
    }
    for (b, k) in words.into_remainder().iter_mut().zip(key.iter().cycle()) {
        *b ^= *k;
    }
}

/// Masks every whole [`BLOCK`] of `buf` with `pattern`; returns how many bytes that was. With
/// AVX2 (checked once per process, then a load and a compare) the same loop is compiled to
/// 32-byte vector XORs, twice as wide as the x86-64 baseline's SSE2.
#[inline]
fn mask_blocks(buf: &mut [u8], pattern: &[u8; BLOCK]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if buf.len() >= WIDE_FROM && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU runs AVX2 instructions: detected just above.
        #[allow(unsafe_code)]
        return unsafe { mask_blocks_avx2(buf, pattern) };
    }
    xor_blocks(buf, pattern)
}

/// Payloads from which the AVX2 loop is worth its feature check.
#[cfg(target_arch = "x86_64")]
const WIDE_FROM: usize = 4 * BLOCK;

/// [`xor_blocks`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask_blocks_avx2(buf: &mut [u8], pattern: &[u8; BLOCK]) -> usize {
    xor_blocks(buf, pattern)
}

/// XORs each whole block of `buf` with `pattern`; the loop has a constant trip count, so the
/// compiler turns it into vector XORs as wide as the target allows, without `unsafe`.
#[inline(always)]
fn xor_blocks(buf: &mut [u8], pattern: &[u8; BLOCK]) -> usize {
    let mut blocks = buf.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(pattern.iter()) {
            *b ^= *k;
        }
    }
    buf.len() / BLOCK * BLOCK
}

/// Appends `src` masked with `key` (from payload offset 0) to `dst`.
///
/// Piece by piece: each piece is masked in place right after it is appended, while it is still
/// in L1 cache, so a large payload is walked through memory once, not copied whole and then
/// walked again to mask it.
pub(crate) fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    /// A multiple of [`BLOCK`], so every piece starts at key phase 0.
    const PIECE: usize = 64 * BLOCK;
    if src.len() > PIECE {
        dst.reserve(src.len());
    }
    for piece in src.chunks(PIECE) {
        let start = dst.len();
        dst.extend_from_slice(piece);
        apply_mask(&mut dst[start..], key);
    }
}

/// The key as seen from payload byte `offset`: rotated by `offset % 4` bytes, as one word.
fn rotate(key: [u8; 4], offset: usize) -> [u8; 4] {
    // Byte `i` of the result is `key[(offset + i) % 4]`: a rotation of the word towards its
    // first byte, whose direction in bits depends on the byte order.
    let bits = 8 * (offset % 4) as u32;
    let word = u32::from_ne_bytes(key);
    let rotated = if cfg!(target_endian = "little") {
        word.rotate_right(bits)
    } else {
        word.rotate_left(bits)
    };
    rotated.to_ne_bytes()
}

/// The key repeated over one block.
fn pattern(key: [u8; 4]) -> [u8; BLOCK] {
    let mut pattern = [0u8; BLOCK];
    for (i, p) in pattern.iter_mut().enumerate() {
        *p = key[i % 4];
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    const WIDE_FROM_ANY: usize = WIDE_FROM;
    #[cfg(not(target_arch = "x86_64"))]
    const WIDE_FROM_ANY: usize = 0;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc6455_5_3_fast_path_equals_bytewise_at_every_length_alignment_and_offset() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        // Past the length where the AVX2 loop takes over, so both loops are compared.
        let source: Vec<u8> = (0..(WIDE_FROM_ANY + 2 * BLOCK + 8) as u32)
            .map(|i| (i * 7 + 3) as u8)
            .collect();
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

    #[test]
    fn rfc6455_5_3_extend_masked_equals_copy_then_mask() {
        let key = [0x01, 0x80, 0x7f, 0xff];
        let source: Vec<u8> = (0..3000u32).map(|i| (i * 31 + 5) as u8).collect();
        for len in (0..300).chain([511, 512, 513, 2047, 2048, 2049, 3000]) {
            let mut expected = source[..len].to_vec();
            reference(&mut expected, key, 0);
            let mut dst = BytesMut::from(&b"hdr"[..]);
            extend_masked(&mut dst, &source[..len], key);
            assert_eq!(&dst[..3], b"hdr");
            assert_eq!(&dst[3..], &expected[..], "len {len}");
        }
    }
}
