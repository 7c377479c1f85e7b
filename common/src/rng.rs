//! A small portable PRNG (SplitMix64) and the permutations built from it.
//!
//! Every worker must agree on the train/test split and on the training subset of a trial, whatever
//! its device or library versions, so these come from this fixed, documented algorithm rather
//! than from libtorch's or `rand`'s generators.

/// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, fixed output sequence for a given seed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one named stream of a seed, so that independent uses of one seed
    /// (the split, the subset, each epoch's shuffle) do not share a sequence.
    pub fn for_stream(seed: u64, stream: &str, index: u64) -> Self {
        // FNV-1a over the stream name, mixed with the seed and index.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let mut g = Self::new(seed ^ h);
        let a = g.next_u64();
        Self::new(a ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            // Truncation keeps the low 64 bits, which is the point of Lemire's method.
            let low = m as u64;
            if low >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniformly random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        self.shuffle(&mut p);
        p
    }

    /// Shuffles `items` in place (Fisher-Yates, from the back).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Reference outputs of SplitMix64 seeded with 1234567 (from the algorithm's C reference).
        let mut g = SplitMix64::new(1_234_567);
        assert_eq!(g.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(g.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(g.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn permutation_is_a_permutation_and_stable() {
        let p = SplitMix64::for_stream(7, "split", 0).permutation(1000);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
        assert_eq!(p, SplitMix64::for_stream(7, "split", 0).permutation(1000));
        assert_ne!(p, SplitMix64::for_stream(7, "split", 1).permutation(1000));
        assert_ne!(p, SplitMix64::for_stream(8, "split", 0).permutation(1000));
    }

    #[test]
    fn below_stays_in_range() {
        let mut g = SplitMix64::new(3);
        for bound in [1u64, 2, 3, 10, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(g.below(bound) < bound);
            }
        }
    }
}
