//! Running totals behind the status summary, kept up to date trial by trial, so that a summary
//! costs O(running trials + workers + experiments) however many trials the sweep has: trials by
//! state, epochs, measured epoch times (for the ETA and the throughput), failed attempts by kind,
//! leases granted, which trials run, and the best trials overall and per experiment.
//!
//! Pure: [`Index::new`] computes it from the scheduler; [`Index::update`] refreshes the trials a
//! batch of [`Change`]s names. Refreshing a trial takes its old contribution out and puts its new
//! one in, so refreshing it twice is harmless. Per trial it keeps 32 bytes ([`Entry`]); epoch
//! times are summed as integer nanoseconds, so taking a trial out leaves no rounding behind.
//! Tested against a fresh [`Index::new`] after every transition (`tests.rs`).

use std::collections::{BTreeSet, HashMap};

use crate::state::{Change, FailureKind, Scheduler, Trial};

use super::{BEST_PER_EXPERIMENT, BEST_SHOWN, Phase, TrialCounts, finite, phase};

/// Epoch times under this are taken as this (fixture-sized trials), so rates stay finite.
pub const MIN_EPOCH_SECONDS: f64 = 1e-3;
const MIN_EPOCH_NANOS: u64 = 1_000_000;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Measured epoch times: their sum and how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    nanos: u128,
    epochs: u64,
}

impl Timing {
    fn tally(&mut self, nanos: u64, epochs: u32, add: bool) {
        if add {
            self.nanos += u128::from(nanos);
            self.epochs += u64::from(epochs);
        } else {
            self.nanos = self.nanos.saturating_sub(u128::from(nanos));
            self.epochs = self.epochs.saturating_sub(u64::from(epochs));
        }
    }

    /// Mean seconds per epoch (at least [`MIN_EPOCH_SECONDS`]); `None` when nothing was measured.
    pub fn mean_seconds(self) -> Option<f64> {
        (self.epochs > 0)
            .then(|| (self.nanos as f64 / 1e9 / self.epochs as f64).max(MIN_EPOCH_SECONDS))
    }
}

/// What the index keeps of one trial: enough to take its contribution out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Sum of its measured epoch times.
    nanos: u64,
    /// Its epochs with a measured time.
    timed: u32,
    /// Its epochs reported (current or successful attempt).
    epochs: u32,
    /// Its failed attempts recorded.
    failures: u32,
    /// Leases granted to it.
    attempts: u32,
    /// Its experiment's number in [`Index::experiments`].
    experiment: u32,
    /// Where it is.
    phase: Phase,
}

impl Entry {
    fn of(t: &Trial, experiment: u32) -> Entry {
        // An archived trial's from what it kept of its curve: the same numbers.
        let curve = t.curve_totals();
        Entry {
            nanos: curve.nanos,
            timed: curve.timed,
            epochs: curve.epochs,
            failures: count(t.failures.len()),
            attempts: t.attempts,
            experiment,
            phase: phase(t),
        }
    }

    fn unfinished(self) -> bool {
        matches!(self.phase, Phase::Pending | Phase::Running)
    }

    /// Epochs it has left to train.
    fn left(self, epochs: u32) -> u32 {
        epochs.saturating_sub(self.epochs)
    }

    /// Its own measured epoch times.
    fn timing(self) -> Timing {
        Timing {
            nanos: u128::from(self.nanos),
            epochs: u64::from(self.timed),
        }
    }

    /// Nanoseconds it has left at its own measured pace (0 without a measured epoch).
    fn own_left_nanos(self, epochs: u32) -> u128 {
        if self.timed == 0 || !self.unfinished() {
            return 0;
        }
        let per_epoch = (self.nanos / u64::from(self.timed)).max(MIN_EPOCH_NANOS);
        u128::from(self.left(epochs)) * u128::from(per_epoch)
    }
}

/// Totals over a set of trials (one experiment, or the sweep).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Trials by state.
    pub counts: TrialCounts,
    /// Epochs reported (ended trials and running attempts).
    pub epochs_done: u64,
    /// Epochs of every trial.
    pub epochs_total: u64,
    /// Epoch times of the succeeded trials.
    pub succeeded_time: Timing,
    /// Epoch times of every trial.
    pub any_time: Timing,
    /// Epochs left of the unfinished trials that have no measured epoch of their own.
    pub untimed_left: u64,
    /// How many such trials (with epochs left).
    pub untimed: u64,
}

fn bump(n: &mut u32, add: bool) {
    *n = if add {
        n.saturating_add(1)
    } else {
        n.saturating_sub(1)
    };
}

