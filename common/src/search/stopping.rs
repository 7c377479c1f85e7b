//! Early-stopping rules as a pure function: [`decide`] takes an experiment's curves so far and
//! the decisions already taken, and returns the new ones. It has no clock and no state of its
//! own: a coordinator journals each decision with the epoch report that caused it, and the
//! same curves and journal always give the same decisions, so a restarted coordinator (or
//! `replay`) continues the same schedule.
//!
//! Repeats are one configuration: trials that differ only in `seed` share a
//! [`TrialCurve::config`]. A configuration is at epoch `e` once every one of its trials has
//! reported epoch `e` or ended without it; its value there is the mean over the seeds that
//! reported it, and a decision stops or promotes all its seeds at once.
//!
//! - ASHA: rungs at `min_epochs * reduction^k` below the configuration's full epochs. A
//!   configuration that reaches a rung passes it when it ranks in the top
//!   `floor(n / reduction)` of the `n` configurations that reached the rung so far and the
//!   rung has not yet passed that many; otherwise it stops there. Once every configuration
//!   that could reach a rung has (the others ended or stopped below it), the rung passes at
//!   least one, so a finite grid always trains some configuration to its end. A stopped configuration is
//!   promoted (resumed) later when the rung's quota grows and it ranks within it. A rung
//!   never passes more than its quota.
//! - Hyperband: configurations are dealt to brackets by their order in the experiment
//!   (`order % brackets`); bracket `b` is ASHA with its first rung at
//!   `min_epochs * reduction^b`, so the last brackets stop little or nothing.
//! - Median: from epoch `min_epochs` on, a configuration whose best value so far is worse than
//!   the median of the running means (over epochs `1..=e`) of the other configurations at
//!   epoch `e`, when at least `min_trials` others are there, stops at `e`.
//!
//! Ranks compare scores (NaN worst, [`Objective::score`]); ties go to the smaller
//! configuration key, so the outcome never depends on the order curves are given in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::{Objective, Rule, StoppingSpec};

mod incremental;
mod rung;
pub use incremental::Judge;

/// The curve of one trial so far.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialCurve<K> {
    /// The trial.
    pub trial: K,
    /// Its configuration: equal for trials that differ only in their seed.
    pub config: K,
    /// The configuration's position in the experiment (Hyperband deals brackets by it).
    pub order: u64,
    /// The objective's metric after each epoch, epoch 1 first.
    pub values: Vec<f64>,
    /// The epochs the trial trains when nothing stops it.
    pub epochs: u32,
    /// True when the trial reports no more epochs (it finished or failed for good).
    pub ended: bool,
}

/// What a decision does to a configuration at a rung.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// It goes on training.
    Continue,
    /// Its trials stop (and keep their checkpoints and curves); `reason` says why.
    Stop {
        /// The ranking or the median that stopped it.
        reason: String,
    },
    /// Stopped earlier at this rung, it now ranks within the rung's quota: its trials resume.
    Promote,
}

/// One decision: a configuration, the epoch (rung) it was judged at, and the action.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<K> {
    /// The configuration.
    pub config: K,
    /// The epoch of the rung (median: the epoch judged).
    pub epoch: u32,
    /// What happens to it.
    pub action: Action,
}

/// A configuration's view of its trials' curves.
#[derive(Debug, Clone)]
struct Config {
    order: u64,
    epochs: u32,
    /// Per trial: values and whether it ended.
    trials: Vec<(Vec<f64>, bool)>,
}

impl Config {
    /// The mean over the seeds that reported epoch `epoch` (1-based), once every seed reported
    /// it or ended without it.
    fn at(&self, epoch: u32) -> Option<f64> {
        let e = epoch as usize;
        let mut values = Vec::with_capacity(self.trials.len());
        for (curve, ended) in &self.trials {
            match curve.get(e.wrapping_sub(1)) {
                Some(v) if e > 0 => values.push(*v),
                _ if *ended => {}
                _ => return None,
            }
        }
        seed_mean(&mut values)
    }

    /// The standard error of the seed mean at `epoch` (over the seeds that reported it).
    fn error(&self, epoch: u32) -> f64 {
        let e = epoch as usize;
        let mut values: Vec<f64> = self
            .trials
            .iter()
            .filter_map(|(curve, _)| curve.get(e.wrapping_sub(1)).copied())
            .collect();
        rung::standard_error(&mut values)
    }
}

