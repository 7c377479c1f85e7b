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
use sweep_common::search::sample::{Observation, PointKey, Sampler, key};
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
}

impl Search {
    /// True while configurations are left to propose.
    fn open(&self) -> bool {
        !self.exhausted && self.configs.len() < self.spec.trials as usize
    }

    /// The finished configurations' results, in the experiment's order: the mean over a
    /// configuration's succeeded or stopped trials of their last epoch's metric.
    fn history(&self, trials: &[Trial]) -> Vec<Observation> {
        let mut history = Vec::new();
        for members in &self.configs {
            let values: Vec<f64> = members
                .iter()
                .map(|&i| &trials[i])
                .filter(|t| {
                    matches!(
                        t.state,
                        TrialState::Succeeded(_) | TrialState::Stopped { .. }
                    )
                })
                .filter_map(|t| t.epochs.last())
                .map(|m| self.objective.metric.of(m))
                .collect();
            if let (Some(&first), false) = (members.first(), values.is_empty()) {
                history.push(Observation {
                    point: self.builder.point_of(&trials[first].spec),
                    value: values.iter().sum::<f64>() / values.len() as f64,
                });
            }
        }
        history
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
        let s = &self.search[e];
        let history = s.history(&self.trials);
        let index = s.configs.len() as u64;
        let proposed = Sampler::new(&s.spec).propose(index, &history, s.objective, &s.taken);
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
