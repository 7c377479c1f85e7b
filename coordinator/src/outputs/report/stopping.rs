//! What early stopping did to an experiment, from its trials' curves alone: the epochs trained
//! against those a full run trains, and per epoch where trials were stopped, how many reached it
//! and how many stopped there.

use std::collections::BTreeMap;

use sweep_common::results::Trial;

/// One epoch at which trials were stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// The epoch.
    pub epoch: u32,
    /// Trials whose curve reached it.
    pub entered: usize,
    /// Trials stopped there.
    pub stopped: usize,
}

/// An experiment's early stopping, when any of its trials was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Epochs trained (the curves' lengths).
    pub trained: u64,
    /// Epochs every trial's full run trains.
    pub full: u64,
    /// Trials stopped.
    pub stopped: usize,
    /// The rungs, in order.
    pub rungs: Vec<Rung>,
}

impl Summary {
    /// Epochs trained in percent of the full runs'.
    pub fn percent(&self) -> f64 {
        if self.full == 0 {
            return 0.0;
        }
        100.0 * self.trained as f64 / self.full as f64
    }
}

/// An experiment's early stopping summed a trial at a time: where trials were stopped, how long
/// their curves are, the epochs trained and those a full run trains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Trials stopped at each epoch.
    stopped_at: BTreeMap<u32, usize>,
    /// Trials by the length of their curve.
    lengths: BTreeMap<usize, usize>,
    trained: u64,
    full: u64,
    stopped: usize,
}

impl Tally {
    /// Counts `t` in.
    pub fn add(&mut self, t: &Trial<'_>) {
        if let Some(s) = &t.stopped {
            *self.stopped_at.entry(s.epoch).or_default() += 1;
        }
        *self.lengths.entry(t.epochs.len()).or_default() += 1;
        self.trained += t.epochs.len() as u64;
        self.full += u64::from(t.params.epochs);
        if t.stopped() {
            self.stopped += 1;
        }
    }

    /// The summary, or `None` when no trial was stopped.
    pub fn summary(&self) -> Option<Summary> {
        if self.stopped_at.is_empty() {
            return None;
        }
        let rungs = self
            .stopped_at
            .iter()
            .map(|(&epoch, &stopped)| Rung {
                epoch,
                entered: self.lengths.range(epoch as usize..).map(|(_, n)| n).sum(),
                stopped,
            })
            .collect();
        Some(Summary {
            trained: self.trained,
            full: self.full,
            stopped: self.stopped,
            rungs,
        })
    }
}

/// The summary of `trials`, or `None` when none was stopped.
pub fn summary(trials: &[&Trial<'_>]) -> Option<Summary> {
    let mut tally = Tally::default();
    for t in trials {
        tally.add(t);
    }
    tally.summary()
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sweep_common::EpochMetrics;
    use sweep_common::results::{Status, Stopped};

    use super::*;

    fn trial(epochs: u32, trained: u32, stopped: Option<u32>) -> Trial<'static> {
        let mut t: Trial<'static> = serde_json::from_str(
            r#"{"id":"00000000-0000-5000-8000-000000000001","experiment":"e","name":"t",
                "dataset":"fashion-mnist","params":{"activation":"relu","hidden_layers":1,
                "hidden_width":8,"learning_rate":0.001,"batch_size":64,"epochs":9,
                "train_fraction":1.0,"seed":0},"split":{"train_ratio":0.7,"seed":0},
                "status":"succeeded"}"#,
        )
        .unwrap();
        t.params.to_mut().epochs = epochs;
        t.epochs = Cow::Owned(
            (1..=trained)
                .map(|epoch| EpochMetrics {
                    epoch,
                    train_loss: 1.0,
                    train_accuracy: 50.0,
                    test_accuracy: 50.0,
                    seconds: 1.0,
                    scalars: Default::default(),
                })
                .collect(),
        );
        if let Some(epoch) = stopped {
            t.status = Status::Stopped;
            t.stopped = Some(Stopped {
                epoch,
                reason: Cow::Borrowed("asha"),
            });
        }
        t
    }

    #[test]
    fn rungs_count_who_reached_them_and_who_stopped_there() {
        let trials = [
            trial(9, 1, Some(1)),
            trial(9, 1, Some(1)),
            trial(9, 3, Some(3)),
            // Stopped at its rung after training one more epoch (its seed was behind).
            trial(9, 4, Some(3)),
            trial(9, 9, None),
        ];
        let refs: Vec<&Trial<'_>> = trials.iter().collect();
        let s = summary(&refs).unwrap();
        assert_eq!(s.trained, 1 + 1 + 3 + 4 + 9);
        assert_eq!(s.full, 45);
        assert_eq!(s.stopped, 4);
        assert_eq!(
            s.rungs,
            vec![
                Rung {
                    epoch: 1,
                    entered: 5,
                    stopped: 2
                },
                Rung {
                    epoch: 3,
                    entered: 3,
                    stopped: 2
                },
            ]
        );
        assert!((s.percent() - 40.0).abs() < 1e-9);
        assert_eq!(summary(&refs[4..]), None, "nothing stopped");
    }
}
