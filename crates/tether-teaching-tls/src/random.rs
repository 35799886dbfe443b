//! The one source of randomness, an input like the configuration: the hello randoms, the
//! premaster, the server's RSA fallback premaster, both X25519 ephemeral keys
//! ([`crate::x25519`]), the RSA encryption padding and the blinding of the server's RSA
//! signature and decryption all come from the configured [`RandomSource`] (default:
//! [`SystemRandomSource`], ring's `SystemRandom`, the operating system's CSPRNG). The
//! lesson: every secret of the handshake is only as good as this source; and a seeded
//! source replays a whole handshake byte for byte.
//!
//! ring cannot be given this source (its `SecureRandom` trait is sealed), so nothing here
//! draws through ring: the X25519 keys are made by `x25519-dalek` from the source's bytes,
//! and the RSA operations use the `rsa` crate, which wants a `rand` generator:
//! [`rsa_rng`] gives it a ChaCha generator seeded from the configured source.

use std::fmt;

use rand::SeedableRng;
use ring::rand::SecureRandom;

use crate::error::Error;

/// Where the handshake's random bytes come from.
///
/// The default, [`SystemRandomSource`], is the operating system's CSPRNG. Replace it only
/// to make runs reproducible in tests: a predictable source makes every session readable.
///
/// ```
/// use std::sync::Arc;
/// use tether_teaching_tls::{ClientConfig, Error, RandomSource};
///
/// /// Test-only: the same bytes every time. Never use outside tests.
/// struct Zeros;
/// impl RandomSource for Zeros {
///     fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
///         dest.fill(0);
///         Ok(())
///     }
/// }
/// let mut config = ClientConfig::default();
/// config.set_random(Arc::new(Zeros));
/// ```
pub trait RandomSource: Send + Sync {
    /// Fills `dest` with random bytes, or fails with [`Error::Crypto`] (the handshake then
    /// fails with that error).
    fn fill(&self, dest: &mut [u8]) -> Result<(), Error>;
}

/// The default [`RandomSource`]: ring's `SystemRandom`, the operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandomSource;

impl RandomSource for SystemRandomSource {
    fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
        ring::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| Error::Crypto {
                what: "system randomness",
            })
    }
}

/// Debug for a configured source: which one cannot be told, only that there is one.
pub(crate) struct Opaque;

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomSource { .. }")
    }
}

/// A generator for the `rsa` crate (encryption padding, blinding), seeded from `source`.
pub(crate) fn rsa_rng(source: &dyn RandomSource) -> Result<rand::rngs::StdRng, Error> {
    let mut seed = [0u8; 32];
    source.fill(&mut seed)?;
    Ok(rand::rngs::StdRng::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn each_rsa_generator_is_freshly_seeded() {
        let a = rsa_rng(&SystemRandomSource).unwrap().next_u64();
        let b = rsa_rng(&SystemRandomSource).unwrap().next_u64();
        assert_ne!(a, b);
    }
}
