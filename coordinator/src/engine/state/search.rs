//! TPE proposals at run time (issue 17): a `tpe` experiment's first configurations are drawn
//! when the grid is expanded; the rest of its budget (`[experiment.sample] trials`) is
//! proposed here, one configuration at a time, when a worker asks for work and nothing it can
//! run is pending.
//!
//! A proposal is a pure function of the sampler's spec, the proposal's number (the
//! configurations the experiment has), the results of its finished trials in experiment order
//! and the configurations it already has (pending and leased included, so no two trials share a
//! configuration however many workers lease at once). Its trials are built by the grid's
//! [`TrialBuilder`], so they get the ids and names expansion would give them, and inserted with
//! a [`Change::NewTrial`] each, committed with the lease that caused them: a restart restores
//! exactly the trials proposed before it (`restore_proposals`), and the budget is counted from
//! what was committed, so it is met exactly after any number of coordinator kills.

use std::collections::{BTreeSet, HashMap};

use sweep_common::grid::{Grid, TrialBuilder};
use sweep_common::search::sample::{History, Observation, PointKey, Sampler, key};
use sweep_common::search::{Method, Objective, SampleSpec};
use sweep_common::{DatasetKind, TrialId};

use super::{Change, Scheduler, Trial, TrialState};

/// One `tpe` experiment's sampler and the configurations it has.
#[derive(Debug, Clone)]
pub struct Search {
    /// The sampler's spec (its budget is `trials`).
    spec: SampleSpec,
    /// What its trials are made from.
    builder: TrialBuilder,
    /// What the proposals optimise (the stopping rule's objective, or test accuracy).
    objective: Objective,
    /// The trials (indices in the scheduler) of each configuration, in the experiment's order.
    configs: Vec<Vec<usize>>,
    /// The configurations' keys.
    taken: BTreeSet<PointKey>,
    /// No configuration was left to propose (the space is used up).
    exhausted: bool,
    /// The finished configurations' results, ranked for TPE, kept up to date
    /// ([`Search::update`]) instead of rebuilt for every proposal.
    fitted: History,
    /// Per configuration, the result `fitted` holds for it (its bits), if any.
    held: Vec<Option<u64>>,
}

impl Search {
    /// True while configurations are left to propose.
    fn open(&self) -> bool {
        !self.exhausted && self.configs.len() < self.spec.trials as usize
    }

    /// Configuration `members`' result: the mean over its succeeded or stopped trials of
    /// their last epoch's metric; `None` while none is.
    fn result(&self, members: &[usize], trials: &[Trial]) -> Option<f64> {
        let (mut sum, mut count) = (0.0, 0usize);
        for t in members.iter().map(|&i| &trials[i]) {
            if !matches!(
                t.state,
                TrialState::Succeeded(_) | TrialState::Stopped { .. }
            ) {
                continue;
            }
            if let Some(m) = t.epochs.last() {
                sum += self.objective.metric.of(m);
                count += 1;
            }
        }
        (count > 0).then(|| sum / count as f64)
    }

    /// Brings `fitted` up to date with the trials: a pass over the configurations comparing
    /// each one's result with the one held (no allocation), and a ranked insertion for each
    /// that changed.
    fn update(&mut self, trials: &[Trial]) {
        self.held.resize(self.configs.len(), None);
        for c in 0..self.configs.len() {
            let value = self.result(&self.configs[c], trials);
            if value.map(f64::to_bits) == self.held[c] {
                continue;
            }
            let observation = value.and_then(|value| {
                let first = *self.configs[c].first()?;
                Some(Observation {
                    point: self.builder.point_of(&trials[first].spec),
                    value,
                })
            });
            self.fitted.set(
                &self.spec.space,
                c as u64,
                observation.as_ref(),
                self.objective,
            );
            self.held[c] = value.map(f64::to_bits);
        }
    }
}

/// The `tpe` experiments of a grid: their sampler specs, trial builders and objectives.
pub fn searches_of(grid: &Grid) -> Vec<(SampleSpec, TrialBuilder, Objective)> {
    grid.experiments
        .iter()
        .filter_map(|e| {
            let spec = e.sample.as_ref().filter(|s| s.method == Method::Tpe)?;
            let objective = e.stopping.map(|s| s.objective).unwrap_or_default();
            Some((spec.clone(), (**e.builder.as_ref()?).clone(), objective))
        })
        .collect()
}

