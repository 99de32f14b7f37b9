//! The simulator's randomness: SplitMix64, written out so that a seed names the same run on
//! every machine and with every version of every crate (library RNGs reserve the right to
//! change their streams).

/// A seeded generator; every random choice of a simulation comes from one.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits (SplitMix64, Steele, Lea and Flood 2014).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-and-shift; the bias, below
    /// `n / 2^64`, is far under anything a simulation can notice.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below((hi - lo + 1) as usize) as u64
    }

    /// `true` with probability `p`; draws nothing when `p` is 0, so lossless links leave the
    /// stream alone.
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// Fills `bytes` with random bytes.
    pub fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn a_seed_names_one_stream() {
        // SplitMix64's published first output for seed 0.
        assert_eq!(SimRng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }

    #[test]
    fn below_and_between_stay_in_range_and_reach_both_ends() {
        let mut rng = SimRng::new(1);
        let draws: Vec<u64> = (0..1000).map(|_| rng.between(3, 7)).collect();
        assert!(draws.iter().all(|d| (3..=7).contains(d)));
        assert!(draws.contains(&3) && draws.contains(&7));
        assert!((0..1000).all(|_| rng.below(1) == 0));
    }

    #[test]
    fn chance_follows_its_probability() {
        let mut rng = SimRng::new(2);
        let hits = (0..10_000).filter(|_| rng.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }
}
