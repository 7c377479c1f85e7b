//! The stopping rules kept up to date as curves arrive: a [`Judge`] holds an experiment's
//! curves, the seed means of each configuration, its journal and, per rung, the
//! configurations there, so a decision costs work in the configurations at the rungs it
//! touches, not in the experiment's curves (O(trials x epochs) for [`decide`]).
//!
//! [`decide`] stays the definition: a judge fed the same curves and journal takes exactly the
//! decisions `decide` takes, in the same order (a property test compares them over random
//! curves, arrival orders, ended and cut-short trials and operators' promotions).
//!
//! What it keeps, per configuration: each seed's curve, the seed means at every epoch where
//! all its seeds reported or ended (a prefix of the epochs), and its decisions by epoch. For
//! ASHA and Hyperband, per rung: the configurations there with their scores, and how many of
//! the bracket's configurations may still reach it (the rung is closed at zero). For the
//! median rule, per epoch: the configurations whose means are known up to it. A change to a
//! curve or a decision recomputes that configuration's place at each rung (or epoch) and marks
//! the rungs whose inputs changed; [`Judge::decide`] judges those rungs only, lowest first, as
//! `decide` judges all of them (a rung whose inputs did not change decides nothing new).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::{Action, Decision, Rule, StoppingSpec, bracket_start, rung, rungs, seed_mean};

/// An experiment's stopping rule with its curves and journal, judged incrementally.
#[derive(Debug, Clone)]
pub struct Judge<K> {
    spec: StoppingSpec,
    configs: Vec<Conf<K>>,
    by_key: BTreeMap<K, usize>,
    /// Per trial: its configuration and its seed's place in it.
    trials: BTreeMap<K, (usize, usize)>,
    /// Decisions recorded for configurations that have no trial yet, moved in when one comes.
    orphans: BTreeMap<K, BTreeMap<u32, Action>>,
    plan: Plan<K>,
    /// The bracket layout must be rebuilt (a configuration came or its epochs changed).
    stale: bool,
    new: Vec<Decision<K>>,
}

/// One seed's curve.
#[derive(Debug, Clone, Default)]
struct Seed {
    values: Vec<f64>,
    ended: bool,
}

/// A configuration: its seeds, their means and its decisions.
#[derive(Debug, Clone)]
struct Conf<K> {
    key: K,
    order: u64,
    epochs: u32,
    seeds: Vec<Seed>,
    /// `means[e - 1]`: the mean over the seeds that reported epoch `e`, for every epoch at
    /// which each seed reported or ended.
    means: Vec<f64>,
    /// The latest action at each epoch.
    decisions: BTreeMap<u32, Action>,
    /// Epochs whose latest action is a stop.
    stops: usize,
    /// ASHA: its bracket and its place at each of the bracket's rungs.
    bracket: usize,
    places: Vec<Place>,
    /// Median: the epochs `1..=present` at which its running mean is known (and it trains
    /// past them); running sums and best scores by epoch.
    present: u32,
    sums: Vec<f64>,
    best: Vec<f64>,
}

impl<K> Conf<K> {
    fn passed(&self, epoch: u32) -> bool {
        matches!(
            self.decisions.get(&epoch),
            Some(Action::Continue | Action::Promote)
        )
    }

    fn stopped_at(&self, epoch: u32) -> bool {
        matches!(self.decisions.get(&epoch), Some(Action::Stop { .. }))
    }

    /// The mean at `epoch` (1-based) when known.
    fn at(&self, epoch: u32) -> Option<f64> {
        let e = usize::try_from(epoch).ok()?;
        e.checked_sub(1).and_then(|i| self.means.get(i)).copied()
    }

    /// The standard error of the seed mean at `epoch` (over the seeds that reported it).
    fn error(&self, epoch: u32) -> f64 {
        let e = epoch as usize;
        let mut values: Vec<f64> = self
            .seeds
            .iter()
            .filter_map(|s| s.values.get(e.wrapping_sub(1)).copied())
            .collect();
        rung::standard_error(&mut values)
    }

    /// The last epoch at which every seed reported or ended.
    fn known(&self) -> usize {
        let open = self
            .seeds
            .iter()
            .filter(|s| !s.ended)
            .map(|s| s.values.len());
        match open.min() {
            Some(n) => n,
            None => self.seeds.iter().map(|s| s.values.len()).max().unwrap_or(0),
        }
    }

