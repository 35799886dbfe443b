//! The TLS 1.2 pseudo-random function and the secrets derived with it (RFC 5246 section 5,
//! 6.3, 7.4.9, 8.1).
//!
//! ```text
//! P_SHA256(secret, seed) = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...
//!     A(0) = seed, A(i) = HMAC(secret, A(i-1))
//! PRF(secret, label, seed) = P_SHA256(secret, label + seed)
//!
//! master_secret = PRF(pre_master_secret, "master secret",
//!                     ClientHello.random + ServerHello.random)[0..47]
//! key_block     = PRF(master_secret, "key expansion",
//!                     ServerHello.random + ClientHello.random)
//! verify_data   = PRF(master_secret, "client finished" | "server finished",
//!                     SHA-256(handshake_messages))[0..11]
//! ```

use ring::hmac;

use crate::suite::CipherSuite;

/// Length of the master secret (RFC 5246 section 8.1).
pub const MASTER_SECRET_LEN: usize = 48;
/// Length of `verify_data` in Finished (RFC 5246 section 7.4.9).
pub const VERIFY_DATA_LEN: usize = 12;

/// The TLS 1.2 PRF with HMAC-SHA256 (RFC 5246 section 5): fills `out` with
/// `P_SHA256(secret, label + seed)`.
///
/// ```
/// let mut out = [0u8; 4];
/// tether_teaching_tls::prf(b"secret", b"label", b"seed", &mut out);
/// let mut again = [0u8; 4];
/// tether_teaching_tls::prf(b"secret", b"label", b"seed", &mut again);
/// assert_eq!(out, again);
/// ```
pub fn prf(secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut label_seed = Vec::with_capacity(label.len() + seed.len());
    label_seed.extend_from_slice(label);
    label_seed.extend_from_slice(seed);

    // A(1) = HMAC(secret, A(0)) with A(0) = label + seed.
    let mut a = hmac::sign(&key, &label_seed);
    let mut filled = 0;
    while filled < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&label_seed);
        let block = ctx.sign();
        let n = (out.len() - filled).min(block.as_ref().len());
        out[filled..filled + n].copy_from_slice(&block.as_ref()[..n]);
        filled += n;
        a = hmac::sign(&key, a.as_ref());
    }
}

/// `master_secret` from the premaster and both randoms (RFC 5246 section 8.1).
pub fn master_secret(
    pre_master_secret: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> [u8; MASTER_SECRET_LEN] {
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(client_random);
    seed[32..].copy_from_slice(server_random);
    let mut out = [0u8; MASTER_SECRET_LEN];
    prf(pre_master_secret, b"master secret", &seed, &mut out);
    out
}

/// The keys of an AEAD suite, cut from the key block (RFC 5246 section 6.3; an AEAD suite
/// has no MAC keys). AES-128-GCM: 16-byte keys and 4-byte implicit IVs (RFC 5288 section
/// 3); ChaCha20-Poly1305: 32-byte keys and 12-byte IVs (RFC 7905 section 2).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyBlock {
    /// `client_write_key`: what the client encrypts with.
    pub client_write_key: Vec<u8>,
    /// `server_write_key`: what the server encrypts with.
    pub server_write_key: Vec<u8>,
    /// `client_write_IV`: the salt (or IV) of the client's nonces.
    pub client_write_iv: Vec<u8>,
    /// `server_write_IV`: the salt (or IV) of the server's nonces.
    pub server_write_iv: Vec<u8>,
}

impl std::fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBlock { .. }")
    }
}

