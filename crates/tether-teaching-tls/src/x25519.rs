//! The X25519 ephemeral key of ECDHE (RFC 4492 as updated for X25519, RFC 7748), drawn from
//! the configured [`RandomSource`].
//!
//! ring's `EphemeralPrivateKey::generate` only accepts ring's own, sealed `SecureRandom`,
//! so it cannot draw from a [`RandomSource`]; `x25519-dalek` (the dalek-cryptography
//! project's constant-time implementation) builds a key from 32 bytes we supply. That is
//! what lets a seeded source replay a whole ECDHE handshake byte for byte.
//!
//! Why a crate and not X25519 written here as part of the lesson: this crate teaches the
//! TLS handshake (what each side knows after each message, where every secret comes from),
//! and X25519 is one call in it. Field arithmetic mod 2^255 - 19 that is correct *and*
//! constant-time is a subject of its own, where a subtle carry bug passes the RFC 7748
//! vectors and still leaks or miscomputes for rare inputs; a widely reviewed implementation
//! lets the lesson stay on the protocol. RFC 7748 itself (section 5) is the reading for the
//! curve.

use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::Error;
use crate::random::RandomSource;

/// One side's ephemeral X25519 key: used for one agreement, then dropped (and zeroized).
pub(crate) struct EphemeralKey {
    secret: StaticSecret,
    public: PublicKey,
}

impl EphemeralKey {
    /// A fresh key from 32 bytes of `random` (RFC 7748 section 5: the scalar is clamped
    /// when it is used, so any 32 bytes make a valid key).
    pub(crate) fn generate(random: &dyn RandomSource) -> Result<Self, Error> {
        let mut scalar = [0u8; 32];
        random.fill(&mut scalar)?;
        let secret = StaticSecret::from(scalar);
        let public = PublicKey::from(&secret);
        Ok(Self { secret, public })
    }

    /// The public half, as sent in ServerKeyExchange or ClientKeyExchange.
    pub(crate) fn public(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// The premaster: X25519(our secret, the peer's public key). `None` when the peer's
    /// key is not 32 bytes or is a low-order point (the result would be all zeros, known
    /// to anyone: RFC 7748 section 6.1 lets a party abort then, and we do).
    pub(crate) fn agree(self, peer_public: &[u8]) -> Option<[u8; 32]> {
        let peer: [u8; 32] = peer_public.try_into().ok()?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        shared.was_contributory().then(|| shared.to_bytes())
    }
}

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralKey")
            .field("public", &crate::wire::hex(self.public.as_bytes()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same bytes every time, for reproducibility.
    struct Fixed(u8);
    impl RandomSource for Fixed {
        fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
            dest.fill(self.0);
            Ok(())
        }
    }

    /// These 32 bytes, as the secret scalar.
    struct Bytes([u8; 32]);
    impl RandomSource for Bytes {
        fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
            dest.copy_from_slice(&self.0);
            Ok(())
        }
    }

    #[test]
    fn rfc7748_section_6_1_both_sides_agree() {
        // RFC 7748 section 6.1 test vector.
        let alice_private: [u8; 32] =
            hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let bob_public = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let alice = EphemeralKey::generate(&Bytes(alice_private)).unwrap();
        assert_eq!(
            alice.public(),
            &hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        assert_eq!(alice.agree(&bob_public), Some(shared));
    }

    #[test]
    fn rfc7748_section_5_2_scalar_multiplication_vector() {
        // RFC 7748 section 5.2, first X25519 vector: scalar, input u-coordinate, output.
        let scalar = hex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
        let u = hex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
        let key = EphemeralKey::generate(&Bytes(scalar)).unwrap();
        assert_eq!(
            key.agree(&u),
            Some(hex32(
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
            ))
        );
    }

    #[test]
    fn a_seeded_source_gives_the_same_key() {
        let a = EphemeralKey::generate(&Fixed(7)).unwrap();
        let b = EphemeralKey::generate(&Fixed(7)).unwrap();
        let c = EphemeralKey::generate(&Fixed(8)).unwrap();
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
    }

    #[test]
    fn rfc7748_section_6_1_low_order_or_short_peer_key_is_refused() {
        let key = EphemeralKey::generate(&Fixed(7)).unwrap();
        assert_eq!(key.agree(&[0u8; 32]), None);
        let key = EphemeralKey::generate(&Fixed(7)).unwrap();
        assert_eq!(key.agree(&[9u8; 31]), None);
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
