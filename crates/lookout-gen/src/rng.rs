//! A small, fully specified pseudo-random generator: xoshiro256** seeded via
//! SplitMix64 from a hash of `(seed, stream, index…)`. Written out here (not
//! taken from a crate) so that the output of this crate is pinned by this
//! file alone and never changes with a dependency upgrade.

/// SplitMix64 finaliser (a bijective 64-bit mixer).
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** state.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator determined only by `parts` (order matters).
    pub(crate) fn from_parts(parts: &[u64]) -> Rng {
        let mut h = 0x6C6F_6F6B_6F75_7467u64; // "lookoutg"
        for &p in parts {
            h = mix64(h ^ mix64(p));
        }
        let mut sm = h;
        let mut s = [0u64; 4];
        for slot in &mut s {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *slot = z ^ (z >> 31);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The generator of record `index` of `stream` under `seed`.
    pub(crate) fn for_record(seed: u64, stream: u64, index: u64) -> Rng {
        Rng::from_parts(&[seed, stream, index])
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (bias < n / 2^64).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a slice of length `n` (`n > 0`).
    pub(crate) fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// True with probability `n / 1000`.
    pub(crate) fn permille(&mut self, n: u64) -> bool {
        self.below(1000) < n
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// Index chosen with probability proportional to `weights` (not all zero).
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        debug_assert!(total > 0);
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            let w = u64::from(w);
            if x < w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Item of `(item, weight)` pairs chosen by weight.
    pub(crate) fn weighted_pick<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            let w = u64::from(*w);
            if x < w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: Vec<u64> = {
            let mut r = Rng::for_record(1, 2, 3);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::for_record(1, 2, 3);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let c: Vec<u64> = {
            let mut r = Rng::for_record(1, 2, 4);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_ne!(a, c);
        let d: Vec<u64> = {
            let mut r = Rng::for_record(1, 3, 3);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_ne!(a, d);
    }

    #[test]
    fn below_and_weighted_stay_in_range() {
        let mut r = Rng::for_record(9, 9, 9);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            assert!(r.below(7) < 7);
            counts[r.weighted(&[1, 2, 7])] += 1;
        }
        assert!((2_400..3_600).contains(&counts[0]), "{counts:?}");
        assert!((19_000..23_000).contains(&counts[2]), "{counts:?}");
    }
}
