//! Early stopping in the scheduler (issue 17): each experiment's rule applied as its trials
//! report, its decisions journaled.
//!
//! The rule itself is [`sweep_common::search::stopping::decide`], a pure function of the curves
//! and the journal of past decisions, computed incrementally by a [`Judge`] per experiment: the
//! scheduler gives it each trial's curve when it changes (an epoch reported, a trial ended, an
//! attempt resumed from an older checkpoint) and asks it for decisions when a trial reports a
//! rung's epoch (every epoch for the median rule) or ends, and applies what it returns at once: `Stop` moves
//! every trial of the configuration (its seeds) to [`TrialState::Stopped`], keeping curves and
//! checkpoints (a leased one loses its lease: its worker's next call is refused as stale);
//! `Promote` queues them again, first in line, resuming from their checkpoints. Each decision
//! is a [`Change::Decision`], committed in the same transaction as the epoch report or end that
//! caused it, so a coordinator killed at any point restarts with exactly the decisions its
//! answered reports caused, and continues the same schedule.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sweep_common::TrialId;
use sweep_common::search::stopping::{self, Action, Decision, Judge};
use sweep_common::search::{Metric, StoppingSpec};

use super::{Change, Effect, Scheduler, Trial, TrialState};

/// One experiment's rule, its configurations and its journal.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The experiment.
    pub experiment: String,
    /// The rule and what it ranks by.
    pub spec: StoppingSpec,
    /// The trials (indices in the scheduler) of each configuration, in grid order; a
    /// configuration's index is its order in the experiment.
    pub configs: Vec<Vec<usize>>,
    /// The decisions taken, in order (a configuration is its index in `configs`).
    pub journal: Vec<Decision<u64>>,
    /// The rule over the configurations' curves and the journal (trials by their index in the
    /// scheduler).
    judge: Judge<u64>,
    /// Epochs whose report may bring a decision; `None` when any may (the median rule).
    rungs: Option<BTreeSet<u32>>,
}

impl Rule {
    /// The trial whose id names configuration `config` in the database (its first in grid
    /// order).
    pub fn representative(&self, config: u64) -> Option<usize> {
        let c = usize::try_from(config).ok()?;
        self.configs.get(c)?.first().copied()
    }
}

/// A decision as the database holds it: the configuration named by its first trial's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The experiment.
    pub experiment: String,
    /// Its place in the experiment's journal.
    pub seq: usize,
    /// The first trial (in grid order) of the configuration.
    pub config: TrialId,
    /// The epoch (rung) judged.
    pub epoch: u32,
    /// What it decided.
    pub action: Action,
}

/// The stopping state of every experiment that has a rule.
#[derive(Debug, Clone, Default)]
pub struct Stopping {
    /// One per experiment with a rule.
    pub rules: Vec<Rule>,
    /// Per trial index: its rule and configuration.
    of_trial: HashMap<usize, (usize, u64)>,
    /// Rules to run again (a trial of theirs reported a rung or ended).
    dirty: BTreeSet<usize>,
    /// Trials whose curve or end changed since their judge last saw them.
    touched: BTreeSet<usize>,
}

/// Why promoting a trial was refused or did nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Promoted {
    /// The trials queued again.
    pub trials: Vec<TrialId>,
    /// Names that matched nothing.
    pub unknown: Vec<String>,
    /// Named trials that are not stopped.
    pub not_stopped: Vec<String>,
}