    /// Recomputes the means from epoch `from` (1-based) on.
    fn update_means(&mut self, from: usize) {
        let known = self.known();
        self.means.truncate(from.saturating_sub(1).min(known));
        let mut values = Vec::with_capacity(self.seeds.len());
        for e in self.means.len()..known {
            values.clear();
            values.extend(self.seeds.iter().filter_map(|s| s.values.get(e).copied()));
            match seed_mean(&mut values) {
                Some(m) => self.means.push(m),
                None => break,
            }
        }
    }
}

/// A configuration's place at one rung.
#[derive(Debug, Clone, Copy, Default)]
struct Place {
    /// Its score when it is at the rung (past every rung below, with a mean there).
    score: Option<f64>,
    /// It may still reach the rung (the rung is not closed while one may).
    blocks: bool,
}

impl PartialEq for Place {
    fn eq(&self, other: &Place) -> bool {
        self.blocks == other.blocks && self.score.map(f64::to_bits) == other.score.map(f64::to_bits)
    }
}

/// The rule's own state.
#[derive(Debug, Clone)]
enum Plan<K> {
    Asha {
        /// The reduction factor (at least 2).
        reduction: u32,
        brackets: Vec<Bracket>,
        /// Rungs to judge, as (bracket, rung index).
        dirty: BTreeSet<(usize, usize)>,
    },
    Median {
        min_epochs: u32,
        min_trials: u32,
        /// `present[e - 1]`: the configurations whose running mean at `e` is known.
        present: Vec<BTreeMap<K, usize>>,
        /// Epochs to judge.
        dirty: BTreeSet<u32>,
    },
}

/// One bracket of ASHA (Hyperband has several).
#[derive(Debug, Clone)]
struct Bracket {
    first: u32,
    /// The most epochs of its configurations (its rungs are below).
    longest: u32,
    members: Vec<usize>,
    rungs: Vec<RungAt>,
}

/// One rung: the configurations there with their scores, and how many may still reach it.
#[derive(Debug, Clone)]
struct RungAt {
    epoch: u32,
    at: BTreeMap<usize, f64>,
    blocking: usize,
}

impl<K: Ord + Clone + Debug> Judge<K> {
    /// A judge of `spec` with no trial yet.
    pub fn new(spec: StoppingSpec) -> Judge<K> {
        let plan = match spec.rule {
            Rule::Asha { reduction, .. } | Rule::Hyperband { reduction, .. } => Plan::Asha {
                reduction: reduction.max(2),
                brackets: Vec::new(),
                dirty: BTreeSet::new(),
            },
            Rule::Median {
                min_epochs,
                min_trials,
            } => Plan::Median {
                min_epochs: min_epochs.max(1),
                min_trials,
                present: Vec::new(),
                dirty: BTreeSet::new(),
            },
        };
        Judge {
            spec,
            configs: Vec::new(),
            by_key: BTreeMap::new(),
            trials: BTreeMap::new(),
            orphans: BTreeMap::new(),
            plan,
            stale: true,
            new: Vec::new(),
        }
    }

    /// Adds trial `trial` of configuration `config` (at `order` in the experiment) that trains
    /// `epochs` epochs when nothing stops it, with no epoch reported yet. A trial added twice
    /// is ignored.
    pub fn add_trial(&mut self, trial: K, config: K, order: u64, epochs: u32) {
        if self.trials.contains_key(&trial) {
            return;
        }
        let c = match self.by_key.get(&config) {
            Some(&c) => c,
            None => self.new_config(config, order, epochs),
        };
        let conf = &mut self.configs[c];
        if order < conf.order || epochs > conf.epochs {
            conf.order = conf.order.min(order);
            conf.epochs = conf.epochs.max(epochs);
            self.stale = true;
        }
        conf.seeds.push(Seed::default());
        self.trials.insert(trial, (c, conf.seeds.len() - 1));
        // A seed with no epoch: the configuration's means are known nowhere.
        conf.update_means(1);
        self.refresh(c, false);
    }

