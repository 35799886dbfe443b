//! The one source of randomness: the randoms, the premaster, the ephemeral X25519 keys,
//! the RSA fallback and the RSA encryption padding all come from ring's `SystemRandom`,
//! the operating system's CSPRNG. The lesson: every secret of the handshake is only as good
//! as this source.
//!
//! ring draws X25519 keys through its own (sealed) `SecureRandom` trait, and the `rsa`
//! crate wants a `rand` generator for the PKCS#1 v1.5 padding: [`rsa_padding`] gives it a
//! ChaCha generator seeded from the same source, so there is one source, not two.

use rand::SeedableRng;
use ring::rand::SecureRandom;

use crate::error::Error;

/// A generator for the `rsa` crate's encryption padding, seeded from `rng`.
pub(crate) fn rsa_padding(rng: &dyn SecureRandom) -> Result<rand::rngs::StdRng, Error> {
    let mut seed = [0u8; 32];
    rng.fill(&mut seed).map_err(|_| Error::Crypto {
        what: "system randomness",
    })?;
    Ok(rand::rngs::StdRng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn each_padding_generator_is_freshly_seeded() {
        let rng = ring::rand::SystemRandom::new();
        let a = rsa_padding(&rng).unwrap().next_u64();
        let b = rsa_padding(&rng).unwrap().next_u64();
        assert_ne!(a, b);
    }
}