impl Scheduler {
    /// Applies the experiments' stopping rules (`rules`: experiment name and rule), with the
    /// decisions taken before a restart (`journal`, in each experiment's order). Decisions
    /// naming a configuration the grid no longer has are dropped; returns how many.
    pub fn set_stopping(&mut self, rules: &[(String, StoppingSpec)], journal: &[Judged]) -> usize {
        let mut state = Stopping::default();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (e, (name, spec)) in rules.iter().enumerate() {
            by_name.insert(name.as_str(), e);
            state.rules.push(Rule {
                experiment: name.clone(),
                spec: *spec,
                configs: Vec::new(),
                journal: Vec::new(),
                judge: Judge::new(*spec),
                rungs: None,
            });
        }
        let mut keys: Vec<HashMap<String, u64>> = vec![HashMap::new(); rules.len()];
        for (i, t) in self.trials.iter().enumerate() {
            let Some(&e) = by_name.get(t.spec.experiment.as_str()) else {
                continue;
            };
            let rule = &mut state.rules[e];
            let next = rule.configs.len() as u64;
            let c = *keys[e].entry(t.spec.configuration()).or_insert(next);
            if c == next {
                rule.configs.push(Vec::new());
            }
            rule.configs[c as usize].push(i);
            state.of_trial.insert(i, (e, c));
        }
        for rule in &mut state.rules {
            for (c, members) in rule.configs.iter().enumerate() {
                for &i in members {
                    let epochs = self.trials[i].spec.params.epochs;
                    rule.judge.add_trial(i as u64, c as u64, c as u64, epochs);
                }
            }
            let longest = rule
                .configs
                .iter()
                .flatten()
                .map(|&i| self.trials[i].spec.params.epochs)
                .max()
                .unwrap_or(0);
            rule.rungs = stopping::rung_epochs(&rule.spec.rule, longest);
        }
        let mut dropped = 0;
        for j in journal {
            let config = self
                .index
                .get(&j.config)
                .and_then(|i| state.of_trial.get(i))
                .filter(|&&(e, _)| state.rules[e].experiment == j.experiment);
            match config {
                Some(&(e, c)) => {
                    let d = Decision {
                        config: c,
                        epoch: j.epoch,
                        action: j.action.clone(),
                    };
                    state.rules[e].judge.record(&d);
                    state.rules[e].journal.push(d);
                }
                None => dropped += 1,
            }
        }
        // Decisions due while the coordinator was down (none, unless the grid changed) are
        // taken at the first report.
        state.dirty = (0..state.rules.len()).collect();
        state.touched = state.of_trial.keys().copied().collect();
        self.stopping = state;
        dropped
    }

    /// Puts trial `i`, added while the sweep runs, under its experiment's rule (in its
    /// configuration, or a new one after the others), as [`Scheduler::set_stopping`] would
    /// have at a restart.
    pub(super) fn note_new_trial(&mut self, i: usize) {
        let spec = &self.trials[i].spec;
        let Some(e) = self
            .stopping
            .rules
            .iter()
            .position(|r| r.experiment == spec.experiment)
        else {
            return;
        };
        let configuration = spec.configuration();
        let rule = &mut self.stopping.rules[e];
        let trials = &self.trials;
        let found = rule.configs.iter().position(|members| {
            members
                .first()
                .is_some_and(|&f| trials[f].spec.configuration() == configuration)
        });
        let c = found.unwrap_or_else(|| {
            rule.configs.push(Vec::new());
            rule.configs.len() - 1
        });
        rule.configs[c].push(i);
        let epochs = spec.params.epochs;
        rule.judge.add_trial(i as u64, c as u64, c as u64, epochs);
        self.stopping.of_trial.insert(i, (e, c as u64));
        self.stopping.touched.insert(i);
    }

    /// The experiments' stopping rules and journals.
    pub fn stopping(&self) -> &Stopping {
        &self.stopping
    }

    /// Notes that trial `i` reported `epoch`: its rule runs if that epoch may bring a decision.
    pub(super) fn note_epoch(&mut self, i: usize, epoch: u32) {
        if let Some(&(e, _)) = self.stopping.of_trial.get(&i) {
            self.stopping.touched.insert(i);
            let due = match &self.stopping.rules[e].rungs {
                Some(rungs) => rungs.contains(&epoch),
                None => true,
            };
            if due {
                self.stopping.dirty.insert(e);
            }
        }
    }

    /// Notes that trial `i` ended (succeeded or failed): its configuration's mean at a rung may
    /// now be known without it.
    pub(super) fn note_ended(&mut self, i: usize) {
        if let Some(&(e, _)) = self.stopping.of_trial.get(&i) {
            self.stopping.touched.insert(i);
            self.stopping.dirty.insert(e);
        }
    }

    /// Notes that trial `i`'s curve may have changed otherwise (epochs dropped for a resume
    /// from an older checkpoint, or no longer ended): its judge sees it before it decides
    /// again.
    pub(super) fn note_curve(&mut self, i: usize) {
        if self.stopping.of_trial.contains_key(&i) {
            self.stopping.touched.insert(i);
        }
    }

    /// Runs the rules of the experiments noted since the last call and applies their
    /// decisions; returns what happened to trials.
    pub(super) fn judge(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        loop {
            self.show_curves();
            let Some(e) = self.stopping.dirty.pop_first() else {
                break;
            };
            let new = self.stopping.rules[e].judge.decide();
            #[cfg(test)]
            {
                // The definition, over the whole curves: the judge must agree with it.
                let rule = &self.stopping.rules[e];
                let expected = stopping::decide(&rule.spec, &self.curves(rule), &rule.journal);
                assert_eq!(new, expected, "the judge of {} disagrees", rule.experiment);
            }
            for d in new {
                effects.extend(self.apply_decision(e, d));
            }
        }
        effects
    }

