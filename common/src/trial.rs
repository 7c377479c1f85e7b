//! A trial: one fully resolved grid cell, everything a worker needs to train one model.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::ids::TrialId;
use crate::program::ProgramSpec;

pub use crate::grid::{Activation, HyperParams, LrSchedule};

/// How the official training set is split into the train and test parts (lab 1's 70:30).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    /// Fraction of the official training set in the train part, in (0, 1).
    pub train_ratio: f64,
    /// Seed of the split; the sweep's seed, so every trial of a sweep sees the same split.
    pub seed: u64,
}

impl SplitSpec {
    /// Sizes of the (train, test) parts of a set of `n` images, as `random_split` computes them
    /// in the lab: `int(n * ratio)` and the rest.
    pub fn sizes(&self, n: usize) -> (usize, usize) {
        // Truncation is the lab's `int(...)`; the product is < n, so it fits.
        let train = ((n as f64) * self.train_ratio) as usize;
        let train = train.min(n);
        (train, n - train)
    }
}

/// One trial, fully resolved: what a worker trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Content-derived id (see [`TrialSpec::canonical`]).
    pub id: TrialId,
    /// Name of the experiment (grid file section) the trial belongs to.
    pub experiment: String,
    /// Human-readable name from the experiment's `trial_name` template.
    pub name: String,
    /// Dataset to train on.
    pub dataset: DatasetKind,
    /// Hyperparameters.
    pub params: HyperParams,
    /// Train/test split of the official training set.
    pub split: SplitSpec,
    /// Save a checkpoint every this many epochs (0: never). Not part of the trial's content:
    /// changing it does not change the trial's id or its results.
    pub checkpoint_every: u32,
    /// The user's program that trains it, for a program trial (issue 19); `None` for the
    /// built-in trainer. Its content is part of the trial's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<Box<ProgramSpec>>,
}

impl TrialSpec {
    /// The canonical text of everything that determines the trial's outcome; its id is the
    /// UUID v5 of this text. The display name is not part of it (renaming retrains nothing).
    pub fn canonical(
        experiment: &str,
        dataset: DatasetKind,
        p: &HyperParams,
        split: &SplitSpec,
    ) -> String {
        let mut text = format!(
            "sweep-trial-v1|experiment={experiment:?}|dataset={}",
            dataset.canonical()
        );
        for (param, value) in p.named() {
            text.push('|');
            text.push_str(param.key());
            text.push('=');
            // Writing to a String cannot fail.
            let _ = write!(text, "{}", value.canonical());
        }
        let _ = write!(
            text,
            "|split_ratio={:?}|split_seed={}",
            split.train_ratio, split.seed
        );
        text
    }

    /// Recomputes the id from the content; a spec whose id does not match was tampered with.
    pub fn content_id(&self) -> TrialId {
        let mut text = Self::canonical(&self.experiment, self.dataset, &self.params, &self.split);
        if let Some(program) = &self.program {
            text.push_str(&program.canonical());
        }
        TrialId::from_content(&text)
    }

    /// The text that names the trial's configuration: its content without its `seed`, so trials
    /// that differ only in their seed (repeats) share it. Early stopping judges them together.
    pub fn configuration(&self) -> String {
        let mut params = self.params.clone();
        params.seed = 0;
        let mut text = Self::canonical(&self.experiment, self.dataset, &params, &self.split);
        if let Some(program) = &self.program {
            text.push_str(&program.canonical());
        }
        text
    }

    /// The text that names the trial's lineage: its content without its `epochs`, so a trial
    /// and the same trial asked for more epochs (an edited grid file) share it. Only a
    /// [`TrialSpec::growth`] of `Ok` makes the longer run continue the shorter one exactly.
    pub fn lineage(&self) -> String {
        let mut params = self.params.clone();
        params.epochs = 0;
        let mut text = Self::canonical(&self.experiment, self.dataset, &params, &self.split);
        if let Some(program) = &self.program {
            text.push_str(&program.canonical());
        }
        text
    }

    /// Whether the first `E` epochs of this trial are those of the same trial run for fewer
    /// epochs `E`, so that a longer run may resume a shorter one's checkpoint: true of the
    /// built-in trainer with a learning-rate schedule that does not span the whole run
    /// (`constant`, `step`; the warm-up counts from the start). `Err` says why not.
    pub fn growth(&self) -> Result<(), Growth> {
        if self.program.is_some() {
            return Err(Growth::Program);
        }
        match self.params.lr_schedule {
            LrSchedule::Constant | LrSchedule::Step => Ok(()),
            LrSchedule::Cosine | LrSchedule::Onecycle => {
                Err(Growth::Schedule(self.params.lr_schedule))
            }
        }
    }

    /// The id of its lineage ([`TrialSpec::lineage`]) when it grows exactly
    /// ([`TrialSpec::growth`]): a checkpoint names it, so that a trial of the same lineage with
    /// more epochs may resume from it.
    pub fn lineage_id(&self) -> Option<TrialId> {
        self.growth()
            .ok()
            .map(|()| TrialId::from_content(&self.lineage()))
    }

    /// Sizes of the (train, test) parts of the `n` images a worker loaded: the split's, or, for
    /// an own file with `x_test`, its `x_train` and its `x_test` (the last images; `split_ratio`
    /// is not used).
    pub fn parts(&self, n: usize) -> (usize, usize) {
        match self.dataset.held_out_len() {
            0 => self.split.sizes(n),
            held_out => (n.saturating_sub(held_out), held_out.min(n)),
        }
    }

    /// Number of training images this trial trains on, given the official training set size.
    pub fn train_subset_len(&self, official_len: usize) -> usize {
        let (train, _) = self.parts(official_len);
        let n = ((train as f64) * self.params.train_fraction) as usize;
        n.clamp(1, train.max(1))
    }
}

