//! The tree-structured Parzen estimator (Bergstra et al. 2011), as Optuna's `TPESampler` does
//! it by default (independent per key): the completed configurations are split into a good
//! part (the best `gamma(n) = min(ceil(n / 10), 25)`) and the rest; each part gives every key a
//! Parzen estimator (a mixture of truncated normals around the observed values, plus a wide
//! prior, for numbers; smoothed frequencies for choices), `l` for the good part and `g` for the
//! rest; [`CANDIDATES`] candidates are drawn from `l` and the one with the largest
//! `l(x) / g(x)` is proposed. With fewer than [`STARTUP`] results it draws uniformly.
//!
//! It works in the sampler's unit coordinates (`sample::coordinate_of`), so a log-uniform key
//! is modelled in its logarithm, and it is fitted only on the observations it is given, in the
//! order given: the same results give the same proposal, so a coordinator can replay it.

use super::sample::{Observation, coordinate_of, unit};
use super::{Distribution, Objective};
use crate::grid::Param;
use crate::rng::SplitMix64;

/// Results needed before the estimators are used (Optuna's `n_startup_trials`).
pub(super) const STARTUP: usize = 10;
/// Candidates drawn from `l` per proposal (Optuna's `n_ei_candidates`).
pub(super) const CANDIDATES: usize = 24;
/// Largest good part (Optuna's default `gamma`).
const MAX_GOOD: usize = 25;
/// Most observations the rest's estimator `g` is made of: past it, an even sample of the rest
/// by rank (its best and its worst included), so that a proposal costs O(n log n) for the
/// ranking and O(`MAX_BAD`) per candidate instead of O(n), and a search of n trials O(n^2 log n)
/// cheap comparisons instead of O(n^2) normal densities (Optuna fits on all of them).
const MAX_BAD: usize = 250;

/// The completed configurations TPE fits on, ranked best first (ties in the order they were
/// given), as coordinates with their scores. Kept up to date one configuration at a time
/// ([`History::set`]) by a scheduler, or made whole from a list of results
/// ([`History::of`]): the same results give the same ranking either way, so the same
/// proposals.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// `(score, position, coordinates)`, best score first, then by position.
    ranked: Vec<(f64, u64, Vec<f64>)>,
    /// Each position's score, to find its entry.
    scores: std::collections::HashMap<u64, f64>,
}

impl History {
    /// The history of `results` (in the order given) over `space`.
    pub fn of(
        space: &[(Param, Distribution)],
        results: &[Observation],
        objective: Objective,
    ) -> History {
        let mut h = History::default();
        for (i, o) in results.iter().enumerate() {
            if let Some(coordinates) = coordinates(space, o) {
                let score = objective.score(o.value);
                h.ranked.push((score, i as u64, coordinates));
                h.scores.insert(i as u64, score);
            }
        }
        h.ranked
            .sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        h
    }

    /// Sets the result at `position` (a configuration's place in the experiment; ties rank
    /// the smaller first) to `result`, or removes it (`None`). A result the space cannot give
    /// (another key set, a value outside it) is left out, as [`History::of`] leaves it out.
    pub fn set(
        &mut self,
        space: &[(Param, Distribution)],
        position: u64,
        result: Option<&Observation>,
        objective: Objective,
    ) {
        if let Some(old) = self.scores.remove(&position) {
            let at = self.find(old, position);
            if let Ok(i) = at {
                self.ranked.remove(i);
            }
        }
        let Some((o, coordinates)) = result.and_then(|o| Some((o, coordinates(space, o)?))) else {
            return;
        };
        let score = objective.score(o.value);
        let i = self.find(score, position).unwrap_or_else(|i| i);
        self.ranked.insert(i, (score, position, coordinates));
        self.scores.insert(position, score);
    }

    /// The results it holds.
    pub fn len(&self) -> usize {
        self.ranked.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.ranked.is_empty()
    }

    /// Where `(score, position)` is (or would go) in the ranking.
    fn find(&self, score: f64, position: u64) -> Result<usize, usize> {
        self.ranked
            .binary_search_by(|(s, p, _)| score.total_cmp(s).then_with(|| p.cmp(&position)))
    }
}

