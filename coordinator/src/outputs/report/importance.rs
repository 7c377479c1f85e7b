//! How much of a metric's variance each hyperparameter explains on its own (its main effect),
//! for the comparison views of `report.html` and the live view.
//!
//! Pure: [`importance`] takes one [`Column`] of values per hyperparameter and the metric, one per
//! trial, and returns a share in `[0, 1]` per hyperparameter.
//!
//! - **Full grids** ([`Method::Exact`]): when every combination of the columns' levels occurs,
//!   each the same number of times (a full factorial, possibly repeated), the main effects are
//!   orthogonal and the decomposition is exact (a one-way ANOVA per factor, the first-order
//!   Sobol indices of the grid): the share of hyperparameter `i` is
//!   `sum over its levels l of n_l * (mean_l - mean)^2`, divided by the total sum of squares
//!   `sum (y - mean)^2`. The shares sum to at most 1; [`Importance::rest`] is what is left, the
//!   interactions between hyperparameters and the noise between repeats.
//! - **Anything else** ([`Method::Estimated`]: sampled spaces, or a grid with failed or missing
//!   trials): per hyperparameter, epsilon squared (Kelley 1935) of a one-way ANOVA over its
//!   levels, with a numeric hyperparameter of more than [`MAX_LEVELS`] distinct values cut into
//!   at most [`MAX_LEVELS`] bins of equal counts (by rank): `(SS_between - (k - 1) * MS_within)
//!   / SS_total`, floored at 0. It is the share of the variance the hyperparameter alone
//!   explains, less what `k` groups would explain by chance. On an unbalanced design the main
//!   effects overlap, so these shares need not sum to 1 and no `rest` is given.

use std::borrow::Cow;
use std::collections::HashMap;

/// Levels a numeric hyperparameter keeps before the estimator bins it.
pub const MAX_LEVELS: usize = 10;

/// One hyperparameter's value in every trial.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers (integers or floats).
    Numeric(Vec<f64>),
    /// Choices, as text.
    Categorical(Vec<String>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical(v) => v.len(),
        }
    }

    /// Each trial's level as a small integer (levels in order of first appearance), and how
    /// many levels there are.
    fn levels(&self) -> (Vec<usize>, usize) {
        match self {
            Column::Numeric(v) => codes(v.iter().map(|x| {
                // One level for 0.0 and -0.0, one for every NaN.
                if x.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    (x + 0.0).to_bits()
                }
            })),
            Column::Categorical(v) => codes(v.iter().map(String::as_str)),
        }
    }
}

fn codes<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> (Vec<usize>, usize) {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let codes = keys
        .map(|k| {
            let next = seen.len();
            *seen.entry(k).or_insert(next)
        })
        .collect();
    (codes, seen.len())
}

/// How the shares were computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The exact main-effect variance decomposition of a full (possibly repeated) grid.
    Exact,
    /// Epsilon squared per hyperparameter, over its levels or bins.
    Estimated,
}

/// The shares of the metric's variance the hyperparameters explain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Importance {
    /// How they were computed.
    pub method: Method,
    /// One per column, in `[0, 1]`, in the columns' order.
    pub shares: Vec<f64>,
    /// With [`Method::Exact`]: the share the main effects leave (interactions and noise).
    pub rest: Option<f64>,
    /// Trials it is computed over.
    pub trials: usize,
}

/// Why there is no importance to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// A column's length is not the metric's.
    #[error("a hyperparameter has {found} values for {expected} trials")]
    Length {
        /// The metric's length.
        expected: usize,
        /// The column's.
        found: usize,
    },
    /// Fewer than two trials with a finite metric.
    #[error("fewer than two trials have a result")]
    TooFew,
    /// The metric is the same in every trial.
    #[error("the metric is the same in every trial")]
    Constant,
}

