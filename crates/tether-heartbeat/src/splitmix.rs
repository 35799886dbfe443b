//! SplitMix64: the seedable generator behind the jitter, the nonces and the backoff.
//!
//! One generator for the whole crate: a supervisor draws its seed once (from the OS, or
//! [`SupervisorConfig::set_seed`](crate::SupervisorConfig::set_seed) for reproducible runs)
//! and hands each part a seed of its own. It is fast and small, and not for anything secret.

/// SplitMix64 step: a small, seedable generator for jitter (not for anything secret).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to `[0, 1)`.
pub(crate) fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_stays_within_zero_and_one() {
        assert_eq!(unit(0), 0.0);
        assert!(unit(u64::MAX) < 1.0);
        let mut state = 1;
        let first = splitmix64(&mut state);
        assert_ne!(first, splitmix64(&mut state), "the state advances");
    }
}
