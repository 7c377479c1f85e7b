//! An operator's promotion to more epochs (`coordinator promote --trial NAME --epochs N`, issue
//! 17 part 2): a stopped trial, or a succeeded one that kept its latest checkpoint, continues
//! from that checkpoint up to `N` epochs, with every seed of its configuration when its
//! experiment has a stopping rule (the rule judges seeds together).
//!
//! A trial's id covers its `epochs`, so the promoted trial is renamed to the id of its content
//! with `N` epochs (as an edited grid file's longer trial adopts the shorter one's row,
//! `lineage`), and the promotion is a durable decision about its lineage (its content without
//! `epochs`): `Change::Renamed` records both, and at a restart the grid's trial of that lineage
//! trains `max(grid's epochs, N)` (`lineage::apply_promotions`), so neither the same grid nor
//! one asking for fewer epochs loses it. The stopping rule judges the promoted configuration as
//! before, with its new epochs, but stops no promoted trial below `N`.
//!
//! Checked first, whole ([`Scheduler::check_more_epochs`], nothing changed on a refusal),
//! then applied ([`Scheduler::more_epochs`]) once the state owner has read the curves of
//! archived trials back and moved the shorter runs' final weights aside.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sweep_common::{EpochMetrics, TrialId, TrialSpec};

use super::{Change, Effect, Scheduler, StateError, Trial, TrialState};

/// A promotion to more epochs, checked: the trials it moves and the epochs they train to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoreEpochs {
    /// The trials (indices in the scheduler, ascending): those named, with every seed of their
    /// configurations.
    trials: Vec<usize>,
    /// The epochs they train to.
    pub epochs: u32,
}

impl MoreEpochs {
    /// The trials it moves whose curves are only in the database (archived when they
    /// succeeded): [`Scheduler::more_epochs`] needs them back.
    pub fn archived(&self, s: &Scheduler) -> Vec<TrialId> {
        self.trials
            .iter()
            .map(|&i| &s.trials[i])
            .filter(|t| t.is_archived())
            .map(|t| t.spec.id)
            .collect()
    }

    /// The succeeded trials it continues, with their final weights' files (relative to the
    /// output folder): the longer runs write those files, so the shorter runs' are moved aside
    /// first (nothing computed is lost).
    pub fn weights<'s>(&self, s: &'s Scheduler) -> Vec<(&'s TrialSpec, &'s str)> {
        self.trials
            .iter()
            .map(|&i| &s.trials[i])
            .filter_map(|t| Some((&t.spec, t.state.success()?.weights.as_deref()?)))
            .collect()
    }
}

/// Why trial `t` cannot be given `epochs` epochs, if it cannot: it must grow exactly (the
/// built-in trainer, a schedule that does not span the run), be asked for more epochs than it
/// has, and not be training; a succeeded one must have kept its latest checkpoint.
fn refusal(t: &Trial, epochs: u32) -> Option<String> {
    let had = t.spec.params.epochs;
    if let Err(why) = t.spec.growth() {
        return Some(format!("{why}, so it cannot continue its shorter run"));
    }
    if epochs <= had {
        return Some(format!(
            "it trains {had} epochs already; --epochs must be more than {had}"
        ));
    }
    match &t.state {
        TrialState::Leased { lease, .. } => Some(format!(
            "attempt {} is training it; promote it once it has ended",
            lease.attempt
        )),
        TrialState::Succeeded(s) if s.checkpoint.is_none() => Some(
            "it succeeded without keeping a checkpoint (checkpoint_every = 0, or it trained no \
             more than checkpoint_every epochs): edit the grid file's epochs to train it afresh"
                .to_owned(),
        ),
        TrialState::Succeeded(_)
        | TrialState::Stopped { .. }
        | TrialState::Pending { .. }
        | TrialState::Failed { .. } => None,
    }
}

impl Scheduler {
    /// The epochs an operator promoted the lineage of trial `spec` to, if one did.
    pub fn promoted_epochs(&self, spec: &TrialSpec) -> Option<u32> {
        if self.promotions.is_empty() {
            return None;
        }
        self.promotions.get(&spec.lineage_id()?).copied()
    }