impl Totals {
    fn tally(&mut self, e: Entry, epochs: u32, add: bool) {
        let c = &mut self.counts;
        match e.phase {
            Phase::Pending => bump(&mut c.pending, add),
            Phase::Running => bump(&mut c.running, add),
            Phase::Succeeded => bump(&mut c.succeeded, add),
            Phase::Failed => bump(&mut c.failed, add),
            Phase::Stopped => bump(&mut c.stopped, add),
        }
        if add {
            self.epochs_done += u64::from(e.epochs);
        } else {
            self.epochs_done = self.epochs_done.saturating_sub(u64::from(e.epochs));
        }
        self.any_time.tally(e.nanos, e.timed, add);
        if e.phase == Phase::Succeeded {
            self.succeeded_time.tally(e.nanos, e.timed, add);
        }
        let left = e.left(epochs);
        if e.unfinished() && e.timed == 0 && left > 0 {
            if add {
                self.untimed_left += u64::from(left);
                self.untimed += 1;
            } else {
                self.untimed_left = self.untimed_left.saturating_sub(u64::from(left));
                self.untimed = self.untimed.saturating_sub(1);
            }
        }
    }
}

/// The best trials of a set: the highest final test accuracy first, the earliest in grid order
/// first on ties; at most `keep`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Top {
    keep: usize,
    items: Vec<(f64, u32)>,
}

impl Top {
    fn new(keep: usize) -> Self {
        Top {
            keep,
            items: Vec::new(),
        }
    }

    fn offer(&mut self, accuracy: f64, pos: u32) {
        let at = self
            .items
            .partition_point(|&(a, p)| a > accuracy || (a == accuracy && p < pos));
        if at < self.keep {
            self.items.insert(at, (accuracy, pos));
            self.items.truncate(self.keep);
        }
    }

    fn find(&self, pos: u32) -> Option<f64> {
        self.items.iter().find(|(_, p)| *p == pos).map(|(a, _)| *a)
    }
}

/// An experiment's totals.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Its name.
    pub name: String,
    /// Where its first trial is, in grid order.
    pub first: u32,
    /// Its totals.
    pub totals: Totals,
    best: Top,
}

/// The running totals of a sweep (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Index {
    entries: Vec<Entry>,
    experiments: Vec<Experiment>,
    by_name: HashMap<String, u32>,
    totals: Totals,
    own_left_nanos: u128,
    running: BTreeSet<u32>,
    best: Top,
    failures: Vec<(FailureKind, u64)>,
    leases_granted: u64,
    /// Changes of what it keeps of any trial so far.
    version: u64,
}

/// A trial's final test accuracy, once it succeeded with a finite one.
fn accuracy(t: &Trial) -> Option<f64> {
    finite(t.state.success()?.scores.test_accuracy)
}

fn position(pos: usize) -> u32 {
    u32::try_from(pos).unwrap_or(u32::MAX)
}

impl Index {
    /// The totals of `s` now.
    pub fn new(s: &Scheduler) -> Self {
        let mut index = Index {
            entries: Vec::with_capacity(s.trials().len()),
            experiments: Vec::new(),
            by_name: HashMap::new(),
            totals: Totals::default(),
            own_left_nanos: 0,
            running: BTreeSet::new(),
            best: Top::new(BEST_SHOWN),
            failures: Vec::new(),
            leases_granted: 0,
            version: 0,
        };
        for pos in 0..s.trials().len() {
            index.add(s, pos);
        }
        index
    }

    /// Counts the trial at `pos` (the next position: the trials before it are counted).
    fn add(&mut self, s: &Scheduler, pos: usize) {
        let Some(t) = s.trials().get(pos).filter(|_| pos == self.entries.len()) else {
            return;
        };
        let experiment = match self.by_name.get(t.spec.experiment.as_str()) {
            Some(&x) => x,
            None => {
                let x = count(self.experiments.len());
                self.by_name.insert(t.spec.experiment.clone(), x);
                self.experiments.push(Experiment {
                    name: t.spec.experiment.clone(),
                    first: position(pos),
                    totals: Totals::default(),
                    best: Top::new(BEST_PER_EXPERIMENT),
                });
                x
            }
        };
        let epochs = t.spec.params.epochs;
        for totals in [
            &mut self.totals,
            &mut self.experiments[experiment as usize].totals,
        ] {
            totals.counts.total += 1;
            totals.epochs_total += u64::from(epochs);
        }
        let e = Entry::of(t, experiment);
        self.entries.push(e);
        self.tally(e, epochs, position(pos), true);
        self.count_failures(t, 0);
        if let Some(a) = accuracy(t) {
            self.best.offer(a, position(pos));
            self.experiments[experiment as usize]
                .best
                .offer(a, position(pos));
        }
    }