/// The mean of a configuration's seeds' values at one epoch (`None` for none), added up in
/// ascending order so that it is the same whatever order the seeds come in and whenever it
/// is computed.
fn seed_mean(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let mut sum = 0.0;
    for v in values.iter() {
        sum += v;
    }
    (!values.is_empty()).then(|| sum / values.len() as f64)
}

/// Why ASHA stops a configuration whose score `score` ranks at `place` (0-based) of `n` at
/// rung `epoch`, whose quota is `quota`.
fn asha_reason(
    objective: Objective,
    score: f64,
    epoch: u32,
    place: usize,
    n: usize,
    quota: usize,
) -> String {
    let passes = if quota == 0 {
        "passes none until more configurations reach it".to_owned()
    } else {
        format!(
            "passes the top {quota} so far and the seed means within one standard error of the \
             last of them"
        )
    };
    format!(
        "asha: {} {:.4} at epoch {epoch} ranks {} of {n}; this rung {passes}",
        objective.metric.name(),
        score * objective.score(1.0),
        place + 1,
    )
}

/// Why the median rule stops a configuration whose best score by `epoch` is `best`, below the
/// median `median` of the running means of `others` other configurations.
fn median_reason(
    objective: Objective,
    best: f64,
    median: f64,
    epoch: u32,
    others: usize,
) -> String {
    let sign = objective.score(1.0);
    format!(
        "median: best {} {:.4} by epoch {epoch} is worse than the median {:.4} of the running \
         means of {others} other configurations",
        objective.metric.name(),
        best * sign,
        median * sign,
    )
}

/// The new decisions for an experiment whose trials have the curves `curves`, given the
/// decisions `past` already taken (in the order they were taken). Returns them in the order
/// they are taken; the caller appends them to its journal.
pub fn decide<K: Ord + Clone + Debug>(
    spec: &StoppingSpec,
    curves: &[TrialCurve<K>],
    past: &[Decision<K>],
) -> Vec<Decision<K>> {
    let configs = by_config(curves);
    let mut journal = Journal::new(past);
    match spec.rule {
        Rule::Asha {
            min_epochs,
            reduction,
        } => {
            let all: Vec<&K> = configs.keys().collect();
            asha(
                spec.objective,
                &configs,
                &all,
                min_epochs,
                reduction,
                &mut journal,
            );
        }
        Rule::Hyperband {
            min_epochs,
            reduction,
            brackets,
        } => {
            let brackets = brackets.max(1);
            for b in 0..brackets {
                let members: Vec<&K> = configs
                    .iter()
                    .filter(|(_, c)| c.order % u64::from(brackets) == u64::from(b))
                    .map(|(k, _)| k)
                    .collect();
                let first = bracket_start(min_epochs, reduction, b);
                asha(
                    spec.objective,
                    &configs,
                    &members,
                    first,
                    reduction,
                    &mut journal,
                );
            }
        }
        Rule::Median {
            min_epochs,
            min_trials,
        } => median(
            spec.objective,
            &configs,
            min_epochs,
            min_trials,
            &mut journal,
        ),
    }
    journal.new
}

/// The curves grouped by configuration.
fn by_config<K: Ord + Clone>(curves: &[TrialCurve<K>]) -> BTreeMap<K, Config> {
    let mut configs: BTreeMap<K, Config> = BTreeMap::new();
    for c in curves {
        let entry = configs.entry(c.config.clone()).or_insert(Config {
            order: c.order,
            epochs: 0,
            trials: Vec::new(),
        });
        entry.order = entry.order.min(c.order);
        entry.epochs = entry.epochs.max(c.epochs);
        entry.trials.push((c.values.clone(), c.ended));
    }
    configs
}

/// The epochs at which `rule` may take a decision for configurations of at most `longest`
/// epochs: its rungs (every bracket's, for Hyperband), or `None` for the median rule, which
/// judges every epoch from `min_epochs` on.
pub fn rung_epochs(rule: &Rule, longest: u32) -> Option<BTreeSet<u32>> {
    match *rule {
        Rule::Asha {
            min_epochs,
            reduction,
        } => Some(
            rungs(min_epochs, reduction.max(2), longest)
                .into_iter()
                .collect(),
        ),
        Rule::Hyperband {
            min_epochs,
            reduction,
            brackets,
        } => Some(
            (0..brackets.max(1))
                .flat_map(|b| {
                    rungs(
                        bracket_start(min_epochs, reduction, b),
                        reduction.max(2),
                        longest,
                    )
                })
                .collect(),
        ),
        Rule::Median { .. } => None,
    }
}