    /// Adds configuration `config`, placed in its bracket when the bracket's rungs stay the
    /// same (else the layout is rebuilt before the next use).
    fn new_config(&mut self, config: K, order: u64, epochs: u32) -> usize {
        let decisions = self.orphans.remove(&config).unwrap_or_default();
        let stops = decisions
            .values()
            .filter(|a| matches!(a, Action::Stop { .. }))
            .count();
        let c = self.configs.len();
        self.configs.push(Conf {
            key: config.clone(),
            order,
            epochs,
            seeds: Vec::new(),
            means: Vec::new(),
            decisions,
            stops,
            bracket: 0,
            places: Vec::new(),
            present: 0,
            sums: Vec::new(),
            best: Vec::new(),
        });
        self.by_key.insert(config, c);
        if let Plan::Asha {
            reduction,
            brackets,
            ..
        } = &mut self.plan
        {
            let b = usize::try_from(order % brackets.len().max(1) as u64).unwrap_or(0);
            match brackets.get_mut(b) {
                Some(bracket)
                    if rungs(bracket.first, *reduction, bracket.longest.max(epochs)).len()
                        == bracket.rungs.len() =>
                {
                    bracket.longest = bracket.longest.max(epochs);
                    bracket.members.push(c);
                    self.configs[c].bracket = b;
                }
                _ => self.stale = true,
            }
        }
        c
    }

    /// Sets trial `trial`'s curve (the metric after each epoch from epoch 1, contiguous) and
    /// whether it reports no more epochs (it finished or failed for good). Unknown trials are
    /// ignored.
    pub fn set_curve(&mut self, trial: &K, values: &[f64], ended: bool) {
        let Some(&(c, s)) = self.trials.get(trial) else {
            return;
        };
        let seed = &mut self.configs[c].seeds[s];
        let same = seed
            .values
            .iter()
            .zip(values)
            .take_while(|(a, b)| a.to_bits() == b.to_bits())
            .count();
        if same == seed.values.len() && same == values.len() && seed.ended == ended {
            return;
        }
        seed.values.truncate(same);
        seed.values.extend_from_slice(&values[same..]);
        seed.ended = ended;
        self.configs[c].update_means(same + 1);
        self.layout();
        self.refresh(c, false);
    }

    /// Records a decision taken elsewhere (before a restart, or an operator's promotion), as
    /// if it were in `decide`'s `past`.
    pub fn record(&mut self, d: &Decision<K>) {
        match self.by_key.get(&d.config) {
            Some(&c) => {
                self.note(c, d.epoch, d.action.clone());
                self.layout();
                self.refresh(c, true);
            }
            None => {
                self.orphans
                    .entry(d.config.clone())
                    .or_default()
                    .insert(d.epoch, d.action.clone());
            }
        }
    }

    /// The new decisions since the last call, in the order they are taken (they are recorded
    /// as taken).
    pub fn decide(&mut self) -> Vec<Decision<K>> {
        self.layout();
        loop {
            match &mut self.plan {
                Plan::Asha { dirty, .. } => match dirty.pop_first() {
                    Some((b, k)) => self.judge_rung(b, k),
                    None => break,
                },
                Plan::Median { dirty, .. } => match dirty.pop_first() {
                    Some(epoch) => self.judge_epoch(epoch),
                    None => break,
                },
            }
        }
        std::mem::take(&mut self.new)
    }

    /// Sets the latest action of configuration `c` at `epoch`.
    fn note(&mut self, c: usize, epoch: u32, action: Action) {
        let conf = &mut self.configs[c];
        let is_stop = matches!(action, Action::Stop { .. });
        if let Some(Action::Stop { .. }) = conf.decisions.insert(epoch, action) {
            conf.stops -= 1;
        }
        if is_stop {
            conf.stops += 1;
        }
    }

    /// Takes a new decision.
    fn take(&mut self, c: usize, epoch: u32, action: Action) {
        self.new.push(Decision {
            config: self.configs[c].key.clone(),
            epoch,
            action: action.clone(),
        });
        self.note(c, epoch, action);
        self.refresh(c, false);
    }