    /// Refreshes every trial `changes` names (each once per run of changes naming it).
    pub fn update(&mut self, s: &Scheduler, changes: &[Change]) {
        let mut last = None;
        for c in changes {
            let id = match c {
                Change::Trial(id)
                | Change::Epoch { trial: id, .. }
                | Change::Supersede { trial: id, .. }
                | Change::ResultEpoch { trial: id, .. } => *id,
                Change::NewTrial(id) => {
                    if let Some(pos) = s.position(*id) {
                        self.add(s, pos);
                    }
                    continue;
                }
                Change::Worker(_) | Change::Decision { .. } | Change::Renamed { .. } => continue,
            };
            if last == Some(id) {
                continue;
            }
            last = Some(id);
            if let Some(pos) = s.position(id) {
                self.refresh(s, pos);
            }
        }
    }

    /// Takes the old contribution of the trial at `pos` out and puts its current one in.
    fn refresh(&mut self, s: &Scheduler, pos: usize) {
        let (Some(t), Some(&old)) = (s.trials().get(pos), self.entries.get(pos)) else {
            return;
        };
        let new = Entry::of(t, old.experiment);
        if new == old {
            return;
        }
        self.version += 1;
        let epochs = t.spec.params.epochs;
        self.tally(old, epochs, position(pos), false);
        self.tally(new, epochs, position(pos), true);
        self.entries[pos] = new;
        if new.failures >= old.failures {
            self.count_failures(t, old.failures as usize);
        } else {
            // Failures are only ever added; should one go, count them all again.
            self.failures.clear();
            for t in s.trials() {
                self.count_failures(t, 0);
            }
        }
        if old.phase == Phase::Succeeded || new.phase == Phase::Succeeded {
            self.best_changed(s, pos, new.experiment, accuracy(t));
        }
    }

    fn tally(&mut self, e: Entry, epochs: u32, pos: u32, add: bool) {
        let Index {
            totals,
            experiments,
            running,
            own_left_nanos,
            leases_granted,
            ..
        } = self;
        totals.tally(e, epochs, add);
        if let Some(x) = experiments.get_mut(e.experiment as usize) {
            x.totals.tally(e, epochs, add);
        }
        let own = e.own_left_nanos(epochs);
        if add {
            *own_left_nanos += own;
            *leases_granted += u64::from(e.attempts);
        } else {
            *own_left_nanos = own_left_nanos.saturating_sub(own);
            *leases_granted = leases_granted.saturating_sub(u64::from(e.attempts));
        }
        if e.phase == Phase::Running {
            if add {
                running.insert(pos);
            } else {
                running.remove(&pos);
            }
        }
    }

    /// Counts `t`'s failed attempts from the `from`th on, by kind.
    fn count_failures(&mut self, t: &Trial, from: usize) {
        for f in t.failures.iter().skip(from) {
            match self.failures.iter_mut().find(|(k, _)| *k == f.kind) {
                Some((_, n)) => *n += 1,
                None => self.failures.push((f.kind, 1)),
            }
        }
    }