/// The epochs a trial of `epochs` epochs is expected to train under `rule`, nominally: each
/// rung passes exactly `1/reduction` of the configurations that reach it, and Hyperband deals
/// the configurations to its brackets in equal shares. What a live sweep trains differs (ASHA
/// lets a configuration through on the rung as it stands when it arrives, and a rung reached
/// by few configurations passes its best). `None` for the median rule, whose stops depend on
/// the curves alone.
pub fn expected_epochs(rule: &Rule, epochs: u32) -> Option<f64> {
    let halving = |first: u32, reduction: u32| {
        let eta = f64::from(reduction.max(2));
        let mut reaching = 1.0;
        let mut total = 0.0;
        for r in rungs(first, reduction.max(2), epochs) {
            total += reaching * (1.0 - 1.0 / eta) * f64::from(r);
            reaching /= eta;
        }
        total + reaching * f64::from(epochs)
    };
    match *rule {
        Rule::Asha {
            min_epochs,
            reduction,
        } => Some(halving(min_epochs, reduction)),
        Rule::Hyperband {
            min_epochs,
            reduction,
            brackets,
        } => {
            let n = brackets.max(1);
            let sum: f64 = (0..n)
                .map(|b| halving(bracket_start(min_epochs, reduction, b), reduction))
                .sum();
            Some(sum / f64::from(n))
        }
        Rule::Median { .. } => None,
    }
}

/// The first rung of Hyperband's bracket `b`: `min_epochs * reduction^b`.
fn bracket_start(min_epochs: u32, reduction: u32, b: u32) -> u32 {
    let first = u64::from(min_epochs) * u64::from(reduction).saturating_pow(b);
    u32::try_from(first).unwrap_or(u32::MAX)
}

/// The decisions taken so far, by configuration and epoch, and the new ones.
struct Journal<K> {
    /// The latest action per (configuration, epoch).
    latest: BTreeMap<(K, u32), Action>,
    new: Vec<Decision<K>>,
}

impl<K: Ord + Clone> Journal<K> {
    fn new(past: &[Decision<K>]) -> Journal<K> {
        let mut latest = BTreeMap::new();
        for d in past {
            latest.insert((d.config.clone(), d.epoch), d.action.clone());
        }
        Journal {
            latest,
            new: Vec::new(),
        }
    }

    fn get(&self, config: &K, epoch: u32) -> Option<&Action> {
        self.latest.get(&(config.clone(), epoch))
    }

    fn passed(&self, config: &K, epoch: u32) -> bool {
        matches!(
            self.get(config, epoch),
            Some(Action::Continue | Action::Promote)
        )
    }

    fn take(&mut self, config: &K, epoch: u32, action: Action) {
        self.latest.insert((config.clone(), epoch), action.clone());
        self.new.push(Decision {
            config: config.clone(),
            epoch,
            action,
        });
    }
}

/// The rungs below `epochs`: `first * reduction^k`.
fn rungs(first: u32, reduction: u32, epochs: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut r = u64::from(first.max(1));
    while r < u64::from(epochs) {
        // r < epochs, so it fits.
        out.push(r as u32);
        if reduction < 2 {
            break;
        }
        r *= u64::from(reduction);
    }
    out
}

/// `configs` ranked best first by `score`, ties to the smaller key.
fn ranked<K: Ord>(mut entries: Vec<(&K, f64)>) -> Vec<(&K, f64)> {
    entries.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    entries
}

/// ASHA over the configurations `members`, rungs from `first`.
fn asha<K: Ord + Clone + Debug>(
    objective: Objective,
    configs: &BTreeMap<K, Config>,
    members: &[&K],
    first: u32,
    reduction: u32,
    journal: &mut Journal<K>,
) {
    let reduction = reduction.max(2);
    let longest = members
        .iter()
        .filter_map(|k| configs.get(*k))
        .map(|c| c.epochs)
        .max()
        .unwrap_or(0);
    let all_rungs = rungs(first, reduction, longest);
    for k in 0..all_rungs.len() {
        let rung = Rung {
            epoch: all_rungs[k],
            below: &all_rungs[..k],
            reduction,
        };
        judge_rung(objective, configs, members, &rung, journal);
    }
}

/// One rung of ASHA: its epoch, the rungs below it, the reduction factor.
struct Rung<'a> {
    epoch: u32,
    below: &'a [u32],
    reduction: u32,
}