    /// Gives the judges the curves of the trials touched since they last saw them.
    fn show_curves(&mut self) {
        for i in std::mem::take(&mut self.stopping.touched) {
            let Some(&(e, _)) = self.stopping.of_trial.get(&i) else {
                continue;
            };
            let metric = self.stopping.rules[e].spec.objective.metric;
            let (values, ended) = curve(&self.trials[i], metric);
            self.stopping.rules[e]
                .judge
                .set_curve(&(i as u64), &values, ended);
        }
    }

    /// The curves of a rule's trials, by the metric it ranks by.
    #[cfg(test)]
    fn curves(&self, rule: &Rule) -> Vec<stopping::TrialCurve<u64>> {
        let metric = rule.spec.objective.metric;
        let mut curves = Vec::new();
        for (c, members) in rule.configs.iter().enumerate() {
            for &i in members {
                let t = &self.trials[i];
                let (values, ended) = curve(t, metric);
                curves.push(stopping::TrialCurve {
                    trial: i as u64,
                    config: c as u64,
                    order: c as u64,
                    values,
                    epochs: t.spec.params.epochs,
                    ended,
                });
            }
        }
        curves
    }

    /// Journals decision `d` of rule `e` (taken by its judge) and applies it to the
    /// configuration's trials.
    fn apply_decision(&mut self, e: usize, d: Decision<u64>) -> Vec<Effect> {
        let rule = &mut self.stopping.rules[e];
        let members = usize::try_from(d.config)
            .ok()
            .and_then(|c| rule.configs.get(c))
            .cloned()
            .unwrap_or_default();
        rule.journal.push(d.clone());
        self.changes.push(Change::Decision {
            experiment: e,
            seq: rule.journal.len() - 1,
        });
        match d.action {
            Action::Continue => Vec::new(),
            // Not below the epochs an operator promoted a trial to (`promote --epochs`): the
            // decision is journaled as the rule took it, and the trial trains on.
            Action::Stop { reason } => {
                let stopped: Vec<usize> = members
                    .into_iter()
                    .filter(|&i| !self.promoted_beyond(i, d.epoch))
                    .collect();
                stopped
                    .into_iter()
                    .flat_map(|i| self.stop_trial(i, d.epoch, &reason))
                    .collect()
            }
            // Queued ahead one by one: the last queued leads, so the first seed goes last.
            Action::Promote => members
                .into_iter()
                .rev()
                .filter_map(|i| self.resume_stopped(i))
                .collect(),
        }
    }

    /// The trials of trial `i`'s configuration under its experiment's rule (its seeds, `i`
    /// among them); `None` when its experiment has no rule.
    pub(super) fn seeds_of(&self, i: usize) -> Option<&[usize]> {
        let (e, c) = self.stopping_key(i)?;
        let c = usize::try_from(c).ok()?;
        self.stopping
            .rules
            .get(e)?
            .configs
            .get(c)
            .map(Vec::as_slice)
    }

    /// Trial `i`'s rule (its index) and configuration (its index in the rule), when its
    /// experiment has a rule.
    pub(super) fn stopping_key(&self, i: usize) -> Option<(usize, u64)> {
        self.stopping.of_trial.get(&i).copied()
    }

    /// Stops trial `i` at `epoch` unless it has ended.
    pub(super) fn stop_trial(&mut self, i: usize, epoch: u32, reason: &str) -> Vec<Effect> {
        let t = &mut self.trials[i];
        let worker = match &t.state {
            TrialState::Leased { lease, .. } => Some(lease.worker),
            TrialState::Pending { .. } => None,
            TrialState::Succeeded(_) | TrialState::Failed { .. } | TrialState::Stopped { .. } => {
                return Vec::new();
            }
        };
        let checkpoints = t.state.take_checkpoints();
        t.state = TrialState::Stopped {
            epoch,
            reason: reason.to_owned(),
            checkpoints,
        };
        match worker {
            Some(w) => self.end_lease(i, w, true),
            None => {
                self.pending.retain(|j| j != i);
                self.changes.push(Change::Trial(self.trials[i].spec.id));
                self.trial_ended(i)
            }
        }
    }