    /// Rebuilds the brackets when the layout is stale: each configuration's bracket, each
    /// bracket's rungs, every place.
    fn layout(&mut self) {
        if !std::mem::take(&mut self.stale) {
            return;
        }
        let (min_epochs, reduction_raw, count) = match self.spec.rule {
            Rule::Asha {
                min_epochs,
                reduction,
            } => (min_epochs, reduction, 1),
            Rule::Hyperband {
                min_epochs,
                reduction,
                brackets,
            } => (min_epochs, reduction, brackets.max(1)),
            Rule::Median { .. } => {
                for c in 0..self.configs.len() {
                    self.refresh(c, false);
                }
                return;
            }
        };
        let Plan::Asha {
            reduction,
            brackets,
            dirty,
        } = &mut self.plan
        else {
            return;
        };
        *brackets = (0..count)
            .map(|b| Bracket {
                first: if matches!(self.spec.rule, Rule::Asha { .. }) {
                    min_epochs
                } else {
                    bracket_start(min_epochs, reduction_raw, b)
                },
                longest: 0,
                members: Vec::new(),
                rungs: Vec::new(),
            })
            .collect();
        for (c, conf) in self.configs.iter_mut().enumerate() {
            conf.bracket = usize::try_from(conf.order % u64::from(count)).unwrap_or(0);
            conf.places.clear();
            brackets[conf.bracket].members.push(c);
        }
        dirty.clear();
        for (b, bracket) in brackets.iter_mut().enumerate() {
            bracket.longest = bracket
                .members
                .iter()
                .map(|&c| self.configs[c].epochs)
                .max()
                .unwrap_or(0);
            bracket.rungs = rungs(bracket.first, *reduction, bracket.longest)
                .into_iter()
                .map(|epoch| RungAt {
                    epoch,
                    at: BTreeMap::new(),
                    blocking: 0,
                })
                .collect();
            dirty.extend((0..bracket.rungs.len()).map(|k| (b, k)));
        }
        for c in 0..self.configs.len() {
            self.refresh(c, true);
        }
    }

    /// Recomputes configuration `c`'s places (rungs, or median epochs) after its curves or
    /// decisions changed, and marks what must be judged again; `rejudge`: every rung (or
    /// epoch) of `c`, as after a decision recorded from elsewhere.
    fn refresh(&mut self, c: usize, rejudge: bool) {
        if self.stale {
            return;
        }
        match &self.plan {
            Plan::Asha { .. } => self.refresh_rungs(c, rejudge),
            Plan::Median { .. } => self.refresh_epochs(c, rejudge),
        }
    }

    fn refresh_rungs(&mut self, c: usize, rejudge: bool) {
        let objective = self.spec.objective;
        let Plan::Asha {
            brackets, dirty, ..
        } = &mut self.plan
        else {
            return;
        };
        let conf = &mut self.configs[c];
        let bracket = &mut brackets[conf.bracket];
        let epochs: Vec<u32> = bracket.rungs.iter().map(|r| r.epoch).collect();
        conf.places.resize(epochs.len(), Place::default());
        let all_ended = conf.seeds.iter().all(|s| s.ended);
        for (k, &r) in epochs.iter().enumerate() {
            let below = &epochs[..k];
            let mean = conf.at(r);
            let eligible = r < conf.epochs && below.iter().all(|&b| conf.passed(b));
            let place = Place {
                score: mean.filter(|_| eligible).map(|v| objective.score(v)),
                blocks: !(r >= conf.epochs
                    || mean.is_some()
                    || all_ended
                    || below.iter().any(|&b| conf.stopped_at(b))),
            };
            let old = conf.places[k];
            if old == place && !rejudge {
                continue;
            }
            let rung = &mut bracket.rungs[k];
            match place.score {
                Some(s) => rung.at.insert(c, s),
                None => rung.at.remove(&c),
            };
            rung.blocking = rung.blocking + usize::from(place.blocks) - usize::from(old.blocks);
            conf.places[k] = place;
            dirty.insert((conf.bracket, k));
        }
    }

