//! Trials that failed for good, put back in the queue by an operator (`coordinator retry`, or
//! `--retry-failed` when the coordinator starts). Their history stays: failed attempts are kept
//! and attempt numbers go on from the last one, so every earlier lease stays fenced off; the
//! attempt budgets start again. A trial resumes from the checkpoint its failed attempts left.

use super::{Change, Effect, Scheduler, TrialState};

/// Which failed trials a retry names.
#[derive(Debug, Clone, Default)]
pub struct RetrySelector {
    /// Trials by id or name; cancelled ones too (naming them is explicit).
    pub trials: Vec<String>,
    /// The failed trials of these experiments.
    pub experiments: Vec<String>,
    /// Every failed trial.
    pub failed: bool,
    /// With `experiments` and `failed`: cancelled trials too.
    pub include_cancelled: bool,
}

impl Scheduler {
    /// Puts the failed trials `selector` names back in the queue (after the trials already
    /// waiting). Returns an effect per trial (`Requeued`) and the names that matched nothing;
    /// trials that have not failed are left as they are.
    pub fn retry(&mut self, selector: &RetrySelector) -> (Vec<Effect>, Vec<String>) {
        let (named, of_experiments, unknown) = self.select(&selector.trials, &selector.experiments);
        let failed = |t: &super::Trial| match t.state {
            TrialState::Failed { cancelled, .. } => !cancelled || selector.include_cancelled,
            _ => false,
        };
        let mut chosen: Vec<usize> = of_experiments
            .into_iter()
            .filter(|&i| failed(&self.trials[i]))
            .collect();
        if selector.failed {
            chosen.extend((0..self.trials.len()).filter(|&i| failed(&self.trials[i])));
        }
        chosen.extend(
            named
                .into_iter()
                .filter(|&i| matches!(self.trials[i].state, TrialState::Failed { .. })),
        );
        chosen.sort_unstable();
        chosen.dedup();
        let mut effects = Vec::with_capacity(chosen.len());
        for i in chosen {
            let t = &mut self.trials[i];
            let checkpoints = t.state.take_checkpoints();
            let after = checkpoints.epoch();
            t.state = TrialState::Pending {
                checkpoints,
                ahead: None,
            };
            t.counted_attempts = 0;
            t.unstarted_attempts = 0;
            t.keep_checkpointed_epochs();
            let (id, dataset) = (t.spec.id, t.spec.dataset);
            self.note_curve(i);
            self.changes.push(Change::Supersede { trial: id, after });
            self.changes.push(Change::Trial(id));
            self.terminal -= 1;
            *self.unfinished.entry(dataset).or_default() += 1;
            self.pending.push_back(dataset, i);
            effects.push(Effect::Requeued(id));
        }
        (effects, unknown)
    }
}
