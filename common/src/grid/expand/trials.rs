//! Building an experiment's trials from one configuration of its sampled keys: what grid
//! expansion does for every point it draws, and what the coordinator does for a configuration
//! TPE proposes while the sweep runs. One builder, so a proposed trial gets the id, name and
//! seed expansion would have given it.

use std::collections::BTreeMap;

use super::render;
use crate::dataset::DatasetKind;
use crate::grid::Value;
use crate::grid::check::MAX_TRIAL_NAME_LEN;
use crate::grid::params::{HyperParams, Param};
use crate::grid::program::ProgramGrid;
use crate::ids::TrialId;
use crate::program::ProgramValue;
use crate::search::sample::Point;
use crate::trial::{SplitSpec, TrialSpec};

/// Everything an experiment's trials are made from but its sampled keys' values.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialBuilder {
    /// The experiment's name.
    pub(in crate::grid) experiment: String,
    /// Its dataset.
    pub(in crate::grid) dataset: DatasetKind,
    /// The train/test split of every trial.
    pub(in crate::grid) split: SplitSpec,
    /// `checkpoint_every` of every trial.
    pub(in crate::grid) checkpoint_every: u32,
    /// The trial name template.
    pub(in crate::grid) template: String,
    /// Every key's values: one for a fixed, default or sampled key, the axis's for a grid key
    /// (and `seed` with repeats).
    pub(in crate::grid) values: BTreeMap<Param, Vec<Value>>,
    /// The sampled keys, in the order of a point.
    pub(in crate::grid) sampled: Vec<Param>,
    /// The program experiment's command and keys, if it is one.
    pub(in crate::grid) program: Option<ProgramGrid>,
}

/// Why a configuration gives no trials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A value does not fit its field (the grid checks rule it out).
    #[error("internal error: {0}")]
    Params(String),
    /// A trial's name is longer than allowed.
    #[error(
        "trial names may be at most {MAX_TRIAL_NAME_LEN} bytes; this one gives {shown:?} \
         ({len} bytes)"
    )]
    NameTooLong {
        /// The name, shortened for the message.
        shown: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The point does not have one value per sampled key.
    #[error("a configuration of {got} sampled values, but the experiment samples {want} keys")]
    PointLength {
        /// Values given.
        got: usize,
        /// Keys sampled.
        want: usize,
    },
}

impl TrialBuilder {
    /// The experiment's name.
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// Its dataset.
    pub fn dataset(&self) -> DatasetKind {
        self.dataset
    }

    /// The trials of the configuration `point` (one value per sampled key, none for an
    /// experiment that samples nothing): every cell of the grid axes (and repeats, and program
    /// cells), the first axis outermost, exactly as grid expansion orders them.
    pub fn trials(&self, point: &[Value]) -> Result<Vec<TrialSpec>, BuildError> {
        if point.len() != self.sampled.len() {
            return Err(BuildError::PointLength {
                got: point.len(),
                want: self.sampled.len(),
            });
        }
        let mut values = self.values.clone();
        // A sampled configuration fixes its keys; the grid's axes vary as without sampling.
        for (param, value) in self.sampled.iter().zip(point) {
            values.insert(*param, vec![*value]);
        }
        let columns: Vec<(Param, Vec<Value>)> = values.into_iter().collect();
        let count: usize = columns.iter().map(|(_, v)| v.len()).product();
        let cells = match &self.program {
            Some(p) => p.cells(),
            None => vec![BTreeMap::new()],
        };
        let mut trials = Vec::with_capacity(count * cells.len());
        for n in 0..count {
            // Mixed-radix decomposition of n, the first axis outermost.
            let mut rest = n;
            let mut chosen: BTreeMap<Param, Value> = BTreeMap::new();
            for (param, vals) in columns.iter().rev() {
                chosen.insert(*param, vals[rest % vals.len()]);
                rest /= vals.len();
            }
            self.cell_trials(&chosen, &cells, &mut trials)?;
        }
        Ok(trials)
    }