/// The trials an earlier run proposed (recorded, not in the grid file, but made by a `tpe`
/// experiment's builder from their configuration), taken out of `recorded` in the order they
/// were recorded (`order`), to be scheduled after the grid's trials.
pub fn restore_proposals(
    grid: &Grid,
    order: &[TrialId],
    recorded: &mut HashMap<TrialId, Trial>,
) -> Vec<Trial> {
    let searches = searches_of(grid);
    if searches.is_empty() {
        return Vec::new();
    }
    let proposed: Vec<TrialId> = order
        .iter()
        .filter(|id| {
            recorded
                .get(id)
                .is_some_and(|t| searches.iter().any(|(_, b, _)| b.makes(&t.spec)))
        })
        .copied()
        .collect();
    proposed
        .iter()
        .filter_map(|id| recorded.remove(id))
        .collect()
}

impl Scheduler {
    /// Proposes configurations at run time for the `tpe` experiments `searches` (from
    /// [`searches_of`]), counting those their trials (the grid's and those restored) already
    /// have.
    pub fn set_search(&mut self, searches: Vec<(SampleSpec, TrialBuilder, Objective)>) {
        self.search = searches
            .into_iter()
            .map(|(spec, builder, objective)| {
                let mut s = Search {
                    spec,
                    builder,
                    objective,
                    configs: Vec::new(),
                    taken: BTreeSet::new(),
                    exhausted: false,
                    fitted: History::default(),
                    held: Vec::new(),
                };
                let mut at: HashMap<PointKey, usize> = HashMap::new();
                for (i, t) in self.trials.iter().enumerate() {
                    if t.spec.experiment != s.builder.experiment() {
                        continue;
                    }
                    let k = key(&s.builder.point_of(&t.spec));
                    let c = *at.entry(k.clone()).or_insert(s.configs.len());
                    if c == s.configs.len() {
                        s.configs.push(Vec::new());
                        s.taken.insert(k);
                    }
                    s.configs[c].push(i);
                }
                s
            })
            .collect();
    }

    /// True when `experiment` is a `tpe` experiment (its configurations proposed at run time).
    pub(super) fn proposes_for(&self, experiment: &str) -> bool {
        self.search
            .iter()
            .any(|s| s.builder.experiment() == experiment)
    }

    /// True while a `tpe` experiment has configurations left to propose.
    pub(super) fn search_open(&self) -> bool {
        self.search.iter().any(Search::open)
    }

    /// Configurations proposed at run time so far, and the budget they count against, over
    /// every `tpe` experiment.
    pub fn proposals(&self) -> (usize, usize) {
        self.search.iter().fold((0, 0), |(n, of), s| {
            (n + s.configs.len(), of + s.spec.trials as usize)
        })
    }

    /// Proposes the next configuration of the first `tpe` experiment with budget left whose
    /// dataset `can_run` accepts, and queues its trials; false when there is none.
    pub(super) fn propose(&mut self, can_run: impl Fn(DatasetKind) -> bool) -> bool {
        let Some(e) = self
            .search
            .iter()
            .position(|s| s.open() && can_run(s.builder.dataset()))
        else {
            return false;
        };
        self.search[e].update(&self.trials);
        let s = &self.search[e];
        let index = s.configs.len() as u64;
        let proposed = Sampler::new(&s.spec).propose_fitted(index, &s.fitted, &s.taken);
        let built = proposed.map(|point| (s.builder.trials(&point), point));
        let (specs, point) = match built {
            Ok((Ok(specs), point)) => (specs, point),
            // The space is used up, or (never, the grid checks rule it out) the configuration
            // gives no valid trial: nothing more is proposed for this experiment.
            Ok((Err(_), _)) | Err(_) => {
                self.search[e].exhausted = true;
                return false;
            }
        };
        let mut members = Vec::with_capacity(specs.len());
        for spec in specs {
            if self.index.contains_key(&spec.id) {
                continue;
            }
            let i = self.trials.len();
            let (id, dataset) = (spec.id, spec.dataset);
            self.trials.push(Trial::new(spec));
            self.index.insert(id, i);
            self.pending.push_back(dataset, i);
            *self.unfinished.entry(dataset).or_default() += 1;
            self.changes.push(Change::NewTrial(id));
            self.note_new_trial(i);
            members.push(i);
        }
        let s = &mut self.search[e];
        s.taken.insert(key(&point));
        s.configs.push(members);
        true
    }
}