/// `result`'s point as coordinates of `space`, when the space can give it.
fn coordinates(space: &[(Param, Distribution)], result: &Observation) -> Option<Vec<f64>> {
    if result.point.len() != space.len() {
        return None;
    }
    space
        .iter()
        .zip(&result.point)
        .map(|((_, d), v)| coordinate_of(d, *v))
        .collect()
}

/// The unit coordinates of the next configuration to try, fitted on `history`.
pub(super) fn propose(
    space: &[(Param, Distribution)],
    history: &History,
    rng: &mut SplitMix64,
) -> Vec<f64> {
    let points = &history.ranked;
    if points.len() < STARTUP {
        return (0..space.len()).map(|_| unit(rng)).collect();
    }
    // Best first (the history is kept ranked): the good part, then the rest thinned.
    let good_len = points.len().div_ceil(10).clamp(1, MAX_GOOD);
    let good: Vec<usize> = (0..good_len).collect();
    let good = good.as_slice();
    let bad = thin(good_len..points.len(), MAX_BAD);
    let bad = bad.as_slice();

    let estimators: Vec<(Parzen, Parzen)> = space
        .iter()
        .enumerate()
        .map(|(d, (_, dist))| {
            let column =
                |part: &[usize]| -> Vec<f64> { part.iter().map(|&i| points[i].2[d]).collect() };
            (
                Parzen::fit(dist, &column(good)),
                Parzen::fit(dist, &column(bad)),
            )
        })
        .collect();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for _ in 0..CANDIDATES {
        let x: Vec<f64> = estimators.iter().map(|(l, _)| l.sample(rng)).collect();
        let score: f64 = estimators
            .iter()
            .zip(&x)
            .map(|((l, g), x)| l.log_pdf(*x) - g.log_pdf(*x))
            .sum();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, x));
        }
    }
    best.map_or_else(|| (0..space.len()).map(|_| unit(rng)).collect(), |(_, x)| x)
}

/// The ranks `ranks` when there are at most `max`, else `max` of them evenly spaced, the first
/// and the last included.
fn thin(ranks: std::ops::Range<usize>, max: usize) -> Vec<usize> {
    if ranks.len() <= max || max < 2 {
        return ranks.collect();
    }
    let last = ranks.len() - 1;
    (0..max)
        .map(|i| ranks.start + i * last / (max - 1))
        .collect()
}

/// A Parzen estimator of one key on its unit coordinate.
#[derive(Debug, Clone)]
enum Parzen {
    /// Equally weighted normals truncated to [0, 1]: `(mean, sigma)`.
    Numbers(Vec<(f64, f64)>),
    /// The probability of each choice, and each choice's coordinate width `1 / len`.
    Choices(Vec<f64>),
}

impl Parzen {
    /// The estimator of `xs` (coordinates) for `dist`.
    fn fit(dist: &Distribution, xs: &[f64]) -> Parzen {
        if let Distribution::Choice(values) = dist {
            let k = values.len();
            // Counts plus a prior of weight one spread evenly.
            let mut p = vec![1.0 / k as f64; k];
            for x in xs {
                let i = ((x * k as f64).floor() as usize).min(k - 1);
                p[i] += 1.0;
            }
            let total: f64 = p.iter().sum();
            return Parzen::Choices(p.into_iter().map(|w| w / total).collect());
        }
        // The prior: one wide normal in the middle. Each observation's sigma is the larger
        // distance to its neighbours (the bounds included), clipped as Optuna clips it.
        let mut mus: Vec<f64> = xs.to_vec();
        mus.push(0.5);
        mus.sort_by(f64::total_cmp);
        let min_sigma = 1.0 / (mus.len() as f64).min(100.0);
        let mut components = Vec::with_capacity(mus.len());
        let mut prior_done = false;
        for (i, &mu) in mus.iter().enumerate() {
            let sigma = if !prior_done && mu == 0.5 {
                prior_done = true;
                1.0
            } else {
                let left = if i == 0 { mu } else { mu - mus[i - 1] };
                let right = if i + 1 == mus.len() {
                    1.0 - mu
                } else {
                    mus[i + 1] - mu
                };
                left.max(right).clamp(min_sigma, 1.0)
            };
            components.push((mu, sigma));
        }
        Parzen::Numbers(components)
    }