/// The key block of `suite` (RFC 5246 section 6.3): 40 bytes for AES-128-GCM, 88 for
/// ChaCha20-Poly1305.
///
/// ```
/// use tether_teaching_tls::{key_block, CipherSuite};
/// let kb = key_block(CipherSuite::RSA_WITH_AES_128_GCM_SHA256, &[1; 48], &[2; 32], &[3; 32]);
/// assert_eq!((kb.client_write_key.len(), kb.client_write_iv.len()), (16, 4));
/// ```
pub fn key_block(
    suite: CipherSuite,
    master_secret: &[u8; MASTER_SECRET_LEN],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> KeyBlock {
    let aead = suite.aead();
    let (k, iv) = (aead.key_len(), aead.iv_len());
    let mut seed = [0u8; 64];
    // Note the order: server random first for the key expansion.
    seed[..32].copy_from_slice(server_random);
    seed[32..].copy_from_slice(client_random);
    let mut raw = vec![0u8; 2 * (k + iv)];
    prf(master_secret, b"key expansion", &seed, &mut raw);
    KeyBlock {
        client_write_key: raw[..k].to_vec(),
        server_write_key: raw[k..2 * k].to_vec(),
        client_write_iv: raw[2 * k..2 * k + iv].to_vec(),
        server_write_iv: raw[2 * k + iv..].to_vec(),
    }
}

/// `verify_data` of a Finished message (RFC 5246 section 7.4.9).
pub(crate) fn verify_data(
    master_secret: &[u8; MASTER_SECRET_LEN],
    label: &[u8],
    handshake_hash: &[u8],
) -> [u8; VERIFY_DATA_LEN] {
    let mut out = [0u8; VERIFY_DATA_LEN];
    prf(master_secret, label, handshake_hash, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The published TLS 1.2 PRF (SHA-256) vector, posted to the IETF TLS list
    /// (msg03416) and reproduced by several implementations.
    #[test]
    fn rfc5246_5_prf_sha256_published_vector() {
        let secret = unhex("9bbe436ba940f017b17652849a71db35");
        let seed = unhex("a0ba9f936cda311827a6f796ffd5198c");
        let expected = unhex(
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a
             6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab
             4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
             87347b66",
        );
        let mut out = vec![0u8; 100];
        prf(&secret, b"test label", &seed, &mut out);
        assert_eq!(out, expected);
    }

    /// Shorter outputs are prefixes of longer ones: the PRF is a stream.
    #[test]
    fn rfc5246_5_prf_output_is_a_prefix_stream() {
        let mut long = [0u8; 80];
        let mut short = [0u8; 33];
        prf(b"k", b"l", b"s", &mut long);
        prf(b"k", b"l", b"s", &mut short);
        assert_eq!(&long[..33], &short[..]);
    }

    /// Master secret and key block, checked against OpenSSL's own TLS1-PRF:
    /// `openssl kdf -keylen 48 -kdfopt digest:SHA256 -kdfopt hexsecret:<pms>
    ///  -kdfopt seed:"master secret" -kdfopt hexseed:<cr><sr> TLS1-PRF`, and likewise
    /// for "key expansion" with the randoms swapped.
    #[test]
    fn rfc5246_8_1_and_6_3_master_secret_and_key_block_match_openssl() {
        let pms = [0x03u8; 48];
        let cr = [0x11u8; 32];
        let sr = [0x22u8; 32];
        let ms = master_secret(&pms, &cr, &sr);
        assert_eq!(ms.to_vec(), unhex(OPENSSL_MASTER));
        let kb = key_block(CipherSuite::RSA_WITH_AES_128_GCM_SHA256, &ms, &cr, &sr);
        let mut joined = Vec::new();
        joined.extend_from_slice(&kb.client_write_key);
        joined.extend_from_slice(&kb.server_write_key);
        joined.extend_from_slice(&kb.client_write_iv);
        joined.extend_from_slice(&kb.server_write_iv);
        assert_eq!(joined, unhex(OPENSSL_KEY_BLOCK));
    }

    /// RFC 7905: the ChaCha20-Poly1305 key block is 88 bytes of the same PRF stream, from
    /// `openssl kdf -keylen 88 ...` as above.
    #[test]
    fn rfc7905_chacha20_key_block_matches_openssl() {
        let ms = master_secret(&[0x03u8; 48], &[0x11u8; 32], &[0x22u8; 32]);
        let kb = key_block(
            CipherSuite::ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            &ms,
            &[0x11u8; 32],
            &[0x22u8; 32],
        );
        let joined = [
            kb.client_write_key,
            kb.server_write_key,
            kb.client_write_iv,
            kb.server_write_iv,
        ]
        .concat();
        assert_eq!(joined, unhex(OPENSSL_CHACHA_KEY_BLOCK));
    }

    const OPENSSL_MASTER: &str = "7da031d00784132d923d018deb085aaa2303bd551494544ff687cf987cf48efe17f3cd6d3d9a0771800ee1cc9e137a21";
    const OPENSSL_KEY_BLOCK: &str =
        "e8eeac00e7a5298661cc459dcf2ece5a0978d3e5dc1d94212f2b34f4bf58a8e57a65a8759c1d903f";
    const OPENSSL_CHACHA_KEY_BLOCK: &str = "e8eeac00e7a5298661cc459dcf2ece5a0978d3e5dc1d94212f2b34f4bf58a8e57a65a8759c1d903f2c7aff8e19680783a223dc402d13c4603c0ea428d98528c745a9451d5a17915aab40d12ddf775ed87f276cf66e5f0e89";
}
