//! Masking keys for the client role (RFC 6455 §5.3).

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A source of masking keys: a ChaCha-based CSPRNG seeded once from the operating system, so
/// each frame costs a few nanoseconds and no syscall.
///
/// RFC 6455 §5.3: "The masking key needs to be unpredictable; thus, the masking key MUST be
/// derived from a strong source of entropy".
///
/// The facade's clients use it; it is public for callers who drive the sans-IO
/// [`codec::Protocol`](crate::codec::Protocol) as a client themselves.
///
/// ```
/// use tether::codec::{Config, Protocol};
///
/// let mut keys = tether::mask::key_source();
/// assert_ne!((0..4).map(|_| keys()).collect::<Vec<_>>(), [[0u8; 4]; 4]);
/// let client = Protocol::client(Config::default(), tether::mask::key_source());
/// # drop(client);
/// ```
pub fn key_source() -> impl FnMut() -> [u8; 4] + Send + Sync + 'static {
    let mut rng = StdRng::from_entropy();
    // One 32-bit draw per key: `gen::<[u8; 4]>()` draws each byte on its own.
    move || rng.next_u32().to_ne_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_5_3_keys_vary_between_frames_and_sources() {
        let mut a = key_source();
        let mut b = key_source();
        let keys: Vec<[u8; 4]> = (0..64).map(|_| a()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert!(distinct.len() > 60, "keys repeat: {keys:?}");
        assert_ne!((0..4).map(|_| b()).collect::<Vec<_>>(), keys[..4]);
    }
}