    /// True when an operator promoted trial `i` to more epochs than `epoch`: no stopping rule
    /// stops it there.
    pub(super) fn promoted_beyond(&self, i: usize, epoch: u32) -> bool {
        self.promoted_epochs(&self.trials[i].spec)
            .is_some_and(|n| epoch < n)
    }

    /// The promotions recorded before a restart (per lineage id, the epochs), which the
    /// grid's trials already train (`lineage::apply_promotions`).
    pub fn set_promotions(&mut self, promotions: HashMap<TrialId, u32>) {
        self.promotions = promotions;
    }

    /// Checks a promotion of the trials `names` (by name or id) to `epochs` epochs, changing
    /// nothing: each named trial is stopped or succeeded, and each of them and of its seeds
    /// may grow to `epochs` ([`refusal`]); no other trial of the grid shares their lineage
    /// (an `epochs` axis: the promoted trial would become one of its cells).
    pub fn check_more_epochs(
        &self,
        names: &[String],
        epochs: u32,
    ) -> Result<MoreEpochs, StateError> {
        if self.is_finished() {
            return Err(StateError::SweepFinished);
        }
        let refuse = |trial: &str, reason: String| StateError::CannotPromote {
            trial: trial.to_owned(),
            epochs,
            reason,
        };
        let (named, _, unknown) = self.select(names, &[]);
        if let Some(name) = unknown.first() {
            return Err(refuse(name, "no trial has this name or id".to_owned()));
        }
        let mut chosen = BTreeSet::new();
        for &i in &named {
            let t = &self.trials[i];
            if !matches!(
                t.state,
                TrialState::Stopped { .. } | TrialState::Succeeded(_)
            ) {
                let state = super::scheduler::describe(&t.state);
                return Err(refuse(
                    &t.spec.name,
                    format!("only a stopped or succeeded trial is promoted, and {state}"),
                ));
            }
            chosen.extend(self.seeds_of(i).unwrap_or(&[i]).iter().copied());
        }
        for &i in &chosen {
            let t = &self.trials[i];
            // A restart rebuilds its trials from their configurations with the grid file's
            // epochs (`search::restore_proposals`), which would lose the promotion.
            if self.proposes_for(&t.spec.experiment) {
                return Err(refuse(
                    &t.spec.name,
                    "its experiment proposes its configurations at run time (sample method \
                     tpe), and they train the grid file's epochs"
                        .to_owned(),
                ));
            }
            if let Some(reason) = refusal(t, epochs) {
                return Err(refuse(&t.spec.name, reason));
            }
        }
        self.check_lineages(&chosen, epochs)?;
        Ok(MoreEpochs {
            trials: chosen.into_iter().collect(),
            epochs,
        })
    }

    /// Refuses a promotion of `chosen` when another trial shares the lineage of one of them.
    fn check_lineages(&self, chosen: &BTreeSet<usize>, epochs: u32) -> Result<(), StateError> {
        let lineages: HashMap<TrialId, usize> = chosen
            .iter()
            .filter_map(|&i| Some((self.trials[i].spec.lineage_id()?, i)))
            .collect();
        for (j, other) in self.trials.iter().enumerate() {
            if chosen.contains(&j) {
                continue;
            }
            let Some(&i) = other.spec.lineage_id().and_then(|l| lineages.get(&l)) else {
                continue;
            };
            return Err(StateError::CannotPromote {
                trial: self.trials[i].spec.name.clone(),
                epochs,
                reason: format!(
                    "trial {:?} of the grid differs from it only in its epochs ({}): edit the \
                     grid file's epochs instead",
                    other.spec.name, other.spec.params.epochs
                ),
            });
        }
        Ok(())
    }