    /// Judges rung `k` of bracket `b`, as `judge_rung` in [`decide`] does.
    fn judge_rung(&mut self, b: usize, k: usize) {
        let Plan::Asha {
            reduction,
            brackets,
            ..
        } = &self.plan
        else {
            return;
        };
        let reduction = *reduction as usize;
        let Some(rung) = brackets.get(b).and_then(|br| br.rungs.get(k)) else {
            return;
        };
        let epoch = rung.epoch;
        let configs = &self.configs;
        let mut ranking: Vec<(usize, f64)> = rung.at.iter().map(|(&c, &s)| (c, s)).collect();
        ranking.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| configs[a.0].key.cmp(&configs[b.0].key))
        });
        let n = ranking.len();
        let quota = rung::quota(n, reduction, n > 0 && rung.blocking == 0);
        let entries: Vec<rung::Entry> = ranking
            .iter()
            .map(|&(c, score)| rung::Entry {
                score,
                error: configs[c].error(epoch),
                was: match configs[c].decisions.get(&epoch) {
                    None => rung::Was::Undecided,
                    Some(Action::Stop { .. }) => rung::Was::Stopped,
                    Some(_) => rung::Was::Passed,
                },
            })
            .collect();
        let objective = self.spec.objective;
        for (place, verdict) in rung::verdicts(&entries, quota) {
            let (c, score) = ranking[place];
            let action = match verdict {
                rung::Verdict::Continue => Action::Continue,
                rung::Verdict::Promote => Action::Promote,
                rung::Verdict::Stop => Action::Stop {
                    reason: super::asha_reason(objective, score, epoch, place, n, quota),
                },
            };
            self.take(c, epoch, action);
        }
    }

    fn refresh_epochs(&mut self, c: usize, rejudge: bool) {
        let objective = self.spec.objective;
        let Plan::Median {
            min_epochs,
            present,
            dirty,
            ..
        } = &mut self.plan
        else {
            return;
        };
        let conf = &mut self.configs[c];
        let known = u32::try_from(conf.means.len()).unwrap_or(u32::MAX);
        let now = known.min(conf.epochs.saturating_sub(1));
        let before = conf.present;
        // Running sums and bests: recomputed whole (a curve cut short may change any).
        conf.sums.clear();
        conf.best.clear();
        let (mut sum, mut best) = (std::iter::empty::<f64>().sum::<f64>(), f64::NEG_INFINITY);
        for &m in conf.means.iter().take(now as usize) {
            let s = objective.score(m);
            sum += s;
            best = best.max(s);
            conf.sums.push(sum);
            conf.best.push(best);
        }
        if present.len() < now as usize {
            present.resize_with(now as usize, BTreeMap::new);
        }
        for e in now + 1..=before {
            present[e as usize - 1].remove(&conf.key);
        }
        for e in before + 1..=now {
            present[e as usize - 1].insert(conf.key.clone(), c);
        }
        conf.present = now;
        let from = if rejudge { 1 } else { before + 1 };
        dirty.extend((from.max(*min_epochs)..=now).filter(|_| conf.stops == 0));
    }

    /// Judges epoch `epoch` by the median rule, as `median` in [`decide`] does.
    fn judge_epoch(&mut self, epoch: u32) {
        let Plan::Median {
            min_trials,
            present,
            ..
        } = &self.plan
        else {
            return;
        };
        let Some(here) = present.get(epoch as usize - 1) else {
            return;
        };
        let e = epoch as usize;
        // Each configuration here with its running mean, in key order.
        let members: Vec<(usize, f64)> = here
            .values()
            .map(|&c| (c, self.configs[c].sums[e - 1] / e as f64))
            .collect();
        let mut all: Vec<f64> = members.iter().map(|m| m.1).collect();
        all.sort_by(f64::total_cmp);
        let min_trials = *min_trials as usize;
        let objective = self.spec.objective;
        for (c, mine) in members {
            let conf = &self.configs[c];
            if conf.stops > 0 || conf.decisions.contains_key(&epoch) {
                continue;
            }
            let others = all.len() - 1;
            if others < min_trials || others == 0 {
                self.take(c, epoch, Action::Continue);
                continue;
            }
            // The median of the others: `all` without one value equal to this one's.
            let p = all.partition_point(|v| v.total_cmp(&mine).is_lt());
            let other = |i: usize| if i < p { all[i] } else { all[i + 1] };
            let mid = others / 2;
            let med = if others % 2 == 1 {
                other(mid)
            } else {
                (other(mid - 1) + other(mid)) / 2.0
            };
            let best = conf.best[e - 1];
            if best < med {
                let reason = super::median_reason(objective, best, med, epoch, others);
                self.take(c, epoch, Action::Stop { reason });
            } else {
                self.take(c, epoch, Action::Continue);
            }
        }
    }
}

#[cfg(test)]
mod tests;