/// Decides for the configurations at `rung` by [`rung::verdicts`]: arrivals in the rung's top
/// go on, the rest stop; stopped ones in the top are promoted.
fn judge_rung<K: Ord + Clone + Debug>(
    objective: Objective,
    configs: &BTreeMap<K, Config>,
    members: &[&K],
    rung: &Rung<'_>,
    journal: &mut Journal<K>,
) {
    let epoch = rung.epoch;
    // Configurations at this rung: past every rung below, with a value here.
    let at_rung: Vec<(&K, f64)> = members
        .iter()
        .filter(|key| {
            let c = &configs[**key];
            epoch < c.epochs && rung.below.iter().all(|&r| journal.passed(key, r))
        })
        .filter_map(|key| configs[*key].at(epoch).map(|v| (*key, objective.score(v))))
        .collect();
    let ranking = ranked(at_rung);
    let n = ranking.len();
    let closed = n > 0 && rung_closed(configs, members, rung, journal);
    let quota = rung::quota(n, rung.reduction as usize, closed);
    let entries: Vec<rung::Entry> = ranking
        .iter()
        .map(|(key, score)| rung::Entry {
            score: *score,
            error: configs[*key].error(epoch),
            was: match journal.get(key, epoch) {
                None => rung::Was::Undecided,
                Some(Action::Stop { .. }) => rung::Was::Stopped,
                Some(_) => rung::Was::Passed,
            },
        })
        .collect();
    for (place, verdict) in rung::verdicts(&entries, quota) {
        let (key, score) = ranking[place];
        let action = match verdict {
            rung::Verdict::Continue => Action::Continue,
            rung::Verdict::Promote => Action::Promote,
            rung::Verdict::Stop => Action::Stop {
                reason: asha_reason(objective, score, epoch, place, n, quota),
            },
        };
        journal.take(key, epoch, action);
    }
}

/// Whether no configuration of `members` can still reach `rung`: each is too short, has a
/// value there, has every trial ended, or was stopped at a rung below.
fn rung_closed<K: Ord + Clone + Debug>(
    configs: &BTreeMap<K, Config>,
    members: &[&K],
    rung: &Rung<'_>,
    journal: &Journal<K>,
) -> bool {
    members.iter().all(|key| {
        let c = &configs[*key];
        rung.epoch >= c.epochs
            || c.at(rung.epoch).is_some()
            || c.trials.iter().all(|(_, ended)| *ended)
            || rung
                .below
                .iter()
                .any(|&r| matches!(journal.get(key, r), Some(Action::Stop { .. })))
    })
}

/// The median stopping rule.
fn median<K: Ord + Clone + Debug>(
    objective: Objective,
    configs: &BTreeMap<K, Config>,
    min_epochs: u32,
    min_trials: u32,
    journal: &mut Journal<K>,
) {
    let longest = configs.values().map(|c| c.epochs).max().unwrap_or(0);
    let stopped: BTreeSet<K> = journal
        .latest
        .iter()
        .filter(|(_, a)| matches!(a, Action::Stop { .. }))
        .map(|((k, _), _)| k.clone())
        .collect();
    let mut stopped = stopped;
    for epoch in min_epochs.max(1)..longest {
        // Every configuration's scores up to this epoch, when it is there.
        let curves: Vec<(&K, Vec<f64>)> = configs
            .iter()
            .filter(|(_, c)| epoch < c.epochs)
            .filter_map(|(k, c)| {
                let scores: Option<Vec<f64>> = (1..=epoch)
                    .map(|e| c.at(e).map(|v| objective.score(v)))
                    .collect();
                Some((k, scores?))
            })
            .collect();
        for (key, scores) in &curves {
            if stopped.contains(*key) || journal.get(key, epoch).is_some() {
                continue;
            }
            let mut means: Vec<f64> = curves
                .iter()
                .filter(|(other, _)| other != key)
                .map(|(_, s)| s.iter().sum::<f64>() / s.len() as f64)
                .collect();
            if means.len() < min_trials as usize || means.is_empty() {
                journal.take(key, epoch, Action::Continue);
                continue;
            }
            means.sort_by(f64::total_cmp);
            let mid = means.len() / 2;
            let med = if means.len() % 2 == 1 {
                means[mid]
            } else {
                (means[mid - 1] + means[mid]) / 2.0
            };
            let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if best < med {
                let reason = median_reason(objective, best, med, epoch, means.len());
                journal.take(key, epoch, Action::Stop { reason });
                stopped.insert((*key).clone());
            } else {
                journal.take(key, epoch, Action::Continue);
            }
        }
    }
}

#[cfg(test)]
mod tests;
