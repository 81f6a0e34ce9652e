//! Injected randomness: the [`JitterSource`] seam and a seeded, deterministic implementation.

/// A source of uniform values in `[0, 1)`, used to spread refreshes and retries.
///
/// The schedules never read OS randomness themselves: a driver plugs in whatever it has (an
/// OS-seeded generator in production, [`SeededJitter`] or a closure in tests). Jitter only has to
/// de-correlate clients; it needs no cryptographic strength.
///
/// Values outside `[0, 1)` are clamped into it and NaN counts as `0`, so a misbehaving source
/// can skew a schedule but never push it outside its bounds.
///
/// Any `FnMut() -> f64` closure is a source, which makes fixed jitter easy to write:
///
/// ```
/// use meshid_rotation::JitterSource;
///
/// let mut centre = || 0.5;
/// assert_eq!(centre.unit(), 0.5);
/// ```
pub trait JitterSource {
    /// The next value, uniform in `[0, 1)`.
    fn unit(&mut self) -> f64;
}

impl<F: FnMut() -> f64> JitterSource for F {
    fn unit(&mut self) -> f64 {
        self()
    }
}

/// A deterministic SplitMix64 generator: the same seed gives the same sequence on every platform.
///
/// For tests, benchmarks and simulations. It is **not cryptographic** (its output is predictable
/// from a few values); jitter does not need that, but do not use it for anything else.
///
/// ```
/// use meshid_rotation::{JitterSource, SeededJitter};
///
/// let mut a = SeededJitter::new(0x1fed_f00d);
/// let mut b = SeededJitter::new(0x1fed_f00d);
/// let x = a.unit();
/// assert!((0.0..1.0).contains(&x));
/// assert_eq!(x, b.unit());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeededJitter {
    state: u64,
}

impl SeededJitter {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        // SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators").
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl JitterSource for SeededJitter {
    fn unit(&mut self) -> f64 {
        // The top 53 bits, scaled by 2^-53: every value is exactly representable and below 1.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The next value of `source`, forced into `[0, 1)` (NaN becomes 0).
pub(crate) fn unit<J: JitterSource + ?Sized>(source: &mut J) -> f64 {
    let u = source.unit();
    if u >= 1.0 {
        // The largest f64 below 1.
        1.0 - f64::EPSILON / 2.0
    } else if u > 0.0 {
        u
    } else {
        // Zero, negative or NaN.
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_in_range() {
        let mut a = SeededJitter::new(7);
        let mut b = SeededJitter::new(7);
        for _ in 0..10_000 {
            let x = a.unit();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.unit());
        }
        assert_ne!(
            SeededJitter::new(1).next_u64(),
            SeededJitter::new(2).next_u64()
        );
    }

    #[test]
    fn seeded_reference_value() {
        // SplitMix64's published first output for seed 0.
        assert_eq!(SeededJitter::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        assert_eq!(unit(&mut || f64::NAN), 0.0);
        assert_eq!(unit(&mut || -3.0), 0.0);
        assert_eq!(unit(&mut || 0.25), 0.25);
        // One and above become the largest f64 below one.
        let top = unit(&mut || 1.0);
        assert_eq!(top, f64::from_bits(1.0_f64.to_bits() - 1));
        assert_eq!(unit(&mut || 7.5), top);
        assert!(unit(&mut || f64::INFINITY) < 1.0);
    }
}
