//! Samplers: the configurations of a sampled experiment (`[experiment.sample]`), drawn by
//! independent uniform draws, a scrambled Sobol sequence, or TPE fitted on completed results.
//!
//! A sampler draws points in the unit cube, one coordinate per sampled key, and maps each
//! coordinate onto its key's distribution ([`value_at`]): linearly for `uniform`, in the
//! logarithm for `loguniform`, to an integer for `int` and for integer keys, to an entry for
//! `choice`. Drawn numbers keep four significant digits (a learning rate of `0.0003162`, not
//! `0.00031622776601683794`), so trial names stay readable and two draws can be the same
//! configuration: a proposal equal to one the experiment already has is drawn again from the
//! next candidate of the same proposal's stream, so no two trials of one experiment share a
//! configuration. Everything is a function of the spec, the proposal's number, the results
//! given and the configurations taken: the same inputs propose the same configuration.

use std::collections::BTreeSet;

use super::sobol::Sobol;
pub use super::tpe::History;
use super::{Distribution, Method, Objective, SampleSpec, tpe};
use crate::grid::{Domain, Identity, Param, Value};
use crate::rng::SplitMix64;

/// One configuration of the sampled keys, in the order of [`SampleSpec::space`].
pub type Point = Vec<Value>;

/// What makes two points the same configuration.
pub type PointKey = Vec<Identity>;

/// The key of `point`.
pub fn key(point: &[Value]) -> PointKey {
    point.iter().map(|v| v.identity()).collect()
}

/// A completed configuration and its result, for TPE.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The sampled keys' values.
    pub point: Point,
    /// The objective's metric (for a configuration with several seeds, their mean).
    pub value: f64,
}

/// Candidates one proposal draws before giving up on finding a configuration not yet taken.
const MAX_CANDIDATES: u64 = 1_000;

/// Significant digits a drawn number keeps.
const DIGITS: usize = 4;

/// No configuration left: every candidate drawn was already taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "proposal {index}: every one of {tried} candidates is a configuration the experiment already \
     has; the space has too few configurations for the trials asked"
)]
pub struct Exhausted {
    /// The proposal's number.
    pub index: u64,
    /// Candidates drawn.
    pub tried: u64,
}

/// Number of distinct configurations of `space`, when it is small enough to count (every key
/// discrete, the product within u64); `None` for a space too large to matter.
pub fn space_size(space: &[(Param, Distribution)]) -> Option<u64> {
    space.iter().try_fold(1u64, |acc, (param, d)| {
        let n = match d {
            Distribution::Choice(values) => values.len() as u64,
            Distribution::Int { low, high } => high.checked_sub(*low)?.checked_add(1)?,
            Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                match param.def().domain {
                    // Whole numbers between the bounds.
                    Domain::Int { .. } => (high.floor() - low.ceil() + 1.0).max(0.0) as u64,
                    Domain::Float { .. } | Domain::Fraction | Domain::Choice(_) | Domain::Model => {
                        return None;
                    }
                }
            }
        };
        acc.checked_mul(n)
    })
}

/// `x` rounded to [`DIGITS`] significant digits.
fn round(x: f64) -> f64 {
    format!("{x:.prec$e}", prec = DIGITS - 1)
        .parse()
        .unwrap_or(x)
}

/// The value of `param` at coordinate `u` in [0, 1) of `dist`.
pub fn value_at(param: Param, dist: &Distribution, u: f64) -> Value {
    let u = u.clamp(0.0, 1.0);
    let integer = matches!(param.def().domain, Domain::Int { .. });
    let number = |x: f64, low: f64, high: f64| {
        if integer {
            // Bounds were checked to hold a whole number; the value is in the domain.
            Value::Int(x.round().clamp(low.ceil(), high.floor()) as u64)
        } else {
            Value::Float(round(x).clamp(low, high))
        }
    };
    match dist {
        Distribution::Uniform { low, high } => number(low + u * (high - low), *low, *high),
        Distribution::LogUniform { low, high } => {
            let (a, b) = (low.ln(), high.ln());
            number((a + u * (b - a)).exp(), *low, *high)
        }
        Distribution::Int { low, high } => {
            let n = (high - low + 1) as f64;
            Value::Int((low + (u * n).floor() as u64).min(*high))
        }
        Distribution::Choice(values) => {
            let i = ((u * values.len() as f64).floor() as usize).min(values.len() - 1);
            values[i]
        }
    }
}

/// The coordinate in [0, 1] of `value` in `dist`: the inverse of [`value_at`] (up to
/// rounding), for fitting TPE on results. `None` for a value the distribution cannot give.
pub fn coordinate_of(dist: &Distribution, value: Value) -> Option<f64> {
    let x = match value {
        Value::Int(i) => i as f64,
        Value::Float(x) => x,
        Value::Choice(_) | Value::Text(_) => f64::NAN,
    };
    let u = match dist {
        Distribution::Uniform { low, high } => {
            if high > low {
                (x - low) / (high - low)
            } else {
                0.5
            }
        }
        Distribution::LogUniform { low, high } => {
            if high > low {
                (x.ln() - low.ln()) / (high.ln() - low.ln())
            } else {
                0.5
            }
        }
        Distribution::Int { low, high } => (x - *low as f64 + 0.5) / ((high - low + 1) as f64),
        Distribution::Choice(values) => {
            let i = values
                .iter()
                .position(|v| v.identity() == value.identity())?;
            (i as f64 + 0.5) / values.len() as f64
        }
    };
    (u.is_finite()).then(|| u.clamp(0.0, 1.0))
}