/// Why a trial asked for more epochs cannot continue a shorter run of it exactly (see
/// [`TrialSpec::growth`]): it is trained afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// The learning-rate schedule spans the whole run, so a longer run differs from epoch 1.
    Schedule(LrSchedule),
    /// A program trial: what its program does with `epochs` is its own.
    Program,
}

impl std::fmt::Display for Growth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Growth::Schedule(s) => write!(
                f,
                "its lr_schedule {:?} spans the whole run, so more epochs change it from epoch 1 \
                 (only constant and step continue)",
                s.name()
            ),
            Growth::Program => {
                f.write_str("it is a program trial (its program may use its epochs as it likes)")
            }
        }
    }
}

/// Whether `c` stays as it is in a file name made from a trial name.
fn file_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The file-name form of a trial name, the one rule for every file named after a trial (its
/// final weights `models/<stem>.safetensors`): ASCII letters, digits, `_`, `-` and `.` kept,
/// every other character replaced by `_`.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| if file_safe(c) { c } else { '_' })
        .collect()
}

/// One of a program trial's output streams, captured to a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// Both, in the order they are listed.
    pub const ALL: [LogStream; 2] = [LogStream::Stdout, LogStream::Stderr];

    /// The stream's name in file names.
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// The folder of program logs in the output folder.
pub const LOGS: &str = "logs";

/// Where the log of `stream` of the program trial `name` is kept, relative to the output
/// folder: `logs/<stem>.<stream>.log`.
pub fn log_file(name: &str, stream: LogStream) -> String {
    format!("{LOGS}/{}.{}.log", file_stem(name), stream.name())
}

/// The characters of the file name a trial name gives, as a file system that ignores case
/// (macOS's, Windows') compares them: two trial names with equal keys would share their files.
pub fn file_key_chars(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().map(|c| {
        if file_safe(c) {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_safe_characters_and_replace_the_rest() {
        assert_eq!(file_stem("Lab1_P2_0.2-x"), "Lab1_P2_0.2-x");
        assert_eq!(file_stem("a/b c\\é"), "a_b_c__");
        let key = |s: &str| file_key_chars(s).collect::<String>();
        assert_eq!(key("A/b"), key("a_B"));
        assert_ne!(key("a-b"), key("a_b"));
        assert_eq!(log_file("a/b", LogStream::Stderr), "logs/a_b.stderr.log");
    }

    #[test]
    fn split_sizes_match_random_split() {
        let s = SplitSpec {
            train_ratio: 0.7,
            seed: 0,
        };
        assert_eq!(s.sizes(60_000), (42_000, 18_000));
        assert_eq!(s.sizes(50_000), (35_000, 15_000));
    }

    fn spec(epochs: u32, schedule: LrSchedule) -> TrialSpec {
        let mut params = HyperParams::defaults(1).unwrap();
        params.epochs = epochs;
        params.lr_schedule = schedule;
        let split = SplitSpec {
            train_ratio: 0.7,
            seed: 0,
        };
        let mut s = TrialSpec {
            id: TrialId::from_content(""),
            experiment: "e".into(),
            name: "t".into(),
            dataset: DatasetKind::FashionMnist,
            params,
            split,
            checkpoint_every: 1,
            program: None,
        };
        s.id = s.content_id();
        s
    }

    #[test]
    fn the_lineage_is_the_content_without_epochs() {
        let (short, long) = (spec(2, LrSchedule::Step), spec(4, LrSchedule::Step));
        assert_ne!(short.id, long.id);
        assert_eq!(short.lineage(), long.lineage());
        assert_eq!(short.lineage_id(), long.lineage_id());
        assert!(short.lineage_id().is_some());
        // Anything else that decides what is trained is part of it.
        let mut other = spec(2, LrSchedule::Step);
        other.params.seed = 2;
        assert_ne!(other.lineage(), short.lineage());
        assert_ne!(spec(2, LrSchedule::Constant).lineage(), short.lineage());
        // Settings outside the content are not.
        let mut every = spec(2, LrSchedule::Step);
        every.checkpoint_every = 5;
        assert_eq!(every.lineage(), short.lineage());
    }

    #[test]
    fn only_schedules_that_do_not_span_the_run_grow_exactly() {
        assert_eq!(spec(2, LrSchedule::Constant).growth(), Ok(()));
        for s in [LrSchedule::Cosine, LrSchedule::Onecycle] {
            let t = spec(2, s);
            assert_eq!(t.growth(), Err(Growth::Schedule(s)));
            assert_eq!(t.lineage_id(), None);
            assert!(Growth::Schedule(s).to_string().contains(s.name()));
        }
    }

    #[test]
    fn canonical_text_is_sweep_trial_v1() {
        // Trial ids are the UUID v5 of this text: it must never change for an existing trial,
        // or state directories stop resuming.
        let mut p = HyperParams::defaults(42).unwrap();
        p.activation = Activation::Tanh;
        p.hidden_layers = 2;
        p.hidden_width = 1024;
        p.batch_size = 128;
        p.epochs = 20;
        let split = SplitSpec {
            train_ratio: 0.7,
            seed: 0,
        };
        let text = TrialSpec::canonical("p1_cifar10", DatasetKind::Cifar10, &p, &split);
        assert_eq!(
            text,
            "sweep-trial-v1|experiment=\"p1_cifar10\"|dataset=cifar10|activation=tanh|hidden_layers=2|hidden_width=1024|learning_rate=0.001|batch_size=128|epochs=20|train_fraction=1.0|seed=42|split_ratio=0.7|split_seed=0"
        );
        assert_eq!(
            TrialId::from_content(&text).to_string(),
            "b7bfbbb4-d989-529b-bfdc-20d9cf42e331"
        );
    }
}