    /// The trials of one cell of the built-in keys (`chosen`), one per program cell.
    fn cell_trials(
        &self,
        chosen: &BTreeMap<Param, Value>,
        cells: &[BTreeMap<String, ProgramValue>],
        trials: &mut Vec<TrialSpec>,
    ) -> Result<(), BuildError> {
        let name = &self.experiment;
        let dataset = self.dataset;
        let params = HyperParams::from_values(|p| chosen.get(&p).copied())
            .map_err(|e| BuildError::Params(e.to_string()))?;
        let canonical = TrialSpec::canonical(name, dataset, &params, &self.split);
        for cell in cells {
            let spec = self
                .program
                .as_ref()
                .map(|p| p.resolve(name, dataset, chosen, cell));
            let canonical = match &spec {
                Some(p) => format!("{canonical}{}", p.canonical()),
                None => canonical.clone(),
            };
            let trial_name = match &spec {
                Some(_) => {
                    crate::grid::program::render(&self.template, name, dataset, chosen, cell)
                }
                None => render(&self.template, name, dataset, chosen),
            };
            if trial_name.len() > MAX_TRIAL_NAME_LEN {
                return Err(BuildError::NameTooLong {
                    shown: crate::grid::rules::truncate(&trial_name),
                    len: trial_name.len(),
                });
            }
            trials.push(TrialSpec {
                id: TrialId::from_content(&canonical),
                experiment: name.clone(),
                name: trial_name,
                dataset,
                params: params.clone(),
                split: self.split,
                checkpoint_every: self.checkpoint_every,
                program: spec.map(Box::new),
            });
        }
        Ok(())
    }

    /// The sampled keys' values of `spec` (a trial of this experiment), in the order of a
    /// point: the configuration it belongs to.
    pub fn point_of(&self, spec: &TrialSpec) -> Point {
        self.sampled.iter().map(|p| spec.params.get(*p)).collect()
    }

    /// True when `spec` is one of the trials this builder makes of its configuration: a trial
    /// recorded by an earlier run whose experiment is still the same.
    pub fn makes(&self, spec: &TrialSpec) -> bool {
        spec.experiment == self.experiment
            && self
                .trials(&self.point_of(spec))
                .is_ok_and(|ts| ts.iter().any(|t| t.id == spec.id))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::grid::Grid;
    use crate::search::Objective;
    use crate::search::sample::{Sampler, key};

    const GRID: &str = "[sweep]\nname = \"s\"\nseed = 5\n[[experiment]]\nname = \"e\"\n\
                        dataset = \"fashion-mnist\"\nrepeats = 2\n[experiment.grid]\n\
                        batch_size = [32, 64]\n[experiment.sample]\ntrials = 14\n\
                        method = \"tpe\"\n[experiment.sample.space]\n\
                        learning_rate = { loguniform = [0.0001, 0.1] }\n\
                        activation = { choice = [\"relu\", \"tanh\"] }\n";

    #[test]
    fn the_builder_makes_the_trials_expansion_made_and_recognises_them() {
        let g = Grid::parse(GRID, "test.toml").unwrap();
        let e = &g.experiments[0];
        let b = e.builder.as_deref().unwrap();
        let spec = e.sample.as_ref().unwrap();
        // TPE's first draws are expanded; 2 batch sizes x 2 seeds per configuration.
        let points = Sampler::new(spec).draw(spec.up_front()).unwrap();
        assert_eq!(e.trials.len(), points.len() * 4);
        let rebuilt: Vec<_> = points.iter().flat_map(|p| b.trials(p).unwrap()).collect();
        assert_eq!(rebuilt, e.trials);
        for t in &e.trials {
            assert!(b.makes(t));
            assert_eq!(b.trials(&b.point_of(t)).unwrap().len(), 4);
        }
        // A configuration proposed later is built the same way, with its own ids.
        let taken: BTreeSet<_> = points.iter().map(|p| key(p)).collect();
        let next = Sampler::new(spec)
            .propose(points.len() as u64, &[], Objective::default(), &taken)
            .unwrap();
        let more = b.trials(&next).unwrap();
        assert!(more.iter().all(|t| b.makes(t) && !e.trials.contains(t)));
        let mut other = more[0].clone();
        other.experiment = "f".to_owned();
        assert!(!b.makes(&other));
        assert!(b.trials(&next[..1]).is_err());
    }
}