    /// The trial at `pos` entered, left or changed its success (now `accuracy`): the best lists
    /// follow; one it leaves is made again from every trial (a succeeded trial never changes, so
    /// this does not happen while a sweep runs).
    fn best_changed(&mut self, s: &Scheduler, pos: usize, experiment: u32, now: Option<f64>) {
        let p = position(pos);
        let x = experiment as usize;
        match (self.best.find(p), now) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), _) => {
                self.best = Top::new(BEST_SHOWN);
                for (j, t) in s.trials().iter().enumerate() {
                    if let Some(a) = accuracy(t) {
                        self.best.offer(a, position(j));
                    }
                }
            }
            (None, Some(a)) => self.best.offer(a, p),
            (None, None) => {}
        }
        let Some(e) = self.experiments.get_mut(x) else {
            return;
        };
        match (e.best.find(p), now) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), _) => {
                e.best = Top::new(BEST_PER_EXPERIMENT);
                let first = e.first as usize;
                for (j, t) in s.trials().iter().enumerate().skip(first) {
                    if self.entries[j].experiment == experiment {
                        if let Some(a) = accuracy(t) {
                            e.best.offer(a, position(j));
                        }
                    }
                }
            }
            (None, Some(a)) => e.best.offer(a, p),
            (None, None) => {}
        }
    }

    /// The sweep's totals.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The totals of `s` made afresh, as a new version: after a change that a refresh of the
    /// trials changed cannot follow (an operator gave trials more epochs: their totals of
    /// epochs changed, not only their state).
    pub fn rebuild(&mut self, s: &Scheduler) {
        let version = self.version + 1;
        *self = Index::new(s);
        self.version = version;
    }

    /// How many times what it keeps of a trial (its state, epochs, attempts, failures) has
    /// changed: equal versions mean the same trials, so what is made from them can be reused.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Every experiment, in the order of their first trial.
    pub fn experiments(&self) -> &[Experiment] {
        &self.experiments
    }

    /// The experiment named `name`, with its number.
    pub fn experiment(&self, name: &str) -> Option<(usize, &Experiment)> {
        let x = *self.by_name.get(name)? as usize;
        self.experiments.get(x).map(|e| (x, e))
    }

    /// The number of the experiment of the trial at `pos`.
    pub fn experiment_of(&self, pos: usize) -> usize {
        self.entries.get(pos).map_or(0, |e| e.experiment as usize)
    }

    /// The trial at `pos`'s own measured epoch times.
    pub fn own_timing(&self, pos: usize) -> Timing {
        self.entries
            .get(pos)
            .map_or_else(Timing::default, |e| e.timing())
    }

    /// Where the trial at `pos` is.
    pub fn phase(&self, pos: usize) -> Option<Phase> {
        self.entries.get(pos).map(|e| e.phase)
    }

    /// Seconds the unfinished trials that measured an epoch have left, at their own pace.
    pub fn own_left_seconds(&self) -> f64 {
        self.own_left_nanos as f64 / 1e9
    }

    /// The running trials' positions, in grid order.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        self.running.iter().map(|&p| p as usize)
    }

    /// The best trials' positions, best first: of experiment number `experiment`, or of the
    /// sweep.
    pub fn best(&self, experiment: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let top = match experiment {
            Some(x) => self.experiments.get(x).map(|e| &e.best),
            None => Some(&self.best),
        };
        top.into_iter()
            .flat_map(|t| t.items.iter().map(|&(_, p)| p as usize))
    }

    /// Failed attempts so far by kind, retried ones included, in order of first failure.
    pub fn attempt_failures(&self) -> &[(FailureKind, u64)] {
        &self.failures
    }

    /// Leases granted so far (first attempts and retries).
    pub fn leases_granted(&self) -> u64 {
        self.leases_granted
    }

    /// Positions of the trials in `state` (any when `None`) of experiment number `experiment`
    /// (any when `None`), in grid order: a scan from the experiment's first trial that stops at
    /// the last one matching.
    pub fn matching(
        &self,
        state: Option<Phase>,
        experiment: Option<usize>,
    ) -> impl Iterator<Item = usize> + '_ {
        let first = experiment
            .and_then(|x| self.experiments.get(x))
            .map_or(0, |e| e.first as usize);
        self.entries
            .iter()
            .enumerate()
            .skip(first)
            .filter(move |(_, e)| {
                state.is_none_or(|s| e.phase == s)
                    && experiment.is_none_or(|x| e.experiment as usize == x)
            })
            .map(|(pos, _)| pos)
            .take(self.matched(state, experiment) as usize)
    }

    /// How many trials [`Index::matching`] lists.
    pub fn matched(&self, state: Option<Phase>, experiment: Option<usize>) -> u32 {
        let totals = match experiment {
            Some(x) => match self.experiments.get(x) {
                Some(e) => &e.totals,
                None => return 0,
            },
            None => &self.totals,
        };
        let c = &totals.counts;
        match state {
            None => c.total,
            Some(Phase::Pending) => c.pending,
            Some(Phase::Running) => c.running,
            Some(Phase::Succeeded) => c.succeeded,
            Some(Phase::Failed) => c.failed,
            Some(Phase::Stopped) => c.stopped,
        }
    }
}

#[cfg(test)]
impl PartialEq for Index {
    /// Equal totals, entries, running and best trials; failures as the same counts by kind.
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.failures.clone();
        let mut b = other.failures.clone();
        a.sort_by_key(|(k, _)| format!("{k:?}"));
        b.sort_by_key(|(k, _)| format!("{k:?}"));
        let experiments = |i: &Index| -> Vec<(String, u32, Totals, Top)> {
            i.experiments
                .iter()
                .map(|e| (e.name.clone(), e.first, e.totals.clone(), e.best.clone()))
                .collect()
        };
        self.entries == other.entries
            && experiments(self) == experiments(other)
            && self.totals == other.totals
            && self.own_left_nanos == other.own_left_nanos
            && self.running == other.running
            && self.best == other.best
            && a == b
            && self.leases_granted == other.leases_granted
    }
}

#[cfg(test)]
mod tests;