/// The importance of each of `columns` for `metric` (one value per trial in each). Trials whose
/// metric is not finite are left out.
pub fn importance(columns: &[Column], metric: &[f64]) -> Result<Importance, Unavailable> {
    for c in columns {
        if c.len() != metric.len() {
            return Err(Unavailable::Length {
                expected: metric.len(),
                found: c.len(),
            });
        }
    }
    // The trials with a finite metric; borrowed when that is every trial (the usual case: a
    // million trials' columns are not copied).
    let (y, kept): (Cow<'_, [f64]>, Option<Vec<Column>>) = if metric.iter().all(|v| v.is_finite()) {
        (Cow::Borrowed(metric), None)
    } else {
        let keep: Vec<usize> = (0..metric.len())
            .filter(|&i| metric[i].is_finite())
            .collect();
        let kept = columns
            .iter()
            .map(|c| match c {
                Column::Numeric(v) => Column::Numeric(keep.iter().map(|&i| v[i]).collect()),
                Column::Categorical(v) => {
                    Column::Categorical(keep.iter().map(|&i| v[i].clone()).collect())
                }
            })
            .collect();
        (
            Cow::Owned(keep.iter().map(|&i| metric[i]).collect()),
            Some(kept),
        )
    };
    if y.len() < 2 {
        return Err(Unavailable::TooFew);
    }
    let columns: &[Column] = kept.as_deref().unwrap_or(columns);
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if total <= f64::EPSILON * n * mean.abs().max(1.0) {
        return Err(Unavailable::Constant);
    }
    let levels: Vec<(Vec<usize>, usize)> = columns.iter().map(Column::levels).collect();
    if full_grid(&levels) {
        let shares: Vec<f64> = levels
            .iter()
            .map(|(codes, k)| (between(codes, *k, &y, mean) / total).clamp(0.0, 1.0))
            .collect();
        let rest = (1.0 - shares.iter().sum::<f64>()).clamp(0.0, 1.0);
        return Ok(Importance {
            method: Method::Exact,
            shares,
            rest: Some(rest),
            trials: y.len(),
        });
    }
    let shares = columns
        .iter()
        .zip(levels)
        .map(|(column, (codes, k))| {
            let (codes, k) = match column {
                Column::Numeric(v) if k > MAX_LEVELS => bins(v, MAX_LEVELS),
                _ => (codes, k),
            };
            epsilon_squared(&codes, k, &y, mean, total)
        })
        .collect();
    Ok(Importance {
        method: Method::Estimated,
        shares,
        rest: None,
        trials: y.len(),
    })
}

/// True when every combination of the columns' levels occurs, each equally often.
///
/// A combination is counted by its mixed-radix number (the first column's level the most
/// significant digit), in a vector of one count per combination: there are at most as many
/// combinations as trials, and a million trials' counts take 8 MB where a map keyed by each
/// combination's levels took about 85 MB (a report's peak, at the end of a sweep).
fn full_grid(levels: &[(Vec<usize>, usize)]) -> bool {
    let Some((first, _)) = levels.first() else {
        return false;
    };
    let n = first.len();
    let cells = levels
        .iter()
        .try_fold(1usize, |product, (_, k)| product.checked_mul(*k));
    let Some(cells) = cells.filter(|&c| c <= n && n % c == 0) else {
        return false;
    };
    let mut counts = vec![0usize; cells];
    for i in 0..n {
        let cell = levels
            .iter()
            .fold(0usize, |cell, (codes, k)| cell * k + codes[i]);
        counts[cell] += 1;
    }
    counts.iter().all(|&c| c == n / cells)
}

/// The sum of squares between the levels: `sum n_l * (mean_l - mean)^2`.
fn between(codes: &[usize], k: usize, y: &[f64], mean: f64) -> f64 {
    let mut sum = vec![0.0; k];
    let mut count = vec![0usize; k];
    for (&c, &v) in codes.iter().zip(y) {
        sum[c] += v;
        count[c] += 1;
    }
    sum.iter()
        .zip(&count)
        .filter(|(_, n)| **n > 0)
        .map(|(s, &n)| n as f64 * (s / n as f64 - mean).powi(2))
        .sum()
}

fn epsilon_squared(codes: &[usize], k: usize, y: &[f64], mean: f64, total: f64) -> f64 {
    let n = y.len();
    if k < 2 || n <= k {
        return 0.0;
    }
    let ss_between = between(codes, k, y, mean);
    let ms_within = (total - ss_between).max(0.0) / (n - k) as f64;
    ((ss_between - (k - 1) as f64 * ms_within) / total).clamp(0.0, 1.0)
}

/// `values` cut into at most `bins` groups of (nearly) equal counts by rank; equal values share
/// a bin.
fn bins(values: &[f64], bins: usize) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let n = values.len();
    let mut bin_of = vec![0usize; n];
    let mut bin = 0usize;
    for (rank, &i) in order.iter().enumerate() {
        let wanted = rank * bins / n;
        // Move to the next bin only between distinct values.
        if wanted > bin && rank > 0 && values[order[rank - 1]] != values[i] {
            bin = wanted;
        }
        bin_of[i] = bin;
    }
    // Renumbered without gaps.
    codes(bin_of.into_iter())
}

#[cfg(test)]
mod tests;