    /// A draw from the estimator.
    fn sample(&self, rng: &mut SplitMix64) -> f64 {
        match self {
            Parzen::Choices(p) => {
                let k = p.len();
                let mut u = unit(rng);
                for (i, w) in p.iter().enumerate() {
                    if u < *w {
                        return (i as f64 + 0.5) / k as f64;
                    }
                    u -= w;
                }
                (k as f64 - 0.5) / k as f64
            }
            Parzen::Numbers(components) => {
                let i = (unit(rng) * components.len() as f64) as usize;
                let (mu, sigma) = components[i.min(components.len() - 1)];
                // Rejection sampling of the truncated normal: each component keeps at least a
                // third of its mass inside [0, 1], so a few tries suffice.
                for _ in 0..64 {
                    let x = mu + sigma * normal(rng);
                    if (0.0..=1.0).contains(&x) {
                        return x;
                    }
                }
                mu.clamp(0.0, 1.0)
            }
        }
    }

    /// The log density at `x`.
    fn log_pdf(&self, x: f64) -> f64 {
        match self {
            Parzen::Choices(p) => {
                let k = p.len();
                let i = ((x * k as f64).floor() as usize).min(k - 1);
                p[i].ln()
            }
            Parzen::Numbers(components) => {
                let n = components.len() as f64;
                let density: f64 = components
                    .iter()
                    .map(|&(mu, sigma)| {
                        let z = (x - mu) / sigma;
                        let mass = phi((1.0 - mu) / sigma) - phi(-mu / sigma);
                        (-0.5 * z * z).exp()
                            / (sigma * (2.0 * std::f64::consts::PI).sqrt() * mass.max(1e-12))
                    })
                    .sum();
                (density / n).max(1e-300).ln()
            }
        }
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - unit(rng); // in (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The standard normal distribution function.
fn phi(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

/// The error function (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, e) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
            (-1.0, -0.842_700_792_9),
        ] {
            assert!((erf(x) - e).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn densities_integrate_to_one() {
        let dist = Distribution::Uniform {
            low: 0.0,
            high: 1.0,
        };
        let p = Parzen::fit(&dist, &[0.05, 0.2, 0.21, 0.9, 0.99]);
        let n = 20_000;
        let integral: f64 = (0..n)
            .map(|i| p.log_pdf((f64::from(i) + 0.5) / f64::from(n)).exp())
            .sum::<f64>()
            / f64::from(n);
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
    }

    #[test]
    fn a_history_kept_up_to_date_proposes_as_one_made_whole() {
        use crate::grid::Value;
        let space = vec![
            (
                Param::LearningRate,
                Distribution::LogUniform {
                    low: 1e-4,
                    high: 1e-1,
                },
            ),
            (
                Param::Momentum,
                Distribution::Uniform {
                    low: 0.0,
                    high: 1.0,
                },
            ),
        ];
        let mut rng = SplitMix64::new(7);
        // Positions 0..60, each set, changed (ties included) or removed in a random order.
        let mut now: Vec<Option<Observation>> = vec![None; 60];
        let mut kept = History::default();
        for step in 0..600 {
            let position = (unit(&mut rng) * 60.0) as usize;
            let result = (unit(&mut rng) > 0.2).then(|| Observation {
                point: vec![
                    Value::Float(1e-4 * 1000f64.powf(unit(&mut rng))),
                    Value::Float(unit(&mut rng)),
                ],
                value: (unit(&mut rng) * 8.0).floor(),
            });
            kept.set(
                &space,
                position as u64,
                result.as_ref(),
                Objective::default(),
            );
            now[position] = result;
            let whole: Vec<Observation> = now.iter().flatten().cloned().collect();
            let made = History::of(&space, &whole, Objective::default());
            assert_eq!(kept.len(), made.len(), "step {step}");
            let a = propose(&space, &kept, &mut SplitMix64::new(step));
            let b = propose(&space, &made, &mut SplitMix64::new(step));
            assert_eq!(a, b, "step {step}");
        }
    }

    #[test]
    fn the_rest_is_thinned_evenly_by_rank_past_its_bound() {
        assert_eq!(thin(100..350, 250), (100..350).collect::<Vec<_>>());
        let thinned = thin(100..1100, 250);
        assert_eq!(thinned.len(), 250);
        assert_eq!((thinned[0], thinned[249]), (100, 1099));
        assert!(thinned.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 5));
    }
}
