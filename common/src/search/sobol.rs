//! The Sobol low-discrepancy sequence in up to [`MAX_DIMS`] dimensions, with the direction
//! numbers of Joe and Kuo (2008, file `new-joe-kuo-6.21201`), 32 bits per coordinate, and a
//! seeded random digital shift (each coordinate XORed with a per-dimension random word), which
//! keeps the sequence's net property and makes different seeds give different points.
//!
//! Points are indexed directly (point `i` XORs the direction numbers of the set bits of `i`),
//! not in Gray-code order: the first `2^m` points are the same set either way.

use crate::rng::SplitMix64;

/// Largest number of dimensions (a sampled experiment has at most one per hyperparameter).
pub(super) const MAX_DIMS: usize = 8;

/// Joe and Kuo's primitive polynomials for dimensions 2 to 8: degree `s`, coefficients `a`,
/// and the initial direction numbers `m_1..m_s`. Dimension 1 is the van der Corput sequence.
const POLYNOMIALS: [(u32, u32, &[u32]); MAX_DIMS - 1] = [
    (1, 0, &[1]),
    (2, 1, &[1, 3]),
    (3, 1, &[1, 3, 1]),
    (3, 2, &[1, 1, 1]),
    (4, 1, &[1, 1, 3, 3]),
    (4, 4, &[1, 3, 5, 13]),
    (5, 2, &[1, 1, 5, 5, 17]),
];

/// Bits per coordinate.
const BITS: usize = 32;

/// The direction numbers `v_1..v_32` of dimension `dim` (0-based), as 32-bit fractions.
fn directions(dim: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dim == 0 {
        for (k, d) in v.iter_mut().enumerate() {
            *d = 1 << (BITS - 1 - k);
        }
        return v;
    }
    let (s, a, init) = POLYNOMIALS[dim - 1];
    let s = s as usize;
    let mut m = [0u32; BITS];
    m[..s].copy_from_slice(init);
    for k in s..BITS {
        let mut next = m[k - s] ^ (m[k - s] << s);
        for l in 1..s {
            if (a >> (s - 1 - l)) & 1 == 1 {
                next ^= m[k - l] << l;
            }
        }
        m[k] = next;
    }
    for k in 0..BITS {
        v[k] = m[k] << (BITS - 1 - k);
    }
    v
}

/// A Sobol sequence of `dims` dimensions, shifted by words drawn from `seed`.
#[derive(Debug, Clone)]
pub(super) struct Sobol {
    directions: Vec<[u32; BITS]>,
    shift: Vec<u32>,
}

impl Sobol {
    /// The sequence in `dims` dimensions (at most [`MAX_DIMS`]; more is a bug of the caller,
    /// which the grid checks prevent, and is cut to [`MAX_DIMS`]); `seed = None` is unshifted.
    pub(super) fn new(dims: usize, seed: Option<u64>) -> Sobol {
        let dims = dims.min(MAX_DIMS);
        let mut rng = seed.map(|s| SplitMix64::for_stream(s, "sobol-shift", 0));
        Sobol {
            directions: (0..dims).map(directions).collect(),
            shift: (0..dims)
                .map(|_| {
                    rng.as_mut()
                        // The high half of a 64-bit draw.
                        .map_or(0, |r| (r.next_u64() >> 32) as u32)
                })
                .collect(),
        }
    }

    /// Point number `index` (only its low 32 bits count), each coordinate in [0, 1).
    pub(super) fn point(&self, index: u64) -> Vec<f64> {
        self.directions
            .iter()
            .zip(&self.shift)
            .map(|(v, shift)| {
                let mut x = *shift;
                for (k, d) in v.iter().enumerate() {
                    if (index >> k) & 1 == 1 {
                        x ^= d;
                    }
                }
                f64::from(x) / 4_294_967_296.0
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_points_are_the_published_ones() {
        // The first eight points of dimensions 1 to 3, worked by hand from Joe and Kuo's
        // recurrence (v = 1/2, 1/4, 1/8; 1/2, 3/4, 5/8; 1/2, 3/4, 3/8), in direct order: point
        // i XORs v_k for the set bits k of i. In Gray-code order (scipy's) the same eight sets.
        let s = Sobol::new(3, None);
        let points: Vec<Vec<f64>> = (0..8).map(|i| s.point(i)).collect();
        let expected = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.25, 0.75, 0.75],
            [0.75, 0.25, 0.25],
            [0.125, 0.625, 0.375],
            [0.625, 0.125, 0.875],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
        ];
        for (p, e) in points.iter().zip(expected) {
            assert_eq!(p.as_slice(), e.as_slice());
        }
    }

    /// True when each of the `2^m` intervals of width `2^-m` holds exactly one of `xs`.
    fn stratified(xs: &[f64], m: u32) -> bool {
        let n = 1usize << m;
        let mut seen = vec![false; n];
        for x in xs {
            let cell = (x * n as f64) as usize;
            if seen[cell] {
                return false;
            }
            seen[cell] = true;
        }
        seen.into_iter().all(|s| s)
    }

    #[test]
    fn every_dimension_is_a_net_shifted_or_not() {
        for seed in [None, Some(1), Some(99)] {
            let s = Sobol::new(MAX_DIMS, seed);
            for m in [3, 6, 10] {
                let points: Vec<Vec<f64>> = (0..1u64 << m).map(|i| s.point(i)).collect();
                for d in 0..MAX_DIMS {
                    let xs: Vec<f64> = points.iter().map(|p| p[d]).collect();
                    assert!(stratified(&xs, m), "dimension {d}, 2^{m} points, {seed:?}");
                }
                // Two-dimensional projections of dimensions 1 and 2 are (0, m, 2)-nets:
                // every elementary box of area 2^-m holds one point.
                for split in 0..=m {
                    let (rows, cols) = (1usize << split, 1usize << (m - split));
                    let mut seen = vec![false; rows * cols];
                    for p in &points {
                        let cell =
                            (p[0] * rows as f64) as usize * cols + (p[1] * cols as f64) as usize;
                        assert!(!seen[cell], "2^{m} points, {rows}x{cols} boxes");
                        seen[cell] = true;
                    }
                }
            }
        }
    }

    #[test]
    fn seeds_shift_the_points() {
        let a = Sobol::new(2, Some(1)).point(5);
        assert_eq!(a, Sobol::new(2, Some(1)).point(5));
        assert_ne!(a, Sobol::new(2, Some(2)).point(5));
        assert_ne!(a, Sobol::new(2, None).point(5));
    }
}