    /// Applies a checked promotion (`plan`, from [`Scheduler::check_more_epochs`] with nothing
    /// changed since): each trial takes the id of its content with the new epochs and its
    /// lineage's promotion is recorded; a stopped one resumes from its checkpoints (its rule
    /// journals the promotion at the epoch where it stopped), a succeeded one from its latest
    /// checkpoint (`curves`: the archived ones' curves, read back from the database), both
    /// first in the queue; a seed that waits or failed keeps its state, with the new epochs.
    /// The stopping rules are then set up again over the new epochs, as a restart would.
    /// Returns the effects and the trials' new ids.
    pub fn more_epochs(
        &mut self,
        plan: MoreEpochs,
        mut curves: HashMap<TrialId, Vec<EpochMetrics>>,
    ) -> (Vec<Effect>, Vec<TrialId>) {
        let mut effects = Vec::new();
        let mut ids = Vec::new();
        let mut stopped: BTreeMap<usize, u32> = BTreeMap::new();
        for &i in &plan.trials {
            let old = self.trials[i].spec.id;
            if let Some(curve) = curves.remove(&old) {
                self.trials[i].epochs = curve.into();
            }
            let spec = self.rename(i, plan.epochs);
            ids.push(spec.id);
            match self.trials[i].state {
                TrialState::Succeeded(_) => effects.extend(self.continue_succeeded(i, spec)),
                TrialState::Stopped { epoch, .. } => {
                    self.trials[i].spec = spec;
                    stopped.insert(i, epoch);
                }
                _ => {
                    self.trials[i].spec = spec;
                    self.changes.push(Change::Trial(self.trials[i].spec.id));
                }
            }
        }
        self.rebuild_stopping();
        // Whole configurations: the rule journals the promotion at the epoch they stopped.
        let mut configs: BTreeMap<(usize, u64), u32> = BTreeMap::new();
        for (i, epoch) in stopped {
            match self.stopping_key(i) {
                Some(key) => {
                    configs.insert(key, epoch);
                }
                None => effects.extend(self.resume_stopped(i)),
            }
        }
        for ((e, c), epoch) in configs {
            effects.extend(self.promote_config(e, c, epoch));
        }
        (effects, ids)
    }

    /// Trial `i`'s spec with `epochs` epochs and the id of that content, its index and the
    /// promotion of its lineage updated, the rename journaled; the trial keeps its old spec
    /// until the caller sets this one.
    fn rename(&mut self, i: usize, epochs: u32) -> TrialSpec {
        let mut spec = self.trials[i].spec.clone();
        let from = spec.id;
        spec.params.epochs = epochs;
        spec.id = spec.content_id();
        if let Some(lineage) = spec.lineage_id() {
            self.promotions.insert(lineage, epochs);
        }
        self.index.remove(&from);
        self.index.insert(spec.id, i);
        self.changes.push(Change::Renamed { from, to: spec.id });
        spec
    }

    /// Succeeded trial `i` continued as `spec` from its latest checkpoint, first in the queue
    /// (its epochs after the checkpoint superseded).
    fn continue_succeeded(&mut self, i: usize, spec: TrialSpec) -> Option<Effect> {
        let placeholder = Trial::new(spec.clone());
        let old = std::mem::replace(&mut self.trials[i], placeholder);
        // Its archived totals go with its success: its curve was given back whole.
        let (grown, kept) = crate::lineage::grow(old, spec);
        let (id, dataset) = (grown.spec.id, grown.spec.dataset);
        self.trials[i] = grown;
        self.terminal -= 1;
        *self.unfinished.entry(dataset).or_default() += 1;
        self.queue_ahead(dataset, i);
        self.note_curve(i);
        self.changes.push(Change::Supersede {
            trial: id,
            after: kept,
        });
        self.changes.push(Change::Trial(id));
        Some(Effect::Requeued(id))
    }

    /// Sets the stopping rules up again over the trials as they are now (their epochs
    /// changed), with their journals, as a restart does.
    fn rebuild_stopping(&mut self) {
        if self.stopping.rules.is_empty() {
            return;
        }
        let rules: Vec<_> = self
            .stopping
            .rules
            .iter()
            .map(|r| (r.experiment.clone(), r.spec))
            .collect();
        let journal: Vec<_> = (0..rules.len())
            .flat_map(|e| (0..self.stopping.rules[e].journal.len()).map(move |seq| (e, seq)))
            .filter_map(|(e, seq)| self.judged(e, seq))
            .collect();
        self.set_stopping(&rules, &journal);
    }
}