    /// Queues stopped trial `i` again, first in line, to resume from its checkpoint.
    pub(super) fn resume_stopped(&mut self, i: usize) -> Option<Effect> {
        let t = &mut self.trials[i];
        if !matches!(t.state, TrialState::Stopped { .. }) {
            return None;
        }
        let checkpoints = t.state.take_checkpoints();
        let after = checkpoints.epoch();
        t.state = TrialState::Pending {
            checkpoints,
            ahead: None,
        };
        t.keep_checkpointed_epochs();
        let (id, dataset) = (t.spec.id, t.spec.dataset);
        self.note_curve(i);
        self.changes.push(Change::Supersede { trial: id, after });
        self.changes.push(Change::Trial(id));
        self.terminal -= 1;
        *self.unfinished.entry(dataset).or_default() += 1;
        self.queue_ahead(dataset, i);
        Some(Effect::Requeued(id))
    }

    /// An operator's promotion (`coordinator promote`): the stopped trials named (by id or
    /// name), or every stopped trial of the experiments named, resume with all their seeds.
    /// The rule journals it as its own promotion at the rung where each stopped, so it judges
    /// them again at the rungs above.
    pub fn promote(
        &mut self,
        trials: &[String],
        experiments: &[String],
    ) -> Result<(Vec<Effect>, Promoted), super::StateError> {
        if self.is_finished() {
            return Err(super::StateError::SweepFinished);
        }
        let (named, of_experiments, unknown) = self.select(trials, experiments);
        let stopped =
            |s: &Scheduler, i: usize| matches!(s.trials[i].state, TrialState::Stopped { .. });
        let not_stopped = named
            .iter()
            .filter(|&&i| !stopped(self, i))
            .map(|&i| self.trials[i].spec.name.clone())
            .collect();
        let chosen: BTreeSet<usize> = named
            .into_iter()
            .chain(of_experiments)
            .filter(|&i| stopped(self, i))
            .collect();
        // Whole configurations: the rule judges seeds together.
        let mut configs: BTreeMap<(usize, u64), u32> = BTreeMap::new();
        let mut alone = Vec::new();
        for i in chosen {
            let TrialState::Stopped { epoch, .. } = self.trials[i].state else {
                continue;
            };
            match self.stopping.of_trial.get(&i) {
                Some(&key) => {
                    configs.insert(key, epoch);
                }
                None => alone.push(i),
            }
        }
        let mut effects = Vec::new();
        for ((e, c), epoch) in configs {
            effects.extend(self.promote_config(e, c, epoch));
        }
        effects.extend(
            alone
                .into_iter()
                .rev()
                .filter_map(|i| self.resume_stopped(i)),
        );
        let trials = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Requeued(id) => Some(*id),
                _ => None,
            })
            .collect();
        Ok((
            effects,
            Promoted {
                trials,
                unknown,
                not_stopped,
            },
        ))
    }

    /// An operator's promotion of configuration `c` of rule `e`, stopped at `epoch`: journaled
    /// as the rule's own promotion there, and applied (its stopped seeds resume).
    pub(super) fn promote_config(&mut self, e: usize, c: u64, epoch: u32) -> Vec<Effect> {
        let d = Decision {
            config: c,
            epoch,
            action: Action::Promote,
        };
        self.stopping.rules[e].judge.record(&d);
        self.apply_decision(e, d)
    }

    /// Decision `seq` of rule `e`, as the database holds it.
    pub fn judged(&self, e: usize, seq: usize) -> Option<Judged> {
        let rule = self.stopping.rules.get(e)?;
        let d = rule.journal.get(seq)?;
        let first = rule.representative(d.config)?;
        Some(Judged {
            experiment: rule.experiment.clone(),
            seq,
            config: self.trials[first].spec.id,
            epoch: d.epoch,
            action: d.action.clone(),
        })
    }
}

/// A trial's curve by `metric`: its epochs from epoch 1 on, while they follow one another;
/// and whether it reports no more (it succeeded or failed for good).
fn curve(t: &Trial, metric: Metric) -> (Vec<f64>, bool) {
    let values = t
        .epochs
        .iter()
        .enumerate()
        .take_while(|(j, m)| m.epoch as usize == j + 1)
        .map(|(_, m)| metric.of(m))
        .collect();
    let ended = matches!(
        t.state,
        TrialState::Succeeded(_) | TrialState::Failed { .. }
    );
    (values, ended)
}