/// The random stream of candidate `attempt` of proposal `index`.
fn stream(seed: u64, index: u64, attempt: u64) -> SplitMix64 {
    let mut g = SplitMix64::for_stream(seed, "sample", index);
    SplitMix64::new(g.next_u64() ^ attempt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A uniform number in [0, 1) from the top 53 bits of a draw.
pub(super) fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The sampler of one experiment.
#[derive(Debug, Clone)]
pub struct Sampler<'a> {
    spec: &'a SampleSpec,
    sobol: Option<Sobol>,
}

impl<'a> Sampler<'a> {
    /// The sampler `spec` describes.
    pub fn new(spec: &'a SampleSpec) -> Sampler<'a> {
        let sobol =
            (spec.method == Method::Sobol).then(|| Sobol::new(spec.space.len(), Some(spec.seed)));
        Sampler { spec, sobol }
    }

    /// Candidate `attempt` of proposal `index`, as unit coordinates.
    fn candidate(&self, index: u64, attempt: u64, history: &History) -> Vec<f64> {
        let dims = self.spec.space.len();
        let mut rng = stream(self.spec.seed, index, attempt);
        match (&self.sobol, self.spec.method) {
            (Some(sobol), _) => {
                // Redraws take points past the budget, each proposal its own.
                sobol.point(index + attempt * u64::from(self.spec.trials.max(1)))
            }
            (None, Method::Tpe) => tpe::propose(&self.spec.space, history, &mut rng),
            (None, Method::Random | Method::Sobol) => (0..dims).map(|_| unit(&mut rng)).collect(),
        }
    }

    /// Proposal number `index` (0-based) of the experiment: the first candidate of its stream
    /// that is not in `taken`. TPE fits on `history` (completed configurations, in the order
    /// they completed); random and Sobol ignore it.
    pub fn propose(
        &self,
        index: u64,
        history: &[Observation],
        objective: Objective,
        taken: &BTreeSet<PointKey>,
    ) -> Result<Point, Exhausted> {
        let history = History::of(&self.spec.space, history, objective);
        self.propose_fitted(index, &history, taken)
    }

    /// [`Sampler::propose`] with the results already ranked, as a scheduler keeps them
    /// ([`History::set`]): the same results give the same proposal.
    pub fn propose_fitted(
        &self,
        index: u64,
        history: &History,
        taken: &BTreeSet<PointKey>,
    ) -> Result<Point, Exhausted> {
        for attempt in 0..MAX_CANDIDATES {
            let u = self.candidate(index, attempt, history);
            let point: Point = self
                .spec
                .space
                .iter()
                .zip(u)
                .map(|((param, dist), u)| value_at(*param, dist, u))
                .collect();
            if !taken.contains(&key(&point)) {
                return Ok(point);
            }
        }
        // A small space nearly used up: the first untaken configuration, in order.
        if let Some(point) = self.enumerate().find(|p| !taken.contains(&key(p))) {
            return Ok(point);
        }
        Err(Exhausted {
            index,
            tried: MAX_CANDIDATES,
        })
    }

    /// The first `spec.trials` proposals without results (random and Sobol draw all their
    /// configurations this way; TPE draws its first ones at random, then needs results).
    pub fn draw(&self, count: u32) -> Result<Vec<Point>, Exhausted> {
        let mut taken = BTreeSet::new();
        let mut points = Vec::with_capacity(count as usize);
        for index in 0..u64::from(count) {
            let point = self.propose(index, &[], Objective::default(), &taken)?;
            taken.insert(key(&point));
            points.push(point);
        }
        Ok(points)
    }

    /// Every configuration of a countable space of at most [`MAX_CANDIDATES`] points, in
    /// mixed-radix order; nothing for a larger or uncountable one.
    fn enumerate(&self) -> impl Iterator<Item = Point> + '_ {
        let size = space_size(&self.spec.space).filter(|&n| n <= MAX_CANDIDATES);
        let values: Vec<Vec<Value>> = self
            .spec
            .space
            .iter()
            .map(|(param, dist)| match dist {
                Distribution::Choice(v) => v.clone(),
                Distribution::Int { low, high } => (*low..=*high).map(Value::Int).collect(),
                Distribution::Uniform { low, high } | Distribution::LogUniform { low, high } => {
                    let _ = param;
                    (low.ceil() as u64..=high.floor() as u64)
                        .map(Value::Int)
                        .collect()
                }
            })
            .collect();
        (0..size.unwrap_or(0)).map(move |mut n| {
            let mut point = Vec::with_capacity(values.len());
            for column in values.iter().rev() {
                let len = column.len() as u64;
                point.push(column[(n % len) as usize]);
                n /= len;
            }
            point.reverse();
            point
        })
    }
}

#[cfg(test)]
mod tests;
